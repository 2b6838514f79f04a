"""Choose the decoupled engine (``DaeConfig``) for a model on a board (docs/ENGINE.md).

1. ``k``: the largest MAC array (``pe_oc = 8k`` rows of 8 DSP48 products plus ``pe_oc``
   requantization lanes, ``dae_resources.dsp_breakdown``) within ``MAX_DSP_UTIL`` of the
   board's DSPs (Zybo Z7-20: k=3 -> 192 + 24 = 216 of 220). If the engine at that ``k``
   cannot fit (LUT), the next smaller ``k`` is tried.
2. Buffer depths sized to what the model's layers need: every layer gets dae_tiling's
   largest-first tile (its first candidate) on a *cap* configuration (first generous:
   65536 rows, p_buf 64 rows so it stays in LUTRAM), the per-buffer maximum of
   ``dae_tiling.needs`` over the
   layers, plus ``margin`` (1/16, room for tuning-log tiles; not for LUTRAM banks, whose
   needs are exact), is rounded up to the buffer's storage granule
   (``dae_resources.round_depth``: 512 rows once a bank is in BRAM -- the depth of a
   RAMB18 in its widest aspect, so any depth within a step costs the same BRAM and a power
   of two would waste up to half of it -- and 32 rows while it is LUTRAM).
3. The sized engine must fit: BRAM18K <= ``MAX_BRAM_UTIL`` (90 %), LUT <= ``MAX_LUT_UTIL``
   (70 %), DSP <= 100 %, FF <= 100 % of the board. If BRAM does not, the cap of the buffer
   that costs the most BRAM18K is lowered so that its sized depth drops by one storage
   step (512 rows; up to a quarter at once while it is deeper than 2048 rows; a need inside
   a step would cost tiles and save nothing) and the layers are re-tiled (smaller tiles
   for the layers that set the need); LUT over the limit shrinks the LUTRAM buffers the
   same way. A buffer whose next cap leaves some layer without a tile is frozen. When
   nothing can shrink, or DSP/FF/LUT are over even with the smallest buffers,
   ``ScheduleError`` names the resource.

Tile choice: the sizing loop uses the largest-first choice (fast). Then, when
``schedule.timing`` is importable (and ``use_timing``), each layer's tile is re-chosen
under the converged caps by ``layer_cycles`` (at the board's DDR bandwidth) among its
``SHORTLIST`` largest candidates only (those whose ``timing_bound`` exceeds the best
cycles found are not simulated: same choice) -- and the buffers are re-sized to those
tiles; that engine is kept when it fits, else the largest-first one. ``DaeEngineChoice.cost`` says which. Deterministic either way; depths
do not change the cycle model, so one cost configuration serves every cap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..boards import Board
from ..engine.dae_config import DaeConfig, DaeTile
from ..errors import ScheduleError
from . import dae_tiling
from .instructions import needs_wide_requant
from .dae_resources import (ACC_BITS, LUTRAM_MAX_DEPTH, WORD_BITS, DaeResourceUse,
                            board_fits, dae_arrays, estimate, round_depth)

MAX_BRAM_UTIL = 0.90
MAX_LUT_UTIL = 0.70
MAX_DSP_UTIL = 1.00
MAX_FF_UTIL = 1.00
LIMITS = {"bram18k": MAX_BRAM_UTIL, "dsp": MAX_DSP_UTIL, "lut": MAX_LUT_UTIL, "ff": MAX_FF_UTIL}
DEPTH_MARGIN = 1 / 16   # extra rows over the largest need, before rounding (tuning-log room)
GENEROUS_ROWS = 1 << 16  # first cap of every buffer: no layer of an ImageNet CNN needs more
P_ROWS_CAP = 64          # p_buf stays within one RAM64M column (LUTRAM, see dae_resources)
SHRINK = 0.75            # a capped buffer's next cap, as a fraction of its current need
SHORTLIST = 4            # largest candidates per layer that the timing cost compares
MAX_STEPS = 200          # bound on shrink iterations (each lowers one cap)

BUFFERS = ("in_buf", "w_buf", "p_buf", "acc", "cv_buf", "sq_buf", "out_buf", "bp_buf")
_FIELD = {"in_buf": "in_rows", "w_buf": "w_rows", "p_buf": "p_rows", "acc": "acc_rows",
          "cv_buf": "cv_rows", "sq_buf": "sq_rows", "out_buf": "out_rows", "bp_buf": "bp_rows"}
_BITS = {b: (ACC_BITS if b == "acc" else WORD_BITS) for b in BUFFERS}


@dataclass(frozen=True)
class DaeEngineChoice:
    """The chosen engine, the tiles it was sized for (one per layer, in order), the rows
    each buffer needs (max over layers) and the modeled resources."""

    cfg: DaeConfig
    tiles: tuple[DaeTile, ...]
    needs: dict
    use: DaeResourceUse
    board: str
    cost: str  # "timing" or "largest-first"

    def to_json(self) -> dict:
        return {"cfg": self.cfg.to_json(), "tiles": [t.to_json() for t in self.tiles],
                "needs": dict(self.needs), "resources": self.use.to_json(),
                "board": self.board, "cost": self.cost}


def _layer(x):
    return x[0] if isinstance(x, tuple) else x


def _timing_cost():
    """(layer_cycles, its lower bound), or None without the fast model."""
    try:
        from .timing import layer_cycles
        from .timing_bound import layer_cycles_bound
    except ImportError:  # the fast model is optional: fall back to largest-first
        return None
    return layer_cycles, layer_cycles_bound


def max_k(board: Board, setup_mul_impl: str = "fabric") -> int:
    """The largest k (1..4) whose DSP48s fit within MAX_DSP_UTIL of ``board`` (0: none)."""
    for k in (4, 3, 2, 1):
        if estimate(DaeConfig(k=k), setup_mul_impl).dsp <= int(MAX_DSP_UTIL * board.dsp):
            return k
    return 0


def _cap_config(k: int, caps: dict, clock_mhz: float) -> DaeConfig:
    return DaeConfig(k=k, clock_mhz=clock_mhz, **{_FIELD[b]: max(16 if b != "p_buf" else 1,
                                                                 caps[b]) for b in BUFFERS})


def sized_config(k: int, need: dict, clock_mhz: float, margin: float = DEPTH_MARGIN,
                 wide_rq: bool = False) -> DaeConfig:
    """An engine whose depths hold ``need`` (rows per bank) plus ``margin``, rounded up to
    each buffer's storage granule; ``wide_rq``: with the 22-bit requantization multiplier
    (``instructions.needs_wide_requant`` of the layers)."""
    def rows(b):
        n = need.get(b, 0)
        base = round_depth(n, _BITS[b], minimum=16)
        if base <= LUTRAM_MAX_DEPTH:
            return base  # LUTRAM banks (p_buf) are sized exactly: their needs are exact
        return round_depth(n + math.ceil(n * margin), _BITS[b], minimum=16)
    # the residual add's datapath only when a layer adds a bypass (it costs LUTs)
    return DaeConfig(k=k, clock_mhz=clock_mhz, residual=need.get("bp_buf", 0) > 0,
                     wide_rq=wide_rq, **{_FIELD[b]: rows(b) for b in BUFFERS})


def _largest(cfg: DaeConfig, layer) -> DaeTile:
    """dae_tiling's largest-first choice: its first candidate (ScheduleError naming the
    buffer when none fits)."""
    cands = dae_tiling.candidates(cfg, layer)
    if not cands:
        _, _, ow = layer.out_shape
        glob = layer.pool is not None and layer.pool.global_pool
        smallest = DaeTile(cfg.pe_oc, 8, 1, ow if glob else 1)
        why = dae_tiling.overflow(cfg, layer, smallest) or "no candidate"
        raise ScheduleError(f"{layer.name}: no tile fits the engine ({why})")
    return cands[0]


def _next_cap(depth: int, bits: int, margin: float) -> int:
    """The largest need whose sized depth is one storage step below ``depth`` (several
    steps at once while the bank is deep: at most SHRINK of it). Shrinking a need inside a
    step would cost tiles and save nothing."""
    if depth <= LUTRAM_MAX_DEPTH:
        return depth - 32                      # RAM32M steps, no margin
    if depth <= 512:
        return LUTRAM_MAX_DEPTH                # from one RAMB18 row to LUTRAM
    target = depth - 512
    if depth > 2048:
        target = min(target, int(depth * SHRINK) // 512 * 512)
    return int(target / (1 + margin))


class _Tiler:
    """Largest-first tile per layer under caps, memoized on the caps that can matter."""

    def __init__(self, k: int, layers, clock_mhz: float):
        self.k, self.layers, self.clock = k, layers, clock_mhz
        gen = _cap_config(k, {b: GENEROUS_ROWS for b in BUFFERS}, clock_mhz)
        # the largest tile's needs bound what any tile of the layer needs: caps above
        # them do not change the layer's candidates (memo key)
        self.top = [dae_tiling.needs(gen, l, _largest(gen, l)) for l in layers]
        self.memo: dict = {}

    def tile(self, i: int, caps: dict) -> DaeTile:
        key = (i, tuple(min(caps[b], self.top[i][b]) for b in BUFFERS))
        t = self.memo.get(key)
        if t is None:
            t = self.memo[key] = _largest(_cap_config(self.k, caps, self.clock), self.layers[i])
        return t

    def tiles(self, caps: dict) -> list[DaeTile]:
        return [self.tile(i, caps) for i in range(len(self.layers))]

    def needs(self, tiles) -> dict:
        cfg = _cap_config(self.k, {b: GENEROUS_ROWS for b in BUFFERS}, self.clock)
        need = {b: 0 for b in BUFFERS}
        for layer, t in zip(self.layers, tiles):
            for b, n in dae_tiling.needs(cfg, layer, t).items():
                need[b] = max(need[b], n)
        return need


def _timed_tiles(k: int, layers, caps: dict, clock_mhz: float, board: Board
                 ) -> list[DaeTile] | None:
    """Per layer, the fastest by ``timing.layer_cycles`` of the SHORTLIST largest tiles
    that fit ``caps`` (None without the timing module). One cost configuration for all
    caps: depths do not change the cycle model, so its cache is shared."""
    model = _timing_cost()
    if model is None:
        return None
    cycles, bound = model
    cap_cfg = _cap_config(k, caps, clock_mhz)
    cost_cfg = DaeConfig(k=k, clock_mhz=clock_mhz)
    beat = cost_cfg.beat_x100(board.ddr_gbps * 1e9)  # the board's DDR shared by 3 ports
    out = []
    for layer in layers:
        cands = dae_tiling.candidates(cap_cfg, layer)[:SHORTLIST]
        best, _ = dae_tiling.fastest(  # pruned by the bound: the same choice as timing all
            cands, lambda c: cycles(cost_cfg, layer, c, beat),
            lambda c: bound(cost_cfg, layer, c, beat),
            tie=lambda c: (-c.toc, -c.th * c.tw, -c.tic, -c.tw))
        out.append(best)
    return out


def _floor_config(k: int, clock_mhz: float, residual: bool, wide_rq: bool) -> DaeConfig:
    """The least logic buffers can cost: every BRAM-able buffer one RAMB18 deep (BRAM, no
    LUTRAM), p_buf at its 16-row minimum (LUTRAM); the residual add's datapath as sized."""
    return DaeConfig(k=k, clock_mhz=clock_mhz, p_rows=16, residual=residual, wide_rq=wide_rq,
                     **{_FIELD[b]: 512 for b in BUFFERS if b != "p_buf"})


