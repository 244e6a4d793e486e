"""Accuracy on real data: each model trained from scratch by `trainers.run` on sst2_local / mnist_local.

    python -m benchmarks.accuracy                        # cnn, bow, gru, lstm, transformer, bert; 3 seeds each
    python -m benchmarks.accuracy --models=cnn,bow --seeds=1 --quick

Every run is the command a user types, `python -m trainers.run --model=M --dataset=D`, in its own
process, with the config `trainers/configs/<model>/<dataset>.yaml` (the same tfds pipeline, trainer and
export as any run), a fresh `--model_dir` and export directory; `--epochs` overrides the config
(`--quick`: 1 epoch). The figures are the run's final evaluation (`metrics.json`): SST-2's dev set
(872 sentences; GLUE's test labels are not public) and MNIST's test set (10,000 images).

Each model is trained once per seed (`train.seed` = 0, 1, ...; `--seeds`) and reported as the mean
and the range over seeds: one 872-sentence dev set has a standard error of about 1.3 points, so a
single run's figure says little about a 1-point difference. Every run's SavedModel is then scored
again on the same split by `benchmarks.saved_model_accuracy` in a fresh process (TensorFlow only,
the raw inputs read from the source files); the table says whether it agrees with the trainer.

The real data exists on developer and CI machines only (`zoo.data.local`): without it, this
benchmark says so and exits without running anything.
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

from benchmarks import common

NAME = "accuracy"
DATASETS = {
    "cnn": "mnist_local",
    "bow": "sst2_local",
    "gru": "sst2_local",
    "lstm": "sst2_local",
    "transformer": "sst2_local",
    "bert": "sst2_local",
}
# The floor each model is shown beside: fastText's bag of n-grams for text.
BASELINES = {"sst2_local": "bow"}
SOURCE_FOLDERS = {"mnist_local": "mnist", "sst2_local": "sst2"}

# Published figures to read ours against. Ours are trained from scratch on CPU budgets.
PUBLISHED = {
    "mnist_local": (
        "~99% test accuracy: Keras' \"Simple MNIST convnet\" example (keras.io/examples/vision/mnist_convnet, "
        "2 conv + dense, 15 epochs); 99.25% after 12 epochs for its predecessor, keras/examples/mnist_cnn.py "
        "(2 conv + dense 128)"
    ),
    "sst2_local": (
        "84.0% on SST-2 for the GPT-1 paper's 12-layer Transformer trained without pretraining (Radford et al. "
        "2018, table 5); 82.7% for Kim's (2014) CNN with random word vectors, 86.8% with word2vec's; 83.2% on "
        "GLUE's SST-2 TEST set for BERT-Tiny (2 layers, 128 hidden) pretrained on Wikipedia + BookCorpus, then "
        "fine-tuned (google-research/bert README, \"Well-Read Students\" small models)"
    ),
}


PUBLISHED_SHORT = {
    "mnist_local": "~99% test (Keras MNIST convnet, 15 epochs)",
    "sst2_local": "84.0 (GPT-1's Transformer, no pretraining); 82.7 (Kim's CNN, random vectors)",
}


def shared_data_present(dataset):
    # Read here rather than importing zoo (and TensorFlow) in this parent process.
    configured = os.environ.get("ZOO_SHARED_DATA")
    base = pathlib.Path(configured) if configured else common.REPOSITORY.parent / "shared" / "data"
    return (base / SOURCE_FOLDERS[dataset]).is_dir(), base


def run_one(model, dataset, args, work_dir, extra_flags=(), run_name=None):
    """Trains, evaluates and exports one model with `trainers.run`; returns its figures.

    Args:
        args: `epochs` (None: the config's), `data_dir` and `timeout`.
        extra_flags: more `trainers.run` flags. run_name: the model_dir's name (default: `model`).
    """
    model_dir = work_dir / (run_name or model)
    command = [
        sys.executable, "-m", "trainers.run", f"--model={model}", f"--dataset={dataset}",
        f"--model_dir={model_dir}", f"--export_dir={work_dir / 'exports'}", *extra_flags,
    ]
    if args.epochs:
        command.append(f"--epochs={args.epochs}")
    if args.data_dir:
        command.append(f"--data_dir={args.data_dir}")
    print("$ " + " ".join(command[1:]).replace(str(work_dir), "$WORK"), flush=True)
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=common.REPOSITORY, capture_output=True, text=True, timeout=args.timeout,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    wall_seconds = time.perf_counter() - started
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        return {"model": model, "dataset": dataset, "error": f"exit code {completed.returncode}: {tail}",
                "wall_seconds": wall_seconds}
    metrics = json.loads((model_dir / "metrics.json").read_text())  # Also teacher_agreement, when distilled.
    config = (model_dir / "config.yaml").read_text()
    trained = re.search(r"Trained to step (\d+) in ([\d.]+) s", output)
    epochs = re.findall(r"Eval after epoch (\d+): accuracy=([\d.]+)", output)
    parameters = re.search(r"Model: \w+, ([\d,]+) of ([\d,]+) parameters", output)
    saved_models = re.findall(r"SavedModel: (\S+)", output)  # The run's own export is the last.
    return {
        "model": model,
        "dataset": dataset,
        "command": " ".join(["python", *command[1:]]).replace(str(work_dir), "$WORK"),
        "parameters": int(parameters.group(2).replace(",", "")) if parameters else None,
        "saved_model": saved_models[-1] if saved_models else None,
        "accuracy": metrics["accuracy"],
        "f1": metrics["f1"],
        "teacher_agreement": metrics.get("teacher_agreement"),
        "loss": metrics["loss"],
        "num_examples": metrics["num_examples"],
        "global_step": metrics["global_step"],
        "epochs": len(epochs),
        "accuracy_per_epoch": [float(accuracy) for _, accuracy in epochs],
        "train_seconds": float(trained.group(2)) if trained else None,
        "wall_seconds": wall_seconds,
        "config": config,
    }


def score_saved_model(row, timeout):
    """Adds `saved_model_accuracy`: the run's export scored by `benchmarks.saved_model_accuracy` in a fresh process."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.saved_model_accuracy", row["saved_model"], row["dataset"]],
        cwd=common.REPOSITORY, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    if completed.returncode != 0:
        row["saved_model_error"] = (completed.stdout + completed.stderr).strip().splitlines()[-1]
    else:
        row["saved_model_accuracy"] = json.loads(completed.stdout.strip().splitlines()[-1])["accuracy"]
    return row


def summarize(rows):
    """The runs of one model over seeds -> mean, min and max accuracy, mean train time, export agreement."""
    accuracies = [row["accuracy"] for row in rows]
    return {
        "mean": sum(accuracies) / len(accuracies),
        "min": min(accuracies),
        "max": max(accuracies),
        "train_seconds": sum(row["train_seconds"] or 0 for row in rows) / len(rows),
        # The export and the trainer's evaluation count the same correct answers (within one example).
        "export_agrees": all(
            abs(row.get("saved_model_accuracy", -1) - row["accuracy"]) * row["num_examples"] < 1.5 for row in rows
        ),
    }


def percent_range(summary):
    spread = (summary["max"] - summary["min"]) * 100 / 2
    return f"**{summary['mean'] * 100:.1f}%** ± {spread:.1f}"


def markdown(document) -> str:
    by_model = {}
    for row in document["results"]:
        by_model.setdefault(row["model"], []).append(row)
    summaries = {
        model: summarize(rows) for model, rows in by_model.items() if not any("error" in row for row in rows)
    }
    table = []
    for model, rows in by_model.items():
        dataset = rows[0]["dataset"]
        failed = [row for row in rows if "error" in row]
        if failed:
            table.append([f"`{model}`", f"`{dataset}`", "failed", "-", "-", "-", "-", failed[0]["error"].splitlines()[-1]])
            continue
        summary = summaries[model]
        split = "dev (872)" if dataset == "sst2_local" else f"test ({rows[0]['num_examples']:,})"
        per_seed = ", ".join(f"{row['accuracy'] * 100:.1f}" for row in rows)
        baseline = BASELINES.get(dataset)
        versus = "-"
        if baseline in summaries and baseline != model:
            versus = f"{(summary['mean'] - summaries[baseline]['mean']) * 100:+.1f}"
        table.append(
            [
                f"`{model}`",
                f"`{dataset}`",
                f"{percent_range(summary)} on {split}",
                f"{len(rows)} ({per_seed})",
                versus,
                f"{rows[0]['epochs']} ({rows[0]['global_step']:,} steps)",
                f"{summary['train_seconds']:.0f} s",
                "yes" if summary["export_agrees"] else "**no**: " + ", ".join(
                    f"{row.get('saved_model_accuracy', 0) * 100:.1f}" for row in rows),
                PUBLISHED_SHORT[dataset],
            ]
        )
    table = common.markdown_table(
        ["model", "dataset", "accuracy: mean ± half range", "seeds (each)", "vs bow (points)", "epochs",
         "train time (mean)", "export scores the same", "published"],
        table,
    )
    published = "\n".join(f"- `{dataset}`: {text}." for dataset, text in PUBLISHED.items())
    commands = "\n".join(sorted({f"- `{row['command']}`" for row in document["results"] if "command" in row}))
    skipped = "".join(f"\nSkipped: {line}." for line in document["skipped"])
    return (
        f"{common.environment_line(document)}\n\n{table}\n\nPublished figures:\n{published}\n\n"
        "Ours are trained from scratch (no pretrained weights or embeddings) with the configs in "
        "`trainers/configs/<model>/<dataset>.yaml`, one run per seed (`train.seed`), each reported at its best "
        "dev epoch where the config sets `restore_best` (the SST-2 recipes, GLUE practice), else at its last; "
        "the CNN's MNIST training images are the approximate rebuild (within 1 grey level), its test "
        "images exact. \"Export scores the same\": each run's SavedModel, loaded in a fresh TensorFlow-only "
        "process and fed the raw dev sentences or test images, gets the trainer's accuracy.\n\n"
        f"Runs:\n{commands}\n{skipped}\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DATASETS))
    parser.add_argument("--seeds", type=int, default=3, help="runs per model, with train.seed = 0 .. seeds - 1")
    parser.add_argument("--first_seed", type=int, default=0, help="seeds run are first_seed, first_seed + 1, ... "
                        "(adds seeds to an earlier measurement)")
    parser.add_argument("--seeds_per_model", default="", metavar="MODEL:N,...",
                        help="other run counts for some models, e.g. cnn:1 (MNIST's 10,000 test images vary less)")
    parser.add_argument("--epochs", type=int, default=None, help="override every config's epochs")
    parser.add_argument("--quick", action="store_true", help="1 epoch each")
    common.add_trainer_run_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    if args.quick and not args.epochs:
        args.epochs = 1
    models = common.selected_models(parser, args.models, DATASETS)
    seeds = {model: args.seeds for model in models}
    for item in filter(None, args.seeds_per_model.split(",")):
        model, _, count = item.partition(":")
        if model not in seeds or not count.isdigit() or int(count) < 1:
            parser.error(f"--seeds_per_model: {item!r} is not MODEL:N for one of {', '.join(models)}")
        seeds[model] = int(count)
    results, skipped = [], []
    with tempfile.TemporaryDirectory() as work_dir:
        for model in models:
            dataset = DATASETS[model]
            present, base = shared_data_present(dataset)
            if not present:
                skipped.append(f"{model} on {dataset}: no real data at {base / SOURCE_FOLDERS[dataset]} (set ZOO_SHARED_DATA)")
                print(f"skip {skipped[-1]}", flush=True)
                continue
            for seed in range(args.first_seed, args.first_seed + seeds[model]):
                row = run_one(model, dataset, args, pathlib.Path(work_dir), extra_flags=[f"--params_override=train.seed={seed}"],
                              run_name=f"{model}_seed{seed}")
                results.append(row)
                if "error" in row:
                    print(f"{model} seed {seed}: FAILED after {row['wall_seconds']:.0f} s\n{row['error']}", flush=True)
                    break
                score_saved_model(row, args.timeout)
                print(
                    f"{model:12s} {dataset:12s} seed {seed} accuracy {row['accuracy'] * 100:.2f}% after {row['epochs']} "
                    f"epochs ({row['train_seconds']:.0f} s training, {row['wall_seconds']:.0f} s wall); SavedModel in a "
                    f"fresh process: {row.get('saved_model_accuracy', row.get('saved_model_error'))}",
                    flush=True,
                )
    if not results:
        print("No real data found: nothing to measure (see zoo/data/local.py for where it is looked for).")
        return
    document = common.new_document(NAME, settings=vars(args), results=results, skipped=skipped)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
