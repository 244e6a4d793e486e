"""Fine-tuning on SST-2 from scratch, as a user waits for it: the zoo's whole command vs keras-hub's recipe.

    python -m benchmarks.finetune            # about 35 min; skips when ../shared/data/sst2 is absent
    python -m benchmarks.finetune --sizes=bert_tiny --no_markdown   # one size; BENCHMARKS.md untouched
    python -m benchmarks.finetune --zoo_flags=--jit_compile --no_markdown   # the zoo commands with XLA

For each model size, on GLUE SST-2 train (67,349 sentences) and dev (872), one epoch, with the same
model size, vocabulary size (at most 8,000 WordPiece tokens, each side learning its own from the
train split), sequence length 128, batch size, optimizer (AdamW, weight decay 0.01) and peak
learning rate, both sides measured whole:

- zoo: `python -m trainers.run --model=... --train_files=train.tsv --eval_files=dev.tsv --epochs=1`
  in a subprocess, timed from process start to exit (Python and TensorFlow start-up, vocabulary,
  tokenization, training, evaluation and the SavedModel export), with the run's own "Phases: ..."
  line (`trainers.phases`) and its epoch time.
- keras-hub: its recipe in this process (TensorFlow already imported, which favours it by the few
  seconds of start-up): `keras_hub.tokenizers.compute_word_piece_vocabulary` on the train split
  (the zoo learns its vocabulary with Hugging Face `tokenizers`' trainer), raw strings ->
  `BertTextClassifierPreprocessor(sequence_length=128)` -> `BertClassifier.fit` over a whole epoch
  (for the transformer: keras-hub `WordPieceTokenizer(sequence_length=128)` mapped over the data,
  then `TokenAndPositionEmbedding` + `TransformerEncoder` blocks + masked mean pool), compiled as
  the recipe does (`jit_compile="auto"`, which is no XLA on this CPU), then its dev accuracy. No
  export: the zoo's command does more.

The ratio is keras-hub's vocabulary + epoch + evaluation over the zoo's whole command; the epochs
alone are compared beside it. Writes `benchmarks/results/finetune/<UTC>.json` and BENCHMARKS.md's
finetune section.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from benchmarks import common
from trainers import config as config_lib
from trainers.phases import parse_summary

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["bert_tiny", "bert_mini", "transformer"], "Model sizes to compare.")
flags.DEFINE_string("data", str(common.REPOSITORY.parent / "shared" / "data" / "sst2"), "GLUE SST-2 folder.")
flags.DEFINE_list("zoo_flags", [], "Flags added to every zoo command, e.g. --zoo_flags=--jit_compile (XLA).")
flags.DEFINE_bool("no_markdown", False, "Only write the result JSON; leave BENCHMARKS.md alone (benchmarks/gpu_check.sh).")
flags.DEFINE_string("markdown_from", None, "Measure nothing: rewrite BENCHMARKS.md's finetune section from a saved "
                    "result (a path, or 'latest').")

SEQUENCE_LENGTH = 128
VOCABULARY_SIZE = 8000
# name -> (zoo model, model overrides, batch size, peak learning rate)
SIZES = {
    "bert_tiny": ("bert", dict(num_layers=2, num_heads=2, hidden_dim=128, intermediate_dim=512), 32, 5e-4),
    "bert_mini": ("bert", dict(num_layers=4, num_heads=4, hidden_dim=256, intermediate_dim=1024), 32, 5e-4),
    "transformer": ("transformer", dict(num_layers=2, num_heads=4, hidden_dim=128, intermediate_dim=256), 64, 5e-4),
}


def read_tsv(path):
    """GLUE's TSV (no quoting): sentences and integer labels."""
    lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()[1:]
    sentences, labels = zip(*(line.split("\t") for line in lines))
    return list(sentences), [int(label) for label in labels]


