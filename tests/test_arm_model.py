"""The ARM side of the end-to-end time (schedule/arm_model.py, report/arm.py): the model is
monotonic and follows its formula, the partition report carries each CPU operator's work,
and report.json / report.html / the CLI show the modeled end-to-end figures."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx_graphs import GraphBuilder

import zynq_squeeze
from zynq_squeeze.boards import BOARDS, get_board
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.report.arm import cpu_section, end_to_end
from zynq_squeeze.report.html import render_report_html
from zynq_squeeze.report.summary import make_report
from zynq_squeeze.schedule import arm_model

A9 = get_board("zybo-z7-20").cpu


def test_cpu_facts_per_board():
    assert (A9.name, A9.clock_mhz, A9.fp32_macs_per_cycle, A9.l2_kib) == ("Cortex-A9", 667.0,
                                                                         2.0, 512)
    assert A9.peak_gflops == pytest.approx(2.668)  # 2 MACs x 2 FLOPs x 667 MHz
    assert get_board("pynq-z2").cpu.clock_mhz == 650.0
    assert get_board("ultra96-v2").cpu.name == "Cortex-A53"
    for b in BOARDS.values():
        assert b.cpu.peak_gflops > 0


@settings(max_examples=60, deadline=None)
@given(cls=st.sampled_from(sorted(arm_model.EFFICIENCY)), flops=st.integers(0, 10**10),
       nbytes=st.integers(0, 10**9), dflops=st.integers(0, 10**9),
       dbytes=st.integers(0, 10**8))
def test_op_time_is_monotonic_and_follows_its_formula(cls, flops, nbytes, dflops, dbytes):
    t = arm_model.op_time(A9, cls, flops, nbytes)
    assert t.seconds >= arm_model.OP_OVERHEAD_US * 1e-6
    assert arm_model.op_time(A9, cls, flops + dflops, nbytes + dbytes).seconds >= t.seconds
    compute = flops / (A9.peak_gflops * 1e9 * arm_model.EFFICIENCY[cls])
    assert t.compute_s == pytest.approx(compute)
    assert t.seconds == pytest.approx(max(t.compute_s, t.memory_s) + t.overhead_s)


def test_op_time_refuses_negative_work():
    with pytest.raises(ValueError):
        arm_model.op_time(A9, "conv", -1, 0)


def test_quantize_counts_the_values_written():
    """3 channels padded to 8: the loop writes 3 values per pixel, the driver copies 8."""
    io = arm_model.CallIo(in_floats=3 * 64 * 64, in_int8=8 * 64 * 64, out_floats=10,
                          out_int8=16, n_in=1, n_out=1)
    patched = arm_model.CallIo(**{**io.__dict__, "in_quant": 27 * 64 * 64})
    q, qp = (arm_model.call_parts(A9, x)["quantize"] for x in (io, patched))
    hz = A9.clock_mhz * 1e6
    assert q == pytest.approx(3 * 64 * 64 * arm_model.QUANTIZE_CYCLES_PER_ELEM / hz)
    assert qp == pytest.approx(9 * q)


def test_call_parts_monotonic_in_bytes():
    small = arm_model.CallIo(in_floats=100, in_int8=128, out_floats=10, out_int8=16, n_in=1,
                             n_out=1)
    big = arm_model.CallIo(in_floats=10**6, in_int8=10**6, out_floats=10**5, out_int8=10**5,
                           n_in=1, n_out=1)
    ps, pb = arm_model.call_parts(A9, small), arm_model.call_parts(A9, big)
    assert set(ps) == {"quantize", "copy_in", "sync", "start_wait", "copy_out", "dequantize"}
    assert all(pb[k] >= ps[k] for k in ps)
    assert arm_model.call_time(A9, big) > arm_model.call_time(A9, small)
    # a second range costs another sysfs sync sequence
    two = arm_model.CallIo(**{**small.__dict__, "n_in": 2})
    assert arm_model.call_parts(A9, two)["sync"] == pytest.approx(
        ps["sync"] + arm_model.SYNC_CALL_US * 1e-6)


def test_squeezenet_call_copies_are_small_next_to_the_accelerator():
    """SqueezeNet 1.1 fully offloaded is one call: its 3x224x224 image in (as conv1's 3x3x3
    patches: 4 words per 111x111 output pixel), 1000 classes out. Its ARM share is a
    few milliseconds next to a ~28 ms accelerator run (modeled at 100 MHz), and the
    scalar quantize loop over the patches is most of it."""
    io = arm_model.CallIo(in_floats=3 * 224 * 224, in_int8=111 * 111 * 32, out_floats=1000,
                          out_int8=1000, n_in=1, n_out=1, in_quant=111 * 111 * 27)
    parts = arm_model.call_parts(A9, io)
    ms = sum(parts.values()) * 1e3
    assert 0.2 < ms < 5.0, ms
    assert max(parts, key=parts.get) == "quantize"


# --------------------------------------------------------------------- from a real model

def _cpu_conv_model(oc: int):
    """A dilated 3x3 conv (stays on the CPU) between two offloaded convs."""
    g = GraphBuilder((1, 8, 24, 24), seed=3)
    g.conv(16, 3, pad=1)
    g.conv(oc, 3, pad=2, dilation=2)
    g.conv(8, 1)
    return g.model()


def _partitioned(model):
    _, rep = zynq_squeeze.partition(from_onnx(model))
    return rep


def test_partition_report_carries_cpu_conv_work():
    rep = _partitioned(_cpu_conv_model(32))
    convs = [op for op in rep.cpu_ops if op.op == "relax.nn.conv2d"]
    assert len(convs) == 1, rep
    c = convs[0]
    macs = 32 * 24 * 24 * 16 * 3 * 3
    assert (c.op_class, c.flops, c.shape) == ("conv", 2 * macs, [1, 32, 24, 24])
    # input, weights and output in float32
    assert c.bytes == 4 * (16 * 24 * 24 + 32 * 16 * 9 + 32 * 24 * 24)
    assert json.loads(json.dumps(rep.to_json()))["cpu_ops"][0]["flops"] >= 0


def test_lrn_and_softmax_are_counted_as_their_parts():
    """ONNX's LRN arrives as multiply, avg_pool3d (over 5 channels), add, power, divide."""
    g = GraphBuilder((1, 8, 12, 12), seed=1)
    g.conv(16, 3, pad=1)
    g.op("LRN", size=5, alpha=1e-4, beta=0.75, bias=1.0)
    g.conv(8, 1)
    g.op("Flatten")
    g.op("Softmax")
    ops = {op.op: op for op in _partitioned(g.model()).cpu_ops}
    n = 16 * 12 * 12
    assert ops["relax.power"].op_class == "transcendental"
    assert ops["relax.power"].flops == n * 2 * 16
    assert ops["relax.nn.avg_pool3d"].op_class == "pool"
    assert ops["relax.nn.avg_pool3d"].flops == n * 5
    assert ops["relax.nn.softmax"].op_class == "softmax" and ops["relax.nn.softmax"].flops > 0
    t = {k: arm_model.op_time(A9, o.op_class, o.flops, o.bytes).ms for k, o in ops.items()}
    assert t["relax.power"] > t["relax.multiply"]  # exp-based: far slower per element


