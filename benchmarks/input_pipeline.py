"""Batches/s of each model's tfds input pipeline alone, against the rate its train step uses them.

    python -m benchmarks.input_pipeline                  # offline datasets, and *_local where present
    python -m benchmarks.input_pipeline --models=bert,cnn --quick

For every (model, dataset) pair with a config in `trainers/configs/<model>/<dataset>.yaml`, the pipeline is
exactly the one `trainers.run` trains from: `trainers.tasks` (the task's `prepare_inputs`: (tfds ->
`zoo.data.pipeline.make_input_fn` with the model's preprocessor: WordPiece tokenization or pixel
casting -> cache -> shuffle -> repeat -> batch -> prefetch), for one replica.

- first epoch: the seconds to the first batch (the shuffle buffer fills with 10,000 examples, or
  the whole split, before anything comes out), then batches/s for the rest of the epoch while the
  pipeline reads tfds, decodes, tokenizes and fills its cache (once per run);
- later epochs: batches/s from the in-memory cache (shuffle and batch only);
- model: train steps/s of the zoo Trainer's loop on one batch of that pipeline (the config's
  XLA setting, `steps_per_loop` calls), measured in the same process.

The target is a pipeline at least 10x faster than the model consumes. Both are measured alone:
while training, the pipeline and the step share the same cores.
"""

import argparse
import pathlib
import tempfile
import time

from benchmarks import common

common.quiet_tensorflow()

import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from absl import logging  # noqa: E402

from trainers import config as config_lib  # noqa: E402
from trainers import tasks, xla  # noqa: E402
from trainers.optimization import create_optimizer  # noqa: E402
from trainers.trainer import Trainer  # noqa: E402
from zoo.data import local  # noqa: E402

NAME = "input_pipeline"
MODELS = ["cnn", "gru", "lstm", "transformer", "bert"]
TARGET_RATIO = 10.0


def local_data_present(dataset) -> bool:
    folder = {"sst2_local": "sst2", "mnist_local": "mnist"}[dataset]
    return (local.shared_data_dir() / folder).is_dir()


def config_paths(models, include_local):
    """(model, dataset, config path): each model's offline config, and its *_local one if asked."""
    for model in models:
        yield model, "offline", config_lib.default_config_path(model)
        if include_local:
            for path in sorted(config_lib.default_config_path(model).parent.glob("*_local.yaml")):
                yield model, path.stem, path


def time_pipeline(dataset, num_batches):
    """Seconds to the first batch of a new iterator, then seconds for the next `num_batches - 1`."""
    started = time.perf_counter()
    iterator = iter(dataset)
    next(iterator)  # Start-up: the shuffle buffer fills (10,000 examples, or the whole split) first.
    first_batch = time.perf_counter()
    for _ in range(num_batches - 1):
        next(iterator)
    return first_batch - started, time.perf_counter() - first_batch, iterator


def time_model(config, task, inputs, model_dir, calls):
    """Train steps/s of the Trainer's loop on one batch of this task, after a warm-up call."""
    strategy = tf.distribute.get_strategy()
    batch = next(iter(inputs.train_input_fn(tf.distribute.InputContext())))
    steps_per_loop = min(config.train.steps_per_loop, 10)
    with strategy.scope():
        model = task.build_model(inputs)
        optimizer = create_optimizer(config, model, total_steps=10**6)
    trainer = Trainer(
        strategy=strategy,
        objective=task.objective,
        model=model,
        optimizer=optimizer,
        model_dir=model_dir,
        steps_per_loop=steps_per_loop,
        jit_compile=config.train.jit_compile,
    )
    iterator = iter(strategy.distribute_datasets_from_function(lambda context: tf.data.Dataset.from_tensors(batch).repeat()))
    num_steps = tf.constant(steps_per_loop)
    float(trainer.train_steps(iterator, num_steps)["loss_sum"])  # Tracing (and XLA compilation).
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        float(trainer.train_steps(iterator, num_steps)["loss_sum"])
        seconds.append((time.perf_counter() - started) / steps_per_loop)
    return 1.0 / common.median(seconds)


