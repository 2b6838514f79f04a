"""Robustness of the program validators, the lowering, the glue and the HLS testbench
(issue 8, items 3, 4, 5, 9 and 10).

* register values that would overflow: the lowering refuses them (ScheduleError); both C
  validators (zsq_rt_validate, the simulation's checks) bound every field before they
  multiply it, checked under UBSan on extreme and random 32-bit values;
* tensor lifetimes: zsq_rt_validate refuses a STORE over a tensor still to be read, and
  the compiler's allocator never trips the check;
* the glue reads and writes tensor views at data + byte_offset and refuses NaN / Inf;
* the generated testbench validates its program files before the top runs them.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import conv_params, fire, rand_input, rt_validator, squeezenet11

from zynq_squeeze import native
from zynq_squeeze.codegen.dae_program import build_dae_program, reference_chain
from zynq_squeeze.codegen.hls_project import dae_config_header, write_hls_project
from zynq_squeeze.engine import isa
from zynq_squeeze.engine.dae_config import DaeConfig, DaeTile
from zynq_squeeze.errors import EngineError, ScheduleError
from zynq_squeeze.quantize.layers import ConvAddLayer, ConvLayer, PoolSpec
from zynq_squeeze.schedule.dae_tiling import default_tile
from zynq_squeeze.schedule.instructions import Emitter
from zynq_squeeze.toolchain import dae_sim

REPO = Path(__file__).resolve().parents[1]
# the C tests' small engine (K = 1): the chains tile spatially
CFG = DaeConfig(k=1, in_rows=512, w_rows=256, p_rows=16, acc_rows=512, cv_rows=512,
                sq_rows=512, out_rows=512)
ERR_ARENA, ERR_INSN = -101, -106
INT32_MAX = (1 << 31) - 1


def _conv_fire(seed=11):
    """conv(+maxpool) -> fire (two spatial tiles), its program and an input."""
    rng = np.random.default_rng(seed)
    conv = ConvLayer("conv1", (3, 19, 17), conv_params(rng, 8, 3, 3, stride=(2, 2)),
                     PoolSpec("max", (3, 3), (2, 2), ceil_mode=True))
    fr = fire(rng, "fire2", conv.out_shape, 4, 8, 8)
    layers = [conv, fr]
    prog = build_dae_program(CFG, layers, [default_tile(CFG, layer) for layer in layers])
    return layers, prog, rand_input(rng, conv.in_shape)


# -- zsq_rt_validate through ctypes ------------------------------------------------------

@pytest.fixture(scope="module")
def validate():
    """zsq_rt_validate(words, weights, arena_words) -> (code, message), from the csim
    runtime built for CFG (the validator does not depend on the engine's sizes)."""
    return rt_validator(CFG)


def _set(reg: int, value: int) -> int:
    return isa.set_reg(reg, value & 0xFFFFFFFF)


def _shift_base(words, base_reg: int, derived_reg: int, new_base: int, start: int = 0,
                stop: int | None = None) -> list[int]:
    """``words`` with the SETs of ``base_reg`` in [start, stop) set to ``new_base`` and
    those of its derived start address moved by the same amount (an edited program that
    still passes the derived-register check)."""
    out = [int(w) for w in words]
    stop = len(out) if stop is None else stop
    delta = None
    for i in range(start, stop):
        d = isa.decode(out[i])
        if d.op == isa.OP_SET and d.reg == base_reg:
            delta = new_base - d.value
            out[i] = _set(base_reg, new_base) | (out[i] & isa.DEP_MASK)
        elif d.op == isa.OP_SET and d.reg == derived_reg and delta is not None:
            out[i] = _set(derived_reg, d.value + delta) | (out[i] & isa.DEP_MASK)
    assert delta is not None, "no SET of the base register in range"
    return out


# -- item 3: register values that overflow ---------------------------------------------------

def test_lowering_refuses_register_values_outside_their_fields():
    em = Emitter(CFG)
    # isa.set_reg keeps the low 32 bits: 2**31 would reach the engine as -2**31
    assert isa.decode(isa.set_reg(isa.CV_TRIPS, 1 << 31)).value == -(1 << 31)
    for reg, value in ((isa.LI_H, INT32_MAX), (isa.CV_TRIPS, 1 << 31), (isa.ST_W, 0),
                       (isa.LI_Y0, -(1 << 15)), (isa.CV_KH, 33), (isa.LW_ADDR, -1)):
        with pytest.raises(ScheduleError, match="is outside its range"):
            em.set(reg, value)
    assert em.words == []
    em.set(isa.LI_H, 1 << 14)  # the bounds themselves are fine
    # a layer wider than the fields: refused when lowered, naming the layer and register
    rng = np.random.default_rng(0)
    wide = ConvLayer("wide", (8, 1, 20000), conv_params(rng, 8, 8, 1))
    with pytest.raises(ScheduleError, match=r"wide: register LI_W = 20000 is outside its "
                                            r"range \[1, 16384\]"):
        build_dae_program(CFG, [wide], [DaeTile(8, 8, 1, 64)])
    # a huge tile (as a tuning log could give) is clamped to the layer: the program is exact
    layers, prog, x = _conv_fire()
    big = build_dae_program(CFG, layers[:1], [DaeTile(8, 8, INT32_MAX, INT32_MAX)])
    y, _ = dae_sim.run_program(big, x)
    assert np.array_equal(y, reference_chain(layers[:1], x))


def _wrapping(op: int, words) -> list[int]:
    """Operands of ``op`` whose products wrap int64 to 0 (2^64), with the derived
    registers the wrapped products would match, SET before the first ``op`` of a real
    program: a trip count of 0 would make the engine skip the instruction."""
    if op == isa.OP_CONV:  # CV_TRIPS = rows*cols*og*KH*KW*NG = 2^16^4
        regs = {isa.CV_ROWS: 1 << 16, isa.CV_COLS: 1 << 16, isa.CV_OG: 1 << 16, isa.CV_KH: 1,
                isa.CV_KW: 1, isa.CV_SY: 1, isa.CV_SX: 1, isa.CV_SRC_COLS: 1,
                isa.CV_NG: 1 << 16, isa.CV_SRC_PITCH: 1, isa.CV_SRC_Y0: 0, isa.CV_SRC_X0: 0}
    elif op == isa.OP_REQUANT:  # RQ_TRIPS = 2^22 * 2^22 * 2^20
        regs = {isa.RQ_ROWS: 1 << 22, isa.RQ_COLS: 1 << 22, isa.RQ_OG: 1 << 20}
    else:  # POOL: PL_TRIPS = 2^16 * 2^16 * 2^16 * (2^8 * 2^8)
        regs = {isa.PL_ROWS: 1 << 16, isa.PL_COLS: 1 << 16, isa.PL_OG: 1 << 16,
                isa.PL_KH: 1 << 8, isa.PL_KW: 1 << 8, isa.PL_SY: 1, isa.PL_SX: 1,
                isa.PL_Y0: 0, isa.PL_X0: 0, isa.PL_SRC_ROWS: 1, isa.PL_SRC_COLS: 1 << 8}
    wrap = {k: ((v + (1 << 63)) % (1 << 64)) - (1 << 63) for k, v in isa.derived(op, regs).items()}
    assert all(-(1 << 31) <= v <= INT32_MAX for v in wrap.values())  # they would match
    at = next(i for i, w in enumerate(words) if int(w) & 15 == op)
    sets = [_set(r, v) for r, v in {**regs, **wrap}.items()]
    return [int(w) for w in words[:at]] + sets + [int(w) for w in words[at:]]


@pytest.mark.parametrize("op", [isa.OP_CONV, isa.OP_REQUANT, isa.OP_POOL],
                         ids=["conv", "requant", "pool"])
def test_validators_refuse_operands_whose_products_wrap(validate, op):
    """Before: zsq_rt_validate checked no compute field and compared int64 products that
    had wrapped to 0 with a trip count of 0: accepted (the board would skip the
    instruction and return zeros)."""
    _, prog, _ = _conv_fire()
    words = _wrapping(op, prog.words)
    at = next(i for i, w in enumerate(words) if w & 15 == op)
    rc, msg = validate(words, prog.weights, prog.arena_words)
    name = {isa.OP_CONV: "CONV", isa.OP_REQUANT: "REQUANT", isa.OP_POOL: "POOL"}[op]
    assert rc == ERR_INSN and f"instruction {at}: {name}: bad geometry" in msg, msg
    with pytest.raises(EngineError, match=f"{name}: bad geometry") as e:
        dae_sim.run_words(CFG, np.asarray(words, np.uint64), prog.weights,
                          np.zeros(prog.arena_words, np.uint64))
    assert e.value.code == -3


def _probe(tmp: Path) -> Path:
    """tests/c/overflow_probe.c with the runtime and the simulation, built with UBSan's
    signed-overflow check (no recovery: an overflow aborts the probe; the other checks
    are tests/test_sanitizers.py's, which knows Xilinx's deliberate shifts)."""
    ap = str(native.ap_types_dir())
    cfg = tmp / "cfg"
    cfg.mkdir()
    (cfg / "zsq_dae_config.h").write_text(dae_config_header(CFG, "overflow probe"))
    san = ["-O1", "-g", "-fsanitize=signed-integer-overflow", "-fno-sanitize-recover=all"]
    inc = [f"-I{cfg}", f"-I{REPO / 'src'}", f"-I{REPO / 'hls_runtime'}"]
    objs = []
    for src in (REPO / "hls_runtime" / "zsq_runtime.c", REPO / "hls_runtime" / "backends" / "csim.c",
                REPO / "tests" / "c" / "overflow_probe.c", REPO / "src" / "zsq_dae_sim.cpp"):
        obj = tmp / f"{src.stem}.o"
        cmd = (["gcc", "-std=c99"] if src.suffix == ".c" else
               ["g++", "-std=c++17", "-Wno-unknown-pragmas", "-isystem", ap])
        subprocess.run(cmd + san + inc + ["-c", str(src), "-o", str(obj)], check=True)
        objs.append(str(obj))
    exe = tmp / "overflow_probe"
    subprocess.run(["g++", "-fsanitize=signed-integer-overflow", *objs, "-o", str(exe)],
                   check=True)
    return exe


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("g++") is None,
                    reason="needs gcc and g++")
