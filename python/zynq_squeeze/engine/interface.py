"""The engine's top-level interface as data: the one place it is defined for the tools.

``ENGINE_TOP`` describes the arguments of ``zsq_dae`` (src/zsq_dae_top.cpp, the decoupled
engine of docs/ENGINE.md) as Vitis HLS sees them: C type, direction, ``#pragma HLS INTERFACE`` mode and options. Everything that
depends on the top's ports is derived from it:

* the s_axilite register map (``register_map``), by the rule Vitis HLS 2020.2+ uses for
  the generated ``x<top>_hw.h`` (checked against real generated headers in
  ``tests/fixtures/hw_h/``);
* the C header of the runtime, ``hls_runtime/zsq_regs.h`` (``regs_header``; committed, a
  test regenerates it byte for byte: ``python -m zynq_squeeze.engine.interface --header
  hls_runtime/zsq_regs.h``);
* the m_axi bundles, hence the HP ports of the Vivado block design (``bundles``);
* the ``config_interface`` settings of ``run_hls.tcl`` (``CONFIG_INTERFACE``);
* the pragma lines the C source must carry (``pragma_options``; a test parses the source's
  pragmas with ``parse_top`` and compares).

Register-map rule (Vitis HLS 2020.2 and later, one s_axilite bundle, ``ap_ctrl_hs``):
0x00 AP_CTRL, 0x04 GIE, 0x08 IER, 0x0C ISR; from 0x10 on, first ``ap_return`` (if the top
returns a value through s_axilite), then every s_axilite argument in signature order. An
item of ``n = ceil(bits / 32)`` data words takes:

* input scalar, and a pointer to m_axi with ``offset=slave`` (its address, 64 bits with
  ``config_interface -m_axi_addr64``, else 32): n data words + 1 reserved word;
* ``ap_return``: n data words + 1 reserved word (no valid bit: read it after ap_done);
* output scalar (written pointer on s_axilite): n data words, a control word
  (bit 0 ``ap_vld``, clear on read) and n + 1 further unused words.

The tool does not align items (a 64-bit item may start at 0x1c). Evidence: UG1399
"S_AXILITE Control Register Map" and the generated headers in tests/fixtures/hw_h/
(Vitis HLS 2020.2, 2022.1, 2023.1; the unused words after an output's control word show
there as an address gap).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

__all__ = ["MAxi", "Arg", "TopInterface", "Register", "ENGINE_TOP", "CONFIG_INTERFACE",
           "register_map", "bundles", "pragma_options", "parse_top", "check_source", "parse_hw_h",
           "hw_h_offsets", "regs_header", "rtl_name", "HP_PORTS_ZYNQ7"]

# Zynq-7000 PS: four 64-bit AXI3 HP slave ports (UG585); one per m_axi bundle.
HP_PORTS_ZYNQ7 = 4

# config_interface of run_hls.tcl (UG1399 2020.2+ option names without the leading dash).
# 64-bit m_axi addresses (the Vivado IP flow defaults to 32 in 2020.2-2024.1); bursts of at
# most 16 beats, the longest an AXI3 HP port takes without splitting; 8 outstanding reads
# and writes per port, the HP ports' issuing capability at reset; no automatic port
# widening (the interface widths are the source's ap_uint<64>, which the HP ports match).
CONFIG_INTERFACE: dict[str, object] = {
    "m_axi_addr64": True,
    "m_axi_max_read_burst_length": 16,
    "m_axi_max_write_burst_length": 16,
    "m_axi_num_read_outstanding": 8,
    "m_axi_num_write_outstanding": 8,
    "m_axi_max_widen_bitwidth": 0,
}

# HDL keywords Vitis HLS renames with an "_r" suffix in RTL ports and in x<top>_hw.h
# (seen: input -> input_r, output -> output_r, out -> out_r).
_HDL_KEYWORDS = frozenset("""
in out input output inout reg wire begin end module signal type process register
""".split())


@dataclass(frozen=True)
class MAxi:
    """``#pragma HLS INTERFACE m_axi`` options of one pointer argument.

    ``depth``: elements the co-simulation testbench allocates. ``offset``: ``slave``
    (address in an s_axilite register), ``direct`` (an input port) or ``off``. The burst /
    outstanding fields are per-port overrides of ``CONFIG_INTERFACE`` (None: inherit).
    """
    bundle: str
    depth: int
    offset: str = "slave"
    max_read_burst_length: int | None = None
    max_write_burst_length: int | None = None
    num_read_outstanding: int | None = None
    num_write_outstanding: int | None = None


@dataclass(frozen=True)
class Arg:
    """One argument of the top function.

    ``c_type``: as written in the signature (``const int8_t *``). ``direction``: ``in``,
    ``out`` or ``inout`` (for pointers: what the engine does with the memory). ``bits``:
    width of a scalar in bits (None for pointers to m_axi). ``s_axilite``: the argument has
    ``#pragma HLS INTERFACE s_axilite port=<name>`` (bundle ``control``).
    """
    name: str
    c_type: str
    direction: str
    bits: int | None = None
    m_axi: MAxi | None = None
    s_axilite: bool = True

    def __post_init__(self):
        if self.direction not in ("in", "out", "inout"):
            raise ValueError(f"{self.name}: direction must be in/out/inout, got {self.direction!r}")
        if self.m_axi is None and not (isinstance(self.bits, int) and 0 < self.bits <= 1024):
            raise ValueError(f"{self.name}: a scalar needs bits in 1..1024, got {self.bits!r}")


@dataclass(frozen=True)
class TopInterface:
    """A top function: name, return (C type and bits, None for void) and arguments.

    ``return_axilite``: ``#pragma HLS INTERFACE s_axilite port=return`` (the block-level
    control ap_start/ap_done and ap_return go to the s_axilite bundle ``control``).
    """
    name: str
    args: tuple[Arg, ...]
    return_type: str | None = None
    return_bits: int | None = None
    return_axilite: bool = True
    control_bundle: str = "control"

    def arg(self, name: str) -> Arg:
        for a in self.args:
            if a.name == name:
                return a
        raise KeyError(f"{self.name} has no argument {name!r}")


@dataclass(frozen=True)
class Register:
    """One item of the s_axilite map. Offsets in bytes from the IP's base address.

    ``kind``: ``ctrl``, ``gie``, ``ier``, ``isr``, ``return``, ``scalar`` or ``addr`` (the
    address of an m_axi pointer). ``ctrl_offset``: the ap_vld control word of an output
    (else None). ``end``: first byte after the item, unused words included.
    """
    name: str
    offset: int
    bits: int
    kind: str
    access: str
    ctrl_offset: int | None = None
    end: int = field(default=0, compare=False)


def rtl_name(name: str) -> str:
    """The name Vitis HLS gives an argument in RTL and in x<top>_hw.h."""
    return f"{name}_r" if name in _HDL_KEYWORDS else name


def _words(bits: int) -> int:
    return max(1, math.ceil(bits / 32))


def register_map(top: TopInterface, *, addr64: bool | None = None) -> list[Register]:
    """The s_axilite register map of ``top`` (see module doc for the rule).

    ``addr64``: width of m_axi address registers (default ``CONFIG_INTERFACE``).
    """
    if addr64 is None:
        addr64 = bool(CONFIG_INTERFACE["m_axi_addr64"])
    regs = [Register("AP_CTRL", 0x00, 32, "ctrl", "RW", end=0x04),
            Register("GIE", 0x04, 32, "gie", "RW", end=0x08),
            Register("IER", 0x08, 32, "ier", "RW", end=0x0C),
            Register("ISR", 0x0C, 32, "isr", "RW", end=0x10)]
    off = 0x10
    if top.return_type is not None and top.return_axilite:
        if not top.return_bits:
            raise ValueError(f"{top.name}: return_bits missing for return type {top.return_type}")
        n = _words(top.return_bits)
        regs.append(Register("ap_return", off, top.return_bits, "return", "R",
                             end=off + 4 * (n + 1)))
        off += 4 * (n + 1)
    for a in top.args:
        if a.m_axi is not None:
            if a.m_axi.offset != "slave":
                continue  # direct: an input port; off: no address at all
            bits, kind, access, direction = (64 if addr64 else 32), "addr", "RW", "in"
        else:
            if not a.s_axilite:
                continue
            bits, kind = a.bits, "scalar"
            direction = a.direction
            access = "R" if direction == "out" else "RW"
        n = _words(bits)
        if direction == "inout":
            raise ValueError(f"{top.name}.{a.name}: inout scalars on s_axilite (split into "
                             f"_i/_o registers by Vitis HLS) are not modelled")
        if direction == "out":
            regs.append(Register(rtl_name(a.name), off, bits, kind, access,
                                 ctrl_offset=off + 4 * n, end=off + 4 * (2 * n + 2)))
            off += 4 * (2 * n + 2)
        else:
            regs.append(Register(rtl_name(a.name), off, bits, kind, access,
                                 end=off + 4 * (n + 1)))
            off += 4 * (n + 1)
    return regs


def bundles(top: TopInterface) -> list[str]:
    """m_axi bundle names in order of first use in the signature (one HP port each)."""
    out: list[str] = []
    for a in top.args:
        if a.m_axi is not None and a.m_axi.bundle not in out:
            out.append(a.m_axi.bundle)
    return out


def pragma_options(top: TopInterface) -> dict[tuple[str, str], dict[str, str]]:
    """The ``#pragma HLS INTERFACE`` lines ``top`` implies: ``{(mode, port): {option:
    value}}`` with values as strings, ``port`` excluded from the options."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for a in top.args:
        if a.m_axi is not None:
            m = a.m_axi
            opts = {"offset": m.offset, "bundle": m.bundle, "depth": str(m.depth)}
            for k in ("max_read_burst_length", "max_write_burst_length",
                      "num_read_outstanding", "num_write_outstanding"):
                v = getattr(m, k)
                if v is not None:
                    opts[k] = str(v)
            out[("m_axi", a.name)] = opts
        if a.s_axilite:
            out[("s_axilite", a.name)] = {}
    if top.return_axilite:
        out[("s_axilite", "return")] = {}
    return out


