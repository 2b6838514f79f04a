"""Write a self-contained Vitis HLS / Vivado project for one compiled model.

``write_hls_project(out_dir, ...)`` creates ``out_dir/hls/`` with:

* the engine sources (``src/*.h``, ``src/*.cpp``) and the model's ``zsq_config.h``;
* a C testbench ``tb_zsq_engine.cpp`` and its data (``tb_*.bin``): the program's
  descriptors, weights and params, an arena image holding one layer's input, and that
  layer's expected output. The testbench runs ``zsq_engine`` on that single layer
  (descriptor pointer + ``layer_index``, ``n_layers = 1``) and compares the output region
  byte-exactly (``PASS``/``FAIL``, exit status 0/1);
* ``run_hls.tcl`` (Vitis HLS: csim, csynth, cosim, IP export), ``block_design.tcl``
  (Vivado: PS + engine IP, bitstream, .xsa), a ``Makefile`` (``tb``, ``csim``,
  ``csynth``, ``cosim``, ``ip``, ``bitstream``, ``clean``) and a ``README.md``.

Output is deterministic: the same inputs give byte-identical files (no timestamps, no
absolute paths).
"""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np

from ..boards import Board, get_board
from ..engine.config import EngineConfig

__all__ = ["write_hls_project", "engine_interface_ports", "PROJECT", "SOLUTION"]

PROJECT = "zsq_hls"
SOLUTION = "solution1"
TB_FILES = ("tb_prog.bin", "tb_weights.bin", "tb_params.bin", "tb_arena_in.bin",
            "tb_expected.bin")

# Vivado board-file patterns (get_board_parts) for the PS presets.
BOARD_PATTERNS = {
    "zybo-z7-20": "*:zybo-z7-20:*",
    "zybo-z7-10": "*:zybo-z7-10:*",
    "pynq-z2": "*:pynq-z2:*",
    "ultra96-v2": "*:ultra96v2:*",
}

_LAYER_WORDS = 80
# word indices of zsq_layer_t (src/zsq_types.h)
_W_KIND, _W_IN_C, _W_IN_H, _W_IN_W, _W_IN_OFF = 2, 3, 4, 5, 6
_W_OUT_C, _W_OUT_H, _W_OUT_W, _W_OUT_OFF = 7, 8, 9, 10


def _template(name: str) -> str:
    return resources.files("zynq_squeeze.codegen").joinpath("templates", name).read_text(encoding="utf-8")


def _fill(text: str, values: dict[str, object]) -> str:
    def sub(m):
        key = m.group(1)
        if key not in values:
            raise KeyError(f"template placeholder @@{key}@@ has no value")
        return str(values[key])

    out = re.sub(r"@@([A-Z_0-9]+)@@", sub, text)
    return out


def _src_dir() -> Path:
    from .. import native
    return native.src_dir()


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


def _ps_settings(board: Board, clock_mhz: float) -> dict[str, str]:
    mhz = _fmt(clock_mhz)
    if board.part.startswith("xczu"):
        block = "\n".join([
            "set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e ps]",
            "apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e \\",
            "    -config [list apply_board_preset $have_board] $ps",
            "# HPM0_FPD master for control, HP0_FPD slave for data, PL clock 0",
            "set_property -dict [list CONFIG.PSU__USE__M_AXI_GP0 {1} "
            "CONFIG.PSU__USE__M_AXI_GP1 {0} \\",
            f"    CONFIG.PSU__USE__S_AXI_GP2 {{1}} CONFIG.PSU__SAXIGP2__DATA_WIDTH "
            f"{{{board.hp_port_bits}}} \\",
            "    CONFIG.PSU__FPGA_PL0_ENABLE {1} "
            f"CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {{{mhz}}} \\",
            "    CONFIG.PSU__USE__IRQ0 {1}] $ps",
        ])
        return dict(PS_BLOCK=block, PS_MASTER="M_AXI_HPM0_FPD", PS_SLAVE="S_AXI_HP0_FPD",
                    PS_CLK="pl_clk0", PS_RESET="pl_resetn0", PS_IRQ="pl_ps_irq0",
                    PS_ACLK_PINS="[get_bd_pins ps/maxihpm0_fpd_aclk] "
                                 "[get_bd_pins ps/saxihp0_fpd_aclk]")
    block = "\n".join([
        "set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7:5.5 ps]",
        "apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \\",
        "    -config [list make_external {FIXED_IO, DDR} apply_board_preset $have_board \\",
        "             Master Disable Slave Disable] $ps",
        f"# M_AXI_GP0 master for control, S_AXI_HP0 ({board.hp_port_bits}-bit) slave for data,",
        f"# FCLK_CLK0 at {mhz} MHz, fabric interrupt IRQ_F2P",
        "set_property -dict [list CONFIG.PCW_USE_M_AXI_GP0 {1} CONFIG.PCW_USE_S_AXI_HP0 {1} \\",
        f"    CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {{{board.hp_port_bits}}} "
        "CONFIG.PCW_EN_CLK0_PORT {1} CONFIG.PCW_EN_RST0_PORT {1} \\",
        f"    CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {{{mhz}}} \\",
        "    CONFIG.PCW_USE_FABRIC_INTERRUPT {1} CONFIG.PCW_IRQ_F2P_INTR {1}] $ps",
    ])
    return dict(PS_BLOCK=block, PS_MASTER="M_AXI_GP0", PS_SLAVE="S_AXI_HP0",
                PS_CLK="FCLK_CLK0", PS_RESET="FCLK_RESET0_N", PS_IRQ="IRQ_F2P",
                PS_ACLK_PINS="[get_bd_pins ps/M_AXI_GP0_ACLK] [get_bd_pins ps/S_AXI_HP0_ACLK]")


