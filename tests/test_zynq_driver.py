"""The board driver (hls_runtime/backends/zynq.c) against the simulated board as a separate
process (hls_runtime/tools/zsq_fake_device): the client, tests/c/zynq_client.c, talks to it
only through files (register file, u-dma-buf buffer, sysfs attributes) and the interrupt pty,
as a board binary would with /dev/uio0 and /dev/udmabuf0; built for the host, and for the
Zynq's Cortex-A9 and run under qemu-arm-static. The in-process C test (tests/c/test_zynq.c,
run by test_ctest.py) covers the same driver in depth.

Each client run: every test program twice through zsq_rt_run_io; the output bit-exact with
the golden model, the cycles Python's, the bytes copied the instructions, weights, input and
output on the first run and only the input and output on the second.
"""
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from test_ctest import REPO, write_cases

from zynq_squeeze import native

ARM_TOOLS = ("arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-g++", "qemu-arm-static")
QEMU = ["qemu-arm-static", "-cpu", "cortex-a9", "-L", "/usr/arm-linux-gnueabihf"]
ERR_DEVICE, ERR_NOMEM, ERR_TIMEOUT, ERR_ENGINE = -103, -104, -105, -107

pytestmark = pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")


def _build(build: Path, cases: Path, targets, extra=()) -> None:
    r = subprocess.run(["cmake", "-S", str(REPO), "-B", str(build), "-DZSQ_BACKEND=zynq",
                        "-DCMAKE_BUILD_TYPE=Release", f"-DZSQ_AP_TYPES_DIR={native.ap_types_dir()}",
                        f"-DZSQ_CONFIG_DIR={cases / 'config'}", *extra],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(build), "-j", "2", "--target", *targets],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return write_cases(tmp_path_factory.mktemp("driver_cases"))


@pytest.fixture(scope="module")
def host_build(tmp_path_factory, cases):
    """The fake device and a host client (x86)."""
    build = tmp_path_factory.mktemp("driver_build")
    _build(build, cases, ["zsq_fake_device", "zynq_client"])
    return build


@pytest.fixture(scope="module")
def arm_client(tmp_path_factory, cases):
    """The client for the board (no engine in it: only the runtime and the zynq backend)."""
    if any(shutil.which(t) is None for t in ARM_TOOLS):
        pytest.skip("needs g++-arm-linux-gnueabihf and qemu-user-static")
    build = tmp_path_factory.mktemp("driver_build_arm")
    _build(build, cases, ["zynq_client"],
           [f"-DCMAKE_TOOLCHAIN_FILE={REPO / 'cmake' / 'arm-linux-gnueabihf.cmake'}"])
    exe = build / "zynq_client"
    out = subprocess.run(["arm-linux-gnueabihf-readelf", "-h", str(exe)], capture_output=True,
                         text=True).stdout
    assert "ARM" in out
    return exe


def _timing(cases: Path) -> str:
    line = next(ln for ln in (cases / "cases.txt").read_text().splitlines()
                if ln and not ln.startswith("#"))
    f = line.split()
    return ",".join(f[6:10])  # rd_latency wr_latency outstanding beat_x100


class FakeDevice:
    """zsq_fake_device in its own process, serving files under ``root``."""

    def __init__(self, exe: Path, root: Path, cases: Path, *args: str):
        self.root = root
        self.proc = subprocess.Popen([str(exe), "--root", str(root), "--timing", _timing(cases),
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        deadline = time.monotonic() + 20
        while not (root / "env").exists():
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline, "the fake device did not come up"
            time.sleep(0.02)
        self.env = dict(line.split("=", 1) for line in (root / "env").read_text().splitlines())

    def set_mode(self, mode: str) -> None:
        (self.root / "mode").write_text(mode + "\n")
        time.sleep(0.1)  # re-read every 20 ms

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=20)
        return err


@pytest.fixture
def device(tmp_path, host_build, cases):
    started = []

    def start(*args):
        dev = FakeDevice(host_build / "zsq_fake_device", tmp_path / f"board{len(started)}",
                         cases, *args)
        started.append(dev)
        return dev

    yield start
    for dev in started:
        if dev.proc.poll() is None:
            dev.stop()


def _client(exe: Path, cases: Path, env: dict, *args: str, qemu: bool = False):
    full = {k: v for k, v in os.environ.items() if not k.startswith("ZSQ_")}
    full.update(env)
    cmd = ([*QEMU] if qemu else []) + [str(exe), str(cases), *args]
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=300)


