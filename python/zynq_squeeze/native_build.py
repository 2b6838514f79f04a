"""Compile the generated glue, the runtime and the engine into one relocatable object.

The engine + runtime object depends only on the sources, the engine config header, the
compiler and its flags, so it is cached (``$ZSQ_CACHE_DIR`` or ``~/.cache/zynq_squeeze``).
The glue is compiled in the generated-source directory so that its ``.incbin`` blobs are
found by relative name (keeping the generated sources free of absolute paths).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import tvm_ffi

from . import native
from .boards import Board
from .errors import ZynqSqueezeError

HOST_FLAGS = ["-O3", "-march=native", "-fPIC", "-fvisibility=hidden"]
ARM_PREFIX = "arm-linux-gnueabihf-"
ARM_FLAGS = ["-O3", "-mcpu=cortex-a9", "-mfpu=neon", "-mfloat-abi=hard", "-fPIC",
             "-fvisibility=hidden"]


class NativeBuildError(ZynqSqueezeError):
    """A C/C++ compiler failed or is missing."""


def cache_dir() -> Path:
    d = Path(os.environ.get("ZSQ_CACHE_DIR") or Path.home() / ".cache" / "zynq_squeeze")
    d.mkdir(parents=True, exist_ok=True)
    return d


def toolchain(host: bool) -> tuple[str, str, list[str]]:
    """(C compiler, C++ compiler, flags) for the host simulation or the board's ARM."""
    if host:
        cc, cxx, flags = os.environ.get("CC", "gcc"), os.environ.get("CXX", "g++"), HOST_FLAGS
    else:
        cc, cxx, flags = ARM_PREFIX + "gcc", ARM_PREFIX + "g++", ARM_FLAGS
    for tool in (cc, cxx):
        if shutil.which(tool) is None:
            hint = (" (apt-get install g++-arm-linux-gnueabihf)" if not host else "")
            raise NativeBuildError(f"compiler {tool!r} not found on PATH{hint}")
    return cc, cxx, list(flags)


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise NativeBuildError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
                               f"{proc.stderr[-4000:]}")


def _ffi_includes() -> list[str]:
    root = Path(tvm_ffi.__file__).parent
    return [str(root / "include"), str(root / "3rdparty" / "dlpack" / "include")]


def _compile(cc: str, cxx: str, flags: list[str], src: Path, obj: Path, incs: list[str],
             cwd: Path | None = None) -> None:
    is_c = src.suffix == ".c"
    cmd = [cc if is_c else cxx, *(["-std=c99"] if is_c else ["-std=c++17"]), *flags,
           *[f"-I{i}" for i in incs], "-c", str(src), "-o", str(obj)]
    _run(cmd, cwd)


def engine_object(config_dir: Path, *, host: bool, backend: str) -> Path:
    """The runtime (+ the engine's C simulation for the csim backend) compiled for
    ``zsq_config.h`` in ``config_dir`` (cached)."""
    cc, cxx, flags = toolchain(host)
    # On the board the engine is the FPGA: only the simulation links its C++ model.
    sources = (native.engine_sources() if backend == "csim" else []) + \
        native.runtime_sources(backend)
    h = hashlib.sha256()
    for part in (cc, cxx, " ".join(flags), backend, (config_dir / "zsq_config.h").read_text()):
        h.update(part.encode())
    for s in sorted(sources) + sorted(p for d in native.include_dirs() for p in Path(d).glob("*.h")):
        h.update(str(Path(s).name).encode())
        h.update(Path(s).read_bytes())
    out = cache_dir() / f"engine-{h.hexdigest()[:20]}.o"
    if out.exists():
        return out
    tmp = cache_dir() / f"build-{os.getpid()}-{h.hexdigest()[:8]}"
    tmp.mkdir(exist_ok=True)
    incs = [str(config_dir), *[str(d) for d in native.include_dirs()]]
    objs = []
    for i, s in enumerate(sources):
        o = tmp / f"{i}_{Path(s).stem}.o"
        _compile(cc, cxx, flags, Path(s), o, incs)
        objs.append(str(o))
    part = tmp / "engine.o"
    _run([cxx, "-r", "-nostdlib", "-o", str(part), *objs])
    os.replace(part, out)  # atomic: concurrent builds never see a half-written object
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def compile_model_object(src_dir: Path, *, board: Board, host: bool = True,
                         progress: bool = False) -> Path:
    """glue + runtime + engine for the sources in ``src_dir`` -> ``src_dir/zsq_model.o``."""
    backend = "csim" if host else "zynq"
    eng = engine_object(src_dir, host=host, backend=backend)
    cc, cxx, flags = toolchain(host)
    incs = [str(src_dir), *[str(d) for d in native.include_dirs()], *_ffi_includes()]
    glue_o = src_dir / "zsq_glue.o"
    _compile(cc, cxx, flags, Path("zsq_glue.cc"), glue_o, incs, cwd=src_dir)
    out = src_dir / "zsq_model.o"
    _run([cxx, "-r", "-nostdlib", "-o", str(out), str(glue_o), str(eng)])
    return out