_PRAGMA = re.compile(r"(?m)^\s*#\s*pragma\s+HLS\s+INTERFACE\b(.*)$", re.IGNORECASE)


def _parse_pragma(body: str) -> tuple[str, str, dict[str, str]]:
    opts: dict[str, str] = {}
    mode = None
    for m in re.finditer(r"(\w+)\s*=\s*([\w.]+)|(\w+)", body):
        if m.group(1):
            opts[m.group(1).lower()] = m.group(2)
        elif mode is None:
            mode = m.group(3).lower()
    mode = opts.pop("mode", mode)
    port = opts.pop("port", None)
    if mode is None or port is None:
        raise ValueError(f"cannot read INTERFACE pragma: {body.strip()!r}")
    return mode, port, opts


def parse_top(source: str, name: str) -> tuple[str, list[tuple[str, str]],
                                               dict[tuple[str, str], dict[str, str]]]:
    """Read the definition of top function ``name`` from C/C++ ``source``.

    Returns (return type, [(C type, argument name)], INTERFACE pragmas of its body as
    ``{(mode, port): options}``, the form of ``pragma_options``). Only the pragmas up to
    the first non-pragma statement of the body count. Raises ValueError if the function
    is not found or a pragma is repeated.
    """
    m = re.search(r'(?:extern\s+"C"\s+)?([A-Za-z_][\w\s:<>,*]*?)\s*\b' + re.escape(name)
                  + r"\s*\(([^)]*)\)\s*\{", source)
    if not m:
        raise ValueError(f"definition of {name}() not found")
    ret = " ".join(m.group(1).split())
    args = []
    for p in m.group(2).split(","):
        p = " ".join(p.split())
        am = re.match(r"(.*?)([A-Za-z_]\w*)$", p)
        if not am:
            raise ValueError(f"cannot read parameter {p!r} of {name}()")
        args.append((re.sub(r"\s*\*\s*", " *", am.group(1)).strip(), am.group(2)))
    body = source[m.end():]
    head = re.match(r"(?:\s*#\s*pragma[^\n]*\n)*", body).group(0)
    pragmas: dict[tuple[str, str], dict[str, str]] = {}
    for pm in _PRAGMA.finditer(head):
        mode, port, opts = _parse_pragma(pm.group(1))
        if (mode, port) in pragmas:
            raise ValueError(f"{name}(): INTERFACE {mode} port={port} given twice")
        pragmas[(mode, port)] = opts
    return ret, args, pragmas


