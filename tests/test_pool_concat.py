"""Standalone pools and concats on the accelerator (issue 11, item 4).

A pool that follows no offloaded conv runs as LOAD_INPUT -> POOL from in_buf
(POOL_SRC_IN) -> STORE; a concat of tensors produced inside one offloaded function is
channel-group offsets of one tensor (views): its parts are stored in place.
"""
import numpy as np
import pytest
from helpers import TINY, conv_params, rand_input
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from zynq_squeeze.codegen.dae_program import build_dae_program, reference_chain
from zynq_squeeze.engine import isa
from zynq_squeeze.engine.dae_config import DaeConfig
from zynq_squeeze.quantize.layers import ConvLayer, PoolLayer, PoolSpec
from zynq_squeeze.quantize.reference import run_layer
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
    _same_timing(cfg, prog, res)
    return prog, res


def _same_timing(cfg, prog, res):
    """The fast model's timing is the executed one, per instruction (so per layer)."""
    tm = simulate(cfg, prog.words)
    assert tm.cycles == res.cycles
    np.testing.assert_array_equal(tm.insn_end, res.insn_end)
    assert (tm.macs, tm.rd_bytes, tm.wr_bytes) == (res.macs, res.rd_bytes, res.wr_bytes)


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
    mult = shift = scales = None
    if spec.kind == "avg" and draw(st.booleans()):  # a rescaling average
        d = spec.avg_divisor(h, w)
        if d is None:  # windows differ (padding, ceil overhang): a multiplier per divisor
            scales = (1.0, draw(st.floats(0.25, 1.0)))
        else:
            mult, shift = pool_multiplier(d)
            mult = min((1 << 15) - 1, mult + draw(st.integers(0, 3000)))
    layer = PoolLayer("p", (c, h, w), spec, mult, shift, scales=scales)
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


# -- through tvm.compile / zynq_squeeze.build --------------------------------------------
import onnxruntime as ort  # noqa: E402
import tvm  # noqa: E402
from onnx_graphs import GraphBuilder, inception_net  # noqa: E402

import zynq_squeeze  # noqa: E402
from zynq_squeeze.codegen import golden  # noqa: E402
from zynq_squeeze.frontend import from_onnx  # noqa: E402
from zynq_squeeze.partitioning import patterns  # noqa: E402


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _build(model, shape, tmp_path, n=6, seed=0):
    rng = np.random.default_rng(seed)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]
    return zynq_squeeze.build(from_onnx(model), calibration=calib, out_dir=tmp_path), rng


def _golden_chain(res, x):
    """The offloaded functions' golden models in order, with the CPU's Flatten between
    (each function's input is the previous one's output, reshaped)."""
    fns = {tuple(lf.input_shapes[0]): lf for lf in res.codegen[0].functions}
    y = golden.run_function(fns[x.shape], [x])[0]
    while y.reshape(y.shape[0], -1).shape in fns:
        y = y.reshape(y.shape[0], -1)
        y = golden.run_function(fns[y.shape], [y])[0]
    return y


