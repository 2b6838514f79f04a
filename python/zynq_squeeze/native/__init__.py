"""Where the accelerator (``src/``) and the C runtime (``hls_runtime/``) sources live.

Works from a repository checkout (``<repo>/src``, ``<repo>/hls_runtime``) and from an
installed wheel (packages ``zynq_squeeze.native.src`` and
``zynq_squeeze.native.hls_runtime``). The TVM codegen compiles
``engine_sources() + runtime_sources(backend)`` with ``include_dirs()`` (plus the
directory of its generated ``zsq_config.h``, which must come first).
"""
from __future__ import annotations

from pathlib import Path

BACKENDS = ("csim", "zynq")


def _locate(name: str, marker: str) -> Path:
    here = Path(__file__).resolve().parent
    # A checkout's own tree first (python/zynq_squeeze/native -> repo root): with several
    # checkouts (git worktrees) on PYTHONPATH, an editable install's package mapping would
    # otherwise point every one of them at the installed checkout's sources.
    cands = [here / name, here.parents[2] / name]
    try:
        from importlib.resources import files
        cands.append(Path(str(files(f"zynq_squeeze.native.{name}"))))
    except Exception:  # noqa: BLE001 - namespace lookups may fail in odd installs
        pass
    for c in cands:
        if (c / marker).is_file():
            return c
    raise FileNotFoundError(f"cannot find zynq-squeeze native directory {name!r} (tried {cands})")


def src_dir() -> Path:
    """Directory of the HLS engine sources."""
    return _locate("src", "zsq_dae_top.cpp")


def runtime_dir() -> Path:
    """Directory of the C runtime."""
    return _locate("hls_runtime", "zsq_runtime.h")


def engine_sources() -> list[Path]:
    """C++ sources of the engine the runtime's csim backend runs: the decoupled engine's
    top and its simulation driver (zsqd_run). Compile with -std=c++17, ``-isystem
    ap_types_dir()`` and, for a model's engine, the directory of its zsq_dae_config.h
    first on the include path."""
    return dae_sources()


def dae_sources() -> list[Path]:
    """C++ sources of the decoupled engine: the top (DATAFLOW region) and its simulation
    driver (compile against Xilinx's ap_types, ``ap_types_dir()``)."""
    return [src_dir() / "zsq_dae_top.cpp", src_dir() / "zsq_dae_sim.cpp"]


def ap_types_dir() -> Path:
    """Xilinx's open-source ``ap_int.h`` / ``hls_stream.h`` (Apache-2.0), as the hls4ml
    wheel ships them: the C simulation compiles against the types Vitis HLS synthesizes."""
    import importlib.util

    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("Xilinx's ap_types headers come with the hls4ml package: "
                                "pip install hls4ml")
    d = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (d / "ap_int.h").is_file() or not (d / "hls_stream.h").is_file():
        raise FileNotFoundError(f"ap_int.h / hls_stream.h not found under {d}")
    return d


def runtime_sources(backend: str = "csim") -> list[Path]:
    """C99 sources of the runtime with ``backend`` ("csim" needs engine_sources too; both
    include ``src/zsq_isa.h``, "zynq" also ``hls_runtime/zsq_regs.h``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    d = runtime_dir()
    return [d / "zsq_runtime.c", d / "backends" / f"{backend}.c"]


def include_dirs() -> list[Path]:
    """Include directories for engine and runtime (zsq_config.h dir goes before these)."""
    return [runtime_dir(), src_dir()]


def headers() -> list[Path]:
    """Every header of engine and runtime (for hashing / packaging)."""
    return sorted(src_dir().glob("*.h")) + sorted(runtime_dir().glob("*.h"))
