"""The ``sim`` measurer: each function's real program (``codegen.dae_program``: packed
weights and params, arena) executed by the engine's C simulation
(``toolchain.dae_sim``), whose timing is the executed one -- the truth available without
a board. The simulation library is compiled once per engine (its depths are macros;
cached on disk), then ~0.1-1 s per SqueezeNet candidate."""
from __future__ import annotations

import numpy as np

from ..codegen.dae_program import build_dae_program
from ..toolchain.dae_sim import run_words
from .candidate import Candidate, Measurement
from .measure import TuneTask
from .programs import measure_each


def _run(engine, fn, tiles, beat):
    from ..schedule.timing import simulate

    prog = build_dae_program(engine, fn.layers, tiles, fn.tensors, fn.inputs, fn.outputs,
                             fn.views)
    res = run_words(engine, prog.words, prog.weights, np.zeros(prog.arena_words, np.uint64),
                    beat)
    # the token backlog is not observable from the C run (its driver does not bound the
    # streams); the fast model replays the same schedule and reports it
    peak = max(simulate(engine, prog.words, beat).token_peak)
    return res.cycles, res.insn_end, peak, prog.layer_ends


class SimMeasurer:
    """Cycles by executing the program on the C simulation."""

    name = "sim"
    batch_size = 1

    def __init__(self, setup_mul_impl: str = "fabric"):
        self.setup_mul_impl = setup_mul_impl

    def measure(self, task: TuneTask, candidates: list[Candidate]) -> list[Measurement]:
        return [measure_each(task, c, self.name, _run, self.setup_mul_impl) for c in candidates]
