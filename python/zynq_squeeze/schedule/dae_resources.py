"""Resource model of the decoupled engine (docs/ENGINE.md): BRAM18K, DSP48, LUT and FF
of one ``DaeConfig``, as ``src/zsq_dae_top.cpp`` and ``src/zsq_dae.h`` build it.

BRAM18K -- every array is cut into the banks its ``ARRAY_PARTITION ... complete`` pragmas
imply (``dae_arrays``; tests/test_dae_resources.py parses the source and checks the list):

=========  ===========================  ======================  =====================
array      declaration                  banks                   bank
=========  ===========================  ======================  =====================
in_buf     ``[2][K][IN_ROWS]`` 64 bit    2 halves x K            in_rows x 64 bit
w_buf      ``[2][PE_OC][W_ROWS]``        2 halves x PE_OC        w_rows x 64 bit
p_buf      ``[2][PE_OC][P_ROWS]``        2 halves x PE_OC        p_rows x 64 bit
out_buf    ``[2][K][OUT_ROWS]``          2 halves x K            out_rows x 64 bit
acc        ``[ACC_ROWS][PE_OC]`` int32   PE_OC (dim 2)           acc_rows x 32 bit
cv_buf     ``[K][CV_ROWS]``              K                       cv_rows x 64 bit
sq_buf     ``[K][SQ_ROWS]``              K                       sq_rows x 64 bit
bp_buf     ``[2][K][BP_ROWS]``           2 halves x K            bp_rows x 64 bit
=========  ===========================  ======================  =====================

Each bank (halves counted separately: each half is its own memory in the DATAFLOW region)
goes on RAMB18 primitives in the cheapest aspect ratio (512x36, 1Kx18, 2Kx9, 4Kx4, 8Kx2,
16Kx1: a 64-bit bank costs 2 RAMB18 per 512 rows, a 32-bit one 1 per 512 rows), unless it
is small enough for distributed RAM. The LUTRAM rule (``bank_storage``): a bank of at most
``LUTRAM_MAX_DEPTH`` = 64 rows or at most ``LUTRAM_MAX_BITS`` = 1024 bits is LUTRAM -- one
RAM64M/RAM32M column (7-series SLICEM: 64 x 3 or 32 x 6 bits of simple dual-port RAM per 4
LUTs) costs fewer LUTs there than a whole RAMB18 is worth. Vivado's ``ram_style=auto``
heuristic is undocumented (UG901), so the engine search keeps ``p_rows`` <= 64 and the
source binds ``p_buf`` with ``#pragma HLS BIND_STORAGE variable=p_buf type=ram_2p
impl=lutram`` (``SUGGESTED_PRAGMAS``) to make the mapping a decision, not a heuristic.

Stream FIFOs (``dae_fifos``): an ``hls::stream`` deeper than ``SRL_MAX_DEPTH`` = 32 is a
memory FIFO (same RAMB18 rule: a 512 x 64-bit command queue is 2 RAMB18), shallower ones
are SRL shift registers (SRLC32E: one LUT per bit per 32 entries). The m_axi adapters keep
a data buffer of ``outstanding x burst`` beats per direction (CONFIG_INTERFACE: 8 x 16 =
128 x (64 data + 8 strobe/last) bits -> 2 RAMB18 each).

DSP48 -- one per MAC product (``pe_oc * 8``, ``BIND_OP impl=dsp`` in ``zsqd_mac_array``;
no int8 packing: two products in one DSP48E1 need DSP48E2's wide pre-adder), one per
requantization lane (``pe_oc``: a 25 x 17-bit product, ``BIND_OP impl=dsp`` in
``zsqd_requant``), and nothing else. A depthwise step (``CONV_DW``) runs on the same MAC
array (one instance): row ``o`` takes its own channel group's word instead of the
broadcast one, and the weight word carries one nonzero byte, so it adds no DSP48 (on the
Zybo 216 of 220 are in use at k = 3), only a 2:1 word mux per bank (``bank_muxes``) and
one source-row counter; it uses 1 product of the 8 per row (pe_oc MACs per cycle). Nothing
else multiplies: strides, trip counts and start addresses are
*derived registers* the compiler computes (``engine/isa.py`` ``derived``; the simulation
and the runtime check them), so the engine has no setup multiply (``SETUP_MULS`` is
empty and the test finds no runtime product in the synthesized source). The
``setup_mul_impl`` switch and ``DSP_PER_SETUP_MUL`` / ``LUT_PER_SETUP_MUL`` stay for
sources that reintroduce one (a 32 x 32 -> 32-bit product: 3 DSP48E1, or ~300 LUT).

LUT / FF -- estimates (no synthesis here), per construct, each with its basis:

* ``M_AXI_READ`` / ``M_AXI_WRITE`` (LUT, FF) per direction of a Vitis HLS m_axi adapter
  with 64-bit addresses and data, 16-beat bursts, 8 outstanding (engine.interface
  CONFIG_INTERFACE): address generation, burst splitting, response tracking; typical
  csynth figures for such adapters. Bundles: gmem_insn, gmem_wgt, gmem_rd read; gmem_wr
  writes.
* ``S_AXILITE``: the control slave (ap_ctrl, GIE/IER/ISR, four 64-bit addresses, the
  instruction count, the 64-bit cycle counter with ap_vld): about 14 32-bit registers plus
  the AXI-Lite handshake.
* ``SMARTCONNECT_DATA`` per m_axi bundle and ``SMARTCONNECT_CTRL`` (block_design.tcl: one
  1x1 SmartConnect per HP port converting AXI4 / 64-bit addresses to AXI3, one for GP0 ->
  s_axi_control) and ``PROC_SYS_RESET``: SmartConnect 1x1 with protocol conversion is
  about 1k LUT (register slices, ID/burst conversion), the AXI-Lite one about half.
* Stream FIFOs: memory FIFO control ``FIFO_MEM_CTRL`` (read/write pointers, full/empty);
  SRL FIFOs one LUT per bit per 32 entries plus ``FIFO_SRL_CTRL``.
* MAC array, per output channel (``MAC_TREE_PER_OC``): the adder tree of 8 16-bit
  products (4 x 17 + 2 x 18 + 1 x 19 = 123 adder bits, one LUT per bit on CARRY4 chains)
  plus the 32-bit accumulate (its initial-value mux folds into the adder LUTs): 155 LUT;
  FF: 8 x 16 product registers + 123 tree stage bits + 32 sum bits ~ 285.
* Requantization lane (``REQUANT_PER_LANE``): 33-bit bias add (33), pre-shift barrel 33
  bits x 4 stages as 4:1 LUT muxes (66), rounding constant ``1 << (shift-1)`` decoder (42),
  42-bit rounding add (42), 42-bit shift by 0..63 (3 levels of 4:1 muxes: 126), ReLU and
  saturation compares and the output mux (30), average-pool operand muxes (26): ~365 ->
  370 LUT; ~220 FF of pipeline registers (depth ZSQD_DEPTH_RQ = 8).
* Residual add lane (``BYPASS_PER_LANE``, pe_oc lanes, ``zsqd_requant`` with ``add``): the
  8 x 16-bit bypass product in fabric (``BIND_OP impl=fabric``: ~64 partial-product LUTs
  plus a 24-bit adder chain, ~80), the 42-bit rounding add (42), the shift by 1..40 (3
  levels of 4:1 muxes over 42 bits: 126) and the add into the conv term (22 bits used):
  ~270 LUT; ~90 FF of pipeline registers. bp_buf's half select (2:1 x 64 per bank) is in
  the bank muxes; the load module's bypass loop adds three counters. An engine built
  without the residual add (``DaeConfig.residual`` False, ``ZSQD_RESIDUAL 0``: the engine
  search's choice for models without one) has none of it, and no bp_buf.
* Zero points (``ZERO_POINT_PER_LANE``, pe_oc requantization lanes, docs/ENGINE.md
  "Arithmetic: zero points"): the 8-bit add of ``RQ_ZP_OUT`` after ReLU (the lane's
  existing wide saturation compares clamp to [-256, 255], then a 10-bit add and 10-bit
  compares: ~10; ``zsqd_requant``), the output byte outside the valid window from the
  register instead of a constant 0 (8), the average's bias operand from ``RQ_AVG_BIAS``
  instead of 0 (25 bits of the existing 2:1 mux, now not constant-folded: ~9): ~27 LUT,
  8 FF. With the residual add (``BP_ZERO_POINT_PER_LANE``) the 9-bit subtract ``b -
  RQ_BP_ZP`` (9) and the bypass product one bit wider (~9): ~18 LUT, 9 FF. LOAD_INPUT's
  pad word (``LI_PAD`` replicated to 8 bytes: wiring) replaces the constant 0 of the
  in_buf write data: a 2:1 x 64 mux (64 LUT).
* Wide requantization multiplier (``WIDE_RQ_PER_LANE``, pe_oc lanes, ``DaeConfig.wide_rq``,
  ``ZSQD_WIDE_RQ``: QDQ models): mult is 22 bits, a x mult[21:5] stays on the lane's
  DSP48E1 and a x mult[4:0] is a 25 x 5-bit product in fabric (``BIND_OP impl=fabric``:
  5 partial products of 25 bits summed by two ternary adder levels, ~30 + ~30 LUT), the
  47-bit add of the two products (47), the rounding add, constant decoder and the shift
  6 bits wider (48 instead of 42: 6 + 5 + 18), the bypass product 9 x 22 instead of
  9 x 16 bits (~20, residual engines only, counted here always): ~156 LUT; ~60 FF
  (the low product and the wider sum registered once). The params word's mult field
  is read 6 bits wider (``PARAM_BITS_USED``, the p_buf half select). An engine without
  it (the search's choice for models whose multipliers fit 15 bits) has none of it.
* Pool lane (``POOL_PER_LANE``, pe_oc lanes): a 32-bit add (avg), an 8-bit-vs-32 compare and
  a 3:1 select of the 32-bit running value: 75 LUT, 45 FF.
* Bank read muxes (``mux_luts``): an n:1 mux costs ceil((n-1)/3) LUT6 per bit: CONV source
  word from 2K in_buf banks + K sq_buf banks (3K:1 x 64), store from 2K out_buf banks, the
  half select of every w_buf bank (2:1 x 64 x pe_oc) and p_buf lane (2:1 x 60 x pe_oc),
  the acc write data (CONV sum / POOL sum, 2:1 x 32 x pe_oc), out_buf write data
  (REQUANT / POOL, 2:1 x 64 x 2K), the POOL source word per bank (cv_buf or either in_buf
  half for a standalone pool, 3:1 x 64 x K) and the MAC rows' input (broadcast word / the
  row's own bank for CONV_DW, 2:1 x 64 x K: rows reading one bank share it).
* Address counters (``COUNTERS`` per module, counted from the loops of src/zsq_dae.h:
  every int updated per iteration; ``LUT_PER_COUNTER`` = 32-bit increment or add (32) +
  wrap compare (11) + reset select (13), ``FF_PER_COUNTER`` = 32 bits + pipeline copies).
* Register files: each module keeps the registers it reads (``REGS_READ``, counted in the
  test) as 32 FF with a write enable from the 6-bit register-id decoder (1 LUT each + 64
  per decoder).
* Control FSMs (``FSM``): one per process (fetch, load, compute, store, timer) and per
  ``*_exec`` function (3), plus the DATAFLOW handshake glue (``DATAFLOW_GLUE``).
* Setup multiplies in fabric (``LUT_PER_SETUP_MUL``): the low 32 bits of a 32 x 32 product,
  528 partial-product bits at two per LUT6 on carry chains (Vivado's LUT multiplier) plus
  the final adders: ~300 LUT, 32 FF.
* LUTRAM banks: RAM32M (32 x 6 bits / 4 LUT) up to 32 rows, RAM64M (64 x 3 bits / 4 LUT)
  per 64 rows beyond; BRAM banks ``LUT_PER_BRAM_BANK`` for address/enable decode.

All LUT/FF figures are labelled estimates in the reports; calibrate them against a
csynth / Vivado utilization report (``zynq-squeeze hls-report --compare``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..boards import Board
from ..engine.dae_config import PE_IC, DaeConfig

# ---- storage -------------------------------------------------------------------------
# RAMB18 aspect ratios (depth, width) in simple dual-port mode.
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
LUTRAM_MAX_BITS = 1024   # bits: a bank this small is always LUTRAM
LUTRAM_MAX_DEPTH = 64    # rows: one RAM64M column deep (see module docstring)
SRL_MAX_DEPTH = 32       # stream FIFOs up to this depth are SRLC32E shift registers
WORD_BITS = 64           # ap_uint<64> activation / weight / param word
ACC_BITS = 32            # ap_int<32> accumulator lane
DEFAULT_STREAM_DEPTH = 2  # hls::stream without a depth pragma (``done``)

# m_axi bundles of zsq_dae (direction) and their data buffers.
M_AXI_BUNDLES = (("gmem_insn", "read"), ("gmem_wgt", "read"), ("gmem_rd", "read"),
                 ("gmem_wr", "write"))
M_AXI_OUTSTANDING = 8    # engine.interface.CONFIG_INTERFACE m_axi_num_*_outstanding
M_AXI_BURST = 16         # ... m_axi_max_*_burst_length
M_AXI_BUFFER_BITS = 72   # 64 data + strobe / last / response bits per beat

# ---- DSP ---------------------------------------------------------------------------------
DSP_PER_MAC = 1
DSP_PER_REQUANT_LANE = 1
DSP_PER_SETUP_MUL = 3

# Runtime multiplies outside the MAC array and the requantization lanes:
# (module, source expression, multiplies). All are per instruction (or per row of a
# LOAD_INPUT / STORE), outside the pipelined loops. tests/test_dae_resources.py checks this
# table against src/zsq_dae.h.
SETUP_MULS: tuple = ()  # none left: strides, trip counts and start addresses are derived
# registers the compiler computes (engine/isa.py ``derived``), so the engine's only
# multipliers are the MAC array and the requantization lanes

# The one storage binding the model assumes beyond Vivado's defaults (it is in src/).
SUGGESTED_PRAGMAS = {
    "zsqd_dataflow (after the p_buf ARRAY_PARTITION pragmas)": [
        "#pragma HLS BIND_STORAGE variable = p_buf type = ram_2p impl = lutram"],
}

# ---- LUT / FF per construct (LUT, FF); basis in the module docstring ---------------------
M_AXI_READ = (600, 750)
M_AXI_WRITE = (650, 800)
S_AXILITE = (300, 350)
SMARTCONNECT_DATA = (900, 1400)
SMARTCONNECT_CTRL = (500, 700)
PROC_SYS_RESET = (20, 40)
FIFO_MEM_CTRL = (60, 70)
FIFO_SRL_CTRL = (8, 8)
MAC_TREE_PER_OC = (155, 285)
REQUANT_PER_LANE = (370, 220)
POOL_PER_LANE = (75, 45)
BYPASS_PER_LANE = (270, 90)
ZERO_POINT_PER_LANE = (27, 8)      # unsigned activations: RQ_ZP_OUT, RQ_AVG_BIAS
BP_ZERO_POINT_PER_LANE = (18, 9)   # ... RQ_BP_ZP (residual add engines only)
WIDE_RQ_PER_LANE = (156, 60)       # the 22-bit multiplier (DaeConfig.wide_rq engines only)
LUT_PER_COUNTER = 56
FF_PER_COUNTER = 40
COUNTERS = {"fetch": 1, "load": 15, "compute": 38, "store": 9, "timer": 2}
REGS_READ = {"load": 31, "compute": 55, "store": 16}
REG_DECODER_LUT = 64
FSM = (150, 120)
FSM_COUNT = 8  # fetch, load, compute, store, timer processes + three *_exec functions
DATAFLOW_GLUE = (100, 100)
LUT_PER_SETUP_MUL = 300
FF_PER_SETUP_MUL = 32
LUT_PER_BRAM_BANK = 8
PARAM_BITS_USED = 58  # bias 32 + mult[15:0] 16 + shift 6 + pre 4: the p_buf bits the narrow lane reads
WIDE_PARAM_BITS_USED = 64  # ... with the wide multiplier: mult 22 (DaeConfig.wide_rq)


@dataclass(frozen=True)
class Array:
    """One on-chip memory as Vivado sees it: ``halves`` (2 for ping-pong buffers) x
    ``banks`` memories of ``depth`` rows x ``word_bits``. ``kind`` is "buffer" or "fifo"."""

    name: str
    word_bits: int
    depth: int
    banks: int = 1
    halves: int = 1
    kind: str = "buffer"

    @property
    def memories(self) -> int:
        """Separate memories (banks x halves)."""
        return self.banks * self.halves

    @property
    def storage(self) -> str:
        """"bram", "lutram" or (FIFOs) "srl"."""
        if self.kind == "fifo" and self.depth <= SRL_MAX_DEPTH:
            return "srl"
        return bank_storage(self.depth, self.word_bits)

    @property
    def bram18k(self) -> int:
        """BRAM18K of all its memories (0 unless stored in BRAM)."""
        if self.storage != "bram":
            return 0
        return self.memories * bram18_per_bank(self.depth, self.word_bits)

    @property
    def luts(self) -> int:
        """LUTs of its storage: LUTRAM / SRL cells, or BRAM address decode."""
        s = self.storage
        if s == "lutram":
            return self.memories * lutram_luts(self.depth, self.word_bits)
        if s == "srl":
            return self.memories * (self.word_bits * math.ceil(self.depth / 32)
                                    + FIFO_SRL_CTRL[0])
        return self.memories * (LUT_PER_BRAM_BANK + (FIFO_MEM_CTRL[0] if self.kind == "fifo"
                                                     else 0))

    @property
    def ffs(self) -> int:
        s = self.storage
        if self.kind != "fifo":
            return 0
        return self.memories * (FIFO_SRL_CTRL[1] + self.word_bits if s == "srl"
                                else FIFO_MEM_CTRL[1])


def bank_storage(depth: int, width_bits: int) -> str:
    """"lutram" for a bank of <= LUTRAM_MAX_DEPTH rows or <= LUTRAM_MAX_BITS bits, else
    "bram"."""
    if depth <= LUTRAM_MAX_DEPTH or depth * width_bits <= LUTRAM_MAX_BITS:
        return "lutram"
    return "bram"


def bram18_per_bank(depth: int, width_bits: int) -> int:
    """RAMB18 primitives for one ``depth`` x ``width_bits`` memory, cheapest aspect ratio
    (ignores the LUTRAM rule)."""
    return min(math.ceil(width_bits / w) * math.ceil(depth / d) for d, w in BRAM18_SHAPES)


def lutram_luts(depth: int, width_bits: int) -> int:
    """LUTs of a simple dual-port distributed RAM: RAM32M (32 x 6 bits per 4 LUTs) up to
    32 rows, else RAM64M columns (64 x 3 bits per 4 LUTs) plus a 4:1 LUT mux level per
    bit for every 4 columns beyond the first."""
    if depth <= 32:
        return 4 * math.ceil(width_bits / 6)
    cols = math.ceil(depth / 64)
    return 4 * math.ceil(width_bits / 3) * cols + width_bits * math.ceil((cols - 1) / 3)


def mux_luts(inputs: int, bits: int) -> int:
    """LUT6s of an ``inputs``:1 mux of ``bits`` bits (a LUT6 is a 4:1 mux)."""
    return bits * math.ceil((inputs - 1) / 3) if inputs > 1 else 0


def dae_arrays(cfg: DaeConfig) -> list[Array]:
    """The engine's buffers, banked as src/zsq_dae_top.cpp partitions them."""
    K, P = cfg.k, cfg.pe_oc
    return [
        Array("in_buf", WORD_BITS, cfg.in_rows, K, 2),
        Array("w_buf", WORD_BITS, cfg.w_rows, P, 2),
        Array("p_buf", WORD_BITS, cfg.p_rows, P, 2),
        Array("out_buf", WORD_BITS, cfg.out_rows, K, 2),
        Array("acc", ACC_BITS, cfg.acc_rows, P, 1),
        Array("cv_buf", WORD_BITS, cfg.cv_rows, K, 1),
        Array("sq_buf", WORD_BITS, cfg.sq_rows, K, 1),
    ] + ([Array("bp_buf", WORD_BITS, cfg.bp_rows, K, 2)]  # residual add: load -> compute
         if cfg.residual else [])  # without ZSQD_RESIDUAL nothing reads it: synthesis drops it


