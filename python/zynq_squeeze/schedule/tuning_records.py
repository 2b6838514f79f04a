"""Measurement logs of ``zynq-squeeze tune`` (JSON Lines) as the schedule stage reads them.

One record per line, appended as each measurement is made (``tuning.log`` writes them)::

    {"zsq_tune": 1, "time": "2026-01-01T12:00:00Z", "board": "zybo-z7-20",
     "measurer": "model", "task": "<16 hex>", "models": {"name": {"hash": "<16 hex>",
     "weight": 1.0}}, "versions": {"zynq_squeeze": "0.1.0", "tvm": "0.27.0"},
     "key": "<16 hex>", "default": false,
     "candidate": {"engine": {DaeConfig fields}, "tiles": {signature: {toc, tic, th, tw}}},
     "cycles": 2823144, "cost_us": 28231.44, "error": null,
     "resources": {"bram18k": 224, ...}, "seconds": 0.04,
     "detail": {"layers": {signature: cycles}, "models": {...}, ...}}

``cycles`` is one inference of all the task's models at ``engine.clock_mhz``; ``cost_us``
the tuner's objective (weighted latency, lower is better); ``error`` why the candidate
was rejected (``"rejected: ..."``, never measured) or its measurement failed. A line
that is not such a record -- corrupt, truncated by a crash, another tool's -- is skipped
with a warning naming the line.

``best_schedule`` is AutoTVM's apply_history_best for this engine: the engine of the best
measured candidate as a whole, and per layer signature the tile with the fewest
measured cycles among the records of that same engine (every one of them fits it: its
depths hold those tiles), the best candidate's own tile otherwise. Only records that
apply are compared: of the compile's board, holding a tile for every layer signature of
the model being compiled (a record of another model is never applied), and of one
measurer -- the most faithful the log holds a success of (``MEASURER_RANK``: rpc > hls >
sim > model), since costs by different measurers are not comparable and a model record
knows nothing of a clock csynth missed.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.dae_config import DaeConfig, DaeTile

RECORD_VERSION = 1  # the value of "zsq_tune"
# Which measurer's records ``best_schedule`` applies when a log holds several: the most
# faithful (a board or csynth over the model); unknown names rank lowest.
MEASURER_RANK = {"model": 0, "sim": 1, "hls": 2, "rpc": 3}


@dataclass(frozen=True)
class TuneRecord:
    """One parsed log line (see the module docstring)."""

    line: int
    key: str
    board: str
    measurer: str
    task: str
    engine: DaeConfig
    tiles: dict = field(hash=False)
    cycles: int | None
    cost_us: float | None
    error: str | None
    default: bool = False
    time: str = ""
    layer_cycles: dict = field(default_factory=dict, hash=False)
    raw: dict = field(default_factory=dict, hash=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.cycles is not None

    @property
    def cost(self) -> float | None:
        """The objective: ``cost_us``, else cycles / clock (us); None if not ok."""
        if not self.ok:
            return None
        return self.cost_us if self.cost_us is not None else self.cycles / self.engine.clock_mhz


class RecordError(ValueError):
    """A line is not a tuning record (the reason)."""


def _num(v, what: str, integer: bool = False):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int if integer else (int, float)) \
            or (not integer and not math.isfinite(v)) or v < 0:
        raise RecordError(f"{what} must be a non-negative {'integer' if integer else 'number'}"
                          f" or null, got {v!r}")
    return v


def parse_record(obj, line: int = 0) -> TuneRecord:
    """The record ``obj`` (a decoded JSON line) holds; raises ``RecordError``."""
    if not isinstance(obj, dict) or "zsq_tune" not in obj:
        raise RecordError("not a zynq-squeeze tuning record (no \"zsq_tune\")")
    if obj["zsq_tune"] != RECORD_VERSION:
        raise RecordError(f"record version {obj['zsq_tune']!r}, this reader knows "
                          f"{RECORD_VERSION}")
    cand = obj.get("candidate")
    if not isinstance(cand, dict) or not isinstance(cand.get("tiles"), dict):
        raise RecordError("\"candidate\" must hold \"engine\" and \"tiles\"")
    try:
        engine = DaeConfig.from_json(cand.get("engine"))
        tiles = {str(s): DaeTile.from_json(t) for s, t in cand["tiles"].items()}
    except (TypeError, ValueError) as e:
        raise RecordError(f"candidate: {e}") from None
    error = obj.get("error")
    if error is not None and not isinstance(error, str):
        raise RecordError("\"error\" must be a string or null")
    detail = obj.get("detail") if isinstance(obj.get("detail"), dict) else {}
    layers = detail.get("layers") if isinstance(detail.get("layers"), dict) else {}
    layer_cycles = {str(s): c for s, c in layers.items()
                    if isinstance(c, (int, float)) and not isinstance(c, bool) and c >= 0}
    texts = {f: obj.get(f, "") for f in ("key", "board", "measurer", "task", "time")}
    if not all(isinstance(v, str) for v in texts.values()):
        raise RecordError("key, board, measurer, task and time must be strings")
    return TuneRecord(line=line, engine=engine, tiles=tiles,
                      cycles=_num(obj.get("cycles"), "cycles", integer=True),
                      cost_us=_num(obj.get("cost_us"), "cost_us"), error=error,
                      default=obj.get("default") is True, layer_cycles=layer_cycles,
                      raw=obj, **texts)


def is_record_log(path: Path) -> bool:
    """Whether ``path`` looks like a measurement log: a ``.jsonl`` name, or a first
    non-empty line that is a JSON object with ``"zsq_tune"``."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return True
    try:
        with open(path, encoding="utf-8") as f:
            for text in f:
                if text.strip():
                    obj = json.loads(text)
                    return isinstance(obj, dict) and "zsq_tune" in obj
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return False


