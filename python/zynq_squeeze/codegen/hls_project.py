"""Write a self-contained Vitis HLS / Vivado project for one compiled model.

``write_hls_project(out_dir, program=..., board=..., ...)`` creates ``out_dir/hls/`` with:

* the decoupled engine's sources (docs/ENGINE.md): ``zsq_dae_top.cpp`` (the
  synthesized top ``zsq_dae``), ``zsq_dae.h``, ``zsq_dae_cfg.h``, ``zsq_isa.h``, and the
  model's ``zsq_dae_config.h`` (its ``ZSQD_*`` macros, ``DaeConfig.macros()`` plus the
  timing constants), which ``zsq_dae_cfg.h`` includes before its defaults;
* a C testbench ``tb_zsq_dae.cpp`` with the simulation driver ``zsq_dae_sim.cpp/.h`` and
  the runtime's program validation ``zsq_runtime.c/.h`` (testbench only, never
  synthesized) and its data (``tb_*.bin``, 64-bit little-endian
  words): the program's instructions and weights, the arena image with its input and the
  expected output. The testbench calls the top function ``zsq_dae`` on the whole program
  and compares the output tensor bit-exactly (``PASS``/``FAIL``, exit status 0/1);
* ``run_hls.tcl`` (Vitis HLS 2021.1+ for csynth, 2020.2+ options: explicit ``config_interface``, csim, csynth, cosim,
  IP export), ``block_design.tcl`` (Vivado: PS + engine IP with one HP port per m_axi
  bundle, GP0 control at the fixed window and interrupt of ``boards.PL_ATTACH`` (the
  deployment bundle's device-tree overlay uses the same), address map; reports, a
  WNS/WHS guard, bitstream,
  ``.bit.bin`` for fpga-manager, .xsa), a ``Makefile`` (``tb``, ``csim``, ``csynth``,
  ``cosim``, ``ip``, ``bitstream``, ``clean``; picks vitis_hls / vitis-run, rejects
  vivado_hls) and a ``README.md`` with the register map.

Everything that depends on the engine's top-level ports comes from
``zynq_squeeze.engine.interface.ENGINE_TOP``; the project refuses a source whose top
drifted from it.

Output is deterministic: the same inputs give byte-identical files (no timestamps, no
absolute paths).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..boards import Board, get_board
from ..engine import interface as itf
from ..engine.dae_config import DaeConfig
from .dae_program import pack_tensor
from .safe_text import safe_text
from .template_fill import fill as _fill
from .template_fill import read_template

__all__ = ["write_hls_project", "engine_interface_ports", "dae_config_header", "PROJECT",
           "SOLUTION", "SYNTH_SOURCES", "SYNTH_HEADERS", "TB_SOURCES", "TB_FILES"]

PROJECT = "zsq_hls"
SOLUTION = "solution1"
# What is synthesized (the top and what it includes) and what only the testbench uses.
SYNTH_SOURCES = ("zsq_dae_top.cpp",)
SYNTH_HEADERS = ("zsq_dae.h", "zsq_dae_cfg.h", "zsq_isa.h")
CONFIG_HEADER = "zsq_dae_config.h"
TB_SOURCES = ("zsq_dae_sim.cpp",)
TB_HEADERS = ("zsq_dae_sim.h", "zsq_isa_derived.h")
# from hls_runtime/ (the rest from src/): the testbench validates the program with the
# runtime's zsq_rt_validate before the top runs it
TB_RUNTIME = ("zsq_runtime.c", "zsq_runtime.h")
TB_FILES = ("tb_insn.bin", "tb_wgt.bin", "tb_arena_in.bin", "tb_expected.bin")

# Vivado board-file patterns (get_board_parts) for the PS presets.
BOARD_PATTERNS = {
    "zybo-z7-20": "*:zybo-z7-20:*",
    "zybo-z7-10": "*:zybo-z7-10:*",
    "pynq-z2": "*:pynq-z2:*",
    "ultra96-v2": "*:ultra96v2:*",
}


def _template(name: str) -> str:
    return read_template("zynq_squeeze.codegen", name)


def _src_dir() -> Path:
    from .. import native
    return native.src_dir()


def _runtime_dir() -> Path:
    from .. import native
    return native.runtime_dir()


def engine_interface_ports(engine_cpp: str) -> tuple[list[str], bool]:
    """(m_axi interface port names of the IP, has s_axilite control) from the
    ``#pragma HLS INTERFACE`` lines of the engine's top function."""
    bundles: list[str] = []
    ports_no_bundle: list[str] = []
    axilite = False
    for m in re.finditer(r"(?im)^\s*#\s*pragma\s+HLS\s+INTERFACE\s+(.*)$", engine_cpp):
        body = m.group(1)
        kind = re.search(r"\b(m_axi|s_axilite|mode\s*=\s*m_axi|mode\s*=\s*s_axilite)\b", body)
        if not kind:
            continue
        if "s_axilite" in kind.group(1):
            axilite = True
            continue
        b = re.search(r"\bbundle\s*=\s*(\w+)", body)
        if b:
            if b.group(1) not in bundles:
                bundles.append(b.group(1))
        else:
            p = re.search(r"\bport\s*=\s*(\w+)", body)
            if p and p.group(1) not in ports_no_bundle:
                ports_no_bundle.append(p.group(1))
    ports = [f"m_axi_{b}" for b in bundles]
    if ports_no_bundle:  # Vitis puts un-bundled m_axi ports in the default bundle gmem
        ports.append("m_axi_gmem")
    return ports, axilite


