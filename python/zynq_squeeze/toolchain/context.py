"""Options that travel from ``zynq_squeeze.build`` (or the CLI) into the codegen.

``RunCodegen`` calls ``relax.ext.zynq_squeeze`` with no way to pass Python objects, so
the options live in a context variable for the duration of one build. A plain
``tvm.compile(mod, target="zynq-squeeze")`` runs with the defaults.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..boards import DEFAULT_BOARD


@dataclass
class BuildOptions:
    """What one build is for and where its artifacts go.

    ``out_dir`` None writes the generated sources to a fresh temporary directory.
    ``tuning_log`` is a JSON schedule log (see ``schedule``); ``model_name`` names the
    model in generated-file headers.
    """

    board: str = DEFAULT_BOARD
    out_dir: Path | None = None
    tuning_log: Path | None = None
    model_name: str = "model"
    clock_mhz: float | None = None
    progress: bool = False
    # True: cross-compile the engine for the board's ARM with the zynq (UIO) backend.
    board_build: bool = False
    # "incbin": the glue links each function's program into its object (model.so);
    # "external": the glue asks zsq_model_blob() for it (a deployment bundle's model file).
    glue_blobs: str = "incbin"
    # the two-plane input of the image a conv reads (codegen/lower.py INPUT_SPLIT)
    input_split: bool = False
    # The runtime backend linked with the glue: "csim" (the engine's C simulation) or
    # "zynq" (the FPGA through UIO); None: zynq for board builds, csim on the host. A board
    # build with "csim" runs the simulation on the ARM (tests under qemu).
    backend: str | None = None
    # Filled by the build: what the codegen produced (for report.json and tests).
    results: list = field(default_factory=list)
    partition_reports: list = field(default_factory=list)
    # The zynq-squeeze error raised inside tvm.compile (TVM's FFI turns it into a plain
    # RuntimeError on the way out; build() re-raises this one instead).
    error: BaseException | None = None
    calibration_source: str | None = None  # what the module was calibrated with
    calibration_method: str | None = None  # how (quantize.ranges.METHODS); None: QDQ scales
    bias_correction: bool | None = None  # whether calibration corrected the conv biases
    qdq: dict | None = None  # a QDQ model's: asymmetric tensors, calibrated chains...

    def replace(self, **kw) -> "BuildOptions":
        return dataclasses.replace(self, **kw)


_temp_dirs: list = []


def temp_dir() -> Path:
    """A fresh directory for generated sources, removed when the process exits."""
    import atexit
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="zynq_squeeze_"))
    if not _temp_dirs:
        atexit.register(lambda: [shutil.rmtree(x, ignore_errors=True) for x in _temp_dirs])
    _temp_dirs.append(d)
    return d


_current: contextvars.ContextVar[BuildOptions | None] = contextvars.ContextVar(
    "zynq_squeeze_build_options", default=None)


def current() -> BuildOptions:
    """The options of the build in progress (defaults outside ``using``)."""
    opts = _current.get()
    return opts if opts is not None else BuildOptions()


@contextlib.contextmanager
def using(opts: BuildOptions):
    """Make ``opts`` the current build options within the block."""
    token = _current.set(opts)
    try:
        yield opts
    finally:
        _current.reset(token)