def measure(model_name, dataset_label, path, args):
    values = config_lib.load_config(path).to_dict()
    if args.data_dir:
        values["data"]["data_dir"] = args.data_dir
    config, _ = xla.resolve(config_lib.config_from_dict(values))  # The XLA setting trainers.run would pick.
    with tempfile.TemporaryDirectory() as model_dir:
        model_dir = pathlib.Path(model_dir)
        started = time.perf_counter()
        task = tasks.create_task(config, model_dir=model_dir)
        inputs = task.prepare_inputs()  # Builds the tfds copy and the vocabulary if needed.
        prepare_seconds = time.perf_counter() - started
        batch_size = config.train.batch_size
        batches_per_epoch = inputs.num_train_examples // batch_size
        first_batches = min(batches_per_epoch, args.max_first_epoch_batches)
        dataset = inputs.train_input_fn(tf.distribute.InputContext())
        startup_seconds, first_seconds, iterator = time_pipeline(dataset, first_batches)
        later_rate = None
        if first_batches == batches_per_epoch:  # The cache is complete: time epochs read from it.
            # Past the first epoch (a shuffle buffer's worth) so that every batch comes from the cache.
            for _ in range(min(batches_per_epoch, 10000 // batch_size + 1)):
                next(iterator)
            later_batches = min(batches_per_epoch * 2, args.later_batches)
            started = time.perf_counter()
            for _ in range(later_batches):
                next(iterator)
            later_rate = later_batches / (time.perf_counter() - started)
        model_rate = time_model(config, task, inputs, model_dir, args.model_calls)
    first_rate = (first_batches - 1) / first_seconds
    return {
        "model": model_name,
        "dataset": config.data.dataset,
        "config": str(path.relative_to(common.REPOSITORY)),
        "batch_size": batch_size,
        "sequence_length": config.data.sequence_length if inputs.modality == "text" else None,
        "train_examples": inputs.num_train_examples,
        "prepare_seconds": prepare_seconds,
        "first_epoch_batches_timed": first_batches,
        "seconds_to_first_batch": startup_seconds,
        "first_epoch_batches_per_second": first_rate,
        "later_epochs_batches_per_second": later_rate,
        "model_steps_per_second": model_rate,
        "jit_compile": config.train.jit_compile,
        "ratio_first_epoch": first_rate / model_rate,
        "ratio_later_epochs": later_rate / model_rate if later_rate else None,
    }


def markdown(document) -> str:
    rows = []
    for row in document["results"]:
        partial = "" if row["first_epoch_batches_timed"] * row["batch_size"] > row["train_examples"] - row["batch_size"] else (
            f" (first {row['first_epoch_batches_timed']} batches)"
        )
        later = f"{row['later_epochs_batches_per_second']:,.0f}" if row["later_epochs_batches_per_second"] else "-"
        later_ratio = f"{row['ratio_later_epochs']:,.0f}x" if row["ratio_later_epochs"] else "-"
        rows.append(
            [
                f"`{row['model']}`",
                f"`{row['dataset']}`",
                row["batch_size"],
                row["sequence_length"] or "-",
                f"{row['seconds_to_first_batch']:.1f}",
                f"{row['first_epoch_batches_per_second']:,.0f}{partial}",
                later,
                f"{row['model_steps_per_second']:.1f}",
                f"**{row['ratio_first_epoch']:,.0f}x** / {later_ratio}",
            ]
        )
    table = common.markdown_table(
        ["model", "dataset", "batch", "sequence", "s to first batch", "pipeline batches/s, rest of first epoch",
         "later epochs (cached)",
         "model steps/s", "pipeline / model (first / later)"],
        rows,
    )
    below = [row for row in document["results"] if row["ratio_first_epoch"] < TARGET_RATIO]
    verdict = (
        f"Target: pipeline >= {TARGET_RATIO:.0f}x the model's consumption. "
        + (
            "Met by every pipeline, first epoch included."
            if not below
            else "Below it in the first epoch: "
            + ", ".join(f"{row['model']} on {row['dataset']} ({row['ratio_first_epoch']:.1f}x)" for row in below)
            + "."
        )
    )
    return (
        f"{common.environment_line(document)}\n\n{table}\n\n{verdict} The model's rate is the zoo Trainer's "
        "step (config's XLA setting, up to 10 steps per call) on one batch held in memory; both sides are "
        "timed alone, one after the other, in the same process. The start-up seconds are paid once per run "
        "(and again on resume); prefetching overlaps the rest with training.\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.input_pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--data_dir", default=None, help="tfds data_dir (default: tfds' own, ~/tensorflow_datasets)")
    parser.add_argument("--quick", action="store_true", help="time at most 300 batches of each first epoch")
    parser.add_argument("--no_local", action="store_true", help="only the offline datasets")
    common.add_output_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    args.max_first_epoch_batches = 300 if args.quick else 10**9
    args.later_batches = 300 if args.quick else 2000
    args.model_calls = 3
    logging.set_verbosity(logging.WARNING)
    tfds.disable_progress_bar()
    models = common.selected_models(parser, args.models, MODELS)
    skipped = []
    results = []
    for model_name, dataset_label, path in config_paths(models, include_local=not args.no_local):
        if dataset_label.endswith("_local") and not local_data_present(dataset_label):
            skipped.append(f"{model_name} on {dataset_label}: no shared data at {local.shared_data_dir()}")
            print(f"skip {skipped[-1]}", flush=True)
            continue
        row = measure(model_name, dataset_label, path, args)
        results.append(row)
        later = row["later_epochs_batches_per_second"]
        print(
            f"{model_name:12s} {row['dataset']:14s} pipeline {row['first_epoch_batches_per_second']:8.0f} batches/s "
            f"(later epochs {f'{later:.0f}' if later else '-'})  model {row['model_steps_per_second']:6.1f} steps/s  "
            f"ratio {row['ratio_first_epoch']:.0f}x",
            flush=True,
        )
    document = common.new_document(NAME, settings=vars(args), results=results, skipped=skipped)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