def test_cpu_conv_time_proportional_to_macs():
    """Compute-bound CPU convs: modeled time minus the call overhead scales with MACs."""
    times = {}
    for oc in (32, 128):
        rep = _partitioned(_cpu_conv_model(oc))
        sec = cpu_section(SimpleNamespace(partition_report=rep, codegen=[]),
                          get_board("zybo-z7-20"))
        (conv,) = [o for o in sec["ops"] if o["op"] == "relax.nn.conv2d"]
        assert conv["bound"] == "compute" and conv["modeled_ms"] > 0
        assert sec["arm_ms"] >= conv["modeled_ms"] and sec["copies_ms"] == 0
        times[oc] = (conv["modeled_ms"] - arm_model.OP_OVERHEAD_US * 1e-3, conv["flops"])
        expect = conv["flops"] / (A9.peak_gflops * 1e9 * arm_model.EFFICIENCY["conv"]) * 1e3
        assert times[oc][0] == pytest.approx(expect, rel=1e-4)
    assert times[128][0] / times[32][0] == pytest.approx(times[128][1] / times[32][1], rel=1e-3)


def test_end_to_end_sums_the_parts():
    e = end_to_end(2.0, {"arm_ms": 1.0, "copies_ms": 0.5})
    assert e["end_to_end_ms"] == 3.5 and e["end_to_end_fps"] == pytest.approx(1e3 / 3.5, 1e-3)
    assert sum(e["share"].values()) == pytest.approx(1.0, abs=1e-3)
    assert "modeled" in e["end_to_end_basis"]
    assert end_to_end(0.0, {"arm_ms": 0.0, "copies_ms": 0.0})["end_to_end_fps"] == 0.0


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    model = _cpu_conv_model(32)
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 8, 24, 24)).astype(np.float32) for _ in range(2)]
    res = zynq_squeeze.build(from_onnx(model), calibration=calib,
                             out_dir=tmp_path_factory.mktemp("arm"))
    return res, make_report(res, "armtest")


