"""Schedules, the resource model, the engine search and model = simulation."""
from __future__ import annotations

import json

import numpy as np
import pytest

from zynq_squeeze.boards import BOARDS, get_board
from zynq_squeeze.codegen.lower import lower_function
from zynq_squeeze.codegen.program import build_program
from zynq_squeeze.engine.config import EngineConfig, TileSchedule
from zynq_squeeze.errors import ScheduleError
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.frontend.models import squeezenet
from zynq_squeeze.partitioning.partitioner import partition_with_report
from zynq_squeeze.quantize.calibrate import calibrate
from zynq_squeeze.schedule.engine_search import search_engine
from zynq_squeeze.schedule.resources import (
    Buffer,
    bram18_per_bank,
    buffer_bram18k,
    engine_buffers,
    estimate,
)
from zynq_squeeze.schedule.select import (
    TuningLogError,
    choose_schedules,
    read_tuning_log,
    write_tuning_log,
)
from zynq_squeeze.schedule.tiling import default_schedule
from zynq_squeeze.toolchain import csim


# --------------------------------------------------------------------------- resource model
@pytest.mark.parametrize("depth,width,expected", [
    (512, 36, 1), (1024, 18, 1), (2048, 9, 1), (16384, 1, 1),
    (2048, 18, 2), (256, 48, 2), (513, 36, 2), (4096, 8, 2),
    (32, 32, 0),  # 1024 bits: distributed RAM
    (33, 32, 1),
])
def test_bram18_mapping(depth, width, expected):
    assert bram18_per_bank(depth, width) == expected


def test_partition_and_ping_pong_multiply():
    one = Buffer("x", 8, 2048, banks=1, copies=1)
    assert buffer_bram18k(one) == 1
    assert buffer_bram18k(Buffer("x", 8, 2048, banks=4, copies=1)) == 4
    assert buffer_bram18k(Buffer("x", 8, 2048, banks=4, copies=2)) == 8


def test_engine_buffers_follow_the_config():
    cfg = EngineConfig()
    bufs = {b.name: b for b in engine_buffers(cfg)}
    assert bufs["w_buf"].banks == cfg.pe_oc and bufs["w_buf"].word_bits == 8 * cfg.pe_ic
    assert bufs["in_buf"].copies == 2 and bufs["out_buf"].copies == 2
    use = estimate(cfg)
    assert use.bram18k == sum(use.buffers.values())
    assert use.dsp == cfg.pe_oc * cfg.pe_ic + 4 * cfg.rq_lanes


# --------------------------------------------------------------------------- SqueezeNet
@pytest.fixture(scope="module", params=["1.1", "1.0"])
def squeezenet_layers(request):
    rng = np.random.default_rng(0)
    mod = calibrate(from_onnx(squeezenet(request.param, seed=0)),
                    [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(2)],
                    progress=False)
    part, _ = partition_with_report(mod)
    (func,) = [f for f in part.functions.values()
               if f.attrs is not None and f.attrs.get("Codegen") == "zynq_squeeze"]
    return request.param, lower_function(func)


@pytest.mark.parametrize("board", ["zybo-z7-20", "zybo-z7-10"])
def test_squeezenet_fits_board(squeezenet_layers, board):
    version, lf = squeezenet_layers
    b = get_board(board)
    cfg = search_engine(b, [layer for layer, _, _ in lf.layers])
    use = estimate(cfg)
    assert use.bram18k <= b.bram18k and use.dsp <= b.dsp and use.lut <= b.lut
    for layer, _, _ in lf.layers:
        default_schedule(layer, cfg)  # every layer has a legal tile


def test_smaller_board_gets_smaller_engine(squeezenet_layers):
    _, lf = squeezenet_layers
    layers = [layer for layer, _, _ in lf.layers]
    big = estimate(search_engine(BOARDS["zybo-z7-20"], layers))
    small = estimate(search_engine(BOARDS["zybo-z7-10"], layers))
    assert small.dsp < big.dsp and small.bram18k < big.bram18k


@pytest.mark.parametrize("board", ["zybo-z7-20", "zybo-z7-10"])
def test_model_equals_simulation_every_layer(squeezenet_layers, board):
    _, lf = squeezenet_layers
    cfg = search_engine(BOARDS[board], [layer for layer, _, _ in lf.layers])
    tensors = {t: info.shape for t, info in lf.tensors.items()}
    prog = build_program(lf.layers, tensors, lf.inputs, lf.outputs, cfg)
    x = np.random.default_rng(1).integers(-128, 128, lf.tensors["in0"].shape, dtype=np.int8)
    _, stats = csim.run_program(prog, [x])
    assert list(stats.layer_cycles) == prog.layer_cycles
    assert stats.total_cycles == sum(prog.layer_cycles)


