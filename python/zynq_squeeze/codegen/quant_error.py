"""Per-layer quantization error: where a network's int8 vs float cosine is lost.

``layer_errors(mod, samples)`` runs the float model over ``samples`` (the calibration
probe: every offloadable composite's float input) and, per composite, compares its
float output (``eval_chain``) with what its accelerator layer computes on that input
quantized: the input quantized at the scale of its calibrated range, the integer golden
layer (``reference.run_layer``), the output dequantized at the layer's output scale
(``lower.default_out_scale``). The error is the layer's own (its input is the float
model's, not the previous layer's int8 output), so the worst layers are where to look.
Concats (channel offsets, no arithmetic) are skipped. Scales are those of the layer
alone: a function input shared by several consumers, or a concat part, may get a wider
one in the compiled model.

Each record: ``index`` (composite order), ``pattern``, ``kind``, ``shape`` (output C, H,
W), ``cosine`` (worst over the samples) and ``sqnr_db`` (signal-to-quantization-noise
ratio, 10 log10(|y|^2 / |y - y_q|^2), over all samples), ``out_scale``.
"""
from __future__ import annotations

import numpy as np

from ..quantize.calibrate import collect_ranges, normalize_samples, probe_composites
from ..quantize.reference import run_layer
from .golden import dequantize, quantize
from .lower import default_out_scale, lower_chain, scale_of
from ..partitioning.composite import eval_chain


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    n = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / n) if n > 0 else float(np.array_equal(a, b))


def layer_errors(mod, samples, calibration=None, *, progress: bool = False) -> list[dict]:
    """Per-composite quantization error records (see the module docstring).
    ``calibration``: the ranges to quantize with (default: calibrated on ``samples``)."""
    norm = normalize_samples(mod, samples)
    ranges = [r["ranges"] for r in (calibration or collect_ranges(mod, norm, progress=progress))]
    _, chains, seen = probe_composites(mod, norm, progress=progress)
    out = []
    for k, chain in enumerate(chains):
        if chain.kind == "concat":
            continue
        r = ranges[k]
        in_scale = scale_of(r["in"])
        o_scale = default_out_scale(chain, r, in_scale)
        bp_scale = scale_of(r["bp"]) if chain.kind == "conv_add" else None
        layer = lower_chain(f"l{k}", chain, r, in_scale, o_scale,
                            bypass=("bp", bp_scale) if bp_scale else None)
        cos, sig, err = [], 0.0, 0.0
        for per_sample in seen:
            x, bps = per_sample[k]
            for n, img in enumerate(x):
                bp = bps[n] if bps is not None else None
                ref = eval_chain(chain, img, bp)["out"]
                xq = quantize(img.reshape(layer.in_shape), in_scale)
                bq = quantize(bp.reshape(layer.out_shape), bp_scale) if bp is not None else None
                y = dequantize(run_layer(layer, xq, bq), o_scale).reshape(ref.shape)
                cos.append(_cos(y, ref))
                sig += float(np.sum(ref.astype(np.float64) ** 2))
                err += float(np.sum((y - ref).astype(np.float64) ** 2))
        out.append({"index": k, "pattern": chain.pattern, "kind": chain.kind,
                    "shape": list(layer.out_shape), "cosine": round(min(cos), 6),
                    "sqnr_db": round(10 * np.log10(sig / err), 2) if err > 0 else None,
                    "out_scale": o_scale})
    return out
