"""Run a decoupled-engine program on its C simulation (``zsqd_run`` in src/zsq_dae_sim.cpp).

The engine (src/zsq_dae_top.cpp + zsq_dae_sim.cpp, compiled against Xilinx's ap_types
for the program's ``DaeConfig``) executes the instruction words on the packed weights
and the activation arena; it returns the arena, the executed timing (cycles at the PL
clock: per instruction and per module) and never aborts: a bad program raises
:class:`~zynq_squeeze.errors.EngineError` with the simulation's message.

By default the host fast paths of src/zsq_dae.h execute the instructions (plain integer
arithmetic, SIMD where the CPU has it); ``hls_kernel=True`` builds with
``-DZSQD_HLS_KERNEL`` so the HLS loops themselves run on ap_int types (~1000x slower):
the same integers and the same charged cycles, which tests/test_dae_fastpath.py checks.
"""
from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import EngineError
from . import compiler

_lock = threading.Lock()
_libs: dict[tuple, ctypes.CDLL] = {}


class Timing(ctypes.Structure):
    _fields_ = [("rd_latency", ctypes.c_int64), ("wr_latency", ctypes.c_int64),
                ("outstanding", ctypes.c_int64), ("beat_x100", ctypes.c_int64)]


class Stats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int64) for n in ("cycles", "load_busy", "compute_busy",
                                              "store_busy", "macs", "rd_bytes", "wr_bytes")]


@dataclass
class SimResult:
    """What one run produced: the arena after the run and the executed timing."""

    arena: np.ndarray
    cycles: int                # whole program, PL clock cycles
    insn_end: np.ndarray       # completion cycle of every instruction (int64)
    load_busy: int
    compute_busy: int
    store_busy: int
    macs: int
    rd_bytes: int
    wr_bytes: int


def build_flags(hls_kernel: bool = False, extra_flags: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Compiler flags of a simulation variant: ``hls_kernel`` runs the synthesized loops
    instead of the host fast paths; ``extra_flags`` e.g. ``("-DZSQD_SIM_PORTABLE",)``
    (the portable C fast paths instead of AVX-512)."""
    return (("-DZSQD_HLS_KERNEL",) if hls_kernel else ()) + tuple(extra_flags)


def library(cfg, hls_kernel: bool = False, extra_flags: tuple[str, ...] = ()) -> ctypes.CDLL:
    """The simulation library for ``cfg`` (a DaeConfig) and variant, compiled once and cached."""
    flags = build_flags(hls_kernel, extra_flags)
    key = (tuple(sorted(cfg.macros().items())), flags)
    with _lock:
        lib = _libs.get(key)
        if lib is None:
            lib = ctypes.CDLL(str(compiler.dae_shared_library(cfg.macros(), extra_flags=flags)))
            u64p = ctypes.POINTER(ctypes.c_uint64)
            lib.zsqd_run.argtypes = [u64p, ctypes.c_int64, u64p, ctypes.c_int64, u64p,
                                     ctypes.c_int64, ctypes.POINTER(Timing),
                                     ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(Stats),
                                     ctypes.c_char_p, ctypes.c_int]
            lib.zsqd_run.restype = ctypes.c_int
            _libs[key] = lib
    return lib


def timing_of(cfg, beat_x100: int = 100) -> Timing:
    return Timing(cfg.rd_latency, cfg.wr_latency, cfg.outstanding, beat_x100)


def run_words(cfg, words: np.ndarray, weights: np.ndarray, arena: np.ndarray,
              beat_x100: int = 100, hls_kernel: bool = False,
              extra_flags: tuple[str, ...] = ()) -> SimResult:
    """Execute ``words`` on ``weights`` and a copy of ``arena`` (uint64 arrays) on the
    simulation variant ``hls_kernel`` / ``extra_flags`` (see :func:`library`)."""
    lib = library(cfg, hls_kernel, extra_flags)
    w = np.ascontiguousarray(words, dtype=np.uint64)
    k = np.ascontiguousarray(weights, dtype=np.uint64)
    a = np.array(arena, dtype=np.uint64, copy=True)
    end = np.zeros(len(w), dtype=np.int64)
    st = Stats()
    err = ctypes.create_string_buffer(512)
    u64p = ctypes.POINTER(ctypes.c_uint64)
    t = timing_of(cfg, beat_x100)
    rc = lib.zsqd_run(w.ctypes.data_as(u64p), len(w), k.ctypes.data_as(u64p), len(k),
                      a.ctypes.data_as(u64p), len(a), ctypes.byref(t),
                      end.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), ctypes.byref(st),
                      err, len(err))
    if rc != 0:
        raise EngineError(f"accelerator error {rc}: {err.value.decode(errors='replace')}", rc)
    return SimResult(a, st.cycles, end, st.load_busy, st.compute_busy, st.store_busy,
                     st.macs, st.rd_bytes, st.wr_bytes)


def run_program(prog, x: np.ndarray, beat_x100: int = 100, hls_kernel: bool = False,
                extra_flags: tuple[str, ...] = ()) -> tuple[np.ndarray, SimResult]:
    """Run a :class:`~zynq_squeeze.codegen.dae_program.DaeProgram` on int8 input ``x``
    (C, H, W); returns the int8 output (C', H', W') and the run's timing."""
    from ..codegen.dae_program import pack_tensor, unpack_tensor

    t_in, t_out = prog.input, prog.output
    if tuple(x.shape) != (t_in.c, t_in.h, t_in.w):
        raise ValueError(f"input shape {x.shape} != {(t_in.c, t_in.h, t_in.w)}")
    arena = np.zeros(prog.arena_words, dtype=np.uint64)
    arena[t_in.base:t_in.base + t_in.words] = pack_tensor(x)
    res = run_words(prog.cfg, prog.words, prog.weights, arena, beat_x100, hls_kernel, extra_flags)
    y = unpack_tensor(res.arena[t_out.base:t_out.base + t_out.words], t_out.c, t_out.h, t_out.w)
    return y, res
