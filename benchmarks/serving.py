"""Latency of an exported zoo SavedModel served from a fresh process, against the Keras model.

    python -m benchmarks.serving                       # every model: offline configs, *_local ones too
    python -m benchmarks.serving --models=bert,cnn --quick

For each model config, a freshly built (untrained: latency does not depend on the weights) model
and its preprocessor are exported with `zoo.export.export_saved_model`, as `trainers.run` does.

- SavedModel: a new Python process that imports only `tensorflow` and `tensorflow_text` (whose
  ops the text graphs need) loads the export and calls `serving_default` on raw inputs (strings
  or pixels), batch 1 and 32: p50 / p99 per call after a warm-up, load time, and the process's
  peak RSS (`VmHWM` of /proc/self/status; `resource.getrusage`'s ru_maxrss is recorded too, but
  on Linux a child started from a big parent reports the parent's size there). It also reports
  any zoo / keras_hub module that leaked in.
- Keras in-process: the same raw inputs through `preprocessor` then `model(..., training=False)`
  called eagerly in this process (zoo, keras-hub and the model loaded), the way a notebook user
  calls it; and the same two calls inside one `tf.function`, as the export traces them.

The two sides run in different processes, so their ratio is not a same-process figure; the
in-process side is timed before and after the fresh process and its two runs pooled.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import time

from benchmarks import common

common.quiet_tensorflow()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from absl import logging  # noqa: E402

from benchmarks.input_pipeline import MODELS, config_paths, local_data_present  # noqa: E402
from trainers import config as config_lib  # noqa: E402
from trainers import tasks  # noqa: E402
from zoo.data import local  # noqa: E402
from zoo.export import export_saved_model, saved_model_size_bytes  # noqa: E402

NAME = "serving"
BATCH_SIZES = (1, 32)

# Runs in the fresh serving process: nothing from this repository is importable there.
SERVER_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    def peak_rss_mib():
        # VmHWM: this process's peak since exec. getrusage's ru_maxrss can report the PARENT's size
        # instead (the high-water mark of the memory image replaced at exec, see fs/exec.c).
        try:
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
        except (OSError, StopIteration):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer's ops)
    imported = time.perf_counter()
    version_dir, inputs_path, calls, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    serving = tf.saved_model.load(version_dir).signatures["serving_default"]
    loaded = time.perf_counter()
    rss_loaded = peak_rss_mib()
    name, spec = next(iter(serving.structured_input_signature[1].items()))
    raw = np.load(inputs_path, allow_pickle=True)
    result = {"import_seconds": imported - started, "load_seconds": loaded - imported,
              "peak_rss_after_load_mib": rss_loaded, "latency_seconds": {}}
    for batch_size in (1, 32):
        batch = tf.constant(raw[:batch_size].tolist() if raw.dtype == object else raw[:batch_size], spec.dtype)
        for _ in range(warmup):
            serving(**{name: batch})["probabilities"].numpy()
        seconds = []
        for _ in range(calls):
            t = time.perf_counter()
            serving(**{name: batch})["probabilities"].numpy()
            seconds.append(time.perf_counter() - t)
        result["latency_seconds"][str(batch_size)] = seconds
    result["peak_rss_mib"] = peak_rss_mib()
    result["getrusage_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["leaked_modules"] = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("zoo", "trainers", "keras_hub")})
    print(json.dumps(result))
    """
)


def raw_inputs(inputs, config, count=32):
    """`count` raw eval examples, as a client sends them (strings, or float32 pixels)."""
    from zoo import data

    dataset = data.load(config.data.dataset, data.get_dataset_spec(config.data.dataset).eval_split, config.data.data_dir)
    examples = [raw for raw, _ in dataset.take(count)]
    if inputs.modality == "image":
        return np.stack([example.numpy().astype(np.float32) for example in examples])
    return np.array([example.numpy().decode() for example in examples], dtype=object)


