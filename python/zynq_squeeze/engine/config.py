"""Schedules: the engine's global configuration and each layer's tiling.

``EngineConfig`` fixes what is synthesized once per model (MAC array, buffer depths, AXI
width, clock); ``TileSchedule`` says how one layer is cut into tiles that fit those
buffers. Tile extents are in the layer's *final* output space (after the pool, when a
pool is fused).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

LOOP_ORDERS = ("oc_outer", "spatial_outer")


@dataclass(frozen=True)
class EngineConfig:
    """Global parameters of one generated accelerator.

    Defaults suit the Zybo Z7-20: a 16 x 12 MAC array (192 DSP48E1; the array reduces
    12 consecutive bytes of a kernel row, so conv1's 3x3x3 rows (9 bytes) fill it as well
    as 32 x 6, and 16 output lanes divide every SqueezeNet channel count) plus 7 requant
    lanes (28 DSP; 220 in total), and the tile buffers of docs/ENGINE.md.

    ``pe_oc`` x ``pe_ic`` is the MAC array (output x input channels per cycle; one
    DSP48 per MAC lane). Buffer depths are in bytes (int8 buffers) or words (int32
    accumulators), per ping-pong half. ``axi_bits`` is the data width of the HP port.
    ``param_depth`` is the largest output-channel tile (bias/mult/shift buffers).
    ``rq_lanes`` output channels are requantized (and pooled) per cycle; each lane's
    32x32-bit multiply costs 4 DSP48E1 next to the ``pe_oc * pe_ic`` MAC DSPs.
    ``burst_overhead`` (cycles per AXI burst), ``pipeline_depth`` (MAC pipeline fill per
    compute step) and ``layer_overhead`` (cycles per layer) are cycle-model constants
    (docs/ENGINE.md). The same values are emitted into the engine's ``zsq_config.h``.
    """

    pe_oc: int = 16
    pe_ic: int = 12
    in_buf_bytes: int = 64 * 1024
    w_buf_bytes: int = 48 * 1024
    acc_words: int = 16 * 1024
    out_buf_bytes: int = 24 * 1024
    sq_buf_bytes: int = 48 * 1024
    axi_bits: int = 64
    clock_mhz: float = 100.0
    param_depth: int = 512
    rq_lanes: int = 7
    burst_overhead: int = 24
    pipeline_depth: int = 12
    layer_overhead: int = 200

    @property
    def axi_bytes(self) -> int:
        """AXI data bytes per beat."""
        return self.axi_bits // 8

    @property
    def macs_per_cycle(self) -> int:
        """Peak MACs per cycle of the array."""
        return self.pe_oc * self.pe_ic

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "EngineConfig":
        return cls(**d)


@dataclass(frozen=True)
class TileSchedule:
    """Tiling of one layer.

    ``toc``: output channels per tile; ``tic``: input channels per load;
    ``th`` x ``tw``: output rows x cols per tile (post-pool space);
    ``loop_order``: ``"oc_outer"`` (output-channel tiles outermost, input re-read per
    oc tile) or ``"spatial_outer"`` (spatial tiles outermost, weights re-read per
    spatial tile); ``double_buffer``: loads of the next input-channel tile overlap
    compute of the current one.
    """

    toc: int
    tic: int
    th: int
    tw: int
    loop_order: str = "spatial_outer"
    double_buffer: bool = True

    def __post_init__(self):
        for f in ("toc", "tic", "th", "tw"):
            if getattr(self, f) < 1:
                raise ValueError(f"TileSchedule.{f} must be >= 1, got {getattr(self, f)}")
        if self.loop_order not in LOOP_ORDERS:
            raise ValueError(f"loop_order must be one of {LOOP_ORDERS}, got {self.loop_order!r}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TileSchedule":
        return cls(**d)
