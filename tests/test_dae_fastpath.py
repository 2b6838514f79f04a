"""The decoupled engine's host fast paths (src/zsq_dae.h) against the HLS loops.

The C simulation normally runs plain-integer / SIMD versions of the modules' loops; built
with ``-DZSQD_HLS_KERNEL`` it runs the HLS loops themselves on ap_int types (what Vitis
HLS synthesizes). Both must leave the same arena word for word, finish every instruction
at the same cycle and report the same statistics -- and equal the numpy reference. The
portable C fast paths (``-DZSQD_SIM_PORTABLE``, no AVX-512) are held to the same.
"""
from __future__ import annotations

import subprocess
import zlib

import numpy as np
import pytest
from helpers import (conv_params, depthwise_params, fire, grouped_params, rand_input,
                     squeezenet11)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from zynq_squeeze import native
from zynq_squeeze.codegen.dae_program import (build_dae_program, pack_tensor, reference_chain,
                                              run_graph, unpack_tensor)
from zynq_squeeze.engine import isa
from zynq_squeeze.engine.dae_config import DaeConfig, DaeTile
from zynq_squeeze.quantize.layers import ConvAddLayer, ConvLayer, PoolLayer, PoolSpec
from zynq_squeeze.quantize.requant import pool_multiplier, quantize_multiplier
from zynq_squeeze.schedule.dae_tiling import candidates, default_tile, overflow
from zynq_squeeze.toolchain import compiler, dae_sim
from zynq_squeeze.toolchain.dae_sim import run_program, run_words

HLS = {"hls_kernel": True}
PORTABLE = {"extra_flags": ("-DZSQD_SIM_PORTABLE",)}
MP = PoolSpec("max", (3, 3), (2, 2), ceil_mode=True)
GAP = PoolSpec("avg", global_pool=True)


def _stats(r) -> tuple:
    return (r.cycles, r.load_busy, r.compute_busy, r.store_busy, r.macs, r.rd_bytes, r.wr_bytes)


def check_variants(cfg, layers, tiles, x, variants=(HLS,)):
    """Fast build == reference; every other variant == fast build (arena, insn_end, stats)."""
    prog = build_dae_program(cfg, layers, tiles)
    y, fast = run_program(prog, x)
    np.testing.assert_array_equal(y, reference_chain(layers, x))
    for kw in variants:
        _, other = run_program(prog, x, **kw)
        np.testing.assert_array_equal(other.arena, fast.arena, err_msg=str(kw))
        np.testing.assert_array_equal(other.insn_end, fast.insn_end, err_msg=str(kw))
        assert _stats(other) == _stats(fast), kw
    return fast


def test_variants_are_distinct_builds():
    cfg = DaeConfig()
    libs = {compiler.dae_shared_library(cfg.macros(), extra_flags=dae_sim.build_flags(**kw))
            for kw in ({}, HLS, PORTABLE)}
    assert len(libs) == 3
    assert dae_sim.library(cfg) is not dae_sim.library(cfg, hls_kernel=True)


