"""A run killed with SIGKILL and started again with the same command ends as an unkilled run does."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent.parent
STEPS_PER_EPOCH, EPOCHS = 40, 2


def _command(tmp_path, name):
    return [
        sys.executable, "-m", "trainers.run", "--model=gru", f"--model_dir={tmp_path / name}",
        f"--export_dir={tmp_path / 'exports'}", f"--data_dir={tmp_path / 'data'}", f"--epochs={EPOCHS}",
        f"--steps_per_epoch={STEPS_PER_EPOCH}", "--steps_per_loop=2", "--checkpoint_every_steps=4",
        "--params_override=model.dropout=0.0",
    ]


def _checkpoint_steps(model_dir):
    """Steps of the checkpoints the manager's state file names: written only after a save completes."""
    state = model_dir / "checkpoints" / "checkpoint"
    if not state.is_file():
        return []
    return sorted({int(line.split('"ckpt-')[1].rstrip('"')) for line in state.read_text().splitlines() if '"ckpt-' in line})


def test_sigkilled_run_resumes_and_matches_an_unkilled_run(tmp_path):
    unkilled = subprocess.run(_command(tmp_path, "unkilled"), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert unkilled.returncode == 0, unkilled.stderr[-3000:]

    victim = subprocess.Popen(_command(tmp_path, "killed"), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not [step for step in _checkpoint_steps(tmp_path / "killed") if 0 < step < STEPS_PER_EPOCH * EPOCHS]:
        assert victim.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint within the time limit"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    killed_at = max(_checkpoint_steps(tmp_path / "killed"))

    resumed = subprocess.run(_command(tmp_path, "killed"), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resume_lines = [line for line in resumed.stdout.splitlines() if line.startswith("Resuming from")]
    assert len(resume_lines) == 1
    assert resume_lines[0].startswith(f"Resuming from {tmp_path / 'killed' / 'checkpoints'}/ckpt-")
    assert resume_lines[0].endswith(f"at step {int(resume_lines[0].split('ckpt-')[1].split()[0])}")
    assert int(resume_lines[0].split()[-1]) >= killed_at - 4  # The newest complete checkpoint.

    final = {name: json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("unkilled", "killed")}
    assert final["killed"]["global_step"] == final["unkilled"]["global_step"] == STEPS_PER_EPOCH * EPOCHS
    # Model, optimizer, step and data position are all restored: the same end state.
    assert final["killed"]["loss"] == pytest.approx(final["unkilled"]["loss"], rel=1e-4)
    assert final["killed"]["accuracy"] == pytest.approx(final["unkilled"]["accuracy"], abs=1e-6)
