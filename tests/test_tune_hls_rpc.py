"""The ``hls`` and ``rpc`` measurers of the tuner (tuning/measure_hls.py, measure_rpc.py).

hls: a stand-in ``vitis_hls`` on the PATH (a Python script) reads the project's
run_hls.tcl and zsq_dae_config.h and writes a csynth.xml whose resources and estimated
clock follow the engine (DSP = 8k x 8 + 8k, clock 4.2 + 0.5k ns, LUT 6000 + 4000k): the
measurer's project writing, tool invocation (csynth only), report reading, per-engine
cache and error paths run for real; only the synthesis is fake.

rpc: a TVM RPC tracker and two RPC servers on loopback (``tvm.rpc.tracker.Tracker``,
``tvm.rpc.Server``, as TVM's own tests start them) running the host build: the
measurement module is uploaded, loaded and timed on them.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, conv_params, fire
from zynq_squeeze.boards import get_board
from zynq_squeeze.engine.dae_config import DaeTile
from zynq_squeeze.errors import OptionError
from zynq_squeeze.quantize.layers import ConvLayer, PoolSpec, layer_signature
from zynq_squeeze.schedule import dae_tiling
from zynq_squeeze.tuning.candidate import Candidate
from zynq_squeeze.tuning.measure import TuneTask, get_measurer
from zynq_squeeze.tuning.measure_model import ModelMeasurer

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")


# --------------------------------------------------------------------------- task

@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(11)
    conv = ConvLayer("conv1", (3, 19, 17), conv_params(rng, 8, 3, 3, stride=(2, 2)),
                     PoolSpec("max", (3, 3), (2, 2), ceil_mode=True))
    fr = fire(rng, "fire2", conv.out_shape, 4, 8, 8)
    return TuneTask(get_board("zybo-z7-20"), [("tiny", [conv, fr])], (100.0,))


def _cand(task, engine=TINY, variant=0):
    """``engine`` with the default tiles, one of them replaced by the ``variant``-th other
    fitting tile (of any layer) when ``variant`` > 0."""
    tiles = {layer_signature(layer): dae_tiling.default_tile(engine, layer)
             for layer in task.layers}
    if variant:
        others = [(layer_signature(layer), t) for layer in task.layers
                  for t in dae_tiling.candidates(engine, layer)
                  if t != tiles[layer_signature(layer)]]
        sig, tile = others[variant - 1]
        tiles[sig] = tile
    return Candidate.make(engine, tiles)


def _bad_cand(task):
    """A tile that overflows TINY's input buffer: every measurer rejects it."""
    first = task.layers[0]
    tiles = {layer_signature(layer): dae_tiling.default_tile(TINY, layer)
             for layer in task.layers}
    tiles[layer_signature(first)] = DaeTile(toc=8, tic=8, th=64, tw=64)
    return Candidate.make(TINY, tiles)


# --------------------------------------------------------------------------- hls