def _case(name, rng):
    """Layer chains covering every instruction form: padding, stride 2, ceil-mode max
    pool, fire (+pool), global average pool, channel counts that are not multiples of 8."""
    if name == "conv_s2_pool":
        return ([ConvLayer("c", (3, 23, 21), conv_params(rng, 64, 3, 3, stride=(2, 2)), MP)],
                [DaeTile(24, 8, 3, 4)])
    if name == "conv_pad_odd":
        return ([ConvLayer("c", (13, 9, 10), conv_params(rng, 40, 13, 3, pads=(1, 1, 1, 1)))],
                [DaeTile(24, 8, 4, 3)])
    if name == "fire":
        return [fire(rng, "f", (32, 9, 11), 16, 24, 32)], [DaeTile(24, 16, 4, 5)]
    if name == "fire_pool":
        return [fire(rng, "f", (32, 13, 12), 16, 64, 64, MP)], [DaeTile(48, 16, 3, 2)]
    if name == "fire_odd":
        return [fire(rng, "f", (13, 8, 7), 5, 8, 13)], [DaeTile(24, 8, 3, 4)]
    if name == "gap":
        return ([ConvLayer("c", (40, 7, 6), conv_params(rng, 50, 40, 1), GAP)],
                [DaeTile(24, 16, 1, 1)])
    if name == "chain":
        c1 = ConvLayer("c", (3, 20, 20), conv_params(rng, 32, 3, 3, stride=(2, 2)), MP)
        f2 = fire(rng, "f2", c1.out_shape, 16, 32, 32)
        c3 = ConvLayer("c3", f2.out_shape, conv_params(rng, 30, 64, 1), GAP)
        return [c1, f2, c3], [DaeTile(24, 8, 2, 2), DaeTile(24, 16, 2, 3), DaeTile(24, 32, 1, 1)]
    if name == "depthwise":  # CONV_DW: channel tail (40 = 24 + 16), stride 2, 5x5, pool
        return ([ConvLayer("d", (40, 11, 10), depthwise_params(rng, 40, 3, 2, 1)),
                 ConvLayer("d5", (40, 6, 5), depthwise_params(rng, 40, 5, 1, 2), MP)],
                [DaeTile(24, 24, 3, 4), DaeTile(48, 48, 2, 3)])
    if name == "grouped":  # one region (24 per group) and per-group regions (16 per group)
        return ([ConvLayer("g", (32, 7, 6), grouped_params(rng, 48, 32, 2, 3, pads=(1,) * 4)),
                 ConvLayer("g2", (48, 7, 6), grouped_params(rng, 48, 48, 3, 1))],
                [DaeTile(24, 8, 3, 4), DaeTile(24, 16, 4, 6)])
    if name == "k11_s4":  # AlexNet's conv1 shape (11x11, stride 4) + its 3x3/2 max pool
        return ([ConvLayer("c", (3, 35, 31), conv_params(rng, 40, 3, 11, stride=(4, 4),
                                                         pads=(2, 2, 2, 2)),
                           PoolSpec("max", (3, 3), (2, 2)))],
                [DaeTile(24, 8, 3, 4)])
    if name == "pools":  # standalone pools (POOL_SRC_IN, both in_buf halves), max and avg
        p1 = PoolLayer("p1", (40, 13, 11), MP)
        d = PoolSpec("avg", (2, 2), (2, 2)).avg_divisor(*p1.out_shape[1:])
        p2 = PoolLayer("p2", p1.out_shape, PoolSpec("avg", (2, 2), (2, 2)),
                       *pool_multiplier(d))
        p3 = PoolLayer("p3", p2.out_shape, GAP)
        return [p1, p2, p3], [DaeTile(24, 8, 2, 3), DaeTile(24, 8, 2, 2), DaeTile(48, 8, 1, 1)]
    raise KeyError(name)


@pytest.mark.parametrize("name", ["conv_s2_pool", "conv_pad_odd", "fire", "fire_pool",
                                  "fire_odd", "gap", "chain", "depthwise", "grouped",
                                  "k11_s4", "pools"])
