"""Boot files, board README and Python wrapper of a deployment bundle
(zynq_squeeze.deployment.boot / readme, templates/zsq_model.py against a C stub of zsq_model.h)."""
from __future__ import annotations

import array
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import conv_params, rand_input
from zynq_squeeze.boards import PL_ATTACH, get_board
from zynq_squeeze.codegen.dae_program import build_dae_program, reference_chain
from zynq_squeeze.codegen.hls_project import write_hls_project
from zynq_squeeze.deployment import boot as bootmod
from zynq_squeeze.deployment.boot import write_boot_files
from zynq_squeeze.deployment.readme import (
    board_readme,
    write_board_readme,
    write_python_wrapper,
)
from zynq_squeeze.engine.dae_config import DaeConfig
from zynq_squeeze.quantize.layers import ConvLayer
from zynq_squeeze.schedule.dae_tiling import default_tile

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "python" / "zynq_squeeze" / "deployment" / "templates"
DTC = shutil.which("dtc")
need_dtc = pytest.mark.skipif(DTC is None, reason="needs dtc (Debian: device-tree-compiler)")
MIB = 1 << 20
NEED = 3_500_000  # bytes of DMA memory a made-up model needs -> 4 MiB buffer


def _boot(tmp_path, sub="b", **kw):
    kw.setdefault("model_name", "tiny net`$(x)")
    return write_boot_files(tmp_path / sub, kw.pop("board", "zybo-z7-20"),
                            kw.pop("dma_bytes", NEED), **kw)


