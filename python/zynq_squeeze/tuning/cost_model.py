"""A learned cost model of one layer's cycles (the model-based strategy's guide).

Fitted on measured records: each measurement gives per-layer cycles
(``detail["layers"]``), each a training row of the layer's geometry, the engine (k, the
DDR beat rate) and the tile, as the analytic quantities the cycles follow (tile counts,
MAC-array passes, DDR words moved with halos and reloads). The regressor is XGBoost's
gradient-boosted trees (AutoTVM's cost model), on log cycles. The features say nothing
the fast cycle model computes: what is learned comes from the measurements.
"""
from __future__ import annotations

import math

import numpy as np

from ..engine.dae_config import PE_IC
from ..quantize.layers import FireLayer, PoolLayer


def _cd(a: int, b: int) -> int:
    return -(-a // b)


def layer_features(layer, k: int, beat_x100: int, tile) -> list[float]:
    """Features of ``layer`` run with ``tile`` on MAC array ``k`` at ``beat_x100``."""
    pe = 8 * k
    c, h, w = layer.in_shape
    oc, oh, ow = layer.out_shape
    if isinstance(layer, PoolLayer):  # a standalone pool: no conv, its window as kernel
        convs = []
        kh, kw = (layer.conv_hw if layer.pool.global_pool else layer.pool.kernel)
        sy = 1 if layer.pool.global_pool else layer.pool.stride[0]
        ic_main = oc_main = c
    elif isinstance(layer, FireLayer):
        convs = [layer.squeeze, layer.expand1, layer.expand3]
        kh, kw = 3, 3
        sy = 1
        ic_main = layer.squeeze.in_channels
        oc_main = max(layer.expand1.out_channels, layer.expand3.out_channels)
    else:
        convs = [layer.conv]
        kh, kw = layer.conv.kernel
        sy = layer.conv.stride[0]
        ic_main, oc_main = layer.conv.in_channels, layer.conv.out_channels
    toc, tic = min(tile.toc, oc_main), min(tile.tic, ic_main)
    th, tw = min(tile.th, oh), min(tile.tw, ow)
    n_oc, n_ic = _cd(oc_main, toc), _cd(ic_main, tic)
    n_h, n_w = _cd(oh, th), _cd(ow, tw)
    n_sp = n_h * n_w
    pool = layer.pool is not None
    s = 2 if pool and not layer.pool.global_pool else 1  # pre-pool rows per output row
    rows, cols = th * s, tw * s
    halo_in = ((rows - 1) * sy + kh) * ((cols - 1) * sy + kw)
    g_ic = _cd(tic, PE_IC)
    in_words = n_oc * n_sp * n_ic * halo_in * g_ic          # input reloaded per oc tile
    w_words = n_sp * sum(cv.out_channels * cv.kernel[0] * cv.kernel[1]
                         * _cd(cv.group_in, PE_IC) for cv in convs)  # per spatial tile
    out_words = oh * ow * _cd(oc, PE_IC)
    passes = sum(_cd(cv.out_channels, pe) * _cd(cv.group_in, PE_IC) * cv.kernel[0]
                 * cv.kernel[1] for cv in convs) * rows * cols * n_sp
    insns = n_oc * n_sp * n_ic * len(convs)
    pad_oc = _cd(toc, pe) * pe / toc
    ddr = (in_words + w_words + out_words) * beat_x100 / 100
    vals = [k, beat_x100 / 100, float(isinstance(layer, FireLayer)), float(pool), kh, sy,
            c, h, w, oc, oh, ow, toc, tic, th, tw, n_oc, n_ic, n_h, n_w, n_sp, pad_oc,
            layer.macs / (pe * PE_IC), passes, in_words, w_words, out_words, ddr, insns,
            halo_in / max(1, rows * cols)]
    return [math.log2(v + 1.0) for v in vals]


class LayerCostModel:
    """log(cycles) of a layer from ``layer_features``, by XGBoost (deterministic:
    one thread, fixed seed)."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.model = None
        self.X: list[list[float]] = []
        self.y: list[float] = []

    def add(self, features: list[float], cycles: float) -> None:
        if cycles > 0:
            self.X.append(features)
            self.y.append(math.log(cycles))

    def __len__(self) -> int:
        return len(self.y)

    def fit(self) -> None:
        import xgboost as xgb

        self.model = xgb.XGBRegressor(n_estimators=150, max_depth=6, learning_rate=0.15,
                                      subsample=0.9, colsample_bytree=0.9, n_jobs=1,
                                      random_state=self.seed, tree_method="hist")
        self.model.fit(np.asarray(self.X, np.float32), np.asarray(self.y, np.float32))

    def predict(self, X) -> np.ndarray:
        """Predicted cycles for rows ``X``."""
        return np.exp(self.model.predict(np.asarray(X, np.float32)).astype(np.float64))
