"""The work of one CPU operator: floating-point operations and bytes moved.

These are graph facts (shapes and attributes of a Relax call), not board facts: the ARM
time model (``schedule.arm_model``) turns them into modeled time on a given CPU. Counts
are for float32 tensors as TVM's CPU code computes them:

* ``flops``: one multiply-accumulate = 2 FLOPs (conv2d, matmul); 1 per pool window
  element; 1 per output element of an elementwise operator; ``exp`` counted as
  ``EXP_FLOPS`` (softmax, and power, log, sigmoid...: ONNX's LRN arrives as multiply,
  avg_pool3d, add, power, divide).
* ``bytes``: every input tensor read once and the output written once (4 bytes per
  element). A reshape-like operator moves nothing (Relax's VM makes a view).

``op_class`` names the efficiency class the time model applies (``conv``, ``dense``,
``pool``, ``elementwise``, ``softmax``, ``transcendental``, ``copy``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import relax

from .cleanup import _static_shape as _shape

# A polynomial exp on NEON: range reduction + a degree-5/6 polynomial + scaling.
EXP_FLOPS = 16


@dataclass(frozen=True)
class OpWork:
    """What one operator computes and moves: ``flops`` (FLOPs), ``bytes`` (bytes read +
    written), ``op_class`` (efficiency class), ``shape`` (output shape)."""

    op_class: str
    flops: int
    bytes: int
    shape: tuple[int, ...]


def _nbytes(expr) -> int:
    """Bytes of a tensor-valued expression (its dtype's width; 0 when not a tensor)."""
    shp = _shape(expr)
    if shp is None:
        return 0
    dtype = str(getattr(expr.ty, "dtype", "float32"))
    bits = int("".join(ch for ch in dtype if ch.isdigit()) or 32)
    return int(np.prod(shp, dtype=np.int64)) * max(bits // 8, 1)


def _tensor_args(call: relax.Call) -> list:
    out = []
    for a in call.args:
        if isinstance(a, relax.Tuple):
            out.extend(a.fields)
        else:
            out.append(a)
    return [a for a in out if _shape(a) is not None]


_POOLS = ("relax.nn.max_pool1d", "relax.nn.avg_pool1d", "relax.nn.max_pool2d",
          "relax.nn.avg_pool2d", "relax.nn.max_pool3d", "relax.nn.avg_pool3d")
# exp-based elementwise operators (ONNX's LRN arrives as multiply, avg_pool3d over the
# channels, add, power, divide): FLOPs per output element
_TRANSCENDENTAL = {"relax.exp": EXP_FLOPS, "relax.log": EXP_FLOPS,
                   "relax.power": 2 * EXP_FLOPS, "relax.sigmoid": EXP_FLOPS + 2,
                   "relax.tanh": EXP_FLOPS + 4, "relax.sqrt": EXP_FLOPS // 2,
                   "relax.rsqrt": EXP_FLOPS // 2, "relax.erf": EXP_FLOPS}
_GLOBAL_POOLS = ("relax.nn.adaptive_avg_pool2d", "relax.mean", "relax.max", "relax.sum")
_COPIES = ("relax.concat", "relax.split", "relax.strided_slice", "relax.take",
           "relax.nn.pad", "relax.layout_transform")
_VIEWS = ("relax.reshape", "relax.flatten", "relax.squeeze", "relax.expand_dims")


def op_work(call: relax.Call, op: str) -> OpWork | None:
    """The work of ``call`` (operator name ``op``), or None when it is not a tensor op."""
    out_shape = _shape(call)
    if out_shape is None:
        return None
    n_out = int(np.prod(out_shape, dtype=np.int64))
    args = _tensor_args(call)
    moved = sum(_nbytes(a) for a in args) + _nbytes(call)
    if op in _VIEWS:
        return OpWork("copy", 0, 0, out_shape)
    if op == "relax.nn.conv2d":
        w = _shape(call.args[1])
        macs = n_out * w[1] * w[2] * w[3]
        return OpWork("conv", 2 * macs, moved, out_shape)
    if op in ("relax.matmul", "relax.linear"):
        a = _shape(call.args[0])
        return OpWork("dense", 2 * n_out * a[-1], moved, out_shape)
    if op in _POOLS:
        window = int(np.prod([int(k) for k in call.attrs.pool_size]))
        return OpWork("pool", n_out * window, moved, out_shape)
    if op in _GLOBAL_POOLS:
        n_in = int(np.prod(_shape(call.args[0]), dtype=np.int64))
        return OpWork("pool", n_in, moved, out_shape)
    if op == "relax.nn.softmax" or op == "relax.nn.log_softmax":
        # max, subtract, exp, sum, divide: two passes over the input
        return OpWork("softmax", n_out * (EXP_FLOPS + 4), moved + _nbytes(call), out_shape)
    if op in _TRANSCENDENTAL:
        return OpWork("transcendental", n_out * _TRANSCENDENTAL[op], moved, out_shape)
    if op in _COPIES:
        return OpWork("copy", 0, moved, out_shape)
    # elementwise (add, multiply, relu, clip, quantize-like casts, ...) and anything else:
    # one operation per output element, every operand read once
    return OpWork("elementwise", n_out, moved, out_shape)
