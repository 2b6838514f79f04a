"""Deployment bundle core: generated C executor, model file, zsq_infer, libzsq_model.so.

The executables run the whole model with no Python and no TVM runtime; their outputs must
equal relax.VirtualMachine's for tvm.compile(mod, target="zynq-squeeze") bit for bit, on
the host and (ARM static binary, engine simulation compiled for the ARM) under qemu.
"""
from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest
import tvm
import zynq_squeeze  # noqa: F401  (registers the zynq-squeeze target)
from onnx import helper, numpy_helper
from onnx_graphs import GraphBuilder
from tvm import relax
from zynq_squeeze.deployment import executor, model_file
from zynq_squeeze.deployment.bundle import build_executables
from zynq_squeeze.deployment.errors import DeployError
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.frontend.models import digits_data, digits_model
from zynq_squeeze.quantize.calibrate import calibrate

QEMU = ["qemu-arm-static", "-cpu", "cortex-a9", "-L", "/usr/arm-linux-gnueabihf"]
need_arm = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("arm-linux-gnueabihf-g++", "qemu-arm-static")),
    reason="needs g++-arm-linux-gnueabihf and qemu-user-static")


def tiny_net():
    """Offloaded conv chain, then CPU operators with constants: Flatten, a per-element
    scale and shift (Mul, Add by constants), Softmax. (A Gemm would be offloaded as a
    dense layer.)"""
    g = GraphBuilder((1, 3, 12, 12), seed=3)
    g.conv(8, 3, pad=1)
    g.maxpool(2, 2, ceil=0)
    g.conv(16, 3, pad=1)
    g.op("Flatten", axis=1)
    m = (g.rng.standard_normal(16 * 36) * 0.05).astype(np.float32)
    b = (g.rng.standard_normal(16 * 36) * 0.1).astype(np.float32)
    g.inits += [numpy_helper.from_array(m, "scale_w"), numpy_helper.from_array(b, "shift_b")]
    g.nodes.append(helper.make_node("Mul", [g.cur, "scale_w"], ["mul_out"]))
    g.nodes.append(helper.make_node("Add", ["mul_out", "shift_b"], ["add_out"]))
    g.cur = "add_out"
    g.op("Softmax", axis=1)
    return g.model()


def _digits_mod():
    X, _ = digits_data("test")
    return calibrate(from_onnx(digits_model()), [X[i:i + 1].reshape(1, 1, 8, 8) for i in range(8)])


def _tiny_mod():
    rng = np.random.default_rng(0)
    return calibrate(from_onnx(tiny_net()),
                     [rng.standard_normal((1, 3, 12, 12)).astype(np.float32) for _ in range(4)])


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    mod = _digits_mod()
    out = tmp_path_factory.mktemp("digits")
    b = build_executables(mod, out_dir=out, arm=False, host=True, model_name="digits",
                          output_names=["logits"])
    return mod, b["host"], out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    mod = _tiny_mod()
    arm = all(shutil.which(t) for t in ("arm-linux-gnueabihf-g++", "qemu-arm-static"))
    out = tmp_path_factory.mktemp("tiny")
    b = build_executables(mod, out_dir=out, arm=arm, host=True, backend="csim", model_name="tiny")
    return mod, b


def vm_of(mod):
    return relax.VirtualMachine(tvm.compile(mod, target="zynq-squeeze"), tvm.cpu())


