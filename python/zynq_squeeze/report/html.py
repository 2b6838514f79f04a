"""A static, single-file HTML report of one compiled model.

``write_report_html(report, path)`` renders the build report dict (schema below) as one
HTML file that opens offline: inline CSS, no JavaScript, charts as PNG ``data:`` URIs
drawn with matplotlib's Agg backend. Sections: summary, partition (offloaded functions,
pattern counts, MACs offloaded, CPU ops with their reasons), engine parameters, the
per-layer schedule table, resource bars against the board, the modeled end-to-end time
(CPU operators and copies on the ARM, a stacked bar with the accelerator), per-layer latency and a
roofline plot (arithmetic intensity in MACs/DDR byte vs achieved GMAC/s, with the DSP
compute roof, the engine's MAC-array roof and the DDR bandwidth roof).

Report schema (optional keys may be missing; every string is HTML-escaped)::

    {"model": str, "board": str, "part": str, "clock_mhz": float,
     "offload": {"functions": [str], "macs_offloaded": int, "macs_total": int,
                 "offload_ratio": float, "patterns": {name: count},
                 "cpu_ops": [{"op": str, "name": str, "reason": str}]},
     "engine": {"pe_oc": int, "pe_ic": int, ...},
     "layers": [{"name", "function", "kind", "in_shape": [C,H,W], "out_shape": [C,H,W],
                 "macs", "tile": {"toc","tic","th","tw","loop_order","double_buffer"},
                 "cycles", "ddr_bytes", "bram18k", "dsp"}],
     "resources": {"bram18k": {"used", "available"}, "dsp": {...}, "lut": {...}, "ff": {...}},
     "performance": {"accel_cycles", "latency_ms", "fps", "roofline_fps", "efficiency",
                     "ddr_bytes", "ddr_gbps", "arm_ms", "copies_ms", "end_to_end_ms",
                     "end_to_end_fps"},
     "cpu": {"basis", "cpu", "clock_mhz", "peak_gflops", "ops": [{"op", "name", "shape",
             "op_class", "flops", "bytes", "bound", "modeled_ms"}], "calls": [{"function",
             "batch", "in_int8_bytes", "out_int8_bytes", "quantize_ms", ..., "modeled_ms"}]}}
"""
from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

