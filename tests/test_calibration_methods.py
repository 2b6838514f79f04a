"""Calibration statistics (quantize.ranges: absmax, mse, percentile), bias correction
(quantize.weights), and the options that choose them (calibrate, build, CLI, report)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx_graphs import GraphBuilder, ort_qdq, small_fire_net

import zynq_squeeze
from zynq_squeeze.cli import main
from zynq_squeeze.codegen.quant_error import layer_errors
from zynq_squeeze.errors import OptionError
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.partitioning import partitioner
from zynq_squeeze.quantize.calibrate import (CalibrationError, calibrate, collect_ranges,
                                             normalize_samples)
from zynq_squeeze.quantize.ranges import (METHODS, Histogram, mse_range, percentile_range,
                                          tensor_range)

SHAPE = (1, 3, 19, 19)


def true_mse(x: np.ndarray, rng: float) -> float:
    """Mean squared error of symmetric int8 quantization of ``x`` at range ``rng``."""
    s = rng / 127
    return float(np.mean((np.clip(np.rint(x / s), -127, 127) * s - x) ** 2))


def hist_of(*arrays) -> Histogram:
    h = Histogram()
    for a in arrays:
        h.add(a)
    return h


# values: a Gaussian bulk, optionally with a few large outliers and exact zeros (a ReLU)
data = st.builds(
    lambda seed, n, outliers, big, relu, scale: _data(seed, n, outliers, big, relu, scale),
    st.integers(0, 2**31), st.integers(50, 4000), st.integers(0, 5),
    st.floats(1.0, 50.0), st.booleans(), st.floats(1e-3, 1e3))


def _data(seed, n, outliers, big, relu, scale):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    x[:outliers] *= big
    if relu:
        x = np.maximum(x, 0)
    return (x * scale).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(data)
def test_mse_range_is_within_absmax_and_no_worse_than_it(x):
    h = hist_of(x)
    absmax = float(np.abs(x).max())
    r = mse_range(h)
    assert h.absmax == absmax
    assert absmax / 256 * (1 - 1e-12) <= r <= absmax
    # the search runs on bin centres (bins <= absmax / 8192 wide); on the real values it
    # is no worse than absmax, up to that binning
    assert true_mse(x, r) <= true_mse(x, absmax) * 1.02 + (absmax / 8192) ** 2


@settings(max_examples=40, deadline=None)
@given(data)
def test_percentile_range_is_within_absmax_and_near_numpy(x):
    h = hist_of(x)
    r = percentile_range(h)
    absmax = float(np.abs(x).max())
    assert 0 < r <= absmax
    # the smallest |x| with 99.99 % of the values at or below it; r is its bin's top edge
    want = float(np.percentile(np.abs(x), 99.99, method="inverted_cdf"))
    if want > 0:  # (else most values are 0: the range stays absmax)
        assert want <= r <= want + absmax / 8192


@settings(max_examples=40, deadline=None)
@given(data, st.integers(1, 6), st.floats(1e-3, 1e3))
def test_histogram_growing_in_chunks_equals_one_pass(x, parts, grow):
    """Widening the bins (pairwise sums) is exact: the order and chunking of the samples
    does not change the counts, only the largest value does."""
    chunks = np.array_split(x * np.float32(grow), parts)
    a, b = hist_of(*chunks), hist_of(x * np.float32(grow))
    assert (a.exp, a.zeros, a.absmax) == (b.exp, b.zeros, b.absmax)
    np.testing.assert_array_equal(a.counts, b.counts)
    for m in METHODS:
        assert tensor_range(a, m) == tensor_range(b, m)


def test_mse_clips_a_lone_outlier_and_keeps_a_uniform_range():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(100_000).astype(np.float32)
    x[0] = 40.0
    # one value's clipping error against 100000 values' rounding noise: it clips part of
    # the outlier (MSE optimum near 26.5), never the bulk (within +-4.5)
    assert 5 < mse_range(hist_of(x)) < 30
    u = rng.uniform(-1, 1, 100_000).astype(np.float32)
    assert mse_range(hist_of(u)) > 0.95 * np.abs(u).max()


def test_dead_and_non_finite_tensors():
    h = hist_of(np.zeros(10, np.float32))
    assert all(tensor_range(h, m) == 0 for m in METHODS)
    h.add(np.array([1.0, np.nan], np.float32))
    assert all(np.isnan(tensor_range(h, m)) for m in METHODS)


# --------------------------------------------------------------------------- calibrate
@pytest.fixture(scope="module")
def fire_mod():
    return from_onnx(small_fire_net(SHAPE))


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(5)
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(4)]


def calib_json(mod, samples, **kw) -> str:
    return str(calibrate(mod, samples, progress=False, **kw).attrs[partitioner.CALIBRATION_ATTR])


@pytest.mark.parametrize("method", METHODS)
def test_calibration_is_deterministic_and_recorded(fire_mod, samples, method):
    a = calib_json(fire_mod, samples, method=method, bias_correction=True)
    assert a == calib_json(fire_mod, samples, method=method, bias_correction=True)
    data = json.loads(a)
    assert data["method"] == method and data["bias_correction"] is True


def test_mse_and_percentile_ranges_never_exceed_absmax(fire_mod, samples):
    norm = normalize_samples(fire_mod, samples)
    ref = collect_ranges(fire_mod, norm, method="absmax", bias_correction=False,
                         progress=False)
    for m in ("mse", "percentile"):
        got = collect_ranges(fire_mod, norm, method=m, bias_correction=False, progress=False)
        for a, b in zip(ref, got):
            assert a["signature"] == b["signature"]
            for key, v in a["ranges"].items():
                assert 0 <= b["ranges"][key] <= v
        if m == "mse":  # (the 99.99th percentile of these few values is their maximum)
            assert any(b["ranges"][k] < v for a, b in zip(ref, got)
                       for k, v in a["ranges"].items())


def test_bias_correction_changes_only_the_biases(fire_mod, samples):
    """Same ranges, same int8 weights; the int32 biases move (by the measured shift)."""
    res = {bc: zynq_squeeze.build(fire_mod, calibration=samples, calibration_method="absmax",
                                  bias_correction=bc) for bc in (False, True)}
    assert (res[True].bias_correction, res[False].bias_correction) == (True, False)
    layers = {bc: [la for cg in r.codegen for lf in cg.functions for la, _, _ in lf.layers]
              for bc, r in res.items()}
    moved = 0
    for a, b in zip(layers[False], layers[True]):
        for name in ("conv", "squeeze", "expand1", "expand3"):
            pa, pb = getattr(a, name, None), getattr(b, name, None)
            if pa is None:
                continue
            np.testing.assert_array_equal(pa.weight, pb.weight)
            moved += int(np.count_nonzero(pa.bias != pb.bias))
    assert moved > 0


def test_unknown_method_is_a_clear_error(fire_mod, samples):
    with pytest.raises(CalibrationError, match="unknown calibration method 'max'.*absmax"):
        calibrate(fire_mod, samples, method="max", progress=False)
    with pytest.raises(OptionError, match="calibration method 'p99'"):
        zynq_squeeze.build(fire_mod, calibration=samples, calibration_method="p99")


def test_bias_correction_removes_the_mean_error_of_the_weights():
    """A conv over a positive-mean input (after a ReLU): the int8 weights shift each
    output channel's mean; the corrected bias takes that shift out (on the data it was
    measured on), so the layer's mean error per channel shrinks."""
    g = GraphBuilder((1, 16, 10, 10), seed=7)
    g.op("Relu")
    g.conv(24, 3, pad=1, relu=False)
    mod = from_onnx(g.model())
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1, 16, 10, 10)).astype(np.float32) + 1 for _ in range(4)]
    norm = normalize_samples(mod, xs)
    plain = collect_ranges(mod, norm, method="absmax", bias_correction=False, progress=False)
    fixed = collect_ranges(mod, norm, method="absmax", bias_correction=True, progress=False)
    (shift,) = fixed[-1]["ranges"]["bias_correction"]
    assert len(shift) == 24 and any(s != 0 for s in shift)
    e0 = layer_errors(mod, xs, plain)[-1]
    e1 = layer_errors(mod, xs, fixed)[-1]
    assert e1["sqnr_db"] > e0["sqnr_db"]


