"""Modeled time on the board's CPU: the operators TVM leaves on the ARM and the copies of
every offloaded call.

No board is measured here: every figure is a model whose constants are written down
below and in docs/ARM_MODEL.md (``BASIS`` is the one-line form report.json carries).

One CPU operator (work from ``partitioning.op_cost``)::

    t = max(flops / (peak x efficiency[class]),  bytes / bandwidth) + call overhead

with ``peak`` one core's NEON float32 peak (``boards.Cpu.peak_gflops``: the bundle's
executor runs on one core), ``bandwidth`` the L2's when the operator's bytes fit in L2
(its operands are likely still there) else one core's DDR streaming rate.

One offloaded call per image, as the glue (codegen/glue.py) and the board driver
(hls_runtime/backends/zynq.c, ``zsq_rt_run_io``) do it, in order, nothing overlapped::

    quantize  float NCHW -> int8 HWC (or the first layer's patches), scalar VFP loop
    copy in   memcpy of each input range into the cacheable DMA buffer
    sync      u-dma-buf sync per range: clean the inputs, invalidate the outputs before
              the start and again after ap_done (4 sysfs writes each + per-line cache ops)
    start     AXI-Lite register writes, then the UIO interrupt wakes the caller
    copy out  memcpy of each output range out of the DMA buffer
    dequantize int8 HWC -> float NCHW
"""
from __future__ import annotations

from dataclasses import dataclass

from ..boards import Cpu

# Sustained fraction of one core's NEON peak per operator class (TVM's CPU code). Basis:
# TVM's published ARM benchmark (github.com/apache/tvm wiki "Benchmark", auto-tuned,
# float32, batch 1) lists PYNQ (2 x Cortex-A9 at 650 MHz, peak 2 x 2.6 GFLOP/s) at
# 478 ms for SqueezeNet 1.1 (0.70 GFLOP: 1.46 GFLOP/s = 28 % of the two cores' peak),
# 1232 ms for ResNet-18 (3.64 GFLOP: 57 %) and 721 ms for MobileNet (1.14 GFLOP: 30 %).
# Convolutions: 0.30 (SqueezeNet's and MobileNet's whole-network figure: the lower end,
# and the per-core figure if two cores scaled perfectly). The rest are assumptions: a
# batch-1 dense layer streams its weights (the memory term binds), pools and
# elementwise operators are simple NEON loops, exp-based ones (softmax, power, ...) run
# far below peak.
EFFICIENCY = {"conv": 0.30, "dense": 0.30, "pool": 0.15, "elementwise": 0.15,
              "softmax": 0.05, "transcendental": 0.05, "copy": 1.0}

# One core's sustained DDR streaming rate (read + write through L1/L2), GB/s: an
# assumption of a quarter of the 4.2 GB/s DDR3 peak (ARCHITECTURE.md; the PS DDR
# controller reaches ~75 % of it with every master together, UG585 22.3.2), not measured.
DDR_STREAM_GBPS = 1.05
# An operator whose bytes fit in L2 streams at this rate, GB/s (assumption: 4 bytes per
# core cycle at 667 MHz).
L2_STREAM_GBPS = 2.67
# Per CPU operator: the executor's call, the TVM shim's single-task parallel launch,
# loop set-up (assumption), microseconds.
OP_OVERHEAD_US = 5.0

# Per offloaded call (assumptions, per image): core cycles per element of the glue's
# scalar quantize loop (load, multiply, round to nearest, clamp, store: not vectorized,
# it checks every value is finite) and dequantize loop (load, convert, multiply, store).
QUANTIZE_CYCLES_PER_ELEM = 4.0
DEQUANTIZE_CYCLES_PER_ELEM = 3.0
# u-dma-buf sync of one range: 4 sysfs attribute writes (offset, size, direction,
# sync_for_*), each an open/write/close system call pair (assumption: 10 us each) ...
SYNC_CALL_US = 40.0
# ... plus one clean or invalidate by address per 32-byte cache line, through L1 and
# the PL310 L2 controller (assumption: 20 core cycles per line).
CACHE_LINE_BYTES = 32
CYCLES_PER_CACHE_LINE = 20.0
# Register writes, ap_start, and the UIO interrupt waking the caller (assumption: Linux
# interrupt-to-user-space wake-up on a Cortex-A9).
START_WAIT_US = 50.0

