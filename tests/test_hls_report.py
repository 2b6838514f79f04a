"""Tests of the csynth.xml reader (zynq_squeeze.hls_report)."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zynq_squeeze.errors import ZynqSqueezeError
from zynq_squeeze.hls import csynth_report as hr
from zynq_squeeze.hls.csynth_report import HlsReportError, Loop, Resources

FIX = Path(__file__).parent / "fixtures" / "csynth"
VIVADO = FIX / "vivado2020_1" / "csynth.xml"
VIVADO_MOD = FIX / "vivado2020_1" / "conv_mac_pe_csynth.xml"
VITIS = FIX / "vitis2022_2" / "csynth.xml"
TRUNC = FIX / "truncated_csynth.xml"
FOREIGN = FIX / "foreign.xml"


# --------------------------------------------------------------------------- Vivado 2020.1


@pytest.fixture(scope="module")
def vivado():
    return hr.read(VIVADO)


@pytest.fixture(scope="module")
def vitis():
    return hr.read(VITIS)


def test_vivado_header_and_clock(vivado):
    assert vivado.path == str(VIVADO)
    assert vivado.tool_version == "2020.1"
    assert vivado.product_family == "zynq"
    assert vivado.part == "xc7z020-clg400-1"
    assert vivado.top_module == "squeeze_engine"
    assert vivado.flow_target is None
    assert vivado.target_clock_ns == pytest.approx(10.0)
    assert vivado.clock_uncertainty_ns == pytest.approx(1.25)
    assert vivado.estimated_clock_ns == pytest.approx(8.652)
    assert vivado.estimated_fmax_mhz == pytest.approx(1000 / 8.652)
    assert vivado.pipeline_type == "none"


def test_vivado_overall_latency(vivado):
    lat = vivado.latency
    assert (lat.best, lat.average, lat.worst) == (18432, 472911, 927390)
    assert (lat.best_time, lat.average_time, lat.worst_time) == (
        "0.184 ms", "4.729 ms", "9.274 ms")
    assert (lat.interval_min, lat.interval_max) == (18433, 927391)
    assert lat.worst_seconds == pytest.approx(9.274e-3)


def test_vivado_resources_dsp48e(vivado):
    assert vivado.dsp_field == "DSP48E"
    assert vivado.resources == Resources(bram_18k=74, dsp=37, ff=12873, lut=19642, uram=0)
    assert vivado.available == Resources(bram_18k=280, dsp=220, ff=106400, lut=53200, uram=0)
    u = vivado.utilisation
    assert u["bram_18k"] == pytest.approx(74 / 280)
    assert u["dsp"] == pytest.approx(37 / 220)
    assert u["ff"] == pytest.approx(12873 / 106400)
    assert u["lut"] == pytest.approx(19642 / 53200)
    assert u["uram"] is None  # 0 available: no meaningful fraction


def test_vivado_loops_nested_ranges_and_undef(vivado):
    names = [lp.name for lp in vivado.loops]
    assert names == ["load_weights", "conv_oc_tile", "write_back"]

    lw = vivado.loops[0]
    assert lw.trip_count == (None, None)  # undef, not zero
    assert lw.latency == (None, None)
    assert lw.iteration_latency == (3, 3)
    assert lw.pipeline_ii is None and not lw.pipelined

    oc = vivado.loops[1]
    assert oc.trip_count == (2, 16)
    assert oc.latency == (18400, 927360)
    assert oc.iteration_latency == (9200, 57960)
    assert [c.name for c in oc.children] == ["conv_ic_tile"]
    ic = oc.children[0]
    assert ic.trip_count == (1, 12)
    assert ic.latency == (4830, 57958)
    assert ic.iteration_latency == (4829, 4829)
    assert [c.name for c in ic.children] == ["conv_mac"]
    mac = ic.children[0]
    assert mac == Loop(name="conv_mac", trip_count=(4608, 4608), latency=(4615, 4615),
                       iteration_latency=None, pipeline_ii=1, pipeline_depth=8)
    assert mac.pipelined

    wb = vivado.loops[2]
    assert (wb.trip_count, wb.latency, wb.pipeline_ii, wb.pipeline_depth) == (
        (1024, 1024), (1026, 1026), 1, 3)

    assert [(d, lp.name) for d, lp in vivado.walk_loops()] == [
        (0, "load_weights"), (0, "conv_oc_tile"), (1, "conv_ic_tile"), (2, "conv_mac"),
        (0, "write_back")]
    assert vivado.find_loop("conv_mac") is mac
    assert vivado.find_loop("nope") is None


def test_vivado_interfaces(vivado):
    ports = vivado.interfaces
    assert [p.name for p in ports] == [
        "s_axi_control_AWVALID", "s_axi_control_AWADDR", "ap_clk", "ap_rst_n",
        "interrupt", "m_axi_gmem_WDATA"]
    aw = ports[1]
    assert (aw.object, aw.type, aw.io_protocol, aw.io_config, aw.dir, aw.bits,
            aw.attribute, aw.ctype) == (
        "control", "scalar", "s_axi", "register", "in", 6, "control", "int")
    assert aw.scope is None  # empty element
    wd = ports[5]
    assert (wd.object, wd.io_protocol, wd.dir, wd.bits, wd.attribute, wd.ctype) == (
        "gmem", "m_axi", "out", 64, None, "void")
    assert vivado.modules == () and vivado.hierarchy is None


def test_vivado_module_report_file():
    m = hr.read(VIVADO_MOD)
    assert m.top_module == "conv_mac_pe"
    assert m.estimated_clock_ns == pytest.approx(7.314)
    assert (m.latency.best, m.latency.worst) == (4617, 4617)
    assert m.latency.worst_time == "46.170 us"
    assert m.resources == Resources(bram_18k=0, dsp=32, ff=5411, lut=7208, uram=0)
    assert [lp.name for lp in m.loops] == ["conv_mac"]
    assert m.interfaces[1].name == "acc_buf_V_address0" and m.interfaces[1].bits == 13
    assert m.module_reports == ()


# --------------------------------------------------------------------------- Vitis 2022.2


def test_vitis_header(vitis):
    assert vitis.tool_version == "2022.2"
    assert vitis.top_module == "fire_engine"
    assert vitis.flow_target == "vivado"
    assert vitis.part == "xc7z020-clg400-1"
    assert vitis.target_clock_ns == pytest.approx(6.67)
    assert vitis.clock_uncertainty_ns == pytest.approx(1.80)
    assert vitis.estimated_clock_ns == pytest.approx(5.843)
    assert vitis.pipeline_type == "no"
    lat = vitis.latency
    assert (lat.best, lat.average, lat.worst, lat.interval_min, lat.interval_max) == (
        52117, 60021, 71233, 52118, 71234)
    assert lat.average_time == "0.400 ms"


def test_vitis_resources_dsp(vitis):
    assert vitis.dsp_field == "DSP"
    assert vitis.resources == Resources(bram_18k=96, dsp=141, ff=23817, lut=31164, uram=0)
    assert vitis.available.dsp == 220
    assert vitis.utilisation["dsp"] == pytest.approx(141 / 220)


def test_vitis_loops(vitis):
    assert [(d, lp.name) for d, lp in vitis.walk_loops()] == [
        (0, "squeeze_oc_tile"), (1, "squeeze_ic_tile"), (0, "expand_store")]
    oc = vitis.loops[0]
    assert oc.trip_count == (6, 6)
    assert oc.latency == (20886, 31308)
    assert oc.iteration_latency == (3481, 5218)
    assert oc.absolute_latency == "0.139 ms ~ 0.209 ms"
    ic = oc.children[0]
    assert ic.trip_count == (4, 6) and ic.latency == (3476, 5214)
    assert ic.iteration_latency == (869, 869)
    assert ic.children == ()  # InstanceList is not a loop
    st_ = vitis.loops[1]
    assert (st_.trip_count, st_.latency, st_.pipeline_ii, st_.pipeline_depth,
            st_.iteration_latency) == ((1352, 1352), (1354, 1354), 1, 3, None)


def test_vitis_module_information(vitis):
    assert [m.name for m in vitis.modules] == [
        "load_tile", "fire_engine_Pipeline_conv_mac", "fire_engine"]
    lt = vitis.module("load_tile")
    assert lt.estimated_clock_ns == pytest.approx(4.412)
    assert lt.target_clock_ns == pytest.approx(6.67)
    assert lt.clock_uncertainty_ns == pytest.approx(1.80)
    assert lt.pipeline_type == "no"
    assert (lt.latency.best, lt.latency.average, lt.latency.worst) == (3, None, None)
    assert lt.latency.best_time == "20.010 ns" and lt.latency.worst_time is None
    assert (lt.latency.interval_min, lt.latency.interval_max) == (3, None)
    (rows,) = lt.loops
    assert rows.name == "load_rows"
    assert rows.trip_count == (None, None) and rows.latency == (None, None)
    assert (rows.pipeline_ii, rows.pipeline_depth) == (2, 5)
    assert rows.absolute_latency is None
    assert lt.resources == Resources(bram_18k=0, dsp=0, ff=219, lut=388, uram=0)
    assert lt.util_percent.ff == 0.0  # "~0"

    mac = vitis.module("fire_engine_Pipeline_conv_mac")
    assert mac.resources == Resources(bram_18k=0, dsp=128, ff=9342, lut=11876, uram=0)
    assert mac.available == Resources(bram_18k=280, dsp=220, ff=106400, lut=53200, uram=0)
    assert (mac.util_percent.dsp, mac.util_percent.ff, mac.util_percent.lut) == (58, 8, 22)
    assert mac.latency.worst == 866
    (loop,) = mac.loops
    assert (loop.name, loop.trip_count, loop.latency, loop.pipeline_ii,
            loop.pipeline_depth) == ("conv_mac", (857, 857), (864, 864), 1, 9)

    top = vitis.module("fire_engine")
    assert top.loops == ()  # no SummaryOfLoopLatency in this module entry
    assert top.util_percent.bram_18k == 34 and top.util_percent.lut == 58
    assert vitis.module("missing") is None


def test_vitis_hierarchy(vitis):
    h = vitis.hierarchy
    assert h.module == "fire_engine" and h.instance is None
    assert [(c.module, c.instance) for c in h.children] == [
        ("load_tile", "grp_load_tile_fu_236"),
        ("fire_engine_Pipeline_conv_mac", "grp_fire_engine_Pipeline_conv_mac_fu_214")]
    assert all(c.children == () for c in h.children)


def test_frozen(vivado):
    with pytest.raises(AttributeError):
        vivado.part = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        vivado.loops[0].name = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- directories


def test_directory_report_dir():
    r = hr.read(FIX / "vivado2020_1")
    assert r.top_module == "squeeze_engine"
    assert r.path == str(VIVADO)
    assert [m.top_module for m in r.module_reports] == ["conv_mac_pe"]
    assert r.module_report("conv_mac_pe").resources.dsp == 32
    assert r.module_report("nope") is None


def test_directory_solution_and_project(tmp_path):
    rep = tmp_path / "prj" / "solution1" / "syn" / "report"
    rep.mkdir(parents=True)
    shutil.copy(VITIS, rep / "csynth.xml")
    shutil.copy(VITIS, rep / "fire_engine_csynth.xml")  # Vitis' copy of the top report
    shutil.copy(VIVADO_MOD, rep / "conv_mac_pe_csynth.xml")
    for d in (rep, tmp_path / "prj" / "solution1", tmp_path / "prj"):
        r = hr.read(d)
        assert r.top_module == "fire_engine"
        assert r.path == str(rep / "csynth.xml")
        assert [m.top_module for m in r.module_reports] == ["conv_mac_pe"]


def test_directory_errors(tmp_path):
    with pytest.raises(HlsReportError) as ei:
        hr.read(tmp_path)
    assert str(tmp_path) in str(ei.value) and "csynth.xml" in str(ei.value)
    for sol in ("s1", "s2"):
        d = tmp_path / sol / "syn" / "report"
        d.mkdir(parents=True)
        shutil.copy(VIVADO, d / "csynth.xml")
    with pytest.raises(HlsReportError, match="several solutions"):
        hr.read(tmp_path)


def test_directory_with_bad_module_report(tmp_path):
    shutil.copy(VIVADO, tmp_path / "csynth.xml")
    shutil.copy(TRUNC, tmp_path / "broken_csynth.xml")
    with pytest.raises(HlsReportError) as ei:
        hr.read(tmp_path)
    assert "broken_csynth.xml" in str(ei.value)


# --------------------------------------------------------------------------- errors


def test_error_hierarchy():
    assert issubclass(HlsReportError, ZynqSqueezeError)
    assert issubclass(ZynqSqueezeError, Exception)


def test_truncated():
    with pytest.raises(HlsReportError) as ei:
        hr.read(TRUNC)
    msg = str(ei.value)
    assert str(TRUNC) in msg
    assert "not well-formed" in msg
    assert "line 63" in msg and "column" in msg
    assert ei.value.file == str(TRUNC)


def test_empty_file(tmp_path):
    f = tmp_path / "csynth.xml"
    f.write_text("")
    with pytest.raises(HlsReportError, match="not well-formed"):
        hr.read(f)


def test_foreign():
    with pytest.raises(HlsReportError) as ei:
        hr.read(FOREIGN)
    msg = str(ei.value)
    assert str(FOREIGN) in msg
    assert "<project>" in msg and "<profile>" in msg and "not a Vivado/Vitis HLS" in msg


def test_missing_file(tmp_path):
    f = tmp_path / "absent.xml"
    with pytest.raises(HlsReportError) as ei:
        hr.read(f)
    assert str(f) in str(ei.value) and "cannot read" in str(ei.value)


def _mutated(tmp_path: Path, old: str, new: str, src: Path = VIVADO) -> Path:
    text = src.read_text()
    assert old in text
    f = tmp_path / "csynth.xml"
    f.write_text(text.replace(old, new, 1))
    return f


@pytest.mark.parametrize("old,new,field", [
    ("<Part>xc7z020-clg400-1</Part>\n", "", "profile/UserAssignments/Part"),
    ("<TopModelName>squeeze_engine</TopModelName>", "",
     "profile/UserAssignments/TopModelName"),
    ("<TargetClockPeriod>10.00</TargetClockPeriod>", "",
     "profile/UserAssignments/TargetClockPeriod"),
    ("<Version>2020.1</Version>", "", "profile/ReportVersion/Version"),
    ("<EstimatedClockPeriod>8.652</EstimatedClockPeriod>", "",
     "profile/PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod"),
    ("<Worst-caseLatency>927390</Worst-caseLatency>", "",
     "profile/PerformanceEstimates/SummaryOfOverallLatency/Worst-caseLatency"),
])
def test_missing_required_field(tmp_path, old, new, field):
    f = _mutated(tmp_path, old, new)
    with pytest.raises(HlsReportError) as ei:
        hr.read(f)
    msg = str(ei.value)
    assert str(f) in msg and field in msg and "missing" in msg
    assert ei.value.field == field


def test_missing_section(tmp_path):
    text = VIVADO.read_text()
    start, end = text.index("<AreaEstimates>"), text.index("</AreaEstimates>")
    f = tmp_path / "csynth.xml"
    f.write_text(text[:start] + text[end + len("</AreaEstimates>"):])
    with pytest.raises(HlsReportError, match="profile/AreaEstimates"):
        hr.read(f)


@pytest.mark.parametrize("old,new,field", [
    ("<Best-caseLatency>18432</Best-caseLatency>", "<Best-caseLatency>lots</Best-caseLatency>",
     "profile/PerformanceEstimates/SummaryOfOverallLatency/Best-caseLatency"),
    ("<PipelineII>1</PipelineII>", "<PipelineII>1.5</PipelineII>",
     "profile/PerformanceEstimates/SummaryOfLoopLatency/conv_oc_tile/conv_ic_tile/"
     "conv_mac/PipelineII"),
    ("<min>2</min>", "<min>two</min>",
     "profile/PerformanceEstimates/SummaryOfLoopLatency/conv_oc_tile/TripCount/range/min"),
    ("<DSP48E>37</DSP48E>", "<DSP48E>x</DSP48E>", "profile/AreaEstimates/Resources/DSP48E"),
    ("<TargetClockPeriod>10.00</TargetClockPeriod>",
     "<TargetClockPeriod>fast</TargetClockPeriod>",
     "profile/UserAssignments/TargetClockPeriod"),
    ("<Part>xc7z020-clg400-1</Part>", "<Part><a>1</a></Part>", "profile/UserAssignments/Part"),
])
def test_bad_value_names_field(tmp_path, old, new, field):
    f = _mutated(tmp_path, old, new)
    with pytest.raises(HlsReportError) as ei:
        hr.read(f)
    assert str(f) in str(ei.value) and field in str(ei.value)
    assert ei.value.field == field


def test_empty_profile(tmp_path):
    f = tmp_path / "csynth.xml"
    f.write_text("<?xml version='1.0'?><profile/>")
    with pytest.raises(HlsReportError) as ei:
        hr.read(f)
    assert str(f) in str(ei.value) and "ReportVersion" in str(ei.value)


def test_undef_target_clock_rejected(tmp_path):
    f = _mutated(tmp_path, "<TargetClockPeriod>10.00</TargetClockPeriod>",
                 "<TargetClockPeriod>undef</TargetClockPeriod>")
    with pytest.raises(HlsReportError, match="TargetClockPeriod"):
        hr.read(f)


def test_module_information_missing_name(tmp_path):
    f = _mutated(tmp_path, "<Name>load_tile</Name>", "", src=VITIS)
    with pytest.raises(HlsReportError) as ei:
        hr.read(f)
    assert "profile/ModuleInformation/Module[0]/Name" in str(ei.value)


def test_optional_fields_absent(tmp_path):
    text = VIVADO.read_text()
    for cut in ("<ClockUncertainty>1.25</ClockUncertainty>\n",
                "<ProductFamily>zynq</ProductFamily>\n"):
        text = text.replace(cut, "")
    a, b = text.index("<AvailableResources>"), text.index("</AvailableResources>")
    text = text[:a] + text[b + len("</AvailableResources>"):]
    a, b = text.index("<InterfaceSummary>"), text.index("</InterfaceSummary>")
    text = text[:a] + text[b + len("</InterfaceSummary>"):]
    a, b = text.index("<SummaryOfLoopLatency>"), text.index("</SummaryOfLoopLatency>")
    text = text[:a] + text[b + len("</SummaryOfLoopLatency>"):]
    f = tmp_path / "csynth.xml"
    f.write_text(text)
    r = hr.read(f)
    assert r.clock_uncertainty_ns is None and r.product_family is None
    assert r.available is None and r.utilisation["dsp"] is None
    assert r.interfaces == () and r.loops == ()
    assert "loops: none reported" in hr.summary(r)


# --------------------------------------------------------------------------- output


@pytest.mark.parametrize("path", [VIVADO, VITIS, FIX / "vivado2020_1"])
def test_to_json_round_trip(path):
    r = hr.read(path)
    d = hr.to_json(r)
    assert json.loads(json.dumps(d)) == d
    assert d["top_module"] == r.top_module
    assert d["latency"]["worst"] == r.latency.worst
    assert d["utilisation"]["dsp"] == pytest.approx(r.utilisation["dsp"])
    assert d["resources"]["dsp"] == r.resources.dsp


def test_to_json_content(vivado):
    d = hr.to_json(vivado)
    oc = d["loops"][1]
    assert oc["name"] == "conv_oc_tile" and oc["trip_count"] == [2, 16]
    assert oc["children"][0]["children"][0]["pipeline_ii"] == 1
    assert d["loops"][0]["latency"] == [None, None]
    assert d["dsp_field"] == "DSP48E"


def test_to_json_vitis_modules(vitis):
    d = hr.to_json(vitis)
    assert d["modules"][1]["util_percent"]["dsp"] == 58
    assert d["hierarchy"]["children"][0]["module"] == "load_tile"


def test_summary_vivado(vivado):
    s = hr.summary(vivado)
    for needle in ("squeeze_engine", "xc7z020-clg400-1", "10.000 ns", "8.652 ns",
                   "1.250 ns", "927,390", "9.274 ms", "18,433 .. 927,391",
                   "DSP48E", "16.8%", "26.4%", "36.9%", "conv_oc_tile", "2..16",
                   "    conv_mac", "undef"):
        assert needle in s, needle
    assert "module reports: conv_mac_pe" in hr.summary(hr.read(FIX / "vivado2020_1"))
    dsp_line = next(line for line in s.splitlines() if line.startswith("DSP48E"))
    assert dsp_line.split() == ["DSP48E", "37", "220", "16.8%"]


def test_summary_vitis(vitis):
    s = hr.summary(vitis)
    assert "flow vivado" in s and "64.1%" in s
    assert "fire_engine_Pipeline_conv_mac" in s
    assert next(ln for ln in s.splitlines() if ln.startswith("DSP ")).split() == [
        "DSP", "141", "220", "64.1%"]


# --------------------------------------------------------------------------- comparison


def test_format_comparison_by_name(vivado):
    text = hr.format_comparison(vivado, [
        {"name": "conv", "cycles": 800_000},
        {"name": "Write-Back", "cycles": 1_000},
        {"name": "pool1", "cycles": 50},
    ])
    lines = text.splitlines()
    conv = next(ln for ln in lines if ln.startswith("conv "))
    # the outermost matching loop only (conv_ic_tile / conv_mac are inside it)
    assert "927,360" in conv and "1.16x" in conv and "conv_oc_tile" in conv
    assert "conv_mac" not in conv
    wb = next(ln for ln in lines if ln.startswith("Write-Back"))
    assert "1,026" in wb and "1.03x" in wb and "write_back" in wb
    pool = next(ln for ln in lines if ln.startswith("pool1"))
    assert "no matching loop" in pool
    total = next(ln for ln in lines if ln.startswith("TOTAL"))
    assert "801,050" in total and "927,390" in total and "1.16x" in total


def test_format_comparison_loop_label_and_modules(vitis):
    text = hr.format_comparison(vitis, [
        {"name": "fire2/squeeze", "cycles": 30_000, "loop": "squeeze"},
        {"name": "mac", "cycles": 800, "loop": "conv_mac"},  # found in ModuleInformation
        {"name": "load", "cycles": 10, "loop": "load_rows"},  # undef latency
    ])
    lines = text.splitlines()
    sq = next(ln for ln in lines if ln.startswith("fire2/squeeze"))
    assert "31,308" in sq and "1.04x" in sq
    mac = next(ln for ln in lines if ln.startswith("mac"))
    assert "864" in mac and "1.08x" in mac
    load = next(ln for ln in lines if ln.startswith("load"))
    assert "undef" in load and "n/a" in load
    total = next(ln for ln in lines if ln.startswith("TOTAL"))
    assert "30,810" in total and "71,233" in total and "2.31x" in total


def test_format_comparison_totals_only(vivado):
    text = hr.format_comparison(vivado, [{"name": "a", "cycles": 463695},
                                         {"name": "b", "cycles": 463695}])
    total = text.splitlines()[-1]
    assert total.startswith("TOTAL") and "927,390" in total and "1.00x" in total


def test_format_comparison_bad_layer(vivado):
    with pytest.raises(ValueError, match=r"model_layers\[0\]"):
        hr.format_comparison(vivado, [{"name": "x"}])


# --------------------------------------------------------------------------- property test

_ident = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,11}", fullmatch=True).filter(
    lambda s: not s.lower().startswith("xml"))
_count = st.integers(min_value=0, max_value=10**9)
_maybe = st.one_of(st.none(), _count)  # None = undef
_range = st.one_of(
    _maybe.map(lambda v: ("scalar", v)),
    st.tuples(_maybe, _maybe).map(lambda t: ("range", t)),
)


def _loop_strategy():
    leaf = st.fixed_dictionaries({
        "trip": _range, "lat": _range,
        "kind": st.one_of(st.tuples(st.just("iter"), _range),
                          st.tuples(st.just("pipe"), _maybe, _maybe)),
    })
    return st.recursive(
        leaf.map(lambda d: {**d, "children": []}),
        lambda kids: st.builds(lambda d, ch: {**d, "children": ch}, leaf,
                               st.lists(kids, max_size=3)),
        max_leaves=8,
    )


def _name_loops(loops: list, prefix: str) -> list:
    """Give loops unique XML-safe names (unique among siblings)."""
    for i, lp in enumerate(loops):
        lp["name"] = f"{prefix}L{i}"
        _name_loops(lp["children"], lp["name"] + "_")
    return loops


_report = st.fixed_dictionaries({
    "version": st.sampled_from(["2020.1", "2020.2", "2021.2", "2022.2", "2023.1"]),
    "part": _ident,
    "family": _ident,
    "top": _ident,
    "target": st.floats(min_value=0.5, max_value=100, allow_nan=False).map(lambda f: round(f, 2)),
    "unc": st.one_of(st.none(), st.floats(min_value=0, max_value=10).map(lambda f: round(f, 2))),
    "est": st.one_of(st.none(), st.floats(min_value=0.1, max_value=50).map(lambda f: round(f, 3))),
    "lat": st.tuples(_maybe, _maybe, _maybe),
    "ival": st.tuples(_maybe, _maybe),
    "loops": st.lists(_loop_strategy(), max_size=4).map(lambda ls: _name_loops(ls, "")),
    "used": st.tuples(*[_count] * 5),
    "avail": st.one_of(st.none(), st.tuples(*[_count] * 5)),
    "dsp_tag": st.sampled_from(["DSP48E", "DSP"]),
    "indent": st.sampled_from(["", "  ", "    "]),
    "sep": st.sampled_from(["\n", "", "\r\n"]),
})


def _v(x) -> str:
    return "undef" if x is None else str(x)


def _xml_range(tag: str, r, ind: str, depth: int) -> list[str]:
    pad = ind * depth
    kind, v = r
    if kind == "scalar":
        return [f"{pad}<{tag}>{_v(v)}</{tag}>"]
    return [f"{pad}<{tag}>", f"{pad}{ind}<range>", f"{pad}{ind * 2}<min>{_v(v[0])}</min>",
            f"{pad}{ind * 2}<max>{_v(v[1])}</max>", f"{pad}{ind}</range>", f"{pad}</{tag}>"]


def _xml_loop(lp: dict, ind: str, depth: int) -> list[str]:
    pad = ind * depth
    out = [f"{pad}<{lp['name']}>"]
    out += _xml_range("TripCount", lp["trip"], ind, depth + 1)
    out += _xml_range("Latency", lp["lat"], ind, depth + 1)
    if lp["kind"][0] == "iter":
        out += _xml_range("IterationLatency", lp["kind"][1], ind, depth + 1)
    else:
        out.append(f"{pad}{ind}<PipelineII>{_v(lp['kind'][1])}</PipelineII>")
        out.append(f"{pad}{ind}<PipelineDepth>{_v(lp['kind'][2])}</PipelineDepth>")
    for c in lp["children"]:
        out += _xml_loop(c, ind, depth + 1)
    out.append(f"{pad}</{lp['name']}>")
    return out


def _xml_report(s: dict) -> str:
    i = s["indent"]
    tags = ["BRAM_18K", s["dsp_tag"], "FF", "LUT", "URAM"]
    L = ['<?xml version="1.0" encoding="UTF-8"?>', "<profile>",
         f"{i}<ReportVersion>", f"{i * 2}<Version>{s['version']}</Version>",
         f"{i}</ReportVersion>", f"{i}<UserAssignments>", f"{i * 2}<unit>ns</unit>",
         f"{i * 2}<ProductFamily>{s['family']}</ProductFamily>",
         f"{i * 2}<Part>{s['part']}</Part>",
         f"{i * 2}<TopModelName>{s['top']}</TopModelName>",
         f"{i * 2}<TargetClockPeriod>{s['target']}</TargetClockPeriod>"]
    if s["unc"] is not None:
        L.append(f"{i * 2}<ClockUncertainty>{s['unc']}</ClockUncertainty>")
    L += [f"{i}</UserAssignments>", f"{i}<PerformanceEstimates>",
          f"{i * 2}<SummaryOfTimingAnalysis>",
          f"{i * 3}<EstimatedClockPeriod>{_v(s['est'])}</EstimatedClockPeriod>",
          f"{i * 2}</SummaryOfTimingAnalysis>", f"{i * 2}<SummaryOfOverallLatency>"]
    for tag, v in zip(("Best", "Average", "Worst"), s["lat"]):
        L.append(f"{i * 3}<{tag}-caseLatency>{_v(v)}</{tag}-caseLatency>")
    L.append(f"{i * 3}<Interval-min>{_v(s['ival'][0])}</Interval-min>")
    L.append(f"{i * 3}<Interval-max>{_v(s['ival'][1])}</Interval-max>")
    L.append(f"{i * 2}</SummaryOfOverallLatency>")
    if s["loops"]:
        L.append(f"{i * 2}<SummaryOfLoopLatency>")
        for lp in s["loops"]:
            L += _xml_loop(lp, i, 3)
        L.append(f"{i * 2}</SummaryOfLoopLatency>")
    L += [f"{i}</PerformanceEstimates>", f"{i}<AreaEstimates>", f"{i * 2}<Resources>"]
    L += [f"{i * 3}<{t}>{v}</{t}>" for t, v in zip(tags, s["used"])]
    L.append(f"{i * 2}</Resources>")
    if s["avail"] is not None:
        L.append(f"{i * 2}<AvailableResources>")
        L += [f"{i * 3}<{t}>{v}</{t}>" for t, v in zip(tags, s["avail"])]
        L.append(f"{i * 2}</AvailableResources>")
    L += [f"{i}</AreaEstimates>", "</profile>"]
    return s["sep"].join(L)


def _expect_range(r) -> tuple:
    kind, v = r
    return (v, v) if kind == "scalar" else tuple(v)


def _check_loop(got: Loop, spec: dict) -> None:
    assert got.name == spec["name"]
    assert got.trip_count == _expect_range(spec["trip"])
    assert got.latency == _expect_range(spec["lat"])
    if spec["kind"][0] == "iter":
        assert got.iteration_latency == _expect_range(spec["kind"][1])
        assert got.pipeline_ii is None and got.pipeline_depth is None
    else:
        assert got.iteration_latency is None
        assert (got.pipeline_ii, got.pipeline_depth) == spec["kind"][1:]
    assert len(got.children) == len(spec["children"])
    for g, c in zip(got.children, spec["children"]):
        _check_loop(g, c)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_report)
def test_random_reports_round_trip(spec):
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "csynth.xml"
        f.write_text(_xml_report(spec))
        r = hr.read(f)
    assert r.tool_version == spec["version"]
    assert r.part == spec["part"] and r.product_family == spec["family"]
    assert r.top_module == spec["top"]
    assert r.target_clock_ns == pytest.approx(spec["target"])
    assert r.clock_uncertainty_ns == (None if spec["unc"] is None
                                      else pytest.approx(spec["unc"]))
    assert r.estimated_clock_ns == (None if spec["est"] is None
                                    else pytest.approx(spec["est"]))
    assert (r.latency.best, r.latency.average, r.latency.worst) == spec["lat"]
    assert (r.latency.interval_min, r.latency.interval_max) == spec["ival"]
    assert r.dsp_field == spec["dsp_tag"]
    assert r.resources == Resources(*spec["used"])
    if spec["avail"] is None:
        assert r.available is None
    else:
        assert r.available == Resources(*spec["avail"])
        for n, used, av in zip(hr.RESOURCE_NAMES, spec["used"], spec["avail"]):
            assert r.utilisation[n] == (pytest.approx(used / av) if av else None)
    assert len(r.loops) == len(spec["loops"])
    for g, s in zip(r.loops, spec["loops"]):
        _check_loop(g, s)
    d = hr.to_json(r)
    assert json.loads(json.dumps(d)) == d
    hr.summary(r)  # renders without error


def test_str_path_and_parse_string():
    assert hr.read(str(VIVADO)) == hr.read(VIVADO)
    r = hr.parse_string(VITIS.read_bytes(), file="inline.xml")
    assert r.path == "inline.xml" and r.resources.dsp == 141
    with pytest.raises(HlsReportError, match="inline.xml: not well-formed"):
        hr.parse_string("<profile><ReportVersion>", file="inline.xml")


def test_deeply_nested_or_entity_files_are_refused():
    deep = "<profile>" + "<a>" * 5000 + "</a>" * 5000 + "</profile>"
    with pytest.raises(hr.HlsReportError, match="HLS report deep.xml"):
        hr.parse_string(deep, "deep.xml")
    bomb = ('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaaaaaa">'
            '<!ENTITY b "&a;&a;&a;&a;">]><profile>&b;</profile>')
    with pytest.raises(hr.HlsReportError, match="HLS report bomb.xml"):
        hr.parse_string(bomb, "bomb.xml")


# --------------------------------------------------------------------------- impossible values
@pytest.mark.parametrize("old,new,field", [
    ("<LUT>19642</LUT>", "<LUT>-5</LUT>", "profile/AreaEstimates/Resources/LUT"),
    ("<DSP48E>37</DSP48E>", "<DSP48E>-1</DSP48E>", "profile/AreaEstimates/Resources/DSP48E"),
    ("<DSP48E>220</DSP48E>", "<DSP48E>-220</DSP48E>",
     "profile/AreaEstimates/AvailableResources/DSP48E"),
    ("<TargetClockPeriod>10.00</TargetClockPeriod>",
     "<TargetClockPeriod>0</TargetClockPeriod>", "profile/UserAssignments/TargetClockPeriod"),
    ("<TargetClockPeriod>10.00</TargetClockPeriod>",
     "<TargetClockPeriod>-10</TargetClockPeriod>", "profile/UserAssignments/TargetClockPeriod"),
    ("<TargetClockPeriod>10.00</TargetClockPeriod>",
     "<TargetClockPeriod>NaN</TargetClockPeriod>", "profile/UserAssignments/TargetClockPeriod"),
    ("<EstimatedClockPeriod>8.652</EstimatedClockPeriod>",
     "<EstimatedClockPeriod>0.0</EstimatedClockPeriod>",
     "profile/PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod"),
    ("<ClockUncertainty>1.25</ClockUncertainty>", "<ClockUncertainty>-1</ClockUncertainty>",
     "profile/UserAssignments/ClockUncertainty"),
])
def test_negative_resources_and_impossible_clocks(tmp_path, old, new, field):
    """A resource count below 0 or a clock period of 0 / below 0 / NaN cannot come from
    synthesis: HlsReportError naming the element (they gave division by zero or
    negative utilisation before)."""
    f = _mutated(tmp_path, old, new)
    with pytest.raises(HlsReportError) as ei:
        hr.read(f)
    assert str(f) in str(ei.value) and field in str(ei.value)
    assert ei.value.field == field


@pytest.mark.parametrize("old,new,field", [
    ("<AVAIL_LUT>53200</AVAIL_LUT>", "<AVAIL_LUT>-53200</AVAIL_LUT>",
     "profile/ModuleInformation/Module[0]/AreaEstimates/Resources/AVAIL_LUT"),
    ("<TargetClockPeriod>6.67</TargetClockPeriod>\n                    <ClockUncertainty>1.80",
     "<TargetClockPeriod>0</TargetClockPeriod>\n                    <ClockUncertainty>1.80",
     "profile/ModuleInformation/Module[0]/PerformanceEstimates/SummaryOfTimingAnalysis/"
     "TargetClockPeriod"),
])
def test_impossible_module_values(tmp_path, old, new, field):
    f = _mutated(tmp_path, old, new, src=VITIS)
    with pytest.raises(HlsReportError) as ei:
        hr.read(f)
    assert ei.value.field == field, str(ei.value)


def test_zero_uncertainty_and_resources_are_fine(tmp_path):
    f = _mutated(tmp_path, "<ClockUncertainty>1.25</ClockUncertainty>",
                 "<ClockUncertainty>0</ClockUncertainty>")
    assert hr.read(f).clock_uncertainty_ns == 0.0
    f = _mutated(tmp_path, "<DSP48E>37</DSP48E>", "<DSP48E>0</DSP48E>")
    assert hr.read(f).resources.dsp == 0
