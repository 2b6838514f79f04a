"""Boot files of a deployment bundle: what Linux on the board needs to load the accelerator
and hand it to the runtime (``hls_runtime/backends/zynq.c``).

``write_boot_files(out_dir, board, dma_bytes, ...)`` writes ``out_dir/boot/``:

* ``zsq-overlay.dtso``: a device-tree overlay source (``/dts-v1/; /plugin/;``) for the
  configfs overlay interface. Fragment 0 sets ``firmware-name`` on the FPGA region
  (``&fpga_full``): applying the overlay programs the PL through fpga-manager. Fragment 1
  adds, under ``&amba``, the IP's ``s_axi_control`` window as a ``generic-uio`` node with
  its interrupt, and a ``u-dma-buf`` node sized for the model. The window and interrupt are
  ``boards.PL_ATTACH``'s, the numbers the block design (``codegen/hls_project``) assigns.
* ``zsq-overlay.dtbo``: the same compiled with ``dtc -@`` when dtc is available here (the
  board then needs no dtc); the loader compiles the source itself otherwise.
* ``bootargs.txt``: what to append to the kernel command line, one paragraph per item.
* ``load_bitstream.sh``: POSIX sh loader (``load`` / ``unload``), see its header.

All text is deterministic (no dates, no absolute paths); the model's name passes through
``codegen.safe_text``. Only Zynq-7000 boards are supported: the overlay uses the labels
and clock indices of the kernel's ``zynq-7000.dtsi``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..boards import Board, get_board
from ..codegen.safe_text import safe_text
from ..codegen.template_fill import fill as _fill
from ..codegen.template_fill import read_template
from ..engine.interface import ENGINE_TOP

__all__ = ["BootFiles", "write_boot_files", "dma_buffer_bytes", "cma_mib", "overlay_source",
           "bootargs_text", "load_script", "compile_overlay", "FIRMWARE_NAME", "OVERLAY_NAME",
           "UDMABUF_NAME", "UIO_NAME", "DTSO_NAME", "DTBO_NAME", "SCRIPT_NAME", "BOOTARGS_NAME",
           "MAX_DMA_BYTES"]

# Names shared with the runtime and the README.
FIRMWARE_NAME = "zsq_dae.bit.bin"  # firmware-name: what fpga-manager loads from /lib/firmware
OVERLAY_NAME = "zsq"               # configfs overlay directory / fpgautil region
UDMABUF_NAME = "udmabuf0"          # the runtime's default (env ZSQ_UDMABUF)
UDMABUF_MINOR = 0
UIO_NAME = ENGINE_TOP.name         # generic-uio names the device after its node: "zsq_dae"
DTSO_NAME = "zsq-overlay.dtso"
DTBO_NAME = "zsq-overlay.dtbo"
SCRIPT_NAME = "load_bitstream.sh"
BOOTARGS_NAME = "bootargs.txt"

_MIB = 1 << 20
# CONFIG_CMA_SIZE_MBYTES defaults to 16 on ARM; other drivers (USB, display) take some of
# it, so a buffer above half of it asks for a larger area.
DEFAULT_CMA_MIB = 16
_CMA_FREE_MIB = 8
# The buffer is one physically contiguous CMA allocation in the board's DDR (512 MiB to
# 1 GiB on the Zynq-7000 boards): more than a quarter of it is not a realistic request.
MAX_DMA_BYTES = 256 * _MIB


@dataclass(frozen=True)
class BootFiles:
    """What ``write_boot_files`` wrote and the numbers in it (for the README and tests).

    ``dma_need``: bytes the model needs in the DMA buffer (the caller's figure);
    ``dma_bytes``: the u-dma-buf size, ``dma_need`` rounded up to whole MiB.
    ``cma_mib``: the ``cma=`` size bootargs.txt asks for (None: the default area suffices).
    ``ctl_base``/``ctl_range``: the control window (bytes); ``irq_id``/``gic_spi``: its
    interrupt; ``clock_mhz``: the PL clock the overlay sets. ``dtbo``: whether the compiled
    overlay was written. ``files``: names under ``boot/``.
    """
    boot_dir: Path
    files: tuple[str, ...]
    dma_need: int
    dma_bytes: int
    cma_mib: int | None
    ctl_base: int
    ctl_range: int
    irq_pin: str
    irq_bit: int
    irq_id: int
    gic_spi: int
    clock_mhz: float
    uio_name: str
    udmabuf_name: str
    firmware_name: str
    bootargs: str
    dtbo: bool


def _template(name: str) -> str:
    return read_template("zynq_squeeze.deployment", "boot", name)


def _fmt_mhz(x: float) -> str:
    s = f"{float(x):.3f}".rstrip("0").rstrip(".")
    return s or "0"


def dma_buffer_bytes(need: int) -> int:
    """The u-dma-buf size for a model that needs ``need`` bytes: whole MiB (at least 1),
    so the CMA request and the number in the overlay stay readable."""
    if isinstance(need, bool) or not isinstance(need, int) or need <= 0:
        raise ValueError(f"dma_bytes must be a positive number of bytes, got {need!r}")
    out = max(1, -(-need // _MIB)) * _MIB
    if out > MAX_DMA_BYTES:
        raise ValueError(f"the model needs {need} bytes of DMA memory; more than "
                         f"{MAX_DMA_BYTES // _MIB} MiB of contiguous memory is not available "
                         "on a Zynq-7000 board")
    return out


def cma_mib(buffer_bytes: int) -> int | None:
    """The ``cma=`` size in MiB for a buffer of ``buffer_bytes``, or None when it fits the
    default area: the buffer plus 16 MiB for the other CMA users, in multiples of 16 MiB."""
    mib = -(-buffer_bytes // _MIB)
    if mib <= _CMA_FREE_MIB:
        return None
    return -(-(mib + DEFAULT_CMA_MIB) // 16) * 16


def _board(board) -> Board:
    b = board if isinstance(board, Board) else get_board(str(board))
    if b.family != "zynq7":
        raise ValueError(f"boot files are written for Zynq-7000 boards only; {b.name} "
                         f"({b.part}) is a {b.family} board")
    return b


def _values(board: Board, dma_need: int, model_name: str, clock_mhz: float) -> dict[str, object]:
    a = board.attach
    dma = dma_buffer_bytes(dma_need)
    return dict(
        MODEL=safe_text(model_name), BOARD=board.name, PART=board.part,
        FIRMWARE=FIRMWARE_NAME, OVERLAY=OVERLAY_NAME, UIO_NAME=UIO_NAME,
        UIO_NODE=f"{UIO_NAME}@{a.ctl_base:x}", UDMABUF=UDMABUF_NAME, UDMABUF_MINOR=UDMABUF_MINOR,
        CTL_BASE=f"0x{a.ctl_base:08x}", CTL_RANGE=f"0x{a.ctl_range:x}",
        CTL_RANGE_KIB=a.ctl_range // 1024, PS_MASTER="M_AXI_GP0", PS_IRQ=a.irq_pin,
        IRQ_BIT=a.irq_bit, IRQ_ID=a.irq_id, GIC_SPI=a.gic_spi, FCLK_INDEX=a.fclk_index,
        FCLK_NAME="fclk0", CLOCK_MHZ=_fmt_mhz(clock_mhz), CLOCK_HZ=int(round(clock_mhz * 1e6)),
        DMA_NEED=dma_need, DMA_BYTES=dma, DMA_SIZE_HEX=f"0x{dma:08x}", DMA_MIB=dma // _MIB,
    )


def _clock(board: Board, clock_mhz: float | None) -> float:
    c = float(board.default_clock_mhz if clock_mhz is None else clock_mhz)
    if not 10.0 <= c <= 250.0:  # FCLK range the Zynq-7000 PL clock generator is used at
        raise ValueError(f"clock_mhz must be in 10..250 MHz, got {clock_mhz}")
    return c


def overlay_source(board, dma_bytes: int, *, model_name: str = "model",
                   clock_mhz: float | None = None) -> str:
    """Text of ``zsq-overlay.dtso`` for ``board`` and a model needing ``dma_bytes`` of DMA
    memory; ``clock_mhz``: the bitstream's PL clock (default the board's)."""
    b = _board(board)
    return _fill(_template("zsq-overlay.dtso.in"), _values(b, dma_bytes, model_name,
                                                            _clock(b, clock_mhz)))


def load_script(board, dma_bytes: int, *, model_name: str = "model",
                clock_mhz: float | None = None) -> str:
    """Text of ``load_bitstream.sh`` (see its header for use, variants and environment)."""
    b = _board(board)
    return _fill(_template("load_bitstream.sh.in"), _values(b, dma_bytes, model_name,
                                                             _clock(b, clock_mhz)))


def _bootargs(buffer_bytes: int) -> list[str]:
    args = ["uio_pdrv_genirq.of_id=generic-uio", "clk_ignore_unused"]
    cma = cma_mib(buffer_bytes)
    if cma is not None:
        args.append(f"cma={cma}M")
    return args


def bootargs_text(board, dma_bytes: int, *, model_name: str = "model") -> str:
    """Text of ``bootargs.txt``: the first line that is not a comment is the whole list to
    append to the kernel command line; one paragraph per item says why."""
    b = _board(board)
    buf = dma_buffer_bytes(dma_bytes)
    args = _bootargs(buf)
    cma = cma_mib(buf)
    mib = buf // _MIB
    lines = [
        "# bootargs.txt - kernel command line additions for the zynq-squeeze accelerator",
        f"# (model {safe_text(model_name)}, board {b.name}). Generated by zynq_squeeze.deployment.boot.",
        "#",
        "# Append the next line to the kernel command line (it takes effect at the next boot):",
        "#   U-Boot:     setenv bootargs \"${bootargs} <line>\"; saveenv   (or the image's uEnv.txt /",
        "#               boot.scr / extlinux.conf 'append' line)",
        "#   PetaLinux:  petalinux-config -> DTG Settings -> Kernel Bootargs (or the chosen node",
        "#               of system-user.dtsi)",
        "#   Check after boot: cat /proc/cmdline",
        " ".join(args),
        "",
        "# uio_pdrv_genirq.of_id=generic-uio",
        "#   Makes the generic UIO driver bind to device-tree nodes with compatible = \"generic-uio\",",
        "#   the accelerator's control registers in zsq-overlay.dtso; without it there is no",
        "#   /dev/uioN. Needed when the driver is built into the kernel (PetaLinux, PYNQ); when it",
        "#   is a module, load_bitstream.sh passes the same option to modprobe instead.",
        "",
        "# clk_ignore_unused",
        "#   Linux switches off, at the end of boot, every clock no driver has claimed. The PL",
        "#   clock FCLK_CLK0 drives the accelerator and no driver claims it (generic-uio does not),",
        "#   so without this the engine never answers and every run times out. Alternative: a",
        "#   base device tree whose clkc node has fclk-enable = <0x1>.",
        "",
    ]
    if cma is not None:
        lines += [
            f"# cma={cma}M",
            f"#   The DMA buffer ({mib} MiB, one physically contiguous block) comes from the",
            f"#   contiguous memory area, which is {DEFAULT_CMA_MIB} MiB by default on ARM kernels and",
            "#   shared with other drivers: this reserves the buffer plus 16 MiB for them. Without",
            "#   it u-dma-buf fails with 'dma_alloc_coherent' errors in dmesg and there is no",
            f"#   /dev/{UDMABUF_NAME}. Drop it if the kernel already reserves more (dmesg | grep cma).",
            "",
        ]
    else:
        lines += [
            "# cma= is not needed:",
            f"#   the DMA buffer ({mib} MiB) fits the contiguous memory area ARM kernels reserve by",
            f"#   default ({DEFAULT_CMA_MIB} MiB). If dmesg shows 'dma_alloc_coherent' failures from u-dma-buf",
            "#   (other drivers took the area), add cma=64M.",
            "",
        ]
    return "\n".join(lines)


def compile_overlay(dtso: Path, dtbo: Path) -> None:
    """``dtc -@ -I dts -O dtb -o dtbo dtso``; raises RuntimeError with dtc's message on
    failure, FileNotFoundError when dtc is not installed."""
    dtc = shutil.which("dtc")
    if dtc is None:
        raise FileNotFoundError("dtc not found (Debian: apt install device-tree-compiler)")
    r = subprocess.run([dtc, "-@", "-I", "dts", "-O", "dtb", "-o", str(dtbo), str(dtso)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"dtc could not compile {Path(dtso).name}: {r.stderr.strip()}")


def _write(path: Path, data: bytes, mode: int | None = None) -> None:
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    if mode is not None and (path.stat().st_mode & 0o777) != mode:
        os.chmod(path, mode)


def write_boot_files(out_dir, board, dma_bytes: int, *, model_name: str = "model",
                     clock_mhz: float | None = None, compile_dtbo: bool | None = None) -> BootFiles:
    """Write ``out_dir/boot/`` (see module doc) and return what was written.

    ``board``: a :class:`~zynq_squeeze.boards.Board` or name (Zynq-7000 only).
    ``dma_bytes``: bytes the model needs in the one DMA buffer: the sum over its offloaded
    programs of their instructions and weights, each 4 KiB aligned, plus the largest
    arena, 4 KiB aligned (the layout of ``backends/zynq.c``); rounded up to whole MiB here.
    ``model_name``: for the comments (through ``safe_text``). ``clock_mhz``: the PL clock
    the bitstream was built for (default the board's; the overlay sets FCLK0 to it).
    ``compile_dtbo``: write ``zsq-overlay.dtbo`` too (None: when dtc is installed; True:
    dtc required). A stale ``.dtbo`` is removed when none is written, since the loader
    prefers it to the source.
    """
    b = _board(board)
    clock = _clock(b, clock_mhz)
    buf = dma_buffer_bytes(dma_bytes)
    boot = Path(out_dir) / "boot"
    boot.mkdir(parents=True, exist_ok=True)
    dtso = overlay_source(b, dma_bytes, model_name=model_name, clock_mhz=clock)
    _write(boot / DTSO_NAME, dtso.encode())
    _write(boot / BOOTARGS_NAME, bootargs_text(b, dma_bytes, model_name=model_name).encode())
    _write(boot / SCRIPT_NAME, load_script(b, dma_bytes, model_name=model_name,
                                           clock_mhz=clock).encode(), mode=0o755)
    files = [BOOTARGS_NAME, SCRIPT_NAME, DTSO_NAME]
    want_dtbo = shutil.which("dtc") is not None if compile_dtbo is None else bool(compile_dtbo)
    if want_dtbo:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / DTBO_NAME
            compile_overlay(boot / DTSO_NAME, out)
            _write(boot / DTBO_NAME, out.read_bytes())
        files.append(DTBO_NAME)
    elif (boot / DTBO_NAME).exists():
        (boot / DTBO_NAME).unlink()
    a = b.attach
    return BootFiles(boot_dir=boot, files=tuple(sorted(files)), dma_need=int(dma_bytes),
                     dma_bytes=buf, cma_mib=cma_mib(buf), ctl_base=a.ctl_base,
                     ctl_range=a.ctl_range, irq_pin=a.irq_pin, irq_bit=a.irq_bit,
                     irq_id=a.irq_id, gic_spi=a.gic_spi, clock_mhz=clock, uio_name=UIO_NAME,
                     udmabuf_name=UDMABUF_NAME, firmware_name=FIRMWARE_NAME,
                     bootargs=" ".join(_bootargs(buf)), dtbo=want_dtbo)
