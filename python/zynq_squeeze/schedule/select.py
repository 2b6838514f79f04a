"""Choose the engine for a board and the tile of every layer.

The engine comes from a tuning log when one is given, else from the engine search (the
largest MAC array the board's DSPs allow, buffers sized to what the model's layers
need). Layer tiles come from the tuning log (matched by layer signature) or, for layers
it does not cover, from the default tiler (fastest candidate by the cycle model).

A tuning log is either a schedule (JSON, ``"version": 2``: one engine, one tile per
signature; what ``schedule.json`` holds) or a measurement log of ``zynq-squeeze tune``
(JSON Lines, ``schedule.tuning_records``): then its best record applies, as AutoTVM's
apply_history_best did -- the best measured engine, the best measured tile per layer.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..boards import Board
from ..engine.dae_config import DaeConfig, DaeTile
from ..errors import ScheduleError, ZynqSqueezeError
from ..quantize.layers import Layer, layer_signature
from . import tuning_records

TUNING_LOG_VERSION = 2


class EngineFitError(ZynqSqueezeError):
    """An engine does not fit the board's resources."""


class TuningLogError(ZynqSqueezeError):
    """A tuning log cannot be read (missing, not JSON, wrong version or fields)."""


def read_tuning_log(path: Path, *, board: str | None = None,
                    engine: DaeConfig | None = None, layers=None) -> dict:
    """Parse and validate a tuning log; raises ``TuningLogError`` naming the problem.

    A measurement log (``.jsonl``, see ``tuning_records``) gives its best record's
    schedule, among the records for ``board``, with ``engine`` and with a tile for every
    one of ``layers`` when given (``tuning_records.best_schedule``); its unreadable lines
    are skipped with a warning.

    Every field is checked when the log is read: integers must be JSON integers within
    the engine's limits (``DaeConfig.from_json`` / ``DaeTile.from_json``), the clock a
    number in [1, 500] MHz. The error names the file, the ``"layers"`` key the user edited
    (or ``engine``), the field and the allowed range.
    """
    path = Path(path)
    if path.is_file() and tuning_records.is_record_log(path):
        sigs = None if layers is None else [layer_signature(la) for la in layers]
        return _read_record_log(path, board, engine, sigs)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TuningLogError(f"tuning log {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TuningLogError(f"tuning log {path} is not valid JSON: {e}") from None
    except (OSError, RecursionError) as e:
        raise TuningLogError(f"tuning log {path} cannot be read: {e}") from None
    version = data.get("version") if isinstance(data, dict) else None
    if type(version) is not int or version != TUNING_LOG_VERSION:
        raise TuningLogError(f"tuning log {path}: expected an object with "
                             f"\"version\": {TUNING_LOG_VERSION}")
    unknown = sorted(set(data) - {"version", "engine", "layers"})
    if unknown:
        raise TuningLogError(f"tuning log {path}: unknown entry {unknown[0]!r} (a tuning log "
                             "holds \"version\", \"engine\" and \"layers\")")
    engine = None
    if data.get("engine") is not None:
        try:
            engine = DaeConfig.from_json(data["engine"])
        except (TypeError, ValueError) as e:
            raise TuningLogError(f"tuning log {path}: bad entry: engine: {e}") from None
    raw_layers = data.get("layers", {})
    if not isinstance(raw_layers, dict):
        raise TuningLogError(f"tuning log {path}: bad entry: \"layers\" must be an object "
                             "mapping layer signatures to tiles")
    layers = {}
    for key, tile in raw_layers.items():
        try:
            layers[key] = DaeTile.from_json(tile)
        except (TypeError, ValueError) as e:
            raise TuningLogError(f"tuning log {path}: bad entry: layer {key!r}: {e}") from None
    return {"engine": engine, "layers": layers}


def _read_record_log(path: Path, board: str | None, engine: DaeConfig | None,
                     sigs=None) -> dict:
    try:
        records = tuning_records.read_records(path)
    except OSError as e:
        raise TuningLogError(f"tuning log {path} cannot be read: {e}") from None
    best = tuning_records.best_schedule(records, board=board, engine=engine, signatures=sigs)
    if best is None:
        what = "".join([f" for board {board}" if board else "",
                        " with the chosen engine" if engine is not None else "",
                        f" covering this model's {len(set(sigs))} layer signature(s) (a log "
                        "of another model?)" if sigs else ""])
        raise TuningLogError(f"tuning log {path} holds no successful measurement{what} "
                             f"({len(records)} record(s) read)")
    return {"engine": best["engine"], "layers": best["layers"]}


def write_tuning_log(path: Path, engine: DaeConfig, layers: list[Layer],
                     tiles: list[DaeTile]) -> None:
    """Write a tuning log that reproduces ``engine`` and ``tiles``."""
    Path(path).write_text(json.dumps(tuning_log_json(engine, layers, tiles), indent=1,
                                     sort_keys=True) + "\n")


def tuning_log_json(engine: DaeConfig, layers: list[Layer], tiles: list[DaeTile]) -> dict:
    return {"version": TUNING_LOG_VERSION, "engine": engine.to_json(),
            "layers": {layer_signature(lay): t.to_json() for lay, t in zip(layers, tiles)}}


def choose_engine(board: Board, layers: list[Layer], *, clock_mhz: float | None = None,
                  tuning_log: Path | None = None) -> DaeConfig:
    """The engine for this model on ``board``: the tuning log's, else the search's."""
    from .dae_engine_search import search_dae_engine

    if tuning_log is not None:
        eng = read_tuning_log(tuning_log, board=board.name, layers=layers)["engine"]
        if eng is not None:
            check_engine_fits(eng, board)
            return eng
    return search_dae_engine(board, layers, clock_mhz).cfg


def check_engine_fits(engine: DaeConfig, board: Board) -> None:
    """Raise ``EngineFitError`` naming the resource (and largest buffer) ``engine`` overflows."""
    from .dae_resources import estimate

    use = estimate(engine)
    for key in ("bram18k", "dsp", "lut", "ff"):
        used, avail = getattr(use, key), getattr(board, key)
        if used > avail:
            detail = ""
            if key == "bram18k" and getattr(use, "buffers", None):
                big = max(use.buffers, key=use.buffers.get)
                detail = f" (largest buffer: {big}, {use.buffers[big]} BRAM18K)"
            raise EngineFitError(f"engine k={engine.k} ({engine.pe_oc}x8 MACs) needs {used} "
                                 f"{key} but {board.name} has {avail}{detail}")


def choose_tiles(engine: DaeConfig, layers: list[Layer], *,
                 tuning_log: Path | None = None, board: Board | None = None) -> list[DaeTile]:
    """Per layer: the tuning log's tile (checked against the engine's buffers; from the
    records of ``board`` when given), else the default tiler's."""
    from .dae_tiling import default_tile, overflow

    logged = (read_tuning_log(tuning_log, engine=engine, layers=layers,
                              board=board.name if board is not None else None)["layers"]
              if tuning_log is not None else {})
    out = []
    for layer in layers:
        t = logged.get(layer_signature(layer))
        if t is None:
            t = default_tile(engine, layer)
        else:
            why = overflow(engine, layer, t)
            if why is not None:
                raise ScheduleError(f"{layer.name}: the tuning log's tile {t} does not fit: {why}")
        out.append(t)
    return out
