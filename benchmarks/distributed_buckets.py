"""Length buckets under MirroredStrategy and MultiWorkerMirroredStrategy: epoch time with buckets
against every batch padded to `sequence_length` (`--bucket_boundaries=none`).

    python -m benchmarks.distributed_buckets                     # transformer and bert, both strategies
    python -m benchmarks.distributed_buckets --models=gru --strategies=mirrored --blocks=4

A job is one process for `mirrored` over 2 logical CPU devices, or two worker processes on
127.0.0.1 for `multi_worker`. It builds the task of the model's config
(`trainers/configs/<model>/sst2_local.yaml` where SST-2 is under ../shared/data, else the offline default)
with `bucket_boundaries: auto` and/or `none`, each with its own model, optimizer and `Trainer`
under the strategy, exactly as `trainers.run` builds them, and times `Trainer.train_steps` calls
of `steps_per_loop` steps (after one untimed call). Under `mirrored` one job holds both paddings
and alternates blocks between them (benchmarks/common.py). Two models in one MultiWorkerMirrored
process hung in their first collective here, so under `multi_worker` each job holds one padding
and the jobs alternate: auto, none, none, auto. A bucketed step costs what its bucket costs, so an
epoch is the MEAN step time (over many steps drawn from the shuffled buckets) times the steps of
an epoch; `none` has slightly fewer steps (no partial batch per bucket).

The figures on this 2-core machine: both replicas (or workers) share the same two cores, so the
absolute times say nothing about several GPUs; the buckets' saving is what the ratio shows, and
it carries over because each replica pads its slice of the global batch to the same bucket.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from benchmarks import common
from trainers.strategy import loopback_tf_configs

NAME = "distributed_buckets"
MODELS = ("transformer", "bert", "gru", "lstm", "bow")
STRATEGIES = ("mirrored", "multi_worker")
PADDINGS = ("auto", "none")


def config_path(model):
    from trainers import config as config_lib
    from zoo.data import local

    dataset = "sst2_local" if local.shared_data_dir().joinpath("sst2").is_dir() else None
    return config_lib.default_config_path(model, dataset)


def job(args):
    """One worker's (or the mirrored process's) measurement; the chief prints the result as JSON."""
    import tensorflow as tf

    from trainers import config as config_lib
    from trainers import tasks
    from trainers.optimization import create_optimizer
    from trainers.strategy import create_strategy, is_chief, split_cpu
    from trainers.trainer import Trainer

    if args.strategy == "mirrored":
        split_cpu(2)
    strategy = create_strategy(args.strategy, cpu_devices=2 if args.strategy == "mirrored" else None)
    model_dir = pathlib.Path(tempfile.mkdtemp(prefix="zoo-buckets-"))  # Token cache shared by both paddings.
    trainers, steps_per_epoch, descriptions, iterators = {}, {}, {}, {}
    paddings = args.paddings.split(",")
    for padding in paddings:
        values = config_lib.load_config(args.config).to_dict()
        values["data"].update(bucket_boundaries=padding, data_dir=args.data_dir)
        config = config_lib.config_from_dict(values)
        task = tasks.create_task(config, model_dir=model_dir)
        inputs = task.prepare_inputs()
        steps_per_epoch[padding] = inputs.steps_per_epoch
        descriptions[padding] = inputs.bucket_description
        with strategy.scope():
            model = task.build_model(inputs)
            optimizer = create_optimizer(config, model, total_steps=10**6)
        trainers[padding] = Trainer(strategy=strategy, objective=task.objective, model=model, optimizer=optimizer,
                                    model_dir=model_dir / padding, steps_per_loop=config.train.steps_per_loop)
        iterators[padding] = iter(strategy.distribute_datasets_from_function(inputs.train_input_fn))
    steps_per_loop = config.train.steps_per_loop

    def call(padding):
        return lambda: float(trainers[padding].train_steps(iterators[padding], steps_per_loop)["loss_sum"])

    for padding in paddings:
        call(padding)()  # Tracing.
    seconds = common.alternating_blocks({padding: call(padding) for padding in paddings},
                                        blocks=args.blocks, calls_per_block=1)
    if is_chief(strategy):
        result = {
            padding: {
                "seconds_per_step": sum(times) / len(times) / steps_per_loop,
                "steps_timed": len(times) * steps_per_loop,
                "steps_per_epoch": steps_per_epoch[padding],
                "buckets": descriptions[padding],
            }
            for padding, times in seconds.items()
        }
        print("RESULT " + json.dumps({"replicas": strategy.num_replicas_in_sync, "results": result}))
    tf.io.gfile.rmtree(str(model_dir))


def run_job(model, strategy, paddings, args):
    """Starts one job's process(es) and returns the chief's result."""
    command = [sys.executable, "-m", "benchmarks.distributed_buckets", "--job", f"--strategy={strategy}",
               f"--config={config_path(model)}", f"--data_dir={args.data_dir}", f"--blocks={args.blocks}",
               f"--paddings={','.join(paddings)}"]
    tf_configs = loopback_tf_configs(2) if strategy == "multi_worker" else [None]
    processes = [
        subprocess.Popen(command, cwd=common.REPOSITORY, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, **({"TF_CONFIG": tf_config} if tf_config else {})))
        for tf_config in tf_configs
    ]
    try:
        outputs = [process.communicate(timeout=args.timeout) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (stdout, stderr) in zip(processes, outputs):
        if process.returncode != 0:
            raise SystemExit(f"{model} under {strategy} failed:\n{stderr[-3000:]}")
    line = next(line for stdout, _ in outputs for line in stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def measure(model, strategy, args):
    """Both paddings' mean step time, steps per epoch and buckets for `model` under `strategy`."""
    if strategy == "mirrored":
        jobs = [run_job(model, strategy, PADDINGS, args)]
    else:
        jobs = [run_job(model, strategy, [padding], args) for padding in (*PADDINGS, *reversed(PADDINGS))]
    results = {}
    for padding in PADDINGS:
        parts = [job["results"][padding] for job in jobs if padding in job["results"]]
        steps = sum(part["steps_timed"] for part in parts)
        results[padding] = dict(
            parts[0],
            seconds_per_step=sum(part["seconds_per_step"] * part["steps_timed"] for part in parts) / steps,
            steps_timed=steps,
        )
    return {"replicas": jobs[0]["replicas"], "results": results,
            "config": str(config_path(model).relative_to(common.REPOSITORY))}


