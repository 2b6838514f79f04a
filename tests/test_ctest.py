"""Configure, build and run the C tests (ctest) of hls_runtime in a temporary directory.

The tests get real decoupled-engine programs: ``write_cases`` lowers small layer chains
with ``codegen.dae_program`` for a small engine, writes the instruction words, the
weights, the input arena image, the golden model's output and the cycles of the
Python-driven simulation, plus the engine's ``zsq_dae_config.h``; the C binaries
(test_program and test_io for the csim runtime, test_zynq for the board backend against
the simulated board of hls_runtime/tools) run them and compare bit-exactly.
"""
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import conv_params, fire, rand_input

from zynq_squeeze import native
from zynq_squeeze.codegen.dae_program import build_dae_program, pack_tensor, reference_chain
from zynq_squeeze.codegen.hls_project import dae_config_header
from zynq_squeeze.engine.dae_config import DaeConfig
from zynq_squeeze.quantize.layers import ConvLayer, PoolSpec
from zynq_squeeze.schedule.dae_tiling import default_tile
from zynq_squeeze.toolchain import dae_sim

REPO = Path(__file__).resolve().parents[1]

# a small engine (K = 1): the programs tile, and the generated config header is used
CFG = DaeConfig(k=1, in_rows=512, w_rows=256, p_rows=16, acc_rows=512, cv_rows=512,
                sq_rows=512, out_rows=512)


def _chains(rng):
    conv = ConvLayer("conv1", (3, 19, 17), conv_params(rng, 8, 3, 3, stride=(2, 2)),
                     PoolSpec("max", (3, 3), (2, 2), ceil_mode=True))
    fr = fire(rng, "fire2", conv.out_shape, 4, 8, 8)
    # 5 output channels (a padded group) and a global average pool
    c10 = ConvLayer("conv10", (12, 6, 5), conv_params(rng, 5, 12, 1),
                    PoolSpec("avg", global_pool=True))
    return {"conv_fire": [conv, fr], "conv_avg": [c10]}


def write_cases(d: Path, cfg: DaeConfig = CFG) -> Path:
    """Test programs for the C tests in ``d`` (cases.txt + per case .insn/.wgt/.arena/
    .expected) and ``d/config/zsq_dae_config.h``; returns ``d``."""
    rng = np.random.default_rng(11)
    d.mkdir(parents=True, exist_ok=True)
    lines = ["# name arena_words out_base out_c out_h out_w rd_latency wr_latency "
             "outstanding beat_x100 cycles in_base in_words"]
    beat = 100
    for name, layers in _chains(rng).items():
        prog = build_dae_program(cfg, layers, [default_tile(cfg, layer) for layer in layers])
        x = rand_input(rng, layers[0].in_shape)
        y_sim, res = dae_sim.run_program(prog, x, beat_x100=beat)
        y = reference_chain(layers, x)
        assert np.array_equal(y_sim, y)  # the case itself is sound
        t_in, t_out = prog.input, prog.output
        arena = np.zeros(prog.arena_words, dtype=np.uint64)
        arena[t_in.base:t_in.base + t_in.words] = pack_tensor(x)
        (d / f"{name}.insn").write_bytes(np.asarray(prog.words, dtype="<u8").tobytes())
        (d / f"{name}.wgt").write_bytes(np.asarray(prog.weights, dtype="<u8").tobytes())
        (d / f"{name}.arena").write_bytes(arena.astype("<u8").tobytes())
        (d / f"{name}.expected").write_bytes(pack_tensor(y).astype("<u8").tobytes())
        lines.append(f"{name} {prog.arena_words} {t_out.base} {t_out.c} {t_out.h} {t_out.w} "
                     f"{cfg.rd_latency} {cfg.wr_latency} {cfg.outstanding} {beat} {res.cycles} "
                     f"{t_in.base} {t_in.words}")
    (d / "cases.txt").write_text("\n".join(lines) + "\n")
    (d / "config").mkdir(exist_ok=True)
    (d / "config" / "zsq_dae_config.h").write_text(dae_config_header(cfg, "C tests"))
    return d


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return write_cases(tmp_path_factory.mktemp("ctest_data"))


