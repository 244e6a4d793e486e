"""End to end: `trainers.run --train_files=... --eval_files=...` on a user's own TSV, to a served model."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the WordPiece ops of the exported graph)

REPO = pathlib.Path(__file__).resolve().parent.parent
POSITIVE = ["a gripping , funny film", "great acting", "i loved it", "superb and moving", "very good plot"]
NEGATIVE = ["dull and slow", "a boring mess", "i hated it", "bad acting", "the plot is not good"]


def run_trainer(*flags):
    return subprocess.run([sys.executable, "-m", "trainers.run", *flags], cwd=REPO, capture_output=True,
                          text=True, timeout=400)


def write_tsv(path, rows):
    path.write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("own_files")
    rows = [(text, "positive") for text in POSITIVE] + [(text, "negative") for text in NEGATIVE]
    train = write_tsv(directory / "train.tsv", rows * 8)
    dev = write_tsv(directory / "dev.tsv", rows)
    result = run_trainer(
        "--model=bert", f"--train_files={train}", f"--eval_files={dev}", "--epochs=1", "--batch_size=8",
        f"--model_dir={directory / 'run'}", f"--export_dir={directory / 'exports'}", "--steps_per_loop=5",
        "--params_override=model.num_layers=1,model.hidden_dim=32,model.intermediate_dim=64,data.vocabulary_size=200",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return directory, result.stdout


def test_trains_on_own_files_and_prints_epoch_time_and_dev_accuracy(trained):
    directory, stdout = trained
    assert "Length buckets" in stdout
    assert "epoch time" in stdout and "examples/s" in stdout
    assert "Eval metrics: accuracy=" in stdout and "on 10 examples" in stdout
    assert (directory / "run" / "labels.txt").read_text() == "negative\npositive\n"
    assert "Exported model's answer for 'I love this movie!': " in stdout  # A label name, not an id.
    assert any(stdout.count(f"answer for 'I love this movie!': {name}") for name in ("negative", "positive"))


def test_served_probabilities_do_not_depend_on_the_other_texts_of_a_request(trained):
    directory, _ = trained
    serving = tf.saved_model.load(str(directory / "exports" / "bert" / "1")).signatures["serving_default"]
    short = "a gripping film"
    alone = serving(text=tf.constant([short]))["probabilities"].numpy()
    batched = serving(text=tf.constant([short, "not bad at all " * 40]))["probabilities"].numpy()
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-5)


def test_a_bad_file_is_one_line_on_stderr_and_exit_code_2(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\nfine\t1\nbroken row\n")
    result = run_trainer("--model=bert", f"--train_files={train}", f"--eval_files={train}",
                         f"--model_dir={tmp_path / 'run'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(f"{train} line 3: 1 fields, but the header has 2 "
                                                           "('\\t'-separated: sentence, label)")


def test_sentence_pairs_train_and_the_export_takes_text_and_text_pair(tmp_path):
    rows = [(a, b, int(a.split()[0] == b.split()[0])) for a in POSITIVE + NEGATIVE for b in POSITIVE[:3] + NEGATIVE[:3]]
    for name, subset in (("train.tsv", rows), ("dev.tsv", rows[:12])):
        (tmp_path / name).write_text("sentence1\tsentence2\tlabel\n" + "".join(f"{a}\t{b}\t{y}\n" for a, b, y in subset))
    result = run_trainer(
        "--model=bert", f"--train_files={tmp_path / 'train.tsv'}", f"--eval_files={tmp_path / 'dev.tsv'}",
        "--epochs=1", "--batch_size=8", f"--model_dir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'exports'}",
        "--params_override=model.num_layers=1,model.hidden_dim=32,model.intermediate_dim=64,data.vocabulary_size=200",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Exported model's answer for the first eval pair: " in result.stdout
    serving = tf.saved_model.load(str(tmp_path / "exports" / "bert" / "1")).signatures["serving_default"]
    assert set(serving.structured_input_signature[1]) == {"text", "text_pair"}
    outputs = serving(text=tf.constant(["great acting", "i hated it"]), text_pair=tf.constant(["great plot", "i loved it"]))
    assert outputs["probabilities"].shape == (2, 2)
