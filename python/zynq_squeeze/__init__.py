"""zynq-squeeze: a TVM plugin compiling CNNs for an int8 HLS accelerator on Zynq-7000.

``import zynq_squeeze`` registers the ``"zynq-squeeze"`` target (host C simulation; the
``"zynq-squeeze-arm"`` tag builds for the board's Cortex-A9), the pattern table and the
``relax.ext.zynq_squeeze`` codegen. Then::

    mod = zynq_squeeze.calibrate(mod, samples)          # optional: real calibration data
    ex = tvm.compile(mod, target="zynq-squeeze")        # offloads fire / conv chains
    vm = tvm.relax.VirtualMachine(ex, tvm.cpu())

or ``zynq_squeeze.build(mod, board="zybo-z7-20", calibration=samples)`` for the explicit
form with options; ``zynq_squeeze.tune(mod, trials=200, log="tune.jsonl")`` searches the
engine and tiles, and ``build(..., tuning_log="tune.jsonl")`` applies the best found.

The package follows the flow, one subpackage per stage, imports only downward:
``frontend`` -> ``partitioning`` -> ``quantize`` -> ``engine`` -> ``hls`` -> ``schedule``
-> ``codegen`` -> ``toolchain`` -> ``tuning``, then ``report`` and ``deployment``; the
top-level modules ``errors``, ``boards``, ``cache``, ``progress``, ``native`` and
``target`` serve every stage, and
``cli`` sits on top (``tests/test_layout.py`` enforces the order).
"""
from __future__ import annotations

import sys as _sys

from . import target as _target
from .boards import BOARDS, get_board
from .deployment.deploy import Bundle, deploy
from .errors import ZynqSqueezeError
from .frontend import models
from .hls import csynth_report as hls_report
from .partitioning import patterns as _patterns
from .partitioning.partitioner import PartitionReport, partition_with_report
from .quantize.calibrate import calibrate
from .toolchain import relax_ext as _relax_ext  # noqa: F401  (registers relax.ext.zynq_squeeze)
from .toolchain.driver import BuildResult, build, offload_pass
from .tuning.tuner import TuneResult, tune

# Old module paths that user code and notebooks import (``zynq_squeeze.models``,
# ``zynq_squeeze.hls_report``) stay importable as aliases of their new homes.
_sys.modules.setdefault(f"{__name__}.models", models)
_sys.modules.setdefault(f"{__name__}.hls_report", hls_report)

__version__ = "0.1.0"


def partition(mod):
    """Partition ``mod`` for the accelerator: (partitioned module, PartitionReport)."""
    return partition_with_report(mod)


_patterns.register()
_target.install(offload_pass)

__all__ = ["BOARDS", "BuildResult", "Bundle", "PartitionReport", "ZynqSqueezeError", "build",
           "calibrate", "deploy", "get_board", "partition", "TuneResult", "tune"]