def test_validators_never_overflow_whatever_the_registers(tmp_path):
    """Every operand register of every instruction kind of a real program set to extreme
    and random 32-bit values (with its derived registers recomputed, so that only the
    products can stop them), through both validators built with UBSan: every program is
    refused, none overflows (before: signed int64 overflow in the derived-register
    products, an abort under UBSan)."""
    _, prog, _ = _conv_fire()
    res = _residual_program()
    rng = np.random.default_rng(3)
    # (program, instruction kind, flags its word must carry, operand registers): the
    # residual add's LOAD_BYPASS and REQUANT RQ_ADD (with its bypass rescaling) included
    cases = [(prog, op, 0, _operands(op)) for op in
             (isa.OP_LOAD_INPUT, isa.OP_CONV, isa.OP_REQUANT, isa.OP_POOL, isa.OP_STORE)]
    cases += [(res, isa.OP_LOAD_BYPASS, 0, _operands(isa.OP_LOAD_BYPASS)),
              (res, isa.OP_REQUANT, isa.RQ_ADD,
               _operands(isa.OP_REQUANT) + [isa.RQ_BP_MULT, isa.RQ_BP_SHIFT])]
    records = []
    for p, op, flags, regs in cases:
        words = [int(w) for w in p.words]
        at = next(i for i, w in enumerate(words) if w & 15 == op and w & flags == flags)
        fills = [dict.fromkeys(regs, INT32_MAX), dict.fromkeys(regs, -(1 << 31))]
        fills += [{r: int(v) for r, v in zip(regs, rng.integers(-(1 << 31), 1 << 31, len(regs)))}
                  for _ in range(40)]
        fills += [{r: int(v) for r, v in zip(regs, rng.integers(1 << 14, 1 << 24, len(regs)))}
                  for _ in range(40)]
        for values in fills:
            wrapped = {k: ((v + (1 << 63)) % (1 << 64)) - (1 << 63)
                       for k, v in isa.derived(op, values).items()}
            sets = [_set(r, v) for r, v in {**values, **wrapped}.items()]
            records.append((p, words[:at] + sets + words[at:]))
    data = bytearray()
    for p, w in records:
        data += np.asarray([len(w), len(p.weights), p.arena_words], "<i8").tobytes()
        data += np.asarray(w, "<u8").tobytes() + np.asarray(p.weights, "<u8").tobytes()
    (tmp_path / "programs.bin").write_bytes(bytes(data))
    r = subprocess.run([str(_probe(tmp_path)), str(tmp_path / "programs.bin")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "runtime error" not in r.stderr, r.stderr[-2000:]
    codes = [tuple(int(c) for c in line.split()) for line in r.stdout.splitlines()]
    assert len(codes) == len(records)
    assert all(rv != 0 and rs != 0 for rv, rs in codes), codes


def _residual_program():
    """conv -> conv + bypass (the first conv's output): LOAD_BYPASS and REQUANT RQ_ADD."""
    rng = np.random.default_rng(5)
    l1 = ConvLayer("c1", (16, 7, 6), conv_params(rng, 16, 16, 3, pads=(1,) * 4))
    l2 = ConvAddLayer("c2", l1.out_shape, conv_params(rng, 16, 16, 3, pads=(1,) * 4),
                      bypass="t1", bp_mult=20000, bp_shift=15)
    shapes = {"in0": (16, 7, 6), "t1": l1.out_shape, "t2": l2.out_shape}
    layers = [(l1, "in0", "t1"), (l2, "t1", "t2")]
    return build_dae_program(CFG, layers, [default_tile(CFG, x) for x, _, _ in layers], shapes,
                             ["in0"], ["t2"])


def _operands(op: int) -> list[int]:
    """The operand registers of ``op`` (the ones isa.derived reads, and the footprint's)."""
    ids = {isa.OP_LOAD_INPUT: range(isa.LI_BASE, isa.LI_PITCH + 1),
           isa.OP_LOAD_BYPASS: range(isa.LB_BASE, isa.LB_PITCH + 1),
           isa.OP_CONV: range(isa.CV_ROWS, isa.CV_SRC_X0 + 1),
           isa.OP_REQUANT: range(isa.RQ_ROWS, isa.RQ_VX1 + 1),
           isa.OP_POOL: range(isa.PL_ROWS, isa.PL_DST_ROW0 + 1),
           isa.OP_STORE: range(isa.ST_BASE, isa.ST_ROW0 + 1)}[op]
    return list(ids)


# -- item 10: tensor lifetimes ---------------------------------------------------------------

def test_compiled_programs_pass_the_lifetime_check(validate):
    """The allocator (first fit over [def, last use]) never puts two live tensors on the
    same words: the C tests' chains, a graph with a branch and a tensor nobody reads,
    and SqueezeNet 1.1 (random weights) for the default engine."""
    from test_ctest import _chains  # the programs the C tests run

    rng = np.random.default_rng(11)
    for name, layers in _chains(rng).items():
        prog = build_dae_program(CFG, layers, [default_tile(CFG, layer) for layer in layers])
        assert validate(prog.words, prog.weights, prog.arena_words) == (0, ""), name
    # "dead" is written by layer a and never read: it lives to the end like an output
    # (before: its words were given to y1, and the lifetime check refused the program)
    a = ConvLayer("a", (8, 9, 9), conv_params(rng, 16, 8, 1))
    b = ConvLayer("b", (8, 9, 9), conv_params(rng, 16, 8, 1))
    c = ConvLayer("c", (16, 9, 9), conv_params(rng, 8, 16, 1))
    cfg = DaeConfig()
    graph = [(a, "x", "dead"), (b, "x", "y1"), (c, "y1", "y2")]
    prog = build_dae_program(cfg, graph, [default_tile(cfg, lay) for lay, _, _ in graph],
                             {"x": (8, 9, 9), "dead": (16, 9, 9), "y1": (16, 9, 9),
                              "y2": (8, 9, 9)}, ["x"], ["y2"])
    t = prog.tensors
    assert t["dead"].base + t["dead"].words <= t["y1"].base or t["y1"].base + t["y1"].words <= t["dead"].base
    assert validate(prog.words, prog.weights, prog.arena_words) == (0, "")
    layers = squeezenet11(np.random.default_rng(1))
    prog = build_dae_program(cfg, layers, [default_tile(cfg, layer) for layer in layers])
    assert validate(prog.words, prog.weights, prog.arena_words) == (0, "")


def test_store_over_a_tensor_still_read_is_refused(validate):
    """fire2's STOREs moved onto its own input (conv1's output): its first output tile is
    written before its second input tile is read (a race between the store and the load
    modules, which only tokens order). Before: accepted; now ZSQ_RT_ERR_ARENA naming both
    tensors and the instruction."""
    _, prog, _ = _conv_fire()
    src, dst = prog.tensors[1], prog.tensors[2]
    start = prog.layer_ends[0] + 1
    words = _shift_base(prog.words, isa.ST_BASE, isa.ST_DST0, src.base, start)
    ops = [int(w) & 15 for w in words]
    src_written = ops.index(isa.OP_STORE)  # by conv1
    first_store = next(i for i in range(start, len(ops)) if ops[i] == isa.OP_STORE)
    last_load = max(i for i in range(start, len(ops)) if ops[i] == isa.OP_LOAD_INPUT)
    assert first_store < last_load  # the premise: the layer has two spatial tiles
    arena = src.base + dst.words  # room for the moved tensor: only the lifetimes are wrong
    rc, msg = validate(words, prog.weights, arena)
    assert rc == ERR_ARENA, msg
    assert (f"instruction {first_store}: the tensor at arena word {src.base} (4x4x1 words, "
            f"live over instructions [{src_written}, {last_load}]) overlaps the tensor at word "
            f"{src.base} (4x4x2 words, live over [{first_store}, end])") in msg, msg
    # two program inputs that share words are live together from the start
    inp = prog.input
    w2 = _shift_base(prog.words, isa.LI_BASE, isa.LI_SRC0, inp.base + 8, start)
    rc, msg = validate(w2, prog.weights, prog.arena_words)
    assert rc == ERR_ARENA and "instruction 0: the tensor at arena word 0" in msg, msg


# -- items 4 and 5: the glue (tensor views, NaN / Inf) ----------------------------------------

def _onnx(shape, seed=1):
    from onnx_graphs import GraphBuilder

    from zynq_squeeze.frontend import from_onnx

    g = GraphBuilder(shape, seed=seed)
    g.conv(8, 3, pad=1)
    return from_onnx(g.model())


@pytest.fixture(scope="module")
def patch_vm():
    """A 3-channel 3x3 conv (the glue writes patches: first-layer mode) compiled with
    tvm.compile(target="zynq-squeeze"), in a VirtualMachine."""
    import tvm
    from tvm import relax

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic calibration set
        ex = tvm.compile(_onnx((1, 3, 9, 9)), target="zynq-squeeze")
    return relax.VirtualMachine(ex, tvm.cpu())


@pytest.fixture(scope="module")
def plain_build(tmp_path_factory):
    """An 8-channel conv (plain quantizer), batch 2, built with zynq_squeeze.build: the VM
    and the offloaded function itself (exported and loaded)."""
    import tvm

    import zynq_squeeze

    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("plain")
    res = zynq_squeeze.build(_onnx((2, 8, 9, 9)), out_dir=out,
                             calibration=[rng.standard_normal((2, 8, 9, 9)).astype(np.float32)])
    res.export_library(out / "m.so")
    lib = tvm.runtime.load_module(str(out / "m.so"))
    fn = lib.get_function(res.partition_report.functions[0], query_imports=True)
    return res, fn


def _view(a: np.ndarray, pad_before: int, pad_after: int, fill: float):
    """A tvm tensor view of ``a``'s values at a non-zero byte_offset into a larger
    allocation filled with ``fill``; returns (view, backing tensor)."""
    import tvm

    flat = np.full(pad_before + a.size + pad_after, fill, np.float32)
    flat[pad_before:pad_before + a.size] = a.ravel()
    base = tvm.runtime.tensor(flat)
    view = base._create_view(a.shape, relative_byte_offset=4 * pad_before)
    return view, base


def test_glue_reads_and_writes_tensor_views(patch_vm, plain_build):
    """Before: the glue used DLTensor.data and ignored byte_offset: it read the values
    before the view and wrote its output over them."""
    import tvm

    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3, 9, 9)).astype(np.float32)
    want = patch_vm["main"](tvm.runtime.tensor(x)).numpy()
    view, _ = _view(x, 100, 50, 1e3)
    assert np.array_equal(view.numpy(), x)
    np.testing.assert_array_equal(patch_vm["main"](view).numpy(), want)
    # the offloaded function with an input view and an output view (plain quantizer)
    res, fn = plain_build
    x = rng.standard_normal((2, 8, 9, 9)).astype(np.float32)
    want = res.vm()["main"](tvm.runtime.tensor(x)).numpy()
    xv, _ = _view(x, 64, 16, -1e3)
    out = np.zeros(want.shape, np.float32)
    ov, obase = _view(out, 40, 24, 7.0)
    fn(xv, ov)
    np.testing.assert_array_equal(ov.numpy(), want)
    back = obase.numpy()
    assert np.all(back[:40] == 7.0) and np.all(back[40 + want.size:] == 7.0)  # nothing outside