def _over(use: DaeResourceUse, board: Board) -> list[str]:
    ok = board_fits(use, board, LIMITS)
    return [k for k in ("dsp", "lut", "ff", "bram18k") if not ok[k]]


def _describe(use: DaeResourceUse, board: Board, key: str) -> str:
    avail = getattr(board, key)
    name = {"bram18k": "BRAM18K", "dsp": "DSP", "lut": "LUT", "ff": "FF"}[key]
    return (f"{name} {getattr(use, key):,} > {int(LIMITS[key] * avail):,} "
            f"({LIMITS[key]:.0%} of {avail:,})")


def size_engine(board: Board, layers, k: int, clock_mhz: float | None = None,
                use_timing: bool = True, margin: float = DEPTH_MARGIN,
                setup_mul_impl: str = "fabric") -> DaeEngineChoice:
    """Buffer depths for MAC array ``k`` on ``board``: sized to the layers' tiles, shrunk
    until BRAM fits. Raises ScheduleError naming the resource that does not fit."""
    layers = [_layer(x) for x in layers]
    if not layers:
        raise ScheduleError("no layers to size the engine for")
    clock = clock_mhz or board.default_clock_mhz
    tiler = _Tiler(k, layers, clock)
    caps = {b: GENEROUS_ROWS for b in BUFFERS}
    caps["p_buf"] = P_ROWS_CAP
    frozen: set[str] = set()
    tiles = tiler.tiles(caps)
    for _ in range(MAX_STEPS):
        need = tiler.needs(tiles)
        cfg = sized_config(k, need, clock, margin, needs_wide_requant(layers))
        use = estimate(cfg, setup_mul_impl)
        over = _over(use, board)
        if not over:
            return _finish(board, layers, k, caps, clock, margin, setup_mul_impl, use_timing,
                           DaeEngineChoice(cfg, tuple(tiles), need, use, board.name,
                                           "largest-first"))
        if over != ["bram18k"]:
            # buffers cannot fix DSP or FF, and LUT only through LUTRAM banks: give up
            # when even the smallest buffers are over
            floor = estimate(_floor_config(k, clock, cfg.residual, cfg.wide_rq), setup_mul_impl)
            hard = [o for o in over if o != "bram18k" and getattr(floor, o)
                    > int(LIMITS[o] * getattr(board, o))]
            if hard:
                raise ScheduleError(f"engine k={k} does not fit {board.name}: "
                                    + "; ".join(_describe(floor, board, o) for o in hard)
                                    + " with the smallest buffers (LUT/FF are estimates)")
        arrays = {a.name: a for a in dae_arrays(cfg)}
        bram = {b: arrays[b].bram18k for b in BUFFERS if b in arrays}  # no bp_buf: no add
        if "bram18k" in over:  # shrink what costs the most BRAM18K
            score = bram
        else:                  # LUT: shrink what costs the most LUTRAM
            score = {b: arrays[b].luts if arrays[b].storage == "lutram" else 0 for b in bram}
        order = sorted((b for b in bram if b not in frozen and score[b] > 0),
                       key=lambda b: (-score[b], b))
        for b in order:
            trial = dict(caps)
            trial[b] = min(caps[b], _next_cap(getattr(cfg, _FIELD[b]), _BITS[b], margin))
            if trial[b] >= need[b] or trial[b] < 1:
                frozen.add(b)  # no smaller need to ask for
                continue
            try:
                new_tiles = tiler.tiles(trial)
            except ScheduleError:
                frozen.add(b)  # some layer has no tile below this need
                continue
            caps, tiles = trial, new_tiles
            break
        else:
            sizes = ", ".join(f"{b} {bram[b]}" for b in bram if bram[b])
            raise ScheduleError(
                f"engine k={k} does not fit {board.name}: "
                + "; ".join(_describe(use, board, o) for o in over)
                + f" with the smallest tiles every layer allows (BRAM18K by buffer: {sizes})")
    raise ScheduleError(f"engine k={k} on {board.name}: buffer sizing did not converge")