def run_zoo(size, model_dir, data_dir, extra_flags=()):
    """One epoch through trainers.run (with `extra_flags` added), vocabulary learned by the run; its
    epoch time, dev accuracy, phases and wall time (process start to exit)."""
    model, overrides, batch_size, learning_rate = SIZES[size]
    override = ",".join([f"model.{key}={value}" for key, value in overrides.items()]
                        + [f"data.vocabulary_size={VOCABULARY_SIZE}"])
    command = [
        sys.executable, "-m", "trainers.run", f"--model={model}",
        f"--train_files={data_dir}/train.tsv", f"--eval_files={data_dir}/dev.tsv", "--epochs=1",
        f"--batch_size={batch_size}", f"--learning_rate={learning_rate}", f"--sequence_length={SEQUENCE_LENGTH}",
        f"--model_dir={model_dir}", f"--export_dir={model_dir}/exports", f"--params_override={override}",
        *extra_flags,
    ]
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=common.REPOSITORY, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if finished.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{finished.stderr[-3000:]}")
    epoch = re.search(r"epoch time ([\d.]+) s", finished.stdout)
    buckets = re.search(r"Length buckets[^:]*: (.+)", finished.stdout)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    return {
        "command": " ".join(command[1:]),
        "epoch_seconds": float(epoch.group(1)),
        "process_wall_seconds": round(wall, 1),
        "dev_accuracy": metrics["accuracy"],
        "buckets": buckets.group(1) if buckets else None,
        "steps": metrics["global_step"],
        "phases_seconds": parse_summary(finished.stdout),
        # As the run resolved it (`jit_compile: auto` or a flag), saved in its config.
        "jit_compile": config_lib.load_config(model_dir / "config.yaml").train.jit_compile,
    }


PEERS = {"keras_hub": "auto", "keras_hub_xla": True}  # name -> jit_compile


def build_peer(size, vocabulary, jit_compile):
    """keras-hub's recipe for `size`: (model taking raw strings, or a tokenizer + model)."""
    import keras
    import keras_hub

    model_name, overrides, _, learning_rate = SIZES[size]
    if model_name == "bert":
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=len(vocabulary), max_sequence_length=SEQUENCE_LENGTH, dropout=0.1, **overrides
        )
        tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
        preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=SEQUENCE_LENGTH)
        model = keras_hub.models.BertClassifier(backbone, num_classes=2, preprocessor=preprocessor, dropout=0.1)
        preprocess = None  # BertClassifier.fit maps its preprocessor over the raw strings.
    else:
        tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=vocabulary, sequence_length=SEQUENCE_LENGTH, lowercase=True
        )
        token_ids = keras.Input([SEQUENCE_LENGTH], dtype="int32")
        padding_mask = keras.ops.not_equal(token_ids, 0)
        x = keras_hub.layers.TokenAndPositionEmbedding(len(vocabulary), SEQUENCE_LENGTH, overrides["hidden_dim"])(token_ids)
        for _ in range(overrides["num_layers"]):
            x = keras_hub.layers.TransformerEncoder(overrides["intermediate_dim"], overrides["num_heads"], dropout=0.1)(
                x, padding_mask=padding_mask
            )
        x = keras.layers.GlobalAveragePooling1D()(x, mask=padding_mask)
        model = keras.Model(token_ids, keras.layers.Dense(2)(x))
        preprocess = tokenizer
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model, preprocess


def peer_dataset(preprocess, sentences, labels, batch_size, seed):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((sentences, labels)).shuffle(len(sentences), seed=seed)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    if preprocess is not None:  # Tokenized every epoch, as the recipe does.
        dataset = dataset.map(lambda text, label: (preprocess(text), label), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def time_peer_steps(model, dataset, steps):
    """Per-step seconds of `fit` over `steps` batches (batch end to batch end, the first dropped)."""
    import keras

    stamps = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    model.fit(dataset.take(steps + 1), epochs=1, verbose=0, callbacks=[Stamp()])
    return [later - earlier for earlier, later in zip(stamps, stamps[1:])]


def recipe_epoch(model, dataset):
    """`fit` over one whole epoch of `dataset`: its wall seconds and per-step seconds (batch end to
    batch end, so the first step's tracing is left out of the steps but not of the wall time)."""
    import keras

    stamps = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    started = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0, callbacks=[Stamp()])
    return time.perf_counter() - started, [later - earlier for earlier, later in zip(stamps, stamps[1:])]