BASIS = ("modeled, not measured: per CPU operator max(FLOPs / (one core's NEON peak x "
         "the operator class's efficiency), bytes / (L2 rate if they fit in L2, else one "
         "core's DDR streaming rate)) + a call overhead; per offloaded call and image the "
         "glue's quantize/dequantize loops, the driver's memcpy of the I/O ranges, "
         "u-dma-buf cache syncs and the interrupt wake-up; CPU, copies and accelerator "
         "in sequence (the runtime overlaps nothing). Efficiencies anchored on TVM's "
         "published Cortex-A9 (PYNQ) benchmark, the rest assumptions: docs/ARM_MODEL.md")


@dataclass(frozen=True)
class ArmTime:
    """Modeled seconds of one piece of ARM work, with its two bounds (seconds)."""

    seconds: float
    compute_s: float
    memory_s: float
    overhead_s: float

    @property
    def ms(self) -> float:
        return self.seconds * 1e3


def _rate_gbps(cpu: Cpu, nbytes: int) -> float:
    return L2_STREAM_GBPS if nbytes <= cpu.l2_kib * 1024 else DDR_STREAM_GBPS


def op_time(cpu: Cpu, op_class: str, flops: int, nbytes: int) -> ArmTime:
    """Modeled time of one CPU operator of class ``op_class`` doing ``flops`` FLOPs and
    moving ``nbytes`` bytes on one core of ``cpu``."""
    if flops < 0 or nbytes < 0:
        raise ValueError(f"negative work: {flops} FLOPs, {nbytes} bytes")
    eff = EFFICIENCY.get(op_class, EFFICIENCY["elementwise"])
    compute = flops / (cpu.peak_gflops * 1e9 * eff)
    memory = nbytes / (_rate_gbps(cpu, nbytes) * 1e9)
    overhead = OP_OVERHEAD_US * 1e-6
    return ArmTime(max(compute, memory) + overhead, compute, memory, overhead)


@dataclass(frozen=True)
class CallIo:
    """What one offloaded call moves per image: ``in_floats``/``out_floats`` float32
    elements of its inputs/outputs, ``in_int8``/``out_int8`` the bytes of their int8
    ranges (HWC, channels padded to 8: what the driver copies and syncs), one range per
    input and output (``n_in``/``n_out``); ``in_quant`` the int8 values the glue's
    quantize loop writes (the real channels, or the first layer's C*KH*KW*OH*OW patch
    values; the padding bytes of the static arena stay zero), default ``in_floats``."""

    in_floats: int
    in_int8: int
    out_floats: int
    out_int8: int
    n_in: int
    n_out: int
    in_quant: int | None = None


def call_parts(cpu: Cpu, io: CallIo) -> dict[str, float]:
    """Modeled seconds of each step of one offloaded call for one image (module doc)."""
    hz = cpu.clock_mhz * 1e6

    def stream(nbytes: int) -> float:
        return nbytes / (_rate_gbps(cpu, nbytes) * 1e9)

    def lines(nbytes: int) -> int:
        return -(-nbytes // CACHE_LINE_BYTES)

    q_elems = io.in_floats if io.in_quant is None else io.in_quant
    return {
        "quantize": max(q_elems * QUANTIZE_CYCLES_PER_ELEM / hz,
                        stream(4 * io.in_floats + q_elems)),
        "copy_in": stream(2 * io.in_int8),
        # inputs cleaned once; outputs invalidated before the start and after ap_done
        "sync": ((io.n_in + 2 * io.n_out) * SYNC_CALL_US * 1e-6
                 + (lines(io.in_int8) + 2 * lines(io.out_int8)) * CYCLES_PER_CACHE_LINE / hz),
        "start_wait": START_WAIT_US * 1e-6,
        "copy_out": stream(2 * io.out_int8),
        "dequantize": max(io.out_floats * DEQUANTIZE_CYCLES_PER_ELEM / hz,
                          stream(io.out_int8 + 4 * io.out_floats)),
    }


def call_time(cpu: Cpu, io: CallIo) -> float:
    """Modeled seconds one offloaded call spends on the ARM for one image."""
    return sum(call_parts(cpu, io).values())