def _finish(board, layers, k, caps, clock, margin, setup_mul_impl, use_timing,
            largest: DaeEngineChoice) -> DaeEngineChoice:
    """With the timing model: re-choose the tiles under the converged caps by modeled
    cycles and re-size; kept only if that engine fits too."""
    if not use_timing:
        return largest
    tiles = _timed_tiles(k, layers, caps, clock, board)
    if tiles is None:
        return largest
    cfg0 = _cap_config(k, {b: GENEROUS_ROWS for b in BUFFERS}, clock)
    need = {b: 0 for b in BUFFERS}
    for layer, t in zip(layers, tiles):
        for b, n in dae_tiling.needs(cfg0, layer, t).items():
            need[b] = max(need[b], n)
    cfg = sized_config(k, need, clock, margin, needs_wide_requant(layers))
    use = estimate(cfg, setup_mul_impl)
    if _over(use, board):
        return largest
    return DaeEngineChoice(cfg, tuple(tiles), need, use, board.name, "timing")


def search_dae_engine(board: Board, layers, clock_mhz: float | None = None,
                      use_timing: bool = True, margin: float = DEPTH_MARGIN,
                      setup_mul_impl: str = "fabric") -> DaeEngineChoice:
    """The engine for ``layers`` (ConvLayer / FireLayer, or (layer, in, out) tuples) on
    ``board``: the largest k the DSPs allow, buffers sized to the layers' needs; a smaller
    k only when the larger does not fit. Raises ScheduleError naming the resource."""
    top = max_k(board, setup_mul_impl)
    if top == 0:
        use = estimate(DaeConfig(k=1), setup_mul_impl)
        raise ScheduleError(f"no engine fits {board.name}: {_describe(use, board, 'dsp')}")
    errors = []
    for k in range(top, 0, -1):
        try:
            return size_engine(board, layers, k, clock_mhz, use_timing, margin, setup_mul_impl)
        except ScheduleError as e:
            errors.append(str(e))
    raise ScheduleError(f"no engine fits {board.name}: " + " | ".join(errors))


def fit_report(cfg: DaeConfig, board: Board, setup_mul_impl: str = "fabric") -> dict:
    """Per resource (bram18k, dsp, lut, ff): used, available, percent, the search's limit
    (``limit_percent`` and ``limit`` in units), ``headroom`` to that limit, ``fits``;
    LUT/FF are flagged ``estimate``. BRAM18K per buffer: ``dae_resources.estimate(cfg).bram``."""
    use = estimate(cfg, setup_mul_impl)
    out = {}
    for key in ("bram18k", "dsp", "lut", "ff"):
        avail = getattr(board, key)
        used = getattr(use, key)
        limit = int(LIMITS[key] * avail)
        out[key] = {"used": used, "available": avail,
                    "percent": round(100.0 * used / avail, 1),
                    "utilization": round(used / avail, 4),
                    "limit_percent": round(100 * LIMITS[key]), "limit": limit,
                    "headroom": limit - used, "fits": used <= limit}
    out["lut"]["estimate"] = True
    out["ff"]["estimate"] = True
    return out


__all__ = ["DaeEngineChoice", "LIMITS", "fit_report", "max_k", "search_dae_engine",
           "size_engine", "sized_config"]
