"""Every model family x every strategy that runs here, through the CLI, on the family's shipped config.

What users type is what is tested: `python -m trainers.run --model=NAME --strategy=...` on
`trainers/configs/NAME/offline.yaml` as shipped (length buckets on), 4 steps per `tf.function` loop, so
that batches of several buckets meet inside one loop. Only the run's length is cut, and its randomness
(dropout, augmentation) is switched off so that the strategies' loss curves can be compared step
by step; `test_mirrored_run_with_dropout` keeps it on.

Each family: the default strategy, MirroredStrategy over 2 logical CPUs, and MultiWorkerMirrored
with 2 worker processes on 127.0.0.1 train, evaluate and export, and the distributed runs follow
the default strategy's loss curve (same global batches, only the order of float sums differs):
mirrored for every family, two workers for the text families (see the test for the image one).
The default run's SavedModel is then fed texts with no tokens at all (empty, whitespace, only
characters the vocabulary lacks) in a fresh TensorFlow-only process: every answer must be finite
probabilities summing to 1, equal to the Keras model's.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import zoo
from trainers import config as config_lib
from trainers import op_threads
from trainers.strategy import loopback_tf_configs

from cli_runs import REPO, keras_probabilities, losses_from_events, run_trainer, serve_in_fresh_process

FAMILIES = sorted(path.parent.name for path in config_lib.CONFIGS_DIR.glob("*/offline.yaml"))
EPOCH_STEPS = 12  # 3 loops of 4 steps at the shipped steps_per_loop below.
HOSTILE_TEXTS = ["", "   ", "\u2603\u2603 \u2603", "\t\n", "I love this movie!", "not bad at all " * 40]


def test_every_model_family_is_covered():
    """Each registered model runs on a family's shipped config, and each family is tested here."""
    assert FAMILIES and set(FAMILIES) == {config_lib.default_config_path(name).parent.name for name in zoo.list_models()}


def _no_randomness(family):
    """`--params_override` switching off the family's random layers (dropout, augmentation)."""
    random_fields = [field for field in zoo.default_config(family) if "dropout" in field or field == "translation"]
    return ",".join(f"model.{field}=0.0" for field in random_fields)


def _flags(family, run_dir, data_dir, *extra):
    return [
        f"--model={family}", f"--model_dir={run_dir / 'run'}", f"--export_dir={run_dir / 'exports'}",
        f"--data_dir={data_dir}", "--epochs=1", f"--steps_per_epoch={EPOCH_STEPS}", "--steps_per_loop=4", *extra,
    ]