__all__ = ["write_report_html", "render_report_html", "layer_metrics"]

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.cards{display:flex;flex-wrap:wrap;gap:.8em}.card{border:1px solid #ddd;border-radius:6px;
padding:.5em .9em;min-width:9em}.card .v{font-size:1.3em;font-weight:600}
.card .k{font-size:.8em;color:#666}.muted{color:#777;font-size:.85em}
img{max-width:100%;height:auto;border:1px solid #eee}
.over{color:#b00020;font-weight:600}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _num(x, digits: int = 0) -> str:
    if x is None:
        return "–"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return _e(x)
    if math.isnan(v) or math.isinf(v):
        return _e(x)
    if digits == 0 and float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.{digits or 2}f}"


def _shape(s) -> str:
    if not s:
        return "–"
    return "×".join(_e(v) for v in s)


def layer_metrics(layer: dict, clock_mhz: float) -> dict:
    """Derived per-layer figures: time (ms), arithmetic intensity, achieved GMAC/s."""
    cycles = float(layer.get("cycles") or 0)
    macs = float(layer.get("macs") or 0)
    ddr = float(layer.get("ddr_bytes") or 0)
    sec = cycles / (clock_mhz * 1e6) if clock_mhz and cycles else 0.0
    return {
        "ms": sec * 1e3,
        "intensity": macs / ddr if ddr else None,
        "gmacs": macs / sec / 1e9 if sec else None,
    }


def _board_ddr_gbps(report: dict):
    perf = report.get("performance") or {}
    if perf.get("ddr_gbps"):
        return float(perf["ddr_gbps"])
    try:
        from ..boards import get_board
        return float(get_board(str(report.get("board"))).ddr_gbps)
    except Exception:  # noqa: BLE001 - unknown board: no DDR roof
        return None


def _board_dsp(report: dict):
    res = (report.get("resources") or {}).get("dsp") or {}
    if res.get("available"):
        return int(res["available"])
    try:
        from ..boards import get_board
        return int(get_board(str(report.get("board"))).dsp)
    except Exception:  # noqa: BLE001
        return None


# ------------------------------------------------------------------------ charts

def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


class _Plt:
    """pyplot-free figure factory (Agg canvas; no global matplotlib state is touched)."""

    @staticmethod
    def subplots(figsize):
        from matplotlib.figure import Figure
        fig = Figure(figsize=figsize)
        return fig, fig.subplots()


def _pyplot():
    return _Plt


def _resource_chart(resources: dict) -> str | None:
    rows = [(k, v) for k, v in resources.items()
            if isinstance(v, dict) and v.get("available")]
    if not rows:
        return None
    plt = _pyplot()
    labels = [k.upper() if k != "bram18k" else "BRAM18K" for k, _ in rows]
    pct = [100.0 * float(v.get("used", 0)) / float(v["available"]) for _, v in rows]
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.55 * len(rows)))
    colors = ["#c0392b" if p > 100 else ("#e67e22" if p > 80 else "#2e86c1") for p in pct]
    ax.barh(range(len(rows)), [min(p, 150) for p in pct], color=colors)
    ax.axvline(100, color="k", lw=1, ls="--")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    for i, ((_, v), p) in enumerate(zip(rows, pct)):
        ax.text(min(p, 150) + 1, i, f"{int(v.get('used', 0)):,} / {int(v['available']):,} "
                f"({p:.0f}%)", va="center", fontsize=8)
    ax.set_xlim(0, max(130, min(max(pct) + 30, 180)))
    ax.set_xlabel("% of the board")
    ax.set_title("Resources (estimate vs. board)")
    fig.tight_layout()
    return _png(fig)


