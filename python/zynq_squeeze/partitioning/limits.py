"""What the engine's instructions can express; the partitioner keeps anything beyond it on
the CPU, with the limit as the reason (a model never compiles into a program that every
call then rejects).

The same bounds are the C validators' (``zsq_rt_validate`` in hls_runtime/zsq_runtime.c,
the checks of src/zsq_dae_sim.cpp): ``engine.isa.c_header`` writes them into zsq_isa.h.
"""
from __future__ import annotations

# LOAD_INPUT / STORE / CONV geometry fields: spatial sizes and offsets up to 2**14.
MAX_SPATIAL = 1 << 14
# Activations are words of 8 channels; a tensor has at most 2**12 words per pixel.
MAX_CHANNEL_GROUPS = 1 << 12
MAX_CHANNELS = 8 * MAX_CHANNEL_GROUPS
# Kernel, stride and padding fields of CONV.
MAX_KERNEL_FIELD = 32
MAX_STRIDE_FIELD = 8
MAX_PAD = 32
# Products per output (I * KH * KW): int8 x int8 products are at most 2**14 in magnitude,
# so 2**16 of them use half the int32 accumulator; the other half is left for the bias
# (codegen.lower.quantize_conv coarsens a channel's weight scale until its bias fits).
MAX_REDUCTION = 1 << 16
ACC_LIMIT = (1 << 31) - 1


def conv_limit_reason(in_chw: tuple[int, int, int], out_chw: tuple[int, int, int],
                      kernel: tuple[int, int], pads: tuple[int, ...]) -> str | None:
    """Why a convolution of these shapes is beyond the engine's fields, or None.

    ``in_chw``/``out_chw``: (channels, height, width); ``pads``: any order, in pixels.
    """
    c, h, w = in_chw
    oc, oh, ow = out_chw
    if max(c, oc) > MAX_CHANNELS:
        return f"{max(c, oc)} channels exceed the engine's {MAX_CHANNELS}"
    if max(h, w, oh, ow) > MAX_SPATIAL:
        return (f"a {max(h, oh)}x{max(w, ow)} feature map exceeds the engine's "
                f"{MAX_SPATIAL} pixels per side")
    if pads and max(pads) > MAX_PAD:
        return f"padding {max(pads)} exceeds the engine's {MAX_PAD}"
    red = c * kernel[0] * kernel[1]
    if red > MAX_REDUCTION:
        return (f"{red} products per output ({c} channels x {kernel[0]}x{kernel[1]}) exceed "
                f"the int32 accumulator's {MAX_REDUCTION}")
    return None
