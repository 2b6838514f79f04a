"""Robustness of the command line and its files (issue 8): bad input is one line
``zynq-squeeze: error: ...`` and a non-zero exit, never a traceback; output and cache
directories are checked before anything is written; cache entries are whole or absent."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import zynq_squeeze.cli as cli
from onnx_graphs import small_fire_net
from zynq_squeeze.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "csynth"
SHAPE = (1, 3, 19, 19)


def _one_line_error(capsys, *needles) -> str:
    err = capsys.readouterr().err
    assert err.startswith("zynq-squeeze: error: "), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("robust")
    onnx.save(small_fire_net(SHAPE), str(d / "net.onnx"))
    np.save(d / "calib.npy", np.random.default_rng(0).standard_normal((3, *SHAPE))
            .astype(np.float32))
    np.save(d / "x.npy", np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32))
    assert main(["compile", str(d / "net.onnx"), "--out", str(d / "out"),
                 "--calib", str(d / "calib.npy"), "--quiet"]) == 0
    return d


def _copy(compiled, tmp_path) -> Path:
    d = tmp_path / "copy"
    shutil.copytree(compiled / "out", d)
    return d


# --------------------------------------------------------------------------- tuning logs
def _log_with(compiled, tmp_path, where, patch) -> tuple[Path, str]:
    data = json.loads((compiled / "out" / "schedule.json").read_text())
    key = min(data["layers"])
    if where == "engine":
        data["engine"].update(patch)
    else:
        data["layers"][key].update(patch)
    log = tmp_path / "edited.json"
    log.write_text(json.dumps(data))
    return log, key


@pytest.mark.parametrize("where,patch,field,allowed", [
    ("layer", {"th": 2 ** 31 - 1}, "th", "[1, 16384]"),
    ("layer", {"tw": 2 ** 31 - 1}, "tw", "[1, 16384]"),
    ("layer", {"th": 2.5}, "th", "[1, 16384]"),
    ("layer", {"toc": "3"}, "toc", "[1, 32768]"),
    ("layer", {"tic": True}, "tic", "[1, 32768]"),
    ("layer", {"toc": 0}, "toc", "[1, 32768]"),
    ("layer", {"double_buffer": "no"}, "double_buffer", "known: th, tic, toc, tw"),
    ("engine", {"pe_oc": 0}, "pe_oc", "pe_oc is 8 x k"),
    ("engine", {"clock_mhz": 0}, "clock_mhz", "[1, 500] MHz"),
    ("engine", {"clock_mhz": float("nan")}, "clock_mhz", "[1, 500] MHz"),
    ("engine", {"clock_mhz": "100"}, "clock_mhz", "[1, 500] MHz"),
    ("engine", {"k": 0}, "k", "[1, 4]"),
    ("engine", {"k": 2.0}, "k", "[1, 4]"),
    ("engine", {"in_rows": 2 ** 31 - 1}, "in_rows", "[16, 1048576]"),
    ("engine", {"outstanding": 0}, "outstanding", "[1, 256]"),
    ("engine", {"queue_depth": False}, "queue_depth", "[1, 1048576]"),
])
def test_tuning_log_fields_are_bounded_on_read(compiled, tmp_path, where, patch, field,
                                                allowed):
    from zynq_squeeze.schedule.select import TuningLogError, read_tuning_log

    log, key = _log_with(compiled, tmp_path, where, patch)
    with pytest.raises(TuningLogError) as ei:
        read_tuning_log(log)
    msg = str(ei.value)
    assert str(log) in msg and repr(field) in msg and allowed in msg, msg
    assert (f"layer {key!r}" if where == "layer" else "engine:") in msg, msg


def test_tuning_log_structure_errors(tmp_path):
    from zynq_squeeze.schedule.select import TuningLogError, read_tuning_log

    for text, needle in (('{"version": 2.0}', "version"), ('{"version": true}', "version"),
                         ('{"version": 2, "layers": []}', '"layers" must be an object'),
                         ('{"version": 2, "layers": {"a": 3}}', "layer 'a'"),
                         ('{"version": 2, "layers": {"a": {"toc": 8}}}', "'tic' is missing"),
                         ('{"version": 2, "layer": {}}', "unknown entry 'layer'"),
                         ('{"version": 2, "engine": [1]}', "engine:")):
        (tmp_path / "l.json").write_text(text)
        with pytest.raises(TuningLogError, match="tuning log .*l.json") as ei:
            read_tuning_log(tmp_path / "l.json")
        assert needle in str(ei.value), (text, str(ei.value))
    # an engine of null (a model with nothing offloaded) is no engine, not an error
    (tmp_path / "l.json").write_text('{"version": 2, "engine": null, "layers": {}}')
    assert read_tuning_log(tmp_path / "l.json") == {"engine": None, "layers": {}}


def test_bad_tuning_log_fails_before_the_output_directory(compiled, tmp_path, capsys):
    log, key = _log_with(compiled, tmp_path, "layer", {"th": 2 ** 31 - 1})
    out = tmp_path / "o"
    rc = main(["compile", str(compiled / "net.onnx"), "--tuning-log", str(log), "--out",
               str(out), "--quiet"])
    assert rc == 2
    _one_line_error(capsys, "tuning log", repr(key), "'th'", "[1, 16384]")
    assert not out.exists()


# --------------------------------------------------------------------------- options
@pytest.mark.parametrize("argv,needles", [
    (["--clock", "abc"], ["argument --clock", "invalid float value"]),
    (["--clock", "inf"], ["MHz is outside"]),
    (["--board", "zedboard"], ["unknown board 'zedboard'", "zybo-z7-20"]),
])
def test_bad_options_are_one_line_and_write_nothing(compiled, tmp_path, capsys, argv,
                                                    needles):
    out = tmp_path / "o"
    rc = main(["compile", str(compiled / "net.onnx"), "--out", str(out), "--quiet", *argv])
    assert rc == 2
    _one_line_error(capsys, *needles)
    assert not out.exists()


def test_usage_errors_are_one_line(capsys):
    assert main(["compile"]) == 2
    _one_line_error(capsys, "required", "--help")
    assert main(["no-such-command"]) == 2
    _one_line_error(capsys, "invalid choice")


def test_board_help_lists_the_boards(capsys):
    from zynq_squeeze.boards import BOARDS

    with pytest.raises(SystemExit) as ei:
        main(["compile", "--help"])
    assert ei.value.code == 0
    text = capsys.readouterr().out
    for name in BOARDS:
        assert name in text
    assert "previous compile" in " ".join(text.split())  # the --out policy is in the help


# --------------------------------------------------------------------------- warnings
def test_warnings_print_as_one_line(monkeypatch, capsys):
    def warn(args):
        warnings.warn("zynq_squeeze: no calibration data given; using the synthetic\n"
                      "calibration set", UserWarning)
        return 0

    p = cli.parser()
    orig = p.parse_args

    def parse(argv=None):
        a = orig(argv)
        a.func = warn
        return a

    p.parse_args = parse
    monkeypatch.setattr(cli, "parser", lambda: p)
    before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert cli.main(["schedule", "x"]) == 0
    assert warnings.showwarning is before
    err = capsys.readouterr().err
    assert err == ("zynq-squeeze: warning: no calibration data given; using the synthetic "
                   "calibration set\n")


# --------------------------------------------------------------------------- compile --out
def test_out_is_an_existing_file(compiled, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("mine")
    assert main(["compile", str(compiled / "net.onnx"), "--out", str(f), "--quiet"]) == 2
    _one_line_error(capsys, "is not a directory")
    assert f.read_text() == "mine"


def test_prepare_out_dir_policy(tmp_path):
    from zynq_squeeze.errors import OptionError

    # a previous compile: its files go, the user's stay, inputs named in keep stay
    d = tmp_path / "prev"
    (d / "src").mkdir(parents=True)
    (d / "hls" / "proj").mkdir(parents=True)
    for n in ("manifest.json", "model.so", "report.json", "schedule.json", "src/zsq_0_x.bin",
              "hls/proj/csynth.xml", "mine.txt", "y.npy"):
        (d / n).write_text("x")
    user_dir = tmp_path / "user_src"
    user_dir.mkdir()
    (user_dir / "keep.c").write_text("x")
    lines = []
    cli.prepare_out_dir(d, keep=[d / "schedule.json"], log=lines.append)
    assert sorted(p.name for p in d.iterdir()) == [".zynq-squeeze", "mine.txt",
                                                   "schedule.json", "y.npy"]
    assert "src/" in lines[0] and "hls/" in lines[0]
    # a failed compile left the marker only: recognized, cleaned
    (d / "src").symlink_to(user_dir)
    cli.prepare_out_dir(d, log=lines.append)
    assert not (d / "src").exists() and (user_dir / "keep.c").is_file()  # link, not target
    # another program's directory holding names compile writes: refused, nothing touched
    other = tmp_path / "other"
    (other / "src").mkdir(parents=True)
    (other / "report.json").write_text("theirs")
    with pytest.raises(OptionError, match="not a zynq-squeeze compile directory.*src"):
        cli.prepare_out_dir(other)
    assert (other / "report.json").read_text() == "theirs" and (other / "src").is_dir()
    assert not (other / ".zynq-squeeze").exists()
    # any other directory without those names is fine; its files stay
    free = tmp_path / "free"
    free.mkdir()
    (free / "notes.txt").write_text("x")
    cli.prepare_out_dir(free)
    assert (free / "notes.txt").is_file() and (free / ".zynq-squeeze").is_file()


def test_recompile_leaves_no_previous_files(compiled, tmp_path, capsys):
    """A second compile into a used directory: stale sources of the previous model are
    gone, the user's files stay, out/schedule.json can be the tuning log; without
    --calib the calibration warning is one line."""
    d = _copy(compiled, tmp_path)
    (d / "src" / "zsq_9_deadbeef_insn.bin").write_bytes(b"old")
    (d / "hls" / "old_project").mkdir()
    (d / "notes.txt").write_text("mine")
    rc = main(["compile", str(compiled / "net.onnx"), "--out", str(d), "--quiet",
               "--tuning-log", str(d / "schedule.json")])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert not (d / "src" / "zsq_9_deadbeef_insn.bin").exists()
    assert not (d / "hls" / "old_project").exists()
    assert (d / "notes.txt").read_text() == "mine"
    assert (d / "manifest.json").is_file() and (d / "src" / "zsq_glue.cc").is_file()
    warn = [ln for ln in cap.err.splitlines() if "calibration" in ln]
    assert warn and warn[0].startswith("zynq-squeeze: warning: no calibration data given")
    assert "UserWarning" not in cap.err and ".py:" not in cap.err


def _unprivileged() -> list[str]:
    """The command prefix that runs the CLI as a user who cannot write root's 0755 /
    0555 directories; skips when that is impossible."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a directory read-only")
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # the checkout may sit in a directory only root can enter (mktemp -d is 0700)
    probe = subprocess.run([*prefix, sys.executable, "-c", "import zynq_squeeze"],
                           capture_output=True, text=True, cwd="/")
    if probe.returncode != 0:
        pytest.skip("the unprivileged user cannot import zynq_squeeze from this checkout: "
                    + (probe.stderr.strip().splitlines() or ["?"])[-1])
    return prefix


