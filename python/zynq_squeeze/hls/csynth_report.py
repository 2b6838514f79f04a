"""Reader of Vivado / Vitis HLS synthesis reports (``csynth.xml``).

``read(path)`` parses a ``csynth.xml`` or a ``<module>_csynth.xml`` (or a directory:
a solution's ``syn/report`` folder, a solution folder, or any folder holding a
``csynth.xml``) into frozen dataclasses. The Vivado HLS 2020.1 layout and the Vitis HLS
2020.2 / 2022+ layouts are accepted:

* ``AreaEstimates/Resources/DSP48E`` (Vivado) and ``.../DSP`` (Vitis) both land in
  ``Resources.dsp``;
* ``UserAssignments/FlowTarget`` (Vitis) is optional;
* ``ModuleInformation/Module`` (per-module performance and area with ``AVAIL_*`` /
  ``UTIL_*`` fields) and ``RTLDesignHierarchy`` (Vitis 2022+) are read when present.

Conventions:

* ``undef`` (a data-dependent value HLS could not bound) and empty elements read as
  ``None`` -- unknown, never zero.
* A ``<range><min/><max/></range>`` value reads as the tuple ``(min, max)``; a plain
  number ``n`` in a field that may hold a range reads as ``(n, n)``.
* Clock periods are in nanoseconds (converted from the report's ``unit`` if needed);
  latencies and intervals are in clock cycles; ``*_time`` fields keep the report's
  real-time strings (``"4.729 ms"``) verbatim.

Every problem is raised as ``HlsReportError`` whose message names the file and the
element path (``profile/UserAssignments/Part``) it could not read.

``summary(report)`` renders a text table, ``to_json(report)`` a JSON-able dict, and
``format_comparison(report, model_layers)`` compares the report with modeled cycle
counts.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Iterator
from xml.parsers.expat import ErrorString as _expat_error_string
from xml.parsers.expat import ExpatError

import xmltodict

from ..errors import ZynqSqueezeError

__all__ = [
    "HlsReportError",
    "SynthReport",
    "OverallLatency",
    "Loop",
    "Resources",
    "UtilPercent",
    "RtlPort",
    "ModuleInfo",
    "HierarchyNode",
    "RESOURCE_NAMES",
    "read",
    "parse_string",
    "summary",
    "to_json",
    "format_comparison",
]

#: Resource fields, in the order reports list them (``Resources`` attribute names).
RESOURCE_NAMES = ("bram_18k", "dsp", "ff", "lut", "uram")
_RESOURCE_LABELS = {"bram_18k": "BRAM_18K", "dsp": "DSP", "ff": "FF", "lut": "LUT",
                    "uram": "URAM"}
# XML element names per resource; the first present one wins (DSP48E = Vivado HLS).
_RESOURCE_TAGS = {
    "bram_18k": ("BRAM_18K",),
    "dsp": ("DSP48E", "DSP"),
    "ff": ("FF",),
    "lut": ("LUT",),
    "uram": ("URAM",),
}
# ModuleInformation writes AVAIL_<x> / UTIL_<x> with these suffixes.
_AVAIL_SUFFIX = {"bram_18k": "BRAM", "dsp": "DSP", "ff": "FF", "lut": "LUT", "uram": "URAM"}

# Fields of a loop element; any other child element that itself carries loop fields is
# a nested loop.
_LOOP_FIELDS = ("TripCount", "Latency", "IterationLatency", "PipelineII", "PipelineDepth")
_LOOP_KNOWN = set(_LOOP_FIELDS) | {"Name", "Slack", "isPerfectNested", "InstanceList",
                                   "AbsoluteTimeLatency", "PipelineType"}

_TIME_UNITS_NS = {"ns": 1.0, "ps": 1e-3, "us": 1e3}
_REALTIME_RE = re.compile(r"^\s*([0-9.eE+-]+)\s*(ps|ns|us|ms|s|sec)\s*$")
_REALTIME_SCALE = {"ps": 1e-12, "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0}

Range = tuple[int | None, int | None]  # (min, max); None = undef


class HlsReportError(ZynqSqueezeError):
    """A synthesis report could not be read.

    ``file`` is the report's path, ``field`` the element path (``profile/...``) that
    could not be read, or ``None`` when the problem is the file as a whole.
    """

    def __init__(self, message: str, file: str | None = None, field: str | None = None):
        super().__init__(message)
        self.file = file
        self.field = field


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class OverallLatency:
    """``SummaryOfOverallLatency``: cycles (``None`` = undef) and real-time strings."""

    best: int | None
    average: int | None
    worst: int | None
    best_time: str | None = None
    average_time: str | None = None
    worst_time: str | None = None
    interval_min: int | None = None
    interval_max: int | None = None

    @property
    def worst_seconds(self) -> float | None:
        """``worst_time`` in seconds, or ``None`` when absent / undef."""
        return _realtime_seconds(self.worst_time)


@dataclass(frozen=True)
class Loop:
    """One entry of ``SummaryOfLoopLatency``.

    ``trip_count``, ``latency`` and ``iteration_latency`` are ``(min, max)`` tuples
    (a fixed value ``n`` reads as ``(n, n)``, undef as ``None`` in that slot);
    ``iteration_latency`` is ``None`` for pipelined loops, which report ``pipeline_ii``
    and ``pipeline_depth`` instead. ``children`` are the loops nested in this one.
    """

    name: str
    trip_count: Range = (None, None)
    latency: Range = (None, None)
    iteration_latency: Range | None = None
    pipeline_ii: int | None = None
    pipeline_depth: int | None = None
    absolute_latency: str | None = None
    children: tuple["Loop", ...] = ()

    @property
    def pipelined(self) -> bool:
        return self.pipeline_ii is not None

    def walk(self, depth: int = 0) -> Iterator[tuple[int, "Loop"]]:
        """This loop and its descendants, depth-first, with their nesting depth."""
        yield depth, self
        for c in self.children:
            yield from c.walk(depth + 1)


@dataclass(frozen=True)
class Resources:
    """Resource counts (``None`` = not reported / undef). ``dsp`` is DSP48E or DSP."""

    bram_18k: int | None = None
    dsp: int | None = None
    ff: int | None = None
    lut: int | None = None
    uram: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return {n: getattr(self, n) for n in RESOURCE_NAMES}


@dataclass(frozen=True)
class RtlPort:
    """One ``InterfaceSummary/RtlPorts`` entry (text fields verbatim, empty -> None)."""

    name: str
    object: str | None = None
    type: str | None = None
    scope: str | None = None
    io_protocol: str | None = None
    io_config: str | None = None
    dir: str | None = None
    bits: int | None = None
    attribute: str | None = None
    ctype: str | None = None
    has_ctrl: str | None = None


@dataclass(frozen=True)
class UtilPercent:
    """``UTIL_*`` percentages of a ``ModuleInformation`` module (``None`` = absent)."""

    bram_18k: float | None = None
    dsp: float | None = None
    ff: float | None = None
    lut: float | None = None
    uram: float | None = None


@dataclass(frozen=True)
class ModuleInfo:
    """One Vitis 2022+ ``ModuleInformation/Module``.

    ``available`` comes from the ``AVAIL_*`` fields (``None`` when there are none),
    ``util_percent`` from the ``UTIL_*`` percentages (``"~0"`` reads as 0.0).
    """

    name: str
    target_clock_ns: float | None = None
    clock_uncertainty_ns: float | None = None
    estimated_clock_ns: float | None = None
    pipeline_type: str | None = None
    latency: OverallLatency | None = None
    loops: tuple[Loop, ...] = ()
    resources: Resources = field(default_factory=Resources)
    available: Resources | None = None
    util_percent: UtilPercent = field(default_factory=UtilPercent)


@dataclass(frozen=True)
class HierarchyNode:
    """A node of ``RTLDesignHierarchy`` (the top module has ``instance=None``)."""

    module: str
    instance: str | None = None
    children: tuple["HierarchyNode", ...] = ()


@dataclass(frozen=True)
class SynthReport:
    """One parsed ``csynth.xml`` (or ``<module>_csynth.xml``).

    ``available`` is ``None`` when the report has no ``AvailableResources``.
    ``dsp_field`` records which spelling the report used (``"DSP48E"`` or ``"DSP"``).
    ``modules`` are Vitis 2022+ ``ModuleInformation`` entries; ``module_reports`` the
    per-module ``<module>_csynth.xml`` reports found next to it when ``read`` was given
    a directory.
    """

    path: str
    tool_version: str
    product_family: str | None
    part: str
    top_module: str
    target_clock_ns: float
    clock_uncertainty_ns: float | None
    estimated_clock_ns: float | None
    latency: OverallLatency
    pipeline_type: str | None = None
    flow_target: str | None = None
    loops: tuple[Loop, ...] = ()
    resources: Resources = field(default_factory=Resources)
    available: Resources | None = None
    dsp_field: str | None = None
    interfaces: tuple[RtlPort, ...] = ()
    modules: tuple[ModuleInfo, ...] = ()
    hierarchy: HierarchyNode | None = None
    module_reports: tuple["SynthReport", ...] = ()

    @property
    def utilisation(self) -> dict[str, float | None]:
        """used / available per resource (``None`` when either is unknown or 0 available)."""
        out: dict[str, float | None] = {}
        for n in RESOURCE_NAMES:
            used = getattr(self.resources, n)
            avail = getattr(self.available, n) if self.available is not None else None
            out[n] = used / avail if used is not None and avail else None
        return out

    @property
    def estimated_fmax_mhz(self) -> float | None:
        if not self.estimated_clock_ns:
            return None
        return 1000.0 / self.estimated_clock_ns

    def walk_loops(self) -> Iterator[tuple[int, Loop]]:
        """All loops of the top report, depth-first, with nesting depth."""
        for lp in self.loops:
            yield from lp.walk()

    def find_loop(self, name: str) -> Loop | None:
        """The first loop (at any depth) called ``name``, or ``None``."""
        for _, lp in self.walk_loops():
            if lp.name == name:
                return lp
        return None

    def module(self, name: str) -> ModuleInfo | None:
        """The ``ModuleInformation`` entry called ``name``, or ``None``."""
        for m in self.modules:
            if m.name == name:
                return m
        return None

    def module_report(self, name: str) -> "SynthReport | None":
        """The per-module report whose top module is ``name``, or ``None``."""
        for r in self.module_reports:
            if r.top_module == name:
                return r
        return None


# --------------------------------------------------------------------------- low-level


def _realtime_seconds(s: str | None) -> float | None:
    if s is None:
        return None
    m = _REALTIME_RE.match(s)
    if not m:
        return None
    try:
        return float(m.group(1)) * _REALTIME_SCALE[m.group(2)]
    except ValueError:
        return None


class _Reader:
    """Path-tracking accessors over the xmltodict tree of one file."""

    def __init__(self, file: str):
        self.file = file

    def fail(self, path: str, what: str) -> HlsReportError:
        return HlsReportError(f"HLS report {self.file}: {what} at {path}",
                              file=self.file, field=path)

    # -- structure
    def child(self, node: Any, key: str, path: str, required: bool = False) -> Any:
        """``node[key]``; ``None`` when absent (or an error naming it when required)."""
        if node is None:
            if required:
                raise self.fail(f"{path}/{key}", "missing required element")
            return None
        if not isinstance(node, dict):
            raise self.fail(path, f"expected child elements, found text {node!r}")
        if key not in node:
            if required:
                raise self.fail(f"{path}/{key}", "missing required element")
            return None
        val = node[key]
        if isinstance(val, list):
            # A repeated singleton element: the last occurrence wins (HLS never repeats
            # these; be lenient).
            val = val[-1]
        return val

    def text(self, val: Any, path: str) -> str | None:
        if val is None:
            return None
        if isinstance(val, dict):
            if "#text" in val:
                val = val["#text"]
            elif all(k.startswith("@") for k in val):
                return None
            else:
                raise self.fail(path, "expected a text value, found child elements "
                                f"<{'>, <'.join(k for k in val if not k.startswith('@'))}>")
        if isinstance(val, list):
            raise self.fail(path, "expected one value, found a repeated element")
        s = str(val).strip()
        return s or None

    def req_text(self, node: Any, key: str, path: str) -> str:
        s = self.text(self.child(node, key, path, required=True), f"{path}/{key}")
        if s is None:
            raise self.fail(f"{path}/{key}", "required element is empty")
        return s

    def opt_text(self, node: Any, key: str, path: str) -> str | None:
        return self.text(self.child(node, key, path), f"{path}/{key}")

    # -- numbers
    def to_int(self, val: Any, path: str) -> int | None:
        s = self.text(val, path)
        if s is None or s.lower() == "undef":
            return None
        try:
            return int(s)
        except ValueError:
            pass
        try:
            f = float(s)
        except ValueError:
            raise self.fail(path, f"cannot read {s!r} as an integer") from None
        if not math.isfinite(f) or f != int(f):
            raise self.fail(path, f"cannot read {s!r} as an integer")
        return int(f)

    def to_float(self, val: Any, path: str) -> float | None:
        s = self.text(val, path)
        if s is None or s.lower() == "undef":
            return None
        try:
            f = float(s.lstrip("~"))
        except ValueError:
            raise self.fail(path, f"cannot read {s!r} as a number") from None
        if not math.isfinite(f):
            raise self.fail(path, f"cannot read {s!r} as a finite number")
        return f

    def opt_int(self, node: Any, key: str, path: str) -> int | None:
        return self.to_int(self.child(node, key, path), f"{path}/{key}")

    def opt_float(self, node: Any, key: str, path: str) -> float | None:
        return self.to_float(self.child(node, key, path), f"{path}/{key}")

    def to_range(self, val: Any, path: str) -> Range:
        """A number, ``undef`` or ``<range><min/><max/></range>`` as ``(min, max)``."""
        if isinstance(val, dict) and not ("#text" in val):
            inner = val
            rpath = path
            if "range" in val:
                inner = self.child(val, "range", path)
                rpath = f"{path}/range"
            if isinstance(inner, dict) and ("min" in inner or "max" in inner):
                lo = self.to_int(self.child(inner, "min", rpath, required=True),
                                 f"{rpath}/min")
                hi = self.to_int(self.child(inner, "max", rpath, required=True),
                                 f"{rpath}/max")
                return (lo, hi)
            if "range" in val:
                raise self.fail(f"{path}/range", "expected <min> and <max>")
        n = self.to_int(val, path)
        return (n, n)


# --------------------------------------------------------------------------- parsing


def _as_list(val: Any) -> list:
    if val is None:
        return []
    return val if isinstance(val, list) else [val]


def _is_loop_element(val: Any) -> bool:
    return isinstance(val, dict) and any(k in val for k in _LOOP_FIELDS)


def _parse_loop(r: _Reader, tag: str, node: Any, path: str) -> Loop:
    name = r.opt_text(node, "Name", path) if isinstance(node, dict) else None
    name = name or tag
    if node is None:
        return Loop(name=name)
    if not isinstance(node, dict):
        raise r.fail(path, f"expected loop fields, found text {node!r}")
    it = r.child(node, "IterationLatency", path)
    return Loop(
        name=name,
        trip_count=r.to_range(r.child(node, "TripCount", path), f"{path}/TripCount"),
        latency=r.to_range(r.child(node, "Latency", path), f"{path}/Latency"),
        iteration_latency=(None if "IterationLatency" not in node
                           else r.to_range(it, f"{path}/IterationLatency")),
        pipeline_ii=r.opt_int(node, "PipelineII", path),
        pipeline_depth=r.opt_int(node, "PipelineDepth", path),
        absolute_latency=_undef_none(r.opt_text(node, "AbsoluteTimeLatency", path)),
        children=_parse_loops(r, node, path, nested=True),
    )


def _parse_loops(r: _Reader, node: Any, path: str, nested: bool = False) -> tuple[Loop, ...]:
    """Loops under ``node`` (``SummaryOfLoopLatency`` or a loop element)."""
    if node is None:
        return ()
    if not isinstance(node, dict):
        raise r.fail(path, f"expected loop elements, found text {node!r}")
    loops = []
    for tag, val in node.items():
        if tag.startswith("@") or tag == "#text":
            continue
        if nested and tag in _LOOP_KNOWN:
            continue
        for i, item in enumerate(_as_list(val)):
            if nested and not _is_loop_element(item):
                continue  # an unknown annotation, not a loop
            p = f"{path}/{tag}" if not isinstance(val, list) else f"{path}/{tag}[{i}]"
            loops.append(_parse_loop(r, tag, item, p))
    return tuple(loops)


def _parse_overall(r: _Reader, node: Any, path: str, required: bool) -> OverallLatency:
    def cyc(key: str) -> int | None:
        if required:
            r.child(node, key, path, required=True)
        return r.opt_int(node, key, path)

    return OverallLatency(
        best=cyc("Best-caseLatency"),
        average=cyc("Average-caseLatency"),
        worst=cyc("Worst-caseLatency"),
        best_time=_undef_none(r.opt_text(node, "Best-caseRealTimeLatency", path)),
        average_time=_undef_none(r.opt_text(node, "Average-caseRealTimeLatency", path)),
        worst_time=_undef_none(r.opt_text(node, "Worst-caseRealTimeLatency", path)),
        interval_min=r.opt_int(node, "Interval-min", path),
        interval_max=r.opt_int(node, "Interval-max", path),
    )


def _undef_none(s: str | None) -> str | None:
    return None if s is None or s.lower() == "undef" else s


def _parse_resources(r: _Reader, node: Any, path: str,
                     prefix: str = "") -> tuple[Resources, str | None]:
    """Resource counts under ``node`` and the DSP element name used.

    Without ``prefix`` the plain names are read (``DSP48E`` before ``DSP``); with
    ``prefix="AVAIL_"`` the ModuleInformation names (``AVAIL_BRAM``, ``AVAIL_DSP``, ...).
    """
    if node is not None and not isinstance(node, dict):
        raise r.fail(path, f"expected resource elements, found text {node!r}")
    node = node or {}
    vals: dict[str, int | None] = {}
    dsp_tag = None
    for name, tags in _RESOURCE_TAGS.items():
        keys = (prefix + _AVAIL_SUFFIX[name],) if prefix else tags
        key = next((k for k in keys if k in node), None)
        vals[name] = None if key is None else r.opt_int(node, key, path)
        if vals[name] is not None and vals[name] < 0:
            raise r.fail(f"{path}/{key}", f"negative resource count {vals[name]}")
        if name == "dsp" and not prefix and key is not None:
            dsp_tag = key
    return Resources(**vals), dsp_tag


def _time_scale(r: _Reader, node: Any, path: str) -> float:
    unit = r.opt_text(node, "unit", path) or "ns"
    if unit not in _TIME_UNITS_NS:
        raise r.fail(f"{path}/unit", f"unknown time unit {unit!r}")
    return _TIME_UNITS_NS[unit]


def _scaled(v: float | None, scale: float) -> float | None:
    return None if v is None else v * scale


def _clock(r: _Reader, node: Any, key: str, path: str, scale: float,
           zero_ok: bool = False) -> float | None:
    """A clock period (``undef`` -> None) in ns; a period must be > 0 (an uncertainty
    may be 0), NaN and infinities are refused by ``to_float``."""
    v = r.opt_float(node, key, path)
    if v is not None and (v < 0 or (v == 0 and not zero_ok)):
        raise r.fail(f"{path}/{key}", f"clock {key} of {v:g} is not "
                     f"{'>= 0' if zero_ok else 'a positive period'}")
    return _scaled(v, scale)


def _parse_port(r: _Reader, node: Any, path: str) -> RtlPort:
    if not isinstance(node, dict):
        raise r.fail(path, f"expected port fields, found {node!r}")
    t = lambda k: r.opt_text(node, k, path)  # noqa: E731
    return RtlPort(
        name=r.req_text(node, "name", path),
        object=t("Object"), type=t("Type"), scope=t("Scope"), io_protocol=t("IOProtocol"),
        io_config=t("IOConfig"), dir=t("Dir"), bits=r.opt_int(node, "Bits", path),
        attribute=t("Attribute"), ctype=t("CType"), has_ctrl=t("HasCtrl"),
    )


def _parse_module(r: _Reader, node: Any, path: str) -> ModuleInfo:
    if not isinstance(node, dict):
        raise r.fail(path, f"expected module fields, found {node!r}")
    name = r.req_text(node, "Name", path)
    pe = r.child(node, "PerformanceEstimates", path)
    pp = f"{path}/PerformanceEstimates"
    timing = r.child(pe, "SummaryOfTimingAnalysis", pp)
    tp = f"{pp}/SummaryOfTimingAnalysis"
    scale = _time_scale(r, timing, tp)
    overall = r.child(pe, "SummaryOfOverallLatency", pp)
    op = f"{pp}/SummaryOfOverallLatency"
    res = r.child(r.child(node, "AreaEstimates", path), "Resources", f"{path}/AreaEstimates")
    rp = f"{path}/AreaEstimates/Resources"
    used, _ = _parse_resources(r, res, rp)
    avail, _ = _parse_resources(r, res, rp, prefix="AVAIL_")
    util = {}
    for n in RESOURCE_NAMES:
        key = "UTIL_" + _AVAIL_SUFFIX[n]
        if isinstance(res, dict) and key in res:
            util[n] = r.opt_float(res, key, rp)
    has_avail = isinstance(res, dict) and any(k.startswith("AVAIL_") for k in res)
    return ModuleInfo(
        name=name,
        target_clock_ns=_clock(r, timing, "TargetClockPeriod", tp, scale),
        clock_uncertainty_ns=_clock(r, timing, "ClockUncertainty", tp, scale, zero_ok=True),
        estimated_clock_ns=_clock(r, timing, "EstimatedClockPeriod", tp, scale),
        pipeline_type=(r.opt_text(overall, "PipelineType", op)
                       or r.opt_text(pe, "PipelineType", pp)),
        latency=None if overall is None else _parse_overall(r, overall, op, required=False),
        loops=_parse_loops(r, r.child(pe, "SummaryOfLoopLatency", pp),
                           f"{pp}/SummaryOfLoopLatency"),
        resources=used,
        available=avail if has_avail else None,
        util_percent=UtilPercent(**util),
    )


def _parse_hier(r: _Reader, node: Any, path: str, instance: str | None) -> HierarchyNode:
    if not isinstance(node, dict):
        raise r.fail(path, f"expected hierarchy fields, found {node!r}")
    module = r.req_text(node, "ModuleName", path)
    kids = []
    il = r.child(node, "InstancesList", path)
    ip = f"{path}/InstancesList"
    if isinstance(il, dict):
        insts = _as_list(il.get("Instance"))
        for i, inst in enumerate(insts):
            p = f"{ip}/Instance[{i}]"
            kids.append(_parse_hier(r, inst, p, r.opt_text(inst, "InstName", p)))
    elif il is not None:
        raise r.fail(ip, f"expected <Instance> elements, found {il!r}")
    return HierarchyNode(module=module, instance=instance, children=tuple(kids))


def _parse_profile(r: _Reader, prof: Any) -> SynthReport:
    P = "profile"
    if not isinstance(prof, dict):
        raise r.fail(P, "the <profile> element is empty: missing ReportVersion, "
                        "UserAssignments, PerformanceEstimates, AreaEstimates")
    version = r.req_text(r.child(prof, "ReportVersion", P, required=True), "Version",
                         f"{P}/ReportVersion")
    ua_p = f"{P}/UserAssignments"
    ua = r.child(prof, "UserAssignments", P, required=True)
    ua_scale = _time_scale(r, ua, ua_p)
    r.child(ua, "TargetClockPeriod", ua_p, required=True)
    target = _clock(r, ua, "TargetClockPeriod", ua_p, 1.0)
    if target is None:
        raise r.fail(f"{ua_p}/TargetClockPeriod", "target clock period is undef")

    pe_p = f"{P}/PerformanceEstimates"
    pe = r.child(prof, "PerformanceEstimates", P, required=True)
    ta_p = f"{pe_p}/SummaryOfTimingAnalysis"
    ta = r.child(pe, "SummaryOfTimingAnalysis", pe_p, required=True)
    r.child(ta, "EstimatedClockPeriod", ta_p, required=True)
    est = _clock(r, ta, "EstimatedClockPeriod", ta_p, 1.0)
    ol_p = f"{pe_p}/SummaryOfOverallLatency"
    ol = r.child(pe, "SummaryOfOverallLatency", pe_p, required=True)

    ae_p = f"{P}/AreaEstimates"
    ae = r.child(prof, "AreaEstimates", P, required=True)
    res, dsp_tag = _parse_resources(r, r.child(ae, "Resources", ae_p, required=True),
                                    f"{ae_p}/Resources")
    av_node = r.child(ae, "AvailableResources", ae_p)
    avail = None
    if av_node is not None:
        avail, av_tag = _parse_resources(r, av_node, f"{ae_p}/AvailableResources")
        dsp_tag = dsp_tag or av_tag

    ports = []
    isum = r.child(prof, "InterfaceSummary", P)
    if isum is not None:
        if not isinstance(isum, dict):
            raise r.fail(f"{P}/InterfaceSummary", f"expected <RtlPorts>, found {isum!r}")
        plist = _as_list(isum.get("RtlPorts"))
        for i, p in enumerate(plist):
            ports.append(_parse_port(r, p, f"{P}/InterfaceSummary/RtlPorts[{i}]"))

    modules = []
    mi = r.child(prof, "ModuleInformation", P)
    if mi is not None:
        if not isinstance(mi, dict):
            raise r.fail(f"{P}/ModuleInformation", f"expected <Module>, found {mi!r}")
        for i, m in enumerate(_as_list(mi.get("Module"))):
            modules.append(_parse_module(r, m, f"{P}/ModuleInformation/Module[{i}]"))

    hier = None
    hd = r.child(prof, "RTLDesignHierarchy", P)
    if hd is not None:
        top = r.child(hd, "TopModule", f"{P}/RTLDesignHierarchy", required=True)
        hier = _parse_hier(r, top, f"{P}/RTLDesignHierarchy/TopModule", None)

    return SynthReport(
        path=r.file,
        tool_version=version,
        product_family=r.opt_text(ua, "ProductFamily", ua_p),
        part=r.req_text(ua, "Part", ua_p),
        top_module=r.req_text(ua, "TopModelName", ua_p),
        flow_target=r.opt_text(ua, "FlowTarget", ua_p),
        target_clock_ns=target * ua_scale,
        clock_uncertainty_ns=_clock(r, ua, "ClockUncertainty", ua_p, ua_scale, zero_ok=True),
        estimated_clock_ns=_scaled(est, _time_scale(r, ta, ta_p)),
        pipeline_type=r.opt_text(pe, "PipelineType", pe_p),
        latency=_parse_overall(r, ol, ol_p, required=True),
        loops=_parse_loops(r, r.child(pe, "SummaryOfLoopLatency", pe_p),
                           f"{pe_p}/SummaryOfLoopLatency"),
        resources=res,
        available=avail,
        dsp_field=dsp_tag,
        interfaces=tuple(ports),
        modules=tuple(modules),
        hierarchy=hier,
    )


def parse_string(text: str | bytes, file: str = "<string>") -> SynthReport:
    """Parse the XML text of one report; ``file`` names it in error messages."""
    r = _Reader(file)
    try:
        doc = xmltodict.parse(text)
    except RecursionError:
        raise HlsReportError(f"HLS report {file}: elements nested too deeply for a csynth "
                             "report; the file is not one", file=file, field=None) from None
    except ValueError as e:  # xmltodict refuses entity declarations (expansion attacks)
        raise HlsReportError(f"HLS report {file}: refused ({e})", file=file, field=None) from None
    except ExpatError as e:
        reason = _expat_error_string(e.code) if e.code else str(e)
        raise HlsReportError(
            f"HLS report {file}: not well-formed XML ({reason}) at line {e.lineno}, "
            f"column {e.offset}; the file may be truncated or corrupt",
            file=file, field=None) from e
    if not isinstance(doc, dict) or len(doc) != 1:
        raise HlsReportError(f"HLS report {file}: no root element", file=file)
    root = next(iter(doc))
    if root != "profile":
        raise HlsReportError(
            f"HLS report {file}: root element is <{root}>, expected <profile>; "
            "this is not a Vivado/Vitis HLS csynth report", file=file, field=root)
    try:
        return _parse_profile(r, doc["profile"])
    except RecursionError:
        raise HlsReportError(f"HLS report {file}: elements nested too deeply for a csynth "
                             "report; the file is not one", file=file, field=None) from None


def _read_file(path: Path) -> SynthReport:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise HlsReportError(f"HLS report {path}: cannot read file ({e.strerror or e})",
                             file=str(path)) from e
    return parse_string(data, file=str(path))


def _report_dir(d: Path) -> Path:
    """The folder holding ``csynth.xml`` for a report, solution or project folder."""
    for cand in (d, d / "syn" / "report", d / "report"):
        if (cand / "csynth.xml").is_file():
            return cand
    # A project folder: exactly one solution underneath.
    found = sorted(d.glob("*/syn/report/csynth.xml"))
    if len(found) == 1:
        return found[0].parent
    if len(found) > 1:
        raise HlsReportError(
            f"HLS report {d}: several solutions hold a csynth.xml "
            f"({', '.join(str(f.parent.parent.parent.name) for f in found)}); "
            "pass one solution folder", file=str(d))
    raise HlsReportError(
        f"HLS report {d}: no csynth.xml in this folder, in syn/report/ or in "
        "<solution>/syn/report/", file=str(d), field="csynth.xml")


def read(path: str | os.PathLike) -> SynthReport:
    """Read a synthesis report.

    ``path`` is a ``csynth.xml`` / ``<module>_csynth.xml`` file, or a directory: a
    ``syn/report`` folder, a solution folder, a project folder with one solution, or any
    folder holding ``csynth.xml``. For a directory the top report is ``csynth.xml`` and
    every ``*_csynth.xml`` beside it is read into ``module_reports`` (sorted by file name;
    a module report duplicating the top module is skipped).
    """
    p = Path(path)
    if not p.is_dir():
        return _read_file(p)
    d = _report_dir(p)
    top = _read_file(d / "csynth.xml")
    mods = []
    for f in sorted(d.glob("*_csynth.xml")):
        m = _read_file(f)
        if m.top_module == top.top_module:
            continue  # Vitis also writes <top>_csynth.xml, a copy of csynth.xml
        mods.append(m)
    return replace(top, module_reports=tuple(mods))


# --------------------------------------------------------------------------- output


def _jsonify(v: Any) -> Any:
    if is_dataclass(v) and not isinstance(v, type):
        return {f.name: _jsonify(getattr(v, f.name)) for f in fields(v)}
    if isinstance(v, (list, tuple)):
        return [_jsonify(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonify(x) for k, x in v.items()}
    return v


def to_json(report: SynthReport) -> dict:
    """A JSON-able dict of the report (tuples become lists; adds ``utilisation``)."""
    d = _jsonify(report)

    def add_util(rep: SynthReport, dd: dict) -> None:
        dd["utilisation"] = rep.utilisation
        for sub, subd in zip(rep.module_reports, dd["module_reports"]):
            add_util(sub, subd)

    add_util(report, d)
    return d


def _fmt_int(v: int | None) -> str:
    return "undef" if v is None else f"{v:,}"


def _fmt_range(rg: Range | None) -> str:
    if rg is None:
        return "-"
    lo, hi = rg
    if lo == hi:
        return _fmt_int(lo)
    return f"{_fmt_int(lo)}..{_fmt_int(hi)}"


def _fmt_ns(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f} ns"


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return out


def summary(report: SynthReport) -> str:
    """A human-readable text summary: clock, latency, interval, resources, loops."""
    lat = report.latency
    out = [
        f"HLS report: {report.path}",
        f"  tool {report.tool_version}, part {report.part}"
        + (f" ({report.product_family})" if report.product_family else "")
        + f", top {report.top_module}"
        + (f", flow {report.flow_target}" if report.flow_target else ""),
        f"  clock: target {_fmt_ns(report.target_clock_ns)}, uncertainty "
        f"{_fmt_ns(report.clock_uncertainty_ns)}, estimated "
        f"{_fmt_ns(report.estimated_clock_ns)}"
        + (f" ({report.estimated_fmax_mhz:.1f} MHz)" if report.estimated_fmax_mhz else ""),
        "",
    ]
    out += _table(
        ["latency", "cycles", "time"],
        [["best", _fmt_int(lat.best), lat.best_time or "-"],
         ["average", _fmt_int(lat.average), lat.average_time or "-"],
         ["worst", _fmt_int(lat.worst), lat.worst_time or "-"]],
        right={1, 2})
    out.append(f"interval: {_fmt_int(lat.interval_min)} .. {_fmt_int(lat.interval_max)}"
               f" cycles; pipeline type {report.pipeline_type or '-'}")
    out.append("")
    util = report.utilisation
    rows = []
    for n in RESOURCE_NAMES:
        label = _RESOURCE_LABELS[n]
        if n == "dsp" and report.dsp_field:
            label = report.dsp_field
        avail = getattr(report.available, n) if report.available else None
        u = util[n]
        rows.append([label, _fmt_int(getattr(report.resources, n)),
                     "-" if avail is None else _fmt_int(avail),
                     "-" if u is None else f"{100 * u:.1f}%"])
    out += _table(["resource", "used", "available", "use"], rows, right={1, 2, 3})
    loop_rows = []
    for depth, lp in report.walk_loops():
        loop_rows.append(["  " * depth + lp.name, _fmt_range(lp.trip_count),
                          _fmt_range(lp.latency), _fmt_range(lp.iteration_latency),
                          "-" if lp.pipeline_ii is None else str(lp.pipeline_ii),
                          "-" if lp.pipeline_depth is None else str(lp.pipeline_depth)])
    out.append("")
    if loop_rows:
        out += _table(["loop", "trip count", "latency", "iteration", "II", "depth"],
                      loop_rows, right={1, 2, 3, 4, 5})
    else:
        out.append("loops: none reported")
    if report.modules:
        out.append("")
        mrows = []
        for m in report.modules:
            ml = m.latency
            mrows.append([m.name, _fmt_int(ml.worst if ml else None),
                          _fmt_int(m.resources.dsp), _fmt_int(m.resources.bram_18k),
                          _fmt_int(m.resources.lut), _fmt_int(m.resources.ff)])
        out += _table(["module", "worst latency", "DSP", "BRAM_18K", "LUT", "FF"],
                      mrows, right={1, 2, 3, 4, 5})
    if report.module_reports:
        out.append("")
        out.append("module reports: " + ", ".join(r.top_module for r in report.module_reports))
    return "\n".join(out)


# --------------------------------------------------------------------------- comparison


def _norm(s: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", s.lower()).strip("_")


def _loop_forests(report: SynthReport) -> list[tuple[Loop, ...]]:
    """Loop trees of the top report, then its ModuleInformation modules, then its
    per-module reports (a loop name seen earlier is not searched again)."""
    forests = [report.loops]
    forests += [m.loops for m in report.modules]
    forests += [r.loops for r in report.module_reports]
    return forests


def _matching_loops(report: SynthReport, label: str) -> list[Loop]:
    """Outermost loops whose normalised name contains the normalised ``label``."""
    key = _norm(label)
    if not key:
        return []
    seen: set[str] = set()
    found: list[Loop] = []

    def visit(lp: Loop) -> None:
        if lp.name in seen:
            return
        seen.add(lp.name)
        if key in _norm(lp.name):
            found.append(lp)  # outermost match: its descendants are not counted again
            seen.update(d.name for _, d in lp.walk())
            return
        for c in lp.children:
            visit(c)

    for forest in _loop_forests(report):
        for lp in forest:
            visit(lp)
    return found


def _ratio(num: int | None, den: int | None) -> str:
    if num is None or not den:
        return "n/a"
    return f"{num / den:.2f}x"


def format_comparison(report: SynthReport, model_layers: list[dict]) -> str:
    """Compare HLS-reported cycle counts with modeled ones, as a text table.

    ``model_layers`` is a list of dicts with ``"name"`` and ``"cycles"`` (other keys are
    ignored; an optional ``"loop"`` gives the label to look for instead of the name).

    Per layer: the report's loops (top report, ``ModuleInformation`` modules and
    per-module reports) are searched for names containing the label (case-insensitive,
    punctuation-insensitive). The outermost matching loops are taken -- a match's
    descendants are not counted again -- and their worst-case latencies summed and set
    against the modeled cycles (ratio = report / model). Layers without a matching loop
    show no report figure. Whatever matched, the last line always compares the total of
    all modeled cycles with the report's worst-case overall latency. ``undef`` latencies
    show as ``undef`` with ratio ``n/a``.
    """
    rows = []
    total_model = 0
    for i, layer in enumerate(model_layers):
        try:
            name = str(layer["name"])
            cycles = int(layer["cycles"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"model_layers[{i}] needs 'name' and integer 'cycles' "
                             f"({e!r})") from None
        total_model += cycles
        loops = _matching_loops(report, str(layer.get("loop", name)))
        if loops:
            worsts = [lp.latency[1] for lp in loops]
            rep = None if any(w is None for w in worsts) else sum(worsts)
            rows.append([name, f"{cycles:,}", _fmt_int(rep), _ratio(rep, cycles),
                         ", ".join(lp.name for lp in loops)])
        else:
            rows.append([name, f"{cycles:,}", "-", "-", "(no matching loop)"])
    worst = report.latency.worst
    rows.append(["TOTAL", f"{total_model:,}", _fmt_int(worst), _ratio(worst, total_model),
                 f"overall worst-case latency of {report.top_module}"])
    lines = [f"HLS report vs model: {report.path}"]
    lines += _table(["layer", "model cycles", "report cycles", "report/model", "loops"],
                    rows, right={1, 2, 3})
    return "\n".join(lines)
