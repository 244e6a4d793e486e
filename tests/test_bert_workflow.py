"""BERT's transfer-learning story from the command line: pretrain -> fine-tune -> export, presets, LoRA."""

import json

import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from cli_runs import run_trainer, serve_in_fresh_process
from trainers import config as config_lib
from trainers import tasks
from trainers.trainer import checkpointable_weights
from zoo.data.text import load_vocabulary
from zoo.presets import load_bert_preset

SMALL_BERT = "--params_override=model.hidden_dim=32,model.num_heads=2,model.intermediate_dim=64"
TEXTS = np.array(["I love this movie!", "the plot was dull", ""], dtype=object)
WORDS = ["movie", "plot", "cast", "was", "is", "good", "bad", "dull", "great", "love", "hate", "the", "this", "i"]


def pretrain(root, *flags):
    """A --task=pretrain run in `root/run` on local text files: 40 documents of 3 sentences."""
    rng = np.random.default_rng(0)
    documents = ["\n".join(" ".join(rng.choice(WORDS, size=6)) + "." for _ in range(3)) for _ in range(40)]
    (root / "corpus.txt").write_text("\n\n".join(documents) + "\n")
    model_dir = root / "run"
    result = run_trainer(
        "--model=bert", "--task=pretrain", f"--train_files={root / '*.txt'}", f"--model_dir={model_dir}",
        f"--export_dir={root / 'exports'}", "--epochs=1", "--steps_per_epoch=4", "--batch_size=8",
        "--sequence_length=32", SMALL_BERT + ",data.vocabulary_size=100,data.max_predictions=5", *flags,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return model_dir, result


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A masked-LM pretraining run (a config key of before the task section: data.max_predictions)."""
    return pretrain(tmp_path_factory.mktemp("pretrain"))


def test_pretraining_reports_masked_lm_and_next_sentence_accuracy_and_exports_nothing(pretrained):
    model_dir, result = pretrained
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert set(metrics) >= {"mlm_accuracy", "mlm_loss", "nsp_accuracy", "nsp_loss", "loss"}
    assert 0 <= metrics["mlm_accuracy"] <= 1 and 0 <= metrics["nsp_accuracy"] <= 1
    assert metrics["num_examples"] == 2 * 2  # Documents 0 and 20 held out, 2 pairs each.
    assert f"fine-tune it with --task=classify --init_checkpoint={model_dir}" in result.stdout
    assert not (model_dir.parent / "exports").exists()


def test_fine_tuning_starts_from_the_pretrained_encoder_and_vocabulary_and_serves(pretrained, data_dir, tmp_path):
    pretrain_dir, _ = pretrained
    model_dir, export_dir = tmp_path / "run", tmp_path / "exports"
    result = run_trainer(
        "--model=bert", f"--init_checkpoint={pretrain_dir}", f"--model_dir={model_dir}", f"--export_dir={export_dir}",
        f"--data_dir={data_dir}", "--epochs=1", "--steps_per_epoch=3", SMALL_BERT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Encoder initialised from {pretrain_dir / 'checkpoints' / 'ckpt-4'}" in result.stdout
    assert load_vocabulary(model_dir / "vocabulary.txt") == load_vocabulary(pretrain_dir / "vocabulary.txt")

    # The encoder's weights are the pretraining checkpoint's (its first weights: the encoder's, in order).
    config = config_lib.load_config(model_dir / "config.yaml")
    task = tasks.create_task(config, model_dir=model_dir)
    model = task.build_model(task.prepare_inputs())
    reader = tf.train.load_checkpoint(str(pretrain_dir / "checkpoints"))
    for index, weight in enumerate(model.encoder.weights):
        saved = reader.get_tensor(f"model/weights/{index}/.ATTRIBUTES/VARIABLE_VALUE")
        np.testing.assert_array_equal(weight.numpy(), saved)

    served = serve_in_fresh_process(export_dir / "bert" / "1", TEXTS, tmp_path)
    assert served["leaked"] == [] and np.asarray(served["probabilities"]).shape == (3, 2)


def test_a_pretraining_run_of_other_sizes_is_refused_in_one_line(pretrained, data_dir, tmp_path):
    pretrain_dir, _ = pretrained
    result = run_trainer(
        "--model=bert", f"--init_checkpoint={pretrain_dir}", f"--model_dir={tmp_path / 'run'}",
        f"--data_dir={data_dir}", SMALL_BERT + ",model.num_layers=3",
    )
    assert result.returncode == 2
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith(f"error: --init_checkpoint={pretrain_dir}: ")
    assert "is not a pretraining run of this model's sizes" in error


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    """A keras-hub BERT preset (random weights) with BERT's vocabulary layout: [UNK] at 100."""
    path = tmp_path_factory.mktemp("preset")
    vocabulary = ["[PAD]"] + [f"[unused{index}]" for index in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocabulary += WORDS + ["!", "."]
    keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64,
        max_sequence_length=64,
    ).save_to_preset(str(path))
    keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(str(path))
    return path


def test_lora_on_a_preset_trains_a_small_share_and_exports_merged_weights(preset_dir, data_dir, tmp_path):
    model_dir, export_dir = tmp_path / "run", tmp_path / "exports"
    result = run_trainer(
        "--model=bert", f"--preset={preset_dir}", "--lora_rank=2", f"--model_dir={model_dir}",
        f"--export_dir={export_dir}", f"--data_dir={data_dir}", "--epochs=1", "--steps_per_epoch=3",
        "--learning_rate=0.01",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("Model: BertClassifier")]
    assert line.endswith("(LoRA rank 2)")
    share = float(line.split("trainable (")[1].split("%")[0])
    assert 0 < share < 10
    preset = load_bert_preset(str(preset_dir))
    assert load_vocabulary(model_dir / "vocabulary.txt") == preset.vocabulary

    config = config_lib.load_config(model_dir / "config.yaml")
    task = tasks.create_task(config, model_dir=model_dir)
    inputs = task.prepare_inputs()
    model = task.build_model(inputs)
    tf.train.Checkpoint(model=checkpointable_weights(model)).restore(
        tf.train.latest_checkpoint(str(model_dir / "checkpoints"))
    ).expect_partial()
    # Frozen: the encoder's embeddings are still the preset's; the adapters moved.
    np.testing.assert_array_equal(
        model.encoder.token_embedding.embeddings.numpy(), preset.backbone.token_embedding.embeddings.numpy()
    )
    lora_b = [weight for weight in model.weights if "lora_kernel_b" in weight.path]
    assert lora_b and any(np.abs(weight.numpy()).max() > 0 for weight in lora_b)

    version_dir = export_dir / "bert" / "1"
    assert not [v.name for v in tf.saved_model.load(str(version_dir)).variables if "lora" in v.name]
    served = serve_in_fresh_process(version_dir, TEXTS, tmp_path)
    expected = tf.nn.softmax(model(inputs.preprocessor(tf.constant(TEXTS.tolist())), training=False)).numpy()
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)


