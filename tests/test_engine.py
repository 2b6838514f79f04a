"""Bit-exact C simulation vs the numpy golden model, and executed vs analytic cycles."""
import dataclasses

import numpy as np
import pytest
from helpers import TINY, conv_params, fire, rand_input, squeezenet11
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from zynq_squeeze.codegen.program import build_program, chain_program, run_reference
from zynq_squeeze.engine.config import EngineConfig, TileSchedule
from zynq_squeeze.engine.descriptor import make_descriptor
from zynq_squeeze.errors import EngineError, ScheduleError
from zynq_squeeze.quantize.layers import ConvLayer, PoolSpec
from zynq_squeeze.quantize.reference import run_layer
from zynq_squeeze.schedule.cycle_model import fits
from zynq_squeeze.schedule.tiling import default_schedule
from zynq_squeeze.toolchain import csim

DEFAULT = EngineConfig()
SMALLEST = TileSchedule(toc=1, tic=1, th=1, tw=1)
HYP = settings(max_examples=120, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_layers(layers, cfg, scheds=None, x=None, seed=0, extra_flags=()):
    rng = np.random.default_rng(seed)
    x = rand_input(rng, layers[0].in_shape) if x is None else x
    prog = chain_program(layers, cfg, scheds)
    # every intermediate tensor is an output, so each layer is compared on its own
    triples = [(layer, k, k + 1) for k, layer in enumerate(layers)]
    tensors = {0: layers[0].in_shape, **{k + 1: l.out_shape for k, l in enumerate(layers)}}
    prog = build_program(triples, tensors, [0], list(range(1, len(layers) + 1)), cfg,
                         prog.schedules)
    outs, stats = csim.run_program(prog, [x], extra_flags)
    refs = run_reference(prog, [x])
    for k, (o, r) in enumerate(zip(outs, refs)):
        assert o.shape == r.shape
        if not np.array_equal(o, r):
            bad = np.argwhere(o != r)
            raise AssertionError(f"layer {layers[k].name} {prog.schedules[k]}: "
                                 f"{len(bad)} mismatches, first at {bad[0].tolist()}")
    assert stats.layer_cycles == prog.layer_cycles
    assert stats.layer_ddr_bytes == [c.ddr_bytes for c in prog.costs]
    assert stats.layer_macs == [c.macs for c in prog.costs]
    assert stats.total_cycles == prog.total_cycles
    return prog, outs, stats


def shrink_to_fit(layer, s: TileSchedule, cfg):
    for _ in range(64):
        if fits(make_descriptor(layer, s), cfg):
            return s
        s = dataclasses.replace(s, toc=max(1, s.toc // 2), tic=max(1, s.tic // 2),
                                th=max(1, s.th // 2), tw=max(1, s.tw // 2))
    return default_schedule(layer, cfg)


@st.composite
def pools(draw, h, w):
    kind = draw(st.sampled_from(["none", "max", "avg", "global"]))
    if kind == "none":
        return None
    if kind == "global":
        return PoolSpec(draw(st.sampled_from(["max", "avg"])), global_pool=True)
    kh, kw = draw(st.integers(1, min(4, h))), draw(st.integers(1, min(4, w)))
    pads = (draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)),
            draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)))
    return PoolSpec(kind, (kh, kw), (draw(st.integers(1, 3)), draw(st.integers(1, 3))), pads,
                    ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()))


@st.composite
def schedules(draw, layer, cfg):
    oc, oh, ow = layer.out_shape
    ic = layer.in_shape[0]
    s = TileSchedule(toc=draw(st.integers(1, oc)), tic=draw(st.integers(1, ic)),
                     th=draw(st.integers(1, oh)), tw=draw(st.integers(1, ow)),
                     loop_order=draw(st.sampled_from(["spatial_outer", "oc_outer"])),
                     double_buffer=draw(st.booleans()))
    return shrink_to_fit(layer, s, cfg)


