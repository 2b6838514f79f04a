"""Engine search of the decoupled engine (schedule/dae_engine_search.py) on SqueezeNet 1.0
and 1.1 for every board: deterministic, sized to the layers' needs, within the limits."""
from __future__ import annotations

from dataclasses import replace


import numpy as np
import pytest

from zynq_squeeze.boards import BOARDS
from zynq_squeeze.engine.dae_config import DaeConfig
from zynq_squeeze.errors import ScheduleError
from zynq_squeeze.frontend.models.squeezenet import squeezenet_conv_shapes, squeezenet_layers
from zynq_squeeze.quantize.layers import ConvLayer, ConvParams, FireLayer, PoolSpec
from zynq_squeeze.schedule import dae_engine_search as des
from zynq_squeeze.schedule import dae_resources as dr
from zynq_squeeze.schedule import dae_tiling


def _conv(o, i, k, stride=1, pad=0):
    # geometry only: the search never looks at weight values
    return ConvParams(np.zeros((o, i, k, k), np.int8), np.zeros(o, np.int32),
                      np.full(o, 1 << 14, np.int32), np.full(o, 20, np.int32),
                      (stride, stride), (pad,) * 4, True)


def squeezenet(version: str, hw: int = 224):
    """Quantized-layer chain of SqueezeNet ``version`` from the reference layer table
    (pools fused into the layer before them, ceil mode; conv10 + global average pool)."""
    table = list(squeezenet_layers(version))
    mp = PoolSpec("max", (3, 3), (2, 2), ceil_mode=True)
    layers, shape = [], (3, hw, hw)
    for i, t in enumerate(table):
        if t.kind not in ("conv", "fire"):
            continue
        nxt = table[i + 1].kind if i + 1 < len(table) else None
        pool = mp if nxt == "maxpool" else PoolSpec("avg", global_pool=True) if nxt == "gap" \
            else None
        c = shape[0]
        if t.kind == "conv":
            layer = ConvLayer(t.name, shape, _conv(t.channels[0], c, t.kernel, t.stride, t.pad),
                              pool)
        else:
            s, e1, e3 = t.channels
            layer = FireLayer(t.name, shape, _conv(s, c, 1), _conv(e1, s, 1),
                              _conv(e3, s, 3, pad=1), pool)
        layers.append(layer)
        shape = layer.out_shape
    return layers


NETS = {"1.0": squeezenet("1.0"), "1.1": squeezenet("1.1")}


def test_builder_matches_reference_shapes():
    assert NETS["1.1"][-1].out_shape == (1000, 1, 1)
    for version, layers in NETS.items():
        # every conv's output plane agrees with the reference table's shapes
        ref = {n: (oc, oh, ow) for n, _, oc, _, _, _, oh, ow in squeezenet_conv_shapes(version)}
        for layer in layers:
            if isinstance(layer, FireLayer):
                h, w = layer.conv_hw
                assert ref[f"{layer.name}/expand3x3"] == (layer.expand3.out_channels, h, w)
            else:
                assert ref[layer.name] == (layer.conv.out_channels, *layer.conv_hw)
    assert NETS["1.0"][0].out_shape == (96, 54, 54)  # 109x109 conv1, 3x3/2 ceil-mode pool


def test_max_k_by_dsp():
    # zybo-z7-20: k=3 is 192 MAC + 24 requant = 216 of 220; k=4 (288) does not fit
    assert des.max_k(BOARDS["zybo-z7-20"]) == 3
    assert dr.estimate(DaeConfig(k=3)).dsp == 216
    assert des.max_k(BOARDS["zybo-z7-10"]) == 1   # 72 of 80
    assert des.max_k(BOARDS["ultra96-v2"]) == 4   # 320 of 360
    # the source has no setup multiply left (derived registers): binding makes no difference
    assert des.max_k(BOARDS["zybo-z7-20"], setup_mul_impl="dsp") == 3


@pytest.mark.parametrize("version", ["1.0", "1.1"])
@pytest.mark.parametrize("board", ["zybo-z7-20", "pynq-z2", "ultra96-v2"])
def test_search_fits_and_is_sized_to_needs(board, version):
    b, layers = BOARDS[board], NETS[version]
    ch = des.search_dae_engine(b, layers, use_timing=False)
    cfg = ch.cfg
    rep = des.fit_report(cfg, b)
    assert rep["bram18k"]["used"] <= int(0.9 * b.bram18k)
    assert rep["lut"]["used"] <= int(0.7 * b.lut)
    assert rep["dsp"]["used"] <= b.dsp
    assert all(v["fits"] for v in rep.values())
    assert rep["lut"]["estimate"] and not rep["dsp"].get("estimate")
    # every layer's tile fits the chosen engine
    assert len(ch.tiles) == len(layers)
    for layer, t in zip(layers, ch.tiles):
        assert dae_tiling.overflow(cfg, layer, t) is None, (layer.name, t)
    # sized to the needs: each depth holds the largest need (+margin), rounded to its
    # storage step, and is not a step larger than that
    cap = dae_tiling.capacity(cfg)
    for name, n in ch.needs.items():
        assert cap[name] >= n
        assert cap[name] == des.sized_config(cfg.k, ch.needs, cfg.clock_mhz).__getattribute__(
            des._FIELD[name])
    assert cfg.p_rows <= dr.LUTRAM_MAX_DEPTH  # params stay in LUTRAM
    assert ch.use.bram18k < b.bram18k  # not filled to the budget (checked by the cap above)


