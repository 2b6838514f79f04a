"""The ``model`` measurer: the fast cycle model (``schedule.timing.simulate``, equal to
the C simulation's executed timing) on each function's program, and the resource model
(``schedule.dae_resources.estimate``). No native code, ~10-50 ms per SqueezeNet
candidate: what the search spends its trials on."""
from __future__ import annotations

from ..schedule.timing import simulate
from .candidate import Candidate, Measurement
from .measure import TuneTask
from .programs import function_words, measure_each


def _run(engine, fn, tiles, beat):
    words, ends = function_words(engine, fn, tiles)
    t = simulate(engine, words, beat)
    return t.cycles, t.insn_end, max(t.token_peak), ends


class ModelMeasurer:
    """Cycles by the fast model, resources by the resource model."""

    name = "model"
    batch_size = 1  # the tuner logs every measurement as soon as it is made

    def __init__(self, setup_mul_impl: str = "fabric"):
        self.setup_mul_impl = setup_mul_impl

    def measure(self, task: TuneTask, candidates: list[Candidate]) -> list[Measurement]:
        return [measure_each(task, c, self.name, _run, self.setup_mul_impl) for c in candidates]