def _configure(build: Path, backend: str, cases: Path, extra=()) -> None:
    r = subprocess.run(["cmake", "-S", str(REPO), "-B", str(build), f"-DZSQ_BACKEND={backend}",
                        "-DCMAKE_BUILD_TYPE=Release", f"-DZSQ_AP_TYPES_DIR={native.ap_types_dir()}",
                        f"-DZSQ_CONFIG_DIR={cases / 'config'}", f"-DZSQ_TEST_DATA={cases}",
                        *extra], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _build_and_ctest(build: Path, want_tests: set[str]) -> str:
    r = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (build / "libzsq_runtime.a").is_file()
    r = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure", "-V"],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "100% tests passed" in r.stdout
    for t in want_tests:  # each test was registered and passed
        assert re.search(rf"Test\s+#\d+: {t} \.+\s+Passed", r.stdout), t
    return r.stdout


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
@pytest.mark.parametrize("backend", ["csim", "zynq"])
def test_cmake_build_and_ctest(tmp_path, cases, backend):
    build = tmp_path / "build"
    _configure(build, backend, cases)
    out = _build_and_ctest(build, {"test_errors", "test_program", "test_io", "test_zynq"}
                           if backend == "csim" else {"test_zynq"})
    # the board backend against the simulated board: every check passed, and the run_io
    # form moved less than the whole arena
    assert "test_zynq: ok" in out
    for name, whole, io in re.findall(r"(\w+): arena \d+ words, .*zsq_rt_run (\d+), "
                                      r"zsq_rt_run_io (\d+)", out):
        assert int(io) < int(whole), name
    if backend == "csim":
        # the programs ran with the generated K = 1 engine, bit-exact, with Python's cycles
        assert "conv_fire:" in out and "conv_avg:" in out and out.count(": ok") >= 2
        # the fire's output moved onto its input (two spatial tiles): a lifetime error
        assert "conv_fire: output moved onto the last layer's input: refused" in out


def test_csim_needs_the_ap_types(tmp_path):
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    r = subprocess.run(["cmake", "-S", str(REPO), "-B", str(tmp_path / "b"), "-DZSQ_BACKEND=csim"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "ZSQ_AP_TYPES_DIR" in r.stdout + r.stderr


def test_config_header_reaches_the_engine(tmp_path, cases):
    """zsq_dae_cfg.h picks up a zsq_dae_config.h on the include path (the HLS project's
    and the C tests' way to set the model's engine)."""
    probe = tmp_path / "probe.cpp"
    probe.write_text('#include "zsq_dae_cfg.h"\n#include <cstdio>\nint main() { std::printf('
                     '"%d %d %d\\n", zsqd_cfg::PE_OC, zsqd_cfg::IN_ROWS, zsqd_cfg::W_ROWS); }\n')
    exe = tmp_path / "probe"
    for inc, want in (([f"-I{cases / 'config'}"], "8 512 256"), ([], "24 2048 512")):
        subprocess.run(["g++", "-std=c++17", *inc, f"-I{REPO / 'src'}", str(probe), "-o", str(exe)],
                       check=True)
        assert subprocess.run([str(exe)], capture_output=True, text=True).stdout.split() == want.split()


ARM_TOOLS = ("arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-g++", "qemu-arm-static")


@pytest.mark.skipif(shutil.which("cmake") is None or any(shutil.which(t) is None for t in ARM_TOOLS),
                    reason="needs cmake, g++-arm-linux-gnueabihf and qemu-user-static")
@pytest.mark.parametrize("backend", ["csim", "zynq"])
def test_cross_build_for_the_board_and_ctest_under_qemu(tmp_path, cases, backend):
    """The runtime and the engine build for the Zynq's Cortex-A9; the C tests run under
    qemu through CMAKE_CROSSCOMPILING_EMULATOR."""
    build = tmp_path / "build-arm"
    _configure(build, backend, cases,
               [f"-DCMAKE_TOOLCHAIN_FILE={REPO / 'cmake' / 'arm-linux-gnueabihf.cmake'}"])
    _build_and_ctest(build, {"test_zynq"})
    members = subprocess.run(["arm-linux-gnueabihf-objdump", "-f", str(build / "libzsq_runtime.a")],
                             capture_output=True, text=True).stdout
    assert "elf32-littlearm" in members