def _config_interface_tcl() -> str:
    """``config_interface`` lines of run_hls.tcl from ``interface.CONFIG_INTERFACE``; the
    first one is guarded so that a tool without these options (Vivado HLS, Vitis HLS
    2020.1) stops with a message naming the supported tools."""
    opts = []
    for k, v in itf.CONFIG_INTERFACE.items():
        if isinstance(v, bool):
            if v:
                opts.append(f"-{k}")
        else:
            opts.append(f"-{k} {v}")
    body = " \\\n        ".join(opts)
    return "\n".join([
        "if {[catch {config_interface " + body + "} msg]} {",
        '    puts "ERROR: config_interface failed ($msg): this project needs Vitis HLS 2020.2 or'
        ' later\\',
        '          (vitis_hls, or vitis-run --mode hls from 2023.2); vivado_hls 2019.2/2020.1 is'
        ' not supported"',
        "    exit 1",
        "}",
    ])


def _hp_ports(board: Board, m_axi: list[str]) -> list[tuple[str, str, int]]:
    """[(m_axi port of the IP, PS slave port, HP index)]: one HP port per bundle."""
    n_hp = itf.HP_PORTS_ZYNQ7
    if len(m_axi) > n_hp:
        raise ValueError(f"the engine has {len(m_axi)} m_axi bundles ({', '.join(m_axi)}) but "
                         f"{board.name} has {n_hp} HP ports")
    ultra = board.part.startswith("xczu")
    return [(port, f"S_AXI_HP{i}_FPD" if ultra else f"S_AXI_HP{i}", i)
            for i, port in enumerate(m_axi)]


