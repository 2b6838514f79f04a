"""``zynq-squeeze deploy``: the bundle a user copies to the board, end to end.

The bundle's own ARM executable (static, the ``zynq`` backend: UIO registers and a
u-dma-buf buffer) runs under qemu-arm-static against the simulated board
(hls_runtime/tools/zsq_fake_device, a separate process serving the register file, the DMA
buffer and its sysfs attributes, built with this model's engine configuration): its output
and accelerator cycles equal the host variant's (which test_deploy.py checks against
relax.VirtualMachine) bit for bit.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from zynq_squeeze import cli, native
from zynq_squeeze.frontend.models import digits_data, digits_model

REPO = Path(__file__).resolve().parents[1]
QEMU = ["qemu-arm-static", "-cpu", "cortex-a9", "-L", "/usr/arm-linux-gnueabihf"]
ARM_TOOLS = ("arm-linux-gnueabihf-g++", "qemu-arm-static", "cmake")

pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in ARM_TOOLS),
                                reason="needs g++-arm-linux-gnueabihf, qemu-user-static, cmake")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    import onnx

    d = tmp_path_factory.mktemp("deploy")
    onnx.save(digits_model(), str(d / "digits.onnx"))
    X, _ = digits_data("test")
    np.save(d / "calib.npy", X[:16].reshape(16, 1, 1, 8, 8))
    rc = cli.main(["deploy", str(d / "digits.onnx"), "--out", str(d / "bundle"),
                   "--calib", str(d / "calib.npy"), "--host", "--quiet"])
    assert rc == 0
    return d / "bundle"


def test_bundle_holds_what_the_board_needs(bundle):
    for name in ("README.md", "zsq_infer", "libzsq_model.so", "model.zsqm", "zsq_model.h",
                 "zsq_model.py", "report.json", "bundle.json", "boot/zsq-overlay.dtso",
                 "boot/bootargs.txt", "boot/load_bitstream.sh", "hls/Makefile",
                 "hls/zsq_dae_top.cpp", "hls/block_design.tcl"):
        assert (bundle / name).is_file(), name
    elf = subprocess.run(["arm-linux-gnueabihf-readelf", "-h", "-l", str(bundle / "zsq_infer")],
                         capture_output=True, text=True).stdout
    assert "ARM" in elf and "INTERP" not in elf  # armv7, statically linked
    man = json.loads((bundle / "bundle.json").read_text())
    assert man["model"] == "digits" and man["board"] == "zybo-z7-20"
    for name, rec in man["files"].items():
        assert (bundle / name).stat().st_size == rec["bytes"], name
    readme = (bundle / "README.md").read_text()
    assert "digits" in readme and "modeled" in readme.lower()
    assert str(bundle) not in readme
    # the end-to-end figures (modeled, with the ARM's share) in report.json and the README
    perf = json.loads((bundle / "report.json").read_text())["performance"]
    assert perf["end_to_end_ms"] == pytest.approx(
        perf["latency_ms"] + perf["arm_ms"] + perf["copies_ms"], abs=1e-5)
    assert "| of which copies (quantize, DMA buffer, cache sync, dequantize) |" in readme
    assert "The latency is end to end" in readme


def _timing(config: Path) -> str:
    text = config.read_text()
    get = {k: re.search(rf"#define ZSQD_{k} (\d+)", text).group(1)
           for k in ("RD_LATENCY", "WR_LATENCY", "OUTSTANDING", "DDR_BEAT_X100")}
    return ",".join(get[k] for k in ("RD_LATENCY", "WR_LATENCY", "OUTSTANDING", "DDR_BEAT_X100"))


@pytest.fixture(scope="module")
def fake_device(bundle, tmp_path_factory):
    """The simulated board, built with the bundle's engine configuration."""
    build = tmp_path_factory.mktemp("fake_device")
    config = bundle / "build" / "arm" / "codegen" / "src"
    r = subprocess.run(["cmake", "-S", str(REPO), "-B", str(build), "-DZSQ_BACKEND=zynq",
                        "-DCMAKE_BUILD_TYPE=Release", f"-DZSQ_AP_TYPES_DIR={native.ap_types_dir()}",
                        f"-DZSQ_CONFIG_DIR={config}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(build), "-j", "2", "--target", "zsq_fake_device"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    root = tmp_path_factory.mktemp("board") / "root"
    size = int(re.search(r"size = <(0x[0-9a-f]+)>", (bundle / "boot" / "zsq-overlay.dtso")
                         .read_text()).group(1), 16)
    proc = subprocess.Popen([str(build / "zsq_fake_device"), "--root", str(root), "--size",
                             str(size), "--timing", _timing(config / "zsq_dae_config.h")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (root / "env").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the fake device did not come up"
        time.sleep(0.02)
    env = dict(line.split("=", 1) for line in (root / "env").read_text().splitlines())
    yield env
    proc.terminate()
    proc.communicate(timeout=20)


def _infer(cmd, model, x: Path, y: Path, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("ZSQ_")}
    full.update(env or {})
    r = subprocess.run([*cmd, str(model), "-i", str(x), "-o", str(y)], env=full,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return int(re.search(r"(\d+) accelerator cycles", r.stdout).group(1))


def test_board_executable_under_qemu_against_the_simulated_board(bundle, fake_device, tmp_path):
    X, _ = digits_data("test")
    host = bundle / "build" / "host"
    for k in (0, 7):
        x = tmp_path / f"x{k}.npy"
        np.save(x, X[k].reshape(1, 1, 8, 8))
        cyc_arm = _infer([*QEMU, str(bundle / "zsq_infer")], bundle / "model.zsqm", x,
                         tmp_path / f"arm{k}.npy", fake_device)
        cyc_host = _infer([str(host / "zsq_infer")], host / "model.zsqm", x,
                          tmp_path / f"host{k}.npy")
        assert np.array_equal(np.load(tmp_path / f"arm{k}.npy"), np.load(tmp_path / f"host{k}.npy"))
        assert cyc_arm == cyc_host > 0


def test_without_the_board_the_error_is_one_line(bundle, tmp_path):
    r = subprocess.run([*QEMU, str(bundle / "zsq_infer"), str(bundle / "model.zsqm")],
                       env={"ZSQ_UIO": str(tmp_path / "no-uio"), "PATH": os.environ["PATH"]},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zsq_infer: error:"), r.stderr


def test_redeploy_replaces_and_foreign_directories_are_refused(bundle, tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    onnx_path = bundle.parent / "digits.onnx"
    assert cli.main(["deploy", str(onnx_path), "--out", str(foreign), "--quiet"]) != 0
    err = capsys.readouterr().err.strip()
    assert err == (f"zynq-squeeze: error: {foreign} is not empty and holds no bundle: choose a "
                   "new or empty directory")
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert cli.main(["deploy", str(onnx_path), "--board", "ultra96-v2", "--out",
                     str(tmp_path / "u96"), "--quiet"]) != 0
    assert "deploy supports Zynq-7000 boards" in capsys.readouterr().err
    assert not (tmp_path / "u96").exists()
    again = tmp_path / "again"
    assert cli.main(["deploy", str(onnx_path), "--out", str(again), "--quiet"]) == 0
    (again / "boot" / "stale.txt").write_text("from an older bundle")
    (again / "notes.txt").write_text("the user's")
    assert cli.main(["deploy", str(onnx_path), "--out", str(again), "--quiet"]) == 0
    assert not (again / "boot" / "stale.txt").exists()
    assert (again / "notes.txt").read_text() == "the user's" and (again / "zsq_infer").is_file()


def test_python_wrapper_drives_the_real_library(bundle, tmp_path):
    """The bundle's zsq_model.py over the host build's libzsq_model.so (a separate process:
    one model per process), bit-exact with zsq_infer."""
    import sys

    X, _ = digits_data("test")
    x = tmp_path / "x.npy"
    np.save(x, X[3].reshape(1, 1, 8, 8))
    host = bundle / "build" / "host"
    _infer([str(host / "zsq_infer")], host / "model.zsqm", x, tmp_path / "y_infer.npy")
    script = (
        "import sys, numpy as np\n"
        f"sys.path.insert(0, {str(bundle)!r})\n"
        "from zsq_model import ZsqModel, ZsqModelError\n"
        f"m = ZsqModel({str(host / 'model.zsqm')!r}, lib={str(host / 'libzsq_model.so')!r})\n"
        f"y = m.run(np.load({str(x)!r}))[0]\n"
        f"np.save({str(tmp_path / 'y_py.npy')!r}, y)\n"
        "try:\n"
        "    m.run(np.zeros((1, 1, 8, 7), np.float32))\n"
        "except ZsqModelError as e:\n"
        "    print('shape error:', e)\n"
        "m.close()\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "shape error: input 0 (input): shape (1, 1, 8, 7) given, (1, 1, 8, 8) expected" \
        in r.stdout
    assert np.array_equal(np.load(tmp_path / "y_py.npy"), np.load(tmp_path / "y_infer.npy"))