def test_glue_refuses_nan_and_inf(patch_vm, plain_build):
    import tvm

    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 3, 9, 9)).astype(np.float32)
    for idx, bad in ((17, np.nan), (0, np.inf), (242, -np.inf)):
        y = x.copy()
        y.ravel()[idx] = bad
        with pytest.raises(ValueError, match=rf"zsq_\w+: input 0 contains NaN or Inf at element "
                                             rf"{idx}; the int8 accelerator cannot represent them"):
            patch_vm["main"](tvm.runtime.tensor(y))
    # the plain quantizer checks as it reads image 0; image 1 is checked before anything
    # runs: the output keeps what it held
    res, fn = plain_build
    x = rng.standard_normal((2, 8, 9, 9)).astype(np.float32)
    for idx in (17, 648 + 5):
        y = x.copy()
        y.ravel()[idx] = np.nan
        out = tvm.runtime.tensor(np.full((2, 8, 9, 9), 7.0, np.float32))
        with pytest.raises(ValueError, match=f"input 0 contains NaN or Inf at element {idx};"):
            fn(tvm.runtime.tensor(y), out)
        assert np.all(out.numpy() == 7.0)
        with pytest.raises(ValueError, match=f"at element {idx};"):
            res.vm()["main"](tvm.runtime.tensor(y))
    # a finite input still runs
    assert np.isfinite(res.vm()["main"](tvm.runtime.tensor(x)).numpy()).all()


