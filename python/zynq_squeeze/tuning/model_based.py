"""The model-based strategy (``xgb``): AutoTVM's loop on this space.

1. The first batch: the default candidate, points near it and random points.
2. After each batch: fit ``cost_model.LayerCostModel`` on every measured layer (per-layer
   cycles of each measurement), predict every tile of every layer for every engine, and
   anneal on the predicted cost -- the models' latencies at each engine's clock, each
   layer weighted by how often it runs -- from the best measured points and from the
   predicted-best tile per layer. Candidates over the resource limits are penalized in
   proportion to the overuse so the chains can cross them towards fitting ones.
3. Propose the predicted-best unmeasured points, plus a few random ones (exploration,
   ``EPSILON``).

Without per-layer figures from the measurer, it falls back to annealing on measured
costs (``strategies.AnnealStrategy``).
"""
from __future__ import annotations

import math

import numpy as np

from ..quantize.layers import layer_signature
from .cost_model import LayerCostModel, layer_features
from .space import Point
from .strategies import AnnealStrategy, Strategy, neighbour

EPSILON = 0.1       # fraction of each batch drawn at random
CHAINS = 6          # annealing chains on the model per batch
STEPS = 250         # steps per chain
PENALTY = 20.0      # predicted cost x (1 + PENALTY x overuse) for a candidate over limits