@pytest.fixture
def shared_dir(compiled):
    """A directory anyone may read (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="zsq_robust_"))
    d.chmod(0o755)
    shutil.copy(compiled / "net.onnx", d / "net.onnx")
    (d / "net.onnx").chmod(0o644)
    cache = d / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    yield d
    for p in d.rglob("*"):
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("what", ["out", "new-out", "cache"])
def test_read_only_output_or_cache_directory(shared_dir, what):
    """An existing read-only --out, a new --out under a read-only parent and a read-only
    $ZSQ_CACHE_DIR: one line each, nothing written."""
    prefix = _unprivileged()
    ro = shared_dir / "ro"
    (ro / "existing").mkdir(parents=True)
    for d in (ro / "existing", ro):
        d.chmod(0o555)  # and owned by root: read-only for everyone else
    out = {"out": ro / "existing", "new-out": ro / "new",
           "cache": shared_dir / "cache" / "o"}[what]
    env = {**os.environ, "HOME": str(shared_dir),
           "ZSQ_CACHE_DIR": str(ro if what == "cache" else shared_dir / "cache")}
    proc = subprocess.run([*prefix, sys.executable, "-m", "zynq_squeeze.cli", "compile",
                           str(shared_dir / "net.onnx"), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, env=env, cwd=shared_dir)
    err = proc.stderr
    assert proc.returncode == 2, err
    assert err.startswith("zynq-squeeze: error: ") and len(err.strip().splitlines()) == 1, err
    if what == "cache":
        assert f"cache directory {ro}" in err and "not writable" in err, err
        assert not out.exists()
    else:
        assert f"cannot write to output directory {out}" in err, err
        assert list(ro.rglob("*")) == [ro / "existing"]


def test_cache_dir_is_a_file(compiled, tmp_path, monkeypatch, capsys):
    f = tmp_path / "cachefile"
    f.write_text("x")
    monkeypatch.setenv("ZSQ_CACHE_DIR", str(f))
    out = tmp_path / "o"
    assert main(["compile", str(compiled / "net.onnx"), "--out", str(out), "--quiet"]) == 2
    _one_line_error(capsys, f"cache directory {f}", "ZSQ_CACHE_DIR", "not a directory")
    assert not out.exists()


# --------------------------------------------------------------------------- --calib
@pytest.mark.parametrize("make,needle", [
    (lambda p: np.save(p / "c.npy", np.float32(1.0)), "is a scalar"),
    (lambda p: np.save(p / "c.npy", np.zeros((0, *SHAPE), np.float32)), "no samples"),
    (lambda p: np.save(p / "c.npy", np.array(["a", "b"])), "expected numbers"),
    (lambda p: np.savez(p / "c.npz"), "holds no arrays"),
    (lambda p: np.savez(p / "c.npz", a=np.zeros((2, 3)), b=np.zeros((3, 3))),
     "different numbers of samples"),
    (lambda p: np.savez(p / "c.npz", x=np.float32(2)), "array 'x' is a scalar"),
    (lambda p: (p / "c.npy").write_bytes(b""), "cannot read calibration file"),
    (lambda p: (p / "c.npz").write_bytes(b"PK\x03\x04garbage"), "cannot read calibration"),
])
def test_bad_calibration_files(compiled, tmp_path, capsys, make, needle):
    make(tmp_path)
    (calib,) = [p for p in tmp_path.iterdir() if p.name.startswith("c.")]
    out = tmp_path / "o"
    rc = main(["compile", str(compiled / "net.onnx"), "--out", str(out), "--calib",
               str(calib), "--quiet"])
    assert rc == 2
    _one_line_error(capsys, needle)
    assert not out.exists()


# --------------------------------------------------------------------------- run
def test_run_output_directory_is_checked_before_the_model_runs(compiled, tmp_path,
                                                               monkeypatch, capsys):
    def never(*a, **k):
        raise AssertionError("the model ran")

    monkeypatch.setattr(cli, "run_compiled", never)
    for output, needle in ((tmp_path / "missing" / "y", "does not exist"),
                           (tmp_path, "is a directory")):
        if output == tmp_path:
            (tmp_path / "d.npy").mkdir()
            output = tmp_path / "d"
        rc = main(["run", str(compiled / "out"), "--input", str(compiled / "x.npy"),
                   "--output", str(output)])
        assert rc == 2
        _one_line_error(capsys, needle, str(output))


def test_run_input_npz(compiled, tmp_path, capsys):
    x = np.load(compiled / "x.npy")
    np.savez(tmp_path / "one.npz", whatever=x)
    assert main(["run", str(compiled / "out"), "--input", str(tmp_path / "one.npz"),
                 "--output", str(tmp_path / "y1")]) == 0
    assert main(["run", str(compiled / "out"), "--input", str(compiled / "x.npy"),
                 "--output", str(tmp_path / "y2.npy")]) == 0
    out = capsys.readouterr().out
    assert f"-> {tmp_path / 'y1.npy'}" in out and f"-> {tmp_path / 'y2.npy'}" in out
    np.testing.assert_array_equal(np.load(tmp_path / "y1.npy"), np.load(tmp_path / "y2.npy"))
    np.savez(tmp_path / "two.npz", a=x, b=x)
    assert main(["run", str(compiled / "out"), "--input", str(tmp_path / "two.npz"),
                 "--output", str(tmp_path / "y3")]) == 2
    _one_line_error(capsys, "holds 2 arrays", "a, b")
    assert not (tmp_path / "y3.npy").exists()


@pytest.mark.parametrize("damage,needle", [
    ("missing", "model.so is missing"),
    ("garbage", "is not the library compiled into this directory"),
    ("garbage-no-digest", "cannot load"),
])
def test_run_missing_or_garbage_library(compiled, tmp_path, capsys, damage, needle):
    d = _copy(compiled, tmp_path)
    lib = d / "model.so"
    if damage == "missing":
        lib.unlink()
    else:
        lib.write_bytes(b"\x7fELF garbage, not a shared object" * 10)
    if damage == "garbage-no-digest":  # a directory from before the manifest had digests
        man = json.loads((d / "manifest.json").read_text())
        del man["library_sha256"]
        (d / "manifest.json").write_text(json.dumps(man))
    rc = main(["run", str(d), "--input", str(compiled / "x.npy"), "--output",
               str(tmp_path / "y")])
    assert rc == 2
    _one_line_error(capsys, needle)
    assert not (tmp_path / "y.npy").exists()


# --------------------------------------------------------------------------- report.json
@pytest.mark.parametrize("text", ["{", "[]", '{"layers": 3}', '{"layers": [{"x": 1}]}',
                                  '{"layers": [], "model": "m"}', "\xff\xfe"])
def test_corrupt_report_json(compiled, tmp_path, capsys, text):
    d = _copy(compiled, tmp_path)
    (d / "report.json").write_text(text, encoding="latin-1")
    assert main(["schedule", str(d)]) == 2
    _one_line_error(capsys, f"{d / 'report.json'} is damaged")
    if text == '{"layers": [], "model": "m"}':
        return  # no layers to compare: hls-report --compare is fine with it
    assert main(["hls-report", str(FIXTURES / "vitis2022_2" / "csynth.xml"), "--compare",
                 str(d)]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""  # failed before printing the summary
    assert cap.err.startswith(f"zynq-squeeze: error: {d / 'report.json'} is damaged")


def test_compare_with_another_top_function_warns_first(compiled):
    """csynth.xml of another design (top fire_engine, not zsq_dae): a warning line comes
    before the ratios."""
    proc = subprocess.run([sys.executable, "-m", "zynq_squeeze.cli", "hls-report",
                           str(FIXTURES / "vitis2022_2" / "csynth.xml"), "--compare",
                           str(compiled / "out")], capture_output=False, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    warn = [i for i, ln in enumerate(lines) if ln.startswith("zynq-squeeze: warning: ")]
    assert len(warn) == 1 and "'fire_engine'" in lines[warn[0]] and "'zsq_dae'" in lines[warn[0]]
    ratios = next(i for i, ln in enumerate(lines) if ln.startswith("resource")
                  and "synthesis" in ln)
    assert warn[0] < ratios


# --------------------------------------------------------------------------- the cache
def test_cache_entry_written_partially_leaves_nothing(tmp_path, monkeypatch):
    from zynq_squeeze import cache

    monkeypatch.setenv("ZSQ_CACHE_DIR", str(tmp_path))
    target = cache.cache_dir() / "entry.so"
    for exc in (RuntimeError("compiler died"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), cache.atomic_entry(target) as tmp:
            tmp.write_bytes(b"\x7fELF half")
            raise exc
        assert list(tmp_path.iterdir()) == []
    with cache.atomic_entry(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]


def _tiny_shared_object(path: Path) -> None:
    src = path.with_suffix(".c")
    src.write_text("int zsq_tiny(void) { return 42; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", str(src), "-o", str(path)], check=True)
    src.unlink()


def test_cache_rebuilds_a_damaged_entry(tmp_path, monkeypatch):
    """The native builds (toolchain.compiler) write entries through atomic_entry and
    check them with entry_ok: a compiler interrupted mid-write leaves no entry; a
    truncated entry is rebuilt, not loaded."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    from zynq_squeeze.cache import entry_ok
    from zynq_squeeze.engine.dae_config import DaeConfig
    from zynq_squeeze.toolchain import compiler

    monkeypatch.setenv("ZSQ_CACHE_DIR", str(tmp_path / "cache"))
    good = tmp_path / "good.so"
    _tiny_shared_object(good)
    assert entry_ok(good)
    calls = []

    def fake_run(cmd, cwd=None):  # the "compiler": writes half, then is interrupted
        out = Path(cmd[cmd.index("-o") + 1])
        calls.append(out)
        out.write_bytes(good.read_bytes()[:100])
        if len(calls) == 1:
            raise KeyboardInterrupt
        out.write_bytes(good.read_bytes())

    monkeypatch.setattr(compiler, "_run", fake_run)
    macros = DaeConfig().macros()
    with pytest.raises(KeyboardInterrupt):
        compiler.dae_shared_library(macros)
    assert list((tmp_path / "cache").iterdir()) == []  # no entry, no temporary file
    lib = compiler.dae_shared_library(macros)
    assert lib.read_bytes() == good.read_bytes() and len(calls) == 2
    assert compiler.dae_shared_library(macros) == lib and len(calls) == 2  # reused
    lib.write_bytes(good.read_bytes()[: lib.stat().st_size // 2])  # truncated on disk
    assert compiler.dae_shared_library(macros) == lib and len(calls) == 3  # rebuilt
    assert lib.read_bytes() == good.read_bytes()
    lib.write_bytes(b"")
    assert compiler.dae_shared_library(macros) == lib and len(calls) == 4
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [lib.name]


def test_bad_model_file_writes_nothing(tmp_path, capsys):
    (tmp_path / "x.onnx").write_bytes(b"\x08\x01garbage")
    out = tmp_path / "o"
    assert main(["compile", str(tmp_path / "x.onnx"), "--out", str(out), "--quiet"]) == 2
    _one_line_error(capsys)
    assert not out.exists()