def _ps_settings(board: Board, clock_mhz: float, m_axi: list[str]) -> dict[str, str]:
    mhz = _fmt(clock_mhz)
    hp = _hp_ports(board, m_axi)
    bits = board.hp_port_bits
    connect = []
    for port, slave, i in hp:
        connect += [
            f"# {port} -> {slave}",
            f"set sc_hp{i} [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect:1.0 sc_hp{i}]",
            f"set_property -dict [list CONFIG.NUM_SI {{1}} CONFIG.NUM_MI {{1}}] $sc_hp{i}",
            f"connect_bd_intf_net [get_bd_intf_pins zsq_engine_0/{port}] "
            f"[get_bd_intf_pins sc_hp{i}/S00_AXI]",
            f"connect_bd_intf_net [get_bd_intf_pins sc_hp{i}/M00_AXI] [get_bd_intf_pins ps/{slave}]",
        ]
    sc_aclk = " ".join(f"[get_bd_pins sc_hp{i}/aclk]" for _, _, i in hp)
    sc_rst = " ".join(f"[get_bd_pins sc_hp{i}/aresetn]" for _, _, i in hp)
    common = dict(HP_CONNECT="\n".join(connect), SC_ACLK_PINS=sc_aclk, SC_ARESETN_PINS=sc_rst,
                  HP_LIST=", ".join(f"{port} -> {slave}" for port, slave, _ in hp))
    if board.part.startswith("xczu"):
        # HP0..3_FPD are S_AXI_GP2..GP5 in the MPSoC's configuration names
        use = " ".join(f"CONFIG.PSU__USE__S_AXI_GP{2 + i} {{1}} "
                       f"CONFIG.PSU__SAXIGP{2 + i}__DATA_WIDTH {{{bits}}}" for _, _, i in hp)
        block = "\n".join([
            "set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e ps]",
            "apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e \\",
            "    -config [list apply_board_preset $have_board] $ps",
            f"# HPM0_FPD master for control, one HP*_FPD slave per m_axi bundle ({len(hp)}), "
            "PL clock 0",
            "set_property -dict [list CONFIG.PSU__USE__M_AXI_GP0 {1} "
            "CONFIG.PSU__USE__M_AXI_GP1 {0} \\",
            f"    {use} \\",
            "    CONFIG.PSU__FPGA_PL0_ENABLE {1} "
            f"CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {{{mhz}}} \\",
            "    CONFIG.PSU__USE__IRQ0 {1}] $ps",
        ])
        aclk = " ".join(["[get_bd_pins ps/maxihpm0_fpd_aclk]"]
                        + [f"[get_bd_pins ps/saxihp{i}_fpd_aclk]" for _, _, i in hp])
        return dict(common, PS_BLOCK=block, PS_MASTER="M_AXI_HPM0_FPD", PS_CLK="pl_clk0",
                    PS_RESET="pl_resetn0", PS_ACLK_PINS=aclk, BOOTGEN_ARCH="zynqmp",
                    **_attach_values(board))
    use = " \\\n    ".join(f"CONFIG.PCW_USE_S_AXI_HP{i} {{1}} "
                             f"CONFIG.PCW_S_AXI_HP{i}_DATA_WIDTH {{{bits}}}" for _, _, i in hp)
    block = "\n".join([
        "set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 ps]",
        "apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \\",
        "    -config [list make_external {FIXED_IO, DDR} apply_board_preset $have_board \\",
        "             Master Disable Slave Disable] $ps",
        f"# M_AXI_GP0 master for control; S_AXI_HP0..HP{len(hp) - 1} ({bits}-bit AXI3) slaves, one "
        "per m_axi bundle;",
        f"# FCLK_CLK0 at {mhz} MHz, fabric interrupt IRQ_F2P",
        "set_property -dict [list CONFIG.PCW_USE_M_AXI_GP0 {1} \\",
        f"    {use} \\",
        "    CONFIG.PCW_EN_CLK0_PORT {1} CONFIG.PCW_EN_RST0_PORT {1} \\",
        f"    CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {{{mhz}}} \\",
        "    CONFIG.PCW_USE_FABRIC_INTERRUPT {1} CONFIG.PCW_IRQ_F2P_INTR {1}] $ps",
    ])
    aclk = " ".join(["[get_bd_pins ps/M_AXI_GP0_ACLK]"]
                    + [f"[get_bd_pins ps/S_AXI_HP{i}_ACLK]" for _, _, i in hp])
    return dict(common, PS_BLOCK=block, PS_MASTER="M_AXI_GP0", PS_CLK="FCLK_CLK0",
                PS_RESET="FCLK_RESET0_N", PS_ACLK_PINS=aclk, BOOTGEN_ARCH="zynq",
                **_attach_values(board))


def _attach_values(board: Board) -> dict[str, str]:
    """Block-design placeholders for the IP's fixed control window and interrupt, from
    ``boards.PL_ATTACH`` (the device-tree overlay of ``deploy.boot`` uses the same)."""
    a = board.attach
    return dict(PS_IRQ=a.irq_pin, IRQ_BIT=str(a.irq_bit), IRQ_ID=str(a.irq_id),
                GIC_SPI=str(a.gic_spi), CTL_BASE=f"0x{a.ctl_base:08X}",
                CTL_RANGE=f"0x{a.ctl_range:08X}")


