"""libFuzzer target of the runtime's validator and the engine's simulation
(tests/fuzz/fuzz_program.cc, built by benchmarks/fuzz_program.py with clang++ and
-fsanitize=fuzzer,address,undefined): a short bounded run from a seed corpus of real
compiled programs must end without a crash, and the saved reproducers of past defects
(tests/fuzz/crashes/) must run clean."""
from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CRASHES = REPO / "tests" / "fuzz" / "crashes"
SECONDS = int(os.environ.get("ZSQ_FUZZ_SECONDS", "20"))


def _load_script():
    spec = importlib.util.spec_from_file_location("fuzz_program_bench",
                                                  REPO / "benchmarks" / "fuzz_program.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fz = _load_script()
_WHY = fz.fuzzer_available()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"libFuzzer unavailable: {_WHY}")


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    seeds = d / "seeds"
    # the chains only: the digits seeds need a full TVM build (the benchmark adds them)
    paths = fz.write_seeds(seeds, digits=False)
    assert len(paths) >= 8
    exe = fz.build_target(d / "fuzz_program", fz.write_config(d / "config"))
    return d, exe, seeds


def test_seeds_are_real_programs_that_run(target):
    """Every seed is accepted by the validator and runs on the engine (bit 0 / bit 1 of
    the flags change nothing for a correct program)."""
    _, exe, seeds = target
    r = subprocess.run([str(exe), *sorted(str(p) for p in seeds.iterdir())],
                       env=dict(os.environ, ZSQ_FUZZ_VERBOSE="1"), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    codes = [ln for ln in r.stderr.splitlines() if ln.startswith("fuzz_program: ")]
    # (libFuzzer may execute an input more than once)
    assert len(codes) >= len(list(seeds.iterdir())), r.stderr[-4000:]
    assert all(ln.startswith("fuzz_program: valid, run 0") for ln in codes), codes


def test_bounded_fuzzing_finds_no_crash(target):
    d, exe, seeds = target
    res = fz.run_fuzzer(exe, d / "corpus", seeds, d / "artifacts", seconds=SECONDS)
    log = res.pop("log")
    print(f"fuzz_program: {res}")
    assert res["exit_code"] == 0 and res["crashes"] == 0, log[-6000:]
    assert res["runs"] and res["runs"] > 100, log[-3000:]
    assert res["coverage_edges"] and res["coverage_edges"] > 300, log[-3000:]


@pytest.mark.skipif(not CRASHES.is_dir() or not any(CRASHES.iterdir()),
                    reason="no saved reproducers")
def test_saved_reproducers_run_clean(target):
    """tests/fuzz/crashes/: inputs that crashed the validator or the simulation once
    (see the README there); each must now be rejected cleanly."""
    _, exe, _ = target
    files = sorted(str(p) for p in CRASHES.glob("*.zsqf"))
    r = subprocess.run([str(exe), *files], env=dict(os.environ, ZSQ_FUZZ_VERBOSE="1"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "runtime error:" not in r.stderr and "ERROR: AddressSanitizer" not in r.stderr
