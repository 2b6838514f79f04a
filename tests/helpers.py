"""Random quantized layers for the engine tests."""
from __future__ import annotations

import ctypes

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


class RtProgram(ctypes.Structure):
    """zsq_rt_program_t (hls_runtime/zsq_runtime.h)."""

    _fields_ = [("insn", ctypes.POINTER(ctypes.c_uint64)), ("n_insn", ctypes.c_int64),
                ("wgt", ctypes.POINTER(ctypes.c_uint64)), ("wgt_words", ctypes.c_int64),
                ("arena_words", ctypes.c_int64), ("rd_latency", ctypes.c_int64),
                ("wr_latency", ctypes.c_int64), ("outstanding", ctypes.c_int64),
                ("beat_x100", ctypes.c_int64)]


def rt_library(cfg: DaeConfig) -> ctypes.CDLL:
    """The csim runtime library (zsq_rt_*) built for ``cfg``."""
    from zynq_squeeze.codegen.hls_project import dae_config_header
    from zynq_squeeze.toolchain import compiler

    return ctypes.CDLL(str(compiler.shared_library(dae_config_header(cfg, "tests"))))


def rt_program(words, weights, arena_words) -> tuple[RtProgram, tuple]:
    """(the program struct, the arrays it points into: keep them alive)."""
    w = np.ascontiguousarray(words, dtype=np.uint64)
    k = np.ascontiguousarray(weights, dtype=np.uint64)
    u64p = ctypes.POINTER(ctypes.c_uint64)
    return RtProgram(w.ctypes.data_as(u64p), len(w), k.ctypes.data_as(u64p), len(k),
                     int(arena_words), 40, 30, 8, 100), (w, k)


def rt_validator(cfg: DaeConfig):
    """zsq_rt_validate(words, weights, arena_words) -> (code, message)."""
    lib = rt_library(cfg)
    lib.zsq_rt_validate.argtypes = [ctypes.POINTER(RtProgram), ctypes.c_char_p, ctypes.c_size_t]
    lib.zsq_rt_validate.restype = ctypes.c_int

    def run(words, weights, arena_words):
        p, _keep = rt_program(words, weights, arena_words)
        err = ctypes.create_string_buffer(512)
        rc = lib.zsq_rt_validate(ctypes.byref(p), err, len(err))
        return rc, err.value.decode()
    return run