def _register_map_md(top: itf.TopInterface) -> str:
    """Markdown table of the s_axilite register map (README)."""
    rows = ["| offset | bits | access | register |", "|---|---|---|---|"]
    what = {"ctrl": "AP_CTRL: ap_start (bit 0), ap_done (1), ap_idle (2), ap_ready (3), "
                    "auto_restart (7)",
            "gie": "GIE: global interrupt enable (bit 0)",
            "ier": "IER: interrupt enable, ap_done (bit 0), ap_ready (bit 1)",
            "isr": "ISR: interrupt status (toggle on write to clear)",
            "return": "`ap_return` (engine status, read after ap_done)"}
    for r in itf.register_map(top):
        desc = what.get(r.kind) or (f"`{r.name}`: {r.bits}-bit m_axi address" if r.kind == "addr"
                                    else f"`{r.name}`: {r.bits}-bit scalar")
        rows.append(f"| 0x{r.offset:02x} | {r.bits} | {r.access} | {desc} |")
        if r.ctrl_offset is not None:
            rows.append(f"| 0x{r.ctrl_offset:02x} | 1 | R/COR | `{r.name}_ap_vld` (bit 0) |")
    return "\n".join(rows)


def _fmt(x: float) -> str:
    """Deterministic short decimal: 100.0 -> '100', 6.6667 -> '6.667'."""
    s = f"{float(x):.3f}".rstrip("0").rstrip(".")
    return s or "0"


def _int8_chw(a, shape: tuple[int, int, int], what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{what} has shape {tuple(a.shape)}, the program expects (C, H, W) = "
                         f"{tuple(shape)}")
    if a.dtype != np.int8:
        if not np.issubdtype(a.dtype, np.integer) or a.min(initial=0) < -128 or a.max(initial=0) > 127:
            raise ValueError(f"{what} must be int8 (got {a.dtype})")
        a = a.astype(np.int8)
    return a


def _words_le(a) -> bytes:
    return np.ascontiguousarray(np.asarray(a, dtype=np.uint64)).astype("<u8").tobytes()


def _graph(program) -> list[tuple]:
    """``program.layers`` as (layer, input id, output id) (a plain chain is numbered)."""
    return [item if isinstance(item, tuple) else (item, k, k + 1)
            for k, item in enumerate(program.layers)]


def _golden(program, x: np.ndarray) -> np.ndarray:
    """The numpy integer reference of the program's last output for input ``x`` (concat
    parts stored in place: ``program.views``)."""
    from .golden import run_graph

    graph = _graph(program)
    tensors = getattr(program, "tensors", None)
    if not tensors:  # a bare description: the layers' own shapes
        tensors = {ti: layer.in_shape for layer, ti, _ in graph}
        tensors.update({to: layer.out_shape for layer, _, to in graph})
    shapes = {k: (t.c, t.h, t.w) if hasattr(t, "c") else tuple(t) for k, t in tensors.items()}
    read = run_graph(graph, shapes, getattr(program, "views", None) or {},
                     {getattr(program, "inputs", [graph[0][1]])[0]: x})
    outputs = getattr(program, "outputs", None) or [graph[-1][2]]
    return read(outputs[-1])


