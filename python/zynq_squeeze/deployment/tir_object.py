"""TVM's CPU operators of a partitioned model, lowered and compiled into one object file.

After the plugin's offload pass the Relax module still holds the CPU part as Relax ops.
``lower_for_executor`` runs the prefix of TVM's default CPU pipeline (legalize, fuse,
plan memory statically) and stops where the Relax VM would take over: the result's
``main`` is a flat list of storage allocations, tensor views and calls, which
``executor`` turns into C. ``build_tir_object`` compiles the PrimFuncs, every one with
TVM's packed C ABI (``int32_t __tvm_ffi_<name>(void*, const TVMFFIAny*, int32_t,
TVMFFIAny*)``), into a relocatable object for the host or the board's Cortex-A9, and
finds the workspace they ask ``TVMBackendAllocWorkspace`` for (the executor's shim
serves it from a static pool).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tvm
from tvm import relax
from tvm.target import Target
from tvm.tirx import PrimFunc

from .errors import DeployError

# TVM's kAllocAlignment: TIR assumes it for every buffer's data pointer.
ALIGN = 64


def prefix_passes() -> list:
    """TVM 0.27's CPU default pipeline (``relax.backend.cpu_generic``) up to and including
    static memory planning, plus AttachGlobalSymbol so that every PrimFunc is exported."""
    return [
        relax.backend.DispatchSampling(),
        relax.backend.DispatchSortScan(),
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        relax.transform.RewriteDataflowReshape(),
        relax.transform.ToNonDataflow(),
        relax.transform.RemovePurityChecking(),
        relax.transform.CallTIRRewrite(),
        relax.transform.StaticPlanBlockMemory(),
        relax.transform.AttachGlobalSymbol(),
    ]


def lower_for_executor(mod: tvm.IRModule, target) -> tvm.IRModule:
    """``mod`` (already partitioned: offloaded calls are ExternFunc calls) lowered to the
    form ``executor.plan`` walks. ``target``: a Target or its dict config."""
    target = Target(target)
    with target:
        return tvm.transform.Sequential(prefix_passes())(mod)


@dataclass
class TirObject:
    """The compiled CPU operators: ``path`` (relocatable object), the exported
    ``symbols`` (PrimFunc global symbols; the C functions are ``__tvm_ffi_<symbol>``),
    ``workspace_bytes`` (bytes of TVMBackendAllocWorkspace pool one call can need,
    64-byte aligned) and ``undefined`` (what the object needs from the shim and libc)."""

    path: Path
    symbols: list[str]
    workspace_bytes: int
    undefined: list[str] = field(default_factory=list)


# How a workspace allocation prints in the finalized host TIR (TVM 0.27 has no Python
# TIR visitor): T.TVMBackendAllocWorkspace(device_type, dev_id, T.uint64(nbytes), ...).
_WS_CALL = "TVMBackendAllocWorkspace("
_WS_SIZE = re.compile(r"TVMBackendAllocWorkspace\(\d+, [\w.]+, T\.uint64\((\d+)\)")


def _workspace_bytes(func) -> int:
    """Sum of the constant sizes a host PrimFunc asks TVMBackendAllocWorkspace for.

    One PrimFunc runs at a time and frees its workspace in LIFO order, so the sum over
    one function bounds what the pool must hold. A size that is not a constant cannot
    be planned statically (DeployError)."""
    text = func.script()
    sizes = [int(m) for m in _WS_SIZE.findall(text)]
    if len(sizes) != text.count(_WS_CALL):
        raise DeployError(f"{func.attrs['global_symbol']}: a workspace of non-constant size "
                          "cannot be planned statically")
    return sum(_align(s) for s in sizes)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def build_tir_object(mod: tvm.IRModule, target, path, *, nm: str | None = None) -> TirObject:
    """Compile the PrimFuncs of ``mod`` (from ``lower_for_executor``) for ``target`` into
    the object file ``path``.

    The steps are those of ``tvm.tirx.build`` (bind target, TIR pipeline, host/device
    split, host finalization, LLVM codegen), spelled out so that the finalized host TIR
    can be searched for workspace allocations. ``nm``: the binutils ``nm`` for the
    target (found from the triple when None) to list the object's undefined symbols.
    """
    tb = sys.modules["tvm.tirx.build"]  # the module: ``tvm.tirx.build`` is the function
    target = Target(target)
    path = Path(path)
    tir = tvm.IRModule({gv: f for gv, f in mod.functions.items() if isinstance(f, PrimFunc)})
    symbols = sorted(str(f.attrs["global_symbol"]) for f in tir.functions.values())
    with tvm.transform.PassContext(opt_level=3):
        tir = tvm.tirx.transform.BindTarget(target.with_host(target))(tir)
        pipeline, finalize_host, _ = tvm.tirx.get_tir_pipeline("default")
        tir = pipeline(tir)
        host, dev = tb.split_host_device_mods(tir)
        if dev:
            raise DeployError(f"device functions cannot run on the board's CPU: {sorted(dev)}")
        host = finalize_host()(host)
        lib = tb.codegen_build(host, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    lib.write_to_file(str(path))  # the ".o" suffix selects an ELF object for the triple
    need = max([_workspace_bytes(f) for f in host.functions.values()
                if isinstance(f, PrimFunc)] + [0])
    undefined = check_object_symbols(path, nm or _nm_for(target))
    return TirObject(path=path, symbols=symbols, workspace_bytes=need, undefined=undefined)


def _nm_for(target: Target) -> str:
    triple = str(target.attrs.get("mtriple", "") or "")
    if triple.startswith("armv7"):
        return "arm-linux-gnueabihf-nm"
    return "nm"


# What the executor's shim (templates/zsq_shim.c) defines for TVM-compiled code.
SHIM_SYMBOLS = frozenset({
    "TVMFFIErrorSetRaisedFromCStr", "TVMFFIErrorSetRaisedFromCStrParts",
    "TVMBackendAllocWorkspace", "TVMBackendFreeWorkspace",
    "TVMBackendParallelLaunch", "TVMBackendParallelBarrier",
    "__TVMBackendAllocWorkspace", "__TVMBackendFreeWorkspace",
    "__TVMBackendParallelLaunch", "__TVMBackendParallelBarrier",
})
# libm / libc functions LLVM may call, and the compiler runtime (libgcc) helpers.
_LIBC = re.compile(r"^(mem(cpy|set|move)|(exp|log|log2|log10|sqrt|tanh|pow|erf|floor|ceil|"
                   r"round|fabs|fmax|fmin|sin|cos|tan|atan|atan2|asin|acos|sinh|cosh|"
                   r"nearbyint|rint|trunc|fmod)f?)$")
_LIBGCC = re.compile(r"^__(aeabi_\w+|u?(div|mod)[sdt]i3|u?divmod[sd]i4|(fix|float)\w+|"
                     r"extend\w+|trunc\w+|gnu_\w+)$")


def check_object_symbols(obj, nm: str = "nm") -> list[str]:
    """The undefined (and weak data) symbols of ``obj``; DeployError if one is neither
    the shim's, libc's nor libgcc's (the executable would not link, or would link to
    something that is not there on the board)."""
    if shutil.which(nm) is None:
        raise DeployError(f"{nm!r} not found on PATH (binutils for the target)")
    proc = subprocess.run([nm, str(obj)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DeployError(f"{nm} {obj} failed: {proc.stderr.strip()}")
    need = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("U", "w"):
            need.append(parts[1])
        elif len(parts) == 3 and parts[1] in ("V", "v"):
            need.append(parts[2])
    bad = sorted(s for s in set(need)
                 if s not in SHIM_SYMBOLS and not _LIBC.match(s) and not _LIBGCC.match(s))
    if bad:
        raise DeployError(f"{obj}: the CPU operators need symbols the executor does not "
                          f"provide: {', '.join(bad)}")
    return sorted(set(need))