def run(exe, *args, arm=False):
    cmd = (QEMU if arm else []) + [str(exe), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def infer(exe, model, x, tmp_path, arm=False, tag="y"):
    xin, yout = tmp_path / f"{tag}_in.npy", tmp_path / f"{tag}_out.npy"
    np.save(xin, x)
    r = run(exe, model, "-i", xin, "-o", yout, arm=arm)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return np.load(yout), r.stdout


def error_line(r) -> str:
    """The one error line zsq_infer prints (and checks that it is just one)."""
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zsq_infer: error: "), r.stderr
    return lines[0]


# ----------------------------------------------------------------- (a) host == VM
@pytest.mark.parametrize("which", ["digits", "tiny"])
def test_host_executable_is_bit_exact_with_the_vm(which, digits, tiny, tmp_path):
    mod, exe = (digits[0], digits[1]) if which == "digits" else (tiny[0], tiny[1]["host"])
    vm = vm_of(mod)
    shape = exe.meta["inputs"][0]["shape"]
    rng = np.random.default_rng(7)
    for k in range(2):
        x = rng.standard_normal(shape).astype(np.float32)
        y, out = infer(exe.infer, exe.model_file, x, tmp_path, tag=str(k))
        ref = vm["main"](tvm.runtime.tensor(x)).numpy()
        assert y.shape == ref.shape and y.dtype == np.float32
        np.testing.assert_array_equal(y, ref)
        assert "run 1: total" in out and "accelerator cycles" in out


def test_meta_plan_and_sections(digits, tiny):
    _, exe, _ = digits
    mf = model_file.read(exe.model_file, model_id=exe.model_id)
    meta = mf.meta()
    assert meta["inputs"] == [{"name": "input", "shape": [1, 1, 8, 8], "dtype": "float32"}]
    assert meta["outputs"] == [{"name": "logits", "shape": [1, 10], "dtype": "float32"}]
    (fn,) = meta["offloaded"]
    assert {f"{fn['symbol']}.insn", f"{fn['symbol']}.wgt"} <= set(mf.sections)
    assert len(mf.sections[f"{fn['symbol']}.insn"]) == 8 * fn["instructions"]
    assert fn["inputs"][0]["scale"] > 0
    # the tiny net's CPU operators read their constants from the file
    t = tiny[1]["host"]
    consts = model_file.read(t.model_file).sections
    assert [n for n in consts if n.startswith("const.")] == ["const.0", "const.1"]
    assert [s.offloaded for s in t.plan.steps] == [True, False, False]
    src = t.sources["zsq_model.c"].read_text()
    assert "fused_reshape_multiply_add" in src and "softmax" in src and "Steps (3)" in src


def test_raw_io_zero_input_and_repeats(digits, tmp_path):
    _, exe, _ = digits
    x = np.random.default_rng(3).standard_normal((1, 1, 8, 8)).astype(np.float32)
    y, _ = infer(exe.infer, exe.model_file, x, tmp_path)
    x.tofile(tmp_path / "x.raw")
    r = run(exe.infer, exe.model_file, "-i", tmp_path / "x.raw", "-o", tmp_path / "y.raw",
            "-n", "3")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.fromfile(tmp_path / "y.raw", np.float32).reshape(1, 10), y)
    assert r.stdout.count("run ") == 3 and "3 runs: mean" in r.stdout
    r = run(exe.infer, exe.model_file, "-q")  # zeros in, summary suppressed
    assert r.returncode == 0 and r.stdout == "" and r.stderr == ""
    assert "argmax" in run(exe.infer, exe.model_file).stdout


