"""Zynq boards the accelerator targets: programmable-logic resources and memory bandwidth."""
from __future__ import annotations

from dataclasses import dataclass, replace

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
    cpu_clock_mhz: float | None = None  # None: the family's (CPUS)

    @property
    def bram_bytes(self) -> int:
        """Total on-chip block RAM in bytes (18 Kb = 2304 bytes per BRAM18K)."""
        return self.bram18k * 2304

    def ddr_bytes_per_cycle(self, clock_mhz: float) -> float:
        """DDR peak in bytes per PL clock cycle at ``clock_mhz``."""
        return self.ddr_gbps * 1e9 / (clock_mhz * 1e6)

    @property
    def family(self) -> str:
        """Processing-system family: ``"zynq7"`` (Zynq-7000, xc7z*) or ``"zynqmp"``
        (Zynq UltraScale+ MPSoC, xczu*)."""
        return "zynqmp" if self.part.startswith("xczu") else "zynq7"

    @property
    def attach(self) -> PlAttach:
        """Where the engine IP sits in this board's PS (``PL_ATTACH[self.family]``)."""
        return PL_ATTACH[self.family]

    @property
    def cpu(self) -> Cpu:
        """The application processor that runs the CPU operators (``CPUS[self.family]``,
        with this board's CPU clock when it differs)."""
        cpu = CPUS[self.family]
        if self.cpu_clock_mhz is not None:
            cpu = replace(cpu, clock_mhz=self.cpu_clock_mhz)
        return cpu


@dataclass(frozen=True)
class Cpu:
    """The processing system's CPU as the ARM time model (``schedule.arm_model``) sees it.

    ``clock_mhz``: core clock; ``cores``: how many (the bundle's executor uses one: its
    TVM shim runs every parallel loop as one task); ``fp32_macs_per_cycle``: peak float32
    multiply-accumulates per cycle of one core's NEON unit; ``l1d_kib``/``l2_kib``: data
    cache sizes in KiB. The facts and their sources are in docs/ARM_MODEL.md.
    """

    name: str
    clock_mhz: float
    cores: int
    fp32_macs_per_cycle: float
    l1d_kib: int
    l2_kib: int

    @property
    def peak_gflops(self) -> float:
        """One core's float32 peak in GFLOP/s (a multiply-accumulate is 2 FLOPs)."""
        return 2 * self.fp32_macs_per_cycle * self.clock_mhz / 1e3


@dataclass(frozen=True)
class PlAttach:
    """How the engine IP is attached to the processing system.

    The one definition of these numbers: the Vivado block design
    (``codegen/templates/block_design.tcl.in``, filled by ``codegen.hls_project``) assigns
    the control window and wires the interrupt from them, and the device-tree overlay of a
    deployment bundle (``deploy.boot``) describes the same window and interrupt to Linux.

    ``ctl_base``/``ctl_range``: byte address and size of the IP's ``s_axi_control`` window
    in the PS master port's address space. ``irq_pin``: the PS's fabric-interrupt input
    (a bus); ``irq_bit``: the bit the engine drives (it is the only source, so bit 0).
    ``irq_id``: the GIC interrupt ID of that bit; ``gic_spi = irq_id - 32`` is the number a
    device tree's ``interrupts = <0 SPI 4>`` (shared peripheral interrupt, level high)
    carries. ``fclk_index``: the PL clock 0's index in the PS clock controller's device-tree
    bindings (for ``assigned-clocks``).
    """
    ctl_base: int
    ctl_range: int
    irq_pin: str
    irq_bit: int
    irq_id: int
    fclk_index: int

    @property
    def gic_spi(self) -> int:
        """Shared-peripheral-interrupt number (GIC ID minus the 32 SGI/PPI IDs)."""
        return self.irq_id - 32


PL_ATTACH: dict[str, PlAttach] = {
    # Zynq-7000 (UG585): M_AXI_GP0 maps 0x4000_0000-0x7FFF_FFFF; 0x43C0_0000 is where
    # Vivado's assign_bd_address puts the first AXI-Lite slave, 64 KiB its smallest window
    # (the register map needs 0x60 bytes). IRQ_F2P[7:0] are GIC IDs 61-68 (UG585 table 7-4
    # "PL to PS interrupts"): IRQ_F2P[0] = ID 61 = SPI 29. FCLK_CLK0 is clkc output 15.
    "zynq7": PlAttach(ctl_base=0x43C0_0000, ctl_range=0x1_0000, irq_pin="IRQ_F2P", irq_bit=0,
                      irq_id=61, fclk_index=15),
    # Zynq UltraScale+ (UG1085): M_AXI_HPM0_FPD maps 0xA000_0000-0xAFFF_FFFF; pl_ps_irq0[7:0]
    # are GIC IDs 121-128 (SPI 89-96). pl_clk0 is zynqmp_clk output 71.
    "zynqmp": PlAttach(ctl_base=0xA000_0000, ctl_range=0x1_0000, irq_pin="pl_ps_irq0",
                       irq_bit=0, irq_id=121, fclk_index=71),
}


CPUS: dict[str, Cpu] = {
    # Zynq-7000 (UG585 ch. 3; DS190: 667 MHz for the -1 speed grade): dual Cortex-A9
    # MPCore, 32 KiB L1 D-cache per core, 512 KiB shared L2 (PL310). NEON MPE with a
    # 64-bit datapath: VMLA.F32 on a quadword (4 lanes) issues every 2 cycles (Cortex-A9
    # NEON MPE TRM, DDI 0409, "Instruction timing", as commonly quoted) = 2 fp32 MACs per
    # cycle; TVM's PYNQ ResNet-18 reaches 1.14 per cycle per core (docs/ARM_MODEL.md).
    "zynq7": Cpu("Cortex-A9", 667.0, 2, 2.0, 32, 512),
    # Zynq UltraScale+ (DS925: APU 1.2 GHz at speed grade -1): quad Cortex-A53, 32 KiB
    # L1 D-cache per core, 1 MiB L2; 2 fp32 MACs per cycle assumed (64-bit NEON
    # datapath, like the A9's: not checked against the A53's optimization guide).
    "zynqmp": Cpu("Cortex-A53", 1200.0, 4, 2.0, 32, 1024),
}


BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board("zybo-z7-20", "xc7z020clg400-1", 53_200, 106_400, 280, 220, 4.2),
        Board("zybo-z7-10", "xc7z010clg400-1", 17_600, 35_200, 120, 80, 4.2),
        # PYNQ images run the Cortex-A9 at 650 MHz (as TVM's benchmark page lists PYNQ)
        Board("pynq-z2", "xc7z020clg400-1", 53_200, 106_400, 280, 220, 2.1,
              cpu_clock_mhz=650.0),
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
