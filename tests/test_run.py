"""End to end: `python -m trainers.run` trains, evaluates and exports every model offline.

The SavedModel is then loaded in a fresh process that imports only TensorFlow (and
tensorflow_text, whose ops the tokenizer uses), as TF Serving would, and its probabilities
must equal the Keras model's restored from the run's checkpoint, on the same raw inputs.
"""

import json
import pathlib
import re

import numpy as np
import pytest

import zoo
from cli_runs import keras_probabilities, run_trainer, serve_in_fresh_process
from trainers.phases import parse_summary
from trainers.run import same_family_model

REPO = pathlib.Path(__file__).resolve().parent.parent
SAMPLE_TEXTS = ["I love this movie!", "a dull , boring and painfully slow film .", "", "not bad at all " * 40]
STEPS = 6


# One BERT size read from its family's config (trainers/configs/bert/); every family's own name runs in
# tests/test_strategies.py, under each strategy.
@pytest.mark.parametrize("model_name", ["bert_mini"])
def test_trainer_trains_evaluates_exports_and_the_export_serves_alone(model_name, data_dir, tmp_path):
    model_dir, export_dir = tmp_path / "run", tmp_path / "exports"
    result = run_trainer(
        f"--model={model_name}",
        f"--model_dir={model_dir}",
        f"--export_dir={export_dir}",
        f"--data_dir={data_dir}",
        "--epochs=1",
        f"--steps_per_epoch={STEPS}",
        "--steps_per_loop=4",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Eval metrics: accuracy=" in result.stdout
    assert f"SavedModel: {export_dir / model_name / '1'}" in result.stdout
    assert "Exported model's answer for" in result.stdout
    # The run times its phases (trainers.phases): each one named, none overlapping another.
    phases = parse_summary(result.stdout)
    assert list(phases) == ["startup", "data", "vocabulary", "model", "training", "evaluation", "export", "total"]
    phase_seconds = [seconds for name, seconds in phases.items() if name != "total"]
    assert sum(phase_seconds) <= phases["total"] + 0.05 * len(phase_seconds)  # Each rounded to 0.1 s.
    assert "Vocabulary: learning 1000 WordPiece tokens from 4,000 texts ..." in result.stdout
    assert "XLA: on for the train step (--jit_compile=auto on a CPU and an encoder 256 wide" in result.stdout

    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["global_step"] == STEPS
    # The final weights were scored after their epoch; the run reports that evaluation, not a second one.
    after_epoch = re.search(r"^Eval after epoch 1: accuracy=([\d.]+)", result.stdout, re.MULTILINE)
    assert after_epoch and f"as after its epoch (step {STEPS})" in result.stdout
    assert float(after_epoch.group(1)) == pytest.approx(metrics["accuracy"], abs=1e-4)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and np.isfinite(metrics["loss"])
    assert metrics["num_examples"] > 0
    for event_dir in ("train", "eval"):
        assert list((model_dir / event_dir).glob("events.out.tfevents.*")), f"no TensorBoard events in {event_dir}"
    assert (model_dir / "config.yaml").read_text().startswith("# Resolved by trainers.run with python")

    version_dir = export_dir / model_name / "1"
    assert (version_dir / "saved_model.pb").is_file()
    if zoo.get_spec(model_name).input_kind == "image":
        raw_inputs = np.random.default_rng(0).integers(0, 256, [3, 8, 8, 1]).astype(np.float32)
    else:
        raw_inputs = np.array(SAMPLE_TEXTS, dtype=object)
    served = serve_in_fresh_process(version_dir, raw_inputs, tmp_path)
    assert served["leaked"] == []
    assert served["input_name"] == ("image" if raw_inputs.dtype != object else "text")

    expected = keras_probabilities(model_dir, raw_inputs)
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert served["class_id"] == expected.argmax(-1).tolist()


def test_rerun_resumes_and_eval_and_export_modes_reuse_the_run(data_dir, tmp_path):
    run_dir, export_dir = tmp_path / "run", tmp_path / "exports"
    flags = [
        "--model=cnn",
        f"--model_dir={run_dir}",
        f"--export_dir={export_dir}",
        f"--data_dir={data_dir}",
        "--epochs=2",
        "--steps_per_epoch=3",
    ]
    first = run_trainer(*flags)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("Eval after epoch") == 2
    best = json.loads((run_dir / "best" / "metrics.json").read_text())
    assert best["global_step"] in (3, 6)
    trained = json.loads((run_dir / "metrics.json").read_text())

    second = run_trainer(*flags)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resuming from" in second.stdout and "at step 6" in second.stdout
    resumed = json.loads((run_dir / "metrics.json").read_text())
    assert resumed["global_step"] == 6
    # The restored weights are the trained ones: evaluation gives the same loss.
    assert resumed["loss"] == pytest.approx(trained["loss"], abs=1e-6)
    # A rerun that found nothing to train still reports the run's training time, from the checkpoint.
    assert resumed["train_seconds"] == pytest.approx(trained["train_seconds"]) and trained["train_seconds"] > 0
    assert f"Training since step 0, over every call of this run: {trained['train_seconds']:.1f} s" in second.stdout

    evaluated = run_trainer(*flags, "--mode=eval")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert f"Evaluating {run_dir / 'checkpoints' / 'ckpt-6'}" in evaluated.stdout
    assert "SavedModel:" not in evaluated.stdout

    exported = run_trainer(*flags, "--mode=export")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert f"Exporting {run_dir / 'best' / 'ckpt-'}{best['global_step']}" in exported.stdout
    assert sorted(p.name for p in (export_dir / "cnn").iterdir()) == ["1", "2", "3"]

    # --restore_best: the final metrics and the export are the best evaluation's weights.
    restored = run_trainer(*flags, "--restore_best")
    assert restored.returncode == 0, restored.stderr[-3000:]
    assert f"Restoring the best evaluation's weights: {run_dir / 'best' / 'ckpt-'}{best['global_step']}" in restored.stdout
    final = json.loads((run_dir / "metrics.json").read_text())
    assert final["global_step"] == best["global_step"]
    assert final["loss"] == pytest.approx(best["loss"], abs=1e-6)
    assert sorted(p.name for p in (export_dir / "cnn").iterdir()) == ["1", "2", "3", "4"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--model=bret"], "unknown model 'bret' (did you mean bert?); known models: bert, bert_base, bert_medium, bert_mini, bert_small, bert_tiny, bow, cnn, gru, lstm, transformer"),
        (["--model=cnn", "--batch_size=-4"], "train.batch_size must be a positive integer, got -4"),
        (["--model=cnn", "--strategy=gpu_cluster"], "--strategy must be one of default, one_device, mirrored"),
        (["--model=cnn", "--dataset=zoo_sentiment"], "--dataset=zoo_sentiment holds text but model cnn reads image"),
        (["--model=bert", "--sequence_length=1024"], "data.sequence_length=1024 exceeds model.max_sequence_length=512"),
        (["--model=gru", "--lora_rank=4"], "--preset, --init_checkpoint and --lora_rank are for BERT models"),
        (["--model=cnn", "--task=pretrain"], "--task=pretrain trains BERT's masked LM and next sentence prediction"),
        (["--model=bert", "--init_checkpoint=/nonexistent"], "--init_checkpoint=/nonexistent holds no vocabulary.txt"),
        (["--model=bert", "--preset=/nonexistent"], "--preset=/nonexistent could not be loaded as a keras-hub BERT preset"),
        (["--model=bert", "--task=pretrain", "--train_files=/nonexistent/*.txt"], "--train_files=/nonexistent/*.txt matches no file"),
        (["--model=cnn", "--mixed_precision=fp8"], "runtime.mixed_precision must be one of float32, mixed_float16"),
        (["--model=cnn", "--intra_op_threads=-1"], "runtime.intra_op_threads must be auto or a number of threads >= 0"),
        (["--model=cnn", "--params_override=train.jit_compile=fast"], "train.jit_compile must be true, false or auto, got 'fast'"),
        (["--model=cnn", "--params_override=train.bach_size=3"], "unknown config key train.bach_size"),
        (["--model=cnn", "--mode=eval"], "holds no checkpoint; train first"),
        (["--model=cnn", "--strategy=tpu", "--tpu=local"], "--strategy=tpu: no TPU reachable at --tpu=local"),
        (["--model=bert", "--params_override=model.hidden_dim=30,model.num_heads=4"],
         "hidden_dim=30 must be divisible by num_heads=4"),
        (["--model=gru", "--params_override=train.decay=exponential"], "train.decay must be one of cosine, linear"),
        (["--model=transformer", "--params_override=model.dropout=1.5"],
         "model.dropout must be in [0, 1) (model 'transformer'), got 1.5"),
        (["--model=cnn", "--learning_rate=fast"], "error: flag --learning_rate=fast: could not convert string to float"),
        (["--model=gru", "--task=distill"], "task.teacher is required by --task=distill: --task=distill --teacher=PATH"),
        (["--model=gru", "--teacher=/x"], "task.teacher is a field of --task=distill, not of --task=classify"),
        (["--model=gru", "--task=distill", "--teacher=/nonexistent"],
         "--teacher=/nonexistent is neither a SavedModel, an export base (<export_dir>/<model>) nor a trained run's"),
        (["--model=gru", "--task=distill", "--teacher=/x", "--alpha=1.5"], "task.alpha must be in [0, 1], got 1.5"),
        (["--config=bert/sst2_local", "--model=gru"],
         "--model=gru contradicts --config's model.name=bert; --model may only name another size of the same family"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(flags, message, data_dir, tmp_path):
    result = run_trainer(*flags, f"--model_dir={tmp_path / 'run'}", f"--data_dir={data_dir}", timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_model_flag_picks_another_size_of_the_configs_family():
    assert same_family_model("bert_mini", "bert") == "bert_mini"  # `--config=bert/sst2_local --model=bert_mini`
    assert same_family_model("lstm", "gru") == "lstm"  # One class, another registered variant.


def test_a_config_file_with_a_wrongly_typed_field_is_one_line(data_dir, tmp_path):
    config = tmp_path / "bert.yaml"
    config.write_text("model: {name: bert, num_layers: two}\n")
    result = run_trainer(f"--config={config}", f"--model_dir={tmp_path / 'run'}", f"--data_dir={data_dir}", timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == "error: model.num_layers must be int (model 'bert'), got 'two'"


@pytest.mark.parametrize("flag", ["--model_dir", "--export_dir"])
@pytest.mark.parametrize("under_a_file", [False, True])
def test_an_output_directory_that_cannot_be_created_is_refused_before_training(flag, under_a_file, data_dir, tmp_path):
    """An existing file, or a path under one: one line and exit 2, before any data or model is built."""
    existing_file = tmp_path / "a_file"
    existing_file.write_text("not a directory")
    path = existing_file / "sub" if under_a_file else existing_file
    directories = {"--model_dir": tmp_path / "run", "--export_dir": tmp_path / "exports", flag: path}
    result = run_trainer("--model=gru", *(f"{name}={value}" for name, value in directories.items()),
                         f"--data_dir={data_dir}", timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    reason = "Not a directory" if under_a_file else "File exists"
    assert f"error: {flag}={path} cannot be used as a directory ({reason})" in result.stderr
    assert "Traceback" not in result.stderr and "Epoch" not in result.stdout
    assert not (tmp_path / "run" / "config.yaml").exists()


def _download_host_reachable():
    import socket

    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=3).close()
        return True
    except OSError:
        return False


def test_real_dataset_without_network_is_one_line_naming_the_offline_default(tmp_path):
    if _download_host_reachable():
        pytest.skip("the network is up here: tfds would download mnist instead of failing")
    result = run_trainer("--model=cnn", "--dataset=mnist", f"--data_dir={tmp_path}", f"--model_dir={tmp_path / 'run'}")
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1
    assert "dataset 'mnist' is not prepared" in error_lines[0]
    assert "'zoo_digits'" in error_lines[0] and "--data_dir" in error_lines[0]
    assert "Traceback" not in result.stderr


def test_quantized_export_models_config_and_local_predict_mode(data_dir, tmp_path):
    export_dir = tmp_path / "exports"
    common = [f"--export_dir={export_dir}", f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'run'}", "--model=gru"]
    trained = run_trainer(*common, "--epochs=1", "--steps_per_epoch=5", "--quantize=int8")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert f"SavedModel: {export_dir / 'gru_int8' / '1'}" in trained.stdout
    sizes = [line for line in trained.stdout.splitlines() if line.startswith("float32: ")]
    assert len(sizes) == 1 and "; int8: " in sizes[0], trained.stdout[-2000:]
    models_config = (export_dir / "models.config").read_text()
    assert 'name: "gru"' in models_config and 'name: "gru_int8"' in models_config

    predicted = run_trainer(*common, "--mode=predict", "--text=I love this movie!", "--text=a dull film")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    answers = [line for line in predicted.stdout.splitlines() if line.startswith("'")]
    assert len(answers) == 2 and answers[0].startswith("'I love this movie!': class ")


@pytest.mark.parametrize("model_name, flag, policy", [
    ("bert", "mixed_bfloat16", "mixed_bfloat16"),
    ("cnn", "mixed_float16", "mixed_float16"),
    ("cnn", "auto", "float32"),  # A model without attention stays float32 on a CPU (trainers/precision.py).
])
def test_mixed_precision_trains_and_exports_float32_probabilities(model_name, flag, policy, data_dir, tmp_path):
    """bfloat16 runs as is; float16 goes through the LossScaleOptimizer; logits stay float32; the
    run's config records the policy that `auto` chose."""
    result = run_trainer(
        f"--model={model_name}", f"--mixed_precision={flag}", "--epochs=1", "--steps_per_epoch=4",
        f"--model_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}", f"--data_dir={data_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.isfinite(json.loads((tmp_path / "run" / "metrics.json").read_text())["loss"])
    assert "Exported model's answer for" in result.stdout
    assert f"mixed_precision: {policy}" in (tmp_path / "run" / "config.yaml").read_text()
    if flag == "auto":
        assert f"Precision: {policy} (--mixed_precision=auto on a CPU" in result.stdout


def test_flagfile_one_device_strategy_and_override_precedence(data_dir, tmp_path):
    flagfile = tmp_path / "run.flags"
    flagfile.write_text(
        "--model=cnn\n--strategy=one_device\n--epochs=1\n--steps_per_execution=2\n--steps_per_epoch=2\n"
        "--params_override=train.epochs=3,train.batch_size=16\n"
        f"--model_dir={tmp_path / 'run'}\n--export_dir={tmp_path / 'exports'}\n--data_dir={data_dir}\n"
    )
    result = run_trainer(f"--flagfile={flagfile}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Strategy: OneDeviceStrategy with 1 replica(s)" in result.stdout
    resolved = (tmp_path / "run" / "config.yaml").read_text()
    assert "steps_per_loop: 2" in resolved
    # A direct flag (--epochs=1) wins over --params_override, which wins over the YAML (batch 32).
    assert "  epochs: 1\n" in resolved and "  batch_size: 16\n" in resolved