# -- item 9: the generated testbench validates its files ---------------------------------------

@pytest.mark.skipif(shutil.which("g++") is None or shutil.which("make") is None,
                    reason="needs g++ and make")
def test_testbench_refuses_corrupted_program_files(tmp_path):
    layers, prog, x = _conv_fire()
    y = reference_chain(layers, x)
    hls = write_hls_project(tmp_path, program=prog, board="zybo-z7-20", model_name="tiny",
                            input=x, expected_output=y)
    env = dict(os.environ, AP_TYPES=str(native.ap_types_dir()))

    def make_tb():
        return subprocess.run(["make", "-s", "-C", str(hls), "tb"], capture_output=True,
                              text=True, env=env, timeout=600)

    r = make_tb()
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    good = (hls / "tb_insn.bin").read_bytes()

    def run_with(insn: bytes) -> str:
        (hls / "tb_insn.bin").write_bytes(insn)
        r = make_tb()
        assert r.returncode != 0, r.stdout
        direct = subprocess.run([str(hls / "tb_zsq_dae"), str(hls)], capture_output=True,
                                text=True, timeout=300)
        assert direct.returncode == 1, direct  # a FAIL, not a crash (a signal)
        return r.stdout

    words = [int(w) for w in prog.words]
    # an opcode byte flipped: LOAD_INPUT -> 12
    k = next(i for i, w in enumerate(words) if w & 15 == isa.OP_LOAD_INPUT)
    bad = list(words)
    bad[k] = (bad[k] & ~15) | 12
    out = run_with(np.asarray(bad, "<u8").tobytes())
    assert (f"FAIL: invalid program in tb_insn.bin / tb_wgt.bin (error -106: malformed "
            f"instruction stream: instruction {k}: unknown opcode 12)") in out, out
    # every LOAD_INPUT pointed 2^28 words past the arena (the derived start addresses
    # follow): before, the top read far outside its buffers (a crash)
    bad = _shift_base(words, isa.LI_BASE, isa.LI_SRC0, 1 << 28)
    out = run_with(np.asarray(bad, "<u8").tobytes())
    assert "FAIL: invalid program in tb_insn.bin / tb_wgt.bin (error -101: " in out, out
    assert f"LOAD_INPUT reads words [{1 << 28}, " in out, out
    # truncated, too long
    out = run_with(good[:-8])
    assert (f"FAIL: testbench data truncated: ./tb_insn.bin holds {len(good) - 8} bytes, "
            f"the program needs {len(words)} words") in out, out
    out = run_with(good + b"\0" * 8)
    assert "FAIL: testbench data too long" in out, out
    (hls / "tb_insn.bin").write_bytes(good)
    assert make_tb().returncode == 0
