"""Coverage-guided fuzzing of the runtime's program validator and the engine's simulation.

Writes a seed corpus of real compiled programs (small layer chains lowered with
``codegen.dae_program`` for a small engine, as tests/test_ctest.py does, and the digits
model's program), builds tests/fuzz/fuzz_program.cc with clang++ and libFuzzer
(-fsanitize=fuzzer,address,undefined, the runtime + csim backend + engine simulation for
that engine, against Xilinx's ap_types), runs it for a bounded time and prints one JSON
line: {"runs", "execs_per_s", "coverage_edges", "crashes", "seconds", ...}.

    python benchmarks/fuzz_program.py [--seconds 60] [--work DIR] [--no-digits]

Needs clang++ and the libFuzzer runtime (Debian: apt-get install clang libclang-rt-14-dev).
A crash leaves its reproducer (crash-*, leak-*, timeout-*, oom-*) in WORK/artifacts and a
copy in tests/fuzz/crashes/ (tests/test_fuzz.py replays those); rerun one with
``WORK/fuzz_program <file>`` (ZSQ_FUZZ_VERBOSE=1 prints the return codes). tests/test_fuzz.py
runs the same target briefly.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FUZZ_SRC = REPO / "tests" / "fuzz" / "fuzz_program.cc"
MAGIC = b"ZSQF"
FLAG_SIM_DIRECT = 1  # also run zsqd_run directly when the runtime's validator rejects
FLAG_REPAIR = 2      # insert the SET words of derived registers that do not match
MAX_ARENA, MAX_INSN = 1 << 20, 4096  # the target's caps (fuzz_program.cc)


def small_engine():
    """The small engine of tests/test_ctest.py (K = 1): the seed programs tile."""
    from zynq_squeeze.engine.dae_config import DaeConfig

    return DaeConfig(k=1, in_rows=512, w_rows=256, p_rows=16, acc_rows=512, cv_rows=512,
                     sq_rows=512, out_rows=512)


def encode(words, weights, arena_words: int, timing: tuple[int, int, int, int],
           flags: int = 0) -> bytes:
    """A program in the target's input format (header, instruction words, weight words)."""
    words = np.asarray(words, dtype="<u8")
    weights = np.asarray(weights, dtype="<u8")
    head = MAGIC + struct.pack("<IIiiiiI", arena_words, len(words), *timing, flags)
    return head + words.tobytes() + weights.tobytes()


def _chains(rng):
    """Layer chains like test_ctest's (conv + pool + fire, a padded group with a global
    average pool) plus a fire with a strided squeeze and an average pool."""
    sys.path.insert(0, str(REPO / "tests"))
    from helpers import conv_params, fire

    from zynq_squeeze.quantize.layers import ConvLayer, PoolSpec

    conv = ConvLayer("conv1", (3, 19, 17), conv_params(rng, 8, 3, 3, stride=(2, 2)),
                     PoolSpec("max", (3, 3), (2, 2), ceil_mode=True))
    fr = fire(rng, "fire2", conv.out_shape, 4, 8, 8)
    c10 = ConvLayer("conv10", (12, 6, 5), conv_params(rng, 5, 12, 1),
                    PoolSpec("avg", global_pool=True))
    c2 = ConvLayer("conv2", (16, 9, 9), conv_params(rng, 16, 16, 3, pads=(1, 1, 1, 1)),
                   PoolSpec("max", (3, 3), (2, 2), ceil_mode=True))
    f3 = fire(rng, "fire3", c2.out_shape, 8, 16, 8)
    return {"conv_fire": [conv, fr], "conv_avg": [c10], "conv_pool_fire": [c2, f3],
            **_issue11_chains(rng)}


def _issue11_chains(rng):
    """Seeds of the issue-11 instruction forms, so the fuzzer starts from programs that
    use them: a residual add (LOAD_BYPASS, REQUANT RQ_ADD; the bypass a second program
    input), a depthwise conv (CONV_DW) feeding standalone max and average pools
    (POOL_SRC_IN / POOL_IN_HALF) and an 11x11 stride-4 conv (AlexNet's conv1 shape)."""
    from helpers import conv_params, depthwise_params

    from zynq_squeeze.quantize.layers import ConvAddLayer, ConvLayer, PoolLayer, PoolSpec
    from zynq_squeeze.quantize.requant import quantize_multiplier

    c1 = ConvLayer("res_c1", (16, 7, 6), conv_params(rng, 16, 16, 3, pads=(1,) * 4))
    m, s = quantize_multiplier(0.7)
    c2 = ConvAddLayer("res_c2", c1.out_shape, conv_params(rng, 16, 16, 3, pads=(1,) * 4),
                      bp_mult=int(m), bp_shift=int(s))
    dw = ConvLayer("dw", (24, 9, 8), depthwise_params(rng, 24, 3, 2, 1))
    mp = PoolLayer("mp", dw.out_shape, PoolSpec("max", (3, 3), (2, 2), ceil_mode=True))
    gm, gs = quantize_multiplier(1.0 / (mp.out_shape[1] * mp.out_shape[2]))
    gap = PoolLayer("gap", mp.out_shape, PoolSpec("avg", global_pool=True), int(gm), int(gs))
    big = ConvLayer("k11s4", (3, 27, 27), conv_params(rng, 8, 3, 11, stride=(4, 4)),
                    PoolSpec("max", (3, 3), (2, 2)))
    return {"residual": [c1, c2], "dw_pools": [dw, mp, gap], "k11_s4": [big]}