def _latency_chart(layers: list, clock_mhz: float) -> str | None:
    if not layers:
        return None
    plt = _pyplot()
    names = [str(lyr.get("name", i)) for i, lyr in enumerate(layers)]
    if clock_mhz:
        vals = [layer_metrics(lyr, clock_mhz)["ms"] for lyr in layers]
        unit = "ms"
    else:
        vals = [float(lyr.get("cycles") or 0) for lyr in layers]
        unit = "cycles"
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(layers) + 2), 3.6))
    colors = ["#27ae60" if lyr.get("kind") == "fire" else "#2e86c1" for lyr in layers]
    ax.bar(range(len(vals)), vals, color=colors)
    ax.set_xticks(range(len(vals)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(f"latency ({unit})")
    ax.set_title("Accelerator latency per layer (conv blue, fire green)")
    fig.tight_layout()
    return _png(fig)


def _roofline_chart(report: dict, layers: list, clock_mhz: float) -> str | None:
    pts = []
    for lyr in layers:
        m = layer_metrics(lyr, clock_mhz)
        if m["intensity"] and m["gmacs"]:
            pts.append((m["intensity"], m["gmacs"], str(lyr.get("name", ""))))
    if not pts or not clock_mhz:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [p[0] for p in pts]
    dsp = _board_dsp(report)
    bw = _board_ddr_gbps(report)
    lo, hi = min(xs) / 4, max(xs) * 4
    if dsp and bw:  # keep the ridge point (compute roof meets DDR roof) in view
        ridge = dsp * clock_mhz * 1e6 / 1e9 / bw
        lo, hi = min(lo, ridge / 4), max(hi, ridge * 4)
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    roofs = []
    if dsp:
        peak = dsp * clock_mhz * 1e6 / 1e9
        ax.plot([lo, hi], [peak, peak], color="#c0392b", lw=1.5,
                label=f"DSP roof ({dsp} DSP × {clock_mhz:g} MHz = {peak:.1f} GMAC/s)")
        roofs.append(peak)
    eng = report.get("engine") or {}
    if eng.get("k"):
        pe_oc = 8 * int(eng["k"])
        arr = pe_oc * 8 * clock_mhz * 1e6 / 1e9
        ax.plot([lo, hi], [arr, arr], color="#8e44ad", lw=1.2, ls="--",
                label=f"MAC array {pe_oc}×8 ({arr:.1f} GMAC/s)")
        roofs.append(arr)
    if bw:
        ax.plot(grid, [bw * g for g in grid], color="#2c3e50", lw=1.5,
                label=f"DDR roof ({bw:g} GB/s)")
    ax.scatter(xs, [p[1] for p in pts], color="#2e86c1", zorder=3, s=22)
    for x, y, name in pts:
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ys = [p[1] for p in pts] + roofs
    ax.set_ylim(min(ys) / 3, max(ys) * 3)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (MACs / DDR byte)")
    ax.set_ylabel("achieved GMAC/s")
    ax.set_title("Roofline per layer")
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)


# ------------------------------------------------------------------------ html

def _tuning_chart(curve: list) -> str | None:
    pts = [(n, c) for n, c in curve if c is not None]
    if not pts:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.step([n for n, _ in pts], [c / 1000 for _, c in pts], where="post", color="#2e86c1")
    ax.set_xlabel("measurements")
    ax.set_ylabel("best latency so far (ms)")
    ax.set_title("Tuning: best so far")
    fig.tight_layout()
    return _png(fig)


def _tuning_section(t: dict) -> list[str]:
    """The tuning log's summary: counts, best so far against trials, chosen vs default."""
    out = ["<h2>Tuning</h2>",
           f'<p>Schedule from the measurement log <code>{_e(t.get("log", ""))}</code>: '
           f'{_num(t.get("measured"))} measurement(s) by {_e(", ".join(t.get("measurers") or []))}'
           f', {_num(t.get("rejected"))} candidate(s) rejected by the resource model, '
           f'{_num(t.get("failed"))} failed.'
           + (f' Tuned is <b>{float(t["speedup"]):.3f}x</b> faster than the default.'
              if t.get("speedup") else "")
           + (f' Basis: {_e(t["basis"])}.' if t.get("basis") else "") + "</p>"]
    out.append(_img(_tuning_chart(t.get("best_so_far") or []), "tuning best so far"))
    chosen, default = t.get("chosen") or {}, t.get("default") or {}
    ce, de = chosen.get("engine") or {}, default.get("engine") or {}
    keys = [k for k in ("k", "clock_mhz", "in_rows", "w_rows", "p_rows", "acc_rows", "cv_rows",
                        "sq_rows", "out_rows") if k in ce or k in de]
    rows = [(_e(k), _e(ce.get(k, "–")), _e(de.get(k, "–"))) for k in keys]
    rows.append(("cycles", _num(chosen.get("cycles")), _num(default.get("cycles"))))
    rows.append(("latency (ms)", _num((chosen.get("cost_us") or 0) / 1000, 3)
                 if chosen.get("cost_us") else "–",
                 _num((default.get("cost_us") or 0) / 1000, 3) if default.get("cost_us") else "–"))
    for r in ("bram18k", "dsp", "lut", "ff"):
        rows.append((_e(r.upper() if r != "bram18k" else "BRAM18K"),
                     _num((chosen.get("resources") or {}).get(r)),
                     _num((default.get("resources") or {}).get(r))))
    out.append(_table(["engine", "chosen (best)", "default"], rows, left=(0,)))
    return out


_PART_COLORS = {"accelerator": "#2e86c1", "arm": "#e67e22", "copies": "#8e44ad"}


def _end_to_end_chart(perf: dict) -> str | None:
    """One stacked bar: accelerator + ARM operators + copies = the modeled inference."""
    parts = [("accelerator", float(perf.get("latency_ms") or 0)),
             ("arm", float(perf.get("arm_ms") or 0)),
             ("copies", float(perf.get("copies_ms") or 0))]
    total = sum(v for _, v in parts)
    if total <= 0:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 1.6))
    left = 0.0
    for name, v in parts:
        label = {"arm": "ARM operators", "copies": "copies"}.get(name, name)
        ax.barh([0], [v], left=left, color=_PART_COLORS[name],
                label=f"{label} {v:.3f} ms ({100 * v / total:.0f} %)")
        left += v
    ax.set_yticks([])
    ax.set_xlabel("ms per inference (modeled)")
    ax.set_title(f"End to end {total:.3f} ms (modeled)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=3, fontsize=8,
              frameon=False)
    fig.tight_layout()
    return _png(fig)


