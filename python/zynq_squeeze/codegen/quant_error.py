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
from .lower import ZP_UNSIGNED, pre_pool_hw, default_out_scale, lower_chain, scale_of
from ..quantize.reference import avg_zero_point_reason
from ..partitioning.composite import eval_chain


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    n = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / n) if n > 0 else float(np.array_equal(a, b))


def _zero_points(chain, seen, k: int) -> tuple[int, int, int]:
    """(input, output, bypass) zero points of composite ``k`` as the compiler would give
    them (``lower.assign_zero_points``), judging inputs by the samples: -128 for a
    nonnegative tensor."""
    def nonneg(i):
        return all(s[k][i] is not None and all(float(a.min()) >= 0 for a in s[k][i])
                   for s in seen)
    z_in = ZP_UNSIGNED if nonneg(0) else 0
    z_bp = ZP_UNSIGNED if chain.kind == "conv_add" and nonneg(1) else 0
    if chain.kind == "pool":
        ok = chain.pool.kind == "max" or avg_zero_point_reason(
            chain.pool, *chain.in_shape[2:]) is None
        return (z_in, z_in, 0) if ok else (0, 0, 0)
    last = chain.convs[1:] if chain.kind == "fire" else chain.convs[-1:]
    z_out = ZP_UNSIGNED if all(c.relu for c in last) else 0
    if (chain.pool is not None and chain.pool.kind == "avg"
            and avg_zero_point_reason(chain.pool, *pre_pool_hw(chain)) is not None):
        z_out = 0
    return z_in, z_out, z_bp


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
        z_in, z_out, z_bp = _zero_points(chain, seen, k)
        in_scale = scale_of(r["in"], z_in)
        o_scale = default_out_scale(chain, r, in_scale, z_out)
        bp_scale = scale_of(r["bp"], z_bp) if chain.kind == "conv_add" else None
        layer = lower_chain(f"l{k}", chain, r, in_scale, o_scale,
                            bypass=("bp", bp_scale, z_bp) if bp_scale else None,
                            zp_in=z_in, zp_out=z_out)
        cos, sig, err = [], 0.0, 0.0
        for per_sample in seen:
            x, bps = per_sample[k]
            for n, img in enumerate(x):
                bp = bps[n] if bps is not None else None
                ref = eval_chain(chain, img, bp)["out"]
                xq = quantize(img.reshape(layer.in_shape), in_scale, z_in)
                bq = (quantize(bp.reshape(layer.out_shape), bp_scale, z_bp) if bp is not None
                      else None)
                y = dequantize(run_layer(layer, xq, bq), o_scale, z_out).reshape(ref.shape)
                cos.append(_cos(y, ref))
                sig += float(np.sum(ref.astype(np.float64) ** 2))
                err += float(np.sum((y - ref).astype(np.float64) ** 2))
        out.append({"index": k, "pattern": chain.pattern, "kind": chain.kind,
                    "shape": list(layer.out_shape), "cosine": round(min(cos), 6),
                    "sqnr_db": round(10 * np.log10(sig / err), 2) if err > 0 else None,
                    "out_scale": o_scale})
    return out