def test_shared_library_in_a_process_that_has_tvm(digits, tmp_path):
    """libzsq_model.so exports only the API and keeps its own TVMFFI* symbols, so it
    works beside the TVM this process has loaded."""
    _, exe, _ = digits
    lib = ctypes.CDLL(str(exe.shared_library))
    lib.zsq_model_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p),
                                   ctypes.c_char_p, ctypes.c_size_t]
    lib.zsq_model_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.zsq_model_close.argtypes = [ctypes.c_void_p]
    err = ctypes.create_string_buffer(512)
    m = ctypes.c_void_p()
    assert lib.zsq_model_open(str(exe.model_file).encode(), ctypes.byref(m), err, 512) == 0, err.value
    x = np.random.default_rng(4).standard_normal((1, 1, 8, 8)).astype(np.float32)
    y = np.zeros((1, 10), np.float32)
    ref, _ = infer(exe.infer, exe.model_file, x, tmp_path)
    for _ in range(2):  # a second open of the same file reuses what the glue holds
        ins, outs = (ctypes.c_void_p * 1)(x.ctypes.data), (ctypes.c_void_p * 1)(y.ctypes.data)
        assert lib.zsq_model_run(m, ins, outs, None, err, 512) == 0, err.value
        np.testing.assert_array_equal(y, ref)
        xn = x.copy()
        xn[0, 0, 2, 3] = np.nan  # the glue's error crosses the executor with the step's name
        ins = (ctypes.c_void_p * 1)(xn.ctypes.data)
        assert lib.zsq_model_run(m, ins, outs, None, err, 512) == -205
        assert b"step 1 of 2" in err.value and b"NaN" in err.value, err.value
        lib.zsq_model_close(m)
        assert lib.zsq_model_open(str(exe.model_file).encode(), ctypes.byref(m), err, 512) == 0
    lib.zsq_model_close(m)


# ----------------------------------------------------------------- (b) ARM == host
@need_arm
def test_arm_static_executable_under_qemu_is_bit_exact_with_host(tiny, tmp_path):
    arm, host = tiny[1]["arm"], tiny[1]["host"]
    head = subprocess.run(["arm-linux-gnueabihf-readelf", "-h", "-l", str(arm.infer)],
                          capture_output=True, text=True, check=True).stdout
    assert "ARM" in head and "INTERP" not in head  # static: no dynamic loader needed
    rng = np.random.default_rng(11)
    for k in range(2):
        x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
        ya, out = infer(arm.infer, arm.model_file, x, tmp_path, arm=True, tag=f"a{k}")
        yh, _ = infer(host.infer, host.model_file, x, tmp_path, tag=f"h{k}")
        np.testing.assert_array_equal(ya, yh)
        assert "accelerator cycles" in out


@need_arm
def test_board_build_reports_a_missing_accelerator_cleanly(tmp_path):
    """The board variant (zynq backend) under qemu has no FPGA: one error line naming the
    step and the device, not a crash; its shared library exports only the API."""
    exe = build_executables(_digits_mod(), out_dir=tmp_path, model_name="digits")["arm"]
    assert exe.backend == "zynq"
    r = run(exe.infer, exe.model_file, arm=True)
    line = error_line(r)
    assert "step 1 of 2" in line and "offloaded" in line and "accelerator" in line, line
    syms = subprocess.run(["arm-linux-gnueabihf-nm", "-D", "--defined-only",
                           str(exe.shared_library)], capture_output=True, text=True,
                          check=True).stdout.split()
    exported = {s for s in syms if s.startswith(("zsq", "TVM", "__tvm"))}
    assert exported == {"zsq_model_open", "zsq_model_run", "zsq_model_close",
                        "zsq_model_num_inputs", "zsq_model_num_outputs", "zsq_model_input",
                        "zsq_model_output", "zsq_model_strerror", "zsq_model_blob"}