def _check_against_onnx(model, res, rng, shape, runs=3, vm=None):
    """Bit-exact with the golden models, cosine >= 0.99 with onnxruntime (returned);
    ``vm``: the build's by default (or one of ``tvm.compile`` for the same module)."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    vm = vm or res.vm()
    cos = []
    for _ in range(runs):
        x = rng.standard_normal(shape).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_array_equal(y, _golden_chain(res, x).reshape(y.shape))
        cos.append(cosine(y, sess.run(None, {"x": x})[0]))
    assert min(cos) >= 0.99, cos
    return cos


def test_inception_net_is_one_function_bit_exact(tmp_path):
    """Three inception blocks, the pools between them (after a concat: standalone), the
    global average pool and the classifier (its Flatten of the (1, C, 1, 1) pool output
    joins the dense pattern) are ONE offloaded function; the concats are channel offsets:
    every branch stores in place."""
    shape = (1, 3, 32, 32)
    model = inception_net(shape)
    res, rng = _build(model, shape, tmp_path)
    rep = res.partition_report
    assert len(rep.functions) == 1, rep.functions
    assert rep.cpu_ops == [], rep.cpu_ops
    assert rep.patterns[patterns.CONCAT] == 3 and rep.patterns[patterns.POOL] == 5
    assert rep.patterns[patterns.DENSE] == 1
    conv_fn = max(res.codegen[0].functions, key=lambda lf: len(lf.layers))
    kinds = [layer.kind for layer, _, _ in conv_fn.layers]
    # 3 branch pools, the pool between stages and the global average: no copy layer
    assert kinds.count("pool") == 5
    assert not any("copy" in layer.name for layer, _, _ in conv_fn.layers)
    # the 4 branches of each of the 3 blocks store into their concat's tensor
    assert len(conv_fn.views) == 12 and len({r for r, _ in conv_fn.views.values()}) == 3
    _check_against_onnx(model, res, rng, shape)


def test_concat_with_a_part_not_a_multiple_of_8_stays_on_cpu():
    g = GraphBuilder((1, 8, 6, 6), seed=1)
    x = g.cur
    a = g.conv(8, 1, src=x)
    b = g.conv(12, 3, pad=1, src=x)
    g.concat([a, b], [8, 12])
    g.conv(8, 1)
    _, rep = zynq_squeeze.partition(from_onnx(g.model()))
    concat = [op for op in rep.cpu_ops if op.op == "relax.concat"]
    assert len(concat) == 1
    assert concat[0].reason == "concat part 1 has 12 channels, not a multiple of 8"


def _dense_block(input_part: bool):
    """DenseNet's pattern: every layer reads the concat of all features so far
    (torchvision's ``cat(features)``): x0 -> f1 = conv(x0), f2 = conv(cat(x0, f1)),
    conv(cat(x0, f1, f2)) + a 2x2 average pool. x0 is the model input (``input_part``:
    it must be copied into the concat's tensor) or a conv output (stored in place)."""
    g = GraphBuilder((1, 8, 10, 10), seed=5)
    x0 = g.cur if input_part else g.conv(8, 3, pad=1)
    g.c = 8
    f1 = g.conv(8, 3, pad=1, src=x0)
    g.concat([x0, f1], [8, 8])
    f2 = g.conv(16, 3, pad=1)
    g.concat([x0, f1, f2], [8, 8, 16])
    g.conv(16, 1)
    g.avgpool(2, 2)
    return g.model()


@pytest.mark.parametrize("input_part", [False, True])
def test_dense_block_concats_bit_exact(tmp_path, input_part):
    """Both concats are views of the last one's tensor (the first is its prefix); x0 is
    stored there in place when a conv produces it, copied by one layer when it is the
    function's input (through tvm.compile)."""
    shape = (1, 8, 10, 10)
    model = _dense_block(input_part)
    rng = np.random.default_rng(2)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(6)]
    mod = zynq_squeeze.calibrate(from_onnx(model), calib, progress=False)
    _, rep = zynq_squeeze.partition(mod)
    assert len(rep.functions) == 1 and rep.cpu_ops == [], rep
    res = zynq_squeeze.build(mod, out_dir=tmp_path)
    lf, = res.codegen[0].functions
    copies = [layer for layer, _, _ in lf.layers if "copy" in layer.name]
    assert len(copies) == (1 if input_part else 0)
    roots = {r for r, _ in lf.views.values()}
    assert len(roots) == 1  # one tensor: x0 | f1 | f2
    root, = roots
    assert lf.tensors[root].shape == (32, 10, 10)
    # x0 (or its copy) at 0, the first concat at 0 (a prefix), f1 at 8, f2 at 16
    assert sorted(off for _, off in lf.views.values()) == [0, 0, 8, 16]
    ex = tvm.compile(mod, target="zynq-squeeze")
    vm = tvm.relax.VirtualMachine(ex, tvm.cpu())
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for _ in range(3):
        x = rng.standard_normal(shape).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0].reshape(y.shape))
        assert cosine(y, sess.run(None, {"x": x})[0]) >= 0.99


