"""Accuracy on real data: each model trained from scratch by `trainers.run` on sst2_local / mnist_local.

    python -m benchmarks.accuracy                        # cnn, gru, lstm, transformer, bert (~30 min)
    python -m benchmarks.accuracy --models=cnn,gru --quick

Every run is the command a user types, `python -m trainers.run --model=M --dataset=D`, in its own
process, with the config `configs/<model>/<dataset>.yaml` (the same tfds pipeline, trainer and
export as any run), a fresh `--model_dir` and export directory; `--epochs` overrides the config
(`--quick`: 1 epoch). The figures are the run's final evaluation (`metrics.json`): SST-2's dev set
(872 sentences; GLUE's test labels are not public) and MNIST's test set (10,000 images).

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
DATASETS = {"cnn": "mnist_local", "gru": "sst2_local", "lstm": "sst2_local", "transformer": "sst2_local", "bert": "sst2_local"}
SOURCE_FOLDERS = {"mnist_local": "mnist", "sst2_local": "sst2"}

# Published figures to read ours against. Ours are trained from scratch on CPU budgets.
PUBLISHED = {
    "mnist_local": (
        "~99% test accuracy: Keras' \"Simple MNIST convnet\" example (keras.io/examples/vision/mnist_convnet, "
        "2 conv + dense, 15 epochs)"
    ),
    "sst2_local": (
        "83.2% on GLUE's SST-2 TEST set: BERT-Tiny (2 layers, 128 hidden) pretrained on Wikipedia + BookCorpus, "
        "then fine-tuned (google-research/bert README, \"Well-Read Students\" small models). From scratch, "
        "with no pretraining, expect less"
    ),
}


PUBLISHED_SHORT = {
    "mnist_local": "~99% test (Keras MNIST convnet, 15 epochs)",
    "sst2_local": "83.2% test (BERT-Tiny, pretrained, then fine-tuned)",
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


def markdown(document) -> str:
    rows = []
    for row in document["results"]:
        if "error" in row:
            rows.append([f"`{row['model']}`", f"`{row['dataset']}`", "failed", "-", "-", "-", row["error"].splitlines()[-1]])
            continue
        split = "dev (872)" if row["dataset"] == "sst2_local" else f"test ({row['num_examples']:,})"
        per_epoch = ", ".join(f"{value * 100:.1f}" for value in row["accuracy_per_epoch"])
        rows.append(
            [
                f"`{row['model']}`",
                f"`{row['dataset']}`",
                f"**{row['accuracy'] * 100:.1f}%** on {split}",
                f"{row['epochs']} ({row['global_step']:,} steps; per epoch: {per_epoch})",
                f"{row['train_seconds']:.0f} s" if row["train_seconds"] else "-",
                f"{row['wall_seconds']:.0f} s",
                PUBLISHED_SHORT[row["dataset"]],
            ]
        )
    table = common.markdown_table(
        ["model", "dataset", "accuracy", "epochs", "train time", "wall time (whole command)", "published"], rows
    )
    published = "\n".join(f"- `{dataset}`: {text}." for dataset, text in PUBLISHED.items())
    commands = "\n".join(f"- `{row['command']}`" for row in document["results"] if "command" in row)
    skipped = "".join(f"\nSkipped: {line}." for line in document["skipped"])
    return (
        f"{common.environment_line(document)}\n\n{table}\n\nPublished figures:\n{published}\n\n"
        "Ours are trained from scratch (no pretrained weights or embeddings) with the configs in "
        "`configs/<model>/<dataset>.yaml`, seeded; the CNN's MNIST training images are the approximate "
        "rebuild (within 1 grey level), its test images exact.\n\n"
        f"Runs:\n{commands}\n{skipped}\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DATASETS))
    parser.add_argument("--epochs", type=int, default=None, help="override every config's epochs")
    parser.add_argument("--quick", action="store_true", help="1 epoch each")
    common.add_trainer_run_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    if args.quick and not args.epochs:
        args.epochs = 1
    models = common.selected_models(parser, args.models, DATASETS)
    results, skipped = [], []
    with tempfile.TemporaryDirectory() as work_dir:
        for model in models:
            dataset = DATASETS[model]
            present, base = shared_data_present(dataset)
            if not present:
                skipped.append(f"{model} on {dataset}: no real data at {base / SOURCE_FOLDERS[dataset]} (set ZOO_SHARED_DATA)")
                print(f"skip {skipped[-1]}", flush=True)
                continue
            row = run_one(model, dataset, args, pathlib.Path(work_dir))
            results.append(row)
            if "error" in row:
                print(f"{model}: FAILED after {row['wall_seconds']:.0f} s\n{row['error']}", flush=True)
            else:
                print(
                    f"{model:12s} {dataset:12s} accuracy {row['accuracy'] * 100:.2f}% after {row['epochs']} epochs "
                    f"({row['train_seconds']:.0f} s training, {row['wall_seconds']:.0f} s wall)",
                    flush=True,
                )
    if not results:
        print("No real data found: nothing to measure (see zoo/data/local.py for where it is looked for).")
        return
    document = common.new_document(NAME, settings=vars(args), results=results, skipped=skipped)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
