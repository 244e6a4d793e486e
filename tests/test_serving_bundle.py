"""What one `trainers.run` export carries and writes beside itself: the model card and manifest (checked
against metrics.json), warm-up records from eval inputs, and the serving bundle (models.config,
batching.config, monitoring.config, docker-compose.yml) that name each other correctly."""

import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from cli_runs import run_trainer, serve_in_fresh_process
from zoo.serving import bundle, compatibility, config_protos, model_card, warmup

MODEL = "gru"


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """One short GRU run on the offline default data, exported: (model_dir, export_dir, its stdout)."""
    root = tmp_path_factory.mktemp("run")
    model_dir, export_dir = root / "run", root / "exports"
    result = run_trainer(f"--model={MODEL}", f"--model_dir={model_dir}", f"--export_dir={export_dir}",
                         f"--data_dir={data_dir}", "--epochs=1", "--steps_per_epoch=4", "--steps_per_loop=2")
    assert result.returncode == 0, result.stderr[-3000:]
    return model_dir, export_dir, result.stdout


def _read_bundle(export_dir):
    models = text_format.Parse((export_dir / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    batching = text_format.Parse((export_dir / "batching.config").read_text(), config_protos.batching_parameters())
    monitoring = text_format.Parse((export_dir / "monitoring.config").read_text(), config_protos.monitoring_config())
    compose = yaml.safe_load((export_dir / "docker-compose.yml").read_text())
    return models, batching, monitoring, compose


def test_export_prints_the_oldest_tf_serving_release_and_serves_in_a_fresh_process(trained, tmp_path):
    _, export_dir, stdout = trained
    assert "TF Serving: loads in TF Serving 2.11.0 to 2.20.0 (oldest release that loads it: 2.11.0)" in stdout
    served = serve_in_fresh_process(export_dir / MODEL / "1", np.array(["I love this movie!", ""], dtype=object),
                                    tmp_path)
    assert served["leaked"] == [] and len(served["class_id"]) == 2


def test_manifest_and_model_card_match_metrics_json_and_the_saved_model(trained):
    model_dir, export_dir, stdout = trained
    version_dir = export_dir / MODEL / "1"
    manifest = model_card.read_manifest(version_dir)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert manifest["metrics"] == metrics
    assert manifest["training"]["config"] == yaml.safe_load((model_dir / "config.yaml").read_text())
    assert manifest["training"]["dataset"]["source"] == "zoo_sentiment"
    assert manifest["labels"] == ["negative", "positive"]
    assert manifest["model"]["name"] == MODEL and manifest["model"]["class"] == "RecurrentClassifier"
    total = int(re.search(r"Model: RecurrentClassifier, ([\d,]+) of", stdout).group(1).replace(",", ""))
    assert manifest["parameters"] == {"total": total, "trainable": total}
    files = [path for path in version_dir.rglob("*") if path.is_file() and "assets.extra" not in path.parts]
    assert manifest["sizes"]["saved_model_bytes"] == sum(path.stat().st_size for path in files)
    assert 0 < manifest["sizes"]["variables_bytes"] < manifest["sizes"]["saved_model_bytes"]
    assert manifest["packages"]["tensorflow"] == tf.__version__
    assert manifest["signatures"]["serving_default"] == {
        "inputs": {"text": {"dtype": "string", "shape": [-1]}},
        "outputs": {"class_id": {"dtype": "int64", "shape": [-1]}, "probabilities": {"dtype": "float32", "shape": [-1, 2]}},
    }
    assert manifest["tf_serving"]["oldest"] == "2.11.0"
    assert manifest["tf_serving"]["releases"] == compatibility.tf_serving_releases()
    assert [op["op"] for op in manifest["tf_serving"]["non_core_ops"]] == [
        "CaseFoldUTF8", "FastWordpieceTokenizeWithOffsets", "RegexSplitWithOffsets"]
    assert any("32 WordPiece tokens" in limitation for limitation in manifest["limitations"])

    card = (version_dir / "assets.extra" / model_card.MODEL_CARD).read_text()
    assert card.startswith(f"# {MODEL}\n")
    assert f"| accuracy | {metrics['accuracy']:.4f} |" in card and f"| loss | {metrics['loss']:.4f} |" in card
    assert "oldest: **2.11.0**" in card and "0. negative" in card and "## Limitations" in card


def test_warmup_records_come_from_eval_texts_at_batch_1_and_the_batching_limit(trained):
    _, export_dir, _ = trained
    requests = warmup.read_warmup_requests(export_dir / MODEL / "1")
    batches = [tf.make_ndarray(request.inputs["text"]) for request in requests]
    assert [len(texts) for texts in batches] == [1, 1, warmup.LARGE_BATCH, warmup.LARGE_BATCH]
    assert len(batches[1][0]) >= max(len(text) for text in batches[2])  # The longest alone, then the shortest batch.
    assert all(text.strip() for texts in batches for text in texts)  # Real reviews, not placeholders.


def test_bundle_files_parse_and_name_each_other(trained):
    _, export_dir, _ = trained
    models, batching, monitoring, compose = _read_bundle(export_dir)
    service = compose["services"]["serving"]
    assert service["image"] == "tensorflow/serving:2.20.0"  # The newest release that loads every model.
    assert service["ports"] == ["8500:8500", "8501:8501"]
    host_dir, container_dir, mode = service["volumes"][0].split(":")
    assert (host_dir, container_dir, mode) == (".", "/models", "ro")  # The compose file's own directory.
    flags = dict(flag.lstrip("-").split("=", 1) for flag in service["command"])
    for flag in ("model_config_file", "batching_parameters_file", "monitoring_config_file"):
        path = pathlib.PurePosixPath(flags[flag])
        assert path.parent == pathlib.PurePosixPath(container_dir) and (export_dir / path.name).is_file(), flag
    assert flags["enable_batching"] == "true"
    assert [(config.name, config.base_path) for config in models.model_config_list.config] == [(MODEL, "/models/gru")]
    assert (export_dir / pathlib.PurePosixPath(models.model_config_list.config[0].base_path).name / "1").is_dir()
    assert batching.max_batch_size.value == warmup.LARGE_BATCH  # The warm-up's large batch is the largest formed.
    assert batching.batch_timeout_micros.value > 0 and batching.num_batch_threads.value > 0
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path == bundle.PROMETHEUS_PATH


def test_bundle_command_pins_a_release_and_writes_the_local_config_on_request(trained):
    _, export_dir, _ = trained
    command = [sys.executable, "-m", "zoo.serving", "bundle", str(export_dir)]
    result = subprocess.run([*command, "--tf_serving=2.15", "--local_config"], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("Serving bundle for TF Serving 2.15.1: ")
    models, _, _, compose = _read_bundle(export_dir)
    assert compose["services"]["serving"]["image"] == "tensorflow/serving:2.15.1"
    local = text_format.Parse((export_dir / bundle.LOCAL_MODELS_CONFIG).read_text(),
                              model_server_config_pb2.ModelServerConfig())
    assert [config.base_path for config in local.model_config_list.config] == [str((export_dir / MODEL).resolve())]
    assert models.model_config_list.config[0].base_path == "/models/gru"  # The container's file is unchanged.

    empty = subprocess.run([*command[:-1], str(export_dir / MODEL / "1" / "variables")], capture_output=True,
                           text=True, timeout=180)
    assert empty.returncode == 2
    assert empty.stderr.splitlines()[-1].endswith("holds no exported model (<model>/<version>/saved_model.pb)")
    assert "Traceback" not in empty.stderr