def dae_fifos(cfg: DaeConfig) -> list[Array]:
    """The DATAFLOW region's streams (command queues of 64-bit words, bool tokens) and the
    m_axi adapters' data buffers."""
    out = [Array(n, WORD_BITS, cfg.queue_depth, kind="fifo")
           for n in ("load_q", "compute_q", "store_q")]
    out += [Array(n, 1, cfg.token_depth, kind="fifo") for n in ("l2c", "c2l", "c2s", "s2c")]
    out.append(Array("done", 1, DEFAULT_STREAM_DEPTH, kind="fifo"))
    out += [Array(f"{b}_{d}_buffer", M_AXI_BUFFER_BITS, M_AXI_OUTSTANDING * M_AXI_BURST,
                  kind="fifo") for b, d in M_AXI_BUNDLES]
    return out


def setup_mul_count() -> int:
    """Runtime multiplies outside the MAC array and the requantization lanes."""
    return sum(n for _, _, n in SETUP_MULS)


def dsp_breakdown(cfg: DaeConfig, setup_mul_impl: str = "fabric") -> dict[str, int]:
    """DSP48 per construct: ``mac`` (pe_oc x 8), ``requant`` (pe_oc), ``setup``."""
    if setup_mul_impl not in ("fabric", "dsp"):
        raise ValueError(f"setup_mul_impl must be 'fabric' or 'dsp', got {setup_mul_impl!r}")
    return {"mac": cfg.pe_oc * PE_IC * DSP_PER_MAC,
            "requant": cfg.pe_oc * DSP_PER_REQUANT_LANE,
            "setup": setup_mul_count() * DSP_PER_SETUP_MUL if setup_mul_impl == "dsp" else 0}