def write_hls_project(out_dir, *, program, board, model_name: str, input, cfg: DaeConfig | None = None,
                      expected_output=None, expected_cycles: int | None = None,
                      clock_mhz: float | None = None, beat_x100: int = 100) -> Path:
    """Write ``out_dir/hls/`` (see module doc) and return its path.

    ``program``: a :class:`~zynq_squeeze.codegen.dae_program.DaeProgram` (``words``,
    ``weights``, ``arena_words``, ``input``/``output`` tensors, ``layers``); ``cfg`` its
    engine (default ``program.cfg``; must match it). ``board``: a
    :class:`~zynq_squeeze.boards.Board` or a board name. ``input``: int8 ``(C, H, W)`` of
    the program's input; ``expected_output`` defaults to the numpy golden model of the
    program's layers on it. ``expected_cycles``: the simulation's cycles for this input
    with ``beat_x100`` (the testbench then checks them; None: printed only).
    ``clock_mhz`` defaults to ``cfg.clock_mhz``.
    """
    cfg = program.cfg if cfg is None else cfg
    if not isinstance(cfg, DaeConfig):
        raise TypeError(f"cfg must be a DaeConfig, got {type(cfg).__name__}")
    if cfg != program.cfg:
        raise ValueError("cfg differs from the engine the program was lowered for (program.cfg)")
    board = board if isinstance(board, Board) else get_board(str(board))
    clock = float(clock_mhz if clock_mhz is not None else (cfg.clock_mhz or board.default_clock_mhz))
    if not clock > 0:
        raise ValueError(f"clock_mhz must be > 0, got {clock}")
    if not int(beat_x100) >= 1:
        raise ValueError(f"beat_x100 must be >= 1, got {beat_x100}")
    words = np.asarray(program.words, dtype=np.uint64)
    wgt = np.asarray(program.weights, dtype=np.uint64)
    if words.size < 1 or (int(words[-1]) & 15) != 15:
        raise ValueError("program.words must be a non-empty instruction stream ending with FINISH")
    top = itf.ENGINE_TOP
    depth = {a.name: a.m_axi.depth for a in top.args if a.m_axi is not None}
    if words.size > depth["insn"]:  # the co-simulation allocates the pragma's depth
        raise ValueError(f"the program has {words.size} instructions, more than the insn port's "
                         f"depth {depth['insn']}")
    t_in, t_out = program.input, program.output
    arena_words = int(program.arena_words)
    x = _int8_chw(input, (t_in.c, t_in.h, t_in.w), "input")
    if len(getattr(program, "inputs", [0])) != 1:
        raise ValueError("the testbench feeds one input tensor; the program has "
                         f"{len(program.inputs)}")
    if expected_output is None:
        expected_output = _golden(program, x)
    y = _int8_chw(expected_output, (t_out.c, t_out.h, t_out.w), "expected_output")
    if t_in.base + t_in.words > arena_words or t_out.base + t_out.words > arena_words:
        raise ValueError("the program's tensors exceed its arena")
    arena = np.zeros(arena_words, dtype=np.uint64)
    arena[t_in.base:t_in.base + t_in.words] = pack_tensor(x)
    layer_names = [re.sub(r"[^A-Za-z0-9_.:+-]", "_", str(getattr(layer, "name", f"layer{i}")))
                   for i, (layer, _, _) in enumerate(_graph(program))]

    hls = Path(out_dir) / "hls"
    hls.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    for name in SYNTH_SOURCES + SYNTH_HEADERS + TB_SOURCES + TB_HEADERS + TB_RUNTIME:
        src = _runtime_dir() if name in TB_RUNTIME else _src_dir()
        if not (src / name).is_file():
            raise FileNotFoundError(f"engine source {name} not found in {src}")
        files[name] = (src / name).read_bytes()
    drift = itf.check_source(top, files[SYNTH_SOURCES[0]].decode("utf-8", "replace"))
    if drift:  # the tcl, block design and register map would not match the IP
        raise ValueError(f"{SYNTH_SOURCES[0]} does not match zynq_squeeze.engine.interface."
                         "ENGINE_TOP: " + "; ".join(drift))
    files[CONFIG_HEADER] = dae_config_header(
        cfg, f"model '{model_name}', board {board.name}, HLS project", beat_x100).encode()
    files["tb_insn.bin"] = _words_le(words)
    files["tb_wgt.bin"] = _words_le(wgt)
    files["tb_arena_in.bin"] = _words_le(arena)
    files["tb_expected.bin"] = _words_le(pack_tensor(y))

    m_axi = [f"m_axi_{b}" for b in itf.bundles(top)]
    synth_headers = SYNTH_HEADERS + (CONFIG_HEADER,)
    engine_summary = (f"{cfg.pe_oc}x8 MAC array (K = {cfg.k}); rows per bank: in_buf "
                      f"{cfg.in_rows}, w_buf {cfg.w_rows}, p_buf {cfg.p_rows}, acc {cfg.acc_rows}, "
                      f"cv_buf {cfg.cv_rows}, sq_buf {cfg.sq_rows}, out_buf {cfg.out_rows}"
                      + (f", bp_buf {cfg.bp_rows} (residual add)" if cfg.residual else "")
                      + "; 64-bit AXI")
    values = dict(
        MODEL=safe_text(model_name), BOARD=board.name, PART=board.part,
        CLOCK_MHZ=_fmt(clock), PERIOD_NS=_fmt(1000.0 / clock), PROJECT=PROJECT, SOLUTION=SOLUTION,
        IP_REPO=f"{PROJECT}/{SOLUTION}/impl/ip", BOARD_PATTERN=BOARD_PATTERNS.get(board.name, ""),
        LAYER_NAMES=", ".join(layer_names) or "-", N_LAYERS=len(layer_names),
        N_INSN=int(words.size), WGT_WORDS=int(wgt.size), ARENA_WORDS=arena_words,
        OUT_BASE=int(t_out.base), OUT_WORDS=int(t_out.words), OUT_C=int(t_out.c),
        OUT_H=int(t_out.h), OUT_W=int(t_out.w),
        EXPECTED_CYCLES=-1 if expected_cycles is None else int(expected_cycles),
        IN_SHAPE=f"{t_in.c}x{t_in.h}x{t_in.w}", OUT_SHAPE=f"{t_out.c}x{t_out.h}x{t_out.w}",
        M_AXI_PORTS=" ".join(m_axi), M_AXI_LIST=", ".join(m_axi), TOP=top.name,
        N_HP=len(m_axi), CONFIG_INTERFACE_TCL=_config_interface_tcl(),
        REGISTER_MAP=_register_map_md(top), ENGINE_SUMMARY=engine_summary,
        SOURCES=" ".join(SYNTH_SOURCES), HEADERS=" ".join(synth_headers),
        TB_SOURCES=" ".join(TB_SOURCES), TB_HEADERS=" ".join(TB_HEADERS),
        TB_RUNTIME=" ".join(TB_RUNTIME),
        ADD_FILES="\n".join(f'add_files {n} -cflags "-I."' for n in SYNTH_SOURCES + synth_headers),
        ADD_TB_FILES="\n".join(['add_files -tb tb_zsq_dae.cpp -cflags "-I."']
                               + [f'add_files -tb {n} -cflags "-I."'
                                  for n in TB_SOURCES + TB_HEADERS + TB_RUNTIME]
                               + [f"add_files -tb {n}" for n in TB_FILES]),
    )
    values.update(_ps_settings(board, clock, m_axi))
    files["tb_zsq_dae.cpp"] = _fill(_template("tb_zsq_dae.cpp.in"), values).encode()
    files["run_hls.tcl"] = _fill(_template("run_hls.tcl.in"), values).encode()
    files["block_design.tcl"] = _fill(_template("block_design.tcl.in"), values).encode()
    files["Makefile"] = _fill(_template("Makefile.in"), values).encode()
    files["README.md"] = _fill(_template("hls_README.md.in"), values).encode()

    for name in sorted(files):
        path = hls / name
        if not path.exists() or path.read_bytes() != files[name]:
            path.write_bytes(files[name])
    return hls