# ----------------------------------------------------------------- (c) bad files
def test_damaged_truncated_and_foreign_model_files(digits, tiny, tmp_path):
    _, exe, _ = digits
    data = bytearray(exe.model_file.read_bytes())
    flipped = tmp_path / "flipped.zsqm"
    data[len(data) // 2] ^= 0x10
    flipped.write_bytes(bytes(data))
    assert "CRC-32 mismatch" in error_line(run(exe.infer, flipped))
    with pytest.raises(model_file.ModelFileError, match="CRC-32 mismatch"):
        model_file.read(flipped)
    short = tmp_path / "short.zsqm"
    short.write_bytes(exe.model_file.read_bytes()[:-64])
    assert "truncated" in error_line(run(exe.infer, short))
    with pytest.raises(model_file.ModelFileError, match="truncated"):
        model_file.read(short)
    other = tiny[1]["host"].model_file
    assert "belongs to another build" in error_line(run(exe.infer, other))
    assert "No such file" in error_line(run(exe.infer, tmp_path / "missing.zsqm"))
    (tmp_path / "junk.zsqm").write_bytes(b"x" * 100)
    assert "bad magic" in error_line(run(exe.infer, tmp_path / "junk.zsqm"))


def _forge(sections, mid, patch):
    """A model file with a valid CRC but a damaged field (what a checksum cannot catch)."""
    data = bytearray(model_file.pack(sections, mid))
    patch(data)
    struct.pack_into("<I", data, 32, zlib.crc32(bytes(data[64:])) & 0xFFFFFFFF)
    return bytes(data)


@pytest.mark.parametrize("patch,message", [
    (lambda d: struct.pack_into("<I", d, 8, 2), "format version 2"),
    (lambda d: struct.pack_into("<I", d, 12, 1000), "section table of 1000 entries"),
    (lambda d: struct.pack_into("<Q", d, 64 + 48, 72), "not 64-byte aligned"),
    (lambda d: struct.pack_into("<Q", d, 64 + 56, 1 << 62), "outside the file"),
    (lambda d: d.__setitem__(slice(128, 176), b"meta".ljust(48, b"\0")), "duplicate name"),
    (lambda d: d.__setitem__(slice(64, 64 + 48), b"m" * 48), "not NUL-terminated"),
])
def test_every_field_is_checked_in_c_and_python(digits, tmp_path, patch, message):
    _, exe, _ = digits
    good = model_file.read(exe.model_file)
    sections = list(good.sections.items())
    bad = _forge(sections, exe.model_id, patch)
    (tmp_path / "bad.zsqm").write_bytes(bad)
    assert message in error_line(run(exe.infer, tmp_path / "bad.zsqm"))
    with pytest.raises(model_file.ModelFileError, match=message):
        model_file.unpack(bad)


def _npy(header: str, payload: bytes = b"", version=1) -> bytes:
    h = header.encode()
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + payload
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(h)) + h + payload


@pytest.mark.parametrize("content,message", [
    (None, "is not the shape (1, 1, 8, 8)"),  # a well-formed .npy of the wrong shape
    (_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 8, 8), }\n", bytes(512)),
     "is not float32"),
    (_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1, 8, 8), }\n", bytes(256)),
     "Fortran-order"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 8, 8), }\n", bytes(200)),
     "200 data bytes"),
    (_npy("{'descr': '<f4', 'shape': (1, 1, 8, 8), }\n", bytes(256)), "malformed .npy header"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n"),
     "malformed .npy header"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 8, 8), 'x': 1}\n"),
     "malformed .npy header"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (64), }\n", bytes(256)),
     "malformed .npy header"),
    (_npy("{'descr': '" + "A" * 5000 + "', }\n"), "malformed .npy header"),
    (b"\x93NUMPY\x01\x00\xff\xff{", "runs past the end"),
    (b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{", "runs past the end"),
    (b"\x93NUMPY\x07\x00\x10\x00", "unsupported .npy version"),
    (b"\x93NUMPX", "not a .npy file"),
    (_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 8, 8), }\x01\n", bytes(256)),
     "malformed .npy header"),
])
def test_bad_inputs_are_errors_not_crashes(digits, tmp_path, content, message):
    _, exe, _ = digits
    path = tmp_path / "x.npy"
    if content is None:
        np.save(path, np.zeros((1, 1, 9, 8), np.float32))
    else:
        path.write_bytes(content)
    assert message in error_line(run(exe.infer, exe.model_file, "-i", path))