def test_fast_equals_hls_and_portable(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    layers, tiles = _case(name, rng)
    check_variants(DaeConfig(), layers, tiles, rand_input(rng, layers[0].in_shape),
                   (HLS, PORTABLE))


@pytest.mark.parametrize("k", [1, 3])
def test_residual_add_fast_equals_hls_and_portable(k):
    """LOAD_BYPASS (one burst region per row, and per pixel when an oc tile holds fewer
    groups than the tensor) and REQUANT RQ_ADD from both bp_buf halves: every build leaves
    the same arena, finishes every instruction at the same cycle, equals the reference."""
    rng = np.random.default_rng(40 + k)
    cfg = DaeConfig(k=k)
    c, o = 16, 40
    l1 = ConvLayer("c1", (c, 9, 7), conv_params(rng, o, c, 3, pads=(1,) * 4))
    m, s = quantize_multiplier(0.8)
    l2 = ConvAddLayer("c2", l1.out_shape, conv_params(rng, o, o, 3, pads=(1,) * 4, relu=False),
                      bypass="t1", bp_mult=int(m), bp_shift=int(s))
    layers = [(l1, "in0", "t1"), (l2, "t1", "t2")]
    shapes = {"in0": (c, 9, 7), "t1": l1.out_shape, "t2": l2.out_shape}
    # k = 1: an oc tile holds 1 of the 5 groups (a burst region per pixel); k = 3: one oc
    # tile holds all 5 (a region per row)
    tiles = [DaeTile(8 * k, 8, 4, 3), DaeTile(8 if k == 1 else 48, 16, 3, 4)]
    prog = build_dae_program(cfg, layers, tiles, shapes, ["in0"], ["t2"])
    x = rand_input(rng, shapes["in0"])
    arena = np.zeros(prog.arena_words, dtype=np.uint64)
    p_in = prog.tensors["in0"]
    arena[p_in.base:p_in.base + p_in.words] = pack_tensor(x)
    fast = run_words(cfg, prog.words, prog.weights, arena)
    y = unpack_tensor(fast.arena[prog.tensors["t2"].base:], *shapes["t2"])
    np.testing.assert_array_equal(y, run_graph(layers, {"in0": x})["t2"])
    bps = [int(w) for w in prog.words if int(w) & 15 == isa.OP_LOAD_BYPASS]
    assert len(bps) > 2 and {w & isa.HALF for w in bps} == {0, isa.HALF}
    for kw in (HLS, PORTABLE):
        other = run_words(cfg, prog.words, prog.weights, arena, **kw)
        np.testing.assert_array_equal(other.arena, fast.arena, err_msg=str(kw))
        np.testing.assert_array_equal(other.insn_end, fast.insn_end, err_msg=str(kw))
        assert _stats(other) == _stats(fast), kw


@pytest.mark.parametrize("k", [1, 2])
def test_small_mac_arrays(k):
    """pe_oc 8 and 16: other bank counts, channel tails of 8 lanes."""
    rng = np.random.default_rng(k)
    cfg = DaeConfig(k=k)
    pe = cfg.pe_oc
    c1 = ConvLayer("c", (3, 17, 15), conv_params(rng, 40, 3, 3, stride=(2, 2), pads=(1, 1, 1, 1)), MP)
    f2 = fire(rng, "f", c1.out_shape, 13, 24, 16)
    layers = [c1, f2, ConvLayer("c3", f2.out_shape, conv_params(rng, 50, 40, 1), GAP)]
    tiles = [DaeTile(2 * pe, 8, 2, 3), DaeTile(pe, 16, 2, 2), DaeTile(3 * pe, 24, 1, 1)]
    check_variants(cfg, layers, tiles, rand_input(rng, layers[0].in_shape), (HLS, PORTABLE))


@st.composite
def _layer(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cin = draw(st.sampled_from([3, 8, 13, 16, 21]))
    h, w = draw(st.integers(3, 11)), draw(st.integers(3, 11))
    pool = draw(st.sampled_from([None, MP, PoolSpec("max", (2, 2), (2, 2)), GAP]))
    if draw(st.booleans()):
        s = draw(st.sampled_from([3, 8, 11]))
        e1, e3 = draw(st.sampled_from([8, 16])), draw(st.sampled_from([3, 8, 13, 24]))  # expand1: whole words
        return fire(rng, "f", (cin, h, w), s, e1, e3, pool), rng
    k = draw(st.sampled_from([1, 3]))
    stride = draw(st.sampled_from([1, 2]))
    pad = draw(st.sampled_from([0, 1])) if k == 3 else 0
    if (h + 2 * pad - k) < 0 or (w + 2 * pad - k) < 0:
        pad = 1
    cout = draw(st.sampled_from([8, 13, 24, 40, 50]))
    conv = conv_params(rng, cout, cin, k, stride=(stride, stride), pads=(pad,) * 4,
                       relu=draw(st.booleans()))
    return ConvLayer("c", (cin, h, w), conv, pool), rng


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(lr=_layer(), k=st.sampled_from([1, 2, 3]), data=st.data())
def test_random_layers_fast_equals_hls(lr, k, data):
    layer, rng = lr
    cfg = DaeConfig(k=k)
    try:
        out = layer.out_shape
    except ValueError:
        assume(False)
    assume(min(out[1:]) >= 1)
    fits = [t for t in candidates(cfg, layer) if overflow(cfg, layer, t) is None]
    assume(fits)
    tile = data.draw(st.sampled_from(fits), label="tile")
    check_variants(cfg, [layer], [tile], rand_input(rng, layer.in_shape))


# REQUANT on any parameter word, as zsqd_requant's ap_int arithmetic computes it (the
# 25-bit truncation of the pre-shifted sum, shift 0 and shifts past the 42-bit (48-bit
# wide) rounding constant included): the engine only admits checked parameters, but p_buf rows a
# program never loaded hold whatever was there.
_RQ_CHECK = r"""
#include <stdio.h>
#include <random>
#include "zsq_dae.h"
typedef zsqd_cfg C;
/* the lane's checked ranges (src/zsq_dae_sim.cpp rq_ok): narrow or wide multiplier */
static const int MULT_END = C::WIDE_RQ ? 1 << 22 : 1 << 15, SHIFT_MAX = C::WIDE_RQ ? 47 : 40;
static uint64_t pbuf[C::PE_OC * C::P_ROWS];
static int32_t acc[C::ACC_ROWS * C::PE_OC];
static uint64_t dst[C::K * 64];
static uint64_t bpbuf[C::K * C::BP_ROWS]; /* residual add: bypass words, row = acc row */
int main() {
  std::mt19937_64 rng(12345);
  const int32_t edges[] = {0, 1, -1, 127, -128, 1 << 24, -(1 << 24), (1 << 24) - 1, INT32_MAX,
                           INT32_MIN, INT32_MAX - 5, INT32_MIN + 5, 1 << 30, -(1 << 30)};
  long bad = 0, n = 0;
  for (int round = 0; round < 2000; round++) {
    const int nog = 1 + (int)(rng() % 8), px = 1 + (int)(rng() % 6);
    for (int og = 0; og < nog; og++)
      for (int o = 0; o < C::PE_OC; o++) {
        uint64_t p = rng();
        if (rng() % 2) /* in range, as check_params admits */
          p = (uint64_t)(uint32_t)(int32_t)(rng() % 200001 - 100000) |
              ((uint64_t)((1 << 14) + rng() % (MULT_END - (1 << 14))) << 32) |
              ((uint64_t)(1 + rng() % SHIFT_MAX) << 54) | ((uint64_t)(rng() % 16) << 60);
        pbuf[o * C::P_ROWS + og] = p;
      }
    for (int i = 0; i < px * nog * C::PE_OC; i++) {
      const int k = (int)(rng() % 4);
      acc[i] = k == 0 ? edges[rng() % (sizeof edges / sizeof *edges)]
               : k == 1 ? (int32_t)rng() : (int32_t)(rng() % 400001) - 200000;
    }
    const bool relu = rng() % 2, avg = rng() % 4 == 0;
    const int avg_mult = (int)(rng() % (1 << 22)), avg_shift = (int)(rng() % 64);
    /* the residual add: only checked rescalings reach the lanes (check_compute) */
    const bool add = !avg && rng() % 2;
    const int bp_mult = (1 << 14) + (int)(rng() % (MULT_END - (1 << 14))), bp_shift = 1 + (int)(rng() % SHIFT_MAX);
    for (int i = 0; i < C::K * C::BP_ROWS; i++) bpbuf[i] = rng();
    /* zero points (int8, as the validators admit) and the average's sum offset (25 bits) */
    const int zp_out = (int)(rng() % 256) - 128, bp_zp = (int)(rng() % 256) - 128;
    const int avg_bias = (int)(rng() % (1 << 25)) - ((1 << 24) - 1);
    zsqd_fast_requant<C>(1, px, nog, nog, 0, 0, 1, 0, px, avg_mult, avg_shift, relu, avg,
                         reinterpret_cast<const zsqd_u64 *>(pbuf), reinterpret_cast<const zsqd_i32 *>(acc),
                         reinterpret_cast<zsqd_u64 *>(dst), 64,
                         add ? reinterpret_cast<const zsqd_u64 *>(bpbuf) : nullptr, bp_mult, bp_shift,
                         zp_out, bp_zp, avg_bias);
    for (int p = 0; p < px; p++)
      for (int og = 0; og < nog; og++)
        for (int o = 0; o < C::PE_OC; o++) {
          const int a = (p * nog + og) * C::PE_OC + o;
          const zsqd_word bw = bpbuf[(o / 8) * C::BP_ROWS + p * nog + og];
          const ap_int<8> want = zsqd_requant<C::WIDE_RQ>(ap_int<32>(acc[a]), zsqd_word(pbuf[o * C::P_ROWS + og]), relu,
                                              avg, ap_uint<22>(avg_mult), ap_uint<6>(avg_shift), add,
                                              zsqd_byte(bw, o % 8), ap_uint<22>(bp_mult), ap_uint<6>(bp_shift),
                                              ap_int<8>(zp_out), ap_int<8>(bp_zp), ap_int<25>(avg_bias));
          const int got = (int8_t)(dst[(o / 8) * 64 + p * nog + og] >> (8 * (o % 8)));
          n++;
          if ((int)want != got && bad++ < 5)
            printf("acc %d param %016llx relu %d avg %d (%d, %d): ap %d fast %d\n", acc[a],
                   (unsigned long long)pbuf[o * C::P_ROWS + og], relu, avg, avg_mult, avg_shift, (int)want, got);
        }
  }
  printf("%ld lanes %ld mismatches\n", n, bad);
  return bad != 0;
}
"""


@pytest.mark.parametrize("wide", [0, 1], ids=["narrow", "wide"])
@pytest.mark.parametrize("flags", [[], ["-DZSQD_SIM_PORTABLE"]], ids=["simd", "portable"])
def test_requant_lanes_match_ap_int(tmp_path, flags, wide):
    cxx = compiler.toolchain(True)[1]
    src = tmp_path / "rq_check.cpp"
    src.write_text(_RQ_CHECK)
    exe = tmp_path / "rq_check"
    subprocess.run([cxx, "-std=c++17", "-O2", "-march=native", *flags, *compiler.WARN_FLAGS,
                    "-DZSQD_P_ROWS=8", f"-DZSQD_WIDE_RQ={wide}", "-isystem", str(native.ap_types_dir()),
                    f"-I{native.src_dir()}", str(src), "-o", str(exe)], check=True)
    proc = subprocess.run([str(exe)], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    assert " 0 mismatches" in proc.stdout


@pytest.mark.slow
def test_squeezenet_fast_equals_hls():
    """The whole network (~20 s in the HLS build)."""
    rng = np.random.default_rng(0)
    cfg = DaeConfig()
    layers = squeezenet11(rng)
    tiles = [default_tile(cfg, layer) for layer in layers]
    check_variants(cfg, layers, tiles, rand_input(rng, layers[0].in_shape))