def test_electra_detects_replaced_tokens_and_fine_tuning_starts_from_its_discriminator(data_dir, tmp_path):
    (tmp_path / "pretrain").mkdir()
    pretrain_dir, _ = pretrain(tmp_path / "pretrain", "--objective=electra")
    metrics = json.loads((pretrain_dir / "metrics.json").read_text())
    assert set(metrics) >= {"rtd_accuracy", "rtd_loss", "mlm_accuracy"} and "nsp_accuracy" not in metrics
    assert 0.5 < metrics["rtd_accuracy"] <= 1  # Most tokens are originals: even an untrained discriminator says so.

    model_dir, export_dir = tmp_path / "run", tmp_path / "exports"
    tuned = run_trainer("--model=bert", f"--init_checkpoint={pretrain_dir}", f"--model_dir={model_dir}",
                        f"--export_dir={export_dir}", f"--data_dir={data_dir}", "--epochs=1", "--steps_per_epoch=3",
                        SMALL_BERT)
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    assert "(ELECTRA's discriminator)" in tuned.stdout
    # The fine-tuned encoder starts as the discriminator (the pretrainer's first weights), not the generator.
    task = tasks.create_task(config_lib.load_config(model_dir / "config.yaml"), model_dir=model_dir)
    model = task.build_model(task.prepare_inputs())
    reader = tf.train.load_checkpoint(str(pretrain_dir / "checkpoints"))
    for index, weight in enumerate(model.encoder.weights):
        np.testing.assert_array_equal(weight.numpy(), reader.get_tensor(f"model/weights/{index}/.ATTRIBUTES/VARIABLE_VALUE"))
    served = serve_in_fresh_process(export_dir / "bert" / "1", TEXTS, tmp_path)
    assert np.asarray(served["probabilities"]).shape == (3, 2)


def test_the_shipped_pretraining_recipe_runs_on_own_text_files(tmp_path):
    """`--config=bert/pretrain_own_text` (the measured CPU recipe: packed sentence pairs with NSP,
    whole-word masking, no dropout, a 2-hour budget) trains on `--train_files`, not its offline corpus."""
    model_dir, result = pretrain(tmp_path, "--config=bert/pretrain_own_text")
    saved = config_lib.load_config(model_dir / "config.yaml")
    assert (saved.task.nsp, saved.task.packing, saved.task.whole_word_masking) == (True, True, True)
    assert saved.model["dropout"] == 0.0 and saved.train.train_hours == 2.0 and saved.train.clipnorm == 1.0
    assert saved.data.train_files == str(tmp_path / "*.txt")
    assert "Time budget: 2 h" in result.stdout
    assert json.loads((model_dir / "metrics.json").read_text())["nsp_accuracy"] >= 0