def test_usage_errors(digits, tmp_path):
    _, exe, _ = digits
    assert run(exe.infer, "-h").returncode == 0
    for args, message in [((), "no model file"), ((exe.model_file, "-n", "0"), "-n 0"),
                          ((exe.model_file, "-n", "3x"), "-n 3x"),
                          ((exe.model_file, "-z"), "unknown option"),
                          ((exe.model_file, "-i"), "needs an argument"),
                          ((exe.model_file, "-o", "a", "-o", "b"), "2 -o given"),
                          ((exe.model_file, "-i", "a", "-i", "b"), "2 -i given")]:
        r = run(exe.infer, *args)
        assert r.returncode == 2 and message in error_line(r)
    raw = tmp_path / "x.raw"
    raw.write_bytes(bytes(100))
    assert "100 data bytes" in error_line(run(exe.infer, exe.model_file, "-i", raw))
    r = run(exe.infer, exe.model_file, "-o", tmp_path / "no" / "dir" / "y.npy")
    assert "y.npy" in error_line(r)


# ----------------------------------------------------------------- (d) determinism
def test_generated_sources_and_model_file_are_deterministic(digits, tmp_path):
    _, exe, _ = digits
    again = build_executables(_digits_mod(), out_dir=tmp_path, arm=False, host=True,
                              model_name="digits", output_names=["logits"])["host"]
    for name in ("zsq_model.c", "zsq_model_api.c", "zsq_infer.c"):
        assert again.sources[name].read_bytes() == exe.sources[name].read_bytes(), name
    assert again.model_file.read_bytes() == exe.model_file.read_bytes()
    assert again.model_id == exe.model_id
    # no build path leaks into the generated executor
    assert str(tmp_path) not in again.sources["zsq_model.c"].read_text()


# ----------------------------------------------------------------- generator errors
def test_model_file_round_trip_and_writer_checks():
    sections = [("meta", b"{}"), ("const.0", bytes(range(7))), ("a.insn", b"")]
    mf = model_file.unpack(model_file.pack(sections, 0x1234))
    assert mf.sections == dict(sections) and mf.model_id == 0x1234
    data = model_file.pack(sections, 5)
    assert len(data) % 64 == 0 and data[:8] == b"ZSQMODEL"
    with pytest.raises(model_file.ModelFileError, match="another build"):
        model_file.unpack(data, model_id=6)
    for bad in ([("a", b""), ("a", b"")], [("x" * 48, b"")], [("sp ace", b"")], [("", b"")]):
        with pytest.raises(model_file.ModelFileError):
            model_file.pack(bad, 0)


def test_walker_rejects_what_it_cannot_plan():
    bb = relax.BlockBuilder()
    n = tvm.tirx.Var("n", "int64")
    x = relax.Var("x", relax.TensorType((n, 4), "float32"))
    with bb.function("main", [x]):
        gv = bb.emit(relax.op.nn.relu(x))
        bb.emit_func_output(gv)
    with pytest.raises(DeployError, match="symbolic dimension"):
        executor.plan(bb.get())
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2, 4), "int32"))
    with bb.function("main", [x]):
        bb.emit_func_output(x)
    with pytest.raises(DeployError, match="float32"):
        executor.plan(bb.get())


# ----------------------------------------------------------------- review regressions
def _api(path):
    """A fresh copy of libzsq_model.so (its own static state) with the API's argtypes."""
    lib = ctypes.CDLL(str(path))
    lib.zsq_model_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p),
                                   ctypes.c_char_p, ctypes.c_size_t]
    lib.zsq_model_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.zsq_model_close.argtypes = [ctypes.c_void_p]
    return lib


