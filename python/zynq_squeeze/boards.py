"""Zynq boards the accelerator targets: programmable-logic resources and memory bandwidth."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ZynqSqueezeError


class UnknownBoardError(ZynqSqueezeError, ValueError):
    """The board name is not one of ``BOARDS``."""


@dataclass(frozen=True)
class Board:
    """One FPGA board.

    Resources are counted in Xilinx primitives: ``bram18k`` in 18 Kb block-RAM halves,
    ``dsp`` in DSP48 slices, ``lut``/``ff`` in fabric LUTs and flip-flops.
    ``ddr_gbps`` is the DDR peak in GB/s; ``hp_port_bits`` the width of one AXI HP port.
    """

    name: str
    part: str
    lut: int
    ff: int
    bram18k: int
    dsp: int
    ddr_gbps: float
    hp_port_bits: int = 64
    dsp_kind: str = "DSP48E1"
    default_clock_mhz: float = 100.0
    arm: bool = True

    @property
    def bram_bytes(self) -> int:
        """Total on-chip block RAM in bytes (18 Kb = 2304 bytes per BRAM18K)."""
        return self.bram18k * 2304

    def ddr_bytes_per_cycle(self, clock_mhz: float) -> float:
        """DDR peak in bytes per PL clock cycle at ``clock_mhz``."""
        return self.ddr_gbps * 1e9 / (clock_mhz * 1e6)


BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("zybo-z7-20", "xc7z020clg400-1", 53_200, 106_400, 280, 220, 4.2),
        Board("zybo-z7-10", "xc7z010clg400-1", 17_600, 35_200, 120, 80, 4.2),
        Board("pynq-z2", "xc7z020clg400-1", 53_200, 106_400, 280, 220, 2.1),
        Board("ultra96-v2", "xczu3eg-sbva484-1", 70_560, 141_120, 432, 360, 4.2,
              hp_port_bits=128, dsp_kind="DSP48E2"),
    )
}

DEFAULT_BOARD = "zybo-z7-20"


def get_board(name: str) -> Board:
    """Look up a board by name; raises ``UnknownBoardError`` listing the known boards."""
    try:
        return BOARDS[name]
    except KeyError:
        raise UnknownBoardError(
            f"unknown board {name!r}; known boards: {', '.join(sorted(BOARDS))}"
        ) from None
