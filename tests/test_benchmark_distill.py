"""benchmarks.distill: every student seeded, the two students paired seed by seed, the table showing the seeds' mean."""

import json
import subprocess
import sys

from cli_runs import REPO


def run_script(script, *arguments):
    """A script run from the repository (benchmarks/ is not installed); its stdout as JSON."""
    done = subprocess.run([sys.executable, "-c", script, *arguments], cwd=REPO, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def test_each_seed_trains_a_distilled_student_and_its_twin_on_labels_alone():
    script = ("import argparse, json; from benchmarks import distill\n"
              "args = argparse.Namespace(seeds=2, student='gru')\n"
              "runs = distill.student_runs(args, 'exports/bert_mini', ['--temperature=3'])\n"
              "print(json.dumps([[role, seed, *run] for (role, seed), run in runs.items()]))")
    runs = run_script(script)
    assert [(role, seed, name) for role, seed, _, _, name in runs] == [
        ("distilled student", 1, "distilled_seed1"), ("student on labels alone", 1, "labels_only_seed1"),
        ("distilled student", 2, "distilled_seed2"), ("student on labels alone", 2, "labels_only_seed2")]
    distilled, labels_only = runs[2][3], runs[3][3]
    assert distilled == ["--task=distill", "--teacher=exports/bert_mini", "--params_override=train.seed=2",
                         "--temperature=3"]
    # The twin differs in the soft targets' weight alone: same teacher (agreement is still scored), same seed.
    assert labels_only == [*distilled[:3], "--alpha=0"]


def test_the_table_shows_each_roles_mean_over_its_seeds():
    def run(accuracy, agreement=None, train_seconds=30.0):
        return {"model": "gru", "command": "python -m trainers.run --model=gru", "accuracy": accuracy,
                "teacher_agreement": agreement, "train_seconds": train_seconds, "parameters": 1_172_226}

    served = {"saved_model_mb": 10.59, "latency": {"p50_ms": 0.79, "p90_ms": 1.04}}
    document = {"benchmark": "distill", "date": "2026-12-04T14:00:00+00:00", "command": "python -m benchmarks.distill",
                "machine": {"cpu": "AMD EPYC", "cores": 2, "vector_extensions": [], "memory_gib": 23.0,
                            "load_average_at_start": [0, 0, 0], "gpu": "none"}, "versions": {},
                "results": {"teacher": [dict(run(0.85, train_seconds=240.0), model="bert_mini", **served)],
                            "distilled student": [dict(run(0.82, 0.90, 30.0), **served), run(0.84, 0.92, 32.0)]}}
    script = "import json, sys; from benchmarks import distill; print(json.dumps(distill.markdown(json.loads(sys.argv[1]))))"
    table = run_script(script, json.dumps(document))
    assert "| teacher | `bert_mini` | **85.0%** | - | 1,172,226 | 10.59 MB | 0.79 ms (p90 1.04) | 240 s |" in table
    assert ("| distilled student | `gru` | **83.0%** (seeds 82.0 / 84.0, range 2.0) | 91.0% | 1,172,226 | 10.59 MB "
            "| 0.79 ms (p90 1.04) | 31 s |") in table


def test_a_teacher_config_brings_its_own_epochs_while_the_students_keep_theirs():
    """`--teacher_config=bert/sst2_finetune` fine-tunes a pretrained teacher with BERT's recipe for
    that recipe's 3 epochs; `--epochs` (1 by default) stays the students'."""
    script = ("import argparse, json; from benchmarks import distill\n"
              "args = argparse.Namespace(epochs=1, teacher_init_checkpoint='runs/pretrain', teacher_config={})\n"
              "flags, teacher_args = distill.teacher_run(args)\n"
              "print(json.dumps([flags, teacher_args.epochs, args.epochs]))")
    assert run_script(script.format("None")) == [["--init_checkpoint=runs/pretrain"], 1, 1]
    assert run_script(script.format("'bert/sst2_finetune'")) == [
        ["--config=bert/sst2_finetune", "--init_checkpoint=runs/pretrain"], None, 1]