def logic_breakdown(cfg: DaeConfig, setup_mul_impl: str = "fabric"
                    ) -> dict[str, tuple[int, int]]:
    """(LUT, FF) per construct (estimates, basis in the module docstring)."""
    K, P = cfg.k, cfg.pe_oc
    n_rd = sum(1 for _, d in M_AXI_BUNDLES if d == "read")
    n_wr = len(M_AXI_BUNDLES) - n_rd
    arrays, fifos = dae_arrays(cfg), dae_fifos(cfg)
    muxes = (mux_luts(3 * K, WORD_BITS)           # CONV source: in_buf[2][K] + sq_buf[K]
             + mux_luts(2 * K, WORD_BITS)         # STORE source: out_buf[2][K]
             + P * mux_luts(2, WORD_BITS)         # w_buf half select per bank
             + P * mux_luts(2, WIDE_PARAM_BITS_USED if cfg.wide_rq else PARAM_BITS_USED)
             + P * mux_luts(2, ACC_BITS)          # acc write data: CONV / POOL
             + 2 * K * mux_luts(2, WORD_BITS)     # out_buf write data: REQUANT / POOL
             + K * mux_luts(2, WORD_BITS)         # MAC row input: broadcast / CONV_DW bank
             # standalone pool (POOL_SRC_IN): per bank, cv_buf or in_buf[0/1]
             + K * mux_luts(3, WORD_BITS)
             + (K * mux_luts(2, WORD_BITS) if cfg.residual else 0))  # bp_buf half select
    n_counters = sum(COUNTERS.values())
    n_regs = sum(REGS_READ.values())
    setup = (setup_mul_count() * LUT_PER_SETUP_MUL, setup_mul_count() * FF_PER_SETUP_MUL) \
        if setup_mul_impl == "fabric" else (0, 0)
    return {
        "m_axi": (n_rd * M_AXI_READ[0] + n_wr * M_AXI_WRITE[0],
                  n_rd * M_AXI_READ[1] + n_wr * M_AXI_WRITE[1]),
        "s_axilite": S_AXILITE,
        "interconnect": (len(M_AXI_BUNDLES) * SMARTCONNECT_DATA[0] + SMARTCONNECT_CTRL[0]
                         + PROC_SYS_RESET[0],
                         len(M_AXI_BUNDLES) * SMARTCONNECT_DATA[1] + SMARTCONNECT_CTRL[1]
                         + PROC_SYS_RESET[1]),
        "fifos": (sum(f.luts for f in fifos), sum(f.ffs for f in fifos)),
        "mac_array": (P * MAC_TREE_PER_OC[0], P * MAC_TREE_PER_OC[1]),
        "requant": (P * REQUANT_PER_LANE[0], P * REQUANT_PER_LANE[1]),
        "wide_requant": (P * WIDE_RQ_PER_LANE[0], P * WIDE_RQ_PER_LANE[1]) if cfg.wide_rq
        else (0, 0),
        "residual_add": (P * BYPASS_PER_LANE[0], P * BYPASS_PER_LANE[1]) if cfg.residual
        else (0, 0),
        "pool": (P * POOL_PER_LANE[0], P * POOL_PER_LANE[1]),
        "zero_points": (P * ZERO_POINT_PER_LANE[0] + mux_luts(2, WORD_BITS)
                        + (P * BP_ZERO_POINT_PER_LANE[0] if cfg.residual else 0),
                        P * ZERO_POINT_PER_LANE[1]
                        + (P * BP_ZERO_POINT_PER_LANE[1] if cfg.residual else 0)),
        "bank_muxes": (muxes, 0),
        "counters": (n_counters * LUT_PER_COUNTER, n_counters * FF_PER_COUNTER),
        "registers": (n_regs + len(REGS_READ) * REG_DECODER_LUT, 32 * n_regs),
        "control": (FSM_COUNT * FSM[0] + DATAFLOW_GLUE[0], FSM_COUNT * FSM[1] + DATAFLOW_GLUE[1]),
        "setup_muls": setup,
        "buffer_storage": (sum(a.luts for a in arrays), 0),
    }