def _run_two_workers(flags, timeout=420):
    """Starts the two workers of one MultiWorkerMirroredStrategy job; returns [(returncode, stdout, stderr)]."""
    processes = [
        subprocess.Popen([sys.executable, "-m", "trainers.run", *flags], cwd=REPO, text=True,
                         env=dict(os.environ, TF_CONFIG=tf_config), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for tf_config in loopback_tf_configs(2)
    ]
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            process.kill()
    return [(process.returncode, *output) for process, output in zip(processes, outputs)]


@pytest.fixture(scope="module")
def default_run(data_dir, tmp_path_factory):
    """family -> the directory of its default-strategy run (trained once per module)."""
    runs = {}

    def run(family):
        if family not in runs:
            run_dir = tmp_path_factory.mktemp(f"{family}_default")
            result = run_trainer(*_flags(family, run_dir, data_dir, f"--params_override={_no_randomness(family)}"))
            assert result.returncode == 0, result.stderr[-3000:]
            (run_dir / "stdout.txt").write_text(result.stdout)
            runs[family] = run_dir
        return runs[family]

    return run


def _assert_trained_evaluated_exported(run_dir, family):
    metrics = json.loads((run_dir / "run" / "metrics.json").read_text())
    assert metrics["global_step"] == EPOCH_STEPS and np.isfinite(metrics["loss"])
    assert sorted(path.name for path in (run_dir / "exports" / family).iterdir()) == ["1"]
    assert (run_dir / "exports" / family / "1" / "saved_model.pb").is_file()


@pytest.mark.parametrize("family", FAMILIES)
def test_default_strategy_export_answers_texts_without_tokens(family, default_run, tmp_path):
    run_dir = default_run(family)
    _assert_trained_evaluated_exported(run_dir, family)
    if zoo.get_spec(family).input_kind == "image":
        raw_inputs = np.stack([np.zeros([8, 8, 1]), np.full([8, 8, 1], 255.0), np.full([8, 8, 1], 1e6)]).astype(np.float32)
    else:
        raw_inputs = np.array(HOSTILE_TEXTS, dtype=object)
    served = serve_in_fresh_process(run_dir / "exports" / family / "1", raw_inputs, tmp_path)
    probabilities = np.array(served["probabilities"])
    assert np.isfinite(probabilities).all(), probabilities
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, keras_probabilities(run_dir / "run", raw_inputs), atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_printed_speed_counts_the_examples_trained(family, default_run):
    """An epoch cut to 12 steps trained at most 12 batches: the rate times the time says so."""
    stdout = (default_run(family) / "stdout.txt").read_text()
    found = re.search(r"epoch time ([\d.]+) s \(([\d.]+) examples/s, evaluation excluded\)", stdout)
    assert found, stdout[-2000:]
    examples = float(found.group(1)) * float(found.group(2))
    batch_size = config_lib.load_config(default_run(family) / "run" / "config.yaml").train.batch_size
    assert 0.5 * EPOCH_STEPS * batch_size < examples < 1.2 * EPOCH_STEPS * batch_size  # Printed times are rounded.


@pytest.mark.parametrize("family", FAMILIES)
def test_default_run_sets_the_op_threads_its_rule_chose(family, default_run):
    """`--intra_op_threads=auto` (trainers/op_threads.py), applied in a fresh process before TensorFlow starts."""
    run_dir = default_run(family)
    config = config_lib.load_config(run_dir / "run" / "config.yaml")
    threads, reason = op_threads.auto_threads("default", config.model_fields, config.train.batch_size,
                                              config.train.jit_compile)
    chosen = "one thread per op" if threads == 1 else "TensorFlow's default threads per op"
    assert f"Threads: {chosen}" in (run_dir / "stdout.txt").read_text()
    assert config.runtime.intra_op_threads == "auto"


@pytest.mark.parametrize("family", FAMILIES)
def test_mirrored_over_two_cpus_follows_the_default_loss_curve(family, default_run, data_dir, tmp_path):
    result = run_trainer(*_flags(family, tmp_path, data_dir, f"--params_override={_no_randomness(family)}",
                                 "--strategy=mirrored", "--cpu_devices=2"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Strategy: MirroredStrategy with 2 replica(s)" in result.stdout
    assert "Threads: TensorFlow's default threads per op" in result.stdout  # Measured for one replica only.
    _assert_trained_evaluated_exported(tmp_path, family)
    default_losses = losses_from_events(default_run(family) / "run")
    assert len(default_losses) == EPOCH_STEPS // 4 and np.isfinite(default_losses).all()
    np.testing.assert_allclose(losses_from_events(tmp_path / "run"), default_losses, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_two_workers_follow_the_default_loss_curve_and_only_the_chief_writes(family, default_run, data_dir, tmp_path):
    default_losses = losses_from_events(default_run(family) / "run")  # Also builds the dataset once.
    workers = _run_two_workers(_flags(family, tmp_path, data_dir, f"--params_override={_no_randomness(family)}",
                                      "--strategy=multi_worker"))
    for returncode, stdout, stderr in workers:
        assert returncode == 0, stderr[-3000:]
        assert "Strategy: CollectiveAllReduceStrategy with 2 replica(s)" in stdout  # MultiWorkerMirrored
    checksums = [next(line for line in stdout.splitlines() if line.startswith("Weights checksum:"))
                 for _, stdout, _ in workers]
    assert checksums[0] == checksums[1]
    (_, chief, _), (_, other, _) = workers
    assert "SavedModel:" in chief and "SavedModel:" not in other
    _assert_trained_evaluated_exported(tmp_path, family)
    losses = losses_from_events(tmp_path / "run")
    if zoo.get_spec(family).input_kind == "image":
        # The image pipeline shards the examples between workers (each shuffles its own half), so
        # its batches, and its curve, differ from one device's; text workers slice the same
        # global batches (length buckets) and follow it step by step.
        assert len(losses) == len(default_losses) and np.isfinite(losses).all()
    else:
        np.testing.assert_allclose(losses, default_losses, rtol=1e-4, atol=1e-5)


def test_mirrored_run_with_dropout(data_dir, tmp_path):
    """The shipped config unchanged (dropout on: each replica draws its own masks)."""
    result = run_trainer(*_flags("transformer", tmp_path, data_dir, "--strategy=mirrored", "--cpu_devices=2"))
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_trained_evaluated_exported(tmp_path, "transformer")


def test_mirrored_run_with_adversarial_training(data_dir, tmp_path):
    """`train.adversarial_epsilon` with XLA under MirroredStrategy: each replica perturbs its own
    copy of the token embeddings for the second pass, and no variable is written inside it."""
    result = run_trainer(*_flags("gru", tmp_path, data_dir, "--strategy=mirrored", "--cpu_devices=2", "--jit_compile",
                                 "--params_override=train.adversarial_epsilon=1.0"))
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_trained_evaluated_exported(tmp_path, "gru")