def read_records(path: Path, warn=None) -> list[TuneRecord]:
    """Every record of the log at ``path``, in file order. A line that is not one is
    skipped with ``warn(message)`` (default: a ``UserWarning``). Raises ``OSError`` when
    the file cannot be read."""
    warn = warn or (lambda msg: warnings.warn(msg, UserWarning, stacklevel=3))
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                out.append(parse_record(json.loads(text), n))
            except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
                why = str(e).splitlines()[0][:200]
                warn(f"tuning log {path}, line {n}: skipped ({why})")
    return out


def best_schedule(records, *, board: str | None = None, engine: DaeConfig | None = None,
                  signatures=None) -> dict | None:
    """``{"engine": DaeConfig, "layers": {signature: DaeTile}, "record": TuneRecord}``
    of the best successful record (for ``board`` / with ``engine`` / with a tile for
    every one of ``signatures`` when given; of the most faithful measurer among them,
    ``MEASURER_RANK``; lowest cost, then earliest), per-layer tiles improved from records
    of the same engine and measurer; None when there is no such record."""
    need = set(signatures) if signatures is not None else set()
    ok = [r for r in records if r.ok and (board is None or r.board == board)
          and (engine is None or r.engine == engine) and need <= r.tiles.keys()]
    if not ok:
        return None
    top = max(MEASURER_RANK.get(r.measurer, -1) for r in ok)
    ok = [r for r in ok if MEASURER_RANK.get(r.measurer, -1) == top]
    best = min(ok, key=lambda r: (r.cost, r.line))
    ok = [r for r in ok if r.measurer == best.measurer]
    layers = dict(best.tiles)
    same = [r for r in ok if r.engine == best.engine]
    for sig in layers:
        have = best.layer_cycles.get(sig)
        if have is None:
            continue
        for r in same:
            c = r.layer_cycles.get(sig)
            if c is not None and sig in r.tiles and c < have:
                have, layers[sig] = c, r.tiles[sig]
    return {"engine": best.engine, "layers": layers, "record": best}


__all__ = ["MEASURER_RANK", "RECORD_VERSION", "RecordError", "TuneRecord", "best_schedule",
           "is_record_log", "parse_record", "read_records"]