@dataclass(frozen=True)
class DaeResourceUse:
    """Modeled use of one decoupled engine. ``bram`` maps array/FIFO name -> BRAM18K,
    ``dsp_by`` construct -> DSP48, ``lut_by`` / ``ff_by`` construct -> LUT / FF."""

    bram18k: int
    dsp: int
    lut: int
    ff: int
    lutram_luts: int
    bram: dict = field(default_factory=dict)
    dsp_by: dict = field(default_factory=dict)
    lut_by: dict = field(default_factory=dict)
    ff_by: dict = field(default_factory=dict)
    setup_mul_impl: str = "fabric"

    @property
    def mac_dsp(self) -> int:
        return self.dsp_by.get("mac", 0)

    def to_json(self) -> dict:
        return {"bram18k": self.bram18k, "dsp": self.dsp, "lut": self.lut, "ff": self.ff,
                "lutram_luts": self.lutram_luts, "bram": dict(self.bram),
                "dsp_by": dict(self.dsp_by), "lut_by": dict(self.lut_by),
                "ff_by": dict(self.ff_by), "setup_mul_impl": self.setup_mul_impl}


def estimate(cfg: DaeConfig, setup_mul_impl: str = "fabric") -> DaeResourceUse:
    """BRAM18K, DSP48, LUT and FF of the engine ``cfg`` (LUT/FF estimates)."""
    arrays, fifos = dae_arrays(cfg), dae_fifos(cfg)
    bram = {a.name: a.bram18k for a in arrays + fifos}
    dsp_by = dsp_breakdown(cfg, setup_mul_impl)
    logic = logic_breakdown(cfg, setup_mul_impl)
    lut_by = {k: v[0] for k, v in logic.items()}
    ff_by = {k: v[1] for k, v in logic.items()}
    lutram = sum(a.luts for a in arrays if a.storage == "lutram")
    return DaeResourceUse(bram18k=sum(bram.values()), dsp=sum(dsp_by.values()),
                          lut=sum(lut_by.values()), ff=sum(ff_by.values()),
                          lutram_luts=lutram, bram=bram, dsp_by=dsp_by, lut_by=lut_by,
                          ff_by=ff_by, setup_mul_impl=setup_mul_impl)


