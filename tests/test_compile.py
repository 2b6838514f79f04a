"""End to end: tvm.compile(target="zynq-squeeze") runs the accelerator's C simulation,
bit-exact with the numpy golden model."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import tvm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx_graphs import GraphBuilder
from tvm import relax

import zynq_squeeze
from zynq_squeeze.codegen import golden
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.quantize.calibrate import CalibrationError

LLVM = tvm.target.Target({"kind": "llvm"})


def float_run(mod, x):
    ex = tvm.compile(mod, target=LLVM)
    return relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def small_net(seed=0):
    g = GraphBuilder((1, 3, 23, 23), seed=seed)
    g.conv(16, 3, stride=2)
    g.maxpool(3, 2, ceil=1)
    g.fire(8, 16, 16)
    g.maxpool(3, 2, ceil=1)
    g.fire(8, 16, 12)
    g.conv(10, 1)
    g.op("GlobalAveragePool")
    return g.model()


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    mod = from_onnx(small_net())
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal((1, 3, 23, 23)).astype(np.float32) for _ in range(4)]
    res = zynq_squeeze.build(mod, calibration=calib, out_dir=tmp_path_factory.mktemp("small"))
    return mod, res


def test_small_net_is_bit_exact_and_close_to_float(small_build):
    mod, res = small_build
    vm = res.vm()
    lf = res.codegen[0].functions[0]
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = rng.standard_normal((1, 3, 23, 23)).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0])
        assert cosine(y, float_run(mod, x)) > 0.99


def test_export_and_load(small_build, tmp_path):
    _, res = small_build
    path = tmp_path / "small.so"
    res.export_library(path)
    lib = tvm.runtime.load_module(str(path))
    vm = relax.VirtualMachine(lib, tvm.cpu())
    x = np.random.default_rng(3).standard_normal((1, 3, 23, 23)).astype(np.float32)
    y = vm["main"](tvm.runtime.tensor(x)).numpy()
    np.testing.assert_array_equal(y, res.vm()["main"](tvm.runtime.tensor(x)).numpy())


def test_plain_tvm_compile_offloads_and_warns_without_calibration():
    mod = from_onnx(small_net(seed=4))
    with pytest.warns(UserWarning, match="synthetic calibration set"):
        ex = tvm.compile(mod, target="zynq-squeeze")
    vm = relax.VirtualMachine(ex, tvm.cpu())
    x = np.random.default_rng(5).standard_normal((1, 3, 23, 23)).astype(np.float32)
    y = vm["main"](tvm.runtime.tensor(x)).numpy()
    assert cosine(y, float_run(mod, x)) > 0.99


def test_calibrate_then_compile_uses_module_scales():
    mod = from_onnx(small_net(seed=6))
    rng = np.random.default_rng(7)
    cal = zynq_squeeze.calibrate(mod, [rng.standard_normal((3, 23, 23)).astype(np.float32)
                                       for _ in range(3)], progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # calibrated: no synthetic-set warning
        ex = tvm.compile(cal, target="zynq-squeeze")
    x = rng.standard_normal((1, 3, 23, 23)).astype(np.float32)
    y = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
    assert cosine(y, float_run(mod, x)) > 0.99


def test_calibration_errors():
    mod = from_onnx(small_net())
    with pytest.raises(CalibrationError, match=r"expected shape \(1, 3, 23, 23\), got \(1, 3, 8, 8\)"):
        zynq_squeeze.calibrate(mod, [np.zeros((1, 3, 8, 8), np.float32)])
    with pytest.raises(CalibrationError, match="no calibration samples"):
        zynq_squeeze.calibrate(mod, [])


def test_wrong_input_at_run_time(small_build, tmp_path):
    _, res = small_build
    vm = res.vm()
    with pytest.raises(Exception, match=r"\(1, 3, 23, 23\)"):
        vm["main"](tvm.runtime.tensor(np.zeros((1, 3, 24, 23), np.float32)))
    with pytest.raises(Exception, match="float32"):
        vm["main"](tvm.runtime.tensor(np.zeros((1, 3, 23, 23), np.float64)))
    # The glue's own checks (reached when the function is called directly).
    path = tmp_path / "m.so"
    res.export_library(path)
    lib = tvm.runtime.load_module(str(path))
    sym = res.partition_report.functions[0]
    f = lib.get_function(sym, query_imports=True)
    out = tvm.runtime.tensor(np.zeros((1, 10, 1, 1), np.float32))
    with pytest.raises(ValueError, match=r"input 0 has shape \(1, 3, 8, 8\), expected shape \(1, 3, 23, 23\)"):
        f(tvm.runtime.tensor(np.zeros((1, 3, 8, 8), np.float32)), out)
    with pytest.raises(TypeError, match="must be float32"):
        f(tvm.runtime.tensor(np.zeros((1, 3, 23, 23), np.int8)), out)
    with pytest.raises(TypeError, match=r"expected 1 input\(s\) and 1 output\(s\), got 1"):
        f(out)


def test_concurrent_calls_are_correct(small_build):
    """One executable called from 4 threads (a VM each: the glue's static arena and the
    engine take turns): every output equals the serial one."""
    import threading

    _, res = small_build
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal((1, 3, 23, 23)).astype(np.float32) for _ in range(8)]
    serial = [res.vm()["main"](tvm.runtime.tensor(x)).numpy() for x in xs]
    got: dict = {}
    errors = []

    def worker(k):
        try:
            vm = res.vm()
            for rep in range(3):
                for i in range(k, len(xs), 4):
                    got[(k, rep, i)] = vm["main"](tvm.runtime.tensor(xs[i])).numpy()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(got) == 3 * len(xs)
    for (_, _, i), y in got.items():
        np.testing.assert_array_equal(y, serial[i])


def test_build_raises_the_documented_error_types(tmp_path):
    """Errors raised inside tvm.compile cross TVM's FFI as RuntimeError; build() gives the
    caller zynq-squeeze's own type and message back."""
    from zynq_squeeze.errors import ScheduleError
    from zynq_squeeze.schedule.select import EngineFitError, TuningLogError

    mod = from_onnx(small_net())
    calib = [np.random.default_rng(0).standard_normal((1, 3, 23, 23)).astype(np.float32)]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TuningLogError, match="not valid JSON"):
        zynq_squeeze.build(mod, calibration=calib, tuning_log=bad)
    big = tmp_path / "big.json"
    big.write_text('{"version": 2, "engine": {"k": 4, "w_rows": 16384}, "layers": {}}')
    with pytest.raises(EngineFitError, match="zybo-z7-20 has"):
        zynq_squeeze.build(mod, calibration=calib, tuning_log=big)
    with pytest.raises(ScheduleError, match="no engine fits zybo-z7-10"):
        zynq_squeeze.build(mod, calibration=calib, board="zybo-z7-10")


