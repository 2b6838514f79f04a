"""Schedules on real networks: the engine per board, the performance goal, tuning logs and
the errors a user sees for schedules and engines that do not fit."""
import json

import numpy as np
import pytest

import zynq_squeeze
from zynq_squeeze.boards import BOARDS
from zynq_squeeze.codegen.dae_program import build_dae_program
from zynq_squeeze.codegen.lower import lower_function
from zynq_squeeze.engine.dae_config import DaeConfig, DaeTile
from zynq_squeeze.errors import ScheduleError
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.frontend.models import squeezenet
from zynq_squeeze.schedule.select import (EngineFitError, TuningLogError, choose_engine,
                                          choose_tiles, read_tuning_log, write_tuning_log)
from zynq_squeeze.schedule.timing import simulate
from zynq_squeeze.toolchain.dae_sim import run_words
from zynq_squeeze.toolchain.relax_ext import _first_layer_mode, layer_cycles


@pytest.fixture(scope="module", params=["1.1", "1.0"])
def squeezenet_function(request):
    """(version, lowered function, its program layers/tensors) of SqueezeNet at 224."""
    mod = from_onnx(squeezenet(request.param, seed=0))
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(2)]
    pmod, _ = zynq_squeeze.partition(zynq_squeeze.calibrate(mod, calib, progress=False))
    (func,) = [f for _, f in pmod.functions.items()
               if f.attrs is not None and "Codegen" in f.attrs]
    lf = lower_function(func)
    return request.param, lf, _first_layer_mode(lf)


def _program(lf, mode, board):
    layers, tensors, _ = mode
    plain = [layer for layer, _, _ in layers]
    cfg = choose_engine(BOARDS[board], plain)
    tiles = choose_tiles(cfg, plain)
    return cfg, build_dae_program(cfg, layers, tiles, tensors, lf.inputs, lf.outputs)


@pytest.mark.parametrize("board", ["zybo-z7-20", "ultra96-v2"])
def test_model_equals_simulation_every_layer(squeezenet_function, board):
    """The fast model's per-layer cycles are the C simulation's executed ones, exactly."""
    _, lf, mode = squeezenet_function
    cfg, prog = _program(lf, mode, board)
    arena = np.zeros(prog.arena_words, np.uint64)
    res = run_words(cfg, prog.words, prog.weights, arena)
    model = simulate(cfg, prog.words)
    assert layer_cycles(prog, res.insn_end) == layer_cycles(prog, model.insn_end)
    assert res.cycles == model.cycles


def test_squeezenet_1_1_zybo_goal(squeezenet_function):
    """>= 30 fps at 100 MHz and >= 45 fps at 150 MHz on the Zybo Z7-20 (modeled)."""
    version, lf, mode = squeezenet_function
    if version != "1.1":
        pytest.skip("the goal is stated for SqueezeNet 1.1")
    cfg, prog = _program(lf, mode, "zybo-z7-20")
    assert cfg.k == 3
    board = BOARDS["zybo-z7-20"]
    for clock, goal in ((100.0, 30.0), (150.0, 45.0)):
        beat = cfg.beat_x100(board.ddr_gbps * 1e9 * 0.75, ports=3) if clock == 100.0 else \
            DaeConfig(clock_mhz=clock).beat_x100(board.ddr_gbps * 1e9 * 0.75, ports=3)
        fps = clock * 1e6 / simulate(cfg, prog.words, beat).cycles
        assert fps >= goal, f"{fps:.1f} fps at {clock:g} MHz"


def test_engine_fits_boards_with_margins(squeezenet_function):
    from zynq_squeeze.schedule.dae_engine_search import fit_report

    _, lf, mode = squeezenet_function
    plain = [layer for layer, _, _ in mode[0]]
    for board in ("zybo-z7-20", "pynq-z2", "ultra96-v2"):
        cfg = choose_engine(BOARDS[board], plain)
        rep = fit_report(cfg, BOARDS[board])
        assert rep["bram18k"]["percent"] <= 90 and rep["lut"]["percent"] <= 70
        assert rep["dsp"]["used"] <= BOARDS[board].dsp
    with pytest.raises(ScheduleError, match="zybo-z7-10.*LUT"):
        choose_engine(BOARDS["zybo-z7-10"], plain)


def test_tuning_log_round_trip_and_errors(squeezenet_function, tmp_path):
    _, lf, mode = squeezenet_function
    layers = [layer for layer, _, _ in mode[0]]
    cfg = DaeConfig()
    tiles = choose_tiles(cfg, layers)
    log = tmp_path / "log.json"
    write_tuning_log(log, cfg, layers, tiles)
    assert read_tuning_log(log)["engine"] == cfg
    assert choose_tiles(cfg, layers, tuning_log=log) == tiles
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TuningLogError, match="not valid JSON"):
        read_tuning_log(tmp_path / "bad.json")
    (tmp_path / "v.json").write_text(json.dumps({"version": 1}))
    with pytest.raises(TuningLogError, match="version"):
        read_tuning_log(tmp_path / "v.json")
    (tmp_path / "f.json").write_text(json.dumps({"version": 2, "layers": {"x": {"toc": 0}}}))
    with pytest.raises(TuningLogError, match="bad entry"):
        read_tuning_log(tmp_path / "f.json")
    with pytest.raises(TuningLogError, match="does not exist"):
        read_tuning_log(tmp_path / "missing.json")
    # a tile that overflows the engine is named with its buffer
    data = json.loads(log.read_text())
    sig = next(iter(data["layers"]))
    data["layers"][sig] = DaeTile(4096, 4096, 512, 512).to_json()
    log.write_text(json.dumps(data))
    with pytest.raises(ScheduleError, match=r"does not fit: \w+: needs \d+ rows per bank"):
        choose_tiles(cfg, layers, tuning_log=log)


def test_searched_schedules_pass_the_tuning_log_bounds(squeezenet_function, tmp_path):
    """What the engine search and the tiler choose reads back through the bounded
    tuning-log reader unchanged (the bounds refuse nothing a compile writes)."""
    _, _, mode = squeezenet_function
    layers = [layer for layer, _, _ in mode[0]]
    for board in ("zybo-z7-20", "pynq-z2", "ultra96-v2"):
        cfg = choose_engine(BOARDS[board], layers)
        tiles = choose_tiles(cfg, layers)
        log = tmp_path / f"{board}.json"
        write_tuning_log(log, cfg, layers, tiles)
        back = read_tuning_log(log)
        assert back["engine"] == cfg
        assert choose_tiles(cfg, layers, tuning_log=log) == tiles


def test_tuning_log_engine_that_does_not_fit_is_rejected(tmp_path):
    big = DaeConfig(k=4, w_rows=1 << 14)
    log = tmp_path / "big.json"
    log.write_text(json.dumps({"version": 2, "engine": big.to_json(), "layers": {}}))
    with pytest.raises(EngineFitError, match=r"engine k=4 .* needs \d+ \w+ but zybo-z7-20 has"):
        choose_engine(BOARDS["zybo-z7-20"], [], tuning_log=log)


def test_config_json_round_trip():
    c = DaeConfig(k=2, in_rows=1024)
    assert DaeConfig.from_json(json.loads(json.dumps(c.to_json()))) == c
    t = DaeTile(24, 16, 7, 13)
    assert DaeTile.from_json(t.to_json()) == t
    with pytest.raises(ValueError, match="th must be >= 1"):
        DaeTile(1, 1, 0, 1)
    with pytest.raises(ValueError, match="k must be 1..4"):
        DaeConfig(k=5)
