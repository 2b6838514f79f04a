"""Choose the engine for a board and the tile schedule of every layer.

The engine comes from a tuning log when one is given, else from ``engine_search`` (the
fastest engine by the cycle model that fits the board). Layer schedules come from the tuning log (matched by
layer signature) or, for layers it does not cover, from the default tiler.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..boards import Board
from ..engine.config import EngineConfig, TileSchedule
from ..errors import ZynqSqueezeError
from ..quantize.layers import Layer, layer_signature

TUNING_LOG_VERSION = 1


class EngineFitError(ZynqSqueezeError):
    """An engine does not fit the board's resources."""


class TuningLogError(ZynqSqueezeError):
    """A tuning log cannot be read (missing, not JSON, wrong version or fields)."""


def read_tuning_log(path: Path) -> dict:
    """Parse and validate a tuning log; raises ``TuningLogError`` naming the problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TuningLogError(f"tuning log {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TuningLogError(f"tuning log {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or data.get("version") != TUNING_LOG_VERSION:
        raise TuningLogError(f"tuning log {path}: expected an object with "
                             f"\"version\": {TUNING_LOG_VERSION}")
    try:
        engine = EngineConfig.from_json(data["engine"]) if "engine" in data else None
        layers = {str(k): TileSchedule.from_json(v) for k, v in data.get("layers", {}).items()}
    except (TypeError, ValueError, KeyError) as e:
        raise TuningLogError(f"tuning log {path}: bad entry: {e}") from None
    return {"engine": engine, "layers": layers}


def write_tuning_log(path: Path, engine: EngineConfig, layers: list[Layer],
                     schedules: list[TileSchedule]) -> None:
    """Write a tuning log that reproduces ``engine`` and ``schedules``."""
    data = {"version": TUNING_LOG_VERSION, "engine": engine.to_json(),
            "layers": {layer_signature(lay): s.to_json() for lay, s in zip(layers, schedules)}}
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def choose_engine(board: Board, layers: list[Layer], *, clock_mhz: float | None = None,
                  tuning_log: Path | None = None) -> EngineConfig:
    """The engine for this model on ``board``: the tuning log's, else the search's."""
    from .engine_search import search_engine

    if tuning_log is not None:
        eng = read_tuning_log(tuning_log)["engine"]
        if eng is not None:
            check_engine_fits(eng, board)
            return eng
    return search_engine(board, layers, clock_mhz)


def check_engine_fits(engine: EngineConfig, board: Board) -> None:
    """Raise ``EngineFitError`` naming the resource (and largest buffer) ``engine`` overflows."""
    from .resources import estimate

    use = estimate(engine)
    for key in ("bram18k", "dsp", "lut", "ff"):
        used, avail = getattr(use, key), getattr(board, key)
        if used > avail:
            detail = ""
            if key == "bram18k":
                big = max(use.buffers, key=use.buffers.get)
                detail = f" (largest buffer: {big}, {use.buffers[big]} BRAM18K)"
            raise EngineFitError(f"engine {engine.pe_oc}x{engine.pe_ic} needs {used} {key} but "
                                 f"{board.name} has {avail}{detail}")


def choose_schedules(engine: EngineConfig, layers: list[Layer], *,
                     tuning_log: Path | None = None) -> list[TileSchedule | None]:
    """Per layer: the tuning log's schedule, or None (the default tiler decides)."""
    logged = read_tuning_log(tuning_log)["layers"] if tuning_log is not None else {}
    return [logged.get(layer_signature(layer)) for layer in layers]
