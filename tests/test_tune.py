"""zynq-squeeze tune: the space, the strategies, the log (resume, bad lines, Ctrl-C), the
compile that applies a log, the CLI end to end and one engine for two models.

Small models only (the digits model, a GraphBuilder net); SqueezeNet is in
benchmarks/tune_quality.py.
"""
from __future__ import annotations

import json
import warnings

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx_graphs import small_fire_net
from zynq_squeeze.cli import main
from zynq_squeeze.errors import OptionError, ScheduleError
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.frontend.models.digits import digits_model
from zynq_squeeze.schedule import dae_tiling, tuning_records
from zynq_squeeze.schedule.select import TuningLogError, read_tuning_log
from zynq_squeeze.tuning.candidate import Candidate
from zynq_squeeze.tuning.log import TuneLog
from zynq_squeeze.tuning.measure import cost_us, get_measurer
from zynq_squeeze.tuning.space import Point, TuneSpace, resource_reason
from zynq_squeeze.tuning.task import make_task
from zynq_squeeze.tuning.tuner import tune


@pytest.fixture(scope="module")
def task():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_task(from_onnx(digits_model()), "zybo-z7-20")


@pytest.fixture(scope="module")
def space(task):
    return TuneSpace(task)


@pytest.fixture(scope="module")
def small(task):
    """k = 3, two clocks, 3 tiles per layer: 2 x 3^4 = 162 points."""
    return {"ks": (3,), "clocks": (100.0, 150.0), "max_tiles": 3}


class Counting:
    """The model measurer, recording what it was asked to measure (and optionally
    interrupted at the ``stop_at``-th candidate, as Ctrl-C would)."""

    name = "model"
    batch_size = 1

    def __init__(self, stop_at=None, space=None):
        self.inner = get_measurer("model")
        self.keys, self.stop_at, self.space = [], stop_at, space

    def measure(self, task, candidates):
        out = []
        for c in candidates:
            if self.stop_at is not None and len(self.keys) + 1 >= self.stop_at:
                raise KeyboardInterrupt
            if self.space is not None:  # what reaches a measurer passed the checks
                assert resource_reason(c.engine, task.board) is None
                for layer in task.layers:
                    from zynq_squeeze.quantize.layers import layer_signature
                    assert dae_tiling.overflow(c.engine, layer, c.tile_map[
                        layer_signature(layer)]) is None
            self.keys.append(c.key())
            out += self.inner.measure(task, [c])
        return out


# ---- the space ---------------------------------------------------------------------
def test_every_tile_fits_alone(space):
    for k in space.ks:
        for i, tiles in enumerate(space.tiles[k]):
            assert tiles, f"k={k}: layer {i} has no tile"
            for t in tiles:
                eng = space._engine_from_need(k, 100.0, space.needs(k, i, t))
                assert dae_tiling.overflow(eng, space.layers[i], t) is None
                assert resource_reason(eng, space.board) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_candidates_fit_their_engine(space, data):
    """Any point's engine holds its tiles (depths derived from them); a candidate the
    space's check accepts is within the resource model's limits, and one it refuses
    names the resource or buffer."""
    e = data.draw(st.integers(0, len(space.engines) - 1))
    k = space.engines[e][0]
    idx = tuple(data.draw(st.integers(0, len(ts) - 1)) for ts in space.tiles[k])
    cand = space.candidate(Point(e, idx))
    for layer, sig in zip(space.layers, space.sigs):
        assert dae_tiling.overflow(cand.engine, layer, cand.tile_map[sig]) is None
    why = space.check(cand)
    if why is None:
        assert resource_reason(cand.engine, space.board) is None
    else:
        assert why.startswith("resources: ") and ("BRAM18K" in why or "LUT" in why)


def test_only_checked_candidates_are_measured(task, tmp_path):
    sp = TuneSpace(task)
    m = Counting(space=sp)
    res = tune(task, trials=25, log=tmp_path / "t.jsonl", strategy="random", measure=m,
               progress=False)
    assert res.trials == len(m.keys) == 25
    recs = tuning_records.read_records(tmp_path / "t.jsonl")
    rejected = [r for r in recs if (r.error or "").startswith("rejected: ")]
    assert len(rejected) == res.rejected  # every rejection is logged with its reason
    assert all("resources:" in r.error or "overflows" in r.error for r in rejected)


