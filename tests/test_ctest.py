"""Configure, build and run the C tests (ctest) of hls_runtime in a temporary directory."""
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
@pytest.mark.parametrize("backend", ["csim", "zynq"])
def test_cmake_build_and_ctest(tmp_path, backend):
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(REPO), "-B", str(build), f"-DZSQ_BACKEND={backend}",
                    "-DCMAKE_BUILD_TYPE=Release"], check=True, capture_output=True)
    r = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (build / "libzsq_runtime.a").is_file()
    if backend == "csim":
        r = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "100% tests passed" in r.stdout


ARM_TOOLS = ("arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-g++", "qemu-arm-static")


@pytest.mark.skipif(shutil.which("cmake") is None or any(shutil.which(t) is None for t in ARM_TOOLS),
                    reason="needs cmake, g++-arm-linux-gnueabihf and qemu-user-static")
@pytest.mark.parametrize("backend", ["csim", "zynq"])
def test_cross_build_for_the_board_and_ctest_under_qemu(tmp_path, backend):
    """The runtime (and, for csim, the engine) build for the Zynq's Cortex-A9; the C tests
    run under qemu through CMAKE_CROSSCOMPILING_EMULATOR."""
    build = tmp_path / "build-arm"
    subprocess.run(["cmake", "-S", str(REPO), "-B", str(build), f"-DZSQ_BACKEND={backend}",
                    "-DCMAKE_BUILD_TYPE=Release",
                    f"-DCMAKE_TOOLCHAIN_FILE={REPO / 'cmake' / 'arm-linux-gnueabihf.cmake'}"],
                   check=True, capture_output=True)
    r = subprocess.run(["cmake", "--build", str(build), "-j", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    lib = build / "libzsq_runtime.a"
    members = subprocess.run(["arm-linux-gnueabihf-objdump", "-f", str(lib)],
                             capture_output=True, text=True).stdout
    assert "elf32-littlearm" in members
    if backend == "csim":
        r = subprocess.run(["ctest", "--test-dir", str(build), "--output-on-failure"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "100% tests passed" in r.stdout
