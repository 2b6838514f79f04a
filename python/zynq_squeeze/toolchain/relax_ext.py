"""``relax.ext.zynq_squeeze``: from offloaded Relax functions to one linked object.

RunCodegen hands us every offloaded function of the model at once. We lower them to
quantized layers, choose the engine (one per model) and every layer's tile, build each
function's program (instruction words, packed weights and params, arena layout), write
the artifacts (engine config header, programs, glue source) and compile glue + runtime
+ engine into one relocatable object that TVM links as a static library.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tvm

from ..boards import get_board
from ..codegen.glue import GlueFunction, emit_glue
from ..codegen.lower import INPUT_SPLIT, LoweredFunction, lower_function
from ..engine.dae_config import DaeConfig
from ..errors import ScheduleError, ZynqSqueezeError
from ..schedule.select import choose_engine, choose_tiles
from ..target import is_board_target
from . import context


@dataclass
class CodegenResult:
    """Everything one RunCodegen call produced (kept on the build options for reports)."""

    board: str
    engine: DaeConfig
    out_dir: Path
    object_path: Path
    functions: list[LoweredFunction] = field(default_factory=list)
    programs: list = field(default_factory=list)  # codegen.dae_program.DaeProgram per function
    layer_cycles: list = field(default_factory=list)  # per function: modeled cycles per layer
    layer_ddr_bytes: list = field(default_factory=list)  # per function: DDR bytes per layer
    beat_x100: int = 100
    sources: dict[str, Path] = field(default_factory=dict)


def _layer_summary(lf: LoweredFunction, prog, cycles) -> list[str]:
    lines = []
    for (layer, _, _), tile, c in zip(prog.layers, prog.tiles, cycles):
        shp = "x".join(str(v) for v in layer.in_shape)
        out = "x".join(str(v) for v in layer.out_shape)
        pool = f" +{layer.pool.kind}pool" if layer.pool is not None else ""
        lines.append(f"{layer.name}: {layer.kind}{pool} {shp} -> {out}; tile toc={tile.toc} "
                     f"tic={tile.tic} th={tile.th} tw={tile.tw}; {int(c)} cycles (modeled)")
    return lines


def program_summary(lf: LoweredFunction, prog, cycles) -> dict:
    """A readable description of a function's program (written beside the blobs)."""
    return {
        "function": lf.symbol,
        "batch": lf.batch,
        "instructions": int(len(prog.words)),
        "arena_words": int(prog.arena_words),
        "weight_words": int(len(prog.weights)),
        "tensors": {str(t): {"word_offset": int(prog.tensors[t].base),
                             "shape": list(lf.tensors[t].shape),
                             "scale": lf.tensors[t].scale,
                             "zero_point": lf.tensors[t].zero_point,
                             # a concat part stored in place: [root id, channel offset]
                             **({"view_of": list(lf.views[t])} if t in lf.views else {})}
                    for t in lf.tensors},
        "inputs": lf.inputs,
        "outputs": lf.outputs,
        "layers": [{"name": layer.name, "kind": layer.kind, "input": src, "output": dst,
                    "in_shape": list(layer.in_shape), "out_shape": list(layer.out_shape),
                    "macs": layer.macs, "tile": tl.to_json(), "cycles_modeled": int(c),
                    "last_instruction": int(e)}
                   for (layer, src, dst), tl, c, e in zip(prog.layers, prog.tiles, cycles,
                                                           prog.layer_ends)],
    }


def layer_bytes(prog, insn_bytes) -> list[int]:
    """DDR bytes each layer's instructions move (loads and stores)."""
    out, prev = [], 0
    for e in prog.layer_ends:
        out.append(int(np.sum(insn_bytes[prev:e + 1])))
        prev = e + 1
    return out


def layer_cycles(prog, insn_end) -> list[int]:
    """Cycles per layer from instruction completion times: the time from the previous
    layer's last instruction to this one's (layers overlap only at their borders)."""
    out, prev = [], 0
    for e in prog.layer_ends:
        end = int(np.max(insn_end[:e + 1]))
        out.append(end - prev)
        prev = end
    return out


def _first_layer_mode(lf: LoweredFunction):
    """(layers, tensor shapes, patch geometry per input id): a conv that alone reads a
    few-channel function input runs on patches the glue writes (codegen/first_layer)."""
    from ..codegen import first_layer

    layers = list(lf.layers)
    tensors = {tid: info.shape for tid, info in lf.tensors.items()}
    patches = {}
    for tid in lf.inputs:
        readers = [i for i, (_, src, _) in enumerate(layers) if src == tid]
        # a residual add reading it as its bypass needs the plain tensor, not patches
        bypassed = any(getattr(layer, "bypass", None) == tid for layer, _, _ in layers)
        if len(readers) != 1 or tid in lf.outputs or bypassed:
            continue
        i = readers[0]
        layer, src, dst = layers[i]
        if not first_layer.applies(layer):
            continue
        pl = first_layer.patch_layer(layer)
        layers[i] = (pl, src, dst)
        tensors[tid] = pl.in_shape
        kh, kw = layer.conv.kernel
        oh, ow = layer.conv_hw
        patches[tid] = {"kh": kh, "kw": kw, "sy": layer.conv.stride[0],
                        "sx": layer.conv.stride[1], "pt": layer.conv.pads[0],
                        "pl": layer.conv.pads[1], "oh": oh, "ow": ow}
    return layers, tensors, patches


