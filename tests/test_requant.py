import numpy as np
import pytest

from zynq_squeeze.quantize.requant import quantize_multiplier, requantize


def test_ties_round_half_up():
    # mult/2**shift = 0.5 exactly
    acc = np.array([5, -5, 3, -3, 1, -1, 0, 4, -4], dtype=np.int32)
    y = requantize(acc, 1 << 30, 31, relu=False)
    assert y.tolist() == [3, -2, 2, -1, 1, 0, 0, 2, -2]


def test_relu_and_saturation():
    acc = np.array([-1000, 1000, 254, 255, -256, -257], dtype=np.int32)
    assert requantize(acc, 1 << 30, 31, relu=True).tolist() == [0, 127, 127, 127, 0, 0]
    assert requantize(acc, 1 << 30, 31, relu=False).tolist() == [-128, 127, 127, 127, -128, -128]


def test_per_channel_axis():
    acc = np.arange(-6, 6, dtype=np.int32).reshape(2, 2, 3)
    y = requantize(acc, np.array([1 << 30, 1 << 30]), np.array([30, 31]), relu=False, axis=0)
    assert y[0].tolist() == acc[0].tolist()
    assert y[1].tolist() == [[0, 1, 1], [2, 2, 3]]


def test_quantize_multiplier_known():
    m, s = quantize_multiplier(np.array([0.5, 1.0, 0.75, 2.0 ** -10]))
    assert m.tolist() == [1 << 30, 1 << 30, 3 << 29, 1 << 30]
    assert s.tolist() == [31, 30, 31, 40]
    assert m.dtype == np.int32 and s.dtype == np.int32


def test_quantize_multiplier_accuracy_and_ranges():
    rng = np.random.default_rng(1)
    real = np.exp(rng.uniform(np.log(1e-9), np.log(1e8), 2000))
    m, s = quantize_multiplier(real)
    assert np.all(m >= 1 << 30) and np.all(m.astype(np.int64) < 1 << 31)
    assert np.all(s >= 1) and np.all(s <= 62)
    approx = m.astype(np.float64) * 2.0 ** (-s.astype(np.float64))
    assert np.allclose(approx, real, rtol=2 ** -30)
    # rounding carry: m just below 1
    m, s = quantize_multiplier(np.array([1 - 2 ** -40]))
    assert m[0] == 1 << 30 and s[0] == 30


def test_quantize_multiplier_clamps():
    m, s = quantize_multiplier(np.array([0.0, 1e-12, 2.0 ** 31, 1e20]))
    assert m.tolist() == [1 << 30, 1 << 30, (1 << 31) - 1, (1 << 31) - 1]
    assert s.tolist() == [62, 62, 1, 1]
    acc = np.array([-(1 << 31), (1 << 31) - 1, -1, 1], dtype=np.int64).astype(np.int32)
    assert requantize(acc, 1 << 30, 62, relu=False).tolist() == [0, 0, 0, 0]
    assert requantize(np.array([1, -1, 0]), (1 << 31) - 1, 1, relu=False).tolist() == [127, -128, 0]


def test_quantize_multiplier_rejects_bad():
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError):
            quantize_multiplier(np.array([bad]))
    with pytest.raises(ValueError):
        requantize(np.array([1]), 1 << 30, 0, relu=False)


def test_default_config_header_matches_engine_default():
    import re

    from zynq_squeeze import native
    from zynq_squeeze.codegen.program import engine_config_header
    from zynq_squeeze.engine.config import EngineConfig

    def macros(text):
        return dict(re.findall(r"#define (ZSQ_\w+) (\d+)", text))

    gen = macros(engine_config_header(EngineConfig(), "test"))
    default = macros((native.src_dir() / "zsq_config_default.h").read_text())
    gen.pop("ZSQ_CLOCK_KHZ")
    assert gen == default
    assert engine_config_header(EngineConfig(), "x") == engine_config_header(EngineConfig(), "x")
