"""The executables of a deployment bundle: model file, ``zsq_infer`` and ``libzsq_model.so``.

``build_executables`` takes a Relax module (imported, optionally calibrated) and, per
variant, runs the plugin's partition and codegen with the glue fetching its programs from
the model file (``BuildOptions.glue_blobs="external"``), lowers and compiles the CPU
operators (``tir_object``), plans and generates the executor (``executor``), writes the
model file (``model_file``) and links:

- ``zsq_infer``: static executable (``-static -pthread``), runs on any ARM Linux with no
  library at all (board glibc version does not matter; dynamic only on a host build
  with ``$ZSQ_SANITIZE``),
- ``libzsq_model.so``: the same executor as a shared library exporting only the
  ``zsq_model_*`` API of ``templates/zsq_model.h`` (for ctypes and C programs).

Variants: ``arm`` (the board's Cortex-A9; accelerator backend ``zynq`` by default,
``csim`` runs the engine's simulation on the ARM, e.g. under qemu) and ``host`` (x86,
backend ``csim``). Layout of ``out_dir/<variant>/``::

    model.zsqm  zsq_infer  libzsq_model.so
    src/        zsq_model.c (generated), the fixed C sources and headers, tir_ops.o
    codegen/    the plugin's generated sources (glue, engine config, programs)
    obj/        object files
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import tvm
from tvm.target import Target

from .. import target as zsq_target
from ..boards import DEFAULT_BOARD, get_board
from ..codegen.safe_text import safe_text
from ..quantize.calibrate import calibrate, ensure_calibrated
from ..toolchain import context, driver
from ..toolchain.compiler import ARM_PREFIX, sanitize_flags
from . import executor, model_file, tir_object
from .errors import DeployError

TEMPLATES = Path(__file__).resolve().parent / "templates"
# The fixed C of every bundle (copied next to the generated zsq_model.c).
LIB_SOURCES = ("zsq_model_api.c", "zsq_model_file.c", "zsq_shim.c")
HEADERS = ("zsq_model.h", "zsq_model_file.h", "zsq_plan.h")
MAIN_SOURCE = "zsq_infer.c"
VARIANTS = ("arm", "host")
ARM_CFLAGS = ["-mcpu=cortex-a9", "-mfpu=neon", "-mfloat-abi=hard"]
CFLAGS = ["-std=gnu11", "-O2", "-fPIC", "-Wall"]


@dataclass
class Executables:
    """One variant of a bundle: where its files are and what went into them."""

    variant: str
    out_dir: Path
    model_file: Path
    infer: Path
    shared_library: Path
    model_id: int
    backend: str
    plan: executor.Plan
    workspace_bytes: int
    meta: dict
    sources: dict[str, Path] = field(default_factory=dict)
    codegen: object | None = None        # toolchain.relax_ext.CodegenResult (None: nothing offloaded)
    partition_report: object | None = None
    options: object | None = None        # the toolchain.context.BuildOptions of the build

    def sizes(self) -> dict[str, int]:
        """Bytes of the model file, the executable and the shared library."""
        return {p.name: p.stat().st_size for p in (self.model_file, self.infer,
                                                   self.shared_library)}


def build_executables(mod: tvm.IRModule, board: str = DEFAULT_BOARD, out_dir=".", *,
                      calibration=None, tuning_log=None, clock_mhz: float | None = None,
                      model_name: str = "model", output_names: list[str] | None = None,
                      arm: bool = True, host: bool = False, backend: str | None = None,
                      progress: bool = False) -> dict[str, Executables]:
    """Build the executables of ``mod`` for ``board`` into ``out_dir/<variant>/``.

    ``calibration``: samples for ``calibrate`` (None keeps the module's, or the synthetic
    set with a warning); ``tuning_log``, ``clock_mhz``: as ``zynq_squeeze.build``.
    ``output_names``: the model's output names (Relax keeps none; default output<k>).
    ``arm`` / ``host``: which variants. ``backend``: the accelerator runtime ("zynq" or
    "csim"; None: zynq on the ARM, csim on the host). Returns {variant: Executables}.
    """
    get_board(board)  # unknown boards fail before any work
    driver.check_clock(clock_mhz)
    if backend not in (None, "csim", "zynq"):
        raise DeployError(f"backend must be 'csim' or 'zynq', got {backend!r}")
    if not (arm or host):
        raise DeployError("nothing to build: ask for the arm and/or the host variant")
    # once, so that both variants quantize alike (and the synthetic set warns once)
    mod = (calibrate(mod, calibration, progress=progress) if calibration is not None
           else ensure_calibrated(mod, progress=progress))
    out = {}
    for variant in VARIANTS:
        if (variant == "arm" and arm) or (variant == "host" and host):
            out[variant] = build_variant(
                mod, variant, board, Path(out_dir) / variant, tuning_log=tuning_log,
                clock_mhz=clock_mhz, model_name=model_name, output_names=output_names,
                backend=backend, progress=progress)
    return out


def build_variant(mod: tvm.IRModule, variant: str, board: str, vdir: Path, *, tuning_log=None,
                  clock_mhz=None, model_name="model", output_names=None, backend=None,
                  progress=False) -> Executables:
    """One variant of ``build_executables`` (``mod`` is used as calibrated)."""
    if variant not in VARIANTS:
        raise DeployError(f"variant must be one of {VARIANTS}, got {variant!r}")
    is_arm = variant == "arm"
    backend = backend or ("zynq" if is_arm else "csim")
    if not is_arm and backend != "csim":
        raise DeployError("the host variant has no FPGA: its backend is csim")
    vdir = Path(vdir).resolve()
    src, obj = vdir / "src", vdir / "obj"
    for d in (src, obj):
        d.mkdir(parents=True, exist_ok=True)
    tools = _tools(is_arm)
    tgt = Target(zsq_target.BOARD_CONFIG if is_arm else zsq_target.HOST_CONFIG)

    # partition + codegen (glue, runtime, engine object), then the CPU part lowered
    opts = context.BuildOptions(
        board=board, out_dir=vdir / "codegen", tuning_log=Path(tuning_log) if tuning_log else None,
        model_name=model_name, clock_mhz=clock_mhz, progress=progress, board_build=is_arm,
        glue_blobs="external", backend=backend)
    with context.using(opts):
        try:
            with tgt:
                part = driver.offload_pass()(mod)
            low = tir_object.lower_for_executor(part, tgt)
        except RuntimeError as e:
            if opts.error is not None:  # the codegen's own error crossed TVM's FFI
                raise opts.error from None
            raise DeployError(f"lowering for the executor failed: {e}") from e
    tir = tir_object.build_tir_object(low, tgt, src / "tir_ops.o", nm=tools["nm"])
    plan = executor.plan(low)
    if output_names is not None:
        if len(output_names) != len(plan.outputs):
            raise DeployError(f"{len(output_names)} output names for {len(plan.outputs)} outputs")
        for io, name in zip(plan.outputs, output_names):
            io.name = str(name)
    res = opts.results[-1] if opts.results else None
    if plan.offloaded_symbols and res is None:
        raise DeployError("the plan calls offloaded functions but the codegen did not run")

    # model file sections and the executor
    blobs = _blob_sections(plan, res)
    meta = _meta(plan, model_name=model_name, board=board, cpu=str(tgt.attrs.get("mtriple", "")
                 or "host"), backend=backend, res=res, workspace_bytes=tir.workspace_bytes,
                 clock_mhz=clock_mhz)
    sections = ([("meta", json.dumps(meta, indent=1, sort_keys=True).encode() + b"\n")]
                + [(f"const.{k}", data) for k, data in enumerate(plan.consts)] + blobs)
    fingerprint = {"model-file-sections": hashlib.sha256(model_file.pack(sections, 0)).hexdigest()}
    if res is not None:
        glue = b"".join(Path(res.sources[n]).read_bytes() for n in ("zsq_glue.cc", "zsq_dae_config.h"))
        fingerprint["glue+engine-config"] = hashlib.sha256(glue).hexdigest()
    gen = executor.emit(plan, model_name=model_name, board=board, cpu=meta["cpu"],
                        backend=backend, workspace_bytes=tir.workspace_bytes,
                        blobs=[(n, len(d)) for n, d in blobs], fingerprint=fingerprint)
    sources = {"zsq_model.c": src / "zsq_model.c", "tir_ops.o": tir.path}
    sources["zsq_model.c"].write_text(gen.text)
    for name in LIB_SOURCES + HEADERS + (MAIN_SOURCE,):
        shutil.copyfile(TEMPLATES / name, src / name)
        sources[name] = src / name
    mfile = vdir / "model.zsqm"
    model_file.write(mfile, sections, gen.model_id)

    # compile and link
    native = [tir.path] + ([Path(res.object_path)] if res is not None else [])
    lib_objs = [_compile_c(tools, src / n, obj) for n in ("zsq_model.c",) + LIB_SOURCES]
    main_obj = _compile_c(tools, src / MAIN_SOURCE, obj)
    infer = vdir / "zsq_infer"
    _run([tools["cxx"], *tools["static"], "-pthread", *tools["flags"], str(main_obj),
          *map(str, lib_objs), *map(str, native), "-lm", "-o", str(infer)])
    exports = obj / "exports.map"
    exports.write_text("{\n  global: zsq_model_*;\n  local: *;\n};\n")
    so = vdir / "libzsq_model.so"
    # only the API is exported, and calls inside bind locally (-Bsymbolic): a process that
    # also loads TVM keeps its own TVMFFI* functions and ours do not mix with them
    _run([tools["cxx"], "-shared", "-pthread", *tools["flags"], *map(str, lib_objs),
          *map(str, native), "-static-libstdc++", "-static-libgcc", "-lm",
          f"-Wl,--version-script={exports}", "-Wl,-Bsymbolic", "-o", str(so)])
    return Executables(variant=variant, out_dir=vdir, model_file=mfile, infer=infer,
                       shared_library=so, model_id=gen.model_id, backend=backend, plan=plan,
                       workspace_bytes=tir.workspace_bytes, meta=meta, sources=sources,
                       codegen=res, partition_report=opts.partition_reports[-1]
                       if opts.partition_reports else None, options=opts)


def _tools(is_arm: bool) -> dict:
    import os

    if is_arm:
        tools = {"cc": ARM_PREFIX + "gcc", "cxx": ARM_PREFIX + "g++", "nm": ARM_PREFIX + "nm",
                 "flags": ["-O2", *ARM_CFLAGS], "static": ["-static"]}
    else:
        # $ZSQ_SANITIZE builds the glue and engine with sanitizers: link with them too,
        # dynamically (the sanitizer runtimes do not link statically)
        san = sanitize_flags()
        tools = {"cc": os.environ.get("CC", "gcc"), "cxx": os.environ.get("CXX", "g++"),
                 "nm": "nm", "flags": ["-O2", *san], "static": [] if san else ["-static"]}
    for key in ("cc", "cxx", "nm"):
        if shutil.which(tools[key]) is None:
            hint = " (apt-get install g++-arm-linux-gnueabihf)" if is_arm else ""
            raise DeployError(f"{tools[key]!r} not found on PATH{hint}")
    return tools


def _ffi_includes() -> list[str]:
    import tvm_ffi

    return [tvm_ffi.libinfo.find_include_path(), tvm_ffi.libinfo.find_dlpack_include_path()]


def _compile_c(tools: dict, source: Path, obj_dir: Path) -> Path:
    out = obj_dir / (source.stem + ".o")
    _run([tools["cc"], *CFLAGS, *tools["flags"][1:], f"-I{source.parent}",
          *[f"-I{d}" for d in _ffi_includes()], "-c", str(source), "-o", str(out)])
    return out


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DeployError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
                          f"{proc.stderr[-4000:]}")


def _blob_sections(plan: executor.Plan, res) -> list[tuple[str, bytes]]:
    """("<symbol>.insn" / ".wgt", bytes) of each offloaded function, from the files the
    codegen wrote (the very words its glue would otherwise link in)."""
    out = []
    for sym in plan.offloaded_symbols:
        for role in ("insn", "wgt"):
            path = res.sources.get(f"{sym}_{role}.bin")
            if path is None or not Path(path).is_file():
                raise DeployError(f"the codegen wrote no {sym}_{role}.bin for {sym}")
            out.append((f"{sym}.{role}", Path(path).read_bytes()))
    return out


def _versions() -> dict:
    import importlib.metadata

    try:
        zsq = importlib.metadata.version("zynq-squeeze")
    except importlib.metadata.PackageNotFoundError:
        zsq = "unknown"
    return {"zynq_squeeze": zsq, "tvm": str(tvm.__version__), "model_file": model_file.VERSION}


def _meta(plan: executor.Plan, *, model_name, board, cpu, backend, res, workspace_bytes,
          clock_mhz) -> dict:
    """The ``meta`` section: what the model file is for, its I/O and offloaded functions."""
    T = plan.tensors

    def ios(items):
        return [{"name": io.name, "shape": list(T[io.tensor].shape), "dtype": T[io.tensor].dtype}
                for io in items]

    offloaded = []
    by_symbol = {} if res is None else {lf.symbol: (lf, prog) for lf, prog in
                                        zip(res.functions, res.programs)}
    for sym in plan.offloaded_symbols:
        if sym not in by_symbol:
            raise DeployError(f"offloaded function {sym} is not among the codegen's results")
        lf, prog = by_symbol[sym]
        offloaded.append({
            "symbol": sym, "batch": lf.batch,
            "layers": [safe_text(layer.name) for layer, _, _ in lf.layers],
            # "split": the two-plane input's F (codegen/lower.py INPUT_SPLIT), when used
            "inputs": [{"shape": list(s), "scale": float(lf.tensors[t].scale),
                        **({"split": int(lf.tensors[t].split)} if lf.tensors[t].split else {})}
                       for t, s in zip(lf.inputs, lf.input_shapes)],
            "outputs": [{"shape": list(s), "scale": float(lf.tensors[t].scale),
                         "zero_point": int(lf.tensors[t].zero_point)}
                        for t, s in zip(lf.outputs, lf.output_shapes)],
            "instructions": len(prog.words), "weight_words": len(prog.weights),
        })
    return {
        "model": str(model_name), "board": board, "cpu": cpu, "backend": backend,
        "clock_mhz": clock_mhz,
        "engine": None if res is None else {k: int(v) for k, v in sorted(res.engine.macros().items())},
        "inputs": ios(plan.inputs), "outputs": ios(plan.outputs),
        "offloaded": offloaded,
        "steps": [{"kind": "accel" if s.offloaded else "cpu", "symbol": s.symbol}
                  for s in plan.steps],
        "memory": {"arena_bytes": plan.arena_bytes, "workspace_bytes": workspace_bytes,
                   "constant_bytes": plan.const_bytes},
        "versions": _versions(),
    }


__all__ = ["DeployError", "Executables", "build_executables", "build_variant"]