class ModelBasedStrategy(Strategy):
    name = "xgb"

    def __init__(self, space, trials, seed=0):
        super().__init__(space, trials, seed)
        self.model = LayerCostModel(seed)
        self.fallback = AnnealStrategy(space, trials, seed)
        self.fallback.seen = self.seen  # one record of what was proposed
        self.fallback.points = self.points
        self.has_layers = None  # unknown until the first measurement
        self.fitted_at = -1
        self.table: dict | None = None
        self.measured: list[tuple[float, Point]] = []
        self.sig_index = {s: i for i, s in enumerate(space.sigs)}
        self.weights = self._layer_weights()
        self._feat: dict = {}
        self._beats = {c: self._beat(c) for c in space.clocks}

    # ---- what the model is fitted on ------------------------------------------------
    def _beat(self, clock: float) -> int:
        from ..engine.dae_config import DaeConfig
        from ..toolchain.relax_ext import DDR_EFFICIENCY

        return DaeConfig(clock_mhz=clock).beat_x100(
            self.space.board.ddr_gbps * 1e9 * DDR_EFFICIENCY)

    def _layer_weights(self) -> np.ndarray:
        """Per space layer: runs per inference over all models, each times its model's
        weight (a layer signature can occur several times)."""
        task = self.space.task
        w = np.zeros(len(self.space.sigs))
        self.counts = np.zeros(len(self.space.sigs))
        for name, _ in task.models:
            for fn in task.model_functions(name):
                for layer, _, _ in fn.layers:
                    i = self.sig_index[layer_signature(layer)]
                    w[i] += task.weight(name) * fn.batch
                    self.counts[i] += fn.batch
        return w

    def _features(self, k, beat, i, tile):
        key = (k, beat, i, tile)
        f = self._feat.get(key)
        if f is None:
            f = self._feat[key] = layer_features(self.space.layers[i], k, beat, tile)
        return f

    def update(self, cand, cost, measurement=None):
        super().update(cand, cost, measurement)
        self.fallback.update(cand, cost, measurement)
        if cost is None or measurement is None:
            return
        layers = (measurement.detail or {}).get("layers") if isinstance(
            measurement.detail, dict) else None
        self.has_layers = bool(layers) if self.has_layers is None else self.has_layers
        p = self.points.get(cand.key())
        if p is not None:
            self.measured.append((cost, p))
        if not layers:
            return
        eng = cand.engine
        beat = (measurement.detail or {}).get("beat_x100") or self._beat(eng.clock_mhz)
        tiles = cand.tile_map
        for sig, cyc in layers.items():
            i = self.sig_index.get(sig)
            if i is None or sig not in tiles or not self.counts[i]:
                continue
            self.model.add(self._features(eng.k, beat, i, tiles[sig]), cyc / self.counts[i])

    # ---- the model's view of the space ----------------------------------------------
    def _refit(self) -> None:
        self.model.fit()
        self.fitted_at = len(self.model)
        table = {}
        for k in self.space.ks:
            for clock in self.space.clocks:
                beat = self._beats[clock]
                if (k, beat) in table:
                    continue
                rows, spans = [], []
                for i, ts in enumerate(self.space.tiles[k]):
                    spans.append((len(rows), len(rows) + len(ts)))
                    rows += [self._features(k, beat, i, t) for t in ts]
                pred = self.model.predict(rows)
                table[(k, beat)] = [pred[a:b] * self.weights[i] for i, (a, b) in enumerate(spans)]
        self.table = table

    def predicted(self, p: Point) -> float:
        """Predicted cost (us) of ``p``, penalized by its resource overuse."""
        k, clock = self.space.engines[p.engine]
        per = self.table[(k, self._beats[clock])]
        cycles = sum(per[i][j] for i, j in enumerate(p.tiles))
        cand_engine = self.space.engine_for(k, clock, [self.space.tiles[k][i][j]
                                                       for i, j in enumerate(p.tiles)])
        over = self.space.overuse(cand_engine)
        return cycles / clock * (1.0 + PENALTY * over)

    def _greedy(self, e: int) -> Point:
        k, clock = self.space.engines[e]
        per = self.table[(k, self._beats[clock])]
        return Point(e, tuple(int(np.argmin(v)) for v in per))

    def _anneal_on_model(self) -> list[tuple[float, Point]]:
        starts = [p for _, p in sorted(self.measured, key=lambda x: x[0])[:CHAINS // 2]]
        starts += [self._greedy(e) for e in range(len(self.space.engines))]
        found: dict[Point, float] = {}
        for start in starts[:CHAINS + len(self.space.engines)]:
            cur, cur_c = start, self.predicted(start)
            found[cur] = cur_c
            for s in range(STEPS):
                temp = 0.02 * (1 - s / STEPS)
                q = neighbour(self.space, cur, self.rng, engine_prob=0.05)
                qc = found.get(q)
                if qc is None:
                    qc = found[q] = self.predicted(q)
                rel = (qc - cur_c) / cur_c
                if rel <= 0 or (temp > 0 and self.rng.random() < math.exp(-rel / temp)):
                    cur, cur_c = q, qc
        return sorted(((c, p) for p, c in found.items()), key=lambda x: x[0])

    # ---- proposals -------------------------------------------------------------------
    def propose(self, n):
        if self.has_layers is False:
            return self.fallback.propose(n)
        if len(self.model) < 2 * len(self.space.sigs):
            return self._first_batch(n)
        if self.fitted_at != len(self.model):
            self._refit()
        out = []
        n_rand = int(EPSILON * n + self.rng.random())
        for _, p in self._anneal_on_model():
            if len(out) >= n - n_rand:
                break
            c = self._take(p)
            if c is not None and self.space._fits(c.engine):
                out.append(c)
        for _ in range(1000 * n):
            if len(out) >= n:
                break
            c = self._take(self.space.random_point(self.rng))
            if c is not None:
                out.append(c)
        return out

    def _first_batch(self, n):
        out = []
        start = self.space.point_of(self.space.default())
        if start is not None:
            c = self._take(start)
            if c is not None:
                out.append(c)
        for t in range(1000 * n):
            if len(out) >= n:
                break
            if start is not None and t % 2 == 0:
                p = start
                for _ in range(1 + int(self.rng.integers(4))):
                    p = neighbour(self.space, p, self.rng, jump_prob=0.5)
            else:
                p = self.space.random_point(self.rng)
            c = self._take(p)
            if c is not None:
                out.append(c)
        return out
