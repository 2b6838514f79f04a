"""The zynq-squeeze command line: compile, run --reference, schedule, hls-report, errors."""
from __future__ import annotations

import json
import subprocess
import re
import sys

import numpy as np
import onnx
import pytest
from onnx_graphs import small_fire_net

from zynq_squeeze.cli import main


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    onnx.save(small_fire_net(softmax=True), str(d / "net.onnx"))
    calib = np.random.default_rng(0).standard_normal((6, 1, 3, 19, 19)).astype(np.float32)
    np.save(d / "calib.npy", calib)
    rc = main(["compile", str(d / "net.onnx"), "--board", "zybo-z7-20", "--out", str(d / "out"),
               "--calib", str(d / "calib.npy"), "--quiet"])
    assert rc == 0
    return d


def test_compile_writes_report_and_sources(compiled):
    out = compiled / "out"
    rep = json.loads((out / "report.json").read_text())
    assert rep["board"] == "zybo-z7-20" and rep["clock_mhz"] == 100.0
    off = rep["offload"]
    assert off["macs_offloaded"] == off["macs_total"] > 0
    assert off["patterns"] == {"zynq_squeeze.conv_pool": 2, "zynq_squeeze.fire": 1}
    assert [c["op"] for c in off["cpu_ops"]] == ["relax.nn.softmax"]
    assert all(c["reason"] for c in off["cpu_ops"])
    for key in ("name", "kind", "tile", "cycles", "bram18k", "dsp"):
        assert all(key in layer for layer in rep["layers"])
    res = rep["resources"]
    for key in ("bram18k", "dsp", "lut"):
        assert res[key]["used"] <= res[key]["available"]
    perf = rep["performance"]
    assert perf["accel_cycles"] == sum(layer["cycles"] for layer in rep["layers"])
    assert perf["latency_ms"] == pytest.approx(perf["accel_cycles"] / 1e5, rel=1e-3)
    assert 0 < perf["efficiency"] <= 1 and perf["roofline_fps"] > perf["fps"] > 0
    src = out / "src"
    assert (src / "zsq_dae_config.h").is_file() and (src / "zsq_glue.cc").is_file()
    assert list(src.glob("*_wgt.bin")) and list(src.glob("*_insn.bin"))
    assert (out / "model.so").is_file()


def test_run_with_reference(compiled, capsys):
    x = np.random.default_rng(1).standard_normal((1, 3, 19, 19)).astype(np.float32)
    np.save(compiled / "x.npy", x)
    rc = main(["run", str(compiled / "out"), "--input", str(compiled / "x.npy"),
               "--output", str(compiled / "y.npy"), "--reference"])
    assert rc == 0
    y = np.load(compiled / "y.npy")
    assert y.shape == (1, 10) and abs(y.sum() - 1) < 1e-4
    agr = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert agr["cosine"] > 0.99 and agr["top1_agreement"] == 1.0


def test_run_rejects_wrong_input(compiled, capsys):
    np.save(compiled / "bad.npy", np.zeros((1, 3, 18, 19), np.float32))
    rc = main(["run", str(compiled / "out"), "--input", str(compiled / "bad.npy"),
               "--output", str(compiled / "o.npy")])
    assert rc == 2
    assert "expected float32 of shape (1, 3, 19, 19)" in capsys.readouterr().err


def test_schedule_table(compiled, capsys):
    assert main(["schedule", str(compiled / "out")]) == 0
    text = capsys.readouterr().out
    assert "toc" in text and "efficiency" in text and "_l0" in text