def check_source(top: TopInterface, source: str) -> list[str]:
    """Differences between ``top`` and the definition of ``top.name`` in ``source``
    (signature: names, C types, order, return type; INTERFACE pragmas). Empty if equal."""
    ret, args, pragmas = parse_top(source, top.name)
    diffs = []
    want_ret = top.return_type or "void"
    if ret != want_ret:
        diffs.append(f"return type: source {ret!r}, table {want_ret!r}")
    want_args = [(a.c_type, a.name) for a in top.args]
    if args != want_args:
        diffs.append(f"parameters: source {args}, table {want_args}")
    want = pragma_options(top)
    for key in sorted(set(pragmas) | set(want)):
        if pragmas.get(key) != want.get(key):
            diffs.append(f"INTERFACE {key[0]} port={key[1]}: source {pragmas.get(key)}, "
                         f"table {want.get(key)}")
    return diffs


def parse_hw_h(text: str) -> dict[str, int]:
    """``#define X<TOP>_<BUNDLE>_{ADDR,BITS}_*`` of a generated x<top>_hw.h as
    ``{"ADDR_N_DATA": 0x10, "BITS_N_DATA": 32, ...}`` (prefix removed)."""
    out: dict[str, int] = {}
    for m in re.finditer(r"(?m)^#define\s+\w*?_((?:ADDR|BITS)_\w+)\s+(0x[0-9a-fA-F]+|\d+)\s*$",
                         text):
        out[m.group(1)] = int(m.group(2), 0)
    return out


