"""Compile the engine, the runtime and the generated glue with the C/C++ toolchain.

This is the one place that compiles the native sources. The engine + runtime object
depends only on the sources, the engine config header, the compiler, its flags and (for
``-march=native``) the CPU, so it is cached under that key (``$ZSQ_CACHE_DIR`` or
``~/.cache/zynq_squeeze``). Model builds link it with their glue into one relocatable
object; the ctypes simulation (``csim``) links it into a shared library. The glue is
compiled in the generated-source directory so that its ``.incbin`` blobs are found by
relative name (keeping the generated sources free of absolute paths).
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import tvm_ffi

from .. import native
from ..boards import Board
from ..cache import atomic_entry, cache_dir, entry_ok
from ..errors import BuildError

HOST_FLAGS = ["-O3", "-march=native", "-fPIC"]
ARM_PREFIX = "arm-linux-gnueabihf-"
# -mtls-dialect=gnu2 (TLS descriptors): with GCC 12's default ARM dialect the engine's
# C simulation compiled -fPIC (its thread_local scratch buffers) computed wrong results
# under qemu-arm, statically and dynamically linked; descriptors give the host's results.
ARM_FLAGS = ["-O3", "-mcpu=cortex-a9", "-mfpu=neon", "-mfloat-abi=hard", "-fPIC",
             "-mtls-dialect=gnu2"]
# HLS pragmas and loop labels are for Vitis HLS; g++ need not mention them.
WARN_FLAGS = ["-Wno-unknown-pragmas", "-Wno-unused-label"]
# Model objects keep the engine and runtime private: two models in one process never mix.
HIDDEN = ["-fvisibility=hidden"]

NativeBuildError = BuildError  # a C/C++ compiler failed or is missing


def sanitize_flags() -> list[str]:
    """Host flags of ``$ZSQ_SANITIZE`` (e.g. ``address,undefined``): the engine, runtime
    and glue built with those sanitizers, at -O1 with frame pointers and debug info. They
    are part of every cache key (flags are); the process that loads such a model.so needs
    the sanitizer runtimes first (LD_PRELOAD=$(g++ -print-file-name=libasan.so) ...,
    tests/test_sanitizers.py). Xilinx's ap_private.h sign-extends by shifting negative
    values left (its clang build turns UBSan off there): shift-base alone stays
    recoverable, so UBSAN_OPTIONS=suppressions=tests/fuzz/ubsan.supp can silence that
    header while any other report still prints "runtime error:"."""
    s = os.environ.get("ZSQ_SANITIZE", "").strip()
    if not s:
        return []
    if not all(c.isalnum() or c in ",-_=" for c in s):
        raise BuildError(f"ZSQ_SANITIZE={s!r}: expected a list like 'address,undefined'")
    return [f"-fsanitize={s}", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined",
            "-fsanitize-recover=shift-base", "-O1", "-g"]


def toolchain(host: bool) -> tuple[str, str, list[str]]:
    """(C compiler, C++ compiler, flags) for the host simulation or the board's ARM
    (host flags + :func:`sanitize_flags`)."""
    if host:
        cc, cxx = os.environ.get("CC", "gcc"), os.environ.get("CXX", "g++")
        flags = HOST_FLAGS + sanitize_flags()
    else:
        cc, cxx, flags = ARM_PREFIX + "gcc", ARM_PREFIX + "g++", ARM_FLAGS
    for tool in (cc, cxx):
        if shutil.which(tool) is None:
            hint = (" (apt-get install g++-arm-linux-gnueabihf)" if not host else "")
            raise BuildError(f"compiler {tool!r} not found on PATH{hint}")
    return cc, cxx, list(flags)


@lru_cache(maxsize=None)
def _compiler_id(cxx: str) -> str:
    try:
        return subprocess.run([cxx, "--version"], capture_output=True, text=True,
                              check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError) as e:
        raise BuildError(f"C++ compiler {cxx!r} not usable: {e}") from e


@lru_cache(maxsize=None)
def _cpu_id() -> str:
    """What ``-march=native`` depends on (an object built for one CPU may not run on another)."""
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("flags"):
                return ln
    except OSError:
        pass
    return platform.processor() + platform.machine()


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
                         f"{proc.stderr[-4000:]}")


def _ffi_includes() -> list[str]:
    root = Path(tvm_ffi.__file__).parent
    return [str(root / "include"), str(root / "3rdparty" / "dlpack" / "include")]


def _compile(cc: str, cxx: str, flags: list[str], src: Path, obj: Path, incs: list[str],
             cwd: Path | None = None, system_incs: tuple[str, ...] = ()) -> None:
    is_c = src.suffix == ".c"
    cmd = [cc if is_c else cxx, *(["-std=c99"] if is_c else ["-std=c++17"]), *flags,
           *[f"-I{i}" for i in incs], *[a for s in system_incs for a in ("-isystem", s)],
           "-c", str(src), "-o", str(obj)]
    _run(cmd, cwd)


def _key(parts, sources) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(str(part).encode())
    for s in sorted(set(sources) | set(native.headers())):
        h.update(Path(s).name.encode())
        h.update(Path(s).read_bytes())
    return h.hexdigest()[:20]


def engine_object(config_header: str, *, host: bool, backend: str,
                  extra_flags: tuple[str, ...] = (), hidden: bool = True) -> Path:
    """The runtime (+ the engine's C simulation for the csim backend) compiled for the
    given ``zsq_dae_config.h`` text (the engine's ZSQD_* macros), as one relocatable
    object (cached). The engine is compiled against Xilinx's ap_types."""
    cc, cxx, flags = toolchain(host)
    flags = flags + WARN_FLAGS + (HIDDEN if hidden else []) + list(extra_flags)
    # On the board the engine is the FPGA: only the simulation links its C++ model.
    sources = (native.engine_sources() if backend == "csim" else []) + \
        native.runtime_sources(backend)
    key = _key([cc, cxx, _compiler_id(cxx), " ".join(flags), backend, config_header,
                _cpu_id() if host else "arm"], sources)
    out = cache_dir() / f"engine-{key}.o"
    if entry_ok(out):  # a damaged entry is removed and rebuilt
        return out
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        tmp = Path(tmp)
        (tmp / "zsq_dae_config.h").write_text(config_header)
        incs = [str(tmp), *[str(d) for d in native.include_dirs()]]
        objs = []
        for i, s in enumerate(sources):
            o = tmp / f"{i}_{Path(s).stem}.o"
            _compile(cc, cxx, flags, Path(s), o, incs,
                     system_incs=(str(native.ap_types_dir()),) if backend == "csim" else ())
            objs.append(str(o))
        part = tmp / "engine.o"
        _run([cxx, "-r", "-nostdlib", "-o", str(part), *objs])
        os.replace(part, out)  # atomic: concurrent builds never see a half-written object
    return out


def shared_library(config_header: str, extra_flags: tuple[str, ...] = ()) -> Path:
    """The host simulation (engine + csim runtime) as a shared library for ctypes (cached)."""
    obj = engine_object(config_header, host=True, backend="csim", extra_flags=extra_flags,
                        hidden=False)
    out = obj.with_suffix(".so")
    if entry_ok(out):
        return out
    _, cxx, flags = toolchain(True)
    with atomic_entry(out) as tmp:  # no half-written entry on an error or Ctrl-C
        _run([cxx, "-shared", *flags, *extra_flags, str(obj), "-o", str(tmp)])
    return out


def dae_shared_library(macros: dict[str, int], extra_flags: tuple[str, ...] = ()) -> Path:
    """The decoupled engine's simulation (``zsqd_run``) for the engine ``macros``
    (``DaeConfig.macros()``), compiled against Xilinx's ap_types as a shared library for
    ctypes (cached on sources, macros, compiler, flags and CPU)."""
    _, cxx, flags = toolchain(True)
    flags = flags + WARN_FLAGS + list(extra_flags)
    defs = [f"-D{k}={int(v)}" for k, v in sorted(macros.items())]
    ap = native.ap_types_dir()
    sources = native.dae_sources()
    key = _key([cxx, _compiler_id(cxx), " ".join(flags + defs), "dae", _cpu_id(),
                (ap / "ap_int.h").read_bytes(), (ap / "hls_stream.h").read_bytes()], sources)
    out = cache_dir() / f"dae-{key}.so"
    if entry_ok(out):
        return out
    # Xilinx's headers are included as system headers: their own warnings are not ours.
    with atomic_entry(out) as tmp:
        _run([cxx, "-std=c++17", "-shared", *flags, *defs, "-isystem", str(ap),
              f"-I{native.src_dir()}", *[str(s) for s in sources], "-o", str(tmp)])
    return out


def compile_model_object(src_dir: Path, *, board: Board, host: bool = True,
                         progress: bool = False, backend: str | None = None) -> Path:
    """glue + runtime + engine for the sources in ``src_dir`` -> ``src_dir/zsq_model.o``.

    ``backend``: "csim" or "zynq" (None: csim on the host, zynq for the board)."""
    backend = backend or ("csim" if host else "zynq")
    if backend not in native.BACKENDS:
        raise BuildError(f"runtime backend must be one of {', '.join(native.BACKENDS)}, "
                         f"got {backend!r}")
    eng = engine_object((src_dir / "zsq_dae_config.h").read_text(), host=host, backend=backend)
    cc, cxx, flags = toolchain(host)
    incs = [str(src_dir), *[str(d) for d in native.include_dirs()], *_ffi_includes()]
    glue_o = src_dir / "zsq_glue.o"
    _compile(cc, cxx, flags + HIDDEN, Path("zsq_glue.cc"), glue_o, incs, cwd=src_dir)
    out = src_dir / "zsq_model.o"
    _run([cxx, "-r", "-nostdlib", "-o", str(out), str(glue_o), str(eng)])
    return out