def test_squeezenet_1_1_zybo_efficiency(squeezenet_layers):
    version, lf = squeezenet_layers
    if version != "1.1":
        pytest.skip("the efficiency goal is stated for SqueezeNet 1.1")
    cfg = search_engine(BOARDS["zybo-z7-20"], [layer for layer, _, _ in lf.layers])
    assert cfg.clock_mhz == 100.0
    tensors = {t: info.shape for t, info in lf.tensors.items()}
    prog = build_program(lf.layers, tensors, lf.inputs, lf.outputs, cfg)
    eff = sum(layer.macs for layer, _, _ in lf.layers) / (
        cfg.pe_oc * cfg.pe_ic * sum(prog.layer_cycles))
    assert eff >= 0.6, f"modeled MAC-array efficiency {eff:.3f}"


# --------------------------------------------------------------------------- schedules
def test_oversized_schedule_names_the_buffer(squeezenet_layers):
    _, lf = squeezenet_layers
    tensors = {t: info.shape for t, info in lf.tensors.items()}
    huge = [TileSchedule(toc=1024, tic=512, th=64, tw=64)] * len(lf.layers)
    with pytest.raises(ScheduleError, match=r"needs \d+ in (in_buf|w_buf|acc_buf|out_buf|sq_buf|cv_buf|param_buf)"):
        build_program(lf.layers, tensors, lf.inputs, lf.outputs, EngineConfig(), huge)


def test_schedule_json_round_trip():
    s = TileSchedule(toc=32, tic=64, th=7, tw=13, loop_order="oc_outer", double_buffer=False)
    assert TileSchedule.from_json(json.loads(json.dumps(s.to_json()))) == s
    e = EngineConfig(pe_oc=8, pe_ic=4)
    assert EngineConfig.from_json(json.loads(json.dumps(e.to_json()))) == e
    with pytest.raises(ValueError, match="loop_order"):
        TileSchedule(toc=1, tic=1, th=1, tw=1, loop_order="diagonal")
    with pytest.raises(ValueError, match="th must be >= 1"):
        TileSchedule(toc=1, tic=1, th=0, tw=1)


def test_tuning_log_round_trip_and_errors(squeezenet_layers, tmp_path):
    _, lf = squeezenet_layers
    layers = [layer for layer, _, _ in lf.layers]
    cfg = EngineConfig()
    scheds = [default_schedule(layer, cfg) for layer in layers]
    log = tmp_path / "log.json"
    write_tuning_log(log, cfg, layers, scheds)
    assert read_tuning_log(log)["engine"] == cfg
    assert choose_schedules(cfg, layers, tuning_log=log) == scheds
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TuningLogError, match="not valid JSON"):
        read_tuning_log(tmp_path / "bad.json")
    (tmp_path / "v.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(TuningLogError, match="version"):
        read_tuning_log(tmp_path / "v.json")
    (tmp_path / "f.json").write_text(json.dumps({"version": 1, "layers": {"x": {"toc": 0}}}))
    with pytest.raises(TuningLogError, match="bad entry"):
        read_tuning_log(tmp_path / "f.json")
    with pytest.raises(TuningLogError, match="does not exist"):
        read_tuning_log(tmp_path / "missing.json")


def test_resource_model_matches_engine_pragmas():
    """Copies, banks and word widths of the model are what zsq_engine.cpp declares."""
    import re

    from zynq_squeeze import native

    src = (native.src_dir() / "zsq_engine.cpp").read_text()
    cfg = EngineConfig(pe_oc=13, pe_ic=5, rq_lanes=3)  # distinct values: no accidental match
    macro = {"ZSQ_PE_OC": cfg.pe_oc, "ZSQ_PE_IC": cfg.pe_ic, "ZSQ_RQ_LANES": cfg.rq_lanes}
    for buf in engine_buffers(cfg):
        decl = re.search(rf"static int(8|32)_t (?:\w+\[[^\]]+\](?:\[[^\]]+\])*, )?{buf.name}((?:\[[^\]]+\])+)", src)
        assert decl, buf.name
        elem_bits = int(decl.group(1))
        dims = re.findall(r"\[([^\]]+)\]", decl.group(2))
        assert (dims[0] == "2") == (buf.copies == 2), buf.name
        part = re.findall(rf"ARRAY_PARTITION variable = {buf.name} (cyclic factor = (\w+)|complete dim = (\d))", src)
        banks = 1
        for _, factor, complete_dim in part:
            banks *= macro[factor] if factor else cfg.pe_oc  # the complete dim is [pe_oc]
        assert banks == buf.banks, buf.name
        reshape = re.search(rf"ARRAY_RESHAPE variable = {buf.name} cyclic factor = (\w+)", src)
        word = elem_bits * (macro[reshape.group(1)] if reshape else 1)
        assert word == buf.word_bits, buf.name


def test_tuning_log_engine_that_does_not_fit_is_rejected(tmp_path):
    from zynq_squeeze.schedule.select import EngineFitError, choose_engine

    big = EngineConfig(pe_oc=32, pe_ic=16, w_buf_bytes=1 << 20)
    log = tmp_path / "big.json"
    log.write_text(json.dumps({"version": 1, "engine": big.to_json(), "layers": {}}))
    with pytest.raises(EngineFitError, match=r"needs \d+ bram18k but zybo-z7-20 has 280 \(largest buffer: w_buf"):
        choose_engine(BOARDS["zybo-z7-20"], [], tuning_log=log)