def run_recipe(size, train, dev):
    """keras-hub's recipe for `size`, whole: vocabulary, one epoch, dev accuracy; each timed."""
    import keras_hub
    import numpy as np
    import tensorflow as tf

    from zoo.data.text import RESERVED_TOKENS

    _, _, batch_size, _ = SIZES[size]
    started = time.perf_counter()
    vocabulary = keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(train[0]).batch(1024), VOCABULARY_SIZE, lowercase=True,
        reserved_tokens=RESERVED_TOKENS)
    vocabulary_seconds = time.perf_counter() - started
    model, preprocess = build_peer(size, vocabulary, PEERS["keras_hub"])
    epoch_seconds, step_seconds = recipe_epoch(model, peer_dataset(preprocess, *train, batch_size, seed=0))
    started = time.perf_counter()
    inputs = tf.constant(dev[0]) if preprocess is None else preprocess(tf.constant(dev[0]))
    logits = model.predict(inputs, batch_size=128, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=-1) == np.asarray(dev[1])))
    evaluation_seconds = time.perf_counter() - started
    return {
        "jit_compile": PEERS["keras_hub"],
        "vocabulary_size": len(vocabulary),
        "steps": len(step_seconds) + 1,
        "vocabulary_seconds": round(vocabulary_seconds, 1),
        "epoch_seconds": round(epoch_seconds, 1),
        "evaluation_seconds": round(evaluation_seconds, 1),
        "total_seconds": round(vocabulary_seconds + epoch_seconds + evaluation_seconds, 1),
        "median_step_seconds": round(common.median(step_seconds), 4),
        "step_seconds_p10_p90": [round(common.percentile(step_seconds, q), 4) for q in (0.1, 0.9)],
        "examples_per_second": round(len(train[0]) / epoch_seconds, 1),
        "dev_accuracy": accuracy,
    }


def compare(size, train, dev, data_dir, work_dir):
    """The zoo's whole command, then keras-hub's whole recipe, for one size."""
    model_dir = work_dir / size
    model_dir.mkdir(parents=True)
    zoo = run_zoo(size, model_dir, data_dir, FLAGS.zoo_flags)
    zoo["examples_per_second"] = round(len(train[0]) / zoo["epoch_seconds"], 1)
    keras_hub = run_recipe(size, train, dev)
    return {
        "size": size,
        "batch_size": SIZES[size][2],
        "zoo": zoo,
        "keras_hub": keras_hub,
        "whole_speedup": round(keras_hub["total_seconds"] / zoo["process_wall_seconds"], 2),
        "epoch_speedup": round(keras_hub["epoch_seconds"] / zoo["epoch_seconds"], 2),
        "accuracy_difference_points": round(100 * (zoo["dev_accuracy"] - keras_hub["dev_accuracy"]), 1),
    }


def zoo_xla(document, zoo) -> bool:
    """Whether the zoo command trained with XLA (documents from before `jit_compile: auto` saved
    only the flags: XLA there meant `--jit_compile`)."""
    return zoo.get("jit_compile", "--jit_compile" in document.get("zoo_flags", []))