def test_space_errors(task):
    with pytest.raises(ScheduleError, match="k=4 does not fit zybo-z7-20: 288 DSP48 > 220"):
        TuneSpace(task, ks=(4,))
    with pytest.raises(OptionError, match="unknown measurer"):
        get_measurer("nope")
    with pytest.raises(OptionError, match="unknown strategy"):
        tune(task, trials=2, log=None, strategy="nope", progress=False)


# ---- strategies --------------------------------------------------------------------
def test_strategies_find_the_optimum_of_a_small_space(task, small):
    grid = tune(task, trials=10_000, log=None, strategy="grid", space_options=small,
                progress=False)
    sp = grid.space
    assert sp.size() == 162
    assert grid.trials == 162 + 1  # every point, and the default (outside the sub-space)
    optimum = grid.best_cost_us
    budget = 60
    rnd = tune(task, trials=budget, log=None, strategy="random", space_options=small,
               progress=False, seed=1)
    for name in ("anneal", "xgb"):
        r = tune(task, trials=budget, log=None, strategy=name, space_options=small,
                 progress=False, seed=1)
        assert r.best_cost_us == pytest.approx(optimum), name
        assert r.best_cost_us <= rnd.best_cost_us, name
    auto = tune(task, trials=200, log=None, strategy="auto", space_options=small,
                progress=False)
    assert auto.strategy == "grid" and auto.best_cost_us == pytest.approx(optimum)


def test_tuned_is_faster_than_default(task):
    r = tune(task, trials=40, log=None, strategy="xgb", progress=False)
    assert r.default is not None and r.speedup > 1.0


# ---- the log -----------------------------------------------------------------------
def test_resume_skips_logged_candidates(task, small, tmp_path):
    log = tmp_path / "tune.jsonl"
    a = Counting()
    r1 = tune(task, trials=12, log=log, strategy="random", measure=a, space_options=small,
              progress=False)
    b = Counting()
    r2 = tune(task, trials=12, log=log, strategy="random", measure=b, space_options=small,
              progress=False)
    assert r1.trials == 12 and r2.trials == 12 and r2.resumed == 12
    assert not set(a.keys) & set(b.keys)
    assert len(log.read_text().splitlines()) == 24 + r1.rejected + r2.rejected
    c = Counting()
    tune(task, trials=3, log=log, strategy="random", measure=c, space_options=small,
         progress=False, resume=False)
    assert c.keys[0] in a.keys  # without resume, the default is measured again