def _timing(cfg, beat: int = 100) -> tuple[int, int, int, int]:
    return (int(cfg.rd_latency), int(cfg.wr_latency), int(cfg.outstanding), beat)


def _digits_programs(cfg):
    """The digits model compiled for its board's engine (as tvm.compile builds it), and
    its lowered layers re-programmed for the small engine ``cfg``."""
    import tvm  # noqa: F401  (registers the target)

    import zynq_squeeze
    from zynq_squeeze.codegen.dae_program import build_dae_program
    from zynq_squeeze.frontend import from_onnx
    from zynq_squeeze.frontend.models.digits import digits_model
    from zynq_squeeze.schedule.dae_tiling import default_tile

    mod = from_onnx(digits_model())
    rng = np.random.default_rng(0)
    calib = [rng.uniform(0, 1, (1, 1, 8, 8)).astype(np.float32) for _ in range(4)]
    with tempfile.TemporaryDirectory() as d:
        res = zynq_squeeze.build(mod, calibration=calib, out_dir=d)
        cg = res.codegen[0]
        out = []
        for prog in cg.programs:
            out.append(("digits_board", prog, _timing(cg.engine, cg.beat_x100)))
        for lf in cg.functions:
            layers = list(lf.layers)
            tiles = [default_tile(cfg, layer) for layer, _, _ in layers]
            tensors = {tid: info.shape for tid, info in lf.tensors.items()}
            prog = build_dae_program(cfg, layers, tiles, tensors, lf.inputs, lf.outputs)
            out.append(("digits_small", prog, _timing(cfg)))
    return out


def write_seeds(corpus: Path, cfg=None, digits: bool = True) -> list[Path]:
    """Seed files of real programs in ``corpus`` (each with every combination of the
    target's flags); returns their paths."""
    from zynq_squeeze.codegen.dae_program import build_dae_program
    from zynq_squeeze.schedule.dae_tiling import default_tile

    cfg = cfg or small_engine()
    corpus.mkdir(parents=True, exist_ok=True)
    progs = []
    for name, layers in _chains(np.random.default_rng(11)).items():
        prog = build_dae_program(cfg, layers, [default_tile(cfg, layer) for layer in layers])
        progs.append((name, prog, _timing(cfg)))
    if digits:
        progs += _digits_programs(cfg)
    paths = []
    for name, prog, timing in progs:
        if len(prog.words) > MAX_INSN or prog.arena_words > MAX_ARENA:
            continue  # beyond the target's caps: it would ignore the seed
        for flags in (0, FLAG_SIM_DIRECT, FLAG_REPAIR, FLAG_SIM_DIRECT | FLAG_REPAIR):
            p = corpus / f"{name}_f{flags}.zsqf"
            p.write_bytes(encode(prog.words, prog.weights, prog.arena_words, timing, flags))
            paths.append(p)
    return paths


def write_config(d: Path, cfg=None) -> Path:
    """``d/zsq_dae_config.h`` of the fuzzed engine (the seeds' engine)."""
    from zynq_squeeze.codegen.hls_project import dae_config_header

    d.mkdir(parents=True, exist_ok=True)
    (d / "zsq_dae_config.h").write_text(dae_config_header(cfg or small_engine(), "fuzz target"))
    return d


def fuzzer_available() -> str | None:
    """None if clang++ can link a libFuzzer target here, else why not."""
    cxx = shutil.which(os.environ.get("FUZZ_CXX", "clang++"))
    if cxx is None:
        return "clang++ not installed (apt-get install clang libclang-rt-14-dev)"
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "t.cc"
        src.write_text('#include <stdint.h>\n#include <stddef.h>\nextern "C" int '
                       'LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n')
        r = subprocess.run([cxx, "-fsanitize=fuzzer,address,undefined", str(src), "-o",
                            str(Path(d) / "t")], capture_output=True, text=True)
        if r.returncode != 0:
            return ("clang++ cannot link -fsanitize=fuzzer,address,undefined (the libFuzzer "
                    "runtime, Debian libclang-rt-14-dev, is missing?): " + r.stderr[-300:])
    return None