def _dtb_text(dtso: Path, tmp_path: Path) -> tuple[str, str]:
    """(decompiled overlay, dtc's stderr) of ``dtso`` compiled as the README says."""
    dtbo = tmp_path / "o.dtbo"
    r = subprocess.run([DTC, "-@", "-I", "dts", "-O", "dtb", "-o", str(dtbo), str(dtso)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    d = subprocess.run([DTC, "-I", "dtb", "-O", "dts", str(dtbo)], capture_output=True,
                       text=True, timeout=60)
    assert d.returncode == 0, d.stderr
    return d.stdout, r.stderr


# --- the numbers: one definition, block design and overlay agree -----------------------

@pytest.fixture(scope="module")
def hls_project(tmp_path_factory):
    """A small model's HLS project (for its block_design.tcl)."""
    cfg = DaeConfig(k=1, in_rows=512, w_rows=256, p_rows=16, acc_rows=512, cv_rows=512,
                    sq_rows=512, out_rows=512)
    rng = np.random.default_rng(3)
    conv = ConvLayer("conv1", (3, 9, 9), conv_params(rng, 8, 3, 3))
    prog = build_dae_program(cfg, [conv], [default_tile(cfg, conv)])
    x = rand_input(rng, conv.in_shape)
    out = tmp_path_factory.mktemp("hls")
    return write_hls_project(out, program=prog, board="zybo-z7-20", model_name="tiny",
                             input=x, expected_output=reference_chain([conv], x))


def test_constants_are_the_zynq7000_trm_numbers():
    a = get_board("zybo-z7-20").attach
    assert a is PL_ATTACH["zynq7"] and get_board("zybo-z7-10").attach is a
    # UG585 table 7-4: IRQ_F2P[0] is interrupt ID 61; SPIs start at ID 32
    assert (a.irq_pin, a.irq_bit, a.irq_id, a.gic_spi) == ("IRQ_F2P", 0, 61, 29)
    assert (a.ctl_base, a.ctl_range) == (0x43C0_0000, 0x1_0000)
    # inside M_AXI_GP0's window, aligned to its size, large enough for the register map
    assert 0x4000_0000 <= a.ctl_base and a.ctl_base + a.ctl_range <= 0x8000_0000
    assert a.ctl_base % a.ctl_range == 0
    regs = (REPO / "hls_runtime" / "zsq_regs.h").read_text()
    assert int(re.search(r"#define ZSQ_REGS_BYTES (0x[0-9a-f]+)", regs).group(1), 16) <= a.ctl_range


def test_block_design_uses_the_constants(hls_project):
    a = get_board("zybo-z7-20").attach
    bd = (hls_project / "block_design.tcl").read_text()
    fixed = re.search(r"assign_bd_address -offset (\S+) -range (\S+) \\\n\s+-target_address_space "
                      r"\[get_bd_addr_spaces ps/Data\] \\\n\s+\[get_bd_addr_segs "
                      r"zsq_engine_0/s_axi_control/Reg\] -force", bd)
    assert fixed, "fixed control-window assignment missing"
    assert (int(fixed.group(1), 16), int(fixed.group(2), 16)) == (a.ctl_base, a.ctl_range)
    # the fixed assignment comes before the automatic one (which then leaves it alone)
    assert bd.index(fixed.group(0)) < bd.index("\nassign_bd_address\n")
    assert ("connect_bd_net [get_bd_pins zsq_engine_0/interrupt] "
            f"[get_bd_pins ps/{a.irq_pin}]") in bd
    assert f"{a.irq_pin}[{a.irq_bit}] = GIC ID {a.irq_id} = SPI {a.gic_spi}" in bd
    assert "@@" not in bd


def test_overlay_text_uses_the_constants(tmp_path):
    r = _boot(tmp_path, compile_dtbo=False)
    a = get_board("zybo-z7-20").attach
    dts = (r.boot_dir / "zsq-overlay.dtso").read_text()
    assert dts.count("/dts-v1/;") == 1 and "/plugin/;" in dts
    assert f"zsq_dae@{a.ctl_base:x} {{" in dts
    assert f"reg = <0x{a.ctl_base:08x} 0x{a.ctl_range:x}>;" in dts
    assert f"interrupts = <0 {a.gic_spi} 4>;" in dts and "interrupt-parent = <&intc>;" in dts
    assert 'firmware-name = "zsq_dae.bit.bin";' in dts and "target = <&fpga_full>;" in dts
    assert 'compatible = "generic-uio";' in dts and 'compatible = "ikwzm,u-dma-buf";' in dts
    assert f"size = <0x{4 * MIB:08x}>;" in dts and "dma-mask = <32>;" in dts
    assert "assigned-clock-rates = <100000000>;" in dts and "assigned-clocks = <&clkc 15>;" in dts
    assert (r.ctl_base, r.ctl_range, r.irq_id, r.gic_spi) == (a.ctl_base, a.ctl_range,
                                                               a.irq_id, a.gic_spi)
    assert (r.dma_need, r.dma_bytes, r.cma_mib, r.dtbo) == (NEED, 4 * MIB, None, False)
    assert not (r.boot_dir / "zsq-overlay.dtbo").exists()
    # names from the model pass through safe_text: nothing can close a comment or quote
    assert "tiny_net__$" not in dts and "tiny_net___x_" in dts


@need_dtc
def test_overlay_compiles_and_agrees_with_block_design(tmp_path, hls_project):
    r = _boot(tmp_path, clock_mhz=150)
    text, warnings = _dtb_text(r.boot_dir / "zsq-overlay.dtso", tmp_path)
    assert warnings.strip() == ""
    node = re.search(r"zsq_dae@([0-9a-f]+) \{(.*?)\};", text, re.S)
    reg = re.search(r"reg = <(0x[0-9a-f]+) (0x[0-9a-f]+)>;", node.group(2))
    irq = re.search(r"interrupts = <(0x[0-9a-f]+) (0x[0-9a-f]+) (0x[0-9a-f]+)>;", node.group(2))
    base, rng = int(reg.group(1), 16), int(reg.group(2), 16)
    assert int(node.group(1), 16) == base
    assert [int(v, 16) for v in irq.groups()] == [0, r.gic_spi, 4]
    assert re.search(r"assigned-clock-rates = <0x8f0d180>;", node.group(2))  # 150 MHz
    bd = (hls_project / "block_design.tcl").read_text()
    m = re.search(r"assign_bd_address -offset (\S+) -range (\S+)", bd)
    assert (int(m.group(1), 16), int(m.group(2), 16)) == (base, rng)
    assert f"IRQ_F2P[0] = GIC ID {r.gic_spi + 32} = SPI {r.gic_spi}" in bd
    size = re.search(r"udmabuf0 \{.*?size = <(0x[0-9a-f]+)>;", text, re.S)
    assert int(size.group(1), 16) == r.dma_bytes == 4 * MIB
    # the labels resolve against the base device tree at apply time
    fix = re.search(r"__fixups__ \{(.*?)\};", text, re.S).group(1)
    for label in ("fpga_full", "amba", "intc", "clkc"):
        assert re.search(rf"\b{label} = ", fix), label
    # the precompiled blob in the bundle is the same overlay
    assert r.dtbo and (r.boot_dir / "zsq-overlay.dtbo").read_bytes() == (tmp_path / "o.dtbo").read_bytes()


_TCL_STUBS = r"""
set ::calls {}
proc unknown {args} { lappend ::calls $args; return "" }
proc get_bd_addr_segs {args} {
    lappend ::calls [concat get_bd_addr_segs $args]
    if {[lsearch -exact $args -of_objects] >= 0} { return [list /ps/Data/SEG_zsq_engine_0_Reg /ps/Data/SEG_ps_HP0_DDR] }
    return ""
}
proc get_timing_paths {args} { return path }
proc get_property {name args} {
    if {$name eq "PROGRESS"} { return "100%" }
    if {$name eq "SLACK"} { return 0.5 }
    if {$name eq "OFFSET"} { return $::env(ZSQ_TEST_OFFSET) }
    if {$name eq "RANGE"} { return $::env(ZSQ_TEST_RANGE) }
    return ""
}
proc write_cfgmem {args} {
    set f [lindex $args [expr {[lsearch -exact $args -file] + 1}]]
    close [open $f w]
}
rename exit __exit
proc exit {{code 0}} {
    set fh [open calls.txt w]; foreach c $::calls { puts $fh $c }; close $fh
    __exit $code
}
"""


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="needs tclsh")
@pytest.mark.parametrize("offset,rng,ok", [("0x43C00000", "64K", True),
                                           ("0x43C00000", "65536", True),
                                           ("0x43C10000", "64K", False),
                                           ("0x43C00000", "4K", False)])
def test_block_design_guards_the_control_window(tmp_path, hls_project, offset, rng, ok):
    hls = tmp_path / "hls"
    shutil.copytree(hls_project, hls)
    (hls / "zsq_hls" / "solution1" / "impl" / "ip").mkdir(parents=True, exist_ok=True)
    (hls / "_run.tcl").write_text(_TCL_STUBS + "set argv {}\nsource block_design.tcl\n")
    env = dict(os.environ, PATH="/usr/bin:/bin", ZSQ_TEST_OFFSET=offset, ZSQ_TEST_RANGE=rng)
    r = subprocess.run(["tclsh", "_run.tcl"], cwd=hls, capture_output=True, text=True,
                       env=env, timeout=60)
    calls = (hls / "calls.txt").read_text()
    assert "assign_bd_address -offset 0x43C00000 -range 0x00010000 -target_address_space" in calls
    if ok:
        assert r.returncode == 0, r.stdout + r.stderr
        assert "write_bitstream" in calls
    else:
        assert r.returncode == 1
        assert "the device-tree overlay expects 0x43C00000" in r.stdout
        assert "write_bitstream" not in calls


# --- bootargs, sizes ------------------------------------------------------------------

def test_dma_sizes_and_bootargs(tmp_path):
    assert bootmod.dma_buffer_bytes(1) == MIB and bootmod.dma_buffer_bytes(MIB) == MIB
    assert bootmod.dma_buffer_bytes(MIB + 1) == 2 * MIB
    for bad in (0, -5, 1.5, True, None, 300 * MIB):
        with pytest.raises(ValueError):
            bootmod.dma_buffer_bytes(bad)
    assert bootmod.cma_mib(8 * MIB) is None and bootmod.cma_mib(9 * MIB) == 32
    assert bootmod.cma_mib(40 * MIB) == 64
    small = _boot(tmp_path, "s", compile_dtbo=False)
    text = (small.boot_dir / "bootargs.txt").read_text()
    first = next(ln for ln in text.splitlines() if ln and not ln.startswith("#"))
    assert first == small.bootargs == "uio_pdrv_genirq.of_id=generic-uio clk_ignore_unused"
    assert "cma= is not needed" in text
    big = _boot(tmp_path, "l", dma_bytes=30 * MIB + 5, compile_dtbo=False)
    text = (big.boot_dir / "bootargs.txt").read_text()
    assert big.bootargs.endswith(" cma=48M") and big.cma_mib == 48 and big.dma_bytes == 31 * MIB
    assert "\n# cma=48M\n" in text and big.bootargs in text.splitlines()
    with pytest.raises(ValueError, match="Zynq-7000"):
        _boot(tmp_path, "u", board="ultra96-v2")
    with pytest.raises(ValueError, match="clock_mhz"):
        _boot(tmp_path, "c", clock_mhz=0)


def test_boot_files_are_deterministic(tmp_path):
    a = _boot(tmp_path, "one")
    b = _boot(tmp_path, "two")
    _boot(tmp_path, "one")  # rewriting changes nothing
    names = sorted(p.name for p in a.boot_dir.iterdir())
    assert names == sorted(p.name for p in b.boot_dir.iterdir()) == list(a.files)
    for n in names:
        data = (a.boot_dir / n).read_bytes()
        assert data == (b.boot_dir / n).read_bytes(), n
        if not n.endswith(".dtbo"):
            t = data.decode()
            assert str(tmp_path) not in t and str(REPO) not in t and "@@" not in t, n
    assert os.access(a.boot_dir / "load_bitstream.sh", os.X_OK)
    # a bundle rewritten without dtc loses its stale blob (the loader would prefer it)
    (a.boot_dir / "zsq-overlay.dtbo").write_bytes(b"stale")
    _boot(tmp_path, "one", compile_dtbo=False)
    assert not (a.boot_dir / "zsq-overlay.dtbo").exists()


# --- load_bitstream.sh ------------------------------------------------------------------

def test_script_syntax_and_shellcheck(tmp_path):
    r = _boot(tmp_path, compile_dtbo=False)
    script = r.boot_dir / "load_bitstream.sh"
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n") and "\nset -eu\n" in text
    p = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    if shutil.which("shellcheck"):
        p = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
    if shutil.which("dash"):
        p = subprocess.run(["dash", "-n", str(script)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    h = subprocess.run(["sh", str(script), "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and "ZSQ_LOADER" in h.stdout and "ZSQ_FIRMWARE_DIR" in h.stdout


def _run(script: Path, *args, env=None, timeout=60, user=None):
    cmd = ["sh", str(script), *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def _one_error(p, *needles):
    assert p.returncode != 0, p.stdout + p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("load_bitstream.sh: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]


def test_script_refuses_non_root(tmp_path):
    r = _boot(tmp_path, compile_dtbo=False)
    if os.geteuid() != 0:
        _one_error(_run(r.boot_dir / "load_bitstream.sh"), "must run as root")
        return
    if shutil.which("setpriv") is None:
        pytest.skip("running as root and no setpriv to drop privileges")
    # a directory the unprivileged user can read (pytest's tmp dirs are private)
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        script = Path(d) / "load_bitstream.sh"
        shutil.copy(r.boot_dir / "load_bitstream.sh", script)
        os.chmod(script, 0o755)
        _one_error(_run(script, user=65534), "must run as root")
        _one_error(_run(script, "unload", user=65534), "must run as root")


def _fake_system(tmp_path: Path) -> dict:
    """Directories standing in for /sys, /dev, configfs and /lib/firmware."""
    sys_, dev, cfs, fw = (tmp_path / n for n in ("sys", "dev", "cfs", "fw"))
    (sys_ / "class" / "fpga_manager" / "fpga0").mkdir(parents=True)
    (sys_ / "class" / "fpga_manager" / "fpga0" / "state").write_text("operating\n")
    for drv in ("uio_pdrv_genirq", "u-dma-buf"):
        (sys_ / "bus" / "platform" / "drivers" / drv).mkdir(parents=True)
    (cfs / "device-tree" / "overlays").mkdir(parents=True)
    dev.mkdir()
    return dict(ZSQ_SYS=str(sys_), ZSQ_DEV=str(dev), ZSQ_CONFIGFS=str(cfs),
                ZSQ_FIRMWARE_DIR=str(fw), ZSQ_ALLOW_NONROOT="1", ZSQ_WAIT_S="0")


def _devices(env: dict, uio_name="zsq_dae", size=4 * MIB):
    """The devices the overlay would create: uio0 is another device, uio1 the engine."""
    sys_, dev = Path(env["ZSQ_SYS"]), Path(env["ZSQ_DEV"])
    for n, name in (("uio0", "axi_gpio"), ("uio1", uio_name)):
        (sys_ / "class" / "uio" / n).mkdir(parents=True, exist_ok=True)
        (sys_ / "class" / "uio" / n / "name").write_text(name + "\n")
        (dev / n).touch()
    buf = sys_ / "class" / "u-dma-buf" / "udmabuf0"
    buf.mkdir(parents=True, exist_ok=True)
    (buf / "size").write_text(f"{size}\n")
    (buf / "phys_addr").write_text("0x1f000000\n")
    (dev / "udmabuf0").touch()


class _FakeKernel(threading.Thread):
    """Marks the configfs overlay applied once its blob is written (what of_configfs does)."""

    def __init__(self, cfs: Path):
        super().__init__(daemon=True)
        self.ov, self.stop, self.seen = cfs / "device-tree" / "overlays" / "zsq", False, None

    def run(self):
        while not self.stop:
            dtbo = self.ov / "dtbo"
            if dtbo.exists() and dtbo.stat().st_size > 0 and not (self.ov / "status").exists():
                time.sleep(0.05)
                self.seen = dtbo.read_bytes()
                (self.ov / "status").write_text("applied\n")
            time.sleep(0.02)


def test_script_missing_bitstream_and_bad_arguments(tmp_path):
    r = _boot(tmp_path, compile_dtbo=False)
    script = r.boot_dir / "load_bitstream.sh"
    env = _fake_system(tmp_path)
    _one_error(_run(script, env=env), "no bitstream", "make -C hls bitstream")
    _one_error(_run(script, env=dict(env, ZSQ_BITSTREAM=str(tmp_path / "none.bit.bin"))),
               "ZSQ_BITSTREAM=", "no such file")
    _one_error(_run(script, "bogus", env=env), "unknown argument 'bogus'")
    _one_error(_run(script, "load", "now", env=env), "too many arguments")
    _one_error(_run(script, env=dict(env, ZSQ_WAIT_S="soon")), "ZSQ_WAIT_S")
    _one_error(_run(script, env=dict(env, ZSQ_LOADER="xdevcfg")), "ZSQ_LOADER")
    bit = tmp_path / "zsq_system.bit"
    bit.write_bytes(b"\x00" * 64)
    _one_error(_run(script, env=dict(env, ZSQ_BITSTREAM=str(bit))), "not a .bit.bin")
    # nothing was touched on the way out
    assert not Path(env["ZSQ_FIRMWARE_DIR"]).exists()
    assert not list((Path(env["ZSQ_CONFIGFS"]) / "device-tree" / "overlays").iterdir())


@need_dtc
def test_script_setup_errors(tmp_path):
    r = _boot(tmp_path, compile_dtbo=False)
    script = r.boot_dir / "load_bitstream.sh"
    env = _fake_system(tmp_path)
    (r.boot_dir / "zsq_dae.bit.bin").write_bytes(b"\xaa\x99\x55\x66" * 16)
    # no FPGA manager
    shutil.rmtree(Path(env["ZSQ_SYS"]) / "class" / "fpga_manager")
    _one_error(_run(script, env=env), "no FPGA manager")
    (Path(env["ZSQ_SYS"]) / "class" / "fpga_manager" / "fpga0").mkdir(parents=True)
    # no overlay interface in configfs
    _one_error(_run(script, env=dict(env, ZSQ_CONFIGFS=str(tmp_path / "nocfs"))),
               "device-tree overlay interface")
    # u-dma-buf missing and modprobe failing
    shutil.rmtree(Path(env["ZSQ_SYS"]) / "bus" / "platform" / "drivers" / "u-dma-buf")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "modprobe").write_text("#!/bin/sh\necho \"modprobe: FATAL: $*\" >&2\nexit 1\n")
    (fake_bin / "modprobe").chmod(0o755)
    p = _run(script, env=dict(env, PATH=f"{fake_bin}:{os.environ['PATH']}"))
    _one_error(p, "u-dma-buf", "README.md")
    # no dtc and no blob: the message says how to get one
    (r.boot_dir / "u-dma-buf.ko").write_bytes(b"")
    (fake_bin / "insmod").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "insmod").chmod(0o755)
    for tool in ("sh", "cat", "dirname", "id", "mkdir", "cp", "mv", "rm", "rmdir", "head",
                 "tail", "sed", "grep", "sleep", "uname"):
        if shutil.which(tool) and not (fake_bin / tool).exists():
            (fake_bin / tool).symlink_to(shutil.which(tool))
    p = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=60,
                       env=dict(env, PATH=str(fake_bin)))
    _one_error(p, "no dtc", "device-tree-compiler")


@need_dtc
@pytest.mark.parametrize("precompiled", [True, False])
def test_script_load_and_unload_on_a_fake_system(tmp_path, precompiled):
    r = _boot(tmp_path, compile_dtbo=precompiled)
    script = r.boot_dir / "load_bitstream.sh"
    bitbin = tmp_path / "zsq_system.bit.bin"
    bitbin.write_bytes(bytes(range(256)) * 4)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = dict(_fake_system(tmp_path), ZSQ_BITSTREAM=str(bitbin), ZSQ_WAIT_S="5",
               TMPDIR=str(scratch))
    _devices(env)
    kernel = _FakeKernel(Path(env["ZSQ_CONFIGFS"]))
    kernel.start()
    try:
        p = _run(script, env=env)
    finally:
        kernel.stop = True
        kernel.join()
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout.splitlines()
    assert out[-1] == f"export ZSQ_UIO={env['ZSQ_DEV']}/uio1"
    assert any("accelerator zsq_dae: registers 0x43c00000, interrupt IRQ_F2P[0] = GIC ID 61 = "
               "SPI 29" in ln for ln in out), p.stdout
    assert any(f"{4 * MIB} bytes at physical 0x1f000000" in ln for ln in out), p.stdout
    fw = Path(env["ZSQ_FIRMWARE_DIR"]) / "zsq_dae.bit.bin"
    assert fw.read_bytes() == bitbin.read_bytes()
    assert not list(Path(env["ZSQ_FIRMWARE_DIR"]).glob("*.tmp"))
    # the blob the kernel received is the overlay (compiled on the spot when not shipped)
    assert kernel.seen is not None and kernel.seen[:4] == b"\xd0\x0d\xfe\xed"
    if precompiled:
        assert kernel.seen == (r.boot_dir / "zsq-overlay.dtbo").read_bytes()
    assert not list(scratch.iterdir())  # the blob compiled on the spot is cleaned up
    # the buffer the overlay asked for is smaller than the model needs: one clear error
    _devices(env, size=MIB)
    ov = Path(env["ZSQ_CONFIGFS"]) / "device-tree" / "overlays" / "zsq"
    shutil.rmtree(ov)
    kernel = _FakeKernel(Path(env["ZSQ_CONFIGFS"]))
    kernel.start()
    try:
        p = _run(script, env=env)
    finally:
        kernel.stop = True
        kernel.join()
    _one_error(p, "has 1048576 bytes, the model needs 4194304")
    # unload: the overlay directory goes (configfs removes its attribute files itself)
    shutil.rmtree(ov)
    ov.mkdir()
    p = _run(script, "unload", env=env)
    assert p.returncode == 0 and not ov.exists(), p.stdout + p.stderr
    p = _run(script, "unload", env=env)
    assert p.returncode == 0 and "nothing to do" in p.stdout


@need_dtc
def test_script_explains_missing_uio_and_refused_overlay(tmp_path):
    r = _boot(tmp_path)
    script = r.boot_dir / "load_bitstream.sh"
    (r.boot_dir / "zsq_dae.bit.bin").write_bytes(b"\x01" * 64)
    env = _fake_system(tmp_path)
    _devices(env, uio_name="something_else")
    kernel = _FakeKernel(Path(env["ZSQ_CONFIGFS"]))
    kernel.start()
    try:
        p = _run(script, env=dict(env, ZSQ_WAIT_S="1"))
    finally:
        kernel.stop = True
        kernel.join()
    _one_error(p, "no UIO device named zsq_dae", "uio_pdrv_genirq.of_id=generic-uio")
    # an overlay the "kernel" never applies
    shutil.rmtree(Path(env["ZSQ_CONFIGFS"]) / "device-tree" / "overlays" / "zsq")
    p = _run(script, env=dict(env, ZSQ_WAIT_S="1"))
    _one_error(p, "overlay not applied", "dmesg")


# --- README -----------------------------------------------------------------------------

_IO = dict(inputs=[("data", (1, 3, 224, 224))], outputs=[("prob`s", (1, 1000))])


def _readme(boot, **kw):
    args = dict(model_name="squeeze net/1.1 <b>", board="zybo-z7-20", boot=boot, **_IO,
                latency_ms=41.234, accel_ms=30.5, n_offloaded=10, n_cpu=4)
    args.update(kw)
    return board_readme(**args)


def test_readme_content(tmp_path):
    boot = _boot(tmp_path, compile_dtbo=False)
    text = _readme(boot)
    assert "@@" not in text
    assert "# `squeeze_net_1.1__b_` on the zybo-z7-20" in text
    assert "| input 0 | `data` | 1x3x224x224 | 150528 |" in text
    assert "| output 0 | `prob_s` | 1x1000 | 1000 |" in text
    assert "Modeled by zynq-squeeze for this model (not measured on a board)" in text
    assert "| latency per inference (batch 1) | 41.2 ms |" in text
    assert "| throughput | 24.3 inferences/s |" in text  # 1000 / 41.234
    assert "| of which on the accelerator | 30.5 ms |" in text
    t3 = _readme(boot, arm_ms=4.5, copies_ms=2.25)
    assert "| of which CPU operators (Cortex-A9, one core) | 4.5 ms |" in t3
    assert "| of which copies (quantize, DMA buffer, cache sync, dequantize) | 2.25 ms |" in t3
    assert "| of which CPU operators" not in text  # not given: no row
    with pytest.raises(ValueError):
        _readme(boot, arm_ms=float("nan"))
    for needle in ("make -C hls bitstream", "Vitis HLS 2021.1", "sudo boot/load_bitstream.sh",
                   "./zsq_infer model.zsqm -i input.npy -o out.npy", "from zsq_model import ZsqModel",
                   "PetaLinux", "PYNQ", "dtbocfg", "u-dma-buf", "generic-uio", "fpga-manager",
                   boot.bootargs, "0x43c00000", "GIC ID 61, SPI 29", "statically linked",
                   "GLIBC_2", "no ap_done", "No `/dev/uioN`", "buffer too small",
                   f"{NEED} bytes", "zsq_dae.bit.bin"):
        assert needle in text, needle
    # only board-side paths: nothing of the machine that wrote it
    assert str(tmp_path) not in text and str(REPO) not in text and str(Path.home()) not in text
    assert not re.search(r"(^|\s)/(work|tmp|home|root|usr/lib/python)", text)
    # no modeled numbers: said so, no invented figures
    t2 = _readme(boot, latency_ms=None, accel_ms=None)
    assert "| latency, throughput | not modeled for this bundle |" in t2
    with pytest.raises(ValueError):
        _readme(boot, latency_ms=-1)
    with pytest.raises(ValueError):
        _readme(boot, inputs=[("x", (1, -2))])


def test_readme_and_wrapper_are_deterministic(tmp_path):
    b1, b2 = _boot(tmp_path, "a", compile_dtbo=False), _boot(tmp_path, "b", compile_dtbo=False)
    p1 = write_board_readme(tmp_path / "a", model_name="m", board="zybo-z7-20", boot=b1, **_IO,
                            latency_ms=10.0)
    p2 = write_board_readme(tmp_path / "b", model_name="m", board="zybo-z7-20", boot=b2, **_IO,
                            latency_ms=10.0)
    assert p1.name == "README.md" and p1.read_bytes() == p2.read_bytes()
    w = write_python_wrapper(tmp_path / "a")
    assert w.read_bytes() == (TEMPLATES / "zsq_model.py").read_bytes()


# --- zsq_model.py against a C stub of zsq_model.h ------------------------------------------

@pytest.fixture(scope="module")
def stub_lib(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("needs gcc")
    out = tmp_path_factory.mktemp("stub") / "libzsq_model.so"
    r = subprocess.run([gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                        f"-I{TEMPLATES}", "-o", str(out), str(REPO / "tests" / "c" / "zsq_model_stub.c")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def zm():
    spec = importlib.util.spec_from_file_location("zsq_model_under_test", TEMPLATES / "zsq_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "model.zsqm"
    p.write_bytes(b"ZSQM" + bytes(60))
    return p


def test_wrapper_shapes_run_and_stats(zm, stub_lib, model_file):
    with zm.ZsqModel(model_file, lib=str(stub_lib)) as m:
        assert m.inputs == [("x", (1, 2, 3))] and m.inputs[0].name == "x"
        assert m.outputs == [("y", (1, 2, 3)), ("sum", (1,))]
        assert m.stats is None
        x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
        y, s = m.run(x)
        assert y.dtype == np.float32 and y.shape == (1, 2, 3) and y.flags.c_contiguous
        assert np.array_equal(y, 2 * x) and s.shape == (1,) and s[0] == 15
        assert m.stats == (1.5, 0.25, 1001) and m.stats.accel_cycles == 1001
        # float64, non-contiguous, nested and flat lists, array('f'): converted
        wide = np.arange(12, dtype=np.float64).reshape(1, 2, 6)[..., ::2]
        assert np.array_equal(m.run(wide)[0], 2 * wide.astype(np.float32))
        assert np.array_equal(m.run([[[1, 2, 3], [4, 5, 6]]])[0].ravel(), [2, 4, 6, 8, 10, 12])
        assert np.array_equal(m.run([1, 2, 3, 4, 5, 6])[1], [21])
        assert np.array_equal(m.run(array.array("f", [1] * 6))[1], [6])
        assert m.stats.accel_cycles == 1005
        assert "ZsqModel(" in repr(m) and not m.closed
    assert m.closed


def test_wrapper_input_errors(zm, stub_lib, model_file):
    with zm.ZsqModel(str(model_file), lib=str(stub_lib)) as m:
        cases = [((np.zeros((2, 3), np.float32),), "shape (2, 3) given, (1, 2, 3) expected"),
                 ((np.zeros((1, 2, 3)), np.zeros(1)), "takes 1 input(s) (x), 2 given"),
                 ((), "takes 1 input(s)"),
                 (([1, 2, 3],), "shape (3,) given"),
                 ((array.array("f", [1, 2]),), "2 floats given, 6 expected"),
                 ((["a"] * 6,), "input 0 (x)")]
        for args, msg in cases:
            with pytest.raises(zm.ZsqModelError) as e:
                m.run(*args)
            assert e.value.code == zm.ZSQ_MODEL_ERR_ARG and msg in e.value.message, e.value
        # a failing step inside the library: its code and message come through
        bad = np.zeros((1, 2, 3), np.float32)
        bad[0, 0, 0] = np.nan
        with pytest.raises(zm.ZsqModelError) as e:
            m.run(bad)
        assert e.value.code == zm.ZSQ_MODEL_ERR_STEP == -205
        assert "step 1 (stub_double): NaN input" in str(e.value) and "(code -205)" in str(e.value)
        assert m.stats is None  # no successful run yet
        assert np.array_equal(m.run(np.ones((1, 2, 3)))[0], np.full((1, 2, 3), 2.0))


def test_wrapper_open_errors_and_close(zm, stub_lib, model_file, tmp_path, monkeypatch):
    with pytest.raises(zm.ZsqModelError) as e:
        zm.ZsqModel(tmp_path / "missing.zsqm", lib=str(stub_lib))
    assert e.value.code == zm.ZSQ_MODEL_ERR_FILE and "missing.zsqm" in e.value.message
    junk = tmp_path / "junk.zsqm"
    junk.write_bytes(b"ELF\x7f....")
    with pytest.raises(zm.ZsqModelError) as e:
        zm.ZsqModel(junk, lib=str(stub_lib))
    assert e.value.code == zm.ZSQ_MODEL_ERR_FORMAT and "bad magic" in e.value.message
    with pytest.raises(zm.ZsqModelError) as e:
        zm.ZsqModel(model_file, lib=str(tmp_path / "nolib.so"))
    assert e.value.code == zm.ZSQ_MODEL_ERR_FILE and "nolib.so" in e.value.message
    closes = tmp_path / "closes.txt"
    monkeypatch.setenv("ZSQ_STUB_CLOSES", str(closes))
    m = zm.ZsqModel(model_file, lib=str(stub_lib))
    # one model per process: the library's own rule, surfaced with its code
    with pytest.raises(zm.ZsqModelError) as e:
        zm.ZsqModel(model_file, lib=str(stub_lib))
    assert e.value.code == zm.ZSQ_MODEL_ERR_BUSY
    m.close()
    m.close()  # twice is fine
    with pytest.raises(zm.ZsqModelError, match="closed"):
        m.run(np.zeros((1, 2, 3), np.float32))
    del m
    assert closes.read_text() == "close\n"  # the library saw exactly one close
    with zm.ZsqModel(model_file, lib=str(stub_lib)) as m2:  # reopening works after close
        m2.run(np.zeros((1, 2, 3)))
    assert closes.read_text() == "close\nclose\n"


def test_wrapper_without_numpy(stub_lib, model_file, tmp_path):
    """On a board without numpy: lists and array('f') in, array('f') out."""
    code = f"""
import sys, array
sys.modules["numpy"] = None          # import numpy -> ImportError
sys.path.insert(0, {str(TEMPLATES)!r})
import zsq_model as zm
with zm.ZsqModel({str(model_file)!r}, lib={str(stub_lib)!r}) as m:
    y, s = m.run([[[1, 2, 3], [4, 5, 6]]])
    assert isinstance(y, array.array) and y.typecode == "f", type(y)
    assert list(y) == [2, 4, 6, 8, 10, 12] and list(s) == [21.0]
    y, s = m.run(array.array("f", [0.5] * 6))
    assert list(s) == [3.0]
    try:
        m.run(object())
    except zm.ZsqModelError as e:
        assert e.code == zm.ZSQ_MODEL_ERR_ARG and "without numpy" in e.message
    else:
        raise AssertionError("no error")
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_wrapper_command_line(stub_lib, model_file, tmp_path):
    # the library is found next to the script when not in the working directory
    shutil.copy(TEMPLATES / "zsq_model.py", tmp_path / "zsq_model.py")
    shutil.copy(stub_lib, tmp_path / "libzsq_model.so")
    work = tmp_path / "elsewhere"
    work.mkdir()
    r = subprocess.run([sys.executable, str(tmp_path / "zsq_model.py"), str(model_file),
                        "--runs", "2"], capture_output=True, text=True, timeout=60, cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "input 0: x 1x2x3 float32" in r.stdout and "output 1: sum 1 float32" in r.stdout
    assert "run 1:" in r.stdout and "1002 cycles" in r.stdout
    r = subprocess.run([sys.executable, str(tmp_path / "zsq_model.py"), "nope.zsqm"],
                       capture_output=True, text=True, timeout=60, cwd=work)
    assert r.returncode == 1 and "error:" in r.stdout and "(code -201)" in r.stdout
