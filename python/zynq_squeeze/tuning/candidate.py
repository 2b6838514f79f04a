"""What the tuner measures: a candidate (one engine + one tile per layer) and its result.

Shared by every strategy and measurer. A candidate is hashable and has a canonical JSON
form (the log's key: a logged candidate is never measured twice).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from ..engine.dae_config import DaeConfig, DaeTile


@dataclass(frozen=True)
class Candidate:
    """One point of the search space: ``engine`` and, per layer signature
    (``quantize.layers.layer_signature``), its tile. ``tiles`` is a sorted tuple of
    (signature, DaeTile) pairs so that equal candidates compare and hash equal."""

    engine: DaeConfig
    tiles: tuple[tuple[str, DaeTile], ...]

    @staticmethod
    def make(engine: DaeConfig, tiles: dict[str, DaeTile]) -> "Candidate":
        return Candidate(engine, tuple(sorted(tiles.items())))

    @property
    def tile_map(self) -> dict[str, DaeTile]:
        return dict(self.tiles)

    def to_json(self) -> dict:
        return {"engine": self.engine.to_json(),
                "tiles": {sig: t.to_json() for sig, t in self.tiles}}

    def key(self) -> str:
        """sha256 of the canonical JSON (16 hex digits): the log's identity of a candidate."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Measurement:
    """What a measurer found for a candidate: ``cycles`` of one inference (all models'
    layers, batch 1) at ``engine.clock_mhz``, or ``error`` (why it could not be measured:
    a resource overflow, a tile that does not fit, a failed run). ``resources``: BRAM18K,
    DSP, LUT, FF as the measurer knows them. ``seconds``: wall time of the measurement."""

    candidate: Candidate
    measurer: str
    cycles: int | None = None
    error: str | None = None
    resources: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    detail: dict = field(default_factory=dict)  # measurer-specific (per-layer cycles, host...)

    @property
    def ok(self) -> bool:
        return self.error is None and self.cycles is not None

    @property
    def latency_ms(self) -> float | None:
        if not self.ok:
            return None
        return self.cycles / (self.candidate.engine.clock_mhz * 1e3)