@st.composite
def conv_cases(draw):
    seed = draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = (draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)),
            draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)))
    h = draw(st.integers(max(1, kh - pads[0] - pads[2]), 19))
    w = draw(st.integers(max(1, kw - pads[1] - pads[3]), 19))
    ic, oc = draw(st.integers(1, 37)), draw(st.integers(1, 41))
    conv = conv_params(rng, oc, ic, kh, kw, (sh, sw), pads, relu=draw(st.booleans()))
    ch, cw = conv.out_hw(h, w)
    layer = ConvLayer("c", (ic, h, w), conv, draw(pools(ch, cw)))
    cfg = draw(st.sampled_from([TINY, DEFAULT]))
    # some layers fit no tile of TINY (e.g. a global pool over a plane whose squeeze
    # tile + halo overflows sq_buf); the error path has its own tests
    assume(fits(make_descriptor(layer, SMALLEST), cfg))
    sched = draw(schedules(layer, cfg)) if draw(st.booleans()) else None
    return layer, cfg, sched, seed


@st.composite
def fire_cases(draw):
    seed = draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    h, w = draw(st.integers(1, 17)), draw(st.integers(1, 17))
    c = draw(st.integers(1, 40))
    s, e1, e3 = draw(st.integers(1, 20)), draw(st.integers(1, 30)), draw(st.integers(1, 30))
    stride = draw(st.sampled_from([(1, 1), (1, 1), (2, 2)]))
    sq_h, sq_w = (h - 1) // stride[0] + 1, (w - 1) // stride[1] + 1
    layer = fire(rng, "f", (c, h, w), s, e1, e3, draw(pools(sq_h, sq_w)), sq_stride=stride)
    cfg = draw(st.sampled_from([TINY, DEFAULT]))
    # some layers fit no tile of TINY (e.g. a global pool over a plane whose squeeze
    # tile + halo overflows sq_buf); the error path has its own tests
    assume(fits(make_descriptor(layer, SMALLEST), cfg))
    sched = draw(schedules(layer, cfg)) if draw(st.booleans()) else None
    return layer, cfg, sched, seed


@HYP
@given(conv_cases())
def test_conv_bit_exact(case):
    layer, cfg, sched, seed = case
    check_layers([layer], cfg, [sched], seed=seed)


@HYP
@given(fire_cases())
def test_fire_bit_exact(case):
    layer, cfg, sched, seed = case
    check_layers([layer], cfg, [sched], seed=seed)


def test_hls_kernel_variant_bit_exact():
    """The PE-array body (what Vitis HLS synthesizes) computes the same integers."""
    rng = np.random.default_rng(3)
    layers = [ConvLayer("c", (5, 13, 11), conv_params(rng, 9, 5, 3, stride=(2, 1),
                                                      pads=(1, 0, 2, 1)),
                        PoolSpec("max", (2, 2), (2, 2), ceil_mode=True))]
    layers.append(fire(rng, "f", layers[0].out_shape, 7, 6, 10))
    check_layers(layers, TINY, extra_flags=("-DZSQ_HLS_KERNEL",))


def test_squeezenet_like_layers():
    """SqueezeNet 1.1 shapes (55x55 fires, conv1 with pool, conv10 + global pool)."""
    rng = np.random.default_rng(7)
    net = squeezenet11(rng, hw=224)
    # conv1 + fire2 + fire3 (pooled) and fire9 + conv10 at their real shapes
    check_layers(net[:3], DEFAULT, seed=1)
    check_layers(net[-2:], DEFAULT, seed=2)


def test_squeezenet_full_chain():
    rng = np.random.default_rng(11)
    net = squeezenet11(rng, hw=224)
    prog = chain_program(net)
    x = rand_input(rng, net[0].in_shape)
    outs, stats = csim.run_program(prog, [x])
    ref = run_reference(prog, [x])
    assert np.array_equal(outs[0], ref[0])
    assert outs[0].shape == (1000, 1, 1)
    assert stats.layer_cycles == prog.layer_cycles


