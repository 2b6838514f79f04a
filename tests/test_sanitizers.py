"""SqueezeNet 1.1 through a model.so whose native parts (engine simulation, runtime + csim
backend, generated glue) are built with AddressSanitizer and UndefinedBehaviorSanitizer.

ZSQ_SANITIZE=address,undefined makes toolchain/compiler.py add -fsanitize=... to the host
flags (and to the object cache keys). The build and the run happen in a child Python
process started with gcc's libasan and libubsan in LD_PRELOAD (the interpreter and TVM are
not instrumented, so the runtimes must come first; ASAN_OPTIONS=detect_leaks=0 because
Python and TVM keep allocations until exit by design; tests/fuzz/ubsan.supp silences the
one deliberate UB of Xilinx's ap_private.h). The child compiles SqueezeNet with
tvm.compile(target="zynq-squeeze") (zynq_squeeze.build), runs random inputs and checks
the outputs against the numpy integer golden model bit-exactly; the test requires exit
code 0 and no sanitizer report on stderr. A second test runs the C tests (ctest) built
with cmake -DZSQ_SANITIZE=address,undefined (the zynq backend behind its emulated IP too).

    python tests/test_sanitizers.py OUT_DIR   # the child (needs the environment above)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

N_INPUTS = 2
# Xilinx's ap_private.h shifts negative values left on purpose (compiler.sanitize_flags)
SUPP = Path(__file__).resolve().parent / "fuzz" / "ubsan.supp"
REPORT_MARKERS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                  "SUMMARY: UndefinedBehaviorSanitizer", "SUMMARY: AddressSanitizer")


def _runtime(name: str) -> str | None:
    """Path of gcc's sanitizer runtime ``name`` (libasan.so, libubsan.so), or None."""
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        return None
    p = subprocess.run([cxx, f"-print-file-name={name}"], capture_output=True,
                       text=True).stdout.strip()
    return str(Path(p).resolve()) if p and Path(p).is_file() else None


def test_squeezenet_under_asan_and_ubsan(tmp_path):
    import pytest

    asan, ubsan = _runtime("libasan.so"), _runtime("libubsan.so")
    if asan is None or ubsan is None:
        pytest.skip("gcc's libasan/libubsan not found (g++ -print-file-name=libasan.so)")
    env = dict(os.environ, ZSQ_SANITIZE="address,undefined", LD_PRELOAD=f"{asan} {ubsan}",
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1",
               UBSAN_OPTIONS=f"print_stacktrace=1:halt_on_error=1:suppressions={SUPP}",
               TVM_NUM_THREADS="1", OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, str(tmp_path / "build")], env=env,
                          capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    print(f"sanitized SqueezeNet build + {N_INPUTS} runs: {wall:.1f} s")
    assert proc.returncode == 0, out[-6000:]
    for marker in REPORT_MARKERS:
        assert marker not in proc.stderr, out[-6000:]
    assert f"bit-exact {N_INPUTS}/{N_INPUTS}" in proc.stdout, out[-6000:]
    # the model object really is instrumented (else the test proves nothing)
    assert "sanitized objects: yes" in proc.stdout, out[-6000:]


def test_ctest_under_asan_and_ubsan(tmp_path):
    """The C tests (csim runtime, and the board backend behind an emulated IP) built with
    cmake -DZSQ_SANITIZE=address,undefined run clean."""
    import pytest

    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    from test_ctest import write_cases

    from zynq_squeeze import native

    cases = write_cases(tmp_path / "data")
    build = tmp_path / "build"
    r = subprocess.run(["cmake", "-S", str(Path(__file__).resolve().parents[1]), "-B", str(build),
                        "-DZSQ_BACKEND=csim", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                        f"-DZSQ_AP_TYPES_DIR={native.ap_types_dir()}",
                        f"-DZSQ_CONFIG_DIR={cases / 'config'}", f"-DZSQ_TEST_DATA={cases}",
                        "-DZSQ_SANITIZE=address,undefined"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    env = dict(os.environ, ASAN_OPTIONS="halt_on_error=1",
               UBSAN_OPTIONS=f"print_stacktrace=1:halt_on_error=1:suppressions={SUPP}")
    r = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure", "-V"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0 and "100% tests passed" in r.stdout, r.stdout[-6000:]
    for marker in REPORT_MARKERS:
        assert marker not in r.stdout + r.stderr, r.stdout[-6000:]
    assert "test_zynq" in r.stdout and "test_program" in r.stdout


def _child(out_dir: Path) -> None:
    import warnings

    import numpy as np
    import tvm

    import zynq_squeeze
    from zynq_squeeze.codegen import golden
    from zynq_squeeze.frontend import from_onnx
    from zynq_squeeze.frontend.models import squeezenet
    from zynq_squeeze.toolchain.compiler import sanitize_flags

    assert any(f.startswith("-fsanitize=") for f in sanitize_flags()), "ZSQ_SANITIZE unset"
    model = squeezenet("1.1", seed=0)
    assert model.graph.node[-1].op_type == "Softmax"  # end at the logits (test_fidelity.py)
    model.graph.output[0].name = model.graph.node[-1].input[0]
    del model.graph.node[-1]
    mod = from_onnx(model)
    rng = np.random.default_rng(20)
    calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = zynq_squeeze.build(mod, calibration=calib, out_dir=out_dir)
    obj = res.codegen[0].object_path
    syms = subprocess.run(["nm", str(obj)], capture_output=True, text=True).stdout
    instrumented = "__asan_report" in syms and "__ubsan_handle" in syms
    print(f"sanitized objects: {'yes' if instrumented else 'no'} ({obj})")
    lf = res.codegen[0].functions[0]
    vm = res.vm()
    ok = 0
    for _ in range(N_INPUTS):
        x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0].reshape(y.shape))
        ok += 1
    print(f"bit-exact {ok}/{N_INPUTS}")


if __name__ == "__main__":
    _child(Path(sys.argv[1]))
