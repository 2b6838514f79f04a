"""Random quantized layers for the engine tests."""
from __future__ import annotations

import numpy as np

from zynq_squeeze.engine.dae_config import DaeConfig
from zynq_squeeze.quantize.layers import ConvLayer, ConvParams, FireLayer, PoolSpec
from zynq_squeeze.quantize.requant import quantize_multiplier

# small buffers (8 x 8 MAC array): forces spatial and channel tiling even on tiny shapes
TINY = DaeConfig(k=1, in_rows=256, w_rows=64, p_rows=8, acc_rows=256, cv_rows=256,
                 sq_rows=256, out_rows=256)


def conv_params(rng, o, i, kh, kw=None, stride=(1, 1), pads=(0, 0, 0, 0), relu=True):
    kw = kh if kw is None else kw
    w = rng.integers(-128, 128, (o, i, kh, kw), dtype=np.int8)
    b = rng.integers(-4000, 4000, o).astype(np.int32)
    # scale so outputs spread over the int8 range (some saturate)
    real = rng.uniform(0.3, 3.0, o) / (np.sqrt(i * kh * kw) * 128 * 1.5)
    m, s = quantize_multiplier(real)
    return ConvParams(w, b, m, s, tuple(stride), tuple(pads), relu)


def depthwise_params(rng, c, k, stride=1, pad=0, relu=True):
    """A depthwise k x k convolution of c channels (groups = c, multiplier 1)."""
    p = conv_params(rng, c, 1, k, stride=(stride, stride), pads=(pad,) * 4, relu=relu)
    p.groups = c
    return p


def grouped_params(rng, o, i, g, k, stride=(1, 1), pads=(0, 0, 0, 0), relu=True):
    """A convolution of i -> o channels in g groups (weight [o, i / g, k, k])."""
    p = conv_params(rng, o, i // g, k, stride=stride, pads=pads, relu=relu)
    p.groups = g
    return p


def fire(rng, name, in_shape, s, e1, e3, pool=None, sq_stride=(1, 1)):
    c = in_shape[0]
    return FireLayer(name, in_shape, conv_params(rng, s, c, 1, stride=sq_stride),
                     conv_params(rng, e1, s, 1), conv_params(rng, e3, s, 3, pads=(1, 1, 1, 1)),
                     pool)


def squeezenet11(rng, hw=224):
    """SqueezeNet 1.1 layer chain with random int8 weights (pools fused, ceil mode)."""
    mp = PoolSpec("max", (3, 3), (2, 2), ceil_mode=True)
    layers = [ConvLayer("conv1", (3, hw, hw), conv_params(rng, 64, 3, 3, stride=(2, 2)), mp)]
    spec = [("fire2", 16, 64, None), ("fire3", 16, 64, mp), ("fire4", 32, 128, None),
            ("fire5", 32, 128, mp), ("fire6", 48, 192, None), ("fire7", 48, 192, None),
            ("fire8", 64, 256, None), ("fire9", 64, 256, None)]
    for name, s, e, pool in spec:
        layers.append(fire(rng, name, layers[-1].out_shape, s, e, e, pool))
    layers.append(ConvLayer("conv10", layers[-1].out_shape,
                            conv_params(rng, 1000, 512, 1),
                            PoolSpec("avg", global_pool=True)))
    return layers


def rand_input(rng, shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)
