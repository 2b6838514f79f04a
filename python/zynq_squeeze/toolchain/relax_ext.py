"""``relax.ext.zynq_squeeze``: from offloaded Relax functions to one linked object.

RunCodegen hands us every offloaded function of the model at once. We lower them to
quantized layers, choose the engine and the per-layer tile schedules, build each
function's layer program (descriptors, packed weights, params), write the artifacts
(engine config header, programs, glue source) and compile glue + runtime + engine into
one relocatable object that TVM links as a static library.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import tvm

from ..boards import get_board
from ..codegen.glue import GlueFunction, emit_glue
from ..codegen.lower import LoweredFunction, lower_function
from ..engine.config import EngineConfig
from ..schedule.select import choose_engine, choose_schedules
from ..target import is_board_target
from . import context


@dataclass
class CodegenResult:
    """Everything one RunCodegen call produced (kept on the build options for reports)."""

    board: str
    engine: EngineConfig
    out_dir: Path
    object_path: Path
    functions: list[LoweredFunction] = field(default_factory=list)
    programs: list = field(default_factory=list)  # program.Program per function
    sources: dict[str, Path] = field(default_factory=dict)


def _layer_summary(lf: LoweredFunction, prog) -> list[str]:
    lines = []
    for (layer, src, dst), sched in zip(lf.layers, prog.schedules):
        shp = "x".join(str(v) for v in layer.in_shape)
        out = "x".join(str(v) for v in layer.out_shape)
        pool = f" +{layer.pool.kind}pool" if layer.pool is not None else ""
        lines.append(f"{layer.name}: {layer.kind}{pool} {shp} -> {out}; tile toc={sched.toc} "
                     f"tic={sched.tic} th={sched.th} tw={sched.tw} {sched.loop_order}")
    return lines


def program_summary(lf: LoweredFunction, prog) -> dict:
    """A readable description of a function's layer program (written beside the blobs)."""
    return {
        "function": lf.symbol,
        "batch": lf.batch,
        "arena_bytes": prog.arena_bytes,
        "weights_bytes": len(prog.weights),
        "params_words": len(prog.params) // 4,
        "tensors": {str(t): {"offset": int(prog.tensor_offsets[t]),
                             "shape": list(lf.tensors[t].shape),
                             "scale": lf.tensors[t].scale} for t in lf.tensors},
        "inputs": lf.inputs,
        "outputs": lf.outputs,
        "layers": [{"name": layer.name, "kind": layer.kind, "input": src, "output": dst,
                    "in_shape": list(layer.in_shape), "out_shape": list(layer.out_shape),
                    "macs": layer.macs, "schedule": s.to_json(), "cycles": int(c)}
                   for (layer, src, dst), s, c in zip(lf.layers, prog.schedules,
                                                      prog.layer_cycles)],
    }


def generate(functions, opts: context.BuildOptions) -> CodegenResult:
    """Lower, schedule and compile ``functions``; returns the result (object written)."""
    # The native toolchain is needed only when something is offloaded.
    from ..codegen.program import build_program, engine_config_header
    from .compiler import compile_model_object

    board = get_board(opts.board)
    lowered = [lower_function(f) for f in functions]
    all_layers = [layer for lf in lowered for layer, _, _ in lf.layers]
    engine = choose_engine(board, all_layers, clock_mhz=opts.clock_mhz,
                           tuning_log=opts.tuning_log)
    # Absolute: the glue is compiled from inside src/ (relative .incbin names).
    out_dir = Path(opts.out_dir).resolve() if opts.out_dir else context.temp_dir()
    src_dir = out_dir / "src"
    src_dir.mkdir(parents=True, exist_ok=True)
    glue_fns, programs = [], []
    sources: dict[str, Path] = {}
    for lf in lowered:
        scheds = choose_schedules(engine, [layer for layer, _, _ in lf.layers],
                                  tuning_log=opts.tuning_log)
        tensors = {tid: info.shape for tid, info in lf.tensors.items()}
        prog = build_program(lf.layers, tensors, lf.inputs, lf.outputs, engine, scheds)
        programs.append(prog)
        blobs = {}
        for role, data in (("prog", prog.descriptors), ("weights", prog.weights),
                           ("params", prog.params)):
            fname = f"{lf.symbol}_{role}.bin"
            (src_dir / fname).write_bytes(bytes(data) if len(data) else b"\0")
            blobs[role] = fname
            sources[fname] = src_dir / fname
        (src_dir / f"{lf.symbol}_program.json").write_text(
            json.dumps(program_summary(lf, prog), indent=1, sort_keys=True) + "\n")
        sources[f"{lf.symbol}_program.json"] = src_dir / f"{lf.symbol}_program.json"
        glue_fns.append(GlueFunction(
            lowered=lf, n_layers=len(lf.layers), arena_bytes=prog.arena_bytes,
            input_offsets=prog.input_offsets, output_offsets=prog.output_offsets,
            blob_files=blobs, weights_bytes=len(prog.weights),
            params_words=len(prog.params) // 4, summary=_layer_summary(lf, prog)))
    header = engine_config_header(engine, f"model '{opts.model_name}', board {board.name}")
    (src_dir / "zsq_config.h").write_text(header)
    sources["zsq_config.h"] = src_dir / "zsq_config.h"
    glue = emit_glue(opts.model_name, board.name, glue_fns)
    (src_dir / "zsq_glue.cc").write_text(glue)
    sources["zsq_glue.cc"] = src_dir / "zsq_glue.cc"
    # A board build either by option or by target (tvm.compile(..., "zynq-squeeze-arm")).
    board_build = opts.board_build or is_board_target(None)
    obj = compile_model_object(src_dir, board=board, host=not board_build,
                               progress=opts.progress)
    return CodegenResult(board=board.name, engine=engine, out_dir=out_dir, object_path=obj,
                         functions=lowered, programs=programs, sources=sources)


@tvm.register_global_func("relax.ext.zynq_squeeze", override=True)
def _relax_ext_zynq_squeeze(functions, options, constant_names):
    """The BYOC codegen entry point TVM's RunCodegen calls (returns runtime modules)."""
    opts = context.current()
    res = generate(list(functions), opts)
    opts.results.append(res)
    symbols = [lf.symbol for lf in res.functions]
    return [tvm.runtime.load_static_library(str(res.object_path), symbols)]
