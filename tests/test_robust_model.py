"""Robustness (issue 8, items 5 and 6): models beyond the engine's fields stay on the CPU
with the limit as the reason; tiny weights next to a large bias are handled, not
rejected; NaN/Inf in offloaded weights or calibration data are clear errors; degenerate
calibration data is warned about at the caller's line."""
from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
import tvm
from onnx import numpy_helper
from onnx_graphs import GraphBuilder

import zynq_squeeze
from zynq_squeeze import cli
from zynq_squeeze.errors import ModelError
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.partitioning import limits
from zynq_squeeze.quantize.calibrate import CalibrationError


def _cos(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _onnx_run(m, x):
    return ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]


def _build(m, calib=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic-calibration warning
        return zynq_squeeze.build(from_onnx(m), calibration=calib, **kw)


def _set(m, name, fn):
    for init in m.graph.initializer:
        if init.name == name:
            init.CopyFrom(numpy_helper.from_array(fn(numpy_helper.to_array(init).copy()), name))
            return m
    raise KeyError(name)


@pytest.mark.parametrize("shape, conv, reason", [
    ((1, limits.MAX_CHANNELS + 8, 2, 2), dict(oc=8, k=1),
     f"{limits.MAX_CHANNELS + 8} channels exceed the engine's {limits.MAX_CHANNELS}"),
    ((1, 3, 2, limits.MAX_SPATIAL + 10), dict(oc=8, k=1, stride=2),
     f"exceeds the engine's {limits.MAX_SPATIAL} pixels per side"),
    ((1, 8, 6, 6), dict(oc=8, k=3, pad=limits.MAX_PAD + 1),
     f"padding {limits.MAX_PAD + 1} exceeds the engine's {limits.MAX_PAD}"),
    ((1, 7400, 3, 3), dict(oc=8, k=3),
     f"66600 products per output (7400 channels x 3x3) exceed the int32 accumulator's "
     f"{limits.MAX_REDUCTION}"),
])
def test_conv_beyond_the_engine_stays_on_cpu_with_reason(shape, conv, reason):
    g = GraphBuilder(shape, seed=3)
    g.conv(conv["oc"], conv["k"], pad=conv.get("pad", 0), stride=conv.get("stride", 1))
    g.conv(8, 1)  # an offloadable layer after it
    m = g.model()
    res = _build(m)
    convs = [op.reason for op in res.partition_report.cpu_ops if op.op == "relax.nn.conv2d"]
    assert len(convs) == 1 and reason in convs[0], convs
    assert res.partition_report.patterns == {"zynq_squeeze.conv": 1}
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 0.5
    y = res.vm()["main"](tvm.runtime.tensor(x)).numpy()
    assert _cos(y, _onnx_run(m, x)) > 0.99


def test_limits_reason_is_none_inside_the_fields():
    assert limits.conv_limit_reason((limits.MAX_CHANNELS, 4, 4), (8, 4, 4), (1, 1), (0,) * 4) is None
    assert limits.conv_limit_reason((8, limits.MAX_SPATIAL, 1), (8, limits.MAX_SPATIAL, 1),
                                    (1, 1), (0,) * 4) is None
    assert limits.conv_limit_reason((8, 9, 9), (8, 71, 71), (3, 3), (limits.MAX_PAD,) * 4) is None
    assert limits.conv_limit_reason((7281, 3, 3), (8, 1, 1), (3, 3), (0,) * 4) is None  # 65529


def test_tiny_weights_with_a_large_bias_compile_and_match():
    g = GraphBuilder((1, 8, 8, 8), seed=5)
    g.conv(8, 3, pad=1)
    g.conv(16, 3, pad=1)
    m = g.model()
    w2, b2 = [i.name for i in m.graph.initializer][2:4]

    def tiny(a):
        a[2] *= 1e-9
        return a

    def big(a):
        a[2] = 5.0
        return a

    m = _set(_set(m, w2, tiny), b2, big)
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal((1, 8, 8, 8)).astype(np.float32) for _ in range(4)]
    res = _build(m, calib)
    assert not [op for op in res.partition_report.cpu_ops if op.op == "relax.nn.conv2d"]
    x = rng.standard_normal((1, 8, 8, 8)).astype(np.float32)
    y = res.vm()["main"](tvm.runtime.tensor(x)).numpy()
    ref = _onnx_run(m, x)
    assert _cos(y, ref) > 0.999
    # the channel that is only its bias comes out as the bias (5.0, through ReLU)
    np.testing.assert_allclose(y[0, 2], ref[0, 2], rtol=0.02)