def markdown(document) -> str:
    rows = []
    for row in document["runs"]:
        auto, none = row["results"]["auto"], row["results"]["none"]
        epoch = {padding: result["seconds_per_step"] * result["steps_per_epoch"] for padding, result in row["results"].items()}
        rows.append([
            f"`{row['model']}`", f"`{row['strategy']}` ({row['replicas']} replicas)", f"`{row['config']}`",
            auto["buckets"],
            f"{auto['seconds_per_step'] * 1e3:.1f} ms x {auto['steps_per_epoch']:,} = **{epoch['auto']:.0f} s**",
            f"{none['seconds_per_step'] * 1e3:.1f} ms x {none['steps_per_epoch']:,} = {epoch['none']:.0f} s",
            f"**{epoch['none'] / epoch['auto']:.2f}x**",
        ])
    table = common.markdown_table(
        ["model", "strategy", "config", "buckets (share of train examples up to each)", "epoch with buckets",
         "epoch padded to sequence_length", "buckets' speed-up"], rows)
    return "\n\n".join([
        common.environment_line(document),
        table,
        "Epoch time = mean seconds per step (over the steps timed in calls of `steps_per_loop` steps; "
        "mirrored: blocks alternating between the two paddings in one process; multi_worker: whole jobs "
        "alternating auto, none, none, auto) x steps per epoch. Every replica pads its "
        "slice of the global batch to the same bucket, so the saving carries over to several GPUs; "
        "here the replicas share 2 CPU cores, so only the ratio means something.",
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="transformer,bert")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--blocks", type=int, default=8, help="timed calls of steps_per_loop steps, per padding")
    parser.add_argument("--job", action="store_true", help=argparse.SUPPRESS)  # One job's process.
    parser.add_argument("--strategy", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--paddings", default=",".join(PADDINGS), help=argparse.SUPPRESS)
    common.add_trainer_run_flags(parser)
    args = parser.parse_args()
    common.quiet_tensorflow()
    if args.job:
        args.data_dir = None if args.data_dir == "None" else args.data_dir
        return job(args)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    models = common.selected_models(parser, args.models, MODELS)
    strategies = [name.strip() for name in args.strategies.split(",") if name.strip()]
    if not set(strategies) <= set(STRATEGIES):
        parser.error(f"--strategies takes {', '.join(STRATEGIES)}; got {args.strategies!r}")
    args.data_dir = args.data_dir or tempfile.mkdtemp(prefix="zoo-tfds-")
    runs = []
    for model in models:
        from trainers import config as config_lib
        from zoo.data import dataset_info

        # Built once here, so that two workers do not race to prepare the tfds copy.
        dataset_info(config_lib.load_config(config_path(model)).data.dataset, args.data_dir)
        for strategy in strategies:
            print(f"{model} under {strategy} ...", flush=True)
            runs.append(dict(measure(model, strategy, args), model=model, strategy=strategy))
            print(json.dumps(runs[-1]), flush=True)
    document = common.new_document(NAME, runs=runs)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
