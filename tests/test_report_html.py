"""Tests of the static HTML report (zynq_squeeze.report.html)."""
from __future__ import annotations

import base64
import copy
import re

import pytest

pytest.importorskip("matplotlib")

from zynq_squeeze.report.html import layer_metrics, render_report_html, write_report_html  # noqa: E402

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def fixture_report() -> dict:
    def layer(name, fn, kind, cin, cout, hw, macs, cycles, ddr):
        return {"name": name, "function": fn, "kind": kind, "in_shape": [cin, hw, hw],
                "out_shape": [cout, hw, hw], "macs": macs,
                "tile": {"toc": 16, "tic": 12, "th": 8, "tw": 8, "loop_order": "spatial_outer",
                         "double_buffer": True},
                "cycles": cycles, "ddr_bytes": ddr, "bram18k": 40, "dsp": 192}

    return {
        "model": "squeezenet1.1", "board": "zybo-z7-20", "part": "xc7z020clg400-1",
        "clock_mhz": 100.0,
        "offload": {"functions": ["zsq_fn0", "zsq_fn1"], "macs_offloaded": 348_000_000,
                    "macs_total": 349_200_000, "offload_ratio": 0.9966,
                    "patterns": {"zynq_squeeze.fire": 8, "zynq_squeeze.conv_relu_pool": 2},
                    "cpu_ops": [{"op": "nn.softmax", "name": "prob",
                                 "reason": "not an accelerator op <softmax>"}]},
        "engine": {"pe_oc": 16, "pe_ic": 12, "in_buf_bytes": 32768},
        "layers": [
            layer("conv1", "zsq_fn0", "conv", 3, 64, 111, 21_000_000, 2_500_000, 900_000),
            layer("fire2", "zsq_fn0", "fire", 64, 128, 55, 11_000_000, 90_000, 400_000),
            layer("<script>alert(1)</script>", "zsq_fn1", "fire", 128, 128, 27, 5_000_000,
                  40_000, 200_000),
        ],
        "resources": {"bram18k": {"used": 230, "available": 280},
                      "dsp": {"used": 200, "available": 220},
                      "lut": {"used": 30_000, "available": 53_200},
                      "ff": {"used": 40_000, "available": 106_400}},
        "performance": {"accel_cycles": 2_630_000, "latency_ms": 26.3, "fps": 38.0,
                        "roofline_fps": 63.0, "efficiency": 0.6, "ddr_bytes": 1_500_000,
                        "ddr_gbps": 4.2, "arm_ms": 1.5, "copies_ms": 2.2,
                        "end_to_end_ms": 30.0, "end_to_end_fps": 33.333},
        "cpu": {"basis": "modeled, not measured: <basis>", "cpu": "Cortex-A9",
                "clock_mhz": 667.0, "peak_gflops": 2.668,
                "ops": [{"op": "relax.nn.softmax", "name": "prob", "shape": [1, 1000],
                         "op_class": "softmax", "flops": 20_000, "bytes": 12_000,
                         "bound": "compute", "modeled_ms": 1.5}],
                "calls": [{"function": "zsq_fn0", "batch": 1, "in_int8_bytes": 394_272,
                           "out_int8_bytes": 1000, "quantize_ms": 2.0, "copy_in_ms": 0.05,
                           "sync_ms": 0.1, "start_wait_ms": 0.05, "copy_out_ms": 0.0,
                           "dequantize_ms": 0.0, "modeled_ms": 2.2}]},
    }


def _pngs(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in
            re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def test_report_written_with_layers_and_images(tmp_path):
    path = write_report_html(fixture_report(), tmp_path / "sub" / "report.html")
    assert path.exists()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    for name in ("conv1", "fire2", "zsq_fn0", "zynq_squeeze.fire", "nn.softmax",
                 "xc7z020clg400-1"):
        assert name in text
    pngs = _pngs(text)
    assert len(pngs) == 4  # resources, end to end, latency, roofline
    assert all(p.startswith(PNG_SIG) for p in pngs)
    # offline: no external resources, no scripts
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<script" not in text.lower()


def test_strings_are_escaped():
    text = render_report_html(fixture_report())
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "not an accelerator op &lt;softmax&gt;" in text
    rep = fixture_report()
    rep["model"] = '"><img src=x onerror=alert(1)>'
    text = render_report_html(rep)
    assert "<img src=x" not in text and "&quot;&gt;&lt;img" in text


def test_optional_keys_may_be_missing():
    rep = fixture_report()
    del rep["resources"]["ff"]
    del rep["performance"]["ddr_gbps"]
    text = render_report_html(rep)  # DDR roof from the board table
    assert len(_pngs(text)) == 4
    assert '<td class="l">FF</td>' not in text
    assert '<td class="l">LUT</td>' in text
    minimal = {"model": "m", "board": "unknown-board", "part": "?", "clock_mhz": 100,
               "layers": []}
    text = render_report_html(minimal)
    assert "<h1>" in text and len(_pngs(text)) == 0


def test_deterministic_and_over_budget_marked(tmp_path):
    rep = fixture_report()
    rep["resources"]["bram18k"]["used"] = 300
    a = render_report_html(copy.deepcopy(rep))
    b = render_report_html(copy.deepcopy(rep))
    assert a == b
    assert 'class="over"' in a


def test_layer_metrics():
    m = layer_metrics({"cycles": 100_000, "macs": 10_000_000, "ddr_bytes": 50_000}, 100.0)
    assert m["ms"] == pytest.approx(1.0)
    assert m["intensity"] == pytest.approx(200.0)
    assert m["gmacs"] == pytest.approx(10.0)
    assert layer_metrics({"cycles": 0, "macs": 5, "ddr_bytes": 0}, 100.0)["gmacs"] is None


def test_end_to_end_section_labelled_modeled():
    text = render_report_html(fixture_report())
    assert "End to end on the board (modeled)" in text
    assert "modeled, not measured: &lt;basis&gt;" in text  # escaped basis
    assert "relax.nn.softmax" in text and "zsq_fn0" in text
    assert "30.00 ms" in text and "33.3 fps" in text
    rep = fixture_report()
    for k in ("end_to_end_ms", "arm_ms", "copies_ms", "end_to_end_fps"):
        del rep["performance"][k]
    del rep["cpu"]
    assert "End to end on the board" not in render_report_html(rep)  # older reports render
