"""What a pooling stage computes: ``PoolSpec`` and the ONNX/TVM output-size rule.

Pooling is described once, at the graph level: the partitioner reads it off Relax
(``composite.pool_spec``) and the same object travels into the quantized layers, the
integer reference and the engine's descriptors (pooling int8 values needs no scale).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# The accelerator divides an average pool's window sum by a constant multiplier in the
# requantization DSP, whose input is 25-bit signed: |sum| <= 128 * d must stay <= 2**24 - 1.
AVG_MAX_DIVISOR = ((1 << 24) - 1) // 128


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

    def window_counts(self, n: int, axis: int) -> list[int]:
        """Per pooled output index along ``axis`` (0 = rows, 1 = columns) of an ``n``-long
        plane: the elements the average divides by (valid elements, or with
        ``count_include_pad`` input + explicit padding positions; never ceil overhang)."""
        k, s = self.kernel[axis], self.stride[axis]
        lo, hi = (self.pads[0], self.pads[2]) if axis == 0 else (self.pads[1], self.pads[3])
        out = pool_out_size(n, k, s, lo, hi, self.ceil_mode)
        counts = []
        for i in range(out):
            start = i * s - lo
            if self.count_include_pad:
                counts.append(min(start + k, n + hi) - max(start, -lo))
            else:
                counts.append(min(start + k, n) - max(start, 0))
        return counts

    def avg_divisor(self, h: int, w: int) -> int | None:
        """The divisor ``d`` shared by every window of this average pool on an (h, w)
        plane, or None when window sizes differ (padding without count_include_pad, or
        ceil-mode overhang). Global: ``h * w``. Raises ValueError for a max pool."""
        if self.kind != "avg":
            raise ValueError("only an average pool has a divisor")
        if self.global_pool:
            return h * w
        dy, dx = set(self.window_counts(h, 0)), set(self.window_counts(w, 1))
        if len(dy) != 1 or len(dx) != 1:
            return None
        return dy.pop() * dx.pop()


def avg_pool_reason(spec: PoolSpec, h: int, w: int) -> str | None:
    """Why the accelerator cannot apply average pool ``spec`` to an (h, w) plane, or None.

    It divides each window's sum by a constant multiplier in the requantization DSP, one
    per run of output pixels with the same divisor (windows clipped by padding or ceil-mode
    overhang hold fewer elements: the lowering gives each class of windows its own
    ``POOL`` + ``REQUANT``), so every divisor must be at least 1 and small enough for the
    25-bit input.
    """
    if spec.global_pool:
        d = h * w
    else:
        dy, dx = spec.window_counts(h, 0), spec.window_counts(w, 1)
        if min(dy) < 1 or min(dx) < 1:
            return "average pool with a window entirely outside the input"
        d = max(dy) * max(dx)
    if d > AVG_MAX_DIVISOR:
        return (f"average pool over {d} elements: the window sum exceeds the 25-bit "
                f"requantization input (at most {AVG_MAX_DIVISOR} elements)")
    return None
