"""benchmarks/gpu_check.sh parses, and on a machine without a GPU stops at once with a clear message.

Fake `nvidia-smi` and `python` commands stand in for the machine, so the test takes milliseconds
and never starts the benchmark, even where a GPU is present.
"""

import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def fake_command(directory, name, output, status=0):
    path = directory / name
    path.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\nexit {status}\n")
    path.chmod(0o755)
    return path


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


@pytest.mark.parametrize(
    "nvidia_smi, tensorflow, reason",
    [
        (("No devices were found", 6), "0 2.21.0 3.15.0", "nvidia-smi -L lists none"),
        (("GPU 0: NVIDIA H200 (UUID: GPU-0)", 0), "0 2.21.0 3.15.0", "TensorFlow lists none"),
    ],
)
def test_without_a_visible_gpu_it_exits_at_once_and_says_why(nvidia_smi, tensorflow, reason, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_command(bin_dir, "nvidia-smi", *nvidia_smi)
    python = fake_command(bin_dir, "python", tensorflow)  # What the TensorFlow check would print.
    out = tmp_path / "out"
    environment = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHON=str(python))
    result = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, env=environment,
                            timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith(f"gpu_check: no GPU visible: {reason}")
    assert "needs a machine with an NVIDIA GPU" in result.stderr
    assert not out.exists()  # Nothing was run.
