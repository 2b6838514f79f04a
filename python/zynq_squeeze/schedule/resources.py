"""Resource model of one generated engine: BRAM18K, DSP48, LUT and FF on a board.

BRAM is counted the way Vivado maps memories: every array is cut into the banks its
``ARRAY_PARTITION`` pragma implies (cyclic factor F -> F banks of ``ceil(depth/F)``
words), each bank is mapped onto RAMB18 primitives in the cheapest aspect ratio
(16Kx1, 8Kx2, 4Kx4, 2Kx9, 1Kx18, 512x36), ping-pong arrays count twice, and a bank of
at most ``LUTRAM_MAX_BITS`` bits goes to distributed (LUT) RAM instead, as Vitis HLS
does for small arrays.

DSP: one DSP48E1 per MAC lane, ``pe_oc * pe_ic`` lanes; no int8 packing (two int8
products in one DSP48E1 need a 27-bit pre-adder port that only DSP48E2 has). The
requantization stage has ``rq_lanes`` lanes of a 32 x 32 -> 64-bit multiply, 4 DSP48E1
each (25 x 18 slices: ceil(32/24) * ceil(32/17)).

LUT/FF are estimates (no synthesis here): per MAC lane the int32 accumulate adder and
operand registers (LUT_PER_MAC, FF_PER_MAC, from published 8-bit MAC arrays on 7-series
parts), per requant lane the rounding/shift/saturation logic, LUTRAM banks at one LUT per
64 bits, muxing per BRAM bank, plus a fixed base for the AXI masters, the AXI-Lite slave
and the control FSM. They are labelled estimates in every report.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..boards import Board
from ..engine.config import EngineConfig

# RAMB18 aspect ratios (depth, width) in simple dual-port mode.
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
LUTRAM_MAX_BITS = 1024
DSP_PER_MAC = 1
DSP_PER_REQUANT_LANE = 4
LUT_PER_MAC = 40
FF_PER_MAC = 50
LUT_PER_REQUANT_LANE = 180
FF_PER_REQUANT_LANE = 160
LUT_PER_BRAM_BANK = 12
LUT_BASE = 6_500   # 2 AXI4 masters, AXI-Lite slave, descriptor fetch, control FSM
FF_BASE = 8_000


@dataclass(frozen=True)
class Buffer:
    """One on-chip array: ``copies`` (2 = ping-pong) x ``banks`` banks, each
    ``bank_depth`` words of ``word_bits`` (a reshaped array packs several elements into
    one word: the MAC array reads ``pe_ic`` int8 values per access)."""

    name: str
    word_bits: int
    bank_depth: int
    banks: int = 1
    copies: int = 1

    @property
    def bits(self) -> int:
        return self.word_bits * self.bank_depth * self.banks * self.copies


def bram18_per_bank(depth: int, width_bits: int) -> int:
    """RAMB18 primitives for one depth x width memory (cheapest aspect ratio)."""
    if depth * width_bits <= LUTRAM_MAX_BITS:
        return 0
    return min(math.ceil(width_bits / w) * math.ceil(depth / d) for d, w in BRAM18_SHAPES)


def bank_capacity(depth: int, word_bits: int) -> int:
    """The largest depth that fits in the RAMB18 primitives ``depth`` words already need
    (BRAM comes in whole primitives: the rest of the last one is free)."""
    n = bram18_per_bank(depth, word_bits)
    if n == 0:
        return depth
    best = depth
    for d, w in BRAM18_SHAPES:
        per_row = math.ceil(word_bits / w)
        best = max(best, (n // per_row) * d)
    return best


def buffer_bram18k(buf: Buffer) -> int:
    """BRAM18K of one array with its partitioning and ping-pong copies."""
    return buf.copies * buf.banks * bram18_per_bank(buf.bank_depth, buf.word_bits)


def buffer_lutram_luts(buf: Buffer) -> int:
    """LUTs of an array that lives in distributed RAM (0 when it maps to BRAM)."""
    if bram18_per_bank(buf.bank_depth, buf.word_bits):
        return 0
    return buf.copies * buf.banks * buf.word_bits * math.ceil(buf.bank_depth / 64)


def engine_buffers(cfg: EngineConfig) -> list[Buffer]:
    """The engine's on-chip arrays as ``src/zsq_engine.cpp`` declares and partitions them
    (docs/ENGINE.md, "On-chip buffers"): activations and weights reshaped into
    ``pe_ic``-byte words, weights/accumulators/output tiles banked per MAC-array row,
    per-channel parameters per requantization lane; ``[2]`` arrays are ping-pong."""
    pi, po, rq = cfg.pe_ic, cfg.pe_oc, cfg.rq_lanes
    cd = math.ceil
    return [
        Buffer("in_buf", 8 * pi, cd(cfg.in_buf_bytes / pi), 1, copies=2),
        Buffer("w_buf", 8 * pi, cd(cd(cfg.w_buf_bytes / po) / pi), po, copies=2),
        Buffer("acc", 32, cd(cfg.acc_words / po), po, copies=2),
        Buffer("cv_buf", 8, cd(cfg.out_buf_bytes / po), po),
        Buffer("out_buf", 8, cd(cfg.out_buf_bytes / po), po, copies=2),
        Buffer("sq_buf", 8 * pi, cd(cfg.sq_buf_bytes / pi), 1),
        Buffer("bias", 32, cd(cfg.param_depth / rq), rq, copies=2),
        Buffer("mult", 32, cd(cfg.param_depth / rq), rq, copies=2),
        Buffer("shift", 8, cd(cfg.param_depth / rq), rq, copies=2),
    ]


@dataclass(frozen=True)
class ResourceUse:
    """Modeled use of one engine; ``buffers`` maps array name -> BRAM18K."""

    bram18k: int
    dsp: int
    lut: int
    ff: int
    mac_dsp: int
    buffers: dict

    def to_json(self) -> dict:
        return asdict(self)


def estimate(cfg: EngineConfig) -> ResourceUse:
    """BRAM18K, DSP48E1 and LUT/FF estimate of the engine ``cfg``."""
    bufs = engine_buffers(cfg)
    per = {b.name: buffer_bram18k(b) for b in bufs}
    macs = cfg.pe_oc * cfg.pe_ic
    dsp = macs * DSP_PER_MAC + cfg.rq_lanes * DSP_PER_REQUANT_LANE
    banks = sum(b.copies * b.banks for b in bufs if per[b.name])
    lut = (LUT_BASE + macs * LUT_PER_MAC + cfg.rq_lanes * LUT_PER_REQUANT_LANE
           + banks * LUT_PER_BRAM_BANK + sum(buffer_lutram_luts(b) for b in bufs))
    ff = FF_BASE + macs * FF_PER_MAC + cfg.rq_lanes * FF_PER_REQUANT_LANE
    return ResourceUse(bram18k=sum(per.values()), dsp=dsp, lut=lut, ff=ff, mac_dsp=macs,
                       buffers=per)


def fit_report(use: ResourceUse, board: Board) -> dict:
    """used / available / margin per resource on ``board``."""
    out = {}
    for key, avail in (("bram18k", board.bram18k), ("dsp", board.dsp), ("lut", board.lut),
                       ("ff", board.ff)):
        used = getattr(use, key)
        out[key] = {"used": used, "available": avail, "margin": avail - used,
                    "utilization": round(used / avail, 4)}
    out["lut"]["estimate"] = True
    out["ff"]["estimate"] = True
    return out


def fits(use: ResourceUse, board: Board, bram_util: float = 1.0, lut_util: float = 1.0
         ) -> bool:
    """Within the board's resources (BRAM and LUT optionally capped at a utilization)."""
    return (use.bram18k <= int(bram_util * board.bram18k) and use.dsp <= board.dsp
            and use.lut <= int(lut_util * board.lut) and use.ff <= board.ff)
