"""Measurers: what a candidate costs, by the fast model, the C simulation, Vitis HLS or
a board over TVM RPC.

The interface every measurer implements (``Measurer``) and the task it measures against
(``TuneTask``). ``get_measurer`` returns one by name; ``hls`` and ``rpc`` live in
``measure_hls`` / ``measure_rpc`` and are imported only when asked for (they pull in
tools this machine may not have). Every measurer returns one ``Measurement`` per
candidate, in order, and never raises for a bad candidate: the error text says why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..boards import Board
from ..errors import OptionError
from ..quantize.layers import Layer, layer_signature
from .candidate import Candidate, Measurement


@dataclass
class ModelFunction:
    """One offloaded function of a model as the codegen schedules it (first-layer patch
    mode applied): ``layers`` as (Layer, input id, output id), ``tensors`` id -> (C, H, W),
    the function's ``inputs`` / ``outputs`` ids, and ``batch`` (the program runs once per
    image of the batch). What a measurer needs to build the function's program."""

    symbol: str
    layers: list[tuple[Layer, Any, Any]]
    tensors: dict
    inputs: list
    outputs: list
    batch: int = 1
    views: dict = field(default_factory=dict)  # concat parts in place (codegen.concat_plan)

    @staticmethod
    def single(layer: Layer, symbol: str | None = None) -> ModelFunction:
        """A one-layer function (a model given only as its layers)."""
        return ModelFunction(symbol or layer.name, [(layer, 0, 1)],
                             {0: tuple(layer.in_shape), 1: tuple(layer.out_shape)}, [0], [1])


@dataclass
class TuneTask:
    """What is being tuned: the ``board``, the ``models`` that share one engine (each a
    (name, accelerator layers in program order)), the clocks the space may use (MHz).

    Optional, filled by ``tuning.task.make_task``: ``functions`` per model name (its
    offloaded functions; a model without an entry is measured as one function per
    layer), ``modules`` per model name (the calibrated Relax module, for measurers that
    compile the whole model, e.g. over RPC) and ``weights`` per model name (the model's
    weight in the cost, default 1)."""

    board: Board
    models: list[tuple[str, list[Layer]]]
    clock_choices: tuple[float, ...]
    functions: dict[str, list[ModelFunction]] = field(default_factory=dict)
    modules: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)

    def model_functions(self, name: str) -> list[ModelFunction]:
        """The offloaded functions of model ``name`` (one per layer when not given)."""
        fns = self.functions.get(name)
        if fns:
            return fns
        layers = dict(self.models)[name]
        return [ModelFunction.single(layer) for layer in layers]

    def weight(self, name: str) -> float:
        return float(self.weights.get(name, 1.0))

    @property
    def layers(self) -> list[Layer]:
        """All models' layers, unique by ``layer_signature`` (first occurrence kept)."""
        seen: dict[str, Layer] = {}
        for _, layers in self.models:
            for layer in layers:
                seen.setdefault(layer_signature(layer), layer)
        return list(seen.values())


@runtime_checkable
class Measurer(Protocol):
    """Measures candidates of a task. ``name``: "model" | "sim" | "hls" | "rpc"."""

    name: str

    def measure(self, task: TuneTask, candidates: list[Candidate]) -> list[Measurement]:
        ...


MEASURERS = ("model", "sim", "hls", "rpc")


def get_measurer(name: str, **options) -> Measurer:
    """The measurer called ``name`` built with ``options`` (its constructor's keywords).
    Raises ``OptionError`` for an unknown name."""
    if name == "model":
        from .measure_model import ModelMeasurer
        return ModelMeasurer(**options)
    if name == "sim":
        from .measure_sim import SimMeasurer
        return SimMeasurer(**options)
    if name == "hls":
        from .measure_hls import HlsMeasurer
        return HlsMeasurer(**options)
    if name == "rpc":
        from .measure_rpc import RpcMeasurer
        return RpcMeasurer(**options)
    raise OptionError(f"unknown measurer {name!r} (known: {', '.join(MEASURERS)})")


def cost_us(task: TuneTask, m: Measurement) -> float | None:
    """The tuner's objective for measurement ``m`` (lower is better), in microseconds:
    the models' latencies at the candidate's clock, each times its weight
    (``detail["models"][name]["cycles"]``); ``cycles / clock`` when the measurer gives no
    per-model figures. None for a failed measurement."""
    if not m.ok:
        return None
    clock = m.candidate.engine.clock_mhz
    models = m.detail.get("models") if isinstance(m.detail, dict) else None
    if isinstance(models, dict) and models:
        try:
            return sum(task.weight(n) * float(v["cycles"]) for n, v in models.items()) / clock
        except (KeyError, TypeError, ValueError):
            pass  # a measurer's own detail format: fall back to the total
    return m.cycles / clock
