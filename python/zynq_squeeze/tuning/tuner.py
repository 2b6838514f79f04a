"""``tune()``: search the engine and the layer tiles, measuring candidates, logging each.

The loop (AutoTVM's): the strategy proposes, every candidate is checked against the
resource model (a rejected one is logged with the reason and not measured), the
measurer measures, every result is appended to the log at once and fed back to the
strategy. The default candidate (what a compile without a log would build) is measured
first, so the log always holds the baseline the tuned result is compared with. Resume
(``resume=True``) reads the log's records of the same task and measurer, feeds them to
the strategy and never measures them again -- except failures marked ``"transient"``
(no RPC tracker or server reached: nothing was measured), which are tried again; only
new measurements count as trials.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OptionError
from ..progress import progress_bar
from .candidate import Candidate, Measurement
from .log import TuneLog
from .measure import Measurer, TuneTask, cost_us, get_measurer
from .space import TuneSpace
from .strategies import get_strategy
from .task import make_task

MAX_REJECT_FACTOR = 20  # rejected proposals allowed per trial before the search stops


@dataclass
class TuneResult:
    """What a tune found. ``history``: per new measurement (trial number, its cost or
    None, best cost so far), costs in microseconds (weighted latency)."""

    task: TuneTask
    space: TuneSpace
    strategy: str
    measurer: str
    best: Measurement | None
    best_cost_us: float | None
    default: Measurement | None
    default_cost_us: float | None
    trials: int = 0          # new measurements
    resumed: int = 0         # records read from the log
    rejected: int = 0        # candidates the resource model refused (logged, not measured)
    failed: int = 0          # measurements that returned an error
    seconds: float = 0.0
    log: Path | None = None
    history: list = field(default_factory=list)

    @property
    def speedup(self) -> float | None:
        """Default cost / best cost (> 1: the tuned schedule is faster)."""
        if self.best_cost_us and self.default_cost_us:
            return self.default_cost_us / self.best_cost_us
        return None

    def summary(self) -> dict:
        def cand(m):
            return None if m is None else {"engine": m.candidate.engine.to_json(),
                                           "cycles": m.cycles}
        return {"strategy": self.strategy, "measurer": self.measurer, "trials": self.trials,
                "resumed": self.resumed, "rejected": self.rejected, "failed": self.failed,
                "best_cost_us": self.best_cost_us, "default_cost_us": self.default_cost_us,
                "speedup": round(self.speedup, 4) if self.speedup else None,
                "best": cand(self.best), "default": cand(self.default),
                "seconds": round(self.seconds, 2), "log": str(self.log) if self.log else None}


def _measurer(measure, options) -> Measurer:
    if isinstance(measure, str):
        return get_measurer(measure, **(options or {}))
    if not hasattr(measure, "measure") or not hasattr(measure, "name"):
        raise OptionError(f"measure must be a measurer name or a Measurer, got {measure!r}")
    return measure


def _record_measurement(rec) -> Measurement:
    """A logged record as a Measurement (for the strategy on resume)."""
    cand = Candidate.make(rec.engine, rec.tiles)
    return Measurement(cand, rec.measurer, cycles=rec.cycles if rec.ok else None,
                       error=rec.error if not rec.ok else None,
                       resources=rec.raw.get("resources") or {},
                       seconds=float(rec.raw.get("seconds") or 0.0),
                       detail=rec.raw.get("detail") or {})


def tune(mod, board: str = "zybo-z7-20", trials: int = 200, log="tune.jsonl",
         strategy: str = "auto", measure="model", resume: bool = True, *, seed: int = 0,
         clocks=None, weights=None, calibration=None, measure_options: dict | None = None,
         space_options: dict | None = None, progress: bool = True) -> TuneResult:
    """Tune the engine and the tiles of ``mod`` for ``board``; returns a ``TuneResult``.

    ``mod``: a Relax module, several (a list, or a dict name -> module: one engine for
    all, the cost the sum of their latencies, ``weights`` name -> factor), or a
    ``TuneTask``. ``trials``: new measurements to make. ``log``: the JSON Lines file
    records are appended to (None: no log). ``strategy``: auto | grid | random | anneal |
    xgb. ``measure``: model | sim | hls | rpc (or a Measurer), built with
    ``measure_options`` (e.g. the RPC tracker). ``clocks``: the PL clocks to try, MHz
    (default 100, 125, 142.86, 150, capped by the board). ``space_options``: keywords
    of ``TuneSpace`` (``ks``, ``clocks``, ``caps``). Compile with the log
    (``build(tuning_log=log)``, ``compile --tuning-log``) to apply the best records.
    """
    t0 = time.perf_counter()
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise OptionError(f"trials must be a positive integer, got {trials!r}")
    measurer = _measurer(measure, measure_options)
    task = mod if isinstance(mod, TuneTask) else make_task(
        mod, board, clocks=clocks, weights=weights, calibration=calibration)
    space = TuneSpace(task, **(space_options or {}))
    strat = get_strategy(strategy, space, trials, seed)
    tlog = TuneLog(log, task, measurer.name) if log is not None else None
    done: dict[str, float | None] = {}
    res = TuneResult(task, space, strat.name, measurer.name, None, None, None, None,
                     log=Path(log) if log is not None else None)

    def consider(m: Measurement, cost: float | None, is_default: bool) -> None:
        if is_default and cost is not None:
            res.default, res.default_cost_us = m, cost
        if cost is not None and (res.best_cost_us is None or cost < res.best_cost_us):
            res.best, res.best_cost_us = m, cost

    if tlog is not None and resume:
        for rec in tlog.logged():
            m = _record_measurement(rec)
            cost = rec.cost
            if rec.key in done:
                continue
            if not rec.ok and (rec.raw.get("detail") or {}).get("transient") is True:
                continue  # never measured (the tracker or every server was unreachable)
            done[rec.key] = cost
            strat.update(m.candidate, cost, m)
            consider(m, cost, rec.default)
            res.resumed += 1
    default = space.default()
    bar = progress_bar(desc=f"tune ({strat.name}, {measurer.name})", total=trials,
                       enable=progress)
    try:
        if tlog is not None:
            tlog.open()

        def measure_all(cands: list[Candidate], is_default: bool = False) -> None:
            size = max(1, int(getattr(measurer, "batch_size", 1) or 1))
            for a in range(0, len(cands), size):
                chunk = cands[a:a + size]
                ms = measurer.measure(task, chunk)
                if len(ms) != len(chunk):
                    raise OptionError(f"measurer {measurer.name!r} returned {len(ms)} "
                                      f"measurements for {len(chunk)} candidates")
                for m in ms:
                    cost = cost_us(task, m)
                    if tlog is not None:
                        tlog.append(m, cost, default=is_default)
                    done[m.candidate.key()] = cost
                    strat.update(m.candidate, cost, m)
                    consider(m, cost, is_default)
                    res.trials += 1
                    res.failed += m.error is not None
                    best = res.best_cost_us
                    res.history.append((res.trials, cost, best))
                    bar.update(1)
                    if best is not None:
                        bar.set_postfix_str(f"best {best / 1000:.3f} ms", refresh=False)

        if default.key() not in done:
            why = space.check(default)
            if why is None:
                measure_all([default], is_default=True)
        while res.trials < trials:
            batch = strat.propose(min(8, trials - res.trials))
            if not batch:
                break  # the strategy has nothing left to try
            todo = []
            for c in batch:
                k = c.key()
                if k in done:
                    strat.update(c, done[k])
                    continue
                why = space.check(c)
                if why is not None:
                    res.rejected += 1
                    m = Measurement(c, measurer.name, error=f"rejected: {why}")
                    if tlog is not None:
                        tlog.append(m, None)
                    done[k] = None
                    strat.update(c, None, m)
                    continue
                todo.append(c)
            measure_all(todo[:trials - res.trials])
            if res.rejected > MAX_REJECT_FACTOR * max(trials, 10):
                break  # the strategy keeps proposing what does not fit
    finally:
        bar.close()
        if tlog is not None:
            tlog.close()
    res.seconds = time.perf_counter() - t0
    return res


def best_so_far(costs) -> list[float | None]:
    """Running minimum of ``costs`` (None entries keep the previous best)."""
    out, best = [], math.inf
    for c in costs:
        if c is not None and c < best:
            best = c
        out.append(best if best < math.inf else None)
    return out