def dae_config_header(cfg, comment: str, beat_x100: int = 100) -> str:
    """``zsq_dae_config.h``: the ``ZSQD_*`` macros of engine ``cfg`` (a DaeConfig) and
    its HP-port timing constants. ``src/zsq_dae_cfg.h`` includes it when it is on the
    include path, so the engine sources stay unchanged per model."""
    macros = dict(cfg.macros())
    macros.update(ZSQD_RD_LATENCY=int(cfg.rd_latency), ZSQD_WR_LATENCY=int(cfg.wr_latency),
                  ZSQD_OUTSTANDING=int(cfg.outstanding), ZSQD_DDR_BEAT_X100=int(beat_x100))
    lines = ["/*",
             f" * zsq_dae_config.h - decoupled-engine parameters: {safe_text(comment)}.",
             " * Generated by zynq_squeeze.codegen.hls_project from the model's DaeConfig; "
             "included by",
             " * zsq_dae_cfg.h (before its defaults) when it is on the include path.",
             " */",
             "#ifndef ZSQ_DAE_CONFIG_H", "#define ZSQ_DAE_CONFIG_H", ""]
    lines += [f"#define {k} {int(v)}" for k, v in sorted(macros.items())]
    lines += ["", "#endif /* ZSQ_DAE_CONFIG_H */", ""]
    return "\n".join(lines)
