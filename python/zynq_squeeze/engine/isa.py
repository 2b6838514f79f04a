"""The decoupled engine's instruction set: flat 64-bit words (docs/ENGINE.md).

Word layout: ``[3:0]`` opcode, ``[7:4]`` dependency flags (VTA's semantics: pop before
executing, push after), ``[8]`` buffer half, ``[15:9]`` opcode flags, and for ``SET``
``[23:16]`` register id and ``[63:32]`` its value (two's complement for signed values).
Numeric operands live in per-module registers, so every tile instruction is one word.
Mirrored by ``src/zsq_isa.h``; ``tests/test_isa.py`` checks the two agree.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..partitioning import limits

# Opcodes ([3:0]); 9 is LOAD_BYPASS (residual add, below); 10..14 are left for later
# operations (depthwise, standalone pool/concat).
OP_SET = 1
OP_LOAD_INPUT = 2
OP_LOAD_WEIGHT = 3
OP_LOAD_PARAMS = 4
OP_CONV = 5
OP_REQUANT = 6
OP_POOL = 7
OP_STORE = 8
OP_FINISH = 15
OPCODES = {OP_SET: "SET", OP_LOAD_INPUT: "LOAD_INPUT", OP_LOAD_WEIGHT: "LOAD_WEIGHT",
           OP_LOAD_PARAMS: "LOAD_PARAMS", OP_CONV: "CONV", OP_REQUANT: "REQUANT",
           OP_POOL: "POOL", OP_STORE: "STORE", OP_FINISH: "FINISH"}

# Dependency flags ([7:4]).
POP_PREV = 1 << 4
POP_NEXT = 1 << 5
PUSH_PREV = 1 << 6
PUSH_NEXT = 1 << 7
DEP_MASK = 0xF0

HALF = 1 << 8  # buffer half (in_buf / w_buf / p_buf / out_buf), by opcode

# Opcode flags ([15:9]).
CONV_SRC_SQ = 1 << 9      # read the fire squeeze buffer instead of in_buf
CONV_FIRST = 1 << 10      # first input-channel step: start from 0, not from acc
CONV_W_HALF = 1 << 11     # w_buf half (bit 8 is the in_buf half)
# --- depthwise convolution (issue 11 item 3): CONV flag bit 12 (bits 12..13 reserved)
CONV_DW = 1 << 12         # depthwise: PE_OC channels x one kernel tap per cycle (CV_NG = 1)
RQ_RELU = 1 << 9
RQ_AVG = 1 << 10          # constant (RQ_AVG_MULT, RQ_AVG_SHIFT), bias 0, no pre-shift
RQ_DST_SHIFT = 11         # [12:11] destination
RQ_DST_OUT, RQ_DST_CV, RQ_DST_SQ = 0, 1, 2
RQ_OUT_HALF = 1 << 13     # out_buf half (bit 8 is the p_buf half)
POOL_AVG = 1 << 9         # window sums into acc (else max into out_buf[bit 8])
# --- standalone pool / concat (issue 11 item 4): POOL flag bits 10..12
POOL_SRC_IN = 1 << 10     # read in_buf[POOL_IN_HALF] (a loaded tile) instead of cv_buf
POOL_IN_HALF = 1 << 11    # in_buf half of a POOL_SRC_IN (bit 8 is the out_buf half)

# Modules, by the register id's bits [7:6].
MODULE_LOAD, MODULE_COMPUTE, MODULE_STORE = 0, 1, 2
MODULES = ("load", "compute", "store")

# Registers. Load: input tile, weight block, params.
LI_BASE, LI_H, LI_W, LI_G, LI_Y0, LI_X0, LI_G0, LI_ROWS, LI_COLS, LI_NG, LI_PITCH = range(11)
LW_ADDR, LW_WORDS = 16, 17
LP_ADDR, LP_CHANNELS = 24, 25
# Compute: the convolution step, the requantization, the pool.
(CV_ROWS, CV_COLS, CV_OG, CV_KH, CV_KW, CV_SY, CV_SX, CV_SRC_COLS, CV_NG, CV_SRC_PITCH,
 CV_SRC_Y0, CV_SRC_X0) = range(64, 76)
(RQ_ROWS, RQ_COLS, RQ_OG, RQ_DST_PITCH, RQ_DST_ROW0, RQ_VY0, RQ_VY1, RQ_VX0, RQ_VX1,
 RQ_AVG_MULT, RQ_AVG_SHIFT) = range(80, 91)
(PL_ROWS, PL_COLS, PL_OG, PL_KH, PL_KW, PL_SY, PL_SX, PL_Y0, PL_X0, PL_SRC_ROWS,
 PL_SRC_COLS, PL_DST_PITCH, PL_DST_ROW0) = range(96, 109)
# Store: an out_buf region to a window of the output tensor.
(ST_BASE, ST_H, ST_W, ST_G, ST_Y0, ST_X0, ST_G0, ST_ROWS, ST_COLS, ST_NG, ST_PITCH,
 ST_ROW0) = range(128, 140)
# Derived registers: products of the ones above, computed by the compiler (``derived``)
# so that the engine has no runtime multiplier outside the MAC array and the
# requantization lanes; the simulation and the runtime check them (``derived``'s C twin
# in src/zsq_isa.h).
LI_SRC0, LI_ROW_STEP, LI_ROW_TRIPS, LI_ROW_PITCH = range(11, 15)
LI_LEFT, LI_SPAN, LI_RIGHT = range(26, 29)  # words of a row: zeros, DDR burst, zeros
(CV_TRIPS, CV_RED, CV_Q0, CV_KY_STEP, CV_OX_STEP, CV_OY_STEP, RQ_TRIPS, PL_TRIPS, PL_WIN,
 PL_S0, PL_WY_STEP, PL_PX_STEP, PL_PY_STEP) = range(112, 125)
ST_DST0, ST_ROW_STEP, ST_ROW_TRIPS, ST_ROW_PITCH = range(140, 144)

_REGISTER_NAMES = (
    "LI_BASE LI_H LI_W LI_G LI_Y0 LI_X0 LI_G0 LI_ROWS LI_COLS LI_NG LI_PITCH LW_ADDR LW_WORDS "
    "LP_ADDR LP_CHANNELS CV_ROWS CV_COLS CV_OG CV_KH CV_KW CV_SY CV_SX CV_SRC_COLS CV_NG "
    "CV_SRC_PITCH CV_SRC_Y0 CV_SRC_X0 RQ_ROWS RQ_COLS RQ_OG RQ_DST_PITCH RQ_DST_ROW0 RQ_VY0 "
    "RQ_VY1 RQ_VX0 RQ_VX1 RQ_AVG_MULT RQ_AVG_SHIFT PL_ROWS PL_COLS PL_OG PL_KH PL_KW PL_SY "
    "PL_SX PL_Y0 PL_X0 PL_SRC_ROWS PL_SRC_COLS PL_DST_PITCH PL_DST_ROW0 ST_BASE ST_H ST_W ST_G "
    "ST_Y0 ST_X0 ST_G0 ST_ROWS ST_COLS ST_NG ST_PITCH ST_ROW0 LI_SRC0 LI_ROW_STEP "
    "LI_ROW_TRIPS LI_ROW_PITCH CV_TRIPS CV_RED CV_Q0 CV_KY_STEP CV_OX_STEP CV_OY_STEP "
    "RQ_TRIPS PL_TRIPS PL_WIN PL_S0 PL_WY_STEP PL_PX_STEP PL_PY_STEP ST_DST0 ST_ROW_STEP "
    "ST_ROW_TRIPS ST_ROW_PITCH LI_LEFT LI_SPAN LI_RIGHT").split()

# --- residual add (issue 11 item 2): LOAD_BYPASS reads the bypass tile of an output tile
# into bp_buf[half]; REQUANT with RQ_ADD adds it, rescaled by (RQ_BP_MULT, RQ_BP_SHIFT),
# to the requantized conv term before ReLU and saturation (docs/ENGINE.md "Residual add").
OP_LOAD_BYPASS = 9
OPCODES[OP_LOAD_BYPASS] = "LOAD_BYPASS"
RQ_ADD = 1 << 14          # REQUANT: add the bypass word of bp_buf[RQ_BP_HALF]
RQ_BP_HALF = 1 << 15      # bp_buf half read by an RQ_ADD REQUANT
(LB_BASE, LB_H, LB_W, LB_G, LB_Y0, LB_X0, LB_G0, LB_ROWS, LB_COLS, LB_NG,
 LB_PITCH) = range(32, 43)
LB_SRC0, LB_ROW_STEP, LB_ROW_TRIPS, LB_ROW_PITCH = range(43, 47)  # derived
RQ_BP_MULT, RQ_BP_SHIFT = 91, 92
_REGISTER_NAMES += ("LB_BASE LB_H LB_W LB_G LB_Y0 LB_X0 LB_G0 LB_ROWS LB_COLS LB_NG LB_PITCH "
                    "LB_SRC0 LB_ROW_STEP LB_ROW_TRIPS LB_ROW_PITCH RQ_BP_MULT "
                    "RQ_BP_SHIFT").split()

# --- unsigned activations (issue 11, zero points; docs/ENGINE.md "Arithmetic"): a tensor
# after a ReLU is stored as int8 with zero point -128 (q = round(x / s) - 128, s = absmax /
# 255). Every register reads 0 = a zero point of 0, today's arithmetic, bit for bit.
LI_PAD = 48               # LOAD_INPUT: the byte written outside the image (input's zero point)
RQ_ZP_OUT = 93            # REQUANT: y = clamp(R(acc) + zp_out, -128, 127); ReLU: y >= zp_out
RQ_BP_ZP = 94             # REQUANT with RQ_ADD: the bypass term is R(b - bp_zp) (9-bit subtract)
RQ_AVG_BIAS = 95          # REQUANT with RQ_AVG: the window sum's offset, -d * zp_in
_REGISTER_NAMES += "LI_PAD RQ_ZP_OUT RQ_BP_ZP RQ_AVG_BIAS".split()

REGISTERS = {name: globals()[name] for name in _REGISTER_NAMES}
N_REGS = 64  # per module


def derived(op: int, r) -> dict[int, int]:
    """The derived registers instruction ``op`` reads, from the module's registers ``r``
    (a mapping register id -> value). One definition: the compiler emits these values,
    the simulation and the runtime recompute and compare them (src/zsq_isa.h)."""
    if op == OP_LOAD_INPUT:
        g, w, x0, cols, ng = r[LI_G], r[LI_W], r[LI_X0], r[LI_COLS], r[LI_NG]
        # the valid columns [cl, cr) of every row of the tile
        cl = min(-x0 if x0 < 0 else 0, cols)
        cr = max(w - x0 if x0 + cols > w else cols, cl)
        return {LI_SRC0: r[LI_BASE] + (r[LI_Y0] * w + x0 + cl) * g + r[LI_G0],
                LI_ROW_STEP: w * g, LI_ROW_TRIPS: cols * ng,
                LI_ROW_PITCH: cols * r[LI_PITCH], LI_LEFT: cl * ng,
                LI_SPAN: (cr - cl) * ng, LI_RIGHT: (cols - cr) * ng}
    if op == OP_CONV:
        sp, sc = r[CV_SRC_PITCH], r[CV_SRC_COLS]
        red = r[CV_KH] * r[CV_KW] * r[CV_NG]
        return {CV_RED: red, CV_TRIPS: r[CV_ROWS] * r[CV_COLS] * r[CV_OG] * red,
                CV_Q0: (r[CV_SRC_Y0] * sc + r[CV_SRC_X0]) * sp,
                CV_KY_STEP: (sc - r[CV_KW]) * sp, CV_OX_STEP: r[CV_SX] * sp,
                CV_OY_STEP: r[CV_SY] * sc * sp}
    if op == OP_REQUANT:
        return {RQ_TRIPS: r[RQ_ROWS] * r[RQ_COLS] * r[RQ_OG]}
    if op == OP_POOL:
        og, sc = r[PL_OG], r[PL_SRC_COLS]
        win = r[PL_KH] * r[PL_KW]
        return {PL_WIN: win, PL_TRIPS: r[PL_ROWS] * r[PL_COLS] * og * win,
                PL_S0: (r[PL_Y0] * sc + r[PL_X0]) * og, PL_WY_STEP: (sc - r[PL_KW]) * og,
                PL_PX_STEP: r[PL_SX] * og, PL_PY_STEP: r[PL_SY] * sc * og}
    if op == OP_LOAD_BYPASS:  # residual add: the bypass tile, always inside its tensor
        g, w = r[LB_G], r[LB_W]
        return {LB_SRC0: r[LB_BASE] + (r[LB_Y0] * w + r[LB_X0]) * g + r[LB_G0],
                LB_ROW_STEP: w * g, LB_ROW_TRIPS: r[LB_COLS] * r[LB_NG],
                LB_ROW_PITCH: r[LB_COLS] * r[LB_PITCH]}
    if op == OP_STORE:
        g, w = r[ST_G], r[ST_W]
        return {ST_DST0: r[ST_BASE] + (r[ST_Y0] * w + r[ST_X0]) * g + r[ST_G0],
                ST_ROW_STEP: w * g, ST_ROW_TRIPS: r[ST_COLS] * r[ST_NG],
                ST_ROW_PITCH: r[ST_COLS] * r[ST_PITCH]}
    return {}


def module_of(reg: int) -> int:
    """The module (MODULE_LOAD/COMPUTE/STORE) that owns register ``reg``."""
    return (reg >> 6) & 3


def set_reg(reg: int, value: int, deps: int = 0) -> int:
    """``SET reg, value`` as a 64-bit word (value: a signed or unsigned 32-bit int).

    ``deps`` (POP_*/PUSH_* flags) make the SET a barrier of its module: it waits for and
    raises tokens like any instruction (layer boundaries, extra token pops).
    """
    if not 0 <= reg < 3 * N_REGS:
        raise ValueError(f"register id {reg} out of range")
    if not -(1 << 31) <= value < (1 << 32):
        raise ValueError(f"register value {value} does not fit 32 bits")
    if deps & ~DEP_MASK:
        raise ValueError(f"deps {deps:#x} outside bits [7:4]")
    return OP_SET | deps | (reg << 16) | ((value & 0xFFFFFFFF) << 32)


def insn(op: int, flags: int = 0) -> int:
    """A tile instruction word: opcode | dependency flags | half | opcode flags."""
    if op not in OPCODES or op == OP_SET:
        raise ValueError(f"not a tile opcode: {op}")
    if flags & ~0xFFF0:
        raise ValueError(f"flags {flags:#x} outside bits [15:4]")
    return op | flags


@dataclass(frozen=True)
class Decoded:
    """One decoded word (for printing programs and for the fast model)."""

    op: int
    flags: int
    reg: int = -1
    value: int = 0

    @property
    def name(self) -> str:
        return OPCODES.get(self.op, f"OP{self.op}")

    def text(self) -> str:
        if self.op == OP_SET:
            names = {v: k for k, v in REGISTERS.items()}
            return f"SET {names.get(self.reg, self.reg)} = {self.value}"
        deps = [n for n, b in (("pop_prev", POP_PREV), ("pop_next", POP_NEXT),
                               ("push_prev", PUSH_PREV), ("push_next", PUSH_NEXT))
                if self.flags & b]
        return f"{self.name} flags={self.flags >> 8:#x}" + (f" [{' '.join(deps)}]" if deps else "")


def decode(word: int) -> Decoded:
    """Split a 64-bit word into its fields (the SET value sign-extended)."""
    op = word & 0xF
    if op == OP_SET:
        value = (word >> 32) & 0xFFFFFFFF
        if value >= 1 << 31:
            value -= 1 << 32
        return Decoded(op, word & DEP_MASK, (word >> 16) & 0xFF, value)
    return Decoded(op, word & 0xFFF0)


def module_for(word: int) -> int:
    """The command queue fetch routes ``word`` to (FINISH goes to every module)."""
    d = decode(word)
    if d.op == OP_SET:
        return module_of(d.reg)
    if d.op in (OP_LOAD_INPUT, OP_LOAD_WEIGHT, OP_LOAD_PARAMS, OP_LOAD_BYPASS):
        return MODULE_LOAD
    if d.op in (OP_CONV, OP_REQUANT, OP_POOL):
        return MODULE_COMPUTE
    if d.op == OP_STORE:
        return MODULE_STORE
    raise ValueError(f"word {word:#018x} has no single module (opcode {d.op})")


_C_CONSTANTS = ("OP_SET OP_LOAD_INPUT OP_LOAD_WEIGHT OP_LOAD_PARAMS OP_CONV OP_REQUANT OP_POOL "
                "OP_STORE OP_FINISH POP_PREV POP_NEXT PUSH_PREV PUSH_NEXT HALF CONV_SRC_SQ "
                "CONV_FIRST CONV_W_HALF RQ_RELU RQ_AVG RQ_DST_SHIFT RQ_DST_OUT RQ_DST_CV "
                "RQ_DST_SQ RQ_OUT_HALF POOL_AVG MODULE_LOAD MODULE_COMPUTE MODULE_STORE "
                "N_REGS").split()
_C_CONSTANTS.append("CONV_DW")  # depthwise convolution (issue 11 item 3)


# --- standalone pool / concat (issue 11 item 4)
_C_CONSTANTS += ["POOL_SRC_IN", "POOL_IN_HALF"]
_C_CONSTANTS += "OP_LOAD_BYPASS RQ_ADD RQ_BP_HALF".split()  # residual add


def c_header() -> str:
    """``src/zsq_isa.h``: the ISA's constants for the C++ engine and the C runtime
    (tests/test_isa.py checks the committed file equals this)."""
    lines = ["/*", " * zsq_isa.h - the decoupled engine's instruction set (docs/ENGINE.md).", " *",
             " * Generated by zynq_squeeze.engine.isa.c_header(); tests/test_isa.py checks the",
             " * two agree. One instruction = one 64-bit word: [3:0] opcode, [7:4] dependency",
             " * flags, [8] buffer half, [15:9] opcode flags; SET: [23:16] register id, [63:32]",
             " * value.", " */", "#ifndef ZSQ_ISA_H", "#define ZSQ_ISA_H", ""]
    g = globals()
    lines += [f"#define ZSQ_{name} {g[name]}" for name in _C_CONSTANTS]
    lines.append("")
    lines += [f"#define ZSQ_{name} {v}" for name, v in sorted(REGISTERS.items(), key=lambda kv: kv[1])]
    lines += ["", "/* Geometry limits of the fields (partitioning/limits.py: the partitioner keeps",
              " * layers beyond them on the CPU; the validators reject programs beyond them). */"]
    lines += [f"#define ZSQ_LIMIT_{name} {getattr(limits, 'MAX_' + name)}" for name in
              ("SPATIAL", "CHANNEL_GROUPS", "KERNEL_FIELD", "STRIDE_FIELD", "PAD")]
    lines += ["", "#endif /* ZSQ_ISA_H */", ""]
    return "\n".join(lines)
