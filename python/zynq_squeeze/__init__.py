"""zynq-squeeze: a TVM plugin compiling CNNs for an int8 HLS accelerator on Zynq-7000.

``import zynq_squeeze`` registers the ``"zynq-squeeze"`` target (host C simulation; the
``"zynq-squeeze-arm"`` tag builds for the board's Cortex-A9), the pattern table and the
``relax.ext.zynq_squeeze`` codegen. Then::

    mod = zynq_squeeze.calibrate(mod, samples)          # optional: real calibration data
    ex = tvm.compile(mod, target="zynq-squeeze")        # offloads fire / conv chains
    vm = tvm.relax.VirtualMachine(ex, tvm.cpu())

or ``zynq_squeeze.build(mod, board="zybo-z7-20", calibration=samples)`` for the explicit
form with options.
"""
from __future__ import annotations

from . import codegen as _codegen  # noqa: F401  (registers relax.ext.zynq_squeeze)
from . import patterns as _patterns
from . import target as _target
from .boards import BOARDS, get_board
from .build import BuildResult, build, offload_pass
from .calibrate import calibrate
from .errors import ZynqSqueezeError
from .partition import PartitionReport, partition_with_report

__version__ = "0.1.0"


def partition(mod):
    """Partition ``mod`` for the accelerator: (partitioned module, PartitionReport)."""
    return partition_with_report(mod)


_patterns.register()
_target.install(offload_pass)

__all__ = ["BOARDS", "BuildResult", "PartitionReport", "ZynqSqueezeError", "build",
           "calibrate", "get_board", "partition"]
