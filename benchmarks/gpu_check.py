"""The Python half of `benchmarks/gpu_check.sh`: keras-hub's recipe timed beside the zoo's GPU runs, and the report.

    python -m benchmarks.gpu_check peers OUT_DIR SST2_DIR   # keras-hub's step, after the zoo's runs
    python -m benchmarks.gpu_check report OUT_DIR           # OUT_DIR/gpu_check.json and gpu_check.md

The shell script trains bert_mini on SST-2 through `trainers.run` (mixed_float16, XLA) under the
default strategy and under MirroredStrategy, keeping each run's stdout as `OUT_DIR/zoo_<strategy>.log`
(and the default run's vocabulary as `OUT_DIR/vocabulary.txt`). `peers` then times keras-hub's recipe
(`benchmarks.finetune.build_peer`: `BertClassifier.fit` on raw strings padded to 128, compiled with
`jit_compile="auto"`, which is XLA on a GPU, and forced) in the same precision, with the vocabulary
the zoo's default run learned, per step after an untimed warm-up; its epoch is extrapolated as the
median step x the epoch's steps, as `benchmarks.finetune` does on the CPU. `report` reads it all back
(each run's "Phases: ..." line, epoch time and dev accuracy) into one JSON and a short markdown table.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

from benchmarks import common, finetune
from trainers.phases import parse_summary

MODEL = "bert_mini"
STRATEGIES = ["default", "mirrored"]
PRECISION = "mixed_float16"
PEER_WARMUP_STEPS = 3
PEER_TIMED_STEPS = 50


def peers(out_dir, data_dir):
    """Times keras-hub's recipe (`finetune.PEERS`) and writes `out_dir/keras_hub.json`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from zoo.data.text import load_vocabulary

    keras.mixed_precision.set_global_policy(PRECISION)
    vocabulary = load_vocabulary(out_dir / "vocabulary.txt")
    train = finetune.read_tsv(data_dir / "train.tsv")
    _, _, batch_size, _ = finetune.SIZES[MODEL]
    results = {}
    for name, jit_compile in finetune.PEERS.items():
        model, preprocess = finetune.build_peer(MODEL, vocabulary, jit_compile)
        dataset = finetune.peer_dataset(preprocess, *train, batch_size, seed=0)
        finetune.time_peer_steps(model, dataset, PEER_WARMUP_STEPS)  # Tracing and XLA compilation.
        times = finetune.time_peer_steps(model, dataset, PEER_TIMED_STEPS)
        step = common.median(times)
        results[name] = {
            "jit_compile": jit_compile,
            "precision": PRECISION,
            "batch_size": batch_size,
            "measured_steps": len(times),
            "median_step_seconds": round(step, 5),
            "step_seconds_p10_p90": [round(common.percentile(times, q), 5) for q in (0.1, 0.9)],
            "epoch_seconds_extrapolated": round(step * (len(train[0]) // batch_size), 1),
            "examples_per_second": round(batch_size / step, 1),
        }
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    (out_dir / "keras_hub.json").write_text(json.dumps(results, indent=2) + "\n")


def zoo_run(out_dir, strategy) -> dict:
    """What `OUT_DIR/zoo_<strategy>.log` says about that run."""
    log = out_dir / f"zoo_{strategy}.log"
    stdout = log.read_text(errors="replace") if log.is_file() else ""
    run = {"strategy": strategy, "log": log.name}
    replicas = re.search(r"^Strategy: (\w+) with (\d+) replica", stdout, re.MULTILINE)
    trained = re.search(r"^Trained to step (\d+) .*epoch time ([\d.]+) s \(([\d.]+) examples/s", stdout, re.MULTILINE)
    evaluated = re.search(r"^Eval metrics: accuracy=([\d.]+)", stdout, re.MULTILINE)
    if replicas:
        run.update(strategy_class=replicas.group(1), replicas=int(replicas.group(2)))
    if trained:
        run.update(steps=int(trained.group(1)), epoch_seconds=float(trained.group(2)),
                   examples_per_second=float(trained.group(3)))
    if evaluated:
        run["dev_accuracy"] = float(evaluated.group(1))
    try:
        run["phases_seconds"] = parse_summary(stdout)
    except ValueError:
        run["error"] = (stdout.strip().splitlines() or ["no output"])[-1]  # Failed or timed out.
    return run


def report(out_dir):
    """Writes `out_dir/gpu_check.json` and `out_dir/gpu_check.md` from the runs' logs."""
    gpus = []
    if shutil.which("nvidia-smi"):
        gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip().splitlines()
    document = common.new_document("gpu_check", model=MODEL, precision=PRECISION, jit_compile=True)
    document["machine"]["gpu"] = gpus
    document["zoo"] = [zoo_run(out_dir, strategy) for strategy in STRATEGIES]
    peers_path = out_dir / "keras_hub.json"
    document["keras_hub"] = json.loads(peers_path.read_text()) if peers_path.is_file() else "not measured"
    (out_dir / "gpu_check.json").write_text(json.dumps(document, indent=2) + "\n")
    (out_dir / "gpu_check.md").write_text(markdown(document))
    print((out_dir / "gpu_check.md").read_text())


def markdown(document) -> str:
    rows = []
    for run in document["zoo"]:
        phases = run.get("phases_seconds", {})
        rows.append([
            f"zoo `--strategy={run['strategy']}` ({run.get('replicas', '?')} replica(s))",
            f"{run['epoch_seconds']:.1f} s ({run['examples_per_second']:.0f}/s)" if "epoch_seconds" in run else "-",
            f"{run['dev_accuracy']:.4f}" if "dev_accuracy" in run else "-",
            ", ".join(f"{name} {seconds:.1f}" for name, seconds in phases.items() if name != "total")
            or run.get("error", "-"),
            f"{phases['total']:.1f} s" if phases else "-",
        ])
    for name, peer in (document["keras_hub"].items() if isinstance(document["keras_hub"], dict) else []):
        rows.append([
            f"keras-hub recipe, `jit_compile={peer['jit_compile']!r}` (default strategy)",
            f"{peer['epoch_seconds_extrapolated']:.1f} s ({peer['examples_per_second']:.0f}/s), extrapolated "
            f"from {peer['measured_steps']} steps",
            "-", "-", "-",
        ])
    table = common.markdown_table(
        ["run", "epoch time (examples/s)", "dev accuracy", "phases (s)", "whole run"], rows
    )
    versions = ", ".join(f"{name} {version}" for name, version in document["versions"].items() if version)
    return (
        f"## GPU check: {MODEL} on SST-2, {PRECISION} + XLA (`bash benchmarks/gpu_check.sh`)\n\n"
        f"{document['date'][:16].replace('T', ' ')} UTC on {'; '.join(document['machine']['gpu']) or 'no GPU'}, "
        f"CPU {document['machine']['cpu']} ({document['machine']['cores']} cores). {versions}.\n\n"
        f"One epoch of SST-2 train (67,349 sentences), evaluated on dev (872). keras-hub pads to 128 tokens, "
        f"the zoo to its length buckets.\n\n{table}\n"
    )


def main(argv):
    if len(argv) == 4 and argv[1] == "peers":
        peers(pathlib.Path(argv[2]), pathlib.Path(argv[3]))
    elif len(argv) == 3 and argv[1] == "report":
        report(pathlib.Path(argv[2]))
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main(sys.argv)
