"""The instruction set: encoding, the C header generated from it, and the derived
registers (the compiler's products that replace the engine's runtime multipliers)."""
import ctypes
import subprocess

import numpy as np
import pytest
from helpers import conv_params
from hypothesis import given, settings
from hypothesis import strategies as st

from zynq_squeeze import native
from zynq_squeeze.codegen.dae_program import build_dae_program
from zynq_squeeze.engine import isa
from zynq_squeeze.engine.dae_config import DaeConfig, DaeTile
from zynq_squeeze.errors import EngineError
from zynq_squeeze.quantize.layers import ConvLayer
from zynq_squeeze.toolchain import compiler
from zynq_squeeze.toolchain.dae_sim import run_words


def test_committed_header_is_generated():
    assert (native.src_dir() / "zsq_isa.h").read_text() == isa.c_header()


def test_encode_decode():
    w = isa.set_reg(isa.CV_Q0, -5, isa.POP_NEXT)
    d = isa.decode(w)
    assert (d.op, d.reg, d.value, d.flags) == (isa.OP_SET, isa.CV_Q0, -5, isa.POP_NEXT)
    assert isa.module_for(w) == isa.MODULE_COMPUTE
    assert isa.module_for(isa.set_reg(isa.ST_DST0, 1)) == isa.MODULE_STORE
    w = isa.insn(isa.OP_CONV, isa.HALF | isa.CONV_FIRST | isa.PUSH_PREV)
    assert isa.decode(w).flags == isa.HALF | isa.CONV_FIRST | isa.PUSH_PREV
    assert "CONV" in isa.decode(w).text() and "push_prev" in isa.decode(w).text()
    with pytest.raises(ValueError, match="register id"):
        isa.set_reg(200, 0)
    with pytest.raises(ValueError, match="32 bits"):
        isa.set_reg(isa.LI_H, 1 << 32)
    with pytest.raises(ValueError, match="not a tile opcode"):
        isa.insn(isa.OP_SET)
    with pytest.raises(ValueError, match="no single module"):
        isa.module_for(isa.OP_FINISH)
    assert len(set(isa.REGISTERS.values())) == len(isa.REGISTERS)
    assert all(isa.module_of(r) < 3 for r in isa.REGISTERS.values())


SHIM = r"""
#include <stdint.h>
#include "zsq_isa_derived.h"
extern "C" int derived(int op, const int32_t *r, int *ids, int64_t *vals) {
  return zsq_isa_derived(op, r, ids, vals);
}
extern "C" int derived_ok(int op, const int32_t *r) { return zsq_isa_derived_ok(op, r); }
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    _, cxx, flags = compiler.toolchain(True)
    d = tmp_path_factory.mktemp("isa")
    (d / "shim.cpp").write_text(SHIM)
    subprocess.run([cxx, *flags, "-shared", "-I", str(native.src_dir()), str(d / "shim.cpp"),
                    "-o", str(d / "shim.so")], check=True, capture_output=True)
    return ctypes.CDLL(str(d / "shim.so"))


OPS = [isa.OP_LOAD_INPUT, isa.OP_CONV, isa.OP_REQUANT, isa.OP_POOL, isa.OP_STORE,
       isa.OP_LOAD_BYPASS]


@settings(max_examples=200, deadline=None)
# Operands up to 1400: a derived register is a product of up to six of them, and
# 1400**6 < 2**63. The C twin's contract is that callers bound the operands first (the
# validators' ZSQ_LIMIT_* checks); beyond int64 it overflows, as documented.
@given(st.sampled_from(OPS), st.lists(st.integers(-300, 1400), min_size=64, max_size=64))
def test_c_twin_of_derived(shim, op, values):
    module = {isa.OP_LOAD_INPUT: 0, isa.OP_LOAD_BYPASS: 0, isa.OP_STORE: 2}.get(op, 1)
    regs = np.array(values, dtype=np.int32)
    view = {module * 64 + i: int(v) for i, v in enumerate(values)}
    want = isa.derived(op, view)
    ids = (ctypes.c_int * 8)()
    vals = (ctypes.c_int64 * 8)()
    n = shim.derived(op, regs.ctypes.data_as(ctypes.c_void_p), ids, vals)
    assert {ids[i]: vals[i] for i in range(n)} == want
    for reg, v in want.items():
        if -(1 << 31) <= v < 1 << 31:
            regs[reg & 63] = v
    ok = all(-(1 << 31) <= v < 1 << 31 for v in want.values())
    assert shim.derived_ok(op, regs.ctypes.data_as(ctypes.c_void_p)) == int(ok)


def test_engine_rejects_an_inconsistent_derived_register():
    """A program whose stride registers do not match its operands is refused before it
    runs (the engine would read its buffers with the wrong strides)."""
    rng = np.random.default_rng(0)
    layer = ConvLayer("c", (16, 6, 7), conv_params(rng, 24, 16, 3, pads=(1,) * 4))
    cfg = DaeConfig()
    prog = build_dae_program(cfg, [layer], [DaeTile(24, 16, 6, 7)])
    words = [int(w) for w in prog.words]
    k = next(i for i, w in enumerate(words)
             if w & 15 == isa.OP_SET and (w >> 16) & 0xFF == isa.CV_OY_STEP)
    words[k] = isa.set_reg(isa.CV_OY_STEP, isa.decode(words[k]).value + 1)
    with pytest.raises(EngineError) as e:
        run_words(cfg, np.array(words, np.uint64), prog.weights,
                  np.zeros(prog.arena_words, np.uint64))
    assert e.value.code == -3 and "derived register" in str(e.value)


def test_bypass_registers_mirror_the_input_registers():
    """zsq_rt_check_io reads LOAD_BYPASS's window as LOAD_INPUT's, 32 registers up."""
    for f in ("BASE", "H", "W", "G", "Y0", "X0", "G0", "ROWS", "COLS", "NG", "PITCH"):
        assert isa.REGISTERS[f"LB_{f}"] == isa.REGISTERS[f"LI_{f}"] + 32, f
    assert isa.module_for(isa.insn(isa.OP_LOAD_BYPASS)) == isa.MODULE_LOAD
    # the residual add's resources stay in its allocated ranges (rules: 32..47, 91..95)
    for name, reg in isa.REGISTERS.items():
        if name.startswith("LB_"):
            assert 32 <= reg <= 47, name
    assert {isa.RQ_BP_MULT, isa.RQ_BP_SHIFT} <= set(range(91, 96))
    assert isa.RQ_ADD == 1 << 14 and isa.RQ_BP_HALF == 1 << 15