def test_corrupt_and_foreign_lines_are_skipped_with_a_warning(task, tmp_path):
    log = tmp_path / "tune.jsonl"
    tune(task, trials=4, log=log, strategy="random", progress=False)
    good = log.read_text().splitlines()
    with open(log, "a") as f:
        f.write('{"some other tool": 1}\n')          # foreign
        f.write("not json at all\n")                 # corrupt
        f.write(good[0][: len(good[0]) // 2])        # cut short by a crash (no newline)
    with pytest.warns(UserWarning) as w:
        logged = TuneLog(log, task, "model").logged()
    assert len(logged) == len(good)
    n = len(good)
    msgs = [str(x.message).split(", ", 1)[1] for x in w]
    assert len(msgs) == 3
    assert msgs[0].startswith(f"line {n + 1}: skipped (not a zynq-squeeze tuning record")
    assert msgs[1].startswith(f"line {n + 2}: skipped (Expecting value")
    assert msgs[2].startswith(f"line {n + 3}: skipped (")
    with pytest.warns(UserWarning, match="skipped"):
        r = tune(task, trials=2, log=log, strategy="random", progress=False)
    assert r.resumed == len(good)
    # the next record starts on a fresh line: only the three bad lines are skipped
    with pytest.warns(UserWarning) as w:
        recs = tuning_records.read_records(log)
    assert len(w) == 3 and len(recs) == len(good) + 2


def test_ctrl_c_keeps_every_completed_record(task, tmp_path):
    log = tmp_path / "tune.jsonl"
    m = Counting(stop_at=6)
    with pytest.raises(KeyboardInterrupt):
        tune(task, trials=20, log=log, strategy="anneal", measure=m, progress=False)
    lines = log.read_text().splitlines()
    recs = [tuning_records.parse_record(json.loads(s)) for s in lines]
    measured = [r for r in recs if not (r.error or "").startswith("rejected")]
    assert [r.key for r in measured] == m.keys and len(m.keys) == 5
    assert all(r.ok for r in measured)


def test_read_tuning_log_of_a_measurement_log(task, tmp_path):
    log = tmp_path / "tune.jsonl"
    r = tune(task, trials=10, log=log, strategy="anneal", progress=False)
    best = read_tuning_log(log, board="zybo-z7-20")
    assert best["engine"] == r.best.candidate.engine
    for layer in task.layers:
        from zynq_squeeze.quantize.layers import layer_signature
        assert dae_tiling.overflow(best["engine"], layer,
                                   best["layers"][layer_signature(layer)]) is None
    with pytest.raises(TuningLogError, match="no successful measurement for board pynq-z2"):
        read_tuning_log(log, board="pynq-z2")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(TuningLogError, match="no successful measurement"):
        read_tuning_log(empty)


def test_sim_measurer_equals_model(task, small):
    sp = TuneSpace(task, **small)
    cand = sp.candidate(Point(0, (0, 1, 2, 0)))
    sim, = get_measurer("sim").measure(task, [cand])
    mod, = get_measurer("model").measure(task, [cand])
    assert sim.ok and sim.cycles == mod.cycles and sim.detail == mod.detail
    bad = Candidate.make(cand.engine, {})
    out, = get_measurer("sim").measure(task, [bad])
    assert not out.ok and "no tile" in out.error


# ---- several models, one engine ----------------------------------------------------
def _second_model():
    return small_fire_net()


def test_two_models_one_engine(tmp_path):
    models = {"digits": from_onnx(digits_model()), "net": from_onnx(_second_model())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = tune(models, trials=15, log=tmp_path / "t.jsonl", strategy="xgb",
                 weights={"net": 2.0}, progress=False)
    t = r.task
    assert [n for n, _ in t.models] == ["digits", "net"]
    best = r.best
    sigs = set(best.candidate.tile_map)
    from zynq_squeeze.quantize.layers import layer_signature
    for _, layers in t.models:
        assert {layer_signature(layer) for layer in layers} <= sigs
    per = best.detail["models"]
    assert best.cycles == per["digits"]["cycles"] + per["net"]["cycles"]
    clock = best.candidate.engine.clock_mhz
    assert cost_us(t, best) == pytest.approx(
        (per["digits"]["cycles"] + 2 * per["net"]["cycles"]) / clock)
    # each model compiles with the shared log's engine
    for name in ("digits", "net"):
        assert read_tuning_log(tmp_path / "t.jsonl", board="zybo-z7-20")["engine"] \
            == best.candidate.engine


# ---- CLI end to end + compile with the log -----------------------------------------
def test_cli_tune_then_compile_applies_the_best(tmp_path, capsys):
    onnx.save(digits_model(), str(tmp_path / "digits.onnx"))
    log = tmp_path / "tune.jsonl"
    rc = main(["tune", str(tmp_path / "digits.onnx"), "--board", "zybo-z7-20",
               "--trials", "12", "--log", str(log), "--clocks", "100,125", "--json", "--quiet"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["trials"] == 12 and summary["best_cost_us"] > 0
    recs = tuning_records.read_records(log)
    best = tuning_records.best_schedule(recs, board="zybo-z7-20")
    rc = main(["compile", str(tmp_path / "digits.onnx"), "--out", str(tmp_path / "out"),
               "--tuning-log", str(log), "--quiet"])
    assert rc == 0
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["engine"] == best["engine"].to_json()
    for layer in rep["layers"]:
        assert layer["tile"] == best["layers"][layer["signature"]].to_json()
    tun = rep["tuning"]
    assert tun["measured"] == 12 and tun["chosen"]["engine"] == best["engine"].to_json()
    assert tun["default"] is not None and tun["speedup"] >= 1.0
    assert "<h2>Tuning</h2>" in (tmp_path / "out" / "report.html").read_text()


def test_cli_tune_errors(tmp_path, capsys):
    onnx.save(digits_model(), str(tmp_path / "digits.onnx"))
    rc = main(["tune", str(tmp_path / "digits.onnx"), "--rpc-tracker", "h:9190",
               "--log", str(tmp_path / "t.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [("zynq-squeeze: error: --rpc-tracker and --rpc-key go with "
                                "--measure rpc")]
    rc = main(["tune", str(tmp_path / "digits.onnx"), "--weights", "x", "--log",
               str(tmp_path / "t.jsonl")])
    assert rc == 2 and "--weights expects" in capsys.readouterr().err


# ---- review fixes: what a log applies, concurrent writers, transient failures ------------
def _digits_log(task, tmp_path):
    log = tmp_path / "tune.jsonl"
    tune(task, trials=6, log=log, strategy="anneal", progress=False)
    return log, [json.loads(s) for s in log.read_text().splitlines()]


def test_a_record_of_another_model_or_a_worse_measurer_is_not_applied(task, tmp_path):
    log, lines = _digits_log(task, tmp_path)
    best = read_tuning_log(log, board="zybo-z7-20", layers=task.layers)
    ok = next(o for o in lines if o["cycles"])
    other = json.loads(json.dumps(ok))  # another model's record, 100x cheaper
    other["candidate"]["tiles"] = {"conv:1x2x2|1k1x1s1x1p0.0.0.0": {"toc": 8, "tic": 8,
                                                                     "th": 1, "tw": 1}}
    other["candidate"]["engine"]["clock_mhz"] = 125.0
    other["cost_us"], other["key"] = 0.01, "f" * 16
    with open(log, "a") as f:
        f.write(json.dumps(other) + "\n")
    assert read_tuning_log(log, board="zybo-z7-20", layers=task.layers) == best
    with pytest.raises(TuningLogError, match="covering this model"):
        read_tuning_log(log, board="zybo-z7-20", layers=task.layers[:1] + [
            _layer_of_other_model()])
    # a model record cheaper than every hls record: the hls records apply
    hls = json.loads(json.dumps(ok))
    hls["measurer"], hls["cost_us"], hls["key"] = "hls", 1e9, "e" * 16
    with open(log, "a") as f:
        f.write(json.dumps(hls) + "\n")
    got = tuning_records.best_schedule(tuning_records.read_records(log), board="zybo-z7-20")
    assert got["record"].measurer == "hls"


def _layer_of_other_model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = make_task(from_onnx(_second_model()), "zybo-z7-20")
    from zynq_squeeze.quantize.layers import layer_signature
    mine = {layer_signature(la) for la in make_task(from_onnx(digits_model())).layers}
    return next(la for la in t.layers if layer_signature(la) not in mine)


def test_report_names_the_basis_of_its_figures(task, tmp_path):
    from zynq_squeeze.report.tuning import tuning_summary
    log, _ = _digits_log(task, tmp_path)
    s = tuning_summary(log, "zybo-z7-20")
    assert s["basis"].startswith("modeled") and "timing" in s["basis"]


def test_concurrent_writers_and_a_cut_line_keep_every_record_whole(task, tmp_path):
    import threading
    log = tmp_path / "t.jsonl"
    log.write_text('{"zsq_tune": 1, "cut sh')  # a crash mid-line
    space = TuneSpace(task, ks=(3,), clocks=(100.0,), max_tiles=2)
    m, = get_measurer("model").measure(task, [space.default()])
    m.detail["pad"] = "x" * 20000  # > any stdio buffer: one write or interleaving shows

    def writer():
        with TuneLog(log, task, "model") as tl:
            for _ in range(20):
                tl.append(m, 1.0)
    ts = [threading.Thread(target=writer) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        recs = tuning_records.read_records(log)
    assert len(recs) == 60 and len(w) == 1 and "line 1" in str(w[0].message)


def test_transient_failures_are_measured_again_on_resume(task, tmp_path):
    from zynq_squeeze.tuning.candidate import Measurement

    class Down:
        name, batch_size = "model", 1

        def measure(self, task, cands):
            return [Measurement(c, "model", error="RPC tracker unreachable",
                                detail={"transient": True}) for c in cands]
    log = tmp_path / "t.jsonl"
    tune(task, trials=3, log=log, strategy="anneal", measure=Down(), progress=False)
    m = Counting()
    r = tune(task, trials=3, log=log, strategy="anneal", measure=m, progress=False)
    assert r.resumed == 0 and r.default is not None
    assert r.default.candidate.key() in m.keys
