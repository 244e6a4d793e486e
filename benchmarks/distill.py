"""Knowledge distillation on SST-2: a BERT teacher, a GRU student distilled from it, and the same
student trained on the labels alone.

    python -m benchmarks.distill                         # bert_mini -> gru, 1 epoch each, 3 student seeds (~20 min)
    python -m benchmarks.distill --teacher=bert --student=gru --epochs=1 --seeds=1
    python -m benchmarks.distill --teacher_init_checkpoint=RUN   # a teacher fine-tuned from a --task=pretrain run
    python -m benchmarks.distill --teacher_init_checkpoint=RUN --teacher_config=bert/sst2_finetune  # ... with BERT's recipe

Runs of `python -m trainers.run` on `sst2_local` (trainers/configs/<model>/sst2_local.yaml), in order:
1. the teacher, trained (from `--teacher_init_checkpoint` when given; with `--teacher_config`'s recipe
   and epochs when given, e.g. `bert/sst2_finetune`, the recipe a pretrained encoder fine-tunes best
   with) and exported;
2. for each seed 1..`--seeds` (`train.seed`): the student with `--task=distill --teacher=<the
   teacher's export>` (Hinton et al. 2015's loss, the config's temperature and alpha unless given),
   then the same student, steps and seed with `--alpha=0`: its loss is the labels' cross-entropy
   alone (tests/trainers/test_objectives.py checks it equals `--task=classify`'s), and it still
   reports how often it agrees with the teacher. One 872-sentence dev set has a standard error of
   about 1.3 points, more than distillation's usual gain: the seeds' mean is the figure to read.
Then, in this process, each kind of run's SavedModel size and batch-1 serving latency on one dev
sentence (its seed 1; median of calls in blocks alternating between the three models,
docs/keras_tf_behaviour.md section 11).

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


def summary(runs) -> dict:
    """The runs of one role (seeds) -> mean accuracy and agreement, each seed's accuracy, mean train time."""
    agreements = [run["teacher_agreement"] for run in runs if run.get("teacher_agreement") is not None]
    return {
        "accuracy": sum(run["accuracy"] for run in runs) / len(runs),
        "seed_accuracies": [run["accuracy"] for run in runs],
        "teacher_agreement": sum(agreements) / len(agreements) if agreements else None,
        "train_seconds": sum(run["train_seconds"] for run in runs) / len(runs),
    }


def markdown(document) -> str:
    rows = []
    for role, runs in document["results"].items():
        role_summary, first = summary(runs), runs[0]
        agreement = role_summary["teacher_agreement"]
        rows.append([
            role,
            f"`{first['model']}`",
            common.accuracy_cell(role_summary),
            "-" if agreement is None else f"{agreement * 100:.1f}%",
            f"{first['parameters']:,}",
            f"{first['saved_model_mb']:.2f} MB",
            f"{first['latency']['p50_ms']:.2f} ms (p90 {first['latency']['p90_ms']:.2f})",
            f"{role_summary['train_seconds']:.0f} s",
        ])
    table = common.markdown_table(
        ["run", "model", "SST-2 dev accuracy", "agrees with teacher", "parameters", "SavedModel", "batch-1 serving",
         "train time"], rows)
    commands = "\n".join(f"- {role}: `{runs[0]['command']}`" for role, runs in document["results"].items())
    return (f"{common.environment_line(document)}\n\n{table}\n\nRuns ($WORK is a temporary directory; the students' "
            "seed 1 shown, the others differ in `train.seed` alone):\n"
            f"{commands}\n\n"
            "Accuracy and agreement are on SST-2's 872 dev sentences, the students' the mean of their seeds; "
            "latency is `serving_default` on one "
            f"sentence ({SENTENCE!r}), in one process, blocks alternating between the models.\n")


