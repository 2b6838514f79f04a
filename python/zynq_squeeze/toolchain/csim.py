"""Run programs on the bit-exact C simulation of the engine.

The engine (``src/``) and the csim runtime backend are compiled once per EngineConfig
into a shared library by ``toolchain.compiler`` (``g++ -O3 -march=native -fPIC``, cached under
``$ZSQ_CACHE_DIR``, default ``~/.cache/zynq_squeeze``, keyed by the sources, the generated
``zsq_config.h``, the compiler, its flags and the CPU). Programs run through
ctypes; a C error code becomes :class:`~zynq_squeeze.errors.EngineError` with the
runtime's message.
"""
from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codegen.program import Program, engine_config_header
from ..engine.config import EngineConfig
from ..errors import EngineError
from . import compiler

MAX_LAYERS = 256

_lock = threading.Lock()
_libs: dict[str, ctypes.CDLL] = {}


class _Program(ctypes.Structure):
    _fields_ = [("layers", ctypes.c_void_p), ("n_layers", ctypes.c_int32),
                ("weights", ctypes.c_void_p), ("weights_bytes", ctypes.c_size_t),
                ("params", ctypes.c_void_p), ("params_words", ctypes.c_size_t),
                ("arena_bytes", ctypes.c_size_t)]


class _Stats(ctypes.Structure):
    _fields_ = [("total_cycles", ctypes.c_int64), ("n_layers", ctypes.c_int32),
                ("reserved", ctypes.c_int32),
                ("layer_cycles", ctypes.c_int64 * MAX_LAYERS),
                ("layer_ddr_bytes", ctypes.c_int64 * MAX_LAYERS),
                ("layer_macs", ctypes.c_int64 * MAX_LAYERS)]


@dataclass(frozen=True)
class EngineStats:
    """Modeled cycles, DDR bytes and executed MACs per layer, as counted by the engine."""

    total_cycles: int
    layer_cycles: list[int]
    layer_ddr_bytes: list[int]
    layer_macs: list[int]


def build_library(cfg: EngineConfig | None = None, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile (or find in the cache) the simulation library for ``cfg``; returns its path."""
    cfg = cfg or EngineConfig()
    return compiler.shared_library(engine_config_header(cfg, "C simulation build"),
                                       tuple(extra_flags))


def load_library(cfg: EngineConfig | None = None, extra_flags: tuple[str, ...] = ()) -> ctypes.CDLL:
    path = str(build_library(cfg, extra_flags))
    with _lock:
        lib = _libs.get(path)
        if lib is None:
            lib = ctypes.CDLL(path)
            lib.zsq_rt_run.argtypes = [ctypes.POINTER(_Program), ctypes.c_void_p,
                                       ctypes.POINTER(_Stats), ctypes.c_char_p, ctypes.c_size_t]
            lib.zsq_rt_run.restype = ctypes.c_int
            lib.zsq_rt_strerror.argtypes = [ctypes.c_int]
            lib.zsq_rt_strerror.restype = ctypes.c_char_p
            _libs[path] = lib
    return lib


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data if a.size else 0


def run_program(program: Program, inputs, extra_flags: tuple[str, ...] = ()):
    """Run ``program`` on int8 (C, H, W) ``inputs`` (``program.input_ids`` order).

    Returns ``(outputs, stats)``: int8 (C, H, W) arrays in ``output_ids`` order and an
    :class:`EngineStats`. Raises :class:`EngineError` when the engine rejects the program.
    """
    if len(inputs) != len(program.input_ids):
        raise ValueError(f"expected {len(program.input_ids)} inputs, got {len(inputs)}")
    lib = load_library(program.engine_cfg, extra_flags)
    arena = np.zeros(program.arena_bytes, dtype=np.int8)
    for x, off, shape in zip(inputs, program.input_offsets, program.input_shapes):
        x = np.asarray(x)
        if x.dtype != np.int8 or tuple(x.shape) != tuple(shape):
            raise ValueError(f"input must be int8 {shape}, got {x.dtype} {x.shape}")
        n = x.size
        arena[off:off + n] = x.transpose(1, 2, 0).reshape(-1)
    desc = np.frombuffer(program.descriptors, dtype=np.int32).copy()
    w = np.frombuffer(program.weights, dtype=np.int8).copy()
    p = np.frombuffer(program.params, dtype=np.int32).copy()
    prog = _Program(_ptr(desc), program.n_layers, _ptr(w), w.size, _ptr(p), p.size,
                    program.arena_bytes)
    stats = _Stats()
    err = ctypes.create_string_buffer(512)
    with _lock:  # the engine keeps its tile buffers in static storage
        rc = lib.zsq_rt_run(ctypes.byref(prog), _ptr(arena), ctypes.byref(stats), err, 512)
    if rc != 0:
        msg = err.value.decode(errors="replace") or lib.zsq_rt_strerror(rc).decode()
        raise EngineError(f"engine error {rc}: {msg}", rc)
    outs = []
    for off, (c, h, wd) in zip(program.output_offsets, program.output_shapes):
        outs.append(arena[off:off + c * h * wd].reshape(h, wd, c).transpose(2, 0, 1).copy())
    n = program.n_layers
    st = EngineStats(int(stats.total_cycles), list(stats.layer_cycles[:n]),
                     list(stats.layer_ddr_bytes[:n]), list(stats.layer_macs[:n]))
    return outs, st