def test_multi_input_program_and_arena_reuse():
    rng = np.random.default_rng(5)
    a = ConvLayer("a", (4, 9, 9), conv_params(rng, 6, 4, 3, pads=(1, 1, 1, 1)))
    b = ConvLayer("b", (6, 9, 9), conv_params(rng, 5, 6, 1))
    c = ConvLayer("c", (5, 9, 9), conv_params(rng, 3, 5, 3))
    d = ConvLayer("d", (4, 9, 9), conv_params(rng, 2, 4, 1))
    tensors = {"x": (4, 9, 9), "y": (6, 9, 9), "z": (5, 9, 9), "out": (3, 7, 7), "x2": (4, 9, 9),
               "o2": (2, 9, 9)}
    prog = build_program([(a, "x", "y"), (b, "y", "z"), (c, "z", "out"), (d, "x2", "o2")],
                         tensors, ["x", "x2"], ["out", "o2"], TINY)
    # y is dead after b, so "out" may reuse its space
    assert prog.arena_bytes < sum(int(np.prod(s)) for s in tensors.values()) + 6 * 64
    xs = [rand_input(rng, (4, 9, 9)), rand_input(rng, (4, 9, 9))]
    outs, _ = csim.run_program(prog, xs)
    refs = run_reference(prog, xs)
    assert all(np.array_equal(o, r) for o, r in zip(outs, refs))
    assert np.array_equal(refs[0], run_layer(c, run_layer(b, run_layer(a, xs[0]))))


# ------------------------------------------------------------------ error paths

def _layer(rng):
    return ConvLayer("c", (8, 12, 12), conv_params(rng, 16, 8, 3))


SMALL = dataclasses.replace(TINY, in_buf_bytes=512, w_buf_bytes=1024)


def test_oversized_tile_schedule_error():
    layer = _layer(np.random.default_rng(0))
    with pytest.raises(ScheduleError, match="in_buf"):
        chain_program([layer], SMALL, [TileSchedule(toc=1, tic=8, th=10, tw=10)])
    with pytest.raises(ScheduleError, match="w_buf"):
        chain_program([layer], SMALL, [TileSchedule(toc=16, tic=8, th=2, tw=2)])


@pytest.mark.parametrize("sched, code", [
    (TileSchedule(toc=1, tic=8, th=10, tw=10), -8),     # input buffer
    (TileSchedule(toc=16, tic=8, th=10, tw=10), -8),
    (TileSchedule(toc=16, tic=8, th=2, tw=2), -9),      # weight buffer
])
def test_oversized_tile_engine_error(sched, code):
    layer = _layer(np.random.default_rng(0))
    prog = chain_program([layer], SMALL, [sched], check=False)
    with pytest.raises(EngineError) as ei:
        csim.run_program(prog, [rand_input(np.random.default_rng(1), layer.in_shape)])
    assert ei.value.code == code
    assert "buffer" in str(ei.value)


