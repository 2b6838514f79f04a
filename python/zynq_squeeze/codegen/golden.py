"""The numpy golden model of a whole offloaded function.

Boundary quantization exactly as the C glue does it (float32 multiply by ``1/scale``,
round half to even, saturate), the integer layers of ``reference``, and dequantization
(float32 multiply by ``scale``). The simulation must match it bit for bit.
"""
from __future__ import annotations

import numpy as np

from ..quantize.reference import run_layer
from .dae_program import layer_reads
from .lower import LoweredFunction, boundary_factors


def quantize(x: np.ndarray, scale: float, zero_point: int = 0) -> np.ndarray:
    """float32 -> int8 as the glue does: saturate(rint(x * float32(1/scale)) + zero_point)."""
    inv, _ = boundary_factors(scale)
    q = np.rint(x.astype(np.float32) * inv) + np.float32(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


def quantize_split(x: np.ndarray, scale: float, split: int) -> np.ndarray:
    """float32 (C, ...) -> int8 (2C, ...), the two-plane input as the glue writes it
    (``lower.INPUT_SPLIT``): ``v = x * float32(1/scale)``, ``hi = saturate(rint(v))``,
    ``lo = saturate(rint((v - hi) * F))`` (``v - hi`` and the multiply by a power of two
    are exact in float32; |lo| <= F/2 unless hi saturated)."""
    inv, _ = boundary_factors(scale)
    v = x.astype(np.float32) * inv
    hi = np.clip(np.rint(v), -128, 127)
    lo = np.clip(np.rint((v - hi) * np.float32(split)), -128, 127)
    return np.concatenate([hi, lo]).astype(np.int8)


def quantize_input(x: np.ndarray, info) -> np.ndarray:
    """A function input's float (C, H, W) image -> its int8 tensor (``TensorInfo``)."""
    x = x.reshape(info.float_shape)
    if info.split:
        return quantize_split(x, info.scale, info.split)
    return quantize(x, info.scale, info.zero_point)


def dequantize(q: np.ndarray, scale: float, zero_point: int = 0) -> np.ndarray:
    """int8 -> float32: float32(q - zero_point) * float32(scale)."""
    _, s = boundary_factors(scale)
    return (q.astype(np.int32) - int(zero_point)).astype(np.float32) * s


def run_graph(layers, shapes: dict, views: dict, inputs: dict):
    """Run ``layers`` ((layer, input id, output id), in order) on int8 ``inputs`` (id ->
    (C,H,W)); returns ``read(id)``, the int8 value of any tensor. A concat part stored in
    place (``views``: id -> (root id, channel offset)) is a channel range of its root's
    array, as in the engine's arena; ``shapes``: id -> (C, H, W)."""
    roots: dict = {}

    def write(t, y):
        r, off = views.get(t, (t, 0))
        if r not in roots:
            roots[r] = np.zeros(shapes[r], np.int8)
        roots[r][off:off + y.shape[0]] = y

    def read(t):
        r, off = views.get(t, (t, 0))
        return roots[r][off:off + shapes[t][0]].copy()

    for t, x in inputs.items():
        write(t, np.asarray(x, np.int8))
    for layer, src, dst in layers:
        write(dst, run_layer(layer, *(read(t) for t in layer_reads(layer, src))))
    return read


def run_function_int8(lf: LoweredFunction, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """int8 (C,H,W) tensors of one image -> int8 outputs, layer by layer."""
    read = run_graph(lf.layers, {t: info.shape for t, info in lf.tensors.items()}, lf.views,
                     dict(zip(lf.inputs, inputs)))
    return [read(t) for t in lf.outputs]


def run_function(lf: LoweredFunction, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Float inputs (Relax shapes, batch first) -> float outputs, as the accelerator computes."""
    outs = [np.zeros(s, np.float32) for s in lf.output_shapes]
    for n in range(lf.batch):
        q = [quantize_input(x[n], lf.tensors[t]) for t, x in zip(lf.inputs, inputs)]
        for k, (t, y) in enumerate(zip(lf.outputs, run_function_int8(lf, q))):
            info = lf.tensors[t]
            outs[k][n] = dequantize(y, info.scale, info.zero_point).reshape(outs[k].shape[1:])
    return outs
