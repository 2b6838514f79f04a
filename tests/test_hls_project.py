"""Tests of the generated Vitis HLS / Vivado project (zynq_squeeze.hls_project)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY, conv_params, fire, rand_input
from test_hls_lint import check_engine_issues

from zynq_squeeze.boards import get_board
from zynq_squeeze.codegen.hls_project import engine_interface_ports, write_hls_project
from zynq_squeeze.codegen.program import chain_program
from zynq_squeeze.hls.lint import lint_files
from zynq_squeeze.quantize.layers import ConvLayer, PoolSpec
from zynq_squeeze.quantize.reference import run_layer

pytestmark = pytest.mark.skipif(shutil.which("g++") is None or shutil.which("make") is None,
                                reason="needs g++ and make")


@pytest.fixture(scope="module")
def model():
    """conv(+maxpool) -> fire chain on the TINY engine (forces tiling)."""
    rng = np.random.default_rng(7)
    conv = ConvLayer("conv1", (3, 19, 17), conv_params(rng, 8, 3, 3, stride=(2, 2)),
                     PoolSpec("max", (3, 3), (2, 2), ceil_mode=True))
    fr = fire(rng, "fire2", conv.out_shape, 4, 8, 8)
    prog = chain_program([conv, fr], TINY)
    x = rand_input(rng, conv.in_shape)
    y1 = run_layer(conv, x)
    y2 = run_layer(fr, y1)
    return prog, [(x, y1), (y1, y2)]


def _project(tmp_path, model, layer_index, board="zybo-z7-20", clock_mhz=None, sub="p"):
    prog, io = model
    x, y = io[layer_index]
    return write_hls_project(tmp_path / sub, engine_cfg=TINY, board=board, model_name="tiny",
                             program=prog, layer_index=layer_index, layer_input=x,
                             expected_output=y, clock_mhz=clock_mhz)


def _make(hls: Path, target: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "-C", str(hls), target], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.mark.parametrize("layer_index,kind", [(0, "conv"), (1, "fire")])
def test_testbench_passes_and_detects_corruption(tmp_path, model, layer_index, kind):
    hls = _project(tmp_path, model, layer_index)
    r = _make(hls, "tb")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout and "FAIL" not in r.stdout
    # the synthesizable MAC-array kernel body gives the same bytes
    r = _make(hls, "tb-hls")
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr
    # corrupt the expected output: FAIL, mismatch count, non-zero exit
    exp = bytearray((hls / "tb_expected.bin").read_bytes())
    for i in (0, len(exp) - 1):
        exp[i] ^= 0x5A
    (hls / "tb_expected.bin").write_bytes(bytes(exp))
    r = subprocess.run([str(hls / "tb_zsq_engine"), str(hls)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "FAIL: 2 of" in r.stdout
    assert kind in (hls / "tb_zsq_engine.cpp").read_text()


def test_missing_data_fails_cleanly(tmp_path, model):
    hls = _project(tmp_path, model, 0)
    assert _make(hls, "tb").returncode == 0
    (hls / "tb_params.bin").unlink()
    r = subprocess.run([str(hls / "tb_zsq_engine"), str(hls)], capture_output=True, text=True)
    assert r.returncode == 1 and "FAIL" in r.stdout


def test_generated_sources_pass_lint(tmp_path, model):
    hls = _project(tmp_path, model, 1)
    own = [hls / "tb_zsq_engine.cpp", hls / "zsq_config.h"]
    assert lint_files(own) == []  # the testbench is simulation-only (#ifndef __SYNTHESIS__)
    all_sources = sorted(list(hls.glob("*.cpp")) + list(hls.glob("*.h")))
    check_engine_issues(lint_files(all_sources))


def test_project_contents(tmp_path, model):
    prog, _ = model
    hls = _project(tmp_path, model, 1, clock_mhz=150)
    names = {p.name for p in hls.iterdir()}
    for f in ("zsq_engine.cpp", "zsq_engine.h", "zsq_types.h", "zsq_config.h", "tb_zsq_engine.cpp",
              "tb_prog.bin", "tb_weights.bin", "tb_params.bin", "tb_arena_in.bin",
              "tb_expected.bin", "run_hls.tcl", "block_design.tcl", "Makefile", "README.md"):
        assert f in names, f
    assert (hls / "tb_prog.bin").read_bytes() == prog.descriptors
    assert (hls / "tb_weights.bin").read_bytes() == prog.weights
    assert (hls / "tb_params.bin").read_bytes() == prog.params
    assert (hls / "tb_arena_in.bin").stat().st_size == prog.arena_bytes
    assert "#define ZSQ_PE_OC 4" in (hls / "zsq_config.h").read_text()
    part = get_board("zybo-z7-20").part
    tcl = (hls / "run_hls.tcl").read_text()
    bd = (hls / "block_design.tcl").read_text()
    for needle in ("open_project", "set_top zsq_engine", 'add_files zsq_engine.cpp -cflags "-I."',
                   "add_files -tb tb_zsq_engine.cpp", f"set_part {{{part}}}",
                   "create_clock -period 6.667", "csim_design", "csynth_design", "cosim_design",
                   "export_design -format ip_catalog"):
        assert needle in tcl, needle
    for needle in (f"set part {{{part}}}", "processing_system7", "apply_bd_automation",
                   "CONFIG.PCW_USE_S_AXI_HP0 {1}", "CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64}",
                   "CONFIG.PCW_USE_M_AXI_GP0 {1}", "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {150}",
                   "FCLK_CLK0", "s_axi_control", "m_axi_gmem_act", "m_axi_gmem_w",
                   "assign_bd_address", "validate_bd_design", "make_wrapper",
                   "write_bitstream", "zsq_hls/solution1/impl/ip"):
        assert needle in bd, needle
    mk = (hls / "Makefile").read_text()
    for target in ("tb:", "csim:", "csynth:", "cosim:", "ip:", "bitstream:", "clean:"):
        assert f"\n{target}" in mk, target
    # no absolute paths or timestamps in the text files
    for p in hls.iterdir():
        if p.suffix in (".tcl", ".md", ".cpp", ".h") or p.name == "Makefile":
            text = p.read_text()
            assert str(tmp_path) not in text and "/work/" not in text, p.name


def test_ultrascale_board_uses_the_mpsoc(tmp_path, model):
    hls = _project(tmp_path, model, 0, board=get_board("ultra96-v2"))
    bd = (hls / "block_design.tcl").read_text()
    assert "xczu3eg-sbva484-1" in bd and "zynq_ultra_ps_e" in bd and "pl_clk0" in bd
    assert "create_clock -period 10" in (hls / "run_hls.tcl").read_text()


def test_bitstream_without_tools_explains_and_fails(tmp_path, model):
    hls = _project(tmp_path, model, 0)
    env = dict(os.environ, PATH="/usr/bin:/bin")
    for tool in ("vitis_hls", "vivado"):
        if shutil.which(tool, path=env["PATH"]):
            pytest.skip(f"{tool} is installed")
    r = _make(hls, "bitstream", env=env)
    assert r.returncode != 0
    assert "'vitis_hls' (Vitis HLS) is not on PATH" in r.stdout + r.stderr
    # Vitis present but no Vivado: the message names vivado
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "vitis_hls").write_text("#!/bin/sh\nexit 0\n")
    (fake / "vitis_hls").chmod(0o755)
    r = _make(hls, "bitstream", env=dict(env, PATH=f"{fake}:{env['PATH']}"))
    assert r.returncode != 0
    assert "'vivado' (Vivado) is not on PATH" in r.stdout + r.stderr


def test_deterministic_bytes(tmp_path, model):
    a = _project(tmp_path, model, 1, sub="a")
    b = _project(tmp_path, model, 1, sub="b")
    fa = sorted(p.name for p in a.iterdir())
    assert fa == sorted(p.name for p in b.iterdir())
    for name in fa:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_bad_arguments(tmp_path, model):
    prog, io = model
    x, y = io[0]
    with pytest.raises(ValueError, match="layer_index"):
        write_hls_project(tmp_path, engine_cfg=TINY, board="zybo-z7-20", model_name="m",
                          program=prog, layer_index=5, layer_input=x, expected_output=y)
    with pytest.raises(ValueError, match="shape"):
        write_hls_project(tmp_path, engine_cfg=TINY, board="zybo-z7-20", model_name="m",
                          program=prog, layer_index=0, layer_input=y, expected_output=y)
    with pytest.raises(ValueError, match="unknown board"):
        write_hls_project(tmp_path, engine_cfg=TINY, board="nope", model_name="m",
                          program=prog, layer_index=0, layer_input=x, expected_output=y)


def test_interface_ports_parsed_from_pragmas():
    src = """
    #pragma HLS INTERFACE m_axi port = a offset = slave bundle = gmem_a
    #pragma HLS INTERFACE mode=m_axi port=b bundle=gmem_b
    #pragma HLS INTERFACE m_axi port = c offset = slave bundle = gmem_a
    #pragma HLS INTERFACE s_axilite port = return
    """
    assert engine_interface_ports(src) == (["m_axi_gmem_a", "m_axi_gmem_b"], True)
