"""What the ``model`` and ``sim`` measurers share: each function's program for a
candidate, the DDR rate it runs at, and the Measurement assembled from per-function runs.

A model's cycles are those of its functions' programs (each run ``batch`` times), as
the compile's report counts them; the per-layer cycles are ``relax_ext.layer_cycles``
(from the previous layer's last instruction to this one's), summed by layer signature.
"""
from __future__ import annotations

import time

from ..codegen.dae_program import layer_reads
from ..engine.dae_config import DaeConfig
from ..errors import ScheduleError
from ..quantize.layers import layer_signature
from ..schedule.dae_resources import estimate
from ..schedule.instructions import Tensor, lower_layers
from ..toolchain.relax_ext import DDR_EFFICIENCY, layer_cycles
from .candidate import Candidate, Measurement
from .measure import ModelFunction, TuneTask
from .space import check_candidate


def beat_x100(task: TuneTask, engine: DaeConfig) -> int:
    """Cycles x 100 per 64-bit beat at the engine's clock, as the compile uses it."""
    return engine.beat_x100(task.board.ddr_gbps * 1e9 * DDR_EFFICIENCY)


def function_tiles(fn: ModelFunction, cand: Candidate) -> list:
    tiles = cand.tile_map
    return [tiles[layer_signature(layer)] for layer, _, _ in fn.layers]


def function_words(engine: DaeConfig, fn: ModelFunction, tiles) -> tuple[list[int], list[int]]:
    """(instruction words, index of each layer's last word) of ``fn`` with ``tiles``.
    Tensors are placed one after another (no reuse): addresses do not change timing."""
    placed, base = {}, 0
    for tid, (c, h, w) in fn.tensors.items():
        placed[tid] = Tensor(base, c, h, w)
        base += placed[tid].words
    words, _, _, ends = lower_layers(
        engine, [layer for layer, _, _ in fn.layers], tiles,
        [tuple(placed[t] for t in (a, b, *layer_reads(layer, a)[1:])) for layer, a, b in fn.layers])
    return words, ends


class _Ends:  # relax_ext.layer_cycles reads prog.layer_ends only
    def __init__(self, ends):
        self.layer_ends = ends


def measure_each(task: TuneTask, cand: Candidate, name: str, run_function,
                 setup_mul_impl: str = "fabric") -> Measurement:
    """Check ``cand``, then ``run_function(engine, fn, tiles, beat) -> (cycles, insn_end,
    token_peak)`` for every function of every model; one Measurement, an error (never an
    exception) when the candidate is rejected or a run fails."""
    t0 = time.perf_counter()
    engine = cand.engine
    use = estimate(engine, setup_mul_impl)
    res = {"bram18k": use.bram18k, "dsp": use.dsp, "lut": use.lut, "ff": use.ff}

    def failed(why: str) -> Measurement:
        return Measurement(cand, name, error=why, resources=res,
                           seconds=time.perf_counter() - t0)

    why = check_candidate(task, cand, setup_mul_impl=setup_mul_impl)
    if why is not None:
        return failed(f"rejected: {why}")
    beat = beat_x100(task, engine)
    models, all_layers, total = {}, {}, 0
    try:
        for mname, _ in task.models:
            m_cycles, m_layers = 0, {}
            for fn in task.model_functions(mname):
                cycles, insn_end, peak, ends = run_function(engine, fn, function_tiles(fn, cand),
                                                            beat)
                if peak > engine.token_depth:
                    return failed(f"{fn.symbol}: {peak} dependency tokens would wait in one "
                                  f"queue; the engine's queues hold {engine.token_depth}")
                m_cycles += fn.batch * int(cycles)
                for (layer, _, _), c in zip(fn.layers, layer_cycles(_Ends(ends), insn_end)):
                    s = layer_signature(layer)
                    m_layers[s] = m_layers.get(s, 0) + fn.batch * int(c)
            models[mname] = {"cycles": m_cycles, "layers": m_layers}
            total += m_cycles
            for s, c in m_layers.items():
                all_layers[s] = all_layers.get(s, 0) + c
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - a measurer reports a bad candidate, never raises
        kind = "" if isinstance(e, ScheduleError) else f"{type(e).__name__}: "
        return failed(f"{kind}{e}")
    return Measurement(cand, name, cycles=total, resources=res,
                       seconds=time.perf_counter() - t0,
                       detail={"models": models, "layers": all_layers, "beat_x100": beat})
