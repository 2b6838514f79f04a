"""report.json, the schedule table and the files a compile directory holds.

Every hardware figure here is *modeled* (docs/ENGINE.md, "Claims and their basis"):
cycles come from the fast cycle model (``schedule.timing``), which replays the
engine's instruction stream exactly as the C simulation executes and times it (the
tests hold the two equal per layer); resources from ``schedule.dae_resources``.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..boards import get_board
from ..quantize.layers import layer_signature
from ..schedule.dae_engine_search import fit_report
from ..schedule.dae_resources import estimate
from ..schedule.dae_tiling import capacity, needs
from ..schedule.select import TUNING_LOG_VERSION
from .arm import cpu_section, end_to_end

REPORT_VERSION = 2
MODELED = ("modeled: cycles from the engine's instruction stream replayed by the cycle "
           "model (= the C simulation's executed timing), resources from the resource "
           "model; not measured on hardware (docs/ENGINE.md)")


def _buffer_use(layer, tile, cfg) -> dict:
    """Fraction of each on-chip buffer the layer's largest tile occupies."""
    cap = capacity(cfg)
    return {name: round(n / cap[name], 4) for name, n in needs(cfg, layer, tile).items()
            if cap[name]}


def _layer_rows(res) -> list[dict]:
    rows = []
    for cg in res.codegen:
        use = estimate(cg.engine)
        for lf, prog, cycles, nbytes in zip(cg.functions, cg.programs, cg.layer_cycles,
                                            cg.layer_ddr_bytes):
            for (layer, _, _), tile, c, b in zip(prog.layers, prog.tiles, cycles, nbytes):
                rows.append({
                    "name": layer.name, "function": lf.symbol, "kind": layer.kind,
                    "pool": (("global_avg" if layer.pool.global_pool else layer.pool.kind)
                             if layer.pool is not None else None),
                    "in_shape": list(layer.in_shape), "out_shape": list(layer.out_shape),
                    "macs": int(layer.macs) * lf.batch,
                    "tile": tile.to_json(),
                    "cycles": int(c) * lf.batch,
                    "ddr_bytes": int(b) * lf.batch,
                    # The engine is shared: each layer uses the whole MAC array and buffers.
                    "bram18k": use.bram18k, "dsp": use.dsp,
                    "buffer_use": _buffer_use(layer, tile, cg.engine),
                    "signature": layer_signature(layer),
                })
    return rows


def make_report(res, model_name: str) -> dict:
    """The report of a ``BuildResult`` (see README for the fields)."""
    opts = res.options
    board = get_board(opts.board)
    rep = res.partition_report
    engine = res.codegen[0].engine if res.codegen else None
    clock = engine.clock_mhz if engine else (opts.clock_mhz or board.default_clock_mhz)
    layers = _layer_rows(res)
    cycles = sum(r["cycles"] for r in layers)
    macs = sum(r["macs"] for r in layers)
    use = estimate(engine) if engine else None
    mac_dsp = engine.macs_per_cycle if engine else 1
    latency_ms = cycles / (clock * 1e3) if cycles else 0.0
    roofline_fps = board.dsp * clock * 1e6 / rep.macs_total if rep.macs_total else 0.0
    perf = {
        "basis": MODELED,
        "accel_cycles": cycles,
        "latency_ms": round(latency_ms, 6),
        "fps": round(1e3 / latency_ms, 3) if latency_ms else 0.0,
        "roofline_fps": round(roofline_fps, 3),
        # MACs per MAC-array DSP per cycle: how busy the MAC array is.
        "efficiency": round(macs / (mac_dsp * cycles), 4) if cycles else 0.0,
        # The same against every DSP of the board (what the roofline assumes).
        "board_efficiency": round(macs / (board.dsp * cycles), 4) if cycles else 0.0,
        "ddr_bytes": sum(r["ddr_bytes"] for r in layers),
        "ddr_gbps": board.ddr_gbps,
        # Traffic over the run vs the board's DDR peak.
        "ddr_utilization": round(sum(r["ddr_bytes"] for r in layers)
                                 / (latency_ms * 1e-3 * board.ddr_gbps * 1e9), 4)
        if latency_ms else 0.0,
        "macs": macs,
    }
    cpu = cpu_section(res, board)
    # the whole inference: ARM operators + copies + accelerator (modeled, see cpu.basis)
    perf.update(end_to_end(latency_ms, cpu))
    out = {
        "version": REPORT_VERSION,
        "model": model_name,
        "board": board.name,
        "part": board.part,
        "clock_mhz": clock,
        "offload": rep.to_json(),
        "calibration": res.calibration_source if hasattr(res, "calibration_source") else None,
        "calibration_method": getattr(res, "calibration_method", None),
        "bias_correction": getattr(res, "bias_correction", None),
        "input_split": getattr(res, "input_split", None),
        "qdq": getattr(res, "qdq", None),
        "engine": engine.to_json() if engine else None,
        "layers": layers,
        "resources": fit_report(engine, board) if engine else None,
        "resource_detail": use.to_json() if use else None,
        "performance": perf,
        "cpu": cpu,
    }
    if opts.tuning_log is not None:
        from .tuning import tuning_summary

        tuning = tuning_summary(opts.tuning_log, board.name, engine=engine)
        if tuning is not None:
            out["tuning"] = tuning
    return out