def markdown(document):
    rows = []
    for result in document["results"]:
        zoo, peer = result["zoo"], result["keras_hub"]
        phases = ", ".join(f"{name} {seconds:.1f}" for name, seconds in zoo["phases_seconds"].items() if name != "total")
        rows.append([
            result["size"],
            f"**{zoo['process_wall_seconds']:.0f} s** ({phases})",
            f"**{peer['total_seconds']:.0f} s** (vocabulary {peer['vocabulary_seconds']:.1f}, epoch "
            f"{peer['epoch_seconds']:.1f}, evaluation {peer['evaluation_seconds']:.1f})",
            f"**{result['whole_speedup']:.1f}x**",
            f"{zoo['epoch_seconds']:.0f} s / {peer['epoch_seconds']:.0f} s ({result['epoch_speedup']:.1f}x)",
            f"{zoo['dev_accuracy']:.4f} / {peer['dev_accuracy']:.4f} ({result['accuracy_difference_points']:+.1f})",
            zoo["buckets"],
            "on" if zoo_xla(document, zoo) else "off",
        ])
    table = common.markdown_table(
        ["model", "zoo: whole command (its phases, s)", "keras-hub recipe: vocabulary + epoch + evaluation",
         "whole-run ratio", "epoch alone: zoo / keras-hub", "dev accuracy: zoo / keras-hub (points)",
         "zoo's buckets (tokens, percentile)", "zoo's XLA"],
        rows,
    )
    added = document.get("zoo_flags", [])
    xla = ("XLA: `--jit_compile` added" if "--jit_compile" in added
           else "XLA where `jit_compile: auto` chose it, as the last column says")
    return f"""## Fine-tuning on SST-2: zoo vs keras-hub's recipe (`python -m benchmarks.finetune`)

{common.environment_line(document)}

One epoch of GLUE SST-2 train (67,349 sentences), from scratch, float32, same model size, vocabulary size
(at most {VOCABULARY_SIZE:,} WordPiece tokens, each side learning its own from train: keras-hub with its
`compute_word_piece_vocabulary`, the zoo with Hugging Face `tokenizers`' trainer), batch size, AdamW and learning rate on both sides; sequence length 128.
Both sides measured over the whole epoch. **zoo**: `trainers.run --train_files=train.tsv --eval_files=dev.tsv
--epochs=1` in a subprocess, timed from process start to exit: start-up, vocabulary, tokenization (once,
into length buckets), training ({document['zoo_steps_per_loop']} steps a `tf.function` call, {xla}),
evaluation and the SavedModel export, its phases as the run printed them. **keras-hub**: raw strings ->
`BertTextClassifierPreprocessor(sequence_length=128)` -> `BertClassifier.fit` (transformer: `WordPieceTokenizer`
-> `TokenAndPositionEmbedding` + 2 `TransformerEncoder` + masked mean pool), padded to 128, compiled as the
recipe does (`jit_compile="auto"`: no XLA on this CPU), in the benchmark's process (no start-up counted,
no export).

{table}

Dev accuracy is one run each (872 sentences: a standard error of about 1.3 points). Both sides start from
random weights (no pretraining). `tests/data/test_buckets.py` shows that buckets change no logit: on the
same examples, bucketed batches give the same logits and per-example losses as padding to 128 (within 1e-5).
"""


def main(argv):
    del argv
    if FLAGS.markdown_from:
        return common.markdown_from("finetune", markdown, FLAGS.markdown_from)
    data_dir = pathlib.Path(FLAGS.data)
    if not (data_dir / "train.tsv").is_file():
        print(f"skipped: no SST-2 at {data_dir}")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    train, dev = read_tsv(data_dir / "train.tsv"), read_tsv(data_dir / "dev.tsv")
    document = common.new_document("finetune", vocabulary_size=VOCABULARY_SIZE, zoo_steps_per_loop=20,
                                   zoo_flags=FLAGS.zoo_flags, results=[])
    with tempfile.TemporaryDirectory(prefix="zoo-finetune-") as work:
        for size in FLAGS.sizes:
            result = compare(size, train, dev, data_dir, pathlib.Path(work))
            print(json.dumps(result), flush=True)
            document["results"].append(result)
    common.publish(document, markdown, write_markdown=not FLAGS.no_markdown)


if __name__ == "__main__":
    app.run(main)