SAN_FLAGS = ["-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined",
             "-fno-omit-frame-pointer", "-g", "-O1"]


def build_target(out: Path, config_dir: Path, march_native: bool = True) -> Path:
    """Compile the runtime (C99), the csim backend and the engine simulation (C++17) with
    libFuzzer, ASan and UBSan, and link the target ``out``."""
    from zynq_squeeze import native

    cc = shutil.which(os.environ.get("FUZZ_CC", "clang")) or "clang"
    cxx = shutil.which(os.environ.get("FUZZ_CXX", "clang++")) or "clang++"
    flags = SAN_FLAGS + (["-march=native"] if march_native else [])
    incs = [f"-I{config_dir}", f"-I{native.src_dir()}", f"-I{native.runtime_dir()}",
            "-isystem", str(native.ap_types_dir())]
    objdir = out.parent / "obj"
    objdir.mkdir(parents=True, exist_ok=True)
    objs = []
    for src in [*native.runtime_sources("csim"), *native.engine_sources(), FUZZ_SRC]:
        is_c = src.suffix == ".c"
        o = objdir / f"{src.stem}.o"
        cmd = [cc if is_c else cxx, "-std=c99" if is_c else "-std=c++17", *flags,
               "-Wno-unknown-pragmas", "-Wno-unused-label", *incs, "-c", str(src), "-o", str(o)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}\n{r.stderr[-4000:]}")
        objs.append(str(o))
    r = subprocess.run([cxx, *flags, *objs, "-o", str(out)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-4000:])
    return out


ARTIFACT_PREFIXES = ("crash-", "leak-", "timeout-", "oom-", "slow-unit-")


def run_fuzzer(exe: Path, corpus: Path, seeds: Path, artifacts: Path, *, seconds: int = 60,
               runs: int | None = None, extra: tuple[str, ...] = ()) -> dict:
    """Run the target on ``corpus`` (new units go there; ``seeds`` is read only) for
    ``seconds`` (or ``runs`` executions); the numbers of its final report."""
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [str(exe), str(corpus), str(seeds), f"-artifact_prefix={artifacts}/",
           f"-max_total_time={seconds}", "-print_final_stats=1", "-timeout=25",
           "-rss_limit_mb=4096", "-max_len=262144", *extra]
    if runs is not None:
        cmd.append(f"-runs={runs}")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=seconds + 300)
    wall = time.perf_counter() - t0
    log = proc.stderr

    def stat(name):
        m = re.search(rf"stat::{name}:\s+(\d+)", log)
        return int(m.group(1)) if m else None

    covs = re.findall(r"\bcov: (\d+)", log)
    found = sorted(p.name for p in artifacts.iterdir() if p.name.startswith(ARTIFACT_PREFIXES))
    return {"runs": stat("number_of_executed_units"),
            "execs_per_s": stat("average_exec_per_sec"),
            "coverage_edges": int(covs[-1]) if covs else None,
            "crashes": len(found), "seconds": round(wall, 1),
            "corpus_units": sum(1 for _ in corpus.iterdir()),
            "exit_code": proc.returncode, "artifacts": found, "log": log}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--work", type=Path, default=None,
                    help="keep the build, corpus and artifacts here (default: a temp dir)")
    ap.add_argument("--no-digits", action="store_true", help="chain seeds only (no TVM build)")
    ap.add_argument("--portable", action="store_true",
                    help="no -march=native (the portable C fast paths instead of AVX-512)")
    args = ap.parse_args()
    why = fuzzer_available()
    if why:
        sys.exit(why)
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory()
        work = Path(tmp.name)
    else:
        work = args.work.resolve()
        work.mkdir(parents=True, exist_ok=True)
    try:
        seeds = work / "seeds"
        write_seeds(seeds, digits=not args.no_digits)
        exe = build_target(work / "fuzz_program", write_config(work / "config"),
                           march_native=not args.portable)
        res = run_fuzzer(exe, work / "corpus", seeds, work / "artifacts", seconds=args.seconds)
        log = res.pop("log")
        if res["crashes"] or res["exit_code"] != 0:
            sys.stderr.write(log[-6000:])
            keep = REPO / "tests" / "fuzz" / "crashes"
            keep.mkdir(parents=True, exist_ok=True)
            for name in res["artifacts"]:
                shutil.copy(work / "artifacts" / name, keep / f"{name}.zsqf")
                sys.stderr.write(f"reproducer: {keep / name}.zsqf\n")
        res["seeds"] = sum(1 for _ in seeds.iterdir())
        print(json.dumps({"benchmark": "fuzz_program", **res}))
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
