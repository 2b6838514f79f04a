"""The search space: which engines and tiles a tuner may try, and the check every
candidate passes before it is measured.

Tunable (what the HLS source takes as a parameter, ``DaeConfig.macros()``):

* ``k`` -- the MAC array ``8k x 8`` (``pe_oc = 8k`` output channels per cycle), from 1 to
  the largest the board's DSP48s allow (``dae_engine_search.max_k``);
* the PL clock, from ``task.clock_choices`` (capped per board family, ``task.MAX_CLOCK``);
* per layer (by ``layer_signature``) the tile ``toc, tic, th, tw``: the union, over
  buffer depths stepping through the storage granules (``DEPTH_LEVELS``), of
  ``dae_tiling.candidates`` -- for each output-channel tile, input-channel step and
  column tile, the largest row tile that fits that depth -- plus the default tiler's
  choice; a tile whose buffers alone would not fit the board is left out;
* the buffer depths, in granules (512 rows per bank for BRAM, 32 for LUTRAM): derived,
  not free -- a candidate's depths are the smallest granule-rounded depths that hold its
  tiles (``dae_engine_search.sized_config`` without margin), and when that is over the
  LUT limit, the LUTRAM buffers with the most LUTs move to one BRAM granule (512 rows)
  until it is not. A deeper buffer costs BRAM18K or LUTs and no cycle: the cycle model
  (= the C simulation) does not depend on depths, only on which tiles fit them.

Fixed by the hardware as built, so not in the space (docs/ENGINE.md, "Parameters"):

* requantization lanes: always ``pe_oc`` (one per MAC-array row), so they follow ``k``;
* the AXI data width: 64 bits (``ap_uint<64>`` ports, one activation word of 8 int8
  channels per beat; the ISA's addresses and the packing are in these words);
* double buffering: every load/compute/store buffer is a ping-pong pair and the token
  protocol (docs/ENGINE.md, schedule/instructions.py) relies on it;
* loop order: the lowering emits one order (oc tile, spatial tile, input step, VTA's),
  which the instruction stream and the weight packing encode;
* fusion: what runs as one accelerator layer (a fire module; conv + bias + ReLU + pool)
  is the partitioner's pattern choice, not a schedule choice -- nothing to search;
* queue and token depths and the HP-port timing constants.

Every candidate is checked by ``check`` before it is measured: the engine within the
resource model's limits on the board (``dae_engine_search.LIMITS``: BRAM18K <= 90 %, LUT
<= 70 %, DSP and FF <= 100 %) and every tile within the engine's buffers
(``dae_tiling.overflow``). A rejected candidate's reason names the resource or buffer.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

from ..engine.dae_config import DaeConfig, DaeTile
from ..errors import ScheduleError
from ..quantize.layers import layer_signature
from ..schedule import dae_tiling
from ..schedule.instructions import needs_wide_requant
from ..schedule.dae_engine_search import (
    BUFFERS,
    LIMITS,
    P_ROWS_CAP,
    max_k,
    search_dae_engine,
    sized_config,
)
from ..schedule.dae_resources import board_fits, dae_arrays, estimate
from .candidate import Candidate
from .measure import TuneTask

# Buffer depth caps (rows per bank) the tile set is drawn under: each step of the BRAM
# granule up to 8 RAMB18 rows deep, then doubling; the last is "no limit".
DEPTH_LEVELS = (512, 1024, 1536, 2048, 2560, 3072, 4096, 6144, 8192, 1 << 16)
_FIELD = {"in_buf": "in_rows", "w_buf": "w_rows", "p_buf": "p_rows", "acc": "acc_rows",
          "cv_buf": "cv_rows", "sq_buf": "sq_rows", "out_buf": "out_rows", "bp_buf": "bp_rows"}
BRAM_GRANULE = 512  # rows: one RAMB18 deep at 36 bits, the smallest BRAM bank of a buffer
_NAMES = {"bram18k": "BRAM18K", "dsp": "DSP", "lut": "LUT", "ff": "FF"}


@dataclass(frozen=True)
class Point:
    """A candidate as indices: ``engine`` into ``TuneSpace.engines``, ``tiles[i]`` into
    ``TuneSpace.tiles[k][i]`` (the space's i-th layer)."""

    engine: int
    tiles: tuple[int, ...]


def _cap_config(k: int, rows: int) -> DaeConfig:
    return DaeConfig(k=k, p_rows=P_ROWS_CAP, **{_FIELD[b]: rows for b in BUFFERS
                                                 if b != "p_buf"})


def resource_reason(cfg: DaeConfig, board, limits=LIMITS, setup_mul_impl: str = "fabric"
                    ) -> str | None:
    """Why ``cfg`` does not fit ``board`` within ``limits`` ("BRAM18K 260 > 252 (90 % of
    280)"), or None."""
    use = estimate(cfg, setup_mul_impl)
    ok = board_fits(use, board, limits)
    over = [k for k in ("dsp", "bram18k", "lut", "ff") if not ok[k]]
    if not over:
        return None
    parts = []
    for key in over:
        avail = getattr(board, key)
        parts.append(f"{_NAMES[key]} {getattr(use, key):,} > {int(limits[key] * avail):,} "
                     f"({limits[key]:.0%} of {avail:,})")
    return "resources: " + "; ".join(parts)


def check_candidate(task: TuneTask, cand: Candidate, limits=LIMITS,
                    setup_mul_impl: str = "fabric") -> str | None:
    """Why ``cand`` cannot be measured for ``task`` (a layer without a tile, a tile that
    overflows a buffer, an engine over the resource limits), or None when it can."""
    tiles = cand.tile_map
    for layer in task.layers:
        sig = layer_signature(layer)
        t = tiles.get(sig)
        if t is None:
            return f"{layer.name}: no tile for layer {sig}"
        why = dae_tiling.overflow(cand.engine, layer, t)
        if why is not None:
            return f"{layer.name}: tile {t.toc}/{t.tic}/{t.th}/{t.tw} overflows {why}"
    return resource_reason(cand.engine, task.board, limits, setup_mul_impl)


class TuneSpace:
    """Engines (k x clock) and per-layer tiles for ``task`` (see the module docstring).

    ``ks`` / ``clocks`` restrict the engine axes. ``caps``: k -> DaeConfig whose depths
    bound every tile (a sub-space where any tile combination fits: the benchmark's
    exhaustive optimum uses one). ``max_tiles``: keep at most this many tiles per layer,
    evenly spread over the largest-first list (small spaces, e.g. for a grid).
    Deterministic: tiles are sorted largest first."""

    def __init__(self, task: TuneTask, *, ks=None, clocks=None, caps: dict | None = None,
                 max_tiles: int | None = None, limits=LIMITS, setup_mul_impl: str = "fabric"):
        self.task, self.board = task, task.board
        self.limits, self.setup_mul_impl = limits, setup_mul_impl
        self.layers = task.layers
        self.wide_rq = needs_wide_requant(self.layers)
        self.sigs = [layer_signature(layer) for layer in self.layers]
        top = max_k(self.board, setup_mul_impl)
        self.ks = tuple(sorted(ks)) if ks else tuple(range(1, top + 1))
        self.clocks = tuple(sorted(clocks)) if clocks else tuple(task.clock_choices)
        if not self.ks or not self.clocks or not self.layers:
            raise ScheduleError("empty tuning space (no k, clock or layer)")
        for k in self.ks:
            if type(k) is not int or not 1 <= k <= 4:
                raise ScheduleError(f"k must be an integer in 1..4, got {k!r}")
            if k > top:
                raise ScheduleError(f"k={k} does not fit {self.board.name}: "
                                    f"{estimate(DaeConfig(k=k), setup_mul_impl).dsp} DSP48 > "
                                    f"{int(limits['dsp'] * self.board.dsp)}")
        for c in self.clocks:
            if not isinstance(c, (int, float)) or not 1.0 <= c <= 500.0:
                raise ScheduleError(f"clock {c!r} MHz is outside [1, 500] MHz")
        self.caps = caps or {}
        self.max_tiles = max_tiles
        self.engines = [(k, c) for k in self.ks for c in self.clocks]
        self._needs: dict = {}
        self._engines: dict = {}
        self._fit: dict = {}
        self._default: Candidate | None = None
        try:  # the default's tiles belong to the space (at its k), so tuning starts there
            d = self.default()
            self._extra = {(d.engine.k, i): d.tile_map[s] for i, s in enumerate(self.sigs)}
        except ScheduleError:  # nothing fits by default: the space may still hold some
            self._extra = {}
        self.tiles: dict[int, list[tuple[DaeTile, ...]]] = {
            k: [self._layer_tiles(k, i) for i in range(len(self.layers))] for k in self.ks}
        empty = [(k, self.layers[i].name) for k in self.ks
                 for i, ts in enumerate(self.tiles[k]) if not ts]
        if empty:
            raise ScheduleError(f"no tile of {empty[0][1]} fits {self.board.name} with k="
                                f"{empty[0][0]}")

    # ---- tiles and their buffer needs ------------------------------------------------
    def needs(self, k: int, i: int, tile: DaeTile) -> dict[str, int]:
        """Rows per bank each buffer needs for tile ``tile`` of layer ``i`` at ``k``."""
        key = (k, i, tile)
        n = self._needs.get(key)
        if n is None:
            n = self._needs[key] = dae_tiling.needs(DaeConfig(k=k), self.layers[i], tile)
        return n

    def _layer_tiles(self, k: int, i: int) -> tuple[DaeTile, ...]:
        layer = self.layers[i]
        found: set[DaeTile] = set()
        for rows in DEPTH_LEVELS:
            found.update(dae_tiling.candidates(_cap_config(k, rows), layer))
        if (k, i) in self._extra:
            found.add(self._extra[(k, i)])
        cap = self.caps.get(k)
        out = []
        for t in found:
            if cap is not None and dae_tiling.overflow(cap, layer, t) is not None:
                continue
            alone = self._engine_from_need(k, self.clocks[0], self.needs(k, i, t))
            if self._fits(alone):
                out.append(t)
        out.sort(key=lambda t: (-t.toc, -t.tic, -t.th, -t.tw))
        n = self.max_tiles
        if n is not None and len(out) > n:
            out = [out[round(j * (len(out) - 1) / max(1, n - 1))] for j in range(n)]
        return tuple(out)

    # ---- candidates ------------------------------------------------------------------
    def engine_for(self, k: int, clock: float, tiles) -> DaeConfig:
        """The engine of MAC array ``k`` at ``clock`` MHz whose depths are the smallest
        granules holding ``tiles`` (one per space layer, in order)."""
        need = {b: 0 for b in BUFFERS}
        for i, t in enumerate(tiles):
            for b, n in self.needs(k, i, t).items():
                need[b] = max(need[b], n)
        return self._engine_from_need(k, clock, need)

    def _engine_from_need(self, k: int, clock: float, need: dict) -> DaeConfig:
        key = (k, clock, tuple(need[b] for b in BUFFERS))
        cfg = self._engines.get(key)
        if cfg is not None:
            return cfg
        cfg = sized_config(k, need, clock, 0.0, self.wide_rq)
        lut_limit = int(self.limits["lut"] * self.board.lut)
        if estimate(cfg, self.setup_mul_impl).lut > lut_limit:
            # the smallest depth is not the cheapest in LUTs: a LUTRAM bank (<= 64 rows)
            # costs LUTs a BRAM bank does not; p_buf stays LUTRAM (P_ROWS_CAP)
            lutram = sorted((a for a in dae_arrays(cfg)
                             if a.storage == "lutram" and a.name != "p_buf"),
                            key=lambda a: (-a.luts, a.name))
            for a in lutram:
                cfg = dataclasses.replace(cfg, **{_FIELD[a.name]: BRAM_GRANULE})
                if estimate(cfg, self.setup_mul_impl).lut <= lut_limit:
                    break
        if len(self._engines) > 1 << 16:
            self._engines.clear()
        self._engines[key] = cfg
        return cfg

    def candidate(self, p: Point) -> Candidate:
        k, clock = self.engines[p.engine]
        tiles = [self.tiles[k][i][j] for i, j in enumerate(p.tiles)]
        return Candidate.make(self.engine_for(k, clock, tiles), dict(zip(self.sigs, tiles)))

    def overuse(self, cfg: DaeConfig) -> float:
        """How far ``cfg`` is over the resource limits: max over BRAM18K, DSP, LUT, FF of
        used / limit - 1, 0 when it fits (memoized)."""
        v = self._fit.get(cfg)
        if v is None:
            use = estimate(cfg, self.setup_mul_impl)
            v = 0.0
            for key in ("bram18k", "dsp", "lut", "ff"):
                limit = max(1, int(self.limits[key] * getattr(self.board, key)))
                v = max(v, getattr(use, key) / limit - 1.0)
            if len(self._fit) > 1 << 16:
                self._fit.clear()
            self._fit[cfg] = v
        return v

    def _fits(self, cfg: DaeConfig) -> bool:
        return self.overuse(cfg) <= 0.0

    def check(self, cand: Candidate) -> str | None:
        """``check_candidate`` against this space's task and limits."""
        return check_candidate(self.task, cand, self.limits, self.setup_mul_impl)

    def size(self) -> int:
        """Number of candidates (points) in the space."""
        return sum(math.prod(len(ts) for ts in self.tiles[k]) for k, _ in self.engines)

    def grid(self):
        """Every point, engine-major, tiles in space order (for small spaces only)."""
        for e, (k, _) in enumerate(self.engines):
            for idx in itertools.product(*(range(len(ts)) for ts in self.tiles[k])):
                yield Point(e, idx)

    def random_point(self, rng) -> Point:
        e = int(rng.integers(len(self.engines)))
        k = self.engines[e][0]
        return Point(e, tuple(int(rng.integers(len(ts))) for ts in self.tiles[k]))

    def nearest(self, k: int, i: int, tile: DaeTile) -> int:
        """Index of layer ``i``'s tile at ``k`` closest to ``tile`` (log-distance)."""
        def dist(t: DaeTile) -> float:
            return sum(abs(math.log2(a / b)) for a, b in
                       ((t.toc, tile.toc), (t.tic, tile.tic), (t.th, tile.th), (t.tw, tile.tw)))
        ts = self.tiles[k][i]
        return min(range(len(ts)), key=lambda j: (dist(ts[j]), j))

    def with_engine(self, p: Point, e: int) -> Point:
        """``p`` moved to engine ``e``: each tile mapped to its nearest at the new k."""
        k_old, k_new = self.engines[p.engine][0], self.engines[e][0]
        if k_old == k_new:
            return Point(e, p.tiles)
        return Point(e, tuple(self.nearest(k_new, i, self.tiles[k_old][i][j])
                              for i, j in enumerate(p.tiles)))

    def point_of(self, cand: Candidate) -> Point | None:
        """The point nearest ``cand`` (same k and clock, nearest tiles), None when its k
        or clock is outside the space."""
        key = (cand.engine.k, cand.engine.clock_mhz)
        if key not in self.engines:
            return None
        k = cand.engine.k
        tiles = cand.tile_map
        return Point(self.engines.index(key), tuple(
            self.nearest(k, i, tiles[s]) if s in tiles else 0 for i, s in enumerate(self.sigs)))

    def default(self) -> Candidate:
        """What a compile without a tuning log chooses: the engine search's engine at the
        board's default clock (``search_dae_engine``) and the default tiler's tile per
        layer (``schedule.select.choose_tiles``)."""
        if self._default is None:
            cfg = search_dae_engine(self.board, self.layers, self.board.default_clock_mhz,
                                    setup_mul_impl=self.setup_mul_impl).cfg
            self._default = Candidate.make(cfg, {s: dae_tiling.default_tile(cfg, layer)
                                                 for s, layer in zip(self.sigs, self.layers)})
        return self._default


__all__ = ["DEPTH_LEVELS", "Point", "TuneSpace", "check_candidate", "resource_reason"]
