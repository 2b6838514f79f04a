"""The tuning section of a report: what a measurement log (``--tuning-log tune.jsonl``)
says about the schedule a compile applied.

From the log's records for the compile's board and the best record's task (board,
models, weights): trials measured, rejected, failed; the best-so-far cost after each
measurement (file order, i.e. the order they were made, resumed runs appended); the
chosen (best) engine against the default candidate's (the tuner measures it first and
flags it ``"default"``). Costs are the tuner's objective in microseconds (latency at the
candidate's clock, weighted per model).
"""
from __future__ import annotations

from pathlib import Path

from ..schedule import tuning_records

MAX_POINTS = 400  # best-so-far points kept for the chart (evenly thinned beyond)


def _engine_row(rec) -> dict:
    return {"engine": rec.engine.to_json(), "cycles": rec.cycles,
            "cost_us": round(rec.cost, 3) if rec.cost is not None else None,
            "measurer": rec.measurer, "resources": rec.raw.get("resources") or {},
            "line": rec.line}


# What the figures rest on, per measurer of the chosen record.
BASIS = {
    "model": "modeled: the fast cycle model (= the C simulation's timing) at the candidate's "
             "clock; no synthesis or place-and-route checked that the clock closes timing",
    "sim": "modeled: the C simulation's cycle count at the candidate's clock; no synthesis or "
           "place-and-route checked that the clock closes timing",
    "hls": "modeled cycles; resources and clock from Vitis HLS csynth estimates (not a "
           "post-route timing closure)",
    "rpc": "the accelerator's cycle counter over TVM RPC (the C simulation on a host server, "
           "the engine on a board with a board build)",
}


def tuning_summary(path, board: str, engine=None, layers=None) -> dict | None:
    """The report's ``"tuning"`` entry for the measurement log at ``path`` (None when it
    is not one or holds nothing measured for ``board``). ``engine`` / ``layers``: what
    the compile applied and for which layers, so the chosen record is the compile's."""
    path = Path(path)
    if not path.is_file() or not tuning_records.is_record_log(path):
        return None
    records = [r for r in tuning_records.read_records(path, warn=lambda _m: None)
               if r.board == board]
    from ..quantize.layers import layer_signature

    sigs = None if layers is None else [layer_signature(la) for la in layers]
    best = tuning_records.best_schedule(records, engine=engine, signatures=sigs)
    if best is None:
        return None
    task = best["record"].task
    recs = [r for r in records if r.task == task]
    measured = [r for r in recs if not (r.error or "").startswith("rejected:")]
    curve, cur = [], None
    for n, r in enumerate(measured, 1):
        c = r.cost
        if c is not None and (cur is None or c < cur):
            cur = c
        curve.append([n, round(cur, 3) if cur is not None else None])
    if len(curve) > MAX_POINTS:  # keep the first, the last and an even sample between
        step = len(curve) / MAX_POINTS
        curve = [curve[int(i * step)] for i in range(MAX_POINTS)] + [curve[-1]]
    default = next((r for r in recs if r.default and r.ok
                    and r.measurer == best["record"].measurer), None)
    chosen = best["record"]
    out = {"log": str(path), "records": len(recs), "measured": len(measured),
           "rejected": len(recs) - len(measured),
           "failed": sum(1 for r in measured if not r.ok),
           "measurers": sorted({r.measurer for r in recs}),
           "basis": BASIS.get(best["record"].measurer, f"measurer {best['record'].measurer}"),
           "best_so_far": curve, "chosen": _engine_row(chosen),
           "default": _engine_row(default) if default is not None else None}
    if default is not None and chosen.cost:
        out["speedup"] = round(default.cost / chosen.cost, 4)
    return out