def test_report_json_end_to_end(built):
    res, rep = built
    perf, cpu = rep["performance"], rep["cpu"]
    for key in ("accel_cycles", "latency_ms", "fps", "roofline_fps"):  # unchanged keys
        assert key in perf
    assert perf["end_to_end_ms"] == pytest.approx(
        perf["latency_ms"] + perf["arm_ms"] + perf["copies_ms"], abs=1e-5)
    assert perf["end_to_end_fps"] == pytest.approx(1e3 / perf["end_to_end_ms"], rel=1e-3)
    assert perf["arm_ms"] > 0 and perf["copies_ms"] > 0
    assert "modeled" in cpu["basis"] and "modeled" in perf["end_to_end_basis"]
    assert cpu["cpu"] == "Cortex-A9" and cpu["clock_mhz"] == 667.0
    ops = {o["op"]: o for o in cpu["ops"]}
    assert ops["relax.nn.conv2d"]["flops"] == 2 * 32 * 24 * 24 * 16 * 9
    # two offloaded calls (the convs before and after), each with its copies
    assert len(cpu["calls"]) == len(res.partition_report.functions) == 2
    for c in cpu["calls"]:
        assert c["modeled_ms"] == pytest.approx(sum(
            c[f"{k}_ms"] for k in ("quantize", "copy_in", "sync", "start_wait", "copy_out",
                                   "dequantize")), abs=1e-5)
        assert c["in_int8_bytes"] % 8 == 0 and c["in_int8_bytes"] > 0
        # the quantize loop writes the real channels only (the arena's padding stays 0)
        assert 0 < c["quantized_values"] <= c["in_int8_bytes"]
    assert math.isclose(sum(perf["share"].values()), 1.0, abs_tol=1e-3)
    json.dumps(rep)  # serializable


def test_report_html_shows_the_end_to_end_section(built):
    _, rep = built
    text = render_report_html(rep)
    assert "End to end on the board (modeled)" in text
    assert "relax.nn.conv2d" in text and "ms (modeled)" in text
    assert "end-to-end latency" in text  # the stacked bar's alt text
    assert text.count("data:image/png;base64,") >= 2


def test_cli_compile_prints_end_to_end(tmp_path):
    from onnx import save
    path = tmp_path / "m.onnx"
    save(_cpu_conv_model(16), str(path))
    out = subprocess.run([sys.executable, "-m", "zynq_squeeze.cli", "compile", str(path),
                          "--out", str(tmp_path / "out")], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    line = [ln for ln in out.stdout.splitlines() if "end to end (modeled)" in ln]
    assert line and "Cortex-A9 operators" in line[0] and "copies" in line[0], out.stdout
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["performance"]["end_to_end_ms"] > rep["performance"]["latency_ms"]