def schedule_log(report: dict) -> dict:
    """The tuning-log form of a report's schedule (feed back with ``--tuning-log``)."""
    return {"version": TUNING_LOG_VERSION, "engine": report["engine"],
            "layers": {r["signature"]: r["tile"] for r in report["layers"]}}


def schedule_table(report: dict) -> str:
    """A fixed-width table of the per-layer schedule and modeled figures."""
    eng = report.get("engine") or {}
    mac_dsp = 8 * (eng.get("k") or 1) * 8
    head = (f"{report['model']} on {report['board']} @ {report['clock_mhz']:g} MHz, "
            f"engine {8 * (eng.get('k') or 1)}x8 MACs (figures modeled, see docs/ENGINE.md)")
    cols = f"{'layer':<22}{'kind':<6}{'in CxHxW':>14}{'out CxHxW':>14}{'toc':>5}{'tic':>5}" \
           f"{'th':>4}{'tw':>4}{'MACs':>13}{'cycles':>11}{'eff':>6}"
    lines = [head, cols, "-" * len(cols)]
    for r in report["layers"]:
        t = r["tile"]
        eff = r["macs"] / (mac_dsp * r["cycles"]) if r["cycles"] else 0.0
        lines.append(f"{r['name'][-22:]:<22}{r['kind']:<6}{'x'.join(map(str, r['in_shape'])):>14}"
                     f"{'x'.join(map(str, r['out_shape'])):>14}{t['toc']:>5}{t['tic']:>5}"
                     f"{t['th']:>4}{t['tw']:>4}{r['macs']:>13,}"
                     f"{r['cycles']:>11,}{eff:>6.2f}")
    p = report["performance"]
    lines.append("-" * len(cols))
    lines.append(f"total {p['accel_cycles']:,} cycles = {p['latency_ms']:.3f} ms, {p['fps']:.1f} fps "
                 f"(roofline {p['roofline_fps']:.1f} fps), efficiency {p['efficiency']:.3f}")
    if "end_to_end_ms" in p:
        lines.append(end_to_end_line(report))
    res = report.get("resources") or {}
    if res:
        lines.append("resources: " + ", ".join(
            f"{k} {v['used']:,}/{v['available']:,}{' (est.)' if v.get('estimate') else ''}"
            for k, v in res.items()))
    return "\n".join(lines)


def end_to_end_line(report: dict) -> str:
    """One line: modeled end-to-end latency and fps, and what the ARM adds."""
    p, cpu = report["performance"], report.get("cpu") or {}
    return (f"end to end (modeled): {p['end_to_end_ms']:.3f} ms = {p['end_to_end_fps']:.1f} fps: "
            f"accelerator {p['latency_ms']:.3f} ms + {cpu.get('cpu', 'ARM')} operators "
            f"{p['arm_ms']:.3f} ms + copies {p['copies_ms']:.3f} ms")


def write_outputs(res, report: dict, out_dir: Path, log=print) -> None:
    """report.json, schedule.json and (when available) report.html and the HLS project."""
    out_dir = Path(out_dir)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    (out_dir / "schedule.json").write_text(
        json.dumps(schedule_log(report), indent=1, sort_keys=True) + "\n")
    try:
        from .html import write_report_html
    except ImportError:
        write_report_html = None
    if write_report_html is not None:
        write_report_html(report, out_dir / "report.html")
    try:
        from ..codegen.hls_export import export_hls_project
    except ImportError:
        export_hls_project = None
    if export_hls_project is not None and res.codegen:
        export_hls_project(res, out_dir)
