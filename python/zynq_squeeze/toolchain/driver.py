"""Build: partition + codegen + ``tvm.compile`` for the host simulation or the board.

``offload_pass()`` is what the ``zynq-squeeze`` target prepends to TVM's default
pipeline; ``build()`` is the explicit form with options (board, calibration, tuning
log, output directory) that also returns the partition report and codegen results.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tvm
from tvm import relax
from tvm.target import Target

from .. import target
from ..errors import BuildError, OptionError, ZynqSqueezeError

# The PL clocks a Zynq-7000 / UltraScale+ design can be asked to meet, in MHz.
MIN_CLOCK_MHZ = 1.0
MAX_CLOCK_MHZ = 500.0
from ..partitioning import partitioner
from ..quantize.calibrate import calibrate, ensure_calibrated
from ..quantize.ranges import METHODS
from . import context


def offload_pass() -> tvm.transform.Pass:
    """Calibrate (a QDQ model's own scales; else the synthetic set, with a warning, when the
    module carries no calibration), partition and run the zynq_squeeze codegen."""

    @tvm.transform.module_pass(opt_level=0, name="ZynqSqueezeOffload")
    def _offload(mod, ctx):
        opts = context.current()
        try:
            mod = ensure_calibrated(mod, progress=opts.progress)
            calib = partitioner.read_calibration(mod) or {}
            opts.calibration_source, opts.qdq = calib.get("source"), calib.get("qdq")
            opts.calibration_method = calib.get("method")
            opts.bias_correction = calib.get("bias_correction")
            mod, rep = partitioner.partition_with_report(mod)
        except ZynqSqueezeError as e:
            opts.error = e  # crosses TVM's FFI as a RuntimeError: build() restores the type
            raise
        opts.partition_reports.append(rep)
        return relax.transform.RunCodegen()(mod)

    return _offload


def _pack_imports_as_c(module, is_system_lib, prefix, workspace_dir) -> str:
    """``export_library`` hook: the imported modules' blob as a C file."""
    import os

    from tvm.runtime import _ffi_api

    path = os.path.join(workspace_dir, f"{prefix}devc.c")
    with open(path, "w") as f:
        f.write(_ffi_api.ModulePackImportsToC(module, is_system_lib, prefix))
    return path


@dataclass
class BuildResult:
    """What ``build`` returns: the TVM executable plus what the plugin did to make it."""

    executable: relax.Executable
    options: context.BuildOptions
    partition_report: partitioner.PartitionReport
    codegen: list = field(default_factory=list)
    calibration_source: str | None = None  # e.g. "8 user samples", or the synthetic set
    calibration_method: str | None = None  # quantize.ranges.METHODS; None: a QDQ model's
    bias_correction: bool | None = None  # calibrate(bias_correction=); None: a QDQ model

    @property
    def input_split(self) -> dict:
        """The two-plane input: enabled (the option), factor F, and the inputs split
        (``symbol:tensor``); report.json's "input_split"."""
        from ..codegen.lower import INPUT_SPLIT

        split = [f"{lf.symbol}:{t}" for cg in self.codegen for lf in cg.functions
                 for t in lf.inputs if lf.tensors[t].split]
        return {"enabled": self.options.input_split, "factor": INPUT_SPLIT, "inputs": split}

    @property
    def qdq(self) -> dict | None:
        """How a QDQ model's own quantization was used (None for a float model): its scales
        (``asymmetric``: tensors widened; ``calibrated_chains``: chains without scales in
        the model; ``restored_relus``) and, per conv, whether its int8 weights were used
        as-is and why not (``weights``); report.json's "qdq"."""
        info = self.options.qdq
        if info is None:
            return None
        weights = [w for cg in self.codegen for lf in cg.functions for w in lf.weights]
        return {"scales": "model", **info, "weights": weights,
                "weights_as_is": sum(1 for w in weights if w["as_is"]),
                "weights_requantized": sum(1 for w in weights if not w["as_is"])}

    def vm(self, device=None) -> relax.VirtualMachine:
        """A Relax VM over the executable (CPU device by default)."""
        return relax.VirtualMachine(self.executable, device or tvm.cpu())

    @staticmethod
    def offloaded_function(vm: relax.VirtualMachine, symbol: str):
        """The offloaded function ``symbol`` (``codegen[i].functions[j].symbol``) from
        ``vm``'s linked library, to call one function alone (tvm-ffi, destination passing:
        its input tensors, then its output tensors). Raises ``LookupError``."""
        stack = [vm.module]
        while stack:
            m = stack.pop()
            if m.kind == "library":
                try:
                    return m.get_function(symbol)
                except AttributeError:
                    pass
            stack.extend(m.imports)
        raise LookupError(f"offloaded function {symbol} not found in the VM's modules")

    def export_library(self, path, **kwargs) -> None:
        """Write the shared library; board builds link with the ARM cross compiler."""
        if self.options.board_build and "fcompile" not in kwargs:
            from tvm.support import cc

            from .compiler import ARM_PREFIX

            kwargs["fcompile"] = cc.cross_compiler(ARM_PREFIX + "g++")
            # Pack the module blob as C so the cross compiler builds it with the board's
            # hard-float ABI (an LLVM-packed devc.o carries no VFP attributes).
            kwargs.setdefault("fpack_imports", _pack_imports_as_c)
        self.executable.export_library(str(path), **kwargs)


