"""Tests of the generated Vitis HLS / Vivado project (zynq_squeeze.codegen.hls_project)
for the decoupled engine (top zsq_dae)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import conv_params, fire, rand_input

from zynq_squeeze import native
from zynq_squeeze.boards import get_board
from zynq_squeeze.codegen.dae_program import build_dae_program, reference_chain
from zynq_squeeze.codegen.hls_project import engine_interface_ports, write_hls_project
from zynq_squeeze.engine.dae_config import DaeConfig
from zynq_squeeze.hls.lint import lint_files
from zynq_squeeze.quantize.layers import ConvLayer, PoolSpec
from zynq_squeeze.schedule.dae_tiling import default_tile
from zynq_squeeze.toolchain import dae_sim

pytestmark = pytest.mark.skipif(shutil.which("g++") is None or shutil.which("make") is None,
                                reason="needs g++ and make")

# a small engine (K = 1): the chain tiles, and the config header differs from the defaults
CFG = DaeConfig(k=1, in_rows=512, w_rows=256, p_rows=16, acc_rows=512, cv_rows=512,
                sq_rows=512, out_rows=512)


@pytest.fixture(scope="module")
def model():
    """conv(+maxpool) -> fire chain as one DaeProgram, its input, golden output and the
    cycles of the Python-driven simulation (beat_x100 = 100)."""
    rng = np.random.default_rng(7)
    conv = ConvLayer("conv1", (3, 19, 17), conv_params(rng, 8, 3, 3, stride=(2, 2)),
                     PoolSpec("max", (3, 3), (2, 2), ceil_mode=True))
    fr = fire(rng, "fire2", conv.out_shape, 4, 8, 8)
    layers = [conv, fr]
    prog = build_dae_program(CFG, layers, [default_tile(CFG, layer) for layer in layers])
    x = rand_input(rng, conv.in_shape)
    y, res = dae_sim.run_program(prog, x, beat_x100=100)
    assert np.array_equal(y, reference_chain(layers, x))
    return prog, x, y, res.cycles


def _project(tmp_path, model, board="zybo-z7-20", clock_mhz=None, sub="p", cycles=True):
    prog, x, y, cyc = model
    return write_hls_project(tmp_path / sub, program=prog, board=board, model_name="tiny",
                             input=x, expected_output=y, expected_cycles=cyc if cycles else None,
                             clock_mhz=clock_mhz)


def _make(hls: Path, target: str, env=None) -> subprocess.CompletedProcess:
    env = dict(os.environ if env is None else env, AP_TYPES=str(native.ap_types_dir()))
    return subprocess.run(["make", "-s", "-C", str(hls), target], capture_output=True,
                          text=True, env=env, timeout=600)


def _tb(hls: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(hls / "tb_zsq_dae"), str(hls)], capture_output=True, text=True,
                          timeout=300)


def test_testbench_passes_and_detects_corruption(tmp_path, model):
    prog, _, y, cyc = model
    hls = _project(tmp_path, model)
    r = _make(hls, "tb")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout and "FAIL" not in r.stdout
    assert f"tiny: {cyc} cycles (Python simulation {cyc}) for {len(prog.words)} instructions" in r.stdout
    assert f"PASS: {y.size} output bytes match" in r.stdout
    # corrupt the expected output: FAIL, mismatch count, non-zero exit
    exp = bytearray((hls / "tb_expected.bin").read_bytes())
    exp[0] ^= 0x5A  # pixel 0, channel 0
    exp[-8 - 8 + 3] ^= 0x5A  # a real channel of the last pixel (16 channels = 2 groups)
    (hls / "tb_expected.bin").write_bytes(bytes(exp))
    r = _tb(hls)
    assert r.returncode == 1
    assert f"FAIL: 2 of {y.size}" in r.stdout


def test_testbench_checks_the_cycles_and_reports_refused_programs(tmp_path, model):
    prog, *_ = model
    hls = _project(tmp_path, model)
    assert _make(hls, "tb").returncode == 0
    # another expected cycle count: the simulation's timing constants differ -> FAIL
    src = (hls / "tb_zsq_dae.cpp").read_text()
    assert "#define TB_EXPECTED_CYCLES" in src
    hls2 = _project(tmp_path, (prog, model[1], model[2], model[3] + 1), sub="q")
    r = _make(hls2, "tb")
    assert r.returncode != 0 and f"FAIL: {model[3]} cycles, the Python-driven simulation counted {model[3] + 1}" in r.stdout
    # params with a zero multiplier: the engine refuses the program and says why
    words = list(prog.words)
    lp = [int(w) >> 32 for w in words if int(w) & 15 == 1 and (int(w) >> 16) & 0xFF == 24]
    wgt = bytearray((hls / "tb_wgt.bin").read_bytes())
    wgt[lp[0] * 8 + 4:lp[0] * 8 + 6] = b"\0\0"
    (hls / "tb_wgt.bin").write_bytes(bytes(wgt))
    r = _tb(hls)
    assert r.returncode == 1
    assert "FAIL: the engine refused the program (error -6: instruction" in r.stdout


def test_missing_data_fails_cleanly(tmp_path, model):
    hls = _project(tmp_path, model)
    assert _make(hls, "tb").returncode == 0
    (hls / "tb_wgt.bin").unlink()
    r = _tb(hls)
    assert r.returncode == 1 and "FAIL: testbench data missing" in r.stdout
    (hls / "tb_insn.bin").write_bytes(b"\0" * 12)  # not whole words / wrong count
    assert _tb(hls).returncode == 1


def test_make_tb_without_ap_types_explains(tmp_path, model):
    hls = _project(tmp_path, model)
    env = {k: v for k, v in os.environ.items() if k != "XILINX_HLS"}
    r = subprocess.run(["make", "-s", "-C", str(hls), "tb", "AP_TYPES=/nonexistent", "PYTHON=false"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0 and "ap_types headers (ap_int.h, hls_stream.h) not found" in r.stdout + r.stderr


def test_generated_sources_pass_lint(tmp_path, model):
    """Every C/C++ file of the exported project passes every rule (the decoupled-engine
    rule set included): what Vitis HLS is handed is what the lint checked."""
    hls = _project(tmp_path, model)
    files = sorted(list(hls.glob("*.cpp")) + list(hls.glob("*.h")))
    assert {"zsq_dae_top.cpp", "zsq_dae.h", "zsq_dae_config.h", "tb_zsq_dae.cpp"} <= {f.name for f in files}
    assert lint_files(files, rules="all") == []


def test_project_contents(tmp_path, model):
    prog, x, y, _ = model
    hls = _project(tmp_path, model, clock_mhz=150)
    names = {p.name for p in hls.iterdir()}
    for f in ("zsq_dae_top.cpp", "zsq_dae.h", "zsq_dae_cfg.h", "zsq_isa.h", "zsq_dae_config.h",
              "zsq_dae_sim.cpp", "zsq_dae_sim.h", "tb_zsq_dae.cpp", "tb_insn.bin", "tb_wgt.bin",
              "tb_arena_in.bin", "tb_expected.bin", "run_hls.tcl", "block_design.tcl", "Makefile",
              "README.md"):
        assert f in names, f
    assert not any(n.startswith("zsq_engine") or n in ("zsq_types.h", "zsq_config.h")
                   for n in names)  # nothing of the old engine
    assert (hls / "tb_insn.bin").read_bytes() == np.asarray(prog.words, "<u8").tobytes()
    assert (hls / "tb_wgt.bin").read_bytes() == np.asarray(prog.weights, "<u8").tobytes()
    assert (hls / "tb_arena_in.bin").stat().st_size == prog.arena_words * 8
    cfg_h = (hls / "zsq_dae_config.h").read_text()
    for k, v in CFG.macros().items():
        assert f"#define {k} {v}\n" in cfg_h, k
    assert "#define ZSQD_RD_LATENCY 40" in cfg_h
    part = get_board("zybo-z7-20").part
    tcl = (hls / "run_hls.tcl").read_text()
    bd = (hls / "block_design.tcl").read_text()
    for needle in ("open_project", "set_top zsq_dae", 'add_files zsq_dae_top.cpp -cflags "-I."',
                   'add_files zsq_dae_config.h -cflags "-I."',
                   'add_files -tb tb_zsq_dae.cpp -cflags "-I."',
                   'add_files -tb zsq_dae_sim.cpp -cflags "-I."', "add_files -tb tb_insn.bin",
                   f"set_part {{{part}}}", "create_clock -period 6.667", "csim_design",
                   "csynth_design", "cosim_design", "export_design -format ip_catalog"):
        assert needle in tcl, needle
    # the simulation driver is never a synthesis source
    assert "add_files zsq_dae_sim.cpp" not in tcl
    for needle in (f"set part {{{part}}}", "processing_system7", "apply_bd_automation",
                   "xilinx.com:hls:zsq_dae:1.0",
                   "CONFIG.PCW_USE_S_AXI_HP0 {1}", "CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64}",
                   "CONFIG.PCW_USE_M_AXI_GP0 {1}", "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {150}",
                   "FCLK_CLK0", "s_axi_control", "m_axi_gmem_insn", "m_axi_gmem_wgt",
                   "m_axi_gmem_rd", "m_axi_gmem_wr", "assign_bd_address", "validate_bd_design",
                   "make_wrapper", "write_bitstream", "zsq_hls/solution1/impl/ip"):
        assert needle in bd, needle
    mk = (hls / "Makefile").read_text()
    for target in ("tb:", "csim:", "csynth:", "cosim:", "ip:", "bitstream:", "clean:"):
        assert f"\n{target}" in mk, target
    assert "SOURCES := zsq_dae_top.cpp\n" in mk and "TB_SOURCES := zsq_dae_sim.cpp\n" in mk
    # no absolute paths or timestamps in the text files
    for p in hls.iterdir():
        if p.suffix in (".tcl", ".md", ".cpp", ".h") or p.name == "Makefile":
            text = p.read_text()
            assert str(tmp_path) not in text and "/work/" not in text, p.name


def test_ultrascale_board_uses_the_mpsoc(tmp_path, model):
    hls = _project(tmp_path, model, board=get_board("ultra96-v2"))
    bd = (hls / "block_design.tcl").read_text()
    assert "xczu3eg-sbva484-1" in bd and "zynq_ultra_ps_e" in bd and "pl_clk0" in bd
    assert "create_clock -period 10" in (hls / "run_hls.tcl").read_text()


def test_bitstream_without_tools_explains_and_fails(tmp_path, model):
    hls = _project(tmp_path, model)
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
    a = _project(tmp_path, model, sub="a")
    b = _project(tmp_path, model, sub="b")
    fa = sorted(p.name for p in a.iterdir())
    assert fa == sorted(p.name for p in b.iterdir())
    for name in fa:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_bad_arguments(tmp_path, model):
    prog, x, y, _ = model
    kw = dict(program=prog, board="zybo-z7-20", model_name="m")
    with pytest.raises(ValueError, match="shape"):
        write_hls_project(tmp_path, input=y, **kw)
    with pytest.raises(ValueError, match="shape"):
        write_hls_project(tmp_path, input=x, expected_output=x, **kw)
    with pytest.raises(ValueError, match="unknown board"):
        write_hls_project(tmp_path, input=x, **dict(kw, board="nope"))
    with pytest.raises(ValueError, match="program.cfg"):
        write_hls_project(tmp_path, input=x, cfg=DaeConfig(), **kw)
    with pytest.raises(TypeError, match="DaeConfig"):
        write_hls_project(tmp_path, input=x, cfg=object(), **kw)
    import dataclasses
    cut = dataclasses.replace(prog, words=prog.words[:-1])
    with pytest.raises(ValueError, match="FINISH"):
        write_hls_project(tmp_path, input=x, **dict(kw, program=cut))
    # the golden output is computed when not given
    hls = write_hls_project(tmp_path / "g", input=x, **kw)
    assert (hls / "tb_expected.bin").read_bytes() == (_project(tmp_path, model, sub="h")
                                                      / "tb_expected.bin").read_bytes()


def test_interface_ports_parsed_from_pragmas():
    src = """
    #pragma HLS INTERFACE m_axi port = a offset = slave bundle = gmem_a
    #pragma HLS INTERFACE mode=m_axi port=b bundle=gmem_b
    #pragma HLS INTERFACE m_axi port = c offset = slave bundle = gmem_a
    #pragma HLS INTERFACE s_axilite port = return
    """
    assert engine_interface_ports(src) == (["m_axi_gmem_a", "m_axi_gmem_b"], True)


# ---------------------------------------------------------------------------------------
# Interface definition (zynq_squeeze.engine.interface): register map, header, pragmas,
# and the tool plumbing generated from it.

import json  # noqa: E402
import re  # noqa: E402

from zynq_squeeze.engine import interface as itf  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HW_H = Path(__file__).resolve().parent / "fixtures" / "hw_h"


def _fixture_top(desc: dict) -> itf.TopInterface:
    args = []
    for a in desc["args"]:
        if a["kind"] == "m_axi":
            args.append(itf.Arg(a["name"], "void *", a["direction"],
                                m_axi=itf.MAxi(f"gmem_{a['name']}", depth=1, offset=a["offset"])))
        else:
            args.append(itf.Arg(a["name"], f"ap_uint<{a['bits']}>", a["direction"],
                                bits=a["bits"]))
    rb = desc["return_bits"]
    return itf.TopInterface(desc["name"], tuple(args), return_type=f"ap_uint<{rb}>" if rb else None,
                            return_bits=rb)


@pytest.mark.parametrize("fixture", sorted(json.loads((HW_H / "tops.json").read_text())
                                           .keys() - {"_doc"}))
def test_register_map_rule_reproduces_real_hw_h(fixture):
    desc = json.loads((HW_H / "tops.json").read_text())[fixture]
    real = itf.parse_hw_h((HW_H / fixture).read_text())
    assert len(real) >= 8  # the fixture was read
    assert itf.hw_h_offsets(_fixture_top(desc)) == real


def test_register_map_rule_details():
    # output scalar: data, ap_vld word, then n+1 unused words (64-bit: 6 words in all)
    top = itf.TopInterface("t", (itf.Arg("cycles", "uint64_t *", "out", bits=64),
                                 itf.Arg("n", "int", "in", bits=32),
                                 itf.Arg("input", "int", "in", bits=8)),
                           return_type="long long", return_bits=64)
    m = itf.hw_h_offsets(top)
    assert m["ADDR_AP_RETURN"] == 0x10 and m["BITS_AP_RETURN"] == 64
    assert (m["ADDR_CYCLES_DATA"], m["ADDR_CYCLES_CTRL"], m["ADDR_N_DATA"]) == (0x1c, 0x24, 0x34)
    assert m["ADDR_INPUT_R_DATA"] == 0x3c  # HDL keyword renamed like Vitis does
    # 32-bit addresses without -m_axi_addr64
    p = itf.TopInterface("t", (itf.Arg("a", "int *", "in", m_axi=itf.MAxi("g", 1)),
                               itf.Arg("b", "int", "in", bits=32)))
    assert itf.hw_h_offsets(p, addr64=False)["ADDR_B_DATA"] == 0x18
    assert itf.hw_h_offsets(p)["ADDR_B_DATA"] == 0x1c
    with pytest.raises(ValueError, match="inout scalars"):
        itf.register_map(itf.TopInterface("t", (itf.Arg("x", "int *", "inout", bits=32),)))


def test_engine_register_map_is_the_runtime_map():
    m = itf.hw_h_offsets(itf.ENGINE_TOP)
    assert {k: v for k, v in m.items() if k.startswith("ADDR_")} == {
        "ADDR_AP_CTRL": 0x00, "ADDR_GIE": 0x04, "ADDR_IER": 0x08, "ADDR_ISR": 0x0c,
        "ADDR_INSN_DATA": 0x10, "ADDR_INSN_COUNT_DATA": 0x1c, "ADDR_WGT_DATA": 0x24,
        "ADDR_ACT_RD_DATA": 0x30, "ADDR_ACT_WR_DATA": 0x3c, "ADDR_CYCLES_DATA": 0x48,
        "ADDR_CYCLES_CTRL": 0x50}
    assert m["BITS_CYCLES_DATA"] == 64 and m["BITS_INSN_COUNT_DATA"] == 32
    assert "ADDR_AP_RETURN" not in m  # void top


def test_regs_header_is_regenerated_byte_for_byte(tmp_path):
    committed = (REPO / "hls_runtime" / "zsq_regs.h").read_bytes()
    assert itf.regs_header(itf.ENGINE_TOP).encode() == committed
    out = tmp_path / "zsq_regs.h"
    assert itf.main(["--header", str(out)]) == 0
    assert out.read_bytes() == committed
    # the header compiles and its values are the map's
    prog = tmp_path / "p.c"
    prog.write_text('#include <stdio.h>\n#include "zsq_regs.h"\nint main(void){printf("%d %d %d '
                    '%d %d\\n", ZSQ_REG_INSN, ZSQ_REG_INSN_COUNT, ZSQ_REG_ACT_WR, ZSQ_REG_CYCLES, '
                    'ZSQ_REGS_BYTES);'
                    'return 0;}\n')
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{tmp_path}", "-o",
                    str(tmp_path / "p"), str(prog)], check=True)
    r = subprocess.run([str(tmp_path / "p")], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["16", "28", "60", "72", "96"]
    # the zynq backend uses the generated header, not its own offsets
    zynq_c = (REPO / "hls_runtime" / "backends" / "zynq.c").read_text()
    assert '#include "zsq_regs.h"' in zynq_c
    assert not re.search(r"#define\s+ZSQ_REG_\w+\s+0x", zynq_c)
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                    f"-I{REPO / 'hls_runtime'}", f"-I{REPO / 'src'}",
                    str(REPO / "hls_runtime" / "backends" / "zynq.c")], check=True)


def test_check_hw_h_cli(tmp_path, capsys):
    hw = tmp_path / "xzsq_dae_hw.h"
    lines = [f"#define XZSQ_DAE_CONTROL_{k} 0x{v:x}" for k, v in
             itf.hw_h_offsets(itf.ENGINE_TOP).items()]
    hw.write_text("\n".join(lines) + "\n")
    assert itf.main(["--check", str(hw)]) == 0
    hw.write_text("\n".join(lines).replace("ADDR_INSN_COUNT_DATA 0x1c", "ADDR_INSN_COUNT_DATA 0x18"))
    assert itf.main(["--check", str(hw)]) == 1
    assert "ADDR_INSN_COUNT_DATA: xzsq_dae_hw.h has 24, ENGINE_TOP gives 28" in capsys.readouterr().out


def test_source_pragmas_and_signature_match_the_definition():
    src = (REPO / "src" / "zsq_dae_top.cpp").read_text()
    ret, args, pragmas = itf.parse_top(src, "zsq_dae")
    assert itf.ENGINE_TOP.name == "zsq_dae" and ret == "void"
    assert args == [(a.c_type, a.name) for a in itf.ENGINE_TOP.args]
    assert pragmas == itf.pragma_options(itf.ENGINE_TOP)
    assert itf.check_source(itf.ENGINE_TOP, src) == []
    # drift is detected: a changed depth, a missing pragma, a renamed parameter
    bad = src.replace("bundle = gmem_wgt depth = 1048576", "bundle = gmem_wgt depth = 4096")
    assert any("m_axi port=wgt" in d for d in itf.check_source(itf.ENGINE_TOP, bad))
    bad = src.replace("#pragma HLS INTERFACE s_axilite port = insn_count\n", "")
    assert any("s_axilite port=insn_count" in d for d in itf.check_source(itf.ENGINE_TOP, bad))
    bad = src.replace("void zsq_dae(const zsqd_word *insn, uint32_t insn_count",
                      "void zsq_dae(const zsqd_word *insn, uint32_t count")
    assert bad != src
    assert any(d.startswith("parameters:") for d in itf.check_source(itf.ENGINE_TOP, bad))


def test_project_refuses_a_source_that_drifted(tmp_path, model, monkeypatch):
    import zynq_squeeze.codegen.hls_project as hp
    fake = tmp_path / "src"
    shutil.copytree(REPO / "src", fake)
    cpp = fake / "zsq_dae_top.cpp"
    cpp.write_text(cpp.read_text().replace("bundle = gmem_wgt", "bundle = gmem_x"))
    monkeypatch.setattr(hp, "_src_dir", lambda: fake)
    with pytest.raises(ValueError, match="m_axi port=wgt"):
        _project(tmp_path, model)


def test_tcl_config_interface_and_one_hp_port_per_bundle(tmp_path, model):
    hls = _project(tmp_path, model)
    tcl = (hls / "run_hls.tcl").read_text()
    for opt in ("-m_axi_addr64", "-m_axi_max_read_burst_length 16",
                "-m_axi_max_write_burst_length 16", "-m_axi_num_read_outstanding 8",
                "-m_axi_num_write_outstanding 8", "-m_axi_max_widen_bitwidth 0"):
        assert opt in tcl, opt
    bd = (hls / "block_design.tcl").read_text()
    bund = itf.bundles(itf.ENGINE_TOP)
    assert bund == ["gmem_insn", "gmem_wgt", "gmem_rd", "gmem_wr"]
    for i, b in enumerate(bund):
        assert f"CONFIG.PCW_USE_S_AXI_HP{i} {{1}} CONFIG.PCW_S_AXI_HP{i}_DATA_WIDTH {{64}}" in bd
        assert (f"connect_bd_intf_net [get_bd_intf_pins sc_hp{i}/M00_AXI] "
                f"[get_bd_intf_pins ps/S_AXI_HP{i}]") in bd
        assert f"[get_bd_intf_pins zsq_engine_0/m_axi_{b}] [get_bd_intf_pins sc_hp{i}/S00_AXI]" in bd
        assert f"ps/S_AXI_HP{i}_ACLK" in bd
    assert f"S_AXI_HP{len(bund)}" not in bd  # no port without a bundle
    for needle in ("CONFIG.PCW_USE_M_AXI_GP0 {1}", "zsq_engine_0/interrupt", "IRQ_F2P",
                   "assign_bd_address", "report_utilization -file",
                   "report_timing_summary", "-process_bitstream bin", "-arch zynq "):
        assert needle in bd, needle
    readme = (hls / "README.md").read_text()
    assert "| 0x1c | 32 | RW | `insn_count`: 32-bit scalar |" in readme
    assert "| 0x48 | 64 | R | `cycles`: 64-bit scalar |" in readme
    assert "| 0x50 | 1 | R/COR | `cycles_ap_vld` (bit 0) |" in readme
    assert "timing_summary.rpt" in readme


# Tcl stand-ins: run the generated scripts in tclsh with every Xilinx command recorded, so
# the control flow (steps, guards, file outputs) is exercised without the tools.
_TCL_STUBS = r"""
set ::calls {}
proc unknown {args} { lappend ::calls $args; return "" }
proc get_timing_paths {args} {
    lappend ::calls [concat get_timing_paths $args]
    return "path_[lindex $args [expr {[lsearch -exact $args -delay_type] + 1}]]"
}
proc get_property {name args} {
    lappend ::calls [list get_property $name]
    if {$name eq "PROGRESS"} { return "100%" }
    if {$name eq "SLACK"} {
        if {$args eq "path_min"} { return $::env(ZSQ_TEST_WHS) }
        return $::env(ZSQ_TEST_WNS)
    }
    return ""
}
proc write_cfgmem {args} {
    lappend ::calls [concat write_cfgmem $args]
    set f [lindex $args [expr {[lsearch -exact $args -file] + 1}]]
    close [open $f w]
}
rename exit __exit
proc exit {{code 0}} {
    set fh [open calls.txt w]; foreach c $::calls { puts $fh $c }; close $fh
    __exit $code
}
"""


def _tclsh(script: Path, env_extra: dict, args=()) -> tuple[subprocess.CompletedProcess, str]:
    runner = script.parent / "_run.tcl"
    runner.write_text(_TCL_STUBS + f"set argv [list {' '.join(args)}]\nsource {script.name}\n")
    env = dict(os.environ, PATH="/usr/bin:/bin", **env_extra)  # no bootgen on PATH
    r = subprocess.run(["tclsh", runner.name], cwd=script.parent, capture_output=True,
                       text=True, env=env, timeout=60)
    calls = (script.parent / "calls.txt").read_text() if (script.parent / "calls.txt").exists() else ""
    return r, calls


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="needs tclsh")
def test_block_design_timing_guard(tmp_path, model):
    hls = _project(tmp_path, model)
    (hls / "zsq_hls" / "solution1" / "impl" / "ip").mkdir(parents=True)
    bd = hls / "block_design.tcl"
    r, calls = _tclsh(bd, {"ZSQ_TEST_WNS": "-0.213", "ZSQ_TEST_WHS": "0.05"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "ERROR: timing not met at 100 MHz (WNS = -0.213 ns, WHS = 0.05 ns): no bitstream" in r.stdout
    assert "report_timing_summary" in calls and "report_utilization" in calls
    assert "write_bitstream" not in calls
    r, calls = _tclsh(bd, {"ZSQ_TEST_WNS": "0.4", "ZSQ_TEST_WHS": "-0.01"})
    assert r.returncode == 2 and "write_bitstream" not in calls
    r, calls = _tclsh(bd, {"ZSQ_TEST_WNS": "0.4", "ZSQ_TEST_WHS": "0.02"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "write_bitstream -force" in calls and "write_hw_platform" in calls
    bit = hls / "vivado" / "zsq_system.bit"
    assert (hls / "vivado" / "zsq_system.bit.bin").exists()
    assert f"write_cfgmem -force -format BIN -interface SMAPx32 -disablebitswap -loadbit {{up 0x0 {bit}}}" in calls
    assert (hls / "vivado" / "zsq_system.bif").read_text() == f"all:\n{{\n    {bit}\n}}\n"
    assert (hls / "vivado" / "reports" / "address_map.txt").exists()


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="needs tclsh")
def test_run_hls_steps_and_unsupported_tool(tmp_path, model):
    hls = _project(tmp_path, model)
    tcl = hls / "run_hls.tcl"
    r, calls = _tclsh(tcl, {}, args=("csynth", "export"))
    assert r.returncode == 0, r.stdout + r.stderr
    names = [c.split()[0] for c in calls.splitlines()]
    assert "csim_design" not in names and "cosim_design" not in names
    assert names.index("config_interface") < names.index("csynth_design") < names.index("export_design")
    assert ("config_interface -m_axi_addr64 -m_axi_max_read_burst_length 16 "
            "-m_axi_max_write_burst_length 16 -m_axi_num_read_outstanding 8 "
            "-m_axi_num_write_outstanding 8 -m_axi_max_widen_bitwidth 0") in calls
    # a tool that rejects the options (Vivado HLS) stops with a message naming what works
    (hls / "_vivado_hls.tcl").write_text(
        'proc config_interface {args} { error "unknown option -m_axi_max_widen_bitwidth" }\n'
        "source run_hls.tcl\n")
    r, calls = _tclsh(hls / "_vivado_hls.tcl", {}, args=("csynth",))
    assert r.returncode == 1
    assert "needs Vitis HLS 2020.2 or later" in r.stdout and "vivado_hls 2019.2/2020.1" in r.stdout
    assert "csynth_design" not in calls
    r, _ = _tclsh(tcl, {}, args=("synth",))
    assert r.returncode == 1 and "unknown step 'synth'" in r.stdout


def _stand_in(bindir: Path, name: str, version_line: str = "") -> Path:
    log = bindir / f"{name}.args"
    script = bindir / name
    script.write_text("#!/bin/sh\n"
                      f'if [ "$1" = "-version" ]; then echo "{version_line}"; exit 0; fi\n'
                      f'echo "$* | ZSQ_HLS_STEPS=$ZSQ_HLS_STEPS" >> "{log}"\n')
    script.chmod(0o755)
    return log


def test_makefile_tool_selection(tmp_path, model):
    hls = _project(tmp_path, model)
    base = "/usr/bin:/bin"
    # vitis_hls (2022.1): steps after -tclargs; bitstream runs HLS then Vivado
    b1 = tmp_path / "b1"
    b1.mkdir()
    log = _stand_in(b1, "vitis_hls",
                    "Vitis HLS - High-Level Synthesis from C, C++ and OpenCL v2022.1 (64-bit)")
    vlog = _stand_in(b1, "vivado")
    r = _make(hls, "bitstream", env=dict(os.environ, PATH=f"{b1}:{base}"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert log.read_text().splitlines() == ["-f run_hls.tcl -tclargs csynth export | ZSQ_HLS_STEPS="]
    assert vlog.read_text().splitlines() == [
        "-mode batch -nojournal -nolog -source block_design.tcl | ZSQ_HLS_STEPS="]
    # vitis-run (2023.2+): steps through ZSQ_HLS_STEPS
    b2 = tmp_path / "b2"
    b2.mkdir()
    log = _stand_in(b2, "vitis-run")
    r = _make(hls, "cosim", env=dict(os.environ, PATH=f"{b2}:{base}"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert log.read_text().splitlines() == [
        "--mode hls --tcl run_hls.tcl | ZSQ_HLS_STEPS=csynth cosim"]
    # vivado_hls only: a clear error naming what is supported, nothing run
    b3 = tmp_path / "b3"
    b3.mkdir()
    log = _stand_in(b3, "vivado_hls", "Vivado(TM) HLS - v2019.2 (64-bit)")
    r = _make(hls, "csynth", env=dict(os.environ, PATH=f"{b3}:{base}"))
    assert r.returncode != 0
    assert "(Vivado HLS 2019.2/2020.1), which is not supported" in r.stdout
    assert "Vitis HLS 2021.1 or later" in r.stdout
    assert not log.exists()
    # Vitis HLS 2020.1 (picked before vivado_hls): rejected by its version
    b4 = tmp_path / "b4"
    b4.mkdir()
    log = _stand_in(b4, "vitis_hls", "Vitis HLS - High-Level Synthesis from C, C++ and OpenCL v2020.1 (64-bit)")
    _stand_in(b4, "vivado_hls", "v2019.2")
    r = _make(hls, "ip", env=dict(os.environ, PATH=f"{b4}:{base}"))
    assert r.returncode != 0 and "is Vitis HLS 2020.1: this project needs Vitis HLS 2021.1" in r.stdout
    assert not log.exists()
    # Vitis HLS 2020.2 has the config_interface options but not stream type=unsync
    b5 = tmp_path / "b5"
    b5.mkdir()
    log = _stand_in(b5, "vitis_hls", "Vitis HLS - High-Level Synthesis from C, C++ and OpenCL v2020.2 (64-bit)")
    r = _make(hls, "ip", env=dict(os.environ, PATH=f"{b5}:{base}"))
    assert r.returncode != 0 and "is Vitis HLS 2020.2" in r.stdout and "type=unsync" in r.stdout
    assert not log.exists()
