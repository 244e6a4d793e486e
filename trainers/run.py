"""Train, evaluate and export a zoo model: `python -m trainers.run --model=bert`.

A run, in order: flags -> config -> strategy -> data + preprocessor -> model and optimizer under
`strategy.scope()` -> train (resuming from `--model_dir`) -> evaluate -> `metrics.json` -> SavedModel
-> one prediction from the exported SavedModel on a sample input.

With no flags but `--model`, it trains the model's offline default (`configs/<model>/offline.yaml`),
which needs no network.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before TensorFlow loads: hide its C++ info logs.

import importlib.metadata  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from absl import app, flags  # noqa: E402

import zoo  # noqa: E402
from trainers import config as config_lib  # noqa: E402
from trainers import experiment  # noqa: E402
from trainers.strategy import create_strategy, split_cpu  # noqa: E402
from trainers.trainer import Trainer, TrainingDivergedError, write_json_atomically  # noqa: E402
from zoo.export import export_saved_model  # noqa: E402
from zoo.registry import ConfigError  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Registered model name: bert, cnn, gru, lstm, transformer.")
flags.DEFINE_string("config", None, "Experiment YAML; default configs/<model>/<dataset or offline>.yaml.")
flags.DEFINE_string("params_override", "", "Comma-separated section.field=value, e.g. model.num_layers=4.")
flags.DEFINE_string("dataset", None, "tfds dataset name (e.g. zoo_sentiment, imdb_reviews, glue/sst2, mnist).")
flags.DEFINE_string("data_dir", None, "tfds data_dir where datasets are read and built.")
flags.DEFINE_string("model_dir", None, "Checkpoints, logs, vocabulary, metrics.json; default runs/<model>.")
flags.DEFINE_string("export_dir", "exports", "SavedModels go to <export_dir>/<model>/<version>.")
flags.DEFINE_integer("epochs", None, "Overrides train.epochs.")
flags.DEFINE_integer("steps_per_epoch", None, "Overrides train.steps_per_epoch (default: one pass).")
flags.DEFINE_integer("batch_size", None, "Overrides train.batch_size (global, over all replicas).")
flags.DEFINE_float("learning_rate", None, "Overrides train.learning_rate (peak, after warmup).")
flags.DEFINE_integer("steps_per_loop", None, "Overrides train.steps_per_loop (steps per tf.function call).")
flags.DEFINE_integer("sequence_length", None, "Overrides data.sequence_length (text models).")
flags.DEFINE_string("strategy", "default", "default | one_device | mirrored | multi_worker | tpu.")
flags.DEFINE_integer("cpu_devices", None, "With --strategy=mirrored and no GPU: split the CPU into N devices.")
flags.DEFINE_string("tpu", None, "With --strategy=tpu: local, a TPU name, or grpc://host:port.")

USAGE_ERROR = 2
SAMPLE_TEXT = "I love this movie!"

_FLAG_OVERRIDES = {  # flag -> (config section, field)
    "epochs": ("train", "epochs"),
    "steps_per_epoch": ("train", "steps_per_epoch"),
    "batch_size": ("train", "batch_size"),
    "learning_rate": ("train", "learning_rate"),
    "steps_per_loop": ("train", "steps_per_loop"),
    "sequence_length": ("data", "sequence_length"),
    "data_dir": ("data", "data_dir"),
    "dataset": ("data", "dataset"),
}


def resolve_config() -> config_lib.ExperimentConfig:
    """The YAML named by --config (or the model's default), then --params_override, then direct flags."""
    if FLAGS.config:
        values = config_lib.load_config(FLAGS.config).to_dict()
    else:
        if not FLAGS.model:
            raise ConfigError("--model is required (or --config); try --model=bert")
        path = config_lib.default_config_path(FLAGS.model, FLAGS.dataset)
        if not path.is_file():
            path = config_lib.default_config_path(FLAGS.model)
        if not path.is_file():
            zoo.get_spec(FLAGS.model)  # An unknown model name gets the registry's error.
            raise ConfigError(f"--model={FLAGS.model} has no default config at {path}")
        values = config_lib.load_config(path).to_dict()
    if FLAGS.model and FLAGS.model != values["model"]["name"]:
        raise ConfigError(f"--model={FLAGS.model} contradicts --config's model.name={values['model']['name']}")
    config_lib.apply_overrides(values, FLAGS.params_override)
    for flag, (section, field) in _FLAG_OVERRIDES.items():
        if FLAGS[flag].value is not None:
            values[section][field] = FLAGS[flag].value
    return config_lib.config_from_dict(values)


def package_versions() -> str:
    names = ["tensorflow", "keras", "keras-hub", "tensorflow-text", "tensorflow-datasets", "absl-py"]
    versions = [f"python {platform.python_version()}"]
    versions += [f"{name} {importlib.metadata.version(name)}" for name in names]
    return "Resolved by trainers.run with " + ", ".join(versions)


def describe_prediction(probabilities, class_names):
    class_id = int(probabilities.argmax())
    name = class_names[class_id] if class_names else str(class_id)
    return f"{name} (p={probabilities[class_id]:.3f})"


def run(config, *, model_dir, export_dir):
    if FLAGS.cpu_devices:
        split_cpu(FLAGS.cpu_devices)
    strategy = create_strategy(FLAGS.strategy, cpu_devices=FLAGS.cpu_devices, tpu=FLAGS.tpu)
    print(f"Strategy: {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)")

    model_dir.mkdir(parents=True, exist_ok=True)
    experiment.check_same_experiment(config, model_dir)
    config_lib.save_config(config, model_dir / "config.yaml", header=package_versions())

    task = experiment.prepare_task(config, model_dir)
    steps_per_epoch = config.train.steps_per_epoch or max(1, task.num_train_examples // config.train.batch_size)
    total_steps = config.train.epochs * steps_per_epoch
    with strategy.scope():
        model = experiment.build_model(config, task)
        optimizer = experiment.create_optimizer(config.train, total_steps)

    trainer = Trainer(
        strategy=strategy,
        model=model,
        optimizer=optimizer,
        num_classes=task.num_classes,
        model_dir=model_dir,
        steps_per_loop=config.train.steps_per_loop,
    )
    started = time.perf_counter()
    trainer.train(task.train_input_fn, epochs=config.train.epochs, steps_per_epoch=steps_per_epoch)
    train_seconds = time.perf_counter() - started

    metrics = trainer.evaluate(task.eval_input_fn)
    metrics["train_seconds"] = round(train_seconds, 2)
    metrics["global_step"] = int(trainer.global_step.numpy())
    write_json_atomically(model_dir / "metrics.json", metrics)

    version_dir = export_saved_model(
        model, task.preprocessor, task.serving_input_spec, export_dir=export_dir, model_name=config.model_name
    )
    serving = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    sample_input = task.sample_input if task.modality == "image" else tf.constant([SAMPLE_TEXT])
    probabilities = serving(sample_input)["probabilities"].numpy()[0]

    print(
        "Eval metrics: "
        + ", ".join(f"{name}={metrics[name]:.4f}" for name in ("accuracy", "loss", "precision", "recall", "f1"))
        + f" on {metrics['num_examples']} examples ({model_dir / 'metrics.json'})"
    )
    print(f"SavedModel: {version_dir}")
    sample = f"{SAMPLE_TEXT!r}" if task.modality == "text" else f"the first eval image (label {task.sample_label})"
    print(f"Exported model's answer for {sample}: {describe_prediction(probabilities, task.class_names)}")


def main(argv):
    tfds.disable_progress_bar()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = resolve_config()
        model_dir = pathlib.Path(FLAGS.model_dir or f"runs/{config.model_name}")
        run(config, model_dir=model_dir, export_dir=pathlib.Path(FLAGS.export_dir))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except TrainingDivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    FLAGS.set_default("verbosity", -1)  # absl WARNING: tfds logs every file it opens at INFO.
    app.run(main)