def _end_to_end_section(report: dict) -> list[str]:
    """The ARM side: per CPU operator and per offloaded call, and the stacked bar."""
    perf, cpu = report.get("performance") or {}, report.get("cpu") or {}
    if "end_to_end_ms" not in perf:
        return []
    out = ["<h2>End to end on the board (modeled)</h2>",
           f'<p class="muted">{_e(cpu.get("basis") or perf.get("end_to_end_basis") or "")}</p>',
           f'<p>{_e(cpu.get("cpu", "CPU"))} at {_num(cpu.get("clock_mhz"), 0)} MHz, one core '
           f'(peak {_num(cpu.get("peak_gflops"), 2)} GFLOP/s): modeled end-to-end latency '
           f'<b>{_num(perf.get("end_to_end_ms"), 3)} ms</b>, '
           f'<b>{_num(perf.get("end_to_end_fps"), 1)} fps</b> = accelerator '
           f'{_num(perf.get("latency_ms"), 3)} ms + ARM operators {_num(perf.get("arm_ms"), 3)} '
           f'ms + copies {_num(perf.get("copies_ms"), 3)} ms.</p>',
           _img(_end_to_end_chart(perf), "end-to-end latency")]
    ops = cpu.get("ops") or []
    if ops:
        out.append("<p>CPU operators (modeled time on the ARM):</p>")
        out.append(_table(
            ["op", "name", "shape", "class", "FLOPs", "bytes", "bound", "ms (modeled)"],
            [(_e(o.get("op", "")), _e(o.get("name", "")), _shape(o.get("shape")),
              _e(o.get("op_class", "")), _num(o.get("flops")), _num(o.get("bytes")),
              _e(o.get("bound", "")), _num(o.get("modeled_ms"), 3)) for o in ops],
            left=(0, 1, 3, 6)))
    calls = cpu.get("calls") or []
    if calls:
        out.append("<p>Per offloaded call: the ARM's share (modeled ms).</p>")
        keys = ("quantize", "copy_in", "sync", "start_wait", "copy_out", "dequantize")
        out.append(_table(
            ["function", "batch", "int8 in (bytes)", "int8 out (bytes)", *keys, "total"],
            [(_e(c.get("function", "")), _num(c.get("batch")), _num(c.get("in_int8_bytes")),
              _num(c.get("out_int8_bytes")),
              *(_num(c.get(f"{k}_ms"), 3) for k in keys), _num(c.get("modeled_ms"), 3))
             for c in calls], left=(0,)))
    return out


def _img(b64: str | None, alt: str) -> str:
    if not b64:
        return f'<p class="muted">{_e(alt)}: no data</p>'
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _table(headers, rows, left=()) -> str:
    out = ["<table><tr>"]
    for i, h in enumerate(headers):
        out.append(f'<th class="l">{_e(h)}</th>' if i in left else f"<th>{_e(h)}</th>")
    out.append("</tr>")
    for r in rows:
        out.append("<tr>" + "".join(
            f'<td class="l">{c}</td>' if i in left else f"<td>{c}</td>"
            for i, c in enumerate(r)) + "</tr>")
    out.append("</table>")
    return "".join(out)


