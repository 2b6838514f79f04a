"""The README of a deployment bundle, for the person at the board, and the Python wrapper.

``write_board_readme(out_dir, ...)`` fills ``templates/board_README.md``: the bundle's
files, the model's inputs and outputs, the Linux image requirements (fpga-manager,
configfs overlays, generic-uio, u-dma-buf) per image family, building the bitstream,
loading, running (``zsq_infer``, ``zsq_model.py``), the modeled performance (labelled as
modeled) and troubleshooting. ``write_python_wrapper(out_dir)`` copies
``templates/zsq_model.py``.

Deterministic: no dates, no paths of the build machine; every model-derived string (model
and tensor names) passes through ``codegen.safe_text``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ..boards import Board, get_board
from ..codegen.safe_text import safe_text
from ..codegen.template_fill import fill as _fill
from ..codegen.template_fill import read_template
from ..engine.interface import ENGINE_TOP
from .boot import BootFiles

__all__ = ["board_readme", "write_board_readme", "write_python_wrapper", "GLIBC_MIN"]

# ARCHITECTURE.md (platform facts): what Debian's arm-linux-gnueabihf toolchain links
# dynamically needs glibc 2.34 or later on the board; the executable is static instead.
GLIBC_MIN = "2.34"


def _template(*parts: str) -> str:
    return read_template("zynq_squeeze.deployment", *parts)


def _num(x: float, digits: int = 3) -> str:
    """Short deterministic decimal: 3 significant digits at least, no exponent."""
    x = float(x)
    if x == 0:
        return "0"
    d = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    s = f"{x:.{d}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def _io(items, what: str) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for k, item in enumerate(items):
        try:
            name, shape = item
            shape = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise ValueError(f"{what}[{k}] must be (name, shape), got {item!r}") from None
        if any(d < 0 for d in shape):
            raise ValueError(f"{what}[{k}] has a negative dimension: {shape}")
        out.append((safe_text(name), shape))
    return out


def _io_table(inputs, outputs) -> str:
    rows = ["| | name | shape | floats |", "|---|---|---|---|"]
    for kind, items in (("input", inputs), ("output", outputs)):
        for k, (name, shape) in enumerate(items):
            n = math.prod(shape)
            rows.append(f"| {kind} {k} | `{name}` | {'x'.join(map(str, shape)) or 'scalar'} | {n} |")
    return "\n".join(rows)


def _perf_table(latency_ms, fps, accel_ms, clock_mhz, n_offloaded, n_cpu, arm_ms=None,
                copies_ms=None, cpu_name="Cortex-A9") -> str:
    rows = ["| quantity (modeled) | value |", "|---|---|",
            f"| PL clock | {_num(clock_mhz)} MHz |"]
    if latency_ms is not None:
        rows.append(f"| latency per inference (batch 1) | {_num(latency_ms)} ms |")
    if fps is not None:
        rows.append(f"| throughput | {_num(fps)} inferences/s |")
    if accel_ms is not None:
        rows.append(f"| of which on the accelerator | {_num(accel_ms)} ms |")
    if arm_ms is not None:
        rows.append(f"| of which CPU operators ({cpu_name}, one core) | {_num(arm_ms)} ms |")
    if copies_ms is not None:
        rows.append(f"| of which copies (quantize, DMA buffer, cache sync, dequantize) "
                    f"| {_num(copies_ms)} ms |")
    if n_offloaded is not None:
        rows.append(f"| offloaded functions (accelerator) | {int(n_offloaded)} |")
    if n_cpu is not None:
        rows.append(f"| CPU operators (Cortex-A9) | {int(n_cpu)} |")
    if latency_ms is None and fps is None:
        rows.append("| latency, throughput | not modeled for this bundle |")
    return "\n".join(rows)


def _py_example(inputs, model_file: str, lib: str) -> str:
    names = ["x"] if len(inputs) == 1 else [f"x{k}" for k in range(len(inputs))]
    code = [(f'with ZsqModel("{model_file}", lib="./{lib}") as m:', ""),
            ("    print(m.inputs, m.outputs)", "[(name, shape), ...]")]
    for k, (nm, (_, shape)) in enumerate(zip(names, inputs)):
        code.append((f"    {nm} = np.zeros({shape!r}, dtype=np.float32)", f"input {k}"))
    code += [(f"    outputs = m.run({', '.join(names)})", "one float32 array per output"),
             ("    print(m.stats)", "total_ms, accel_ms, accel_cycles")]
    width = max(len(c) for c, note in code if note) + 2
    lines = ["import numpy as np", "from zsq_model import ZsqModel", ""]
    lines += [f"{c:<{width}}# {note}" if note else c for c, note in code]
    return "\n".join(lines)


def _check_positive(name: str, v):
    if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive number or None, got {v!r}")


def board_readme(*, model_name: str, board, boot: BootFiles,
                 inputs: Sequence[tuple[str, Sequence[int]]],
                 outputs: Sequence[tuple[str, Sequence[int]]],
                 latency_ms: float | None = None, fps: float | None = None,
                 accel_ms: float | None = None, arm_ms: float | None = None,
                 copies_ms: float | None = None, n_offloaded: int | None = None,
                 n_cpu: int | None = None, executable: str = "zsq_infer",
                 library: str = "libzsq_model.so", model_file: str = "model.zsqm",
                 glibc_min: str = GLIBC_MIN) -> str:
    """Text of the bundle's README (see ``write_board_readme``)."""
    b = board if isinstance(board, Board) else get_board(str(board))
    for name, v in (("latency_ms", latency_ms), ("fps", fps), ("accel_ms", accel_ms)):
        _check_positive(name, v)
    for name, v in (("arm_ms", arm_ms), ("copies_ms", copies_ms)):
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a number >= 0 or None, got {v!r}")
    if fps is None and latency_ms is not None:
        fps = 1000.0 / latency_ms  # batch 1, one inference at a time
    ins, outs = _io(inputs, "inputs"), _io(outputs, "outputs")
    if not ins or not outs:
        raise ValueError("the model needs at least one input and one output")
    exe, lib, mfile = (safe_text(executable), safe_text(library), safe_text(model_file))
    mib = boot.dma_bytes >> 20
    if boot.cma_mib is None:
        cma = (f"{mib} MiB fit the default area (16 MiB on ARM kernels), no `cma=` is "
               "needed.")
    else:
        cma = (f"that is more than the default area (16 MiB on ARM kernels) has free, "
               f"hence `cma={boot.cma_mib}M` in `boot/bootargs.txt`.")
    values = dict(
        MODEL=safe_text(model_name), BOARD=b.name, PART=b.part, TOP=ENGINE_TOP.name,
        EXE=exe, LIB=lib, MODEL_FILE=mfile, IO_TABLE=_io_table(ins, outs),
        BOOTARGS=boot.bootargs, UDMABUF=boot.udmabuf_name, UIO_NAME=boot.uio_name,
        DMA_MIB=mib, DMA_NEED=boot.dma_need, DMA_BYTES=boot.dma_bytes, CMA_NOTE=cma,
        FIRMWARE=boot.firmware_name, CLOCK_MHZ=_num(boot.clock_mhz),
        CTL_BASE=f"0x{boot.ctl_base:08x}", CTL_RANGE_KIB=boot.ctl_range // 1024,
        PS_IRQ=boot.irq_pin, IRQ_BIT=boot.irq_bit, IRQ_ID=boot.irq_id, GIC_SPI=boot.gic_spi,
        PY_EXAMPLE=_py_example(ins, mfile, lib), GLIBC_MIN=safe_text(glibc_min),
        PERF_TABLE=_perf_table(latency_ms, fps, accel_ms, boot.clock_mhz, n_offloaded, n_cpu,
                               arm_ms, copies_ms, b.cpu.name),
    )
    return _fill(_template("board_README.md"), values)


def write_board_readme(out_dir, *, name: str = "README.md", **kw) -> Path:
    """Write the bundle's README to ``out_dir/name`` and return its path.

    Keywords (all but the first five optional): ``model_name``; ``board`` (Board or name);
    ``boot`` (the :class:`~zynq_squeeze.deployment.boot.BootFiles` of ``write_boot_files``);
    ``inputs``/``outputs``: ``[(name, shape)]`` in the order of the C API; the modeled
    ``latency_ms`` (one inference end to end, batch 1), ``fps`` (default 1000 /
    latency_ms), ``accel_ms``, ``arm_ms`` (CPU operators) and ``copies_ms`` (the
    offloaded calls' quantize, copies, cache syncs, dequantize); ``n_offloaded``/``n_cpu`` (function counts); the bundle's file names
    ``executable``, ``library``, ``model_file``; ``glibc_min`` of the library.
    """
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = board_readme(**kw).encode("utf-8")
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return path


def write_python_wrapper(out_dir) -> Path:
    """Copy ``zsq_model.py`` (the ctypes wrapper of ``zsq_model.h``) into ``out_dir``."""
    path = Path(out_dir) / "zsq_model.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _template("zsq_model.py").encode("utf-8")
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return path