def test_model_names_cannot_inject_code(tmp_path):
    """A model name is text from a model file: it reaches generated C, Tcl and Makefiles
    only through safe_text (no comment closed, no string ended, nothing substituted)."""
    mod = from_onnx(small_net())
    calib = [np.random.default_rng(0).standard_normal((1, 3, 23, 23)).astype(np.float32)]
    evil = 'x */ int zsq_pwned = 1; /* "$(rm -rf ~)" `id` \n#include "/etc/passwd"'
    zynq_squeeze.build(mod, calibration=calib, out_dir=tmp_path, model_name=evil)
    for f in (tmp_path / "src").iterdir():
        if f.suffix in (".cc", ".h"):
            text = f.read_text()
            assert "*/ int zsq_pwned" not in text and '#include "/etc/passwd"' not in text
            assert "x____int_zsq_pwned___1" in text or f.name != "zsq_glue.cc"  # the name, defused


def test_unsupported_ops_still_run_and_match_float(tmp_path):
    g = GraphBuilder((1, 3, 16, 16), seed=3)
    g.conv(8, 3, pad=1)
    g.conv(8, 3, pad=1, group=2)
    g.op("Sigmoid")
    g.conv(8, 3, pad=2, dilation=2)
    g.conv(6, 1)
    mod = from_onnx(g.model())
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(4)]
    res = zynq_squeeze.build(mod, calibration=calib, out_dir=tmp_path)
    assert len(res.partition_report.functions) == 2
    x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
    y = res.vm()["main"](tvm.runtime.tensor(x)).numpy()
    assert cosine(y, float_run(mod, x)) > 0.99


def test_batch_two(tmp_path):
    g = GraphBuilder((2, 4, 9, 9), seed=1)
    g.conv(8, 3, pad=1)
    g.fire(4, 8, 8)
    mod = from_onnx(g.model())
    rng = np.random.default_rng(0)
    res = zynq_squeeze.build(mod, calibration=[rng.standard_normal((2, 4, 9, 9)).astype(np.float32)],
                             out_dir=tmp_path)
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    y = res.vm()["main"](tvm.runtime.tensor(x)).numpy()
    lf = res.codegen[0].functions[0]
    np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0])


def test_generated_sources_are_deterministic(tmp_path):
    mod = from_onnx(small_net(seed=9))
    calib = [np.random.default_rng(0).standard_normal((1, 3, 23, 23)).astype(np.float32)]
    outs = []
    for k in range(2):
        d = tmp_path / f"b{k}"
        zynq_squeeze.build(mod, calibration=calib, out_dir=d)
        outs.append({p.name: p.read_bytes() for p in sorted((d / "src").iterdir())
                     if p.suffix in (".cc", ".h", ".bin", ".json")})
    assert outs[0] == outs[1]
    assert "zsq_glue.cc" in outs[0] and "zsq_dae_config.h" in outs[0]
    glue = outs[0]["zsq_glue.cc"].decode()
    assert str(tmp_path) not in glue
    assert max(len(line) for line in glue.splitlines()) < 200