def buffer_granule(depth: int, width_bits: int) -> int:
    """Rows per step of storage cost for a bank: 32 while it is LUTRAM (RAM32M depth), the
    depth of the widest RAMB18 aspect (512 rows) once it is BRAM -- any depth inside a
    step costs the same, so sizing rounds up to it."""
    if bank_storage(depth, width_bits) == "lutram" and depth <= LUTRAM_MAX_DEPTH:
        return 32
    return 512


def round_depth(rows: int, width_bits: int = WORD_BITS, minimum: int = 16) -> int:
    """The depth a buffer of ``rows`` needed rows gets: rounded up to its storage granule
    (``buffer_granule``), at least ``minimum``."""
    rows = max(minimum, int(rows))
    g = buffer_granule(rows, width_bits)
    return -(-rows // g) * g


def board_fits(use: DaeResourceUse, board: Board, limits: dict[str, float]) -> dict[str, bool]:
    """Per resource: within ``limits[key] * available`` (floor) on ``board``."""
    avail = {"bram18k": board.bram18k, "dsp": board.dsp, "lut": board.lut, "ff": board.ff}
    return {k: getattr(use, k) <= int(limits.get(k, 1.0) * avail[k]) for k in avail}


__all__ = ["Array", "DaeResourceUse", "SETUP_MULS", "SUGGESTED_PRAGMAS", "bank_storage",
           "board_fits", "bram18_per_bank", "dae_arrays", "dae_fifos", "dsp_breakdown",
           "estimate", "logic_breakdown", "lutram_luts", "mux_luts", "round_depth",
           "setup_mul_count"]