def _check_runs(out: str, cases: Path) -> None:
    """Every program exact twice, with Python's cycles; the program copied once."""
    runs = re.findall(r"^(\w+) run (\d): exact, (\d+) cycles \(expected (\d+)\), copied (\d+) "
                      r"bytes$", out, re.M)
    names = [ln.split()[0] for ln in (cases / "cases.txt").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert [(n, int(k)) for n, k, *_ in runs] == [(n, k) for n in names for k in (1, 2)], out
    for name, k, cyc, want, copied in runs:
        assert cyc == want
        words = {p: (cases / f"{name}.{p}").stat().st_size for p in ("insn", "wgt")}
        line = next(ln.split() for ln in (cases / "cases.txt").read_text().splitlines()
                    if ln.startswith(name + " "))
        out_c, out_h, out_w, in_words = int(line[3]), int(line[4]), int(line[5]), int(line[12])
        io = (in_words + out_h * out_w * ((out_c + 7) // 8)) * 8
        assert int(copied) == (io + words["insn"] + words["wgt"] if k == "1" else io), (name, k)


@pytest.mark.parametrize("env", [{}, {"ZSQ_IRQ": "0"}, {"ZSQ_UDMABUF_CACHED": "0"}],
                         ids=["interrupt-cached", "polling", "uncached"])
def test_host_client_through_files(device, host_build, cases, env):
    dev = device()
    r = _client(host_build / "zynq_client", cases, {**dev.env, **env})
    assert r.returncode == 0, r.stdout + r.stderr
    _check_runs(r.stdout, cases)
    info = r.stdout.strip().splitlines()[-1]
    assert ("wait polling" if "ZSQ_IRQ" in env else "wait interrupt on /dev/pts/") in info
    assert ("uncached (O_SYNC)" if "ZSQ_UDMABUF_CACHED" in env
            else "cacheable with u-dma-buf sync") in info
    log = dev.stop()
    assert log.count("zsq_fake_device: run ") == 4, log


def test_arm_client_under_qemu_through_files(device, arm_client, cases):
    """The board binary (ARM, under qemu-arm-static) against the fake device process:
    interrupt through the pty, cacheable buffer synced through the attribute files."""
    dev = device()
    r = _client(arm_client, cases, dev.env, qemu=True)
    assert r.returncode == 0, r.stdout + r.stderr
    _check_runs(r.stdout, cases)
    assert "interrupt on /dev/pts/" in r.stdout and "cacheable with u-dma-buf sync" in r.stdout
    # the last sync handed the last output back to the CPU
    sysdir = dev.root / "sys" / "u-dma-buf" / "udmabuf0"
    assert (sysdir / "sync_for_cpu").read_text() == "1\n"
    assert (sysdir / "sync_direction").read_text() == "2\n"


@pytest.mark.parametrize("qemu", [False, True], ids=["host", "arm-qemu"])
def test_failures_across_processes(request, device, host_build, cases, qemu):
    exe = request.getfixturevalue("arm_client") if qemu else host_build / "zynq_client"
    # no device at all
    r = _client(exe, cases, {"ZSQ_SYSFS": str(cases / "nowhere"), "ZSQ_UIO": "/nonexistent"},
                "--expect-rc", str(ERR_DEVICE), qemu=qemu)
    assert r.returncode == 0 and "u-dma-buf" in r.stdout, r.stdout + r.stderr
    # a buffer too small for the program (decimal size 4096)
    dev = device("--size", "4096")
    r = _client(exe, cases, dev.env, "--expect-rc", str(ERR_NOMEM), qemu=qemu)
    assert r.returncode == 0 and "has 4096" in r.stdout, r.stdout + r.stderr
    # a hung IP: the timeout, then recovery by a reset
    dev = device()
    dev.set_mode("hang")
    t0 = time.monotonic()
    r = _client(exe, cases, {**dev.env, "ZSQ_TIMEOUT_MS": "300"}, "--expect-rc", str(ERR_TIMEOUT),
                qemu=qemu)
    assert r.returncode == 0 and "no ap_done" in r.stdout, r.stdout + r.stderr
    assert time.monotonic() - t0 < 30
    dev.set_mode("normal")
    # ap_done without a cycle count: the engine error the IP can show
    dev.set_mode("novld")
    r = _client(exe, cases, dev.env, "--expect-rc", str(ERR_ENGINE), qemu=qemu)
    assert r.returncode == 0 and "cycles_ap_vld" in r.stdout, r.stdout + r.stderr
    dev.set_mode("normal")
    r = _client(exe, cases, dev.env, qemu=qemu)
    assert r.returncode == 0, r.stdout + r.stderr
