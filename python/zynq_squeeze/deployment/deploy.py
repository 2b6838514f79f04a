"""``zynq_squeeze.deploy``: the bundle a user copies to the board's SD card.

``DIR/`` after ``deploy(mod, board, out_dir=DIR)``::

    README.md          for the board: images, bitstream, install, load, run, what to expect
    zsq_infer          static armv7 hard-float executable (Cortex-A9, NEON): no library needed
    libzsq_model.so    the same as a shared library (C API zsq_model.h, ctypes zsq_model.py)
    model.zsqm         the model file: weights, params, programs, I/O (header, version, CRC-32)
    zsq_model.h        the C API;  zsq_model.py: its ctypes wrapper
    boot/              device-tree overlay (UIO + u-dma-buf nodes sized for this model),
                       bootargs.txt, load_bitstream.sh (fpga-manager)
    hls/               the Vitis HLS / Vivado project that makes the bitstream
    report.json        the modeled figures the README quotes (labelled as modeled)
    bundle.json        every file of the bundle with its size and sha256
    build/             what the executables were built from (generated C, objects)

``host=True`` also builds ``build/host/`` (x86, the engine's C simulation) to check the
bundle on a workstation.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import tvm

from ..boards import DEFAULT_BOARD, get_board
from ..cache import file_sha256
from ..report.summary import make_report
from ..toolchain.driver import BuildResult, check_clock
from . import boot as boot_files
from . import readme
from .bundle import TEMPLATES, Executables, build_executables
from .errors import DeployError

MARKER = ".zynq-squeeze-bundle"
MANIFEST = "bundle.json"
TOP_FILES = ("zsq_infer", "libzsq_model.so", "model.zsqm")
# what a deploy writes at the top of DIR (removed before a new deploy into the same DIR)
OWN_FILES = TOP_FILES + ("zsq_model.h", "zsq_model.py", "README.md", "report.json", MANIFEST,
                         MARKER)
OWN_DIRS = ("boot", "hls", "build")
PAGE = 4096


@dataclass
class Bundle:
    """What ``deploy`` wrote: the bundle directory, its executables and the report."""

    out_dir: Path
    arm: Executables
    host: Executables | None
    report: dict
    boot: boot_files.BootFiles
    files: dict[str, dict] = field(default_factory=dict)  # name -> {bytes, sha256}


def dma_need_bytes(codegen) -> int:
    """Bytes of the one DMA buffer the board runtime lays out (hls_runtime/backends/zynq.c):
    every program's instructions and weights, each 4 KiB aligned, plus the largest arena."""
    def page(n_bytes: int) -> int:
        return -(-n_bytes // PAGE) * PAGE

    if codegen is None or not codegen.programs:
        return PAGE
    progs = sum(page(len(p.words) * 8) + page(len(p.weights) * 8) for p in codegen.programs)
    return progs + max(page(p.arena_words * 8) for p in codegen.programs)


def _prepare(out_dir: Path) -> None:
    """A new directory, or one a previous deploy wrote (its files are replaced); a
    non-empty directory that holds something else is refused rather than mixed into."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DeployError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).exists():
            raise DeployError(f"{out_dir} is not empty and holds no bundle: choose a new or "
                              "empty directory")
        for name in OWN_FILES:
            p = out_dir / name
            if p.is_file() or p.is_symlink():
                p.unlink()
        for name in OWN_DIRS:
            p = out_dir / name
            if p.is_symlink():
                p.unlink()
            elif p.is_dir():
                shutil.rmtree(p)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("a zynq-squeeze deployment bundle: deploy may replace it\n")


def _report_view(ex: Executables) -> BuildResult:
    """The ARM build as a BuildResult, for the report and the HLS project writers."""
    return BuildResult(executable=None, options=ex.options, partition_report=ex.partition_report,
                       codegen=[ex.codegen] if ex.codegen is not None else [],
                       calibration_source=ex.options.calibration_source)


def deploy(mod: tvm.IRModule, board: str = DEFAULT_BOARD, out_dir="bundle", *,
           calibration=None, tuning_log=None, clock_mhz: float | None = None,
           model_name: str = "model", output_names: list[str] | None = None,
           backend: str = "zynq", host: bool = False, progress: bool = False,
           log=None) -> Bundle:
    """Write a deployment bundle of ``mod`` for ``board`` into ``out_dir`` (see module doc).

    ``calibration``, ``tuning_log``, ``clock_mhz``: as ``zynq_squeeze.build``;
    ``output_names``: the model's output names (default output<k>); ``backend``: how the
    ARM executables reach the accelerator: "zynq" (the IP through UIO and u-dma-buf) or
    "csim" (the engine's C simulation compiled for the ARM: the bundle runs anywhere, e.g.
    under qemu-arm-static, bit-exact with the board); ``host``: also build the x86 variant
    (C simulation) under ``build/host``. ``log``: a print-like function
    for progress lines (None: quiet).
    """
    say = log or (lambda *_: None)
    b = get_board(board)
    if b.family != "zynq7":
        raise DeployError(f"deploy supports Zynq-7000 boards; {b.name} ({b.part}) is a "
                          f"{b.family} board")
    check_clock(clock_mhz)
    if backend not in ("zynq", "csim"):
        raise DeployError(f"backend must be 'zynq' or 'csim', got {backend!r}")
    if tuning_log is not None:
        from ..schedule.select import read_tuning_log
        read_tuning_log(tuning_log)  # a bad log fails before anything is written
    out_dir = Path(out_dir).resolve()
    _prepare(out_dir)
    exes = build_executables(mod, b.name, out_dir / "build", calibration=calibration,
                             tuning_log=tuning_log, clock_mhz=clock_mhz, model_name=model_name,
                             output_names=output_names, arm=True, host=host, progress=progress,
                             backend=None if backend == "zynq" else "csim")
    arm = exes["arm"]
    say(f"[zynq-squeeze] built {arm.infer.name} for the Cortex-A9 ({arm.backend} backend), "
        f"model file {arm.model_file.stat().st_size:,} bytes")
    for src in (arm.infer, arm.shared_library, arm.model_file):
        shutil.copy2(src, out_dir / src.name)
    shutil.copyfile(TEMPLATES / "zsq_model.h", out_dir / "zsq_model.h")
    readme.write_python_wrapper(out_dir)

    view = _report_view(arm)
    report = make_report(view, model_name)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    if arm.codegen is not None:
        from ..codegen.hls_export import export_hls_project
        export_hls_project(view, out_dir)
    engine = arm.codegen.engine if arm.codegen is not None else None
    clock = engine.clock_mhz if engine is not None else clock_mhz
    bf = boot_files.write_boot_files(out_dir, b, dma_need_bytes(arm.codegen),
                                     model_name=model_name, clock_mhz=clock)
    perf = report["performance"]
    rep = arm.partition_report
    readme.write_board_readme(
        out_dir, model_name=model_name, board=b, boot=bf,
        inputs=[(io.name, arm.plan.tensors[io.tensor].shape) for io in arm.plan.inputs],
        outputs=[(io.name, arm.plan.tensors[io.tensor].shape) for io in arm.plan.outputs],
        latency_ms=perf["end_to_end_ms"] or None, accel_ms=perf["latency_ms"] or None,
        arm_ms=perf["arm_ms"], copies_ms=perf["copies_ms"],
        n_offloaded=len(rep.functions) if rep is not None else 0,
        n_cpu=len(rep.cpu_ops) if rep is not None else None)
    files = {}
    for p in sorted(out_dir.rglob("*")):
        rel = p.relative_to(out_dir)
        if p.is_file() and rel.parts[0] != "build" and p.name not in (MANIFEST, MARKER):
            files[str(rel)] = {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
    (out_dir / MANIFEST).write_text(json.dumps(
        {"model": model_name, "board": b.name, "model_id": f"{arm.model_id:016x}",
         "files": files}, indent=1, sort_keys=True) + "\n")
    say(f"[zynq-squeeze] wrote the bundle {out_dir}/ ({len(files)} files; see README.md)")
    return Bundle(out_dir=out_dir, arm=arm, host=exes.get("host"), report=report, boot=bf,
                  files=files)
