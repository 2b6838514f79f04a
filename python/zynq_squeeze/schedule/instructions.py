"""Lowering of tiled layers to the decoupled engine's instruction stream (docs/ENGINE.md).

``lower_layers`` turns a chain of quantized layers, their tiles and the arena placement
of their tensors into 64-bit instruction words, and says where each layer's weight blocks
and params live in the weights region. The token discipline (VTA's):

* load -> compute (``l2c``): one token per *load group* (the loads a compute step needs
  that are not already resident), pushed by the group's last load, popped by the step's
  first compute instruction;
* compute -> load (``c2l``): one token per compute *step*, pushed by its last
  instruction; before overwriting a buffer half, load pops until the half's last user
  has pushed (at least up to step ``s - 2`` when loading for step ``s``: the ping-pong
  distance);
* compute -> store (``c2s``) / store -> compute (``s2c``): one token per output tile;
  compute writes tile ``t`` into ``out_buf[t % 2]`` only after tile ``t - 2`` is stored;
* between layers a compute barrier waits for every store of the layer and counts as a
  step, so the next layer's input loads wait for it (the data goes through DDR).

Nothing here depends on weight values: ``conv_blocks`` fixes the block order that
``codegen`` packs the weights in.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..engine import isa
from ..engine.dae_config import PE_IC, DaeConfig, DaeTile
from ..errors import ScheduleError
from ..partitioning import limits
from ..quantize import requant
from ..quantize.layers import (ConvAddLayer, ConvLayer, ConvParams, FireLayer, PoolLayer,
                               avg_requant)


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def groups(channels: int) -> int:
    """64-bit words (8 channels each) per pixel of a tensor with ``channels`` channels."""
    return cdiv(channels, PE_IC)


@dataclass(frozen=True)
class Tensor:
    """An activation tensor in the arena: HWC, channels padded to groups of 8, at word
    offset ``base``.

    A *view* (``row_groups`` > 0) is channel groups ``[g0, g0 + g)`` of a larger tensor
    at ``base`` with ``row_groups`` groups per pixel: a concat part written or read in
    place (docs/ENGINE.md, "Concat")."""

    base: int
    c: int
    h: int
    w: int
    g0: int = 0          # first channel group inside the tensor at base (a view)
    row_groups: int = 0  # groups per pixel of the tensor at base; 0: this tensor's own

    @property
    def g(self) -> int:
        return groups(self.c)

    @property
    def pixel_groups(self) -> int:
        """Words per pixel in DDR (the LI_G / ST_G operand)."""
        return self.row_groups or self.g

    @property
    def words(self) -> int:
        return self.h * self.w * self.g


@dataclass(frozen=True)
class Block:
    """One weight block (an oc tile x an input-channel step) of a conv, in packing order."""

    oc0: int
    oc_n: int
    ic0: int
    ic_n: int
    nog: int  # output-channel groups of pe_oc
    ng: int   # input-channel groups of 8 (the input tile's words per pixel)
    words: int
    ic_base: int = 0  # first input channel of the block's conv group (weight column ic0 - ic_base)


def engine_groups(conv: ConvParams) -> int:
    """How many separate convolutions the engine runs ``conv`` as: its groups, or 1 for a
    depthwise conv (one CONV_DW over every channel) and an ordinary conv."""
    return 1 if conv.depthwise else conv.groups


def _group_ranges(conv: ConvParams):
    """(input channel range start, count, output start, count) of each engine group."""
    g = engine_groups(conv)
    oc, ic = conv.out_channels // g, conv.in_channels // g
    return [(k * ic, ic, k * oc, oc) for k in range(g)]


def conv_blocks(conv: ConvParams, toc: int, tic: int, pe_oc: int) -> list[Block]:
    """Weight blocks of ``conv`` in packing order (conv group major, then oc tile, ic step
    minor). Each is ``[og][ky][kx][g][o]`` words of 8 int8 input channels (docs/ENGINE.md);
    a depthwise block is ``[og][ky][kx][o]``, one word per channel and tap (its input tile
    is the oc tile's own channels: ``ic0 = oc0``)."""
    kh, kw = conv.kernel
    out = []
    if conv.depthwise:
        for oc0 in range(0, conv.out_channels, toc):
            oc_n = min(toc, conv.out_channels - oc0)
            nog = cdiv(oc_n, pe_oc)
            out.append(Block(oc0, oc_n, oc0, oc_n, nog, groups(oc_n), nog * kh * kw * pe_oc))
        return out
    for i0, i_n, o0, o_n in _group_ranges(conv):
        for oc0 in range(o0, o0 + o_n, toc):
            oc_n = min(toc, o0 + o_n - oc0)
            for ic0 in range(i0, i0 + i_n, tic):
                ic_n = min(tic, i0 + i_n - ic0)
                nog, ng = cdiv(oc_n, pe_oc), groups(ic_n)
                out.append(Block(oc0, oc_n, ic0, ic_n, nog, ng, nog * kh * kw * ng * pe_oc, i0))
    return out


def param_tiles(conv: ConvParams, toc: int, pe_oc: int) -> list[tuple[int, int, int]]:
    """(oc0, oc_n, words) of each oc tile's params (one word per channel, padded to pe_oc),
    conv group major."""
    out = []
    for _, _, o0, o_n in _group_ranges(conv):
        for oc0 in range(o0, o0 + o_n, toc):
            oc_n = min(toc, o0 + o_n - oc0)
            out.append((oc0, oc_n, cdiv(oc_n, pe_oc) * pe_oc))
    return out


@dataclass
class LayerPlacement:
    """Where one layer's constants live in the weights region (word offsets)."""

    blocks: list[tuple[int, Block]] = field(default_factory=list)   # per conv, in order
    params: list[tuple[int, int, int, int]] = field(default_factory=list)  # (conv#, oc0, oc_n, addr)
    conv_blocks: list[list[tuple[int, Block]]] = field(default_factory=list)
    conv_params: list[list[tuple[int, int, int]]] = field(default_factory=list)  # (addr, oc0, oc_n)


def layer_convs(layer) -> list[ConvParams]:
    if isinstance(layer, PoolLayer):
        return []
    return [layer.squeeze, layer.expand1, layer.expand3] if isinstance(layer, FireLayer) \
        else [layer.conv]


# --- wide requantization multiplier (DaeConfig.wide_rq, issue 11) ----------------------
def needs_wide_requant(layers) -> bool:
    """True when a layer's requantization (conv params, average constant, bypass
    multiplier) is outside the narrow lane's ranges (``requant.needs_wide``): the engine
    must be built with ``DaeConfig.wide_rq``. Takes Layers or (Layer, in, out) tuples."""
    for layer in layers:
        layer = layer[0] if isinstance(layer, tuple) else layer
        pairs = [(c.mult, c.shift) for c in layer_convs(layer)]
        if getattr(layer, "bp_mult", None) is not None:
            pairs.append((layer.bp_mult, layer.bp_shift))
        if avg_requant(layer) is not None:
            pairs.append(avg_requant(layer))
        if any(requant.needs_wide(m, s) for m, s in pairs):
            return True
    return False


def conv_tiles(layer, tile: DaeTile, pe_oc: int) -> list[tuple[int, int]]:
    """(toc, tic) per conv of ``layer``: toc rounded to pe_oc, tic to 8; the squeeze of a
    fire has all its output channels in one tile, the expands read all of the squeeze."""
    def oc_tile(o: int) -> int:
        return o if tile.toc >= o else max(pe_oc, tile.toc // pe_oc * pe_oc)

    def ic_tile(i: int) -> int:
        return i if tile.tic >= i else max(PE_IC, tile.tic // PE_IC * PE_IC)

    if isinstance(layer, PoolLayer):
        return []
    if isinstance(layer, FireLayer):
        s = layer.squeeze.out_channels
        return [(s, ic_tile(layer.squeeze.in_channels)),
                (oc_tile(layer.expand1.out_channels), s),
                (oc_tile(layer.expand3.out_channels), s)]
    conv = layer.conv
    if conv.depthwise:  # the input step is the oc tile's own channels
        toc = oc_tile(conv.out_channels)
        return [(toc, toc)]
    g = engine_groups(conv)
    return [(oc_tile(conv.out_channels // g), ic_tile(conv.in_channels // g))]


def place_constants(layers, tiles, pe_oc: int) -> tuple[list[LayerPlacement], int]:
    """Word offsets of every weight block and param tile; returns (placements, words)."""
    addr = 0
    out = []
    for layer, tile in zip(layers, tiles):
        pl = LayerPlacement()
        for conv, (toc, tic) in zip(layer_convs(layer), conv_tiles(layer, tile, pe_oc)):
            bl = []
            for b in conv_blocks(conv, toc, tic, pe_oc):
                bl.append((addr, b))
                addr += b.words
            pp = []
            for oc0, oc_n, words in param_tiles(conv, toc, pe_oc):
                pp.append((addr, oc0, oc_n))
                addr += words
            pl.conv_blocks.append(bl)
            pl.conv_params.append(pp)
        out.append(pl)
    return out, addr


def _pool_rows(o0: int, o1: int, pool, conv_n: int, axis: int) -> tuple[int, int]:
    """Conv rows [c0, c1) the pooled rows [o0, o1) need (identity without a pool)."""
    if pool is None:
        return o0, o1
    if pool.global_pool:
        return 0, conv_n
    k, s = pool.kernel[axis], pool.stride[axis]
    lo = pool.pads[axis]  # pads are (top, left, bottom, right)
    return max(0, o0 * s - lo), min(conv_n, (o1 - 1) * s - lo + k)


def spatial_tiles(layer, tile: DaeTile):
    """The spatial tiles of ``layer``: (o0, o1, p0, p1, c0, c1, d0, d1) with output rows
    [o0, o1) and columns [p0, p1) (post-pool space) and the conv rows [c0, c1) and columns
    [d0, d1) they need."""
    ch, cw = layer.conv_hw
    _, oh, ow = layer.out_shape
    for o0 in range(0, oh, tile.th):
        o1 = min(oh, o0 + tile.th)
        c0, c1 = _pool_rows(o0, o1, layer.pool, ch, 0)
        for p0 in range(0, ow, tile.tw):
            p1 = min(ow, p0 + tile.tw)
            d0, d1 = _pool_rows(p0, p1, layer.pool, cw, 1)
            yield o0, o1, p0, p1, c0, c1, d0, d1


# The range of every register the lowering writes: the bounds the C validators check
# (zsq_rt_validate in hls_runtime/zsq_runtime.c, the checks of src/zsq_dae_sim.cpp) before
# they multiply anything. A value outside its range is refused here (ScheduleError) rather
# than wrapped into the 32-bit SET field: a wrapped size or trip count would make the
# engine skip its loops and return zeros. Derived registers (products) must fit int32.
DIM_MAX = limits.MAX_SPATIAL            # tensor and tile sizes, offsets, pitches, rows
GROUPS_MAX = limits.MAX_CHANNEL_GROUPS  # channel groups (8 channels, or PE_OC for CV/RQ/PL_OG)
_KERNEL, _STRIDE = (1, limits.MAX_KERNEL_FIELD), (1, limits.MAX_STRIDE_FIELD)
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
_SIZE, _GROUPS, _OFFSET, _ROW = (1, DIM_MAX), (1, GROUPS_MAX), (-DIM_MAX, DIM_MAX), (0, DIM_MAX)
_ADDR, _COUNT, _INT32 = (0, INT32_MAX), (1, INT32_MAX), (INT32_MIN, INT32_MAX)
# a multiplier register (either lane width: an engine with the narrow lane refuses more)
_RQ_MULT = (requant.MULT_MIN, requant.WIDE_MULT_MAX)
_RQ_SHIFT = (requant.SHIFT_MIN, requant.WIDE_SHIFT_MAX)
REG_RANGES: dict[int, tuple[int, int]] = {
    isa.LI_BASE: _ADDR, isa.LI_H: _SIZE, isa.LI_W: _SIZE, isa.LI_G: _GROUPS,
    isa.LI_Y0: _OFFSET, isa.LI_X0: _OFFSET, isa.LI_G0: (0, GROUPS_MAX - 1), isa.LI_ROWS: _SIZE,
    isa.LI_COLS: _SIZE, isa.LI_NG: _GROUPS, isa.LI_PITCH: _SIZE,
    isa.LW_ADDR: _ADDR, isa.LW_WORDS: _COUNT, isa.LP_ADDR: _ADDR, isa.LP_CHANNELS: _COUNT,
    isa.CV_ROWS: _SIZE, isa.CV_COLS: _SIZE, isa.CV_OG: _GROUPS, isa.CV_KH: _KERNEL,
    isa.CV_KW: _KERNEL, isa.CV_SY: _STRIDE, isa.CV_SX: _STRIDE, isa.CV_SRC_COLS: _SIZE,
    isa.CV_NG: _GROUPS, isa.CV_SRC_PITCH: _SIZE, isa.CV_SRC_Y0: _ROW, isa.CV_SRC_X0: _ROW,
    isa.RQ_ROWS: _SIZE, isa.RQ_COLS: _SIZE, isa.RQ_OG: _GROUPS, isa.RQ_DST_PITCH: _SIZE,
    isa.RQ_DST_ROW0: _ROW, isa.RQ_VY0: _ROW, isa.RQ_VY1: _ROW, isa.RQ_VX0: _ROW,
    isa.RQ_VX1: _ROW, isa.RQ_AVG_MULT: _RQ_MULT, isa.RQ_AVG_SHIFT: _RQ_SHIFT,
    isa.PL_ROWS: _SIZE, isa.PL_COLS: _SIZE, isa.PL_OG: _GROUPS, isa.PL_KH: _SIZE,
    isa.PL_KW: _SIZE, isa.PL_SY: _SIZE, isa.PL_SX: _SIZE, isa.PL_Y0: _OFFSET,
    isa.PL_X0: _OFFSET, isa.PL_SRC_ROWS: _SIZE, isa.PL_SRC_COLS: _SIZE,
    isa.PL_DST_PITCH: _SIZE, isa.PL_DST_ROW0: _ROW,
    isa.ST_BASE: _ADDR, isa.ST_H: _SIZE, isa.ST_W: _SIZE, isa.ST_G: _GROUPS,
    isa.ST_Y0: _ROW, isa.ST_X0: _ROW, isa.ST_G0: (0, GROUPS_MAX - 1), isa.ST_ROWS: _SIZE,
    isa.ST_COLS: _SIZE, isa.ST_NG: _GROUPS, isa.ST_PITCH: _SIZE, isa.ST_ROW0: _ROW,
    # residual add
    isa.LB_BASE: _ADDR, isa.LB_H: _SIZE, isa.LB_W: _SIZE, isa.LB_G: _GROUPS,
    isa.LB_Y0: _ROW, isa.LB_X0: _ROW, isa.LB_G0: (0, GROUPS_MAX - 1), isa.LB_ROWS: _SIZE,
    isa.LB_COLS: _SIZE, isa.LB_NG: _GROUPS, isa.LB_PITCH: _SIZE,
    isa.RQ_BP_MULT: _RQ_MULT, isa.RQ_BP_SHIFT: _RQ_SHIFT,
    # zero points (int8) and the average's sum offset (within the 25-bit multiplier input)
    isa.LI_PAD: (-128, 127), isa.RQ_ZP_OUT: (-128, 127), isa.RQ_BP_ZP: (-128, 127),
    isa.RQ_AVG_BIAS: (-((1 << 24) - 1), (1 << 24) - 1),
}
_REG_NAMES = {v: k for k, v in isa.REGISTERS.items()}


def check_register(reg: int, value: int) -> None:
    """Raise ScheduleError when ``value`` is outside register ``reg``'s range (REG_RANGES;
    derived and unlisted registers: int32)."""
    lo, hi = REG_RANGES.get(reg, _INT32)
    if not lo <= value <= hi:
        raise ScheduleError(f"register {_REG_NAMES.get(reg, reg)} = {value} is outside its "
                            f"range [{lo}, {hi}] (the engine's 32-bit instruction fields)")


class _RegView(dict):
    """The emitter's register shadow, reading 0 for registers never set (their reset
    value in the engine)."""

    def __missing__(self, key):
        return 0


class Emitter:
    """Builds the word list and keeps the token and buffer-half bookkeeping."""

    def __init__(self, cfg: DaeConfig):
        self.cfg = cfg
        self.words: list[int] = []
        self.shadow: dict[int, int] = {}
        # steps and c2l tokens
        self.step = 0
        self.c2l_popped = 0
        self.group_open = False
        self.step_has_group = False
        self.last_user = {k: [-1, -1] for k in ("in", "w", "p", "bp")}
        self.resident = {k: [None, None] for k in ("in", "w", "p", "bp")}
        self.first_compute = True  # next compute instruction is the step's first
        self.last_compute = -1
        self.last_load = -1
        self.input_ready_step = -1  # loads of inputs must wait for this step (barrier)
        # output tiles
        self.tile = -1
        self.s2c_popped = 0
        self.tile_first_write = False
        self.last_out_write = -1
        self.store_first = False
        self.last_store = -1

    # -- words --------------------------------------------------------------------
    def _emit(self, word: int) -> int:
        self.words.append(word)
        return len(self.words) - 1

    def set(self, reg: int, value: int) -> None:
        value = int(value)
        check_register(reg, value)  # never wrapped into the 32-bit field
        if self.shadow.get(reg) == value:
            return
        self.shadow[reg] = value
        self._emit(isa.set_reg(reg, value))

    def sets(self, values: dict[int, int]) -> None:
        for r, v in values.items():
            self.set(r, v)

    def operands(self, op: int, values: dict[int, int]) -> None:
        """SET ``values``, then the derived registers ``op`` reads (isa.derived)."""
        self.sets(values)
        self.sets(isa.derived(op, _RegView(self.shadow)))

    def zero_points(self, values: dict[int, int]) -> dict[int, int]:
        """The zero point registers of ``values`` an instruction must set: those not 0 or
        not 0 now (a program without zero points has no such SET: bit for bit the
        symmetric program)."""
        return {r: int(v) for r, v in values.items() if v or self.shadow.get(r, 0)}

    def barrier(self, reg: int, deps: int) -> None:
        """A SET that only carries dependency flags (writes the register's own value)."""
        v = self.shadow.get(reg, 0)
        self.shadow[reg] = v
        self._emit(isa.set_reg(reg, v, deps))

    # -- load side -------------------------------------------------------------------
    def _pop_c2l_until(self, n: int, reg: int) -> int:
        """Pops needed so that c2l_popped >= n; all but the last as load barriers.
        Returns the flags for the load instruction (one pop, or 0)."""
        need = n - self.c2l_popped
        if need <= 0:
            return 0
        for _ in range(need - 1):
            self.barrier(reg, isa.POP_NEXT)
        self.c2l_popped = n
        return isa.POP_NEXT

    def load(self, kind: str, key, op: int, regs: dict[int, int], data_ready_step: int = -1) -> int:
        """Make ``key`` resident in a half of buffer ``kind`` for the current step; returns
        the half. Issues the load (with its token pops) when it is not resident."""
        res = self.resident[kind]
        for h in (0, 1):
            if res[h] == key:
                self.last_user[kind][h] = self.step
                return h
        users = self.last_user[kind]
        h = 0 if users[0] <= users[1] else 1
        need = max(users[h] + 1, self.step - 1, data_ready_step + 1)
        self.operands(op, regs)
        flags = self._pop_c2l_until(need, next(iter(regs)))
        self.last_load = self._emit(isa.insn(op, flags | (isa.HALF if h else 0)))
        res[h] = key
        users[h] = self.step
        self.step_has_group = True
        return h

    def input_ready(self) -> int:
        return self.input_ready_step

    # -- compute side -----------------------------------------------------------------
    def compute(self, op: int, flags: int, regs: dict[int, int], out_write: bool = False,
                step: bool = True) -> int:
        """Emit a compute instruction; the step's first pops l2c, out-tile writes pop s2c.
        ``step=False``: an instruction between steps that reads no loaded buffer."""
        if step and self.first_compute:
            self.first_compute = False
            if self.step_has_group:
                self.words[self.last_load] |= isa.PUSH_NEXT
                flags |= isa.POP_PREV
        if out_write and self.tile_first_write:
            self.tile_first_write = False
            need = self.tile - 1 - self.s2c_popped
            if need > 0:
                for _ in range(need - 1):
                    self.barrier(isa.RQ_ROWS, isa.POP_NEXT)
                flags |= isa.POP_NEXT
                self.s2c_popped = self.tile - 1
        self.operands(op, regs)
        self.last_compute = self._emit(isa.insn(op, flags))
        if out_write:
            self.last_out_write = self.last_compute
        return self.last_compute

    def end_step(self) -> None:
        """The current step is done with its loaded buffers: push c2l."""
        self.words[self.last_compute] |= isa.PUSH_PREV
        self.step += 1
        self.first_compute = True
        self.step_has_group = False

    def begin_tile(self) -> int:
        self.tile += 1
        self.tile_first_write = True
        self.store_first = True
        return self.tile % 2

    def end_tile_compute(self) -> None:
        self.words[self.last_out_write] |= isa.PUSH_NEXT

    def store(self, regs: dict[int, int], half: int) -> None:
        flags = isa.HALF if half else 0
        if self.store_first:
            flags |= isa.POP_PREV
            self.store_first = False
        self.operands(isa.OP_STORE, regs)
        self.last_store = self._emit(isa.insn(isa.OP_STORE, flags))

    def end_tile_store(self) -> None:
        self.words[self.last_store] |= isa.PUSH_PREV

    def layer_barrier(self) -> None:
        """Wait for every store so far, then count as a step that input loads wait for."""
        assert self.first_compute, "layer barrier inside a step"
        for _ in range(self.tile + 1 - self.s2c_popped):
            self.barrier(isa.RQ_ROWS, isa.POP_NEXT)
        self.s2c_popped = self.tile + 1
        self.barrier(isa.RQ_ROWS, isa.PUSH_PREV)
        self.input_ready_step = self.step
        self.step += 1

    def finish(self) -> list[int]:
        """Drain every token and end the program."""
        self.layer_barrier()
        for _ in range(self.step - self.c2l_popped):
            self.barrier(isa.LI_BASE, isa.POP_NEXT)
        self.c2l_popped = self.step
        self._emit(isa.OP_FINISH)
        return self.words


def _check(cond: bool, layer, what: str) -> None:
    if not cond:
        raise ScheduleError(f"{layer.name}: {what}")


def _input_step(em: Emitter, key, src: Tensor, b: Block, waddr: int, paddr: int, nog: int,
                window: tuple[int, int, int, int], out: tuple[int, int], conv: ConvParams,
                first: bool, ready: int) -> int:
    """One input-channel step of a conv reading a DDR tensor: its input tile ``window``
    (y0, x0, rows, cols), weight block and params made resident, then the CONV over the
    ``out`` (rows, cols) pixels. Returns the params' half."""
    K, pe_oc = em.cfg.k, em.cfg.pe_oc
    iy0, ix0, irows, icols = window
    kh, kw = conv.kernel
    sy, sx = conv.stride
    pitch = cdiv(b.ng, K)
    dw = conv.depthwise  # channel-parallel taps: no input-group loop (CV_NG = 1)
    ih = em.load("in", key, isa.OP_LOAD_INPUT, {
        isa.LI_BASE: src.base, isa.LI_H: src.h, isa.LI_W: src.w, isa.LI_G: src.pixel_groups,
        isa.LI_Y0: iy0, isa.LI_X0: ix0, isa.LI_G0: src.g0 + b.ic0 // PE_IC, isa.LI_ROWS: irows,
        isa.LI_COLS: icols, isa.LI_NG: b.ng, isa.LI_PITCH: pitch,
        **em.zero_points({isa.LI_PAD: conv.zp_in})}, ready)
    wh = em.load("w", ("w", waddr), isa.OP_LOAD_WEIGHT, {isa.LW_ADDR: waddr, isa.LW_WORDS: b.words})
    ph = em.load("p", ("p", paddr), isa.OP_LOAD_PARAMS,
                 {isa.LP_ADDR: paddr, isa.LP_CHANNELS: nog * pe_oc})
    em.compute(isa.OP_CONV, (isa.HALF if ih else 0) | (isa.CONV_W_HALF if wh else 0)
               | (isa.CONV_FIRST if first else 0) | (isa.CONV_DW if dw else 0), {
        isa.CV_ROWS: out[0], isa.CV_COLS: out[1], isa.CV_OG: nog, isa.CV_KH: kh, isa.CV_KW: kw,
        isa.CV_SY: sy, isa.CV_SX: sx, isa.CV_SRC_COLS: icols, isa.CV_NG: 1 if dw else b.ng,
        isa.CV_SRC_PITCH: pitch, isa.CV_SRC_Y0: 0, isa.CV_SRC_X0: 0})
    return ph


def _load_bypass(em: Emitter, layer: ConvAddLayer, bp: Tensor, key, ready: int,
                 window: tuple[int, int, int, int], g0: int, ng: int, nog: int) -> tuple[int, dict]:
    """Residual add: the bypass of one output tile's oc tile -- pixels ``window`` (y0, x0,
    rows, cols), channel groups [g0, g0 + ng) -- into a bp_buf half in the accumulators'
    row order (row p * nog + og: LB_PITCH = nog); returns the REQUANT's flags and
    registers that add it."""
    y0, x0, rows, cols = window
    bh = em.load("bp", key, isa.OP_LOAD_BYPASS, {
        isa.LB_BASE: bp.base, isa.LB_H: bp.h, isa.LB_W: bp.w, isa.LB_G: bp.pixel_groups,
        isa.LB_Y0: y0, isa.LB_X0: x0, isa.LB_G0: bp.g0 + g0, isa.LB_ROWS: rows, isa.LB_COLS: cols, isa.LB_NG: ng,
        isa.LB_PITCH: nog}, ready)
    return (isa.RQ_ADD | (isa.RQ_BP_HALF if bh else 0),
            {isa.RQ_BP_MULT: int(layer.bp_mult), isa.RQ_BP_SHIFT: int(layer.bp_shift),
             **em.zero_points({isa.RQ_BP_ZP: layer.bp_zp})})


def lower_conv_layer(em: Emitter, layer: ConvLayer, tile: DaeTile, pl: LayerPlacement,
                     src: Tensor, dst: Tensor, first_layer: bool, bp: Tensor | None = None) -> None:
    """Instructions of one conv(+pool) layer. A grouped conv is one conv per group on
    channel slices of the input (LOAD_INPUT at the group's LI_G0) into its own out_buf
    region (``g * nog_g`` rows per pixel), stored at the group's ST_G0 unless the regions
    are contiguous channels (output channels per group a multiple of pe_oc); a depthwise
    conv is one CONV_DW per oc tile over that tile's own input channels. A
    :class:`ConvAddLayer` (groups 1) adds ``bp``, read tile by tile (LOAD_BYPASS) with the
    last input-channel step of each oc tile."""
    add = isinstance(layer, ConvAddLayer)
    _check(not add or (bp is not None and layer.pool is None and engine_groups(layer.conv) == 1
                       and (bp.c, bp.h, bp.w) == tuple(layer.out_shape)),
           layer, "a residual add needs a bypass tensor of the output's shape, groups 1, no pool")
    _check(not add or em.cfg.residual, layer, "the engine is built without the residual add")
    pe_oc = em.cfg.pe_oc
    conv, pool = layer.conv, layer.pool
    kh, kw = conv.kernel
    sy, sx = conv.stride
    pt, pl_, _, _ = conv.pads
    n_grp = engine_groups(conv)
    og_per = conv.out_channels // n_grp
    nog_g = cdiv(og_per, pe_oc)
    nog_all = n_grp * nog_g  # out_buf rows per pixel (= cdiv(O, pe_oc) for one group)
    blocks, params = pl.conv_blocks[0], pl.conv_params[0]
    n_ic = sum(1 for _, b in blocks if b.oc0 == blocks[0][1].oc0)  # input steps per oc tile
    one_region = n_grp == 1 or og_per % pe_oc == 0
    ready = -1 if first_layer else em.input_ready()
    for o0, o1, p0, p1, c0, c1, d0, d1 in spatial_tiles(layer, tile):
        rows, cols = c1 - c0, d1 - d0
        iy0, ix0 = c0 * sy - pt, d0 * sx - pl_
        irows, icols = (rows - 1) * sy + kh, (cols - 1) * sx + kw
        oh_half = em.begin_tile()
        for t, (paddr, poc0, poc_n) in enumerate(params):
            nog = cdiv(poc_n, pe_oc)
            tile_blocks = blocks[t * n_ic:(t + 1) * n_ic]
            add_flags, add_regs = 0, {}
            for j, (waddr, b) in enumerate(tile_blocks):
                if add and j == len(tile_blocks) - 1:
                    g0 = poc0 // PE_IC
                    add_flags, add_regs = _load_bypass(
                        em, layer, bp, ("bp", id(layer), o0, p0, poc0), ready,
                        (o0, p0, rows, cols), g0, min(nog * em.cfg.k, bp.g - g0), nog)
                ph = _input_step(em, ("in", id(layer), o0, p0, b.ic0), src, b, waddr, paddr,
                                 nog, (iy0, ix0, irows, icols), (rows, cols), conv, j == 0,
                                 ready)
                if j == len(tile_blocks) - 1:
                    grp = poc0 // og_per
                    row0 = grp * nog_g + (poc0 - grp * og_per) // pe_oc
                    _epilogue(em, layer, pool, ph, oh_half, rows, cols, nog, nog_all,
                              row0, o0, o1, p0, p1, c0, d0, conv.relu, dst_pitch=nog_all,
                              add=(add_flags, add_regs), zp_out=conv.zp_out)
                em.end_step()
        em.end_tile_compute()
        regions = ([(0, dst.g, 0)] if one_region else
                   [(grp * og_per // PE_IC, og_per // PE_IC, grp * nog_g) for grp in range(n_grp)])
        for g0, ng, row0 in regions:
            em.store({isa.ST_BASE: dst.base, isa.ST_H: dst.h, isa.ST_W: dst.w,
                      isa.ST_G: dst.pixel_groups, isa.ST_Y0: o0, isa.ST_X0: p0,
                      isa.ST_G0: dst.g0 + g0, isa.ST_ROWS: o1 - o0, isa.ST_COLS: p1 - p0,
                      isa.ST_NG: ng, isa.ST_PITCH: nog_all, isa.ST_ROW0: row0}, oh_half)
        em.end_tile_store()


def _epilogue(em: Emitter, layer, pool, ph: int, oh_half: int, rows: int, cols: int, nog: int,
              nog_all: int, row0: int, o0: int, o1: int, p0: int, p1: int, c0: int, d0: int,
              relu: bool, dst_pitch: int, to_cv_pitch: int | None = None,
              add: tuple[int, dict] = (0, {}), zp_out: int = 0) -> None:
    """Requantize the accumulators of one oc tile, pool them when the layer pools, into
    ``out_buf`` rows ``row0..`` (pitch ``dst_pitch``). With ``to_cv_pitch`` the tile only
    goes to ``cv_buf`` (a pooled fire pools all its channels at once, later). ``add``: the
    residual add's REQUANT flags and registers (``_load_bypass``; unpooled layers)."""
    pflag = isa.HALF if ph else 0
    oflag = isa.RQ_OUT_HALF if oh_half else 0
    relu_f = isa.RQ_RELU if relu else 0
    full = {isa.RQ_ROWS: rows, isa.RQ_COLS: cols, isa.RQ_OG: nog, isa.RQ_VY0: 0,
            isa.RQ_VY1: rows, isa.RQ_VX0: 0, isa.RQ_VX1: cols,
            **em.zero_points({isa.RQ_ZP_OUT: zp_out})}
    if to_cv_pitch is not None:
        em.compute(isa.OP_REQUANT, pflag | relu_f | (isa.RQ_DST_CV << isa.RQ_DST_SHIFT),
                   {**full, isa.RQ_DST_PITCH: to_cv_pitch, isa.RQ_DST_ROW0: row0})
        return
    if pool is None:
        em.compute(isa.OP_REQUANT, pflag | oflag | relu_f | add[0], {
            **full, isa.RQ_DST_PITCH: dst_pitch, isa.RQ_DST_ROW0: row0, **add[1]}, out_write=True)
        return
    em.compute(isa.OP_REQUANT, pflag | relu_f | (isa.RQ_DST_CV << isa.RQ_DST_SHIFT),
               {**full, isa.RQ_DST_PITCH: nog, isa.RQ_DST_ROW0: 0})
    _pool(em, layer, pool, oh_half, rows, cols, nog, nog_all, row0, o0, o1, p0, p1, c0, d0, dst_pitch)


def _pool(em: Emitter, layer, pool, oh_half: int, rows: int, cols: int, nog: int, nog_all: int,
          row0: int, o0: int, o1: int, p0: int, p1: int, c0: int, d0: int, dst_pitch: int,
          step: bool = True, src_flags: int = 0, avg_rq: tuple[int, int] | None = None) -> None:
    """POOL (+ the average's REQUANT) of one tile from cv_buf, or from in_buf with
    ``src_flags`` (POOL_SRC_IN | POOL_IN_HALF: a standalone pool); ``avg_rq`` overrides
    the average's (mult, shift)."""
    from ..quantize.layers import avg_requant, avg_scales, pool_zero_points
    from ..quantize.reference import avg_constants, avg_divisors, avg_sum_offset

    if pool.global_pool:
        pk, ps, pads = (rows, cols), (1, 1), (0, 0)
    else:
        pk, ps, pads = pool.kernel, pool.stride, (pool.pads[0], pool.pads[1])
    regs = {isa.PL_ROWS: o1 - o0, isa.PL_COLS: p1 - p0, isa.PL_OG: nog, isa.PL_KH: pk[0],
            isa.PL_KW: pk[1], isa.PL_SY: ps[0], isa.PL_SX: ps[1],
            isa.PL_Y0: o0 * ps[0] - pads[0] - c0, isa.PL_X0: p0 * ps[1] - pads[1] - d0,
            isa.PL_SRC_ROWS: rows, isa.PL_SRC_COLS: cols, isa.PL_DST_PITCH: dst_pitch,
            isa.PL_DST_ROW0: row0}
    if pool.kind == "max":
        em.compute(isa.OP_POOL, src_flags | (isa.HALF if oh_half else 0), regs, out_write=True,
                   step=step)
        return
    zp_in, zp_out = pool_zero_points(layer)
    if avg_rq is None:  # a fused pool with its own output scale
        avg_rq = avg_requant(layer)
    consts = avg_constants(pool, *layer.conv_hw, avg_rq, avg_scales(layer))
    dy, dx = avg_divisors(pool, *layer.conv_hw)  # a global pool: one window, the plane
    # One POOL + REQUANT per rectangle of windows with one divisor (ONE for a pool whose
    # windows all hold the same count). REQUANT walks its pixels row-major at one pitch,
    # so a run narrower than the tile is one output row at a time.
    ybands, xbands = _runs(dy[o0:o1], o0), _runs(dx[p0:p1], p0)
    rects = ([(y0, y1, p0, p1) for y0, y1 in ybands] if len(xbands) == 1 else
             [(y, y + 1, x0, x1) for y0, y1 in ybands for y in range(y0, y1) for x0, x1 in xbands])
    ocols = p1 - p0
    for y0, y1, x0, x1 in rects:
        m, s = consts[dy[y0] * dx[x0]]
        drow = row0 + ((y0 - o0) * ocols + (x0 - p0)) * dst_pitch
        em.compute(isa.OP_POOL, src_flags | isa.POOL_AVG, {
            **regs, isa.PL_ROWS: y1 - y0, isa.PL_COLS: x1 - x0,
            isa.PL_Y0: y0 * ps[0] - pads[0] - c0, isa.PL_X0: x0 * ps[1] - pads[1] - d0,
            isa.PL_DST_ROW0: drow}, step=step)
        em.compute(isa.OP_REQUANT, isa.RQ_AVG | (isa.RQ_OUT_HALF if oh_half else 0), {
            isa.RQ_ROWS: y1 - y0, isa.RQ_COLS: x1 - x0, isa.RQ_OG: nog, isa.RQ_VY0: 0,
            isa.RQ_VY1: y1 - y0, isa.RQ_VX0: 0, isa.RQ_VX1: x1 - x0,
            isa.RQ_DST_PITCH: dst_pitch, isa.RQ_DST_ROW0: drow, isa.RQ_AVG_MULT: int(m),
            isa.RQ_AVG_SHIFT: int(s),
            # zero points: this divisor's sum offset, the output's zero point
            **em.zero_points({isa.RQ_ZP_OUT: zp_out, isa.RQ_AVG_BIAS: avg_sum_offset(
                pool, *layer.conv_hw, zp_in, dy[y0] * dx[x0])})}, out_write=True, step=step)


def _runs(values: list[int], start: int) -> list[tuple[int, int]]:
    """Maximal runs of equal ``values`` as absolute [begin, end) index pairs (``values[0]``
    is index ``start``)."""
    runs, b = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[b]:
            runs.append((start + b, start + i))
            b = i
    return runs


def lower_fire_layer(em: Emitter, layer: FireLayer, tile: DaeTile, pl: LayerPlacement,
                     src: Tensor, dst: Tensor, first_layer: bool) -> None:
    """Instructions of one fire module: squeeze into sq_buf (with a 1-pixel halo), both
    expands from sq_buf into the two channel regions of the output tile (+pool)."""
    pe_oc = em.cfg.pe_oc
    sq, e1, e3, pool = layer.squeeze, layer.expand1, layer.expand3, layer.pool
    _check(e1.out_channels % PE_IC == 0, layer, "expand1 channels must be a multiple of 8")
    kh, kw = sq.kernel
    sy, sx = sq.stride
    pt, pl_, _, _ = sq.pads
    ch, cw = layer.conv_hw
    oc, oh, ow = layer.out_shape
    nog_s = cdiv(sq.out_channels, pe_oc)
    nog1, nog3 = cdiv(e1.out_channels, pe_oc), cdiv(e3.out_channels, pe_oc)
    pitch_all = nog1 + nog3
    sq_ng = groups(sq.out_channels)
    sblocks, sparams = pl.conv_blocks[0], pl.conv_params[0]
    ready = -1 if first_layer else em.input_ready()
    for o0, o1, p0, p1, c0, c1, d0, d1 in spatial_tiles(layer, tile):
        rows, cols = c1 - c0, d1 - d0
        hr, hc = rows + 2, cols + 2  # squeeze region with the halo
        iy0, ix0 = (c0 - 1) * sy - pt, (d0 - 1) * sx - pl_
        irows, icols = (hr - 1) * sy + kh, (hc - 1) * sx + kw
        # squeeze: all its channels in one oc tile, input channels in steps
        (paddr, _, poc_n), = sparams
        for j, (waddr, b) in enumerate(sblocks):
            ph = _input_step(em, ("in", id(layer), o0, p0, b.ic0), src, b, waddr, paddr,
                             nog_s, (iy0, ix0, irows, icols), (hr, hc), sq, j == 0, ready)
            if j == len(sblocks) - 1:
                # outside the plane the zero point (RQ_ZP_OUT): expand3's padding
                em.compute(isa.OP_REQUANT, (isa.HALF if ph else 0)
                           | (isa.RQ_RELU if sq.relu else 0) | (isa.RQ_DST_SQ << isa.RQ_DST_SHIFT), {
                    isa.RQ_ROWS: hr, isa.RQ_COLS: hc, isa.RQ_OG: nog_s,
                    isa.RQ_DST_PITCH: nog_s, isa.RQ_DST_ROW0: 0,
                    isa.RQ_VY0: max(0, 1 - c0), isa.RQ_VY1: min(hr, ch - c0 + 1),
                    isa.RQ_VX0: max(0, 1 - d0), isa.RQ_VX1: min(hc, cw - d0 + 1),
                    # the halo is the squeeze output's zero point (RQ_ZP_OUT)
                    **em.zero_points({isa.RQ_ZP_OUT: sq.zp_out})})
            em.end_step()
        oh_half = em.begin_tile()
        for conv, cp, cb, region, k3 in ((e1, pl.conv_params[1], pl.conv_blocks[1], 0, False),
                                         (e3, pl.conv_params[2], pl.conv_blocks[2], nog1, True)):
            for (paddr, poc0, poc_n), (waddr, b) in zip(cp, cb):
                nog = cdiv(poc_n, pe_oc)
                wh = em.load("w", ("w", waddr), isa.OP_LOAD_WEIGHT,
                             {isa.LW_ADDR: waddr, isa.LW_WORDS: b.words})
                ph = em.load("p", ("p", paddr), isa.OP_LOAD_PARAMS,
                             {isa.LP_ADDR: paddr, isa.LP_CHANNELS: nog * pe_oc})
                em.compute(isa.OP_CONV, isa.CONV_SRC_SQ | isa.CONV_FIRST
                           | (isa.CONV_W_HALF if wh else 0), {
                    isa.CV_ROWS: rows, isa.CV_COLS: cols, isa.CV_OG: nog,
                    isa.CV_KH: 3 if k3 else 1, isa.CV_KW: 3 if k3 else 1, isa.CV_SY: 1,
                    isa.CV_SX: 1, isa.CV_SRC_COLS: hc, isa.CV_NG: sq_ng,
                    isa.CV_SRC_PITCH: nog_s, isa.CV_SRC_Y0: 0 if k3 else 1,
                    isa.CV_SRC_X0: 0 if k3 else 1})
                row0 = region + poc0 // pe_oc
                if pool is None:
                    _epilogue(em, layer, None, ph, oh_half, rows, cols, nog, pitch_all, row0,
                              o0, o1, p0, p1, c0, d0, conv.relu, dst_pitch=pitch_all,
                              zp_out=conv.zp_out)
                else:
                    _epilogue(em, layer, pool, ph, oh_half, rows, cols, nog, pitch_all, row0,
                              o0, o1, p0, p1, c0, d0, conv.relu, dst_pitch=pitch_all,
                              to_cv_pitch=pitch_all, zp_out=conv.zp_out)
                em.end_step()
        if pool is not None:
            _pool(em, layer, pool, oh_half, rows, cols, pitch_all, pitch_all, 0, o0, o1,
                  p0, p1, c0, d0, pitch_all, step=False)
        em.end_tile_compute()
        for ng, row0, g0 in ((groups(e1.out_channels), 0, 0),
                             (groups(e3.out_channels), nog1, e1.out_channels // PE_IC)):
            em.store({isa.ST_BASE: dst.base, isa.ST_H: dst.h, isa.ST_W: dst.w,
                      isa.ST_G: dst.pixel_groups, isa.ST_Y0: o0, isa.ST_X0: p0,
                      isa.ST_G0: dst.g0 + g0,
                      isa.ST_ROWS: o1 - o0, isa.ST_COLS: p1 - p0, isa.ST_NG: ng,
                      isa.ST_PITCH: pitch_all, isa.ST_ROW0: row0}, oh_half)
        em.end_tile_store()


# --- standalone pool / concat (issue 11 item 4)
def pool_channel_tile(layer: PoolLayer, tile: DaeTile, pe_oc: int) -> int:
    """Channels per tile of a standalone pool: ``tile.toc`` rounded down to pe_oc (so each
    tile's groups start a row of in_buf/out_buf), all of them when toc covers them."""
    c = layer.in_shape[0]
    return c if tile.toc >= c else max(pe_oc, tile.toc // pe_oc * pe_oc)


def lower_pool_layer(em: Emitter, layer: PoolLayer, tile: DaeTile, src: Tensor, dst: Tensor,
                     first_layer: bool) -> None:
    """Instructions of a standalone pool: per spatial tile and channel tile, LOAD_INPUT of
    the input rows/columns the windows touch inside the image (no zeros: taps outside the
    loaded tile are skipped, as padding), POOL from in_buf (pitch = og, cv_buf's layout)
    into out_buf (+ the average's REQUANT), STORE."""
    pe_oc, K = em.cfg.pe_oc, em.cfg.k
    c = layer.in_shape[0]
    ct = pool_channel_tile(layer, tile, pe_oc)
    ready = -1 if first_layer else em.input_ready()
    rq = (layer.mult, layer.shift) if layer.mult is not None else None
    for o0, o1, p0, p1, c0, c1, d0, d1 in spatial_tiles(layer, tile):
        rows, cols = c1 - c0, d1 - d0
        for ch0 in range(0, c, ct):
            ng = groups(min(ct, c - ch0))
            nog = cdiv(ng, K)  # in_buf pitch = PE_OC-channel groups of the tile
            oh_half = em.begin_tile()
            ih = em.load("in", ("pool", id(layer), o0, p0, ch0), isa.OP_LOAD_INPUT, {
                isa.LI_BASE: src.base, isa.LI_H: src.h, isa.LI_W: src.w,
                isa.LI_G: src.pixel_groups, isa.LI_Y0: c0, isa.LI_X0: d0,
                isa.LI_G0: src.g0 + ch0 // PE_IC, isa.LI_ROWS: rows, isa.LI_COLS: cols,
                isa.LI_NG: ng, isa.LI_PITCH: nog}, ready)
            _pool(em, layer, layer.pool, oh_half, rows, cols, nog, nog, 0, o0, o1, p0, p1,
                  c0, d0, nog, src_flags=isa.POOL_SRC_IN | (isa.POOL_IN_HALF if ih else 0),
                  avg_rq=rq)
            em.end_step()
            em.end_tile_compute()
            em.store({isa.ST_BASE: dst.base, isa.ST_H: dst.h, isa.ST_W: dst.w,
                      isa.ST_G: dst.pixel_groups, isa.ST_Y0: o0, isa.ST_X0: p0,
                      isa.ST_G0: dst.g0 + ch0 // PE_IC, isa.ST_ROWS: o1 - o0,
                      isa.ST_COLS: p1 - p0, isa.ST_NG: ng, isa.ST_PITCH: nog,
                      isa.ST_ROW0: 0}, oh_half)
            em.end_tile_store()


def lower_layers(cfg: DaeConfig, layers, tiles, tensors: list[tuple[Tensor, Tensor]]
                 ) -> tuple[list[int], list[LayerPlacement], int, list[int]]:
    """The whole program: (instruction words, constant placements, weight words, index of
    each layer's last word). ``tensors``: per layer (input, output) placements, plus the
    bypass for a :class:`ConvAddLayer` (input, output, bypass)."""
    placements, wwords = place_constants(layers, tiles, cfg.pe_oc)
    em = Emitter(cfg)
    ends = []
    for i, (layer, tile, pl, (src, dst, *bp)) in enumerate(zip(layers, tiles, placements, tensors)):
        if i:
            em.layer_barrier()
        try:
            if isinstance(layer, FireLayer):
                lower_fire_layer(em, layer, tile, pl, src, dst, i == 0)
            elif isinstance(layer, PoolLayer):
                lower_pool_layer(em, layer, tile, src, dst, i == 0)
            else:
                lower_conv_layer(em, layer, tile, pl, src, dst, i == 0, bp[0] if bp else None)
        except ScheduleError as e:
            if str(e).startswith(f"{layer.name}: "):
                raise
            raise ScheduleError(f"{layer.name}: {e}") from None
        ends.append(len(em.words) - 1)
    words = em.finish()
    return words, placements, wwords, ends