def test_bad_model_file(tmp_path, capsys):
    (tmp_path / "x.onnx").write_bytes(b"\x08\x01garbage")
    rc = main(["compile", str(tmp_path / "x.onnx"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "zynq-squeeze: error:" in capsys.readouterr().err


def test_unknown_board(compiled, capsys):
    rc = main(["compile", str(compiled / "net.onnx"), "--board", "zedboard", "--out",
               str(compiled / "o2"), "--quiet"])
    assert rc == 2
    assert "unknown board 'zedboard'" in capsys.readouterr().err


def test_errors_from_inside_the_compile_are_one_line(compiled, capsys):
    """A bad tuning log fails inside tvm.compile: the user sees one line, not a traceback."""
    bad = compiled / "bad_log.json"
    bad.write_text('{"version": 2, "layers": {"x": {"toc": 0}}}')
    rc = main(["compile", str(compiled / "net.onnx"), "--tuning-log", str(bad), "--out",
               str(compiled / "o3"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("zynq-squeeze: error: tuning log") and "bad entry" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("clock", ["0", "-5", "nan", "1e9"])
def test_bad_clock_is_refused_before_any_file(compiled, capsys, clock):
    out = compiled / f"clk_{clock}"
    rc = main(["compile", str(compiled / "net.onnx"), "--clock", clock, "--out", str(out),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("zynq-squeeze: error: clock") and "MHz is outside" in err
    assert not out.exists()


def test_run_names_the_file_it_wrote(compiled, capsys):
    x = np.random.default_rng(3).standard_normal((1, 3, 19, 19)).astype(np.float32)
    np.save(compiled / "x2.npy", x)
    assert main(["run", str(compiled / "out"), "--input", str(compiled / "x2.npy"),
                 "--output", str(compiled / "y2")]) == 0
    assert (compiled / "y2.npy").is_file()
    assert f"-> {compiled / 'y2.npy'}" in capsys.readouterr().out


def test_damaged_compile_directory_gives_one_line(compiled, capsys, tmp_path):
    """A truncated model.so would crash the process when loaded; a corrupt manifest would
    give a traceback: both are one-line errors."""
    import shutil

    d = tmp_path / "copy"
    shutil.copytree(compiled / "out", d)
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 19, 19), np.float32))
    lib = d / "model.so"
    lib.write_bytes(lib.read_bytes()[:4096])
    rc = main(["run", str(d), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y")])
    err = capsys.readouterr().err
    assert rc == 2 and "is not the library compiled into this directory" in err
    (d / "manifest.json").write_text("{not json")
    rc = main(["run", str(d), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y")])
    err = capsys.readouterr().err
    assert rc == 2 and "manifest.json is damaged" in err and "Traceback" not in err


def test_interrupt_and_closed_pipe_are_quiet(monkeypatch, capsys):
    import zynq_squeeze.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    def closed_pipe(args):
        raise BrokenPipeError

    for func, rc, msg in ((interrupted, 130, "zynq-squeeze: interrupted\n"), (closed_pipe, 141, "")):
        p = cli.parser()
        monkeypatch.setattr(cli, "parser", lambda p=p, func=func: _with_func(p, func))
        assert cli.main(["schedule", "x"]) == rc
        assert capsys.readouterr().err == msg


def _with_func(p, func):
    orig = p.parse_args

    def parse(argv=None):
        a = orig(argv)
        a.func = func
        return a

    p.parse_args = parse
    return p


def test_report_names_the_calibration(compiled):
    rep = json.loads((compiled / "out" / "report.json").read_text())
    assert rep["calibration"] and "sample" in rep["calibration"]


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "zynq_squeeze.cli", "--help"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "demo" in out.stdout


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures" / "csynth"


def test_hls_report_summary_and_json(capsys):
    assert main(["hls-report", str(FIXTURES / "vitis2022_2" / "csynth.xml")]) == 0
    assert "DSP" in capsys.readouterr().out
    assert main(["hls-report", str(FIXTURES / "vivado2020_1" / "csynth.xml"), "--json"]) == 0
    assert "part" in json.loads(capsys.readouterr().out)


def test_hls_report_compared_with_compile_dir(compiled, capsys, tmp_path):
    from zynq_squeeze.codegen.hls_project import PROJECT, SOLUTION

    out = compiled / "out"
    rep_dir = out / "hls" / PROJECT / SOLUTION / "syn" / "report"
    rep_dir.mkdir(parents=True, exist_ok=True)
    rep_dir.joinpath("csynth.xml").write_bytes((FIXTURES / "vitis2022_2" / "csynth.xml").read_bytes())
    assert main(["hls-report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "resource" in text and "bram18k" in text and "TOTAL" in text


def test_hls_report_errors(tmp_path, capsys):
    assert main(["hls-report", str(FIXTURES / "truncated_csynth.xml")]) == 2
    assert "not well-formed" in capsys.readouterr().err
    (tmp_path / "report.json").write_text("{}")
    assert main(["hls-report", str(tmp_path)]) == 2
    assert "make csynth" in capsys.readouterr().err


def test_compile_dir_hls_testbench_passes(compiled):
    import shutil

    hls = compiled / "out" / "hls"
    assert (hls / "run_hls.tcl").is_file() and (hls / "block_design.tcl").is_file()
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    run = subprocess.run(["make", "-C", str(hls), f"PYTHON={sys.executable}", "tb"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS" in run.stdout
    assert "(Python simulation -1)" not in run.stdout  # the cycles are checked too


def test_report_html_written(compiled):
    html = (compiled / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "_l0" in html  # + end to end


def test_demo_as_in_the_readme(tmp_path, monkeypatch, capsys):
    """`zynq-squeeze demo` with no arguments: relative default output directory."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--quiet"]) == 0
    text = capsys.readouterr().out
    m = re.search(r"over 8 images: cosine ([0-9.]+), top-1 agreement (\d+)%", text)
    # random weights: the logits of 1000 classes are close, so top-1 is only a loose check
    assert m and float(m.group(1)) > 0.99 and int(m.group(2)) >= 50, text
    rep = json.loads((tmp_path / "zsq_demo" / "report.json").read_text())
    assert rep["offload"]["macs_offloaded"] == rep["offload"]["macs_total"] == 349_151_936
    assert (tmp_path / "zsq_demo" / "hls" / "run_hls.tcl").is_file()
