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