def _fmt(x: float) -> str:
    """Deterministic short decimal: 100.0 -> '100', 6.6667 -> '6.667'."""
    s = f"{float(x):.3f}".rstrip("0").rstrip(".")
    return s or "0"


def _hwc_bytes(a: np.ndarray, shape: tuple[int, int, int], what: str) -> bytes:
    a = np.asarray(a)
    if a.dtype != np.int8:
        if not np.issubdtype(a.dtype, np.integer) or a.min(initial=0) < -128 or a.max(initial=0) > 127:
            raise ValueError(f"{what} must be int8 (got {a.dtype})")
        a = a.astype(np.int8)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{what} has shape {tuple(a.shape)}, the layer expects (C, H, W) = "
                         f"{tuple(shape)}")
    return np.ascontiguousarray(a.transpose(1, 2, 0)).tobytes()


def _cycles_of(program, i: int) -> int:
    try:
        return int(program.costs[i].cycles)
    except (AttributeError, IndexError, TypeError):
        return -1


def write_hls_project(out_dir, *, engine_cfg: EngineConfig, board, model_name: str, program,
                      layer_index: int, layer_input, expected_output,
                      clock_mhz: float | None = None) -> Path:
    """Write ``out_dir/hls/`` (see module doc) and return its path.

    ``board``: a :class:`~zynq_squeeze.boards.Board` or a board name. ``program``: a
    :class:`~zynq_squeeze.codegen.program.Program` (``descriptors``, ``weights``, ``params``,
    ``arena_bytes``). ``layer_input`` / ``expected_output``: int8 ``(C, H, W)`` arrays of
    layer ``layer_index`` (its input and the golden model's output). ``clock_mhz``
    defaults to ``engine_cfg.clock_mhz``.
    """
    from .program import engine_config_header

    board = board if isinstance(board, Board) else get_board(str(board))
    clock = float(clock_mhz if clock_mhz is not None else
                  (getattr(engine_cfg, "clock_mhz", None) or board.default_clock_mhz))
    if not clock > 0:
        raise ValueError(f"clock_mhz must be > 0, got {clock}")
    desc = bytes(program.descriptors)
    if len(desc) % (_LAYER_WORDS * 4) or not desc:
        raise ValueError("program.descriptors must hold whole 320-byte layer descriptors")
    n_layers = len(desc) // (_LAYER_WORDS * 4)
    if not 0 <= layer_index < n_layers:
        raise ValueError(f"layer_index {layer_index} out of range (program has {n_layers} layers)")
    words = np.frombuffer(desc, dtype="<i4").reshape(n_layers, _LAYER_WORDS)
    d = words[layer_index]
    in_shape = (int(d[_W_IN_C]), int(d[_W_IN_H]), int(d[_W_IN_W]))
    out_shape = (int(d[_W_OUT_C]), int(d[_W_OUT_H]), int(d[_W_OUT_W]))
    in_off, out_off = int(d[_W_IN_OFF]), int(d[_W_OUT_OFF])
    arena_bytes = int(program.arena_bytes)
    x = _hwc_bytes(layer_input, in_shape, "layer_input")
    y = _hwc_bytes(expected_output, out_shape, "expected_output")
    if in_off + len(x) > arena_bytes or out_off + len(y) > arena_bytes:
        raise ValueError("layer tensors exceed the program's arena")
    arena = bytearray(arena_bytes)
    arena[in_off:in_off + len(x)] = x

    layer_name, layer_kind = f"layer{layer_index}", {1: "conv", 2: "fire"}.get(int(d[_W_KIND]), "?")
    try:
        layer_name = str(program.layers[layer_index][0].name)
    except (AttributeError, IndexError, TypeError):
        pass
    layer_name = re.sub(r"[^A-Za-z0-9_.:/+-]", "_", layer_name)  # safe inside C/Tcl text

    hls = Path(out_dir) / "hls"
    hls.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}

    src = _src_dir()
    sources = sorted(p.name for p in src.glob("*.cpp"))
    headers = sorted(p.name for p in src.glob("*.h"))
    for name in sources + headers:
        files[name] = (src / name).read_bytes()
    if "zsq_engine.cpp" not in sources:
        raise FileNotFoundError(f"zsq_engine.cpp not found in {src}")
    config_comment = f"model '{model_name}', board {board.name}, HLS project"
    files["zsq_config.h"] = engine_config_header(engine_cfg, config_comment).encode()
    headers = sorted(set(headers) | {"zsq_config.h"})

    files["tb_prog.bin"] = desc
    files["tb_weights.bin"] = bytes(program.weights)
    files["tb_params.bin"] = bytes(program.params)
    files["tb_arena_in.bin"] = bytes(arena)
    files["tb_expected.bin"] = y

    m_axi, _ = engine_interface_ports(files["zsq_engine.cpp"].decode("utf-8", "replace"))
    if not m_axi:
        m_axi = ["m_axi_gmem"]
    period = _fmt(1000.0 / clock)
    ip_repo = f"{PROJECT}/{SOLUTION}/impl/ip"
    e = engine_cfg
    engine_summary = (f"{e.pe_oc}x{e.pe_ic} MAC array, input/weight/output buffers "
                      f"{e.in_buf_bytes}/{e.w_buf_bytes}/{e.out_buf_bytes} bytes, "
                      f"{e.acc_words} accumulator words, {e.axi_bits}-bit AXI")
    values = dict(
        MODEL=_safe_text(model_name), BOARD=board.name, PART=board.part,
        CLOCK_MHZ=_fmt(clock), PERIOD_NS=period, PROJECT=PROJECT, SOLUTION=SOLUTION,
        IP_REPO=ip_repo, BOARD_PATTERN=BOARD_PATTERNS.get(board.name, ""),
        LAYER_INDEX=layer_index, LAYER_NAME=layer_name, LAYER_KIND=layer_kind,
        N_LAYERS=n_layers, ARENA_BYTES=arena_bytes, OUT_OFF=out_off, OUT_BYTES=len(y),
        MODEL_CYCLES=_cycles_of(program, layer_index),
        IN_SHAPE="x".join(map(str, in_shape)), OUT_SHAPE="x".join(map(str, out_shape)),
        M_AXI_PORTS=" ".join(m_axi), M_AXI_LIST=", ".join(m_axi),
        SOURCES=" ".join(sources), HEADERS=" ".join(headers), ENGINE_SUMMARY=engine_summary,
        ADD_FILES="\n".join(f'add_files {n} -cflags "-I."' for n in sources + headers),
        ADD_TB_FILES="\n".join(['add_files -tb tb_zsq_engine.cpp -cflags "-I."']
                               + [f"add_files -tb {n}" for n in TB_FILES]),
    )
    values.update(_ps_settings(board, clock))
    files["tb_zsq_engine.cpp"] = _fill(_template("tb_zsq_engine.cpp.in"), values).encode()
    files["run_hls.tcl"] = _fill(_template("run_hls.tcl.in"), values).encode()
    files["block_design.tcl"] = _fill(_template("block_design.tcl.in"), values).encode()
    files["Makefile"] = _fill(_template("Makefile.in"), values).encode()
    files["README.md"] = _fill(_template("hls_README.md.in"), values).encode()

    for name in sorted(files):
        path = hls / name
        if not path.exists() or path.read_bytes() != files[name]:
            path.write_bytes(files[name])
    return hls


def _safe_text(s: str) -> str:
    """A model name safe inside C comments, Tcl strings and Makefile comments."""
    return re.sub(r"[^A-Za-z0-9_.:+-]", "_", str(s)) or "model"
