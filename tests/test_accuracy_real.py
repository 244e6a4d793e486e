"""Recipes on real data (SST-2, MNIST): short runs of the shipped configs, judged by what their exports score.

These train on a slice of an epoch, so they assert floors far below the benchmark's figures
(BENCHMARKS.md, "Accuracy on real data", where full runs are measured over 3 seeds): a floor
that every run clears shows the recipe, pipeline and export work on real data, without claiming
the benchmark's accuracy. The real files exist on developer and CI machines only; elsewhere these
tests skip. They are marked slow (learning a vocabulary from 67k phrases alone takes a minute):
`pytest -m slow tests/test_accuracy_real.py`.
"""

import json
import subprocess
import sys

import pytest

from cli_runs import REPO, run_trainer
from zoo.data import local

pytestmark = pytest.mark.slow

SOURCE_FOLDERS = {"sst2_local": "sst2", "mnist_local": "mnist"}


def require_real_data(dataset):
    folder = local.shared_data_dir() / SOURCE_FOLDERS[dataset]
    if not folder.is_dir():
        pytest.skip(f"real data absent: no {folder} (set {local.SHARED_DATA_VARIABLE})")


def train_briefly(model, dataset, tmp_path, steps):
    """One epoch of `steps` steps of the shipped config; returns (metrics.json, the export's version dir)."""
    require_real_data(dataset)
    result = run_trainer(
        f"--model={model}", f"--dataset={dataset}", "--epochs=1", f"--steps_per_epoch={steps}",
        f"--model_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}",
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (version_dir,) = (tmp_path / "exports" / model).iterdir()
    return json.loads((tmp_path / "run" / "metrics.json").read_text()), version_dir


def saved_model_accuracy(version_dir, dataset):
    """`benchmarks.saved_model_accuracy` in a fresh process: TensorFlow only, raw inputs from the source files."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.saved_model_accuracy", str(version_dir), dataset],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "model, dataset, steps, floor",
    [
        # Benchmark: >= 99.2% after 3 epochs; 60 steps are 7,680 images, an eighth of one epoch.
        ("cnn", "mnist_local", 60, 0.90),
        # Benchmark: ~80% after 3 epochs; 200 steps are 51,200 phrases, three quarters of one.
        ("bow", "sst2_local", 200, 0.65),
        # Benchmark: ~84% after 3 epochs (label smoothing, max pooling, adversarial training); 200 steps are 25,600 phrases.
        ("gru", "sst2_local", 200, 0.70),
    ],
)
def test_a_slice_of_an_epoch_learns_and_the_export_scores_what_the_trainer_reported(model, dataset, steps, floor, tmp_path):
    metrics, version_dir = train_briefly(model, dataset, tmp_path, steps)
    assert metrics["accuracy"] >= floor
    served = saved_model_accuracy(version_dir, dataset)
    assert served["num_examples"] == metrics["num_examples"]
    # The same answers: at most one example may flip, for a probability within float error of 0.5.
    assert abs(served["accuracy"] - metrics["accuracy"]) * metrics["num_examples"] <= 1.0 + 1e-6