def teacher_run(args) -> tuple[list, argparse.Namespace]:
    """The teacher's trainers.run flags and the args its `accuracy.run_one` reads: fine-tuned from
    `--teacher_init_checkpoint` when given; with `--teacher_config`'s recipe for that recipe's own
    epochs when given (`--epochs` is the students')."""
    flags = [f"--init_checkpoint={args.teacher_init_checkpoint}"] if args.teacher_init_checkpoint else []
    if not args.teacher_config:
        return flags, args
    return [f"--config={args.teacher_config}", *flags], argparse.Namespace(**dict(vars(args), epochs=None))


def student_runs(args, teacher_export, soft_flags) -> dict:
    """role -> (model, trainers.run flags, model_dir name) of every student run, seed by seed."""
    runs = {}
    for seed in range(1, args.seeds + 1):
        seed_flags = ["--task=distill", f"--teacher={teacher_export}", f"--params_override=train.seed={seed}"]
        runs[("distilled student", seed)] = (args.student, [*seed_flags, *soft_flags], f"distilled_seed{seed}")
        runs[("student on labels alone", seed)] = (args.student, [*seed_flags, "--alpha=0"], f"labels_only_seed{seed}")
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distill", description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="bert_mini", help="teacher model (a BERT size, or any text model)")
    parser.add_argument("--student", default="gru", help="student model")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of every run")
    parser.add_argument("--steps_per_epoch", type=int, default=None, help="fewer steps (a quick check of this script)")
    parser.add_argument("--temperature", type=float, default=None, help="default: the config's task.temperature")
    parser.add_argument("--alpha", type=float, default=None, help="default: the config's task.alpha")
    parser.add_argument("--seeds", type=int, default=3, help="runs of each student, train.seed = 1..seeds")
    parser.add_argument("--teacher_init_checkpoint", default=None,
                        help="fine-tune the teacher from this --task=pretrain run's model_dir (--init_checkpoint)")
    parser.add_argument("--teacher_config", default=None,
                        help="the teacher's recipe and its own epochs (bert/sst2_finetune for a pretrained teacher); "
                             "default: the teacher's sst2_local for --epochs")
    common.add_trainer_run_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    if args.seeds < 1:
        parser.error(f"--seeds={args.seeds}: pass 1 or more")
    present, base = accuracy.shared_data_present(DATASET)
    if not present:
        print(f"No real SST-2 at {base / 'sst2'} (set ZOO_SHARED_DATA): nothing to measure.")
        return
    soft_flags = [f"--{name}={getattr(args, name)}" for name in ("temperature", "alpha") if getattr(args, name) is not None]
    steps_flags = [f"--steps_per_epoch={args.steps_per_epoch}"] if args.steps_per_epoch else []
    with tempfile.TemporaryDirectory() as work_dir:
        work_dir = pathlib.Path(work_dir)
        teacher_flags, teacher_args = teacher_run(args)
        runs = {("teacher", 1): (args.teacher, teacher_flags, "teacher"),
                **student_runs(args, work_dir / "exports" / args.teacher, soft_flags)}
        results = {}
        for (role, seed), (model, flags, run_name) in runs.items():
            run_args = teacher_args if role == "teacher" else args
            row = accuracy.run_one(model, DATASET, run_args, work_dir, extra_flags=[*flags, *steps_flags],
                                   run_name=run_name)
            if "error" in row:
                raise SystemExit(f"{role}, seed {seed}: FAILED\n{row['error']}")
            results.setdefault(role, []).append(row)
            print(f"{role:24s} seed {seed} {model:10s} accuracy {row['accuracy'] * 100:.2f}%, agreement "
                  f"{row['teacher_agreement']}, {row['train_seconds']:.0f} s training", flush=True)
        from zoo.export import saved_model_size_bytes

        latencies = serving_latencies({role: role_runs[0]["saved_model"] for role, role_runs in results.items()})
        for role, role_runs in results.items():
            role_runs[0]["latency"] = latencies[role]
            role_runs[0]["saved_model_mb"] = saved_model_size_bytes(role_runs[0]["saved_model"]) / 1e6
            print(f"{role:24s} {role_runs[0]['saved_model_mb']:.2f} MB, batch-1 p50 {role_runs[0]['latency']['p50_ms']:.2f} ms")
    document = common.new_document(NAME, settings=vars(args), results=results)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