def test_program_section_of_the_wrong_size_is_refused_at_open(digits, tmp_path):
    """The executor checks the offloaded functions' sections' sizes at open, not only the
    glue at its first call: a file the glue rejects there was already pinned for the
    life of the process, so the right file could not be opened after it."""
    _, exe, _ = digits
    good = model_file.read(exe.model_file)
    (wgt,) = [n for n in good.sections if n.endswith(".wgt")]
    secs = [(n, d[:-8] if n == wgt else d) for n, d in good.sections.items()]
    bad = tmp_path / "short_wgt.zsqm"
    bad.write_bytes(model_file.pack(secs, exe.model_id))  # valid CRC, the right model id
    want = f"section '{wgt}' has {len(good.sections[wgt]) - 8} bytes, the executor expects"
    assert want in error_line(run(exe.infer, bad))
    shutil.copyfile(exe.shared_library, tmp_path / "lib_wgt.so")
    lib = _api(tmp_path / "lib_wgt.so")
    err, m = ctypes.create_string_buffer(512), ctypes.c_void_p()
    x, y = np.zeros((1, 1, 8, 8), np.float32), np.zeros((1, 10), np.float32)
    ins, outs = (ctypes.c_void_p * 1)(x.ctypes.data), (ctypes.c_void_p * 1)(y.ctypes.data)
    rc = lib.zsq_model_open(str(bad).encode(), ctypes.byref(m), err, 512)
    if rc == 0:  # (before the fix) the run fails in the glue and close pins the file
        lib.zsq_model_run(m, ins, outs, None, err, 512)
        lib.zsq_model_close(m)
    assert rc == -202 and want.encode() in err.value, err.value
    assert lib.zsq_model_open(str(exe.model_file).encode(), ctypes.byref(m), err, 512) == 0, \
        err.value
    assert lib.zsq_model_run(m, ins, outs, None, err, 512) == 0, err.value
    lib.zsq_model_close(m)


def test_threads_opening_and_running_at_once(digits, tmp_path):
    """One model per process also when threads open at once (ctypes releases the GIL):
    exactly one open succeeds, the others are ZSQ_MODEL_ERR_BUSY; runs from several
    threads take turns over the static arena and all give the serial results."""
    import threading

    _, exe, _ = digits
    shutil.copyfile(exe.shared_library, tmp_path / "lib_threads.so")
    lib = _api(tmp_path / "lib_threads.so")
    path = str(exe.model_file).encode()
    for _ in range(40):
        bar, rcs, handles = threading.Barrier(4), [], []

        def opener():
            m, err = ctypes.c_void_p(), ctypes.create_string_buffer(256)
            bar.wait()
            rcs.append(lib.zsq_model_open(path, ctypes.byref(m), err, 256))
            handles.append(m)

        ts = [threading.Thread(target=opener) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert sorted(rcs) == [-204, -204, -204, 0], rcs
        lib.zsq_model_close(handles[rcs.index(0)])
    m, err = ctypes.c_void_p(), ctypes.create_string_buffer(256)
    assert lib.zsq_model_open(path, ctypes.byref(m), err, 256) == 0, err.value
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((1, 1, 8, 8)).astype(np.float32) for _ in range(4)]

    def run_one(x, y, e):
        ins, outs = (ctypes.c_void_p * 1)(x.ctypes.data), (ctypes.c_void_p * 1)(y.ctypes.data)
        return lib.zsq_model_run(m, ins, outs, None, e, 256)

    refs = []
    for x in xs:
        y = np.zeros((1, 10), np.float32)
        assert run_one(x, y, err) == 0, err.value
        refs.append(y)
    bad = []

    def runner(k):
        y, e = np.zeros((1, 10), np.float32), ctypes.create_string_buffer(256)
        for _ in range(60):
            if run_one(xs[k], y, e) != 0 or not np.array_equal(y, refs[k]):
                bad.append((k, e.value))
                return

    ts = [threading.Thread(target=runner, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lib.zsq_model_close(m)
    assert bad == []


def test_an_unwritable_stdout_is_an_error(digits, tmp_path):
    _, exe, _ = digits
    with open("/dev/full", "w") as full:
        r = subprocess.run([str(exe.infer), str(exe.model_file)], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=300, check=False)
    assert r.returncode == 1 and "standard output" in error_line(r)
    with open("/dev/full", "w") as full:  # -q prints nothing: nothing to lose
        assert subprocess.run([str(exe.infer), str(exe.model_file), "-q"], stdout=full,
                              timeout=300, check=False).returncode == 0
