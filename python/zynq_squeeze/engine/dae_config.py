"""Parameters of the decoupled engine and the tiling of one layer on it (docs/ENGINE.md).

``DaeConfig`` is what is synthesized once per model: ``k`` (the MAC array is ``8k x 8``:
``pe_oc = 8k`` output channels, 8 input channels per cycle), the buffer depths in rows
per bank (a row is one 64-bit word), the clock, and the timing constants of the HP-port
model. ``DaeTile`` cuts one layer into tiles that fit those buffers.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

PE_IC = 8  # input channels per MAC-array row = bytes per activation word

# What a tuning log (``from_json``) may set: the engine's and the ISA's limits. A value
# outside them is refused when the log is read, not when it overflows later.
MAX_SPATIAL = 1 << 14   # tile rows / columns (th, tw)
MAX_CHANNELS = 1 << 15  # tile channels (toc, tic)
MAX_ROWS = 1 << 20      # buffer depths and queue depths, rows per bank
MIN_CLOCK_MHZ, MAX_CLOCK_MHZ = 1.0, 500.0  # as toolchain.driver.check_clock

_CONFIG_RANGES: dict[str, tuple[int, int]] = {
    "k": (1, 4),
    **{f: (16, MAX_ROWS) for f in ("in_rows", "w_rows", "acc_rows", "cv_rows", "sq_rows",
                                   "out_rows", "bp_rows")},
    "p_rows": (1, MAX_ROWS), "queue_depth": (1, MAX_ROWS), "token_depth": (1, MAX_ROWS),
    "rd_latency": (1, 4096), "wr_latency": (1, 4096), "outstanding": (1, 256),
    **{f: (1, 1024) for f in ("depth_load", "depth_mac", "depth_rq", "depth_pool",
                              "depth_store")},
}
_TILE_RANGES: dict[str, tuple[int, int]] = {
    "toc": (1, MAX_CHANNELS), "tic": (1, MAX_CHANNELS),
    "th": (1, MAX_SPATIAL), "tw": (1, MAX_SPATIAL),
}


class FieldError(ValueError):
    """One field of a JSON engine or tile is missing, unknown, of the wrong type or out
    of range; ``field`` names it (the tuning-log reader adds the file and the key)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"field {field!r} {message}")
        self.field = field


def _check_int(field: str, v, lo: int, hi: int) -> int:
    # JSON true/false are Python bools (an int subclass); 2.5 and "3" are not integers
    if type(v) is not int or not lo <= v <= hi:
        raise FieldError(field, f"must be an integer in [{lo}, {hi}], got {v!r}")
    return v


def _check_fields(d, known, what: str, required=()) -> None:
    if not isinstance(d, dict):
        raise FieldError(what, f"must be a JSON object, got {d!r}")
    unknown = sorted(set(d) - set(known))
    if unknown:
        hint = " (pe_oc is 8 x k: set k)" if "pe_oc" in unknown else ""
        raise FieldError(unknown[0], f"is not a field of {what} (known: "
                         f"{', '.join(sorted(known))}){hint}")
    for f in required:
        if f not in d:
            raise FieldError(f, "is missing")


