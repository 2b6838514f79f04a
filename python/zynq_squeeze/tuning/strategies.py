"""Search strategies: which candidates to measure next.

A strategy proposes points of a ``TuneSpace`` and learns from their results. The tuner
calls ``propose(n)`` for up to ``n`` candidates not proposed before (fewer, or none,
when the space is exhausted) and ``update`` once per result: ``cost`` in microseconds
(lower is better; ``measure.cost_us``), None for a rejected or failed candidate. Results
read from a log on resume come through ``update`` too, before the first proposal.

* ``grid`` -- every point in order (small spaces; ``TuneSpace.grid``);
* ``random`` -- uniform points;
* ``anneal`` -- simulated annealing from the default candidate: one layer's tile (or
  the engine's k / clock) changes per step, a worse point is accepted with probability
  ``exp(-relative loss / T)``, T falling linearly to 0 over the trials;
* ``xgb`` -- model-based (``model_based.ModelBasedStrategy``): an XGBoost cost model of
  per-layer cycles fitted on the measured records, optimized by annealing on the model;
* ``auto`` -- grid when the whole space fits the trials, else xgb (anneal without
  XGBoost).

Deterministic for a given ``seed``.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import OptionError
from .candidate import Candidate
from .space import Point, TuneSpace

STRATEGIES = ("auto", "grid", "random", "anneal", "xgb")


class Strategy:
    """Base: bookkeeping of what was proposed and the best result so far."""

    name = "base"

    def __init__(self, space: TuneSpace, trials: int, seed: int = 0):
        self.space, self.trials = space, max(1, int(trials))
        self.rng = np.random.default_rng(seed)
        self.seen: set[str] = set()
        self.points: dict[str, Point] = {}  # key -> point, for candidates from the space
        self.best: tuple[float, Candidate] | None = None

    def _take(self, p: Point) -> Candidate | None:
        """The candidate of ``p`` if not proposed before (then marked proposed)."""
        c = self.space.candidate(p)
        k = c.key()
        if k in self.seen:
            return None
        self.seen.add(k)
        self.points[k] = p
        return c

    def propose(self, n: int) -> list[Candidate]:
        raise NotImplementedError

    def update(self, cand: Candidate, cost: float | None, measurement=None) -> None:
        k = cand.key()
        self.seen.add(k)
        if k not in self.points:
            # a candidate from elsewhere (the default, a log): its nearest point stands in
            # for it -- the same k, clock and tiles have the same cycles, whatever depths
            p = self.space.point_of(cand)
            if p is not None:
                self.points[k] = p
        if cost is not None and (self.best is None or cost < self.best[0]):
            self.best = (cost, cand)


class GridStrategy(Strategy):
    """Every point of the space in ``TuneSpace.grid`` order."""

    name = "grid"

    def __init__(self, space, trials, seed=0):
        super().__init__(space, trials, seed)
        self._it = space.grid()

    def propose(self, n):
        out = []
        for p in self._it:
            c = self._take(p)
            if c is not None:
                out.append(c)
                if len(out) >= n:
                    break
        return out


class RandomStrategy(Strategy):
    """Uniform points (k, clock and every layer's tile independently)."""

    name = "random"
    MAX_DRAWS = 1000  # draws per proposal before the space counts as exhausted

    def propose(self, n):
        out = []
        for _ in range(self.MAX_DRAWS * n):
            c = self._take(self.space.random_point(self.rng))
            if c is not None:
                out.append(c)
                if len(out) >= n:
                    break
        return out


def neighbour(space: TuneSpace, p: Point, rng, engine_prob: float = 0.1,
              jump_prob: float = 0.2) -> Point:
    """A point next to ``p``: with ``engine_prob`` another k or clock (tiles mapped to
    their nearest), else one layer's tile moved a few places in its largest-first list
    (``jump_prob``: anywhere in it)."""
    if len(space.engines) > 1 and rng.random() < engine_prob:
        e = int(rng.integers(len(space.engines) - 1))
        return space.with_engine(p, e + (e >= p.engine))
    k = space.engines[p.engine][0]
    i = int(rng.integers(len(p.tiles)))
    n = len(space.tiles[k][i])
    if n == 1:
        return p
    if rng.random() < jump_prob:
        j = int(rng.integers(n))
    else:
        step = int(rng.integers(1, 4)) * (1 if rng.random() < 0.5 else -1)
        j = min(n - 1, max(0, p.tiles[i] + step))
    tiles = list(p.tiles)
    tiles[i] = j
    return Point(p.engine, tuple(tiles))


class AnnealStrategy(Strategy):
    """Simulated annealing on measured costs, one candidate at a time, from the default
    candidate (or a random point when the default is outside the space)."""

    name = "anneal"
    T0 = 0.03            # initial temperature: a 3 % worse point is accepted with 1/e
    RESTART = 0.25       # fraction of the trials without improvement before a restart
    MAX_TRIES = 200      # neighbours drawn per proposal before giving up

    def __init__(self, space, trials, seed=0):
        super().__init__(space, trials, seed)
        self.current: tuple[float, Point] | None = None
        self.pending: Point | None = None
        self.steps = 0
        self.since_best = 0

    def _start(self) -> Point:
        p = self.space.point_of(self.space.default())
        return p if p is not None else self.space.random_point(self.rng)

    def propose(self, n):
        out = []
        for _ in range(n):
            base = self.current[1] if self.current else None
            c = None
            for _ in range(self.MAX_TRIES):
                p = (neighbour(self.space, base, self.rng) if base is not None
                     else (self._start() if not self.seen else self.space.random_point(self.rng)))
                c = self._take(p)
                if c is not None:
                    break
            if c is None:
                break
            out.append(c)
        return out

    def update(self, cand, cost, measurement=None):
        improved = cost is not None and (self.best is None or cost < self.best[0])
        super().update(cand, cost, measurement)
        p = self.points.get(cand.key())
        self.steps += 1
        self.since_best = 0 if improved else self.since_best + 1
        if cost is None or p is None:
            return
        if self.current is None:
            self.current = (cost, p)
            return
        temp = self.T0 * max(0.0, 1.0 - self.steps / self.trials)
        rel = (cost - self.current[0]) / self.current[0]
        if rel <= 0 or (temp > 0 and self.rng.random() < math.exp(-rel / temp)):
            self.current = (cost, p)
        if self.since_best > self.RESTART * self.trials and self.best is not None:
            bp = self.points.get(self.best[1].key())
            if bp is not None:  # back to the best point found
                self.current = (self.best[0], bp)
                self.since_best = 0


def get_strategy(name: str, space: TuneSpace, trials: int, seed: int = 0) -> Strategy:
    """The strategy ``name`` (one of ``STRATEGIES``) for ``space``; ``auto`` picks grid
    when the space has at most ``trials`` points, else xgb (anneal when XGBoost is not
    installed). Raises ``OptionError`` for an unknown name."""
    if name == "auto":
        if space.size() <= trials:
            name = "grid"
        else:
            try:
                import xgboost  # noqa: F401
                name = "xgb"
            except ImportError:
                name = "anneal"
    if name == "grid":
        return GridStrategy(space, trials, seed)
    if name == "random":
        return RandomStrategy(space, trials, seed)
    if name == "anneal":
        return AnnealStrategy(space, trials, seed)
    if name == "xgb":
        from .model_based import ModelBasedStrategy
        return ModelBasedStrategy(space, trials, seed)
    raise OptionError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
