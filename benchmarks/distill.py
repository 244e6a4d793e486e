"""Knowledge distillation on SST-2: a BERT teacher, a GRU student distilled from it, and the same
student trained on the labels alone.

    python -m benchmarks.distill                         # bert_mini -> gru, 1 epoch each (~15 min)
    python -m benchmarks.distill --teacher=bert --student=gru --epochs=1

Three runs of `python -m trainers.run` on `sst2_local` (trainers/configs/<model>/sst2_local.yaml), in order:
1. the teacher, trained and exported;
2. the student with `--task=distill --teacher=<the teacher's export>` (Hinton et al. 2015's loss,
   the config's temperature and alpha unless given);
3. the same student, steps and seed with `--alpha=0`: its loss is the labels' cross-entropy alone
   (tests/trainers/test_objectives.py checks it equals `--task=classify`'s), and it still reports
   how often it agrees with the teacher.
Then, in this process, each SavedModel's size and its batch-1 serving latency on one dev sentence
(median of calls in blocks alternating between the three models, docs/keras_tf_behaviour.md section 11).

Needs the real SST-2 under ../shared/data (developer and CI machines); says so and exits otherwise.
"""

import argparse
import pathlib
import tempfile

from benchmarks import accuracy, common

NAME = "distill"
DATASET = "sst2_local"
SENTENCE = "a gorgeous , witty , seductive movie ."


def serving_latencies(saved_models, blocks=20, calls_per_block=10):
    """Median and p90 batch-1 milliseconds of each SavedModel's serving_default, alternating blocks."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  Registers the WordPiece ops of the text graphs.

    servings = {name: tf.saved_model.load(path).signatures["serving_default"] for name, path in saved_models.items()}
    text = tf.constant([SENTENCE])
    calls = {name: (lambda serving=serving: serving(text=text)["probabilities"].numpy()) for name, serving in servings.items()}
    for call in calls.values():  # Warm-up: tracing caches, thread pools.
        for _ in range(5):
            call()
    times = common.alternating_blocks(calls, blocks=blocks, calls_per_block=calls_per_block)
    return {name: {"p50_ms": common.percentile(seconds, 0.5) * 1e3, "p90_ms": common.percentile(seconds, 0.9) * 1e3}
            for name, seconds in times.items()}


def markdown(document) -> str:
    rows = []
    for role, row in document["results"].items():
        agreement = row.get("teacher_agreement")
        rows.append([
            role,
            f"`{row['model']}`",
            f"**{row['accuracy'] * 100:.1f}%**",
            "-" if agreement is None else f"{agreement * 100:.1f}%",
            f"{row['parameters']:,}",
            f"{row['saved_model_mb']:.2f} MB",
            f"{row['latency']['p50_ms']:.2f} ms (p90 {row['latency']['p90_ms']:.2f})",
            f"{row['train_seconds']:.0f} s",
        ])
    table = common.markdown_table(
        ["run", "model", "SST-2 dev accuracy", "agrees with teacher", "parameters", "SavedModel", "batch-1 serving",
         "train time"], rows)
    commands = "\n".join(f"- {role}: `{row['command']}`" for role, row in document["results"].items() if "command" in row)
    return (f"{common.environment_line(document)}\n\n{table}\n\nRuns ($WORK is a temporary directory):\n{commands}\n\n"
            "Accuracy and agreement are on SST-2's 872 dev sentences; latency is `serving_default` on one "
            f"sentence ({SENTENCE!r}), in one process, blocks alternating between the models.\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distill", description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="bert_mini", help="teacher model (a BERT size, or any text model)")
    parser.add_argument("--student", default="gru", help="student model")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of every run")
    parser.add_argument("--steps_per_epoch", type=int, default=None, help="fewer steps (a quick check of this script)")
    parser.add_argument("--temperature", type=float, default=None, help="default: the config's task.temperature")
    parser.add_argument("--alpha", type=float, default=None, help="default: the config's task.alpha")
    common.add_trainer_run_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    present, base = accuracy.shared_data_present(DATASET)
    if not present:
        print(f"No real SST-2 at {base / 'sst2'} (set ZOO_SHARED_DATA): nothing to measure.")
        return
    soft_flags = [f"--{name}={getattr(args, name)}" for name in ("temperature", "alpha") if getattr(args, name) is not None]
    steps_flags = [f"--steps_per_epoch={args.steps_per_epoch}"] if args.steps_per_epoch else []
    with tempfile.TemporaryDirectory() as work_dir:
        work_dir = pathlib.Path(work_dir)
        teacher_export = work_dir / "exports" / f"{args.teacher}"
        runs = {
            "teacher": (args.teacher, [], "teacher"),
            "distilled student": (args.student, ["--task=distill", f"--teacher={teacher_export}", *soft_flags], "distilled"),
            "student on labels alone": (args.student, ["--task=distill", f"--teacher={teacher_export}", "--alpha=0"],
                                        "labels_only"),
        }
        results = {}
        for role, (model, flags, run_name) in runs.items():
            row = accuracy.run_one(model, DATASET, args, work_dir, extra_flags=[*flags, *steps_flags], run_name=run_name)
            results[role] = row
            if "error" in row:
                raise SystemExit(f"{role}: FAILED\n{row['error']}")
            print(f"{role:24s} {model:10s} accuracy {row['accuracy'] * 100:.2f}%, agreement "
                  f"{row['teacher_agreement']}, {row['train_seconds']:.0f} s training", flush=True)
        from zoo.export import saved_model_size_bytes

        latencies = serving_latencies({role: row["saved_model"] for role, row in results.items()})
        for role, row in results.items():
            row["latency"] = latencies[role]
            row["saved_model_mb"] = saved_model_size_bytes(row["saved_model"]) / 1e6
            print(f"{role:24s} {row['saved_model_mb']:.2f} MB, batch-1 p50 {row['latency']['p50_ms']:.2f} ms")
    document = common.new_document(NAME, settings=vars(args), results=results)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