def test_engine_rejects_corrupt_descriptor_and_small_arena():
    rng = np.random.default_rng(0)
    layer = _layer(rng)
    prog = chain_program([layer], TINY)
    x = rand_input(rng, layer.in_shape)
    bad = dataclasses.replace(prog, descriptors=b"\0" * 4 + prog.descriptors[4:])
    with pytest.raises(EngineError) as ei:
        csim.run_program(bad, [x])
    assert ei.value.code == -2
    words = np.frombuffer(prog.descriptors, dtype=np.int32).copy()
    words[2] = 7  # kind
    with pytest.raises(EngineError) as ei:
        csim.run_program(dataclasses.replace(prog, descriptors=words.tobytes()), [x])
    assert ei.value.code == -3
    small = dataclasses.replace(prog, arena_bytes=prog.arena_bytes // 2)
    with pytest.raises(EngineError) as ei:
        csim.run_program(small, [x])
    assert ei.value.code == -101
    short_w = dataclasses.replace(prog, weights=prog.weights[:10])
    with pytest.raises(EngineError) as ei:
        csim.run_program(short_w, [x])
    assert ei.value.code == -102


def test_bad_layers_rejected_at_build():
    rng = np.random.default_rng(0)
    p = conv_params(rng, 4, 3, 3)
    p.shift = np.full(4, 70, dtype=np.int32)
    with pytest.raises(ValueError, match="shift"):
        chain_program([ConvLayer("c", (3, 8, 8), p)])
    p = conv_params(rng, 4, 3, 3)
    p.bias = np.full(4, 2 ** 31 - 10, dtype=np.int64).astype(np.int32)
    with pytest.raises(ValueError, match="overflow"):
        chain_program([ConvLayer("c", (3, 8, 8), p)])
    f = fire(rng, "f", (8, 6, 6), 4, 4, 4)
    f.expand3 = conv_params(rng, 4, 4, 3)  # no padding: not a fire expand
    with pytest.raises(ValueError, match="expand3"):
        chain_program([f])


def test_no_legal_tile_names_buffer():
    rng = np.random.default_rng(0)
    # global pool over a plane whose accumulator tile cannot fit
    layer = ConvLayer("g", (4, 60, 60), conv_params(rng, 8, 4, 1), PoolSpec("avg", global_pool=True))
    with pytest.raises(ScheduleError, match="acc_buf"):
        chain_program([layer], TINY)


@pytest.mark.parametrize("pool", [
    PoolSpec("avg", (3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True, count_include_pad=True),
    PoolSpec("avg", (3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True),
    PoolSpec("avg", (2, 3), (1, 2), (0, 1, 1, 0)),
    PoolSpec("max", (3, 3), (2, 2), (0, 0, 0, 0), ceil_mode=True),
    PoolSpec("avg", global_pool=True),
])
def test_pools_negative_values(pool):
    """No ReLU: negative sums exercise the floor division of the average pool."""
    rng = np.random.default_rng(9)
    layer = ConvLayer("p", (5, 14, 13), conv_params(rng, 7, 5, 3, relu=False), pool)
    check_layers([layer], TINY, seed=4)


def test_native_paths():
    from zynq_squeeze import native
    for p in native.engine_sources() + native.runtime_sources("csim") + native.runtime_sources("zynq"):
        assert p.is_file(), p
    assert any((d / "zsq_runtime.h").is_file() for d in native.include_dirs())
    assert any((d / "zsq_types.h").is_file() for d in native.include_dirs())
    with pytest.raises(ValueError):
        native.runtime_sources("fpga")


def _vnni_layers(rng):
    """Shapes that exercise the host kernels' tails: signed inputs, kw*cin not a multiple
    of 4, toc not a multiple of the vector width, strides, on-chip fire expands."""
    layers = [ConvLayer("c", (3, 17, 15), conv_params(rng, 21, 3, 3, stride=(2, 2),
                                                      pads=(1, 1, 0, 1), relu=False),
                        PoolSpec("max", (3, 3), (2, 2), ceil_mode=True))]
    layers.append(fire(rng, "f", layers[0].out_shape, 13, 19, 37))
    layers.append(ConvLayer("d", layers[-1].out_shape, conv_params(rng, 70, 56, 1),
                            PoolSpec("avg", global_pool=True)))
    return layers


@pytest.mark.parametrize("flags", [(), ("-DZSQ_SIM_NO_VNNI",), ("-mno-avx512f",)],
                         ids=["native", "portable", "avx-vnni-256"])
def test_host_kernel_variants_bit_exact(flags):
    """The simulation's VNNI (AVX-512 / AVX-VNNI) and portable kernels give the same
    integers (unsupported flags on another CPU still compile the portable path)."""
    rng = np.random.default_rng(13)
    for cfg in (TINY, DEFAULT):
        check_layers(_vnni_layers(rng), cfg, seed=5, extra_flags=flags)
