"""What a pooling stage computes: ``PoolSpec`` and the ONNX/TVM output-size rule.

Pooling is described once, at the graph level: the partitioner reads it off Relax
(``composite.pool_spec``) and the same object travels into the quantized layers, the
integer reference and the engine's descriptors (pooling int8 values needs no scale).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def pool_out_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int,
                  ceil_mode: bool) -> int:
    """Output extent of a pooling window sweep (ONNX / TVM semantics).

    In ceil mode the last window must start inside the input or the low padding
    (a window starting entirely in the high padding is dropped), as ONNX specifies.
    """
    span = size + pad_lo + pad_hi - kernel
    if span < 0:
        raise ValueError(f"pool window {kernel} larger than padded input {size + pad_lo + pad_hi}")
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_lo:
        out -= 1
    return out


@dataclass(frozen=True)
class PoolSpec:
    """A pooling stage applied to a conv output tile before write-back.

    ``kind`` is ``"max"`` or ``"avg"``. ``global_pool`` pools the whole H x W plane
    (kernel/stride/pads are then ignored and the output is 1 x 1).
    ``pads`` is (top, left, bottom, right). Max pooling ignores padded positions;
    average pooling divides by the window's valid element count unless
    ``count_include_pad`` (then by the count of input + explicit padding positions,
    never by ceil-mode overhang).
    """

    kind: str
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = False
    global_pool: bool = False

    def __post_init__(self):
        if self.kind not in ("max", "avg"):
            raise ValueError(f"pool kind must be 'max' or 'avg', got {self.kind!r}")

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        """Pooled (H, W) for an (h, w) input plane."""
        if self.global_pool:
            return (1, 1)
        t, l, b, r = self.pads
        return (pool_out_size(h, self.kernel[0], self.stride[0], t, b, self.ceil_mode),
                pool_out_size(w, self.kernel[1], self.stride[1], l, r, self.ceil_mode))