# --------------------------------------------------------------------------- property
@st.composite
def chains(draw):
    """Random valid conv / fire / pool chains (spatial size tracked so none vanishes)."""
    from zynq_squeeze.quantize.layers import pool_out_size

    c = draw(st.integers(1, 9))
    h = draw(st.integers(6, 17))
    w = draw(st.integers(6, 17))
    g = GraphBuilder((1, c, h, w), seed=draw(st.integers(0, 1000)))
    size = [h, w]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "conv_pool", "fire", "fire_pool", "conv_gap"]))
        if kind.startswith("conv"):
            k = draw(st.integers(1, min(5, *size)))
            s = draw(st.sampled_from([1, 2]))
            pad = draw(st.integers(0, k // 2))
            g.conv(draw(st.integers(1, 20)), k, stride=s, pad=pad,
                   relu=kind != "conv" or draw(st.booleans()), bias=draw(st.booleans()))
            size = [(v + 2 * pad - k) // s + 1 for v in size]
        else:
            g.fire(draw(st.integers(1, 12)), 8 * draw(st.integers(1, 3)), draw(st.integers(1, 20)))
        if kind.endswith("pool") and min(size) >= 3:
            k = draw(st.sampled_from([2, 3]))
            ceil = draw(st.booleans())
            if draw(st.booleans()):
                g.maxpool(k, 2, ceil=int(ceil))
                stride = 2
            else:
                stride = draw(st.sampled_from([1, 2]))
                # the accelerator takes only average pools whose windows all hold k*k
                # elements: ceil mode only where it adds no overhanging window
                ceil = ceil and all((v - k) % stride == 0 for v in size)
                g.avgpool(k, stride, ceil=int(ceil))
            size = [pool_out_size(v, k, stride, 0, 0, ceil) for v in size]
        if kind == "conv_gap":
            g.op("GlobalAveragePool")
            break
    return g, (1, c, h, w)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(chains())
def test_random_chains_bit_exact(tmp_path_factory, case):
    g, shape = case
    mod = from_onnx(g.model())
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(2)]
    res = zynq_squeeze.build(mod, calibration=calib, out_dir=tmp_path_factory.mktemp("h"))
    x = rng.standard_normal(shape).astype(np.float32)
    y = res.vm()["main"](tvm.runtime.tensor(x)).numpy()
    assert res.partition_report.offload_ratio == 1.0
    lf = res.codegen[0].functions[0]
    np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0])


@pytest.mark.skipif(any(__import__("shutil").which(t) is None
                        for t in ("arm-linux-gnueabihf-g++", "arm-linux-gnueabihf-readelf")),
                    reason="needs g++-arm-linux-gnueabihf")
def test_board_build_exports_an_arm_library(tmp_path):
    import subprocess

    mod = from_onnx(small_net(seed=11))
    res = zynq_squeeze.build(mod, calibration=[np.zeros((1, 3, 23, 23), np.float32) + 0.5],
                             out_dir=tmp_path, board_build=True)
    lib = tmp_path / "model_arm.so"
    res.export_library(lib)
    head = subprocess.run(["arm-linux-gnueabihf-readelf", "-h", str(lib)], capture_output=True,
                          text=True).stdout
    assert "ARM" in head and "ELF32" in head
    syms = subprocess.run(["arm-linux-gnueabihf-readelf", "-W", "--dyn-syms", str(lib)],
                          capture_output=True, text=True).stdout
    sym = res.partition_report.functions[0]
    assert f"__tvm_ffi_{sym}" in syms
    # the board links the zynq (UIO) backend, not the engine's C simulation
    assert "zsq_engine" not in syms and "zsq_rt_backend_run" not in syms  # hidden, internal
    assert "zynq" in subprocess.run(["arm-linux-gnueabihf-strings", str(lib)],
                                    capture_output=True, text=True).stdout


@pytest.mark.skipif(__import__("shutil").which("arm-linux-gnueabihf-g++") is None,
                    reason="needs g++-arm-linux-gnueabihf")
def test_arm_target_tag_builds_for_the_board(tmp_path):
    import subprocess

    from tvm.support import cc

    from zynq_squeeze.toolchain.driver import _pack_imports_as_c

    mod = zynq_squeeze.calibrate(from_onnx(small_net(seed=12)),
                                 [np.zeros((1, 3, 23, 23), np.float32) + 0.5], progress=False)
    ex = tvm.compile(mod, target="zynq-squeeze-arm")
    lib = tmp_path / "arm.so"
    ex.export_library(str(lib), fcompile=cc.cross_compiler("arm-linux-gnueabihf-g++"),
                      fpack_imports=_pack_imports_as_c)
    head = subprocess.run(["arm-linux-gnueabihf-readelf", "-h", str(lib)], capture_output=True,
                          text=True).stdout
    assert "ARM" in head and "ELF32" in head