FAKE_HLS = r'''#!@@PYTHON@@
"""Stand-in for vitis_hls / vitis-run: csynth of run_hls.tcl -> a plausible csynth.xml."""
import math, os, re, sys, time
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_HLS_LOG"], "a") as f:
    f.write(os.path.basename(sys.argv[0]) + " " + " ".join(args) + "\n")
if "-f" in args:
    tcl_file = args[args.index("-f") + 1]
    steps = args[args.index("-tclargs") + 1:] if "-tclargs" in args else ["csim", "csynth"]
elif "--tcl" in args and "--mode" in args and args[args.index("--mode") + 1] == "hls":
    tcl_file = args[args.index("--tcl") + 1]
    steps = os.environ.get("ZSQ_HLS_STEPS", "csim csynth cosim export").split()
else:
    print("ERROR: [HLS 200-101] stand-in: bad command line", args)
    sys.exit(2)
if steps != ["csynth"]:
    print(f"ERROR: stand-in expects csynth only, got steps {steps}")
    sys.exit(3)
mode = os.environ.get("FAKE_HLS_MODE", "ok")
print("INFO: [HLS 200-10] Running stand-in csynth")
if mode == "fail":
    print("ERROR: [HLS 214-194] stand-in: synthesis failed in zsqd_compute")
    sys.exit(2)
if mode == "sleep":
    time.sleep(120)
tcl = Path(tcl_file).read_text()
period = float(re.search(r"create_clock -period (\S+)", tcl).group(1))
part = re.search(r"set_part \{(\S+)\}", tcl).group(1)
top = re.search(r"set_top (\S+)", tcl).group(1)
proj = re.search(r"open_project -reset (\S+)", tcl).group(1)
sol = re.search(r"open_solution -reset (\S+)", tcl).group(1)
for line in tcl.splitlines():  # every synthesizable file the tcl adds must be there
    m = re.match(r"add_files (?:-tb )?(\S+)", line)
    if m and not Path(m.group(1)).is_file():
        print(f"ERROR: [HLS 200-70] cannot find {m.group(1)}")
        sys.exit(1)
mac = {k: int(v) for k, v in re.findall(r"#define (ZSQD_\w+) (\d+)",
                                        Path("zsq_dae_config.h").read_text())}
k = mac["ZSQD_K"]
dsp = 8 * k * 8 + 8 * k
bram = sum(2 * banks * math.ceil(mac[n] / 512) for n, banks in
           (("ZSQD_IN_ROWS", 2 * k), ("ZSQD_W_ROWS", 16 * k), ("ZSQD_ACC_ROWS", 4 * k),
            ("ZSQD_OUT_ROWS", 2 * k)))
lut = int((6000 + 4000 * k) * float(os.environ.get("FAKE_HLS_LUT_SCALE", "1")))
ff = 9000 + 5000 * k
est = 4.2 + 0.5 * k
report = Path(proj) / sol / "syn" / "report"
report.mkdir(parents=True, exist_ok=True)
if mode == "garbage":
    (report / "csynth.xml").write_text("<profile><ReportVersion><Version>2023.2</Ver")
    sys.exit(0)
(report / "csynth.xml").write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<profile>
    <ReportVersion><Version>2023.2</Version></ReportVersion>
    <UserAssignments>
        <unit>ns</unit>
        <ProductFamily>zynq</ProductFamily>
        <Part>{part}</Part>
        <TopModelName>{top}</TopModelName>
        <TargetClockPeriod>{period}</TargetClockPeriod>
        <ClockUncertainty>{period * 0.27:.2f}</ClockUncertainty>
        <FlowTarget>vivado</FlowTarget>
    </UserAssignments>
    <PerformanceEstimates>
        <PipelineType>dataflow</PipelineType>
        <SummaryOfTimingAnalysis>
            <unit>ns</unit>
            <EstimatedClockPeriod>{est:.3f}</EstimatedClockPeriod>
        </SummaryOfTimingAnalysis>
        <SummaryOfOverallLatency>
            <unit>clock cycles</unit>
            <Best-caseLatency>undef</Best-caseLatency>
            <Average-caseLatency>undef</Average-caseLatency>
            <Worst-caseLatency>undef</Worst-caseLatency>
            <Best-caseRealTimeLatency>undef</Best-caseRealTimeLatency>
            <Average-caseRealTimeLatency>undef</Average-caseRealTimeLatency>
            <Worst-caseRealTimeLatency>undef</Worst-caseRealTimeLatency>
            <Interval-min>undef</Interval-min>
            <Interval-max>undef</Interval-max>
        </SummaryOfOverallLatency>
    </PerformanceEstimates>
    <AreaEstimates>
        <Resources>
            <BRAM_18K>{bram}</BRAM_18K>
            <DSP>{dsp}</DSP>
            <FF>{ff}</FF>
            <LUT>{lut}</LUT>
            <URAM>0</URAM>
        </Resources>
        <AvailableResources>
            <BRAM_18K>280</BRAM_18K>
            <DSP>220</DSP>
            <FF>106400</FF>
            <LUT>53200</LUT>
            <URAM>0</URAM>
        </AvailableResources>
    </AreaEstimates>
</profile>
""")
print("INFO: [HLS 200-111] Finished Command csynth_design")
'''