def check_clock(clock_mhz) -> None:
    """Raise OptionError unless ``clock_mhz`` is None (the board's) or a PL clock in
    [MIN_CLOCK_MHZ, MAX_CLOCK_MHZ] MHz (0, negative, NaN and absurd values are refused)."""
    if clock_mhz is not None and not (isinstance(clock_mhz, (int, float))
                                      and MIN_CLOCK_MHZ <= clock_mhz <= MAX_CLOCK_MHZ):
        raise OptionError(f"clock {clock_mhz!r} MHz is outside [{MIN_CLOCK_MHZ:g}, "
                          f"{MAX_CLOCK_MHZ:g}] MHz (the PL clock of a Zynq design)")


def check_calibration_method(method) -> None:
    """Raise OptionError unless ``method`` is None (the default) or one of
    ``quantize.ranges.METHODS``."""
    if method is not None and method not in METHODS:
        raise OptionError(f"calibration method {method!r} is not one of {', '.join(METHODS)}")


def build(mod: tvm.IRModule, board: str = "zybo-z7-20", calibration=None, tuning_log=None,
          *, out_dir=None, model_name: str = "model", clock_mhz: float | None = None,
          board_build: bool = False, progress: bool = False,
          strict_qdq: bool = False, calibration_method: str | None = None,
          bias_correction: bool | None = None, input_split: bool = False) -> BuildResult:
    """Compile ``mod`` for ``board``; the result runs in ``relax.VirtualMachine``.

    ``calibration``: samples for ``calibrate`` (list of arrays or of dicts); None keeps
    the calibration the module carries, or uses the synthetic set with a warning.
    ``tuning_log``: a JSON schedule log, or a measurement log of ``tune`` (``.jsonl``:
    the best measured engine and per-layer tiles apply). ``out_dir``: where the generated sources go
    (a temporary directory when None). ``board_build``: cross-compile for the board's
    ARM (needs ``g++-arm-linux-gnueabihf``) instead of the host simulation.
    A module imported from a QDQ model uses the model's own scales (no calibration needed;
    given samples are then ignored with a warning); ``strict_qdq`` refuses one whose
    offloaded tensors are asymmetric (``QdqRangeError``) instead of widening their ranges.
    ``calibration_method``: ``calibrate``'s ``method`` (``quantize.ranges.METHODS``) and
    ``bias_correction`` its bias correction; given, a module without calibration is
    calibrated with them (on the synthetic set without samples); None: the defaults.
    ``input_split``: write the image a conv reads as two int8 planes (hi and the residual
    lo, ``codegen.lower.INPUT_SPLIT``); False: one plane.
    """
    from ..boards import get_board

    get_board(board)  # unknown boards fail here, before any work
    check_clock(clock_mhz)
    check_calibration_method(calibration_method)
    kw = {k: v for k, v in (("method", calibration_method),
                            ("bias_correction", bias_correction)) if v is not None}
    if calibration is not None or ((strict_qdq or kw)
                                   and partitioner.read_calibration(mod) is None):
        mod = calibrate(mod, calibration, progress=progress, strict=strict_qdq, **kw)
    opts = context.BuildOptions(
        board=board, out_dir=Path(out_dir) if out_dir else None,
        tuning_log=Path(tuning_log) if tuning_log else None, model_name=model_name,
        clock_mhz=clock_mhz, progress=progress, board_build=board_build,
        input_split=bool(input_split))
    tgt = Target(target.BOARD_CONFIG if board_build else target.HOST_CONFIG)
    with context.using(opts):
        try:
            ex = tvm.compile(mod, target=tgt)
        except RuntimeError as e:
            if opts.error is not None:  # the codegen's own error, with its type and message
                raise opts.error from None
            if "KeyboardInterrupt" in str(e):  # Ctrl-C inside tvm.compile crosses as text
                raise KeyboardInterrupt from None
            raise
    if not opts.partition_reports:
        raise BuildError("the zynq-squeeze pipeline did not run (was the default pipeline "
                         "replaced after importing zynq_squeeze?)")
    return BuildResult(executable=ex, options=opts, partition_report=opts.partition_reports[-1],
                       codegen=list(opts.results), calibration_source=opts.calibration_source,
                       calibration_method=opts.calibration_method,
                       bias_correction=opts.bias_correction)