def render_report_html(report: dict) -> str:
    """The report as one HTML string (see module doc)."""
    model = report.get("model", "model")
    clock = float(report.get("clock_mhz") or 0)
    off = report.get("offload") or {}
    eng = report.get("engine") or {}
    layers = list(report.get("layers") or [])
    res = report.get("resources") or {}
    perf = report.get("performance") or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>zynq-squeeze report: {_e(model)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>zynq-squeeze: {_e(model)}</h1>",
        f'<p class="muted">board {_e(report.get("board", "?"))} '
        f'({_e(report.get("part", "?"))}), PL clock {_num(clock, 1)} MHz</p>',
    ]
    if perf.get("basis"):
        parts.append(f'<p class="muted">All hardware figures are {_e(perf["basis"])}.</p>')
    # summary cards
    cards = [
        ("accelerator latency", f'{_num(perf.get("latency_ms"), 2)} ms'),
        ("accelerator throughput", f'{_num(perf.get("fps"), 1)} fps'),
    ]
    if "end_to_end_ms" in perf:
        cards += [("end to end (modeled, with the ARM)",
                   f'{_num(perf.get("end_to_end_ms"), 2)} ms'),
                  ("end-to-end throughput (modeled)", f'{_num(perf.get("end_to_end_fps"), 1)} fps')]
    cards += [
        ("DSP roofline", f'{_num(perf.get("roofline_fps"), 1)} fps'),
        ("efficiency", f'{100 * float(perf["efficiency"]):.1f} %'
         if perf.get("efficiency") is not None else "–"),
        ("accelerator cycles", _num(perf.get("accel_cycles"))),
        ("DDR traffic", f'{_num((perf.get("ddr_bytes") or 0) / 1e6, 2)} MB'),
        ("MACs offloaded", f'{100 * float(off["offload_ratio"]):.1f} %'
         if off.get("offload_ratio") is not None else "–"),
    ]
    parts.append('<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{v}</div><div class="k">{_e(k)}</div></div>'
        for k, v in cards) + "</div>")

    # partition
    parts.append("<h2>Partition</h2>")
    funcs = off.get("functions") or []
    parts.append(f"<p>{len(funcs)} offloaded function(s): "
                 + (", ".join(f"<code>{_e(f)}</code>" for f in funcs) or "none") + "</p>")
    parts.append(f'<p>MACs offloaded: {_num(off.get("macs_offloaded"))} of '
                 f'{_num(off.get("macs_total"))}'
                 + (f' ({100 * float(off["offload_ratio"]):.2f} %)'
                    if off.get("offload_ratio") is not None else "") + "</p>")
    pats = off.get("patterns") or {}
    if pats:
        parts.append(_table(["pattern", "count"],
                            [(_e(k), _num(v)) for k, v in sorted(pats.items())], left=(0,)))
    cpu = off.get("cpu_ops") or []
    parts.append(f"<p>{len(cpu)} operator(s) on the CPU (ARM, TVM LLVM backend):</p>")
    if cpu:
        parts.append(_table(["op", "name", "reason"],
                            [(_e(c.get("op", "")), _e(c.get("name", "")), _e(c.get("reason", "")))
                             for c in cpu], left=(0, 1, 2)))

    # engine
    if eng:
        parts.append("<h2>Engine</h2>")
        parts.append(_table(["parameter", "value"],
                            [(_e(k), _e(v)) for k, v in eng.items()], left=(0,)))

    # layers
    parts.append("<h2>Layers and schedules</h2>")
    rows = []
    tot_macs = tot_cyc = tot_ddr = 0
    for lyr in layers:
        t = lyr.get("tile") or {}
        m = layer_metrics(lyr, clock)
        tot_macs += int(lyr.get("macs") or 0)
        tot_cyc += int(lyr.get("cycles") or 0)
        tot_ddr += int(lyr.get("ddr_bytes") or 0)
        rows.append((
            _e(lyr.get("name", "")), _e(lyr.get("function", "")), _e(lyr.get("kind", "")),
            _shape(lyr.get("in_shape")), _shape(lyr.get("out_shape")), _num(lyr.get("macs")),
            " ".join(f"{k}={_e(t[k])}" for k in ("toc", "tic", "th", "tw") if k in t),
            _e(t.get("loop_order", "")),
            ("yes" if t.get("double_buffer") else "no") if "double_buffer" in t else "",
            _num(lyr.get("cycles")), _num(m["ms"], 3), _num(lyr.get("ddr_bytes")),
            _num(m["intensity"], 1) if m["intensity"] else "–",
            _num(m["gmacs"], 2) if m["gmacs"] else "–",
            _num(lyr.get("bram18k")), _num(lyr.get("dsp")),
        ))
    if layers:
        tot = {"cycles": tot_cyc, "macs": tot_macs, "ddr_bytes": tot_ddr}
        mt = layer_metrics(tot, clock)
        rows.append(("<b>total</b>", "", "", "", "", _num(tot_macs), "", "", "",
                     _num(tot_cyc), _num(mt["ms"], 3), _num(tot_ddr),
                     _num(mt["intensity"], 1) if mt["intensity"] else "–",
                     _num(mt["gmacs"], 2) if mt["gmacs"] else "–", "", ""))
    parts.append(_table(["layer", "function", "kind", "in (C×H×W)", "out", "MACs", "tile",
                         "loop order", "double buf", "cycles", "ms", "DDR bytes",
                         "MACs/byte", "GMAC/s", "BRAM18K", "DSP"], rows,
                        left=(0, 1, 2, 6, 7)))

    # resources
    parts.append("<h2>Resources</h2>")
    rrows = []
    for k in ("bram18k", "dsp", "lut", "ff"):
        v = res.get(k)
        if not isinstance(v, dict):
            continue
        used, avail = v.get("used"), v.get("available")
        pct = 100.0 * float(used) / float(avail) if used is not None and avail else None
        cls = ' class="over"' if pct is not None and pct > 100 else ""
        rrows.append((_e(k.upper() if k != "bram18k" else "BRAM18K"), _num(used), _num(avail),
                      f"<span{cls}>{pct:.1f} %</span>" if pct is not None else "–"))
    for k, v in res.items():  # any further resource kinds
        if k not in ("bram18k", "dsp", "lut", "ff") and isinstance(v, dict):
            rrows.append((_e(k), _num(v.get("used")), _num(v.get("available")), "–"))
    if rrows:
        parts.append(_table(["resource", "used", "available", "utilisation"], rrows, left=(0,)))
    parts.append(_img(_resource_chart({k: res[k] for k in res if isinstance(res[k], dict)}),
                      "resource utilisation"))

    parts += _end_to_end_section(report)

    tuning = report.get("tuning")
    if isinstance(tuning, dict):
        parts += _tuning_section(tuning)

    # latency + roofline
    parts.append("<h2>Latency per layer</h2>")
    parts.append(_img(_latency_chart(layers, clock), "latency per layer"))
    parts.append("<h2>Roofline</h2>")
    parts.append('<p class="muted">x: MACs per DDR byte of each layer; y: MACs per second '
                 "achieved (modeled cycles at the PL clock). Roofs: one MAC per DSP per cycle, "
                 "the engine's MAC array, and the board's DDR peak.</p>")
    parts.append(_img(_roofline_chart(report, layers, clock), "roofline"))
    parts.append('<p class="muted">generated by zynq_squeeze.report_html</p>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report_html(report: dict, path) -> Path:
    """Write the report (see module doc) to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report_html(report), encoding="utf-8")
    return path
