"""Standalone pools and concats on the accelerator (issue 11, item 4).

A pool that follows no offloaded conv runs as LOAD_INPUT -> POOL from in_buf
(POOL_SRC_IN) -> STORE; a concat of tensors produced inside one offloaded function is
channel-group offsets of one tensor (views): its parts are stored in place.
"""
import numpy as np
import pytest
from helpers import TINY, rand_input
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from zynq_squeeze.codegen.dae_program import build_dae_program, reference_chain
from zynq_squeeze.engine import isa
from zynq_squeeze.engine.dae_config import DaeConfig
from zynq_squeeze.quantize.layers import PoolLayer, PoolSpec
from zynq_squeeze.quantize.requant import pool_multiplier
from zynq_squeeze.partitioning.pool_spec import avg_pool_reason
from zynq_squeeze.schedule.dae_tiling import candidates
from zynq_squeeze.schedule.timing import simulate
from zynq_squeeze.toolchain.dae_sim import run_program

HYP = settings(max_examples=40, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CONFIGS = [TINY, DaeConfig(k=2, in_rows=512, w_rows=128, p_rows=16, acc_rows=512,
                           cv_rows=512, sq_rows=512, out_rows=512), DaeConfig()]


def run_check(layers, tiles, cfg, seed=0, hls_kernel=False):
    rng = np.random.default_rng(seed)
    x = rand_input(rng, layers[0].in_shape)
    prog = build_dae_program(cfg, layers, tiles)
    y, res = run_program(prog, x, hls_kernel=hls_kernel)
    ref = reference_chain(layers, x)
    assert y.shape == ref.shape
    assert np.array_equal(y, ref), f"{int(np.sum(y != ref))} mismatches (tiles {tiles})"
    assert res.cycles == simulate(cfg, prog.words).cycles
    return prog, res


@st.composite
def pool_cases(draw):
    seed = draw(st.integers(0, 2 ** 32 - 1))
    c = draw(st.sampled_from([1, 5, 8, 16, 24, 40, 72]))
    h, w = draw(st.integers(1, 17)), draw(st.integers(1, 17))
    kind = draw(st.sampled_from(["max", "avg", "gmax", "gavg"]))
    if kind in ("gmax", "gavg"):
        spec = PoolSpec("max" if kind == "gmax" else "avg", global_pool=True)
    else:
        kh, kw = draw(st.integers(1, min(4, h))), draw(st.integers(1, min(4, w)))
        s = draw(st.integers(1, 3))
        pads = tuple(draw(st.integers(0, k - 1)) for k in (kh, kw, kh, kw))
        spec = PoolSpec(kind, (kh, kw), (s, s), pads, ceil_mode=draw(st.booleans()),
                        count_include_pad=draw(st.booleans()))
    assume(spec.global_pool or (h + spec.pads[0] + spec.pads[2] >= spec.kernel[0]
                                and w + spec.pads[1] + spec.pads[3] >= spec.kernel[1]))
    if spec.kind == "avg":
        assume(avg_pool_reason(spec, h, w) is None)
    mult = shift = None
    if spec.kind == "avg" and draw(st.booleans()):  # a rescaling average
        d = spec.avg_divisor(h, w)
        mult, shift = pool_multiplier(d)
        mult = min((1 << 15) - 1, mult + draw(st.integers(0, 3000)))
    layer = PoolLayer("p", (c, h, w), spec, mult, shift)
    cfg = draw(st.sampled_from(CONFIGS))
    cands = candidates(cfg, layer)
    assume(cands)
    return [layer], [draw(st.sampled_from(cands))], cfg, seed


@HYP
@given(pool_cases())
def test_standalone_pool_bit_exact(case):
    layers, tiles, cfg, seed = case
    prog, _ = run_check(layers, tiles, cfg, seed)
    pools = [w for w in prog.words if int(w) & 0xF == isa.OP_POOL]
    assert pools and all(int(w) & isa.POOL_SRC_IN for w in pools)


@pytest.mark.parametrize("spec", [PoolSpec("max", (3, 3), (2, 2), ceil_mode=True),
                                  PoolSpec("max", (3, 3), (1, 1), (1, 1, 1, 1), ceil_mode=True),
                                  PoolSpec("avg", (2, 2), (2, 2)),
                                  PoolSpec("avg", global_pool=True)])
def test_standalone_pool_synthesized_loops(spec):
    """The HLS loops (not the host fast path) give the same integers and cycles."""
    layer = PoolLayer("p", (40, 9, 11), spec)
    cfg = CONFIGS[1]
    tile = candidates(cfg, layer)[-1]  # the smallest: several spatial and channel tiles
    run_check([layer], [tile], cfg, seed=3, hls_kernel=True)