# --------------------------------------------------------------------------- build, CLI
def test_build_generates_identical_sources_twice(fire_mod, samples, tmp_path):
    outs = []
    for n in range(2):
        d = tmp_path / f"b{n}"
        zynq_squeeze.build(fire_mod, calibration=samples, calibration_method="mse",
                           out_dir=d)
        outs.append({p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*.[ch]*"))
                     if p.is_file()})
    assert outs[0] and outs[0] == outs[1]


def test_cli_calibration_method_reaches_the_report(tmp_path, capsys):
    onnx.save(small_fire_net(SHAPE), str(tmp_path / "net.onnx"))
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).standard_normal(
        (4, *SHAPE)).astype(np.float32))
    rc = main(["compile", str(tmp_path / "net.onnx"), "--out", str(tmp_path / "out"),
               "--calib", str(tmp_path / "calib.npy"), "--calibration-method", "percentile",
               "--bias-correction", "on", "--quiet"])
    assert rc == 0
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["calibration_method"] == "percentile" and rep["bias_correction"] is True


def test_cli_bad_calibration_method_is_refused_before_any_file(tmp_path, capsys):
    onnx.save(small_fire_net(SHAPE), str(tmp_path / "net.onnx"))
    rc = main(["compile", str(tmp_path / "net.onnx"), "--out", str(tmp_path / "o"),
               "--calibration-method", "kl"])
    err = capsys.readouterr().err
    assert rc == 2 and "--calibration-method" in err and "'kl'" in err
    assert "absmax" in err and not (tmp_path / "o").exists()


def test_qdq_model_keeps_its_scales_whatever_the_method(samples):
    q = from_onnx(ort_qdq(small_fire_net(SHAPE), symmetric=True, per_channel=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = {m: json.loads(calib_json(q, None, method=m)) for m in METHODS}
    assert got["absmax"] == got["mse"] == got["percentile"]
    assert "method" not in got["mse"]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([1, 3, 5]), st.integers(1, 3), st.integers(0, 2),
       st.sampled_from([(8, 4, 1), (6, 6, 6), (8, 8, 2)]), st.integers(5, 14))
def test_bias_error_equals_the_mean_of_the_error_conv(seed, k, stride, pad, oig, hw):
    """The shift measured from window means (no conv) is the mean output of the weight
    error's conv, any kernel, stride, padding, groups (depthwise included)."""
    from zynq_squeeze.partitioning.composite import FloatConv, conv2d_float
    from zynq_squeeze.quantize.weights import BiasError

    o, i, g = oig
    rng = np.random.default_rng(seed)
    c = FloatConv(rng.standard_normal((o, i // g, k, k)).astype(np.float32),
                  np.zeros(o, np.float32), (stride, stride), (pad, pad, pad, pad), relu=False,
                  groups=g)
    be = BiasError(c)
    want = np.zeros(o)
    xs = [rng.standard_normal((i, hw + k, hw + k)).astype(np.float32) + 1 for _ in range(2)]
    for x in xs:
        be.add(x)
        want += conv2d_float(x, be.err).astype(np.float64).reshape(o, -1).mean(axis=1) / len(xs)
    np.testing.assert_allclose(be.mean(), want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