# -- concat views in the engine ---------------------------------------------------------
def _branch_program(cfg, rng, part_b=(24, 3)):
    """x -> a = conv 1x1 (16 ch) || b = conv kxk -> stored at channels 0 and 16 of one
    tensor "cat" (views), then a standalone 3x3/2 ceil max pool of the whole concat."""
    ob, k = part_b
    x_shape = (8, 9, 11)
    la = ConvLayer("a", x_shape, conv_params(rng, 16, 8, 1))
    lb = ConvLayer("b", x_shape, conv_params(rng, ob, 8, k, pads=(k // 2,) * 4))
    lp = PoolLayer("p", (16 + ob, 9, 11), PoolSpec("max", (3, 3), (2, 2), ceil_mode=True))
    graph = [(la, "x", "a"), (lb, "x", "b"), (lp, "cat", "y")]
    shapes = {"x": x_shape, "a": la.out_shape, "b": lb.out_shape, "cat": lp.in_shape,
              "y": lp.out_shape}
    tiles = [candidates(cfg, layer)[-1] for layer, _, _ in graph]  # the smallest tiles
    prog = build_dae_program(cfg, graph, tiles, shapes, ["x"], ["y"],
                             {"a": ("cat", 0), "b": ("cat", 16)})
    return graph, prog


@pytest.mark.parametrize("hls_kernel", [False, True])
def test_concat_views_in_the_engine_bit_exact(hls_kernel):
    cfg = CONFIGS[1]
    rng = np.random.default_rng(7)
    graph, prog = _branch_program(cfg, rng)
    (la, _, _), (lb, _, _), (lp, _, _) = graph
    t = prog.tensors
    assert t["a"].base == t["b"].base == t["cat"].base and (t["a"].g0, t["b"].g0) == (0, 2)
    assert t["b"].pixel_groups == 5
    x = rand_input(rng, la.in_shape)
    y, res = run_program(prog, x, hls_kernel=hls_kernel)
    ref = run_layer(lp, np.concatenate([run_layer(la, x), run_layer(lb, x)]))
    np.testing.assert_array_equal(y, ref)
    _same_timing(cfg, prog, res)
    # the HLS project's testbench expects the same (its golden model follows the views)
    from zynq_squeeze.codegen.hls_project import _golden
    np.testing.assert_array_equal(_golden(prog, x), ref)


def test_program_rejects_bad_views():
    cfg = CONFIGS[1]
    rng = np.random.default_rng(1)
    graph, _ = _branch_program(cfg, rng)
    shapes = {"x": (8, 9, 11), "a": (16, 9, 11), "b": (24, 9, 11), "cat": (40, 9, 11),
              "y": graph[2][0].out_shape}
    tiles = [candidates(cfg, layer)[-1] for layer, _, _ in graph]
    for views, what in (({"a": ("cat", 0), "b": ("cat", 4)}, "whole channel groups"),
                        ({"a": ("cat", 0), "b": ("cat", 8)}, "written twice"),
                        ({"a": ("cat", 0)}, "not produced before use")):
        with pytest.raises(ValueError, match=what):
            build_dae_program(cfg, graph, tiles, shapes, ["x"], ["y"], views)


from test_robust_runtime import _shift_base, validate  # noqa: E402,F401 (a fixture)


def test_lifetime_check_accepts_views_and_refuses_a_part_over_a_live_tensor(validate):  # noqa: F811
    """zsq_rt_validate: the parts of a concat share its descriptor (base, H, W, G), so
    storing them in place is one tensor written by several layers (accepted); the same
    stores moved onto the input, which the branches still read, are refused."""
    graph, prog = _branch_program(CONFIGS[1], np.random.default_rng(3))
    assert validate(prog.words, prog.weights, prog.arena_words) == (0, "")
    bad = _shift_base(prog.words, isa.ST_BASE, isa.ST_DST0, prog.tensors["x"].base, 0,
                      prog.layer_ends[1] + 1)
    rc, msg = validate(bad, prog.weights, prog.arena_words)
    assert rc != 0 and "overlaps" in msg, msg


def test_nested_concat_with_copies_bit_exact(tmp_path):
    """concat(concat(a, maxpool(x)), a): the inner concat is a view of the outer one, a is
    stored in place once and copied to its second offset (the same scale: a 1x1 max
    pool), the max pool's output (which keeps x's scale) is copied with a requantization
    (a 1x1 average pool); bit-exact and close to onnxruntime."""
    shape = (1, 8, 9, 9)
    g = GraphBuilder(shape, seed=8)
    x = g.cur
    a = g.conv(16, 1, src=x)
    g.cur, g.c = x, 8
    p = g.maxpool(3, 1, pads=[1, 1, 1, 1])
    c1 = g.concat([a, p], [16, 8])
    g.concat([c1, a], [24, 16])
    g.conv(8, 1)
    model = g.model()
    res, rng = _build(model, shape, tmp_path)
    assert len(res.partition_report.functions) == 1
    lf, = res.codegen[0].functions
    copies = {layer.pool.kind: layer for layer, _, _ in lf.layers if "copy" in layer.name}
    assert sorted(copies) == ["avg", "max"] and copies["avg"].mult is not None
    assert sorted(off for _, off in lf.views.values()) == [0, 0, 16, 24]
    _check_against_onnx(model, res, rng, shape)


def test_plan_concats_nesting_prefixes_and_copies():
    from zynq_squeeze.codegen.concat_plan import PlanItem, plan_concats

    ch = {"x": 8, "a": 8, "b": 16, "c1": 16, "c2": 32, "o": 8}
    items = [PlanItem("aliasable", ["x"], "a"), PlanItem("concat", ["x", "a"], "c1"),
             PlanItem("aliasable", ["c1"], "b"), PlanItem("concat", ["x", "a", "b"], "c2"),
             PlanItem("aliasable", ["c2"], "o")]
    plan = plan_concats(items, ch, ["o"])
    # DenseNet's prefix: c1 = the first 16 channels of c2; x (an input) copied once, at the
    # first concat that needs it
    assert plan.views == {"a": ("c2", 8), "b": ("c2", 16), "c1": ("c2", 0),
                          "c2_p0": ("c2", 0)}
    assert plan.copies == {"c2_p0": ("x", 1)} and plan.copies_at(1) == [("x", "c2_p0")]
    # a function output is never a view: the concat that needs it gets a copy
    plan = plan_concats(items, ch, ["o", "a"])
    assert "a" not in plan.views and {s for s, _ in plan.copies.values()} == {"x", "a"}


def test_standalone_pools_offloaded_or_kept_with_the_reason():
    """After a concat (no conv to fuse into): a max pool, an average pool with one
    divisor and one whose padded windows differ are offloaded; a pool whose padding is
    not smaller than its window stays on the CPU with that reason."""
    def net(pool):
        g = GraphBuilder((1, 8, 9, 9), seed=2)
        x = g.cur
        a = g.conv(8, 1, src=x)
        g.c = 8
        b = g.conv(8, 3, pad=1, src=x)
        g.concat([a, b], [8, 8])
        pool(g)
        g.conv(8, 1)
        return g.model()

    for pool, offloaded in ((lambda g: g.maxpool(3, 2, ceil=1), True),
                            (lambda g: g.avgpool(3, 3), True),
                            (lambda g: g.avgpool(3, 2, pads=[1, 1, 1, 1]), True),
                            (lambda g: g.avgpool(2, 2, pads=[2, 2, 2, 2],
                                                 count_include_pad=1), False)):
        _, rep = zynq_squeeze.partition(from_onnx(net(pool)))
        cpu = [op for op in rep.cpu_ops if "pool" in op.op]
        if offloaded:
            assert rep.patterns.get(patterns.POOL) == 1 and not cpu
            assert len(rep.functions) == 1
        else:
            assert [op.reason for op in cpu] == [
                "pool padding (2, 2, 2, 2) is not smaller than the window (2, 2)"]


@pytest.mark.parametrize("hls_kernel", [False, True])
def test_part_requantized_in_place_bit_exact_and_only_by_a_1x1_pool(hls_kernel):
    """A concat part requantized in place (a QDQ model's second rounding,
    ``lower._requantize_parts``): a 1x1 average pool reads and writes the same channel
    groups of the concat's tensor, bit-exact in the engine; a pool with a wider window
    in place would read words it already overwrote and is refused."""
    cfg = CONFIGS[1]
    rng = np.random.default_rng(5)
    x_shape = (8, 9, 11)
    la = ConvLayer("a", x_shape, conv_params(rng, 16, 8, 1))
    lb = ConvLayer("b", x_shape, conv_params(rng, 24, 8, 3, pads=(1,) * 4))
    rq = PoolLayer("rq", la.out_shape, PoolSpec("avg"), mult=23000, shift=15)
    lp = PoolLayer("p", (40, 9, 11), PoolSpec("max", (3, 3), (2, 2), ceil_mode=True))
    graph = [(la, "x", "a"), (lb, "x", "b"), (rq, "a", "a_rq"), (lp, "cat", "y")]
    shapes = {"x": x_shape, "a": la.out_shape, "a_rq": la.out_shape, "b": lb.out_shape,
              "cat": lp.in_shape, "y": lp.out_shape}
    views = {"a": ("cat", 0), "a_rq": ("cat", 0), "b": ("cat", 16)}
    tiles = [candidates(cfg, layer)[-1] for layer, _, _ in graph]
    prog = build_dae_program(cfg, graph, tiles, shapes, ["x"], ["y"], views)
    x = rand_input(rng, x_shape)
    y, res = run_program(prog, x, hls_kernel=hls_kernel)
    cat = np.concatenate([run_layer(rq, run_layer(la, x)), run_layer(lb, x)])
    np.testing.assert_array_equal(y, run_layer(lp, cat))
    _same_timing(cfg, prog, res)
    wide = PoolLayer("rq", la.out_shape, PoolSpec("max", (3, 3), pads=(1,) * 4))
    graph[2] = (wide, "a", "a_rq")
    with pytest.raises(ValueError, match="in place"):
        build_dae_program(cfg, graph, tiles, shapes, ["x"], ["y"], views)
