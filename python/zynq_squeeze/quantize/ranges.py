"""Calibration statistics: from the values a tensor takes on the calibration set to the
range its symmetric int8 scale covers (``scale = range / 127``).

* ``absmax``: the largest |x| seen. Nothing saturates; one outlier widens every step.
* ``mse``: the clipping range that minimizes the quantization mean squared error
  ``E[(q(x) - x)^2]`` of the values seen (rounding noise inside the range plus clipping
  error above it), searched over ``MSE_CANDIDATES`` evenly spaced ranges up to absmax on a
  histogram of |x| (as TensorRT's and NVIDIA pytorch-quantization's MSE calibrators). The
  candidates include absmax itself, so on the histogram it is never worse than absmax.
* ``percentile``: the ``PERCENTILE`` th percentile of |x| (all values, zeros included).

Every statistic is computed from a ``Histogram`` of |x| that grows with the data: its
bins cover ``[0, 2**e)`` and when a larger value arrives, ``e`` grows and adjacent bins
are summed pairwise, which is exact. The histogram, and so every range, depends only on
the values and the order of the samples: the same model and samples give the same bytes.
"""
from __future__ import annotations

import numpy as np

METHODS = ("absmax", "mse", "percentile")
# calibrate's defaults (benchmarks/model_zoo.py measured them; README "Calibration")
DEFAULT_METHOD = "mse"
DEFAULT_BIAS_CORRECTION = True
HIST_BINS = 1 << 14  # bins over [0, 2**e): a bin is at most absmax / 8192 wide
MSE_CANDIDATES = 256  # candidate ranges absmax * j / 256, j = 1 .. 256
PERCENTILE = 99.99
INT8_LEVELS = 127  # the largest int8 magnitude: symmetric scale = range / 127


class Histogram:
    """Counts of |x| over ``HIST_BINS`` equal bins on ``[0, 2**exp)``, the exact absmax,
    and how many values were exactly 0 (they round to 0 at every scale)."""

    def __init__(self, bins: int = HIST_BINS):
        self.bins = bins
        self.exp: int | None = None  # bins cover [0, 2**exp); None until a nonzero value
        self.counts = np.zeros(bins, dtype=np.int64)
        self.zeros = 0
        self.absmax = 0.0
        self.nan = False

    @property
    def width(self) -> float:
        """One bin's width (same units as the tensor)."""
        return float(np.ldexp(1.0, self.exp)) / self.bins

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.zeros

    def _grow_to(self, exp: int) -> None:
        """Widen the bins to cover ``[0, 2**exp)``: each doubling sums adjacent pairs."""
        if self.exp is None:
            self.exp = exp
            return
        while self.exp < exp:
            self.counts = np.concatenate([self.counts.reshape(-1, 2).sum(axis=1),
                                          np.zeros(self.bins // 2, dtype=np.int64)])
            self.exp += 1

    def add(self, x: np.ndarray) -> None:
        """Count the values of ``x`` (any shape; NaN makes the range NaN, an error later)."""
        a = np.abs(np.asarray(x, dtype=np.float64)).ravel()
        if a.size == 0:
            return
        m = float(a.max())
        if not np.isfinite(m):  # NaN or Inf: the range becomes it (calibration refuses it)
            self.nan, self.absmax = True, m
            return
        nz = a[a > 0]
        self.zeros += a.size - nz.size
        if nz.size == 0:
            return
        self.absmax = max(self.absmax, m)
        self._grow_to(max(int(np.frexp(m)[1]), self.exp if self.exp is not None else -1074))
        # |x| * bins / 2**exp is exact scaling by a power of two: deterministic bin indices
        idx = np.floor(np.ldexp(nz, -self.exp) * self.bins).astype(np.int64)
        self.counts += np.bincount(np.minimum(idx, self.bins - 1), minlength=self.bins)


def quant_mse(hist: Histogram, ranges: np.ndarray, levels: int = INT8_LEVELS) -> np.ndarray:
    """Per candidate range, the summed squared error of quantizing the histogram's
    values (each at its bin's center) with ``scale = range / levels``, saturating."""
    nzb = np.nonzero(hist.counts)[0]
    x = (nzb + 0.5) * hist.width
    n = hist.counts[nzb].astype(np.float64)
    s = (np.asarray(ranges, dtype=np.float64) / levels)[:, None]
    q = np.minimum(np.rint(x[None, :] / s), levels) * s
    return ((q - x[None, :]) ** 2 * n[None, :]).sum(axis=1)


def mse_range(hist: Histogram, levels: int = INT8_LEVELS,
              candidates: int = MSE_CANDIDATES) -> float:
    """The candidate range ``absmax * j / candidates`` of least quantization MSE (on a tie
    the widest); absmax when every value was 0."""
    if hist.absmax == 0 or hist.exp is None:
        return hist.absmax
    ranges = hist.absmax * np.arange(1, candidates + 1) / candidates
    ranges[-1] = hist.absmax  # exactly absmax (the product may round)
    err = quant_mse(hist, ranges, levels)
    best = candidates - 1 - int(np.argmin(err[::-1]))  # the widest of equal minima
    return float(ranges[best])


def percentile_range(hist: Histogram, pct: float = PERCENTILE) -> float:
    """The upper edge of the bin where the ``pct`` th percentile of |x| falls (at most
    absmax); absmax when that many values were 0 (a range of 0 would saturate the rest)."""
    need = pct / 100.0 * hist.total
    if hist.zeros >= need or hist.exp is None:
        return hist.absmax
    b = int(np.searchsorted(np.cumsum(hist.counts), need - hist.zeros))
    return min(float((b + 1) * hist.width), hist.absmax)


def check_method(method: str) -> str:
    """``method`` if it is one of ``METHODS``, else ValueError naming them."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; "
                         f"choose one of {', '.join(METHODS)}")
    return method


def tensor_range(hist: Histogram, method: str) -> float:
    """The range ``method`` gives the tensor whose values ``hist`` counted (NaN/Inf if the
    tensor held any: calibration reports it)."""
    if hist.nan:
        return hist.absmax
    if method == "absmax":
        return hist.absmax
    if method == "mse":
        return mse_range(hist)
    if method == "percentile":
        return percentile_range(hist)
    raise ValueError(check_method(method))