def test_search_prefers_largest_k_that_fits():
    # ultra96: k=4 is over 70 % LUT (estimate), k=3 is chosen; the Z7-20 likewise gets the
    # largest k whose LUT estimate is within 70 %
    for board in ("ultra96-v2", "zybo-z7-20"):
        b = BOARDS[board]
        ch = des.search_dae_engine(b, NETS["1.1"], use_timing=False)
        for k in range(ch.cfg.k + 1, des.max_k(b) + 1):
            with pytest.raises(ScheduleError, match="LUT"):
                des.size_engine(b, NETS["1.1"], k, use_timing=False)


def test_deterministic():
    # (its speed is a benchmark figure, not a test: benchmarks/compile_time.py)
    b = BOARDS["zybo-z7-20"]
    a = des.search_dae_engine(b, NETS["1.1"], use_timing=False)
    c = des.search_dae_engine(b, NETS["1.1"], use_timing=False)
    assert a.to_json() == c.to_json()


def test_zybo_z7_10_names_the_resource():
    with pytest.raises(ScheduleError, match=r"zybo-z7-10.*LUT"):
        des.search_dae_engine(BOARDS["zybo-z7-10"], NETS["1.1"], use_timing=False)


def test_bram_shortage_names_bram():
    # a board with the Z7-20's logic but a sliver of BRAM: nothing can shrink enough
    import dataclasses
    tiny = dataclasses.replace(BOARDS["zybo-z7-20"], name="tiny-bram", bram18k=40)
    with pytest.raises(ScheduleError, match="BRAM18K"):
        des.size_engine(tiny, NETS["1.1"], 1, use_timing=False)


def test_shrinks_when_bram_is_short():
    import dataclasses
    b = BOARDS["zybo-z7-20"]
    small = dataclasses.replace(b, name="less-bram", bram18k=200)
    big = des.size_engine(b, NETS["1.1"], 2, use_timing=False)
    less = des.size_engine(small, NETS["1.1"], 2, use_timing=False)
    assert less.use.bram18k <= int(0.9 * 200) < big.use.bram18k
    # smaller buffers come from smaller tiles
    assert sum(t.th * t.tw * t.toc for t in less.tiles) <= sum(
        t.th * t.tw * t.toc for t in big.tiles)


def test_fit_report_shape():
    rep = des.fit_report(DaeConfig(k=3), BOARDS["zybo-z7-20"])
    assert set(rep) == {"bram18k", "dsp", "lut", "ff"}
    d = rep["dsp"]
    assert (d["used"], d["available"], d["limit"], d["headroom"]) == (216, 220, 220, 4)
    assert rep["bram18k"]["limit"] == 252 and rep["lut"]["limit"] == 37240
    assert rep["bram18k"]["percent"] == round(100 * rep["bram18k"]["used"] / 280, 1)


def test_timing_cost_when_available():
    pytest.importorskip("zynq_squeeze.schedule.timing")
    b = BOARDS["zybo-z7-20"]
    ch = des.search_dae_engine(b, NETS["1.1"])
    assert ch.cost in ("timing", "largest-first")
    for layer, t in zip(NETS["1.1"], ch.tiles):
        assert dae_tiling.overflow(ch.cfg, layer, t) is None
    assert des.fit_report(ch.cfg, b)["bram18k"]["fits"]


def test_wide_multiplier_only_when_a_layer_needs_it():
    """A QDQ model's 22-bit multipliers need the wide lane (DaeConfig.wide_rq, ~156 LUT per
    lane): the search builds it for them only. On the Zybo Z7-20 SqueezeNet 1.1's k = 3
    engine has not the LUT room for it (70 % limit, estimate): k = 2 with it, k = 3
    without; an engine without it refuses such a layer (the tiler names it)."""
    import copy

    from zynq_squeeze.schedule.instructions import layer_convs

    b = BOARDS["zybo-z7-20"]
    plain = des.search_dae_engine(b, NETS["1.1"], use_timing=False)
    wide_layers = copy.deepcopy(NETS["1.1"])
    for layer in wide_layers:
        for c in layer_convs(layer):
            c.mult[:], c.shift[:] = c.mult << 7, c.shift + 7  # the same reals, 22 bits
    wide = des.search_dae_engine(b, wide_layers, use_timing=False)
    assert (plain.cfg.k, plain.cfg.wide_rq) == (3, False)
    assert (wide.cfg.k, wide.cfg.wide_rq) == (2, True)
    with pytest.raises(ScheduleError, match="LUT"):
        des.size_engine(b, wide_layers, 3, use_timing=False)
    assert dr.estimate(wide.cfg).lut_by["wide_requant"] == 16 * dr.WIDE_RQ_PER_LANE[0]
    assert "wide_rq" in dae_tiling.overflow(replace(wide.cfg, wide_rq=False), wide_layers[1],
                                           wide.tiles[1])
    assert DaeConfig.from_json({**wide.cfg.to_json()}) == wide.cfg
    with pytest.raises(Exception, match="wide_rq"):
        DaeConfig.from_json({"wide_rq": 1})