def latencies(call, batch, calls, warmup, budget_seconds=4.0):
    """Seconds per call: `calls` calls after `warmup`, fewer (at least 10) past `budget_seconds`."""
    for _ in range(warmup):
        call(batch)
    seconds = []
    while len(seconds) < calls and (len(seconds) < 10 or sum(seconds) < budget_seconds):
        started = time.perf_counter()
        call(batch)
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(seconds):
    return {"p50_ms": common.percentile(seconds, 0.5) * 1e3, "p99_ms": common.percentile(seconds, 0.99) * 1e3}


def measure(model_name, path, args, work_dir):
    values = config_lib.load_config(path).to_dict()
    if args.data_dir:
        values["data"]["data_dir"] = args.data_dir
    config = config_lib.config_from_dict(values)
    model_dir = work_dir / f"{model_name}-{config.data.dataset}"
    model_dir.mkdir()
    task = tasks.create_task(config, model_dir=model_dir)
    inputs = task.prepare_inputs()
    model = task.build_model(inputs)
    version_dir = export_saved_model(
        model,
        inputs.preprocessor,
        inputs.serving_input_spec,
        export_dir=work_dir / "exports",
        model_name=f"{model_name}-{config.data.dataset}",
        encoder=getattr(model, "encoder", None),
    )
    raw = raw_inputs(inputs, config)
    inputs_path = model_dir / "inputs.npy"
    np.save(inputs_path, raw)

    def keras_eager(batch):
        return tf.nn.softmax(model(inputs.preprocessor(batch), training=False)).numpy()

    @tf.function
    def keras_graph(batch):
        return tf.nn.softmax(model(inputs.preprocessor(batch), training=False))

    batches = {size: tf.constant(raw[:size].tolist() if raw.dtype == object else raw[:size]) for size in BATCH_SIZES}
    in_process = {"eager": {size: [] for size in BATCH_SIZES}, "tf.function": {size: [] for size in BATCH_SIZES}}

    def time_in_process():
        for size, batch in batches.items():
            in_process["eager"][size] += latencies(keras_eager, batch, args.calls // 2, args.warmup)
            in_process["tf.function"][size] += latencies(lambda b: keras_graph(b).numpy(), batch, args.calls // 2, args.warmup)

    time_in_process()
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", SERVER_SCRIPT, str(version_dir), str(inputs_path), str(args.calls), str(args.warmup)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=work_dir,  # Not the repository: zoo must not be importable by accident.
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    process_seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"serving process failed: {completed.stderr[-2000:]}")
    served = json.loads(completed.stdout.strip().splitlines()[-1])
    time_in_process()
    row = {
        "model": model_name,
        "dataset": config.data.dataset,
        "config": str(path.relative_to(common.REPOSITORY)),
        "sequence_length": config.data.sequence_length if inputs.modality == "text" else None,
        "input": "text" if inputs.modality == "text" else f"image {list(raw.shape[1:])}",
        "parameters": model.count_params(),
        "saved_model_mib": saved_model_size_bytes(version_dir) / 2**20,
        "serving_process_seconds": process_seconds,
        "serving_import_seconds": served["import_seconds"],
        "serving_load_seconds": served["load_seconds"],
        "serving_peak_rss_mib": served["peak_rss_mib"],
        "serving_peak_rss_after_load_mib": served["peak_rss_after_load_mib"],
        "serving_getrusage_maxrss_mib": served["getrusage_maxrss_mib"],
        "leaked_modules": served["leaked_modules"],
        "latency": {},
    }
    for size in BATCH_SIZES:
        row["latency"][str(size)] = {
            "saved_model": summary(served["latency_seconds"][str(size)]),
            "keras_eager": summary(in_process["eager"][size]),
            "keras_eager_calls": len(in_process["eager"][size]),
            "keras_tf_function": summary(in_process["tf.function"][size]),
        }
    return row


def markdown(document) -> str:
    rows = []
    for row in document["results"]:
        for size in BATCH_SIZES:
            latency = row["latency"][str(size)]
            saved, eager, graph = latency["saved_model"], latency["keras_eager"], latency["keras_tf_function"]
            rows.append(
                [
                    f"`{row['model']}`",
                    f"`{row['dataset']}`",
                    size,
                    f"**{saved['p50_ms']:.2f}** / {saved['p99_ms']:.2f}",
                    f"{eager['p50_ms']:.2f} / {eager['p99_ms']:.2f}",
                    f"{graph['p50_ms']:.2f} / {graph['p99_ms']:.2f}",
                    f"{eager['p50_ms'] / saved['p50_ms']:.1f}x",
                    f"{row['serving_peak_rss_mib']:.0f}" if size == 1 else "",
                    f"{row['serving_load_seconds']:.1f}" if size == 1 else "",
                ]
            )
    table = common.markdown_table(
        ["model", "config dataset", "batch", "SavedModel p50 / p99 ms", "Keras eager p50 / p99 ms",
         "Keras tf.function p50 / p99 ms", "eager / SavedModel (p50)", "serving peak RSS MiB", "load s"],
        rows,
    )
    leaks = [f"{row['model']}: {', '.join(row['leaked_modules'])}" for row in document["results"] if row["leaked_modules"]]
    sizes = "; ".join(
        f"`{row['model']}` on `{row['dataset']}` {row['parameters']:,} parameters, {row['saved_model_mib']:.1f} MiB"
        for row in document["results"]
    )
    return (
        f"{common.environment_line(document)}\n\n{table}\n\n"
        f"Latency of one call on raw inputs (text or pixels; preprocessing inside both sides), "
        f"{document['settings']['calls']} calls per batch size after {document['settings']['warmup']} warm-up calls "
        "(Keras eager: fewer where slow, at least 20, so p99 there is close to the maximum). "
        "SavedModel: a fresh process importing only tensorflow and tensorflow_text "
        f"({'no zoo or keras_hub module loaded' if not leaks else 'LEAKED: ' + '; '.join(leaks)}); peak RSS is that "
        "process's whole life, from /proc/self/status VmHWM (TensorFlow itself is about 550 MiB). Keras: the model object in the benchmark's "
        f"process. Models: {sizes}.\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--data_dir", default=None, help="tfds data_dir (default: tfds' own, ~/tensorflow_datasets)")
    parser.add_argument("--no_local", action="store_true", help="only the offline configs")
    parser.add_argument("--quick", action="store_true", help="50 calls per batch size instead of 200")
    common.add_output_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    args.calls = 50 if args.quick else 200
    args.warmup = 5
    logging.set_verbosity(logging.WARNING)
    tfds.disable_progress_bar()
    models = common.selected_models(parser, args.models, MODELS)
    results, skipped = [], []
    with tempfile.TemporaryDirectory() as work_dir:
        for model_name, dataset_label, path in config_paths(models, include_local=not args.no_local):
            if dataset_label.endswith("_local") and not local_data_present(dataset_label):
                skipped.append(f"{model_name} on {dataset_label}: no shared data at {local.shared_data_dir()}")
                print(f"skip {skipped[-1]}", flush=True)
                continue
            row = measure(model_name, path, args, pathlib.Path(work_dir))
            results.append(row)
            for size in BATCH_SIZES:
                latency = row["latency"][str(size)]
                print(
                    f"{model_name:12s} {row['dataset']:14s} batch {size:2d}  SavedModel p50 "
                    f"{latency['saved_model']['p50_ms']:7.2f} ms p99 {latency['saved_model']['p99_ms']:7.2f} ms  "
                    f"Keras eager p50 {latency['keras_eager']['p50_ms']:7.2f} ms  "
                    f"tf.function p50 {latency['keras_tf_function']['p50_ms']:7.2f} ms",
                    flush=True,
                )
            print(f"{'':12s} serving process peak RSS {row['serving_peak_rss_mib']:.0f} MiB, leaked {row['leaked_modules']}")
    document = common.new_document(NAME, settings=vars(args), results=results, skipped=skipped)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