def generate(functions, opts: context.BuildOptions) -> CodegenResult:
    """Lower, schedule and compile ``functions``; returns the result (object written)."""
    # The native toolchain is needed only when something is offloaded.
    from ..codegen.dae_program import build_dae_program
    from ..codegen.hls_project import dae_config_header
    from ..schedule.timing import simulate
    from .compiler import compile_model_object

    board = get_board(opts.board)
    lowered = [lower_function(f, input_split=INPUT_SPLIT if opts.input_split else 0)
               for f in functions]
    modes = [_first_layer_mode(lf) for lf in lowered]
    all_layers = [layer for layers, _, _ in modes for layer, _, _ in layers]
    engine = choose_engine(board, all_layers, clock_mhz=opts.clock_mhz,
                           tuning_log=opts.tuning_log)
    beat = engine.beat_x100(board.ddr_gbps * 1e9 * DDR_EFFICIENCY)
    timing = {"rd_latency": engine.rd_latency, "wr_latency": engine.wr_latency,
              "outstanding": engine.outstanding, "beat_x100": beat}
    # Absolute: the glue is compiled from inside src/ (relative .incbin names).
    out_dir = Path(opts.out_dir).resolve() if opts.out_dir else context.temp_dir()
    src_dir = out_dir / "src"
    src_dir.mkdir(parents=True, exist_ok=True)
    glue_fns, programs, cycles_all, bytes_all = [], [], [], []
    sources: dict[str, Path] = {}
    for lf, (layers, tensors, patches) in zip(lowered, modes):
        tiles = choose_tiles(engine, [layer for layer, _, _ in layers], tuning_log=opts.tuning_log,
                             board=board)
        prog = build_dae_program(engine, layers, tiles, tensors, lf.inputs, lf.outputs,
                                 lf.views)
        timing_run = simulate(engine, prog.words, beat)
        if max(timing_run.token_peak) > engine.token_depth:
            # the hardware token FIFOs hold token_depth: a deeper backlog would stall
            # the pusher where the simulation does not
            raise ScheduleError(f"{lf.symbol}: {max(timing_run.token_peak)} dependency tokens "
                                f"would wait in one queue; the engine's queues hold "
                                f"{engine.token_depth}")
        cycles = layer_cycles(prog, timing_run.insn_end)
        programs.append(prog)
        cycles_all.append(cycles)
        bytes_all.append(layer_bytes(prog, timing_run.insn_bytes))
        blobs = {}
        for role, data in (("insn", prog.words), ("wgt", prog.weights)):
            fname = f"{lf.symbol}_{role}.bin"
            (src_dir / fname).write_bytes(np.asarray(data, dtype="<u8").tobytes())
            blobs[role] = fname
            sources[fname] = src_dir / fname
        (src_dir / f"{lf.symbol}_program.json").write_text(
            json.dumps(program_summary(lf, prog, cycles), indent=1, sort_keys=True) + "\n")
        sources[f"{lf.symbol}_program.json"] = src_dir / f"{lf.symbol}_program.json"
        glue_fns.append(GlueFunction(
            lowered=lf, n_insn=len(prog.words), arena_words=prog.arena_words,
            input_offsets=[prog.tensors[t].base for t in lf.inputs],
            output_offsets=[prog.tensors[t].base for t in lf.outputs],
            input_words=[prog.tensors[t].words for t in lf.inputs],
            output_words=[prog.tensors[t].words for t in lf.outputs],
            blob_files=blobs, wgt_words=len(prog.weights), timing=timing,
            input_patches=[patches.get(tid) for tid in lf.inputs],
            summary=_layer_summary(lf, prog, cycles)))
    header = dae_config_header(engine, f"model '{opts.model_name}', board {board.name}", beat)
    (src_dir / "zsq_dae_config.h").write_text(header)
    sources["zsq_dae_config.h"] = src_dir / "zsq_dae_config.h"
    glue = emit_glue(opts.model_name, board.name, glue_fns, opts.glue_blobs)
    (src_dir / "zsq_glue.cc").write_text(glue)
    sources["zsq_glue.cc"] = src_dir / "zsq_glue.cc"
    # A board build either by option or by target (tvm.compile(..., "zynq-squeeze-arm")).
    board_build = opts.board_build or is_board_target(None)
    obj = compile_model_object(src_dir, board=board, host=not board_build,
                               progress=opts.progress, backend=opts.backend)
    return CodegenResult(board=board.name, engine=engine, out_dir=out_dir, object_path=obj,
                         functions=lowered, programs=programs, layer_cycles=cycles_all,
                         layer_ddr_bytes=bytes_all, beat_x100=beat, sources=sources)


# Sustained fraction of the DDR peak (ARCHITECTURE.md: DDR3 ~75 % efficiency at best).
DDR_EFFICIENCY = 0.75


@tvm.register_global_func("relax.ext.zynq_squeeze", override=True)
def _relax_ext_zynq_squeeze(functions, options, constant_names):
    """The BYOC codegen entry point TVM's RunCodegen calls (returns runtime modules)."""
    opts = context.current()
    try:
        res = generate(list(functions), opts)
    except ZynqSqueezeError as e:
        opts.error = e  # crosses TVM's FFI as a RuntimeError: build() restores the type
        raise
    opts.results.append(res)
    symbols = [lf.symbol for lf in res.functions]
    return [tvm.runtime.load_static_library(str(res.object_path), symbols)]