@pytest.fixture
def fake_hls(tmp_path, monkeypatch):
    """A stand-in vitis_hls (and vitis-run) first on the PATH; returns its call log."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("vitis_hls", "vitis-run"):
        script = bindir / name
        script.write_text(FAKE_HLS.replace("@@PYTHON@@", sys.executable))
        script.chmod(0o755)
    log = tmp_path / "hls_calls.log"
    log.write_text("")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_HLS_LOG", str(log))
    monkeypatch.delenv("FAKE_HLS_MODE", raising=False)
    monkeypatch.delenv("FAKE_HLS_LUT_SCALE", raising=False)
    return log


def _calls(log: Path) -> list[str]:
    return [ln for ln in log.read_text().splitlines() if ln]


def test_hls_one_csynth_per_engine_cycles_from_the_model(task, fake_hls):
    a0, a1, a2 = _cand(task), _cand(task, variant=1), _cand(task, variant=2)
    b = _cand(task, replace(TINY, clock_mhz=125.0))  # another engine: another csynth
    cands = [a0, a1, b, a2]
    meas = get_measurer("hls", jobs=2)
    ms = meas.measure(task, cands)
    assert [m.measurer for m in ms] == ["hls"] * 4
    assert all(m.ok for m in ms), [m.error for m in ms]
    calls = _calls(fake_hls)
    assert len(calls) == 2 and meas.runs == 2, calls  # same engine, other tiles: one csynth
    assert all(c == "vitis_hls -f run_hls.tcl -tclargs csynth" for c in calls)
    # cycles: the fast model's, unscaled; resources and clock: the report's
    model = ModelMeasurer().measure(task, cands)
    assert [m.cycles for m in ms] == [m.cycles for m in model]
    assert len({m.cycles for m in ms[:2]}) == 2  # the tiles do change the cycles
    assert ms[0].resources["dsp"] == 8 * 8 + 8 and ms[0].resources["lut"] == 10000
    assert ms[0].detail["csynth"]["estimated_clock_ns"] == pytest.approx(4.7)
    assert ms[0].detail["csynth"]["target_clock_ns"] == pytest.approx(10.0)
    assert ms[2].detail["csynth"]["target_clock_ns"] == pytest.approx(8.0)
    assert ms[0].detail["model"]["layers"]  # the model's per-layer cycles are kept
    # a second batch reuses the per-engine results
    again = meas.measure(task, [a2, b])
    assert [m.cycles for m in again] == [ms[3].cycles, ms[2].cycles]
    assert len(_calls(fake_hls)) == 2


def test_hls_timing_resources_and_model_rejections_are_errors(task, fake_hls, monkeypatch):
    fast = _cand(task, replace(TINY, clock_mhz=250.0))  # 4.7 ns estimate > 4 ns target
    bad = _bad_cand(task)
    ms = get_measurer("hls").measure(task, [fast, bad])
    assert ms[0].error == "timing not met: 4.700 ns > 4.000 ns (250 MHz)" and ms[0].cycles is None
    assert ms[0].resources["dsp"] == 72  # what csynth found is still reported
    assert ms[1].error.startswith("rejected: conv1: tile 8/8/64/64 overflows")
    assert len(_calls(fake_hls)) == 1  # the rejected candidate was not synthesized
    monkeypatch.setenv("FAKE_HLS_LUT_SCALE", "10")
    (m,) = get_measurer("hls").measure(task, [_cand(task)])
    assert m.error == "LUT 100,000 > 37,240 (70% of 53,200) on zybo-z7-20", m.error


@pytest.mark.parametrize("mode, expect", [
    ("fail", ("vitis_hls csynth failed (exit 2): ERROR: [HLS 214-194] stand-in: synthesis "
              "failed in zsqd_compute")),
    ("garbage", "csynth report unreadable: HLS report "),
])
def test_hls_failing_tool_gives_error_measurements(task, fake_hls, monkeypatch, mode, expect):
    monkeypatch.setenv("FAKE_HLS_MODE", mode)
    ms = get_measurer("hls").measure(task, [_cand(task), _cand(task, variant=1)])
    for m in ms:
        assert not m.ok and m.error.startswith(expect), m.error
    assert len(_calls(fake_hls)) == 1
    if mode == "garbage":
        assert "not well-formed XML" in ms[0].error


def test_hls_timeout_kills_the_tool(task, fake_hls, monkeypatch):
    monkeypatch.setenv("FAKE_HLS_MODE", "sleep")
    t0 = time.monotonic()
    (m,) = get_measurer("hls", timeout_s=1.5).measure(task, [_cand(task)])
    assert m.error == "vitis_hls csynth timed out after 1.5 s"
    assert time.monotonic() - t0 < 10


def test_hls_vitis_run_keep_dir_and_reuse(task, fake_hls, tmp_path):
    keep = tmp_path / "keep"
    m1 = get_measurer("hls", vitis_hls="vitis-run", keep_dir=keep)
    (r1,) = m1.measure(task, [_cand(task)])
    assert r1.ok, r1.error
    assert _calls(fake_hls) == ["vitis-run --mode hls --tcl run_hls.tcl"]
    project = Path(r1.detail["csynth"]["project"])
    assert project.parent.parent == keep and (project / "run_hls.tcl").is_file()
    assert (project / "zsq_hls" / "solution1" / "syn" / "report" / "csynth.xml").is_file()
    # a new measurer (a new tuning run) finds the kept synthesis of the same sources
    (r2,) = get_measurer("hls", vitis_hls="vitis-run", keep_dir=keep).measure(
        task, [_cand(task, variant=1)])
    assert r2.ok and r2.detail["csynth"]["cached"] is True
    assert r2.resources == r1.resources and len(_calls(fake_hls)) == 1


def test_hls_missing_tool_is_one_error_at_construction(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # neither vitis_hls nor vitis-run
    with pytest.raises(OptionError, match="vitis_hls not on the PATH"):
        get_measurer("hls")
    with pytest.raises(OptionError, match="Vivado HLS"):
        get_measurer("hls", vitis_hls="vivado_hls")
    with pytest.raises(OptionError, match="jobs"):
        get_measurer("hls", jobs=0)


# --------------------------------------------------------------------------- rpc

try:
    from tvm import rpc
    from tvm.rpc.tracker import Tracker
    _NO_RPC = None
except ImportError as _e:  # the hls tests above still run
    rpc = Tracker = None
    _NO_RPC = f"tvm.rpc is not importable: {_e}"
needs_rpc = pytest.mark.skipif(_NO_RPC is not None, reason=_NO_RPC or "")
KEY = "zsq-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def farm():
    """A tracker and two RPC servers with KEY on loopback (host build)."""
    from zynq_squeeze.tuning.measure_rpc import _TrackerClient

    base = 20000 + os.getpid() % 20000
    tracker = Tracker("127.0.0.1", port=base, port_end=base + 500, silent=True)
    servers = [rpc.Server("127.0.0.1", port=base + 500, port_end=base + 1000, key=KEY,
                          tracker_addr=("127.0.0.1", tracker.port), silent=True)
               for _ in range(2)]
    try:
        deadline = time.monotonic() + 30
        while True:
            c = _TrackerClient("127.0.0.1", tracker.port, 5)
            free = c.summary()["queue_info"].get(KEY, {}).get("free", 0)
            c.close()
            if free == 2:
                break
            assert time.monotonic() < deadline, "the RPC servers did not register"
            time.sleep(0.1)
        yield f"127.0.0.1:{tracker.port}", servers
    finally:
        for s in servers:
            s.terminate()
        tracker.terminate()


@needs_rpc
def test_rpc_measures_on_both_servers_and_equals_sim(task, farm):
    from zynq_squeeze.tuning.measure_sim import SimMeasurer

    tracker, servers = farm
    cands = [_cand(task), _cand(task, variant=1), _bad_cand(task), _cand(task, variant=2),
             _cand(task, variant=3)]
    meas = get_measurer("rpc", tracker=tracker, key=KEY, timeout_s=20, repeat=2)
    ms = meas.measure(task, cands)
    sim = SimMeasurer().measure(task, cands)
    assert [m.measurer for m in ms] == ["rpc"] * 5
    assert ms[2].error.startswith("rejected: conv1: tile 8/8/64/64 overflows"), ms[2].error
    assert sim[2].error == ms[2].error
    good = [m for i, m in enumerate(ms) if i != 2]
    assert all(m.ok for m in good), [m.error for m in good]
    assert [m.cycles for m in ms] == [m.cycles for m in sim]  # the simulation's cycles
    assert len({m.cycles for m in good}) > 1
    served = {m.detail["server"] for m in good}
    assert served == {f"127.0.0.1:{s.port}" for s in servers}  # both servers measured
    m = good[0]
    assert m.detail["backend"] == "csim" and len(m.detail["wall_s_per_run"]) == 2
    assert m.detail["models"]["tiny"]["cycles"] == m.cycles
    assert m.resources == sim[0].resources


@needs_rpc
def test_rpc_no_server_and_unreachable_tracker_are_errors_within_the_timeout(task, farm):
    tracker, _ = farm
    cands = [_cand(task), _cand(task, variant=1)]
    t0 = time.monotonic()
    ms = get_measurer("rpc", tracker=tracker, key="nobody", timeout_s=1).measure(task, cands)
    assert time.monotonic() - t0 < 5
    for m in ms:
        assert m.error.startswith(f"no RPC server with key 'nobody' became free within 1 s "
                                  f"(tracker {tracker} holds 0 server(s)"), m.error
    port = _free_port()  # nothing listens there
    t0 = time.monotonic()
    ms = get_measurer("rpc", tracker=f"127.0.0.1:{port}", key=KEY, timeout_s=1).measure(
        task, cands)
    assert time.monotonic() - t0 < 5
    for m in ms:
        assert m.error.startswith(f"RPC tracker 127.0.0.1:{port} unreachable: "
                                  "ConnectionRefusedError"), m.error


def test_rpc_tracker_option_is_validated():
    from zynq_squeeze.tuning.measure_rpc import RpcMeasurer, parse_tracker

    assert parse_tracker("10.0.0.2:9190") == ("10.0.0.2", 9190)
    assert parse_tracker(" board-farm.local:9190 ") == ("board-farm.local", 9190)
    assert parse_tracker("[::1]:9190") == ("::1", 9190)
    for bad in ("9190", "host", "host:", ":9190", "host:0", "host:70000", "host:9x",
                "a b:1", "", None, "host:9190:1"):
        with pytest.raises(OptionError, match=r"--rpc-tracker expects HOST:PORT .* got "):
            parse_tracker(bad)
    with pytest.raises(OptionError, match="--rpc-tracker expects HOST:PORT"):
        get_measurer("rpc", tracker="localhost")
    with pytest.raises(OptionError, match="--rpc-key"):
        RpcMeasurer(tracker="localhost:9190", key="zy bo")
    with pytest.raises(OptionError, match="timeout_s"):
        RpcMeasurer(tracker="localhost:9190", timeout_s=0)


@pytest.mark.skipif(shutil.which("arm-linux-gnueabihf-g++") is None,
                    reason="needs g++-arm-linux-gnueabihf")
def test_rpc_board_build_is_an_arm_library(task, tmp_path):
    from zynq_squeeze.tuning.measure_rpc import build_measurement_module

    mod = build_measurement_module(task, _cand(task), tmp_path, board_build=True)
    head = mod.path.read_bytes()[:20]
    assert mod.backend == "zynq" and head[:4] == b"\x7fELF"
    assert int.from_bytes(head[18:20], "little") == 40  # e_machine EM_ARM


@needs_rpc
@pytest.mark.skipif(shutil.which("arm-linux-gnueabihf-g++") is None,
                    reason="needs g++-arm-linux-gnueabihf")
def test_rpc_remote_failure_is_an_error_naming_the_server(task, farm):
    """An ARM library sent to the x86 servers: loading it fails on the remote."""
    tracker, servers = farm
    ms = get_measurer("rpc", tracker=tracker, key=KEY, timeout_s=20,
                      board_build=True).measure(task, [_cand(task)])
    ports = {f"127.0.0.1:{s.port}" for s in servers}
    assert ms[0].detail["server"] in ports and ms[0].detail["backend"] == "zynq"
    assert ms[0].error.startswith(f"RPC server {ms[0].detail['server']} (key '{KEY}'): "
                                  "RPCError: "), ms[0].error
    assert "wrong ELF class" in ms[0].error and "\n" not in ms[0].error