def _nan_weight_model(value=np.nan):
    g = GraphBuilder((1, 8, 8, 8), seed=2)
    g.conv(8, 3, pad=1)
    m = g.model()

    def poison(a):
        a[0, 0, 0, 0] = value
        return a

    return _set(m, m.graph.initializer[0].name, poison)


NAN_WEIGHTS = ("the offloadable chain 0 (zynq_squeeze.conv, input (1, 8, 8, 8)) has 1 NaN or "
               "Inf value(s) in its weights; the int8 accelerator cannot represent them: fix "
               "the model's weights")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_weights_are_a_model_error(value):
    with pytest.raises(ModelError) as e:
        _build(_nan_weight_model(value))
    assert str(e.value) == NAN_WEIGHTS


def test_nan_weights_through_partition_and_cli(tmp_path, capsys):
    m = _nan_weight_model()
    with pytest.raises(ModelError, match="NaN or Inf value"):
        zynq_squeeze.partition(from_onnx(m))
    path = tmp_path / "nan.onnx"
    path.write_bytes(m.SerializeToString())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = cli.main(["compile", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.strip() == f"zynq-squeeze: error: {NAN_WEIGHTS}"


def test_nan_calibration_samples_are_rejected():
    g = GraphBuilder((1, 8, 8, 8), seed=2)
    g.conv(8, 3, pad=1)
    calib = [np.ones((1, 8, 8, 8), np.float32), np.ones((1, 8, 8, 8), np.float32)]
    calib[1][0, 1, 2, 3] = np.nan
    with pytest.raises(CalibrationError) as e:
        zynq_squeeze.calibrate(from_onnx(g.model()), calib)
    assert str(e.value) == ("sample 1, input 'x' has 1 NaN or Inf value(s); "
                            "calibration needs real inputs")


def test_nan_computed_by_the_cpu_part_is_a_calibration_error():
    g = GraphBuilder((1, 8, 8, 8), seed=2)
    g.op("Sqrt")  # NaN for negative inputs, on the CPU, in front of the offloaded conv
    g.conv(8, 3, pad=1)
    calib = [-np.ones((1, 8, 8, 8), np.float32)]
    with pytest.raises(CalibrationError, match=r"offloadable chain 0: its in range is nan"):
        zynq_squeeze.calibrate(from_onnx(g.model()), calib)


def test_all_zero_calibration_warns_at_the_callers_line():
    g = GraphBuilder((1, 8, 8, 8), seed=2)
    g.conv(8, 3, pad=1)
    mod = from_onnx(g.model())
    with pytest.warns(UserWarning) as rec:
        zynq_squeeze.calibrate(mod, [np.zeros((1, 8, 8, 8), np.float32)])
    msgs = [str(w.message) for w in rec]
    assert any("calibration input 'x' is all zeros in every sample" in s for s in msgs), msgs
    assert any("were 0 on every sample (chain 0 in)" in s for s in msgs), msgs
    assert {w.filename for w in rec} == {__file__}


def test_no_calibration_warning_points_at_the_caller():
    g = GraphBuilder((1, 8, 8, 8), seed=2)
    g.conv(8, 3, pad=1)
    mod = from_onnx(g.model())
    with pytest.warns(UserWarning, match="no calibration data given") as rec:
        zynq_squeeze.build(mod)
    assert {w.filename for w in rec} == {__file__}


def test_many_layers_compile_and_run():
    """260 offloaded layers in one function (once reported as failing beyond 256)."""
    g = GraphBuilder((1, 8, 4, 4), seed=4)
    for _ in range(260):
        g.conv(8, 1)
    m = g.model()
    res = _build(m)
    assert len(res.codegen[0].functions[0].layers) == 260
    x = np.random.default_rng(0).standard_normal((1, 8, 4, 4)).astype(np.float32)
    y = res.vm()["main"](tvm.runtime.tensor(x)).numpy()
    assert y.shape == (1, 8, 4, 4) and np.all(np.isfinite(y))