@dataclass(frozen=True)
class DaeConfig:
    """One generated engine. Depths are rows per bank; banks: K for activation tiles,
    PE_OC for weights and params (docs/ENGINE.md, "Buffers and layouts")."""

    k: int = 3
    in_rows: int = 2048
    w_rows: int = 512
    p_rows: int = 64
    acc_rows: int = 2048
    cv_rows: int = 2048
    sq_rows: int = 2048
    out_rows: int = 2048
    # residual add: bypass tiles (bp_buf[2][K][bp_rows]); the engine search sizes it to the
    # model's needs (16 rows of LUTRAM when no layer adds a bypass)
    bp_rows: int = 512
    # the residual add's datapath (LOAD_BYPASS, REQUANT RQ_ADD: ~6.5k LUT at k=3) is built;
    # the engine search leaves it out of models without a residual add
    residual: bool = True
    # the wide (22-bit) requantization multiplier (issue 11: QDQ models at the model's
    # scales): a 25 x 5-bit fabric product and a 48-bit datapath per lane (~3k LUT at k=3);
    # the engine search builds it only for models whose multipliers need it
    wide_rq: bool = True
    queue_depth: int = 512
    token_depth: int = 8
    clock_mhz: float = 100.0
    # Timing model (cycles at clock_mhz); see docs/ENGINE.md "Timing by execution".
    rd_latency: int = 40
    wr_latency: int = 30
    outstanding: int = 8
    depth_load: int = 4
    depth_mac: int = 10
    depth_rq: int = 8
    depth_pool: int = 6
    depth_store: int = 4

    def __post_init__(self):
        if not 1 <= self.k <= 4:
            raise ValueError(f"DaeConfig.k must be 1..4, got {self.k}")
        for f in ("in_rows", "w_rows", "acc_rows", "cv_rows", "sq_rows", "out_rows", "bp_rows"):
            if getattr(self, f) < 16:
                raise ValueError(f"DaeConfig.{f} must be >= 16")
        if self.p_rows < 1:
            raise ValueError("DaeConfig.p_rows must be >= 1")

    @property
    def pe_oc(self) -> int:
        """Output channels per cycle (MAC-array rows, requantization lanes)."""
        return 8 * self.k

    @property
    def macs_per_cycle(self) -> int:
        return self.pe_oc * PE_IC

    def beat_x100(self, ddr_bytes_per_s: float, ports: int = 3) -> int:
        """Cycles x 100 per 64-bit beat when ``ports`` data ports stream at once and
        share ``ddr_bytes_per_s`` (at least one beat per cycle)."""
        per_cycle = ddr_bytes_per_s / (self.clock_mhz * 1e6)
        return max(100, math.ceil(100 * ports * 8 / per_cycle))

    def macros(self) -> dict[str, int]:
        """The ``ZSQD_*`` macros of ``src/zsq_dae_cfg.h`` for this engine."""
        return {"ZSQD_K": self.k, "ZSQD_IN_ROWS": self.in_rows, "ZSQD_W_ROWS": self.w_rows,
                "ZSQD_P_ROWS": self.p_rows, "ZSQD_ACC_ROWS": self.acc_rows,
                "ZSQD_CV_ROWS": self.cv_rows, "ZSQD_SQ_ROWS": self.sq_rows,
                "ZSQD_OUT_ROWS": self.out_rows, "ZSQD_BP_ROWS": self.bp_rows,
                "ZSQD_RESIDUAL": int(self.residual), "ZSQD_WIDE_RQ": int(self.wide_rq),
                "ZSQD_QUEUE_DEPTH": self.queue_depth,
                "ZSQD_TOKEN_DEPTH": self.token_depth, "ZSQD_DEPTH_LOAD": self.depth_load,
                "ZSQD_DEPTH_MAC": self.depth_mac, "ZSQD_DEPTH_RQ": self.depth_rq,
                "ZSQD_DEPTH_POOL": self.depth_pool, "ZSQD_DEPTH_STORE": self.depth_store}

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "DaeConfig":
        """The engine a JSON object describes (missing fields take their defaults).
        Raises ``FieldError`` for an unknown field, a non-integer (bools, 2.5, "3") or a
        value outside the engine's limits; ``clock_mhz`` is a number in [1, 500]."""
        _check_fields(d, [f.name for f in fields(cls)], "the engine")
        for f, (lo, hi) in _CONFIG_RANGES.items():
            if f in d:
                _check_int(f, d[f], lo, hi)
        for flag in ("residual", "wide_rq"):
            if flag in d and type(d[flag]) is not bool:
                raise FieldError(flag, f"must be true or false, got {d[flag]!r}")
        if "clock_mhz" in d:
            c = d["clock_mhz"]
            if not (isinstance(c, (int, float)) and not isinstance(c, bool)
                    and MIN_CLOCK_MHZ <= c <= MAX_CLOCK_MHZ):  # NaN fails the comparison
                raise FieldError("clock_mhz", f"must be a number in [{MIN_CLOCK_MHZ:g}, "
                                 f"{MAX_CLOCK_MHZ:g}] MHz, got {c!r}")
            d = {**d, "clock_mhz": float(c)}
        return cls(**d)


@dataclass(frozen=True)
class DaeTile:
    """Tiling of one layer: ``toc`` output channels per tile (a multiple of pe_oc, or the
    whole layer), ``tic`` input channels per step (a multiple of 8, or the whole
    input), ``th`` x ``tw`` output rows x cols per spatial tile (post-pool space). For a
    fire, ``toc`` applies to each expand conv and ``tic`` to the squeeze."""

    toc: int
    tic: int
    th: int
    tw: int

    def __post_init__(self):
        for f in ("toc", "tic", "th", "tw"):
            if getattr(self, f) < 1:
                raise ValueError(f"DaeTile.{f} must be >= 1, got {getattr(self, f)}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "DaeTile":
        """The tile a JSON object describes: ``toc``, ``tic`` (channels, 1..2^15) and
        ``th``, ``tw`` (rows / columns, 1..2^14), all JSON integers. Raises
        ``FieldError`` naming the field otherwise."""
        _check_fields(d, _TILE_RANGES, "a tile", required=_TILE_RANGES)
        return cls(**{f: _check_int(f, d[f], lo, hi) for f, (lo, hi) in _TILE_RANGES.items()})