def hw_h_offsets(top: TopInterface, *, addr64: bool | None = None) -> dict[str, int]:
    """``register_map(top)`` in the form ``parse_hw_h`` reads (what x<top>_hw.h holds)."""
    out: dict[str, int] = {}
    for r in register_map(top, addr64=addr64):
        if r.kind in ("ctrl", "gie", "ier", "isr"):
            out[f"ADDR_{r.name}"] = r.offset
        elif r.kind == "return":
            out["ADDR_AP_RETURN"] = r.offset
            out["BITS_AP_RETURN"] = r.bits
        else:
            key = r.name.upper()
            out[f"ADDR_{key}_DATA"] = r.offset
            out[f"BITS_{key}_DATA"] = r.bits
            if r.ctrl_offset is not None:
                out[f"ADDR_{key}_CTRL"] = r.ctrl_offset
    return out


def _macro(name: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", name.upper())


def regs_header(top: TopInterface, *, guard: str = "ZSQ_REGS_H") -> str:
    """C99 header with ``top``'s register map: ``ZSQ_REG_<ARG>`` offsets (each
    overridable with -D), ``ZSQ_REG_<ARG>_BITS``, ``ZSQ_REG_<ARG>_CTRL`` for outputs,
    ``ZSQ_REG_RETURN``, the AP_CTRL bits, the ap_vld bit of an output's control word, the
    GIE / IER / ISR bits (the runtime waits on the ap_done interrupt) and
    ``ZSQ_REGS_BYTES`` (size of the map)."""
    regs = register_map(top)
    lines = [
        "/*",
        f" * zsq_regs.h - s_axilite register map of the {top.name} IP (bundle "
        f"{top.control_bundle}).",
        " *",
        " * GENERATED by python/zynq_squeeze/engine/interface.py from ENGINE_TOP; do not edit.",
        " * Regenerate: python -m zynq_squeeze.engine.interface --header hls_runtime/zsq_regs.h",
        " * Rule: Vitis HLS 2020.2+ with config_interface -m_axi_addr64; compare with the",
        f" * x{top.name}_hw.h of a build: python -m zynq_squeeze.engine.interface --check <file>",
        " *",
        " * offset  bits  access  register",
    ]
    for r in regs:
        what = {"ctrl": "ap_start(0) ap_done(1) ap_idle(2) ap_ready(3) auto_restart(7)",
                "gie": "global interrupt enable (bit 0)",
                "ier": "interrupt enable: ap_done(0) ap_ready(1)",
                "isr": "interrupt status: ap_done(0) ap_ready(1); TOW (2021.1), also COR (2022.1+)",
                "return": "ap_return (valid after ap_done)",
                "addr": f"{r.name}: m_axi address",
                "scalar": f"{r.name}"}[r.kind]
        lines.append(f" * 0x{r.offset:02x}    {r.bits:4d}  {r.access:<6}  {what}")
        if r.ctrl_offset is not None:
            lines.append(f" * 0x{r.ctrl_offset:02x}       1  R/COR   {r.name}_ap_vld (bit 0)")
    lines += [" */", f"#ifndef {guard}", f"#define {guard}", ""]

    def define(name: str, value: str, override: bool = True):
        if override:
            lines.extend([f"#ifndef {name}", f"#define {name} {value}", "#endif"])
        else:
            lines.append(f"#define {name} {value}")

    for r in regs:
        if r.kind in ("ctrl", "gie", "ier", "isr"):
            define(f"ZSQ_REG_{r.name}" if r.kind != "ctrl" else "ZSQ_REG_CTRL", f"0x{r.offset:02x}")
        elif r.kind == "return":
            define("ZSQ_REG_RETURN", f"0x{r.offset:02x}")
            define("ZSQ_REG_RETURN_BITS", str(r.bits), override=False)
        else:
            key = _macro(r.name)
            define(f"ZSQ_REG_{key}", f"0x{r.offset:02x}")
            define(f"ZSQ_REG_{key}_BITS", str(r.bits), override=False)
            if r.ctrl_offset is not None:
                define(f"ZSQ_REG_{key}_CTRL", f"0x{r.ctrl_offset:02x}")
    lines.append("")
    define("ZSQ_AP_START", "0x1u", override=False)
    define("ZSQ_AP_DONE", "0x2u", override=False)
    define("ZSQ_AP_IDLE", "0x4u", override=False)
    define("ZSQ_AP_READY", "0x8u", override=False)
    lines.append("/* bit 0 of an output's control word (ZSQ_REG_<ARG>_CTRL): ap_vld, clear on read */")
    define("ZSQ_AP_VLD", "0x1u", override=False)
    lines.append("/* GIE bit 0; IER / ISR bits. ISR toggles on write (Vitis HLS 2021.1) and also")
    lines.append(" * clears on read (2022.1+): read it, then write back only the bits that were set. */")
    define("ZSQ_GIE_ENABLE", "0x1u", override=False)
    define("ZSQ_IRQ_AP_DONE", "0x1u", override=False)
    define("ZSQ_IRQ_AP_READY", "0x2u", override=False)
    define("ZSQ_REGS_BYTES", f"0x{regs[-1].end:02x}", override=False)
    lines += ["", f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def _engine_top() -> TopInterface:
    # The decoupled engine's top (src/zsq_dae_top.cpp, docs/ENGINE.md "Interfaces"):
    # one m_axi bundle per HP port, 64-bit words; the cycle counter is a 64-bit output on
    # s_axilite. The pointers carry no s_axilite pragma of their own: offset=slave already
    # puts their addresses in the control bundle. The tests check the source's signature
    # and pragmas against this table.
    word_in, word_out = "const zsqd_word *", "zsqd_word *"
    return TopInterface(
        name="zsq_dae",
        return_type=None,
        args=(
            Arg("insn", word_in, "in", m_axi=MAxi("gmem_insn", depth=65536),
                s_axilite=False),
            Arg("insn_count", "uint32_t", "in", bits=32),
            Arg("wgt", word_in, "in", m_axi=MAxi("gmem_wgt", depth=1048576),
                s_axilite=False),
            Arg("act_rd", word_in, "in", m_axi=MAxi("gmem_rd", depth=1048576),
                s_axilite=False),
            Arg("act_wr", word_out, "out", m_axi=MAxi("gmem_wr", depth=1048576),
                s_axilite=False),
            Arg("cycles", "uint64_t *", "out", bits=64),
        ),
    )


ENGINE_TOP: TopInterface = _engine_top()


def main(argv=None) -> int:
    """``--header PATH``: write zsq_regs.h; ``--check HW_H``: compare a generated
    x<top>_hw.h with ENGINE_TOP's map (exit 1 and list the differences)."""
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(prog="python -m zynq_squeeze.engine.interface")
    ap.add_argument("--header", type=Path, help="write the runtime register header here")
    ap.add_argument("--check", type=Path, help="a Vitis HLS x<top>_hw.h to compare with")
    ns = ap.parse_args(argv)
    if not ns.header and not ns.check:
        ap.error("give --header and/or --check")
    if ns.header:
        ns.header.write_text(regs_header(ENGINE_TOP), encoding="utf-8")
    if ns.check:
        got = parse_hw_h(ns.check.read_text(encoding="utf-8", errors="replace"))
        want = hw_h_offsets(ENGINE_TOP)
        diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        for k in diff:
            print(f"{k}: {ns.check.name} has {got.get(k)}, ENGINE_TOP gives {want.get(k)}")
        if diff:
            return 1
        print(f"{ns.check}: register map matches ENGINE_TOP ({len(want)} entries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
