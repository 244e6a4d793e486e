"""Train, evaluate and export a zoo model: `python -m trainers.run --model=bert`.

A run, in order: flags -> config -> strategy -> the task (`trainers.tasks`): its inputs, then its
model and the optimizer under `strategy.scope()` -> train (resuming from `--model_dir`) -> evaluate
-> `metrics.json` -> the task's output (a SavedModel, answering a sample input once loaded back).

With no flags but `--model`, it trains the model's offline default
(`trainers/configs/<model>/offline.yaml`), which needs no network.

Each phase (startup, vocabulary, data, model, training, evaluation, export) is timed by
`trainers.phases`; a long one prints a line when it starts and when it ends, and the run ends with
a "Phases: ..." line of their seconds.
"""

import os
import time

STARTED = time.perf_counter()  # Startup's clock: importing TensorFlow is most of the startup.
if __name__ == "__main__":
    print("Startup: importing TensorFlow, Keras and the zoo ...", flush=True)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before TensorFlow loads: hide its C++ info logs.

import dataclasses  # noqa: E402
import errno  # noqa: E402
import importlib.metadata  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from trainers import config as config_lib  # noqa: E402
from trainers import op_threads, precision, tasks, xla  # noqa: E402
from trainers.optimization import create_optimizer  # noqa: E402
from trainers.phases import Phases  # noqa: E402
from trainers.quantization import export_quantized  # noqa: E402
from trainers.strategy import create_strategy, is_chief, split_cpu  # noqa: E402
from trainers.tasks.pretraining import PRETRAINERS  # noqa: E402
from trainers.trainer import Trainer, TrainingDivergedError  # noqa: E402
from zoo import registry  # noqa: E402
from zoo.atomic import write_json_atomically  # noqa: E402
from zoo.errors import ConfigError  # noqa: E402
from zoo.serving import latest_version_dir, predict_local  # noqa: E402

FLAGS = flags.FLAGS
MODES = ["train_and_eval", "train", "eval", "export", "predict"]
flags.DEFINE_string("model", None, "Registered model name: bert (bert_tiny .. bert_base), bow, cnn, gru, lstm, transformer. "
                    "With --config: another size of its model (--config=bert/sst2_local --model=bert_mini).")
flags.DEFINE_enum("task", None, sorted(tasks.TASKS), "Overrides task.name (default classify). " + " ".join(
    f"{name}: {tasks.TASKS[name].summary()}" for name in sorted(tasks.TASKS)))
flags.DEFINE_string("config", None, "Experiment YAML: a path, or a shipped config such as bert/sst2_local; default "
                    "trainers/configs/<model>/<task, dataset or offline>.yaml.")
flags.DEFINE_string("params_override", "", "Comma-separated section.field=value, e.g. model.num_layers=4.")
flags.DEFINE_string("dataset", None, "tfds dataset name (e.g. zoo_sentiment, imdb_reviews, glue/sst2, mnist).")
flags.DEFINE_string("train_files", None, "Your files instead of --dataset (path or glob). Classify: labeled TSV/CSV "
                    "(header: sentence or text, optional sentence2, label). --task=pretrain: UTF-8 text files, one "
                    "sentence or paragraph per line, documents separated by blank lines.")
flags.DEFINE_string("eval_files", None, "Files to evaluate on, as --train_files (needed for classify; pretrain "
                    "holds out every 20th document without it).")
flags.DEFINE_string("bucket_boundaries", None, "Overrides data.bucket_boundaries: auto (from the train "
                    "lengths: at most 5 where the step compiles per shape, XLA or TPU, else at most 10), none "
                    "(pad to --sequence_length), or lengths like 16,32,64.")
flags.DEFINE_string("data_dir", None, "tfds data_dir where datasets are read and built.")
flags.DEFINE_string("init_checkpoint", None, "Overrides task.init_checkpoint: the --model_dir of a --task=pretrain "
                    "run; fine-tuning starts from its encoder and vocabulary.")
flags.DEFINE_string("preset", None, "Overrides task.preset: a keras-hub BERT preset (local directory, or a handle "
                    "such as bert_tiny_en_uncased with a network); its sizes, weights and vocabulary.")
flags.DEFINE_integer("lora_rank", None, "Overrides task.lora_rank: freeze the BERT encoder and train rank-R LoRA "
                     "adapters on its attention query/value projections, plus the head.")
flags.DEFINE_enum("objective", None, list(PRETRAINERS), "Overrides task.objective (--task=pretrain): mlm, BERT's "
                  "masked LM (+ next sentence prediction); electra, replaced-token detection (Clark et al. 2020).")
flags.DEFINE_bool("nsp", None, "Overrides task.nsp (--task=pretrain): next sentence prediction (false: RoBERTa's "
                  "masked LM alone; default true for mlm, false for electra).")
flags.DEFINE_bool("packing", None, "Overrides task.packing (--task=pretrain): fill each sequence with consecutive "
                  "sentences.")
flags.DEFINE_bool("whole_word_masking", None, "Overrides task.whole_word_masking (--task=pretrain): mask a word's "
                  "WordPieces together.")
flags.DEFINE_string("teacher", None, "Overrides task.teacher (--task=distill): a SavedModel, an export base "
                    "such as exports/bert_mini, or a trained run's --model_dir.")
flags.DEFINE_float("temperature", None, "Overrides task.temperature (--task=distill): T, softening the outputs.")
flags.DEFINE_float("alpha", None, "Overrides task.alpha (--task=distill): weight of the teacher's soft loss "
                   "(1 - alpha: the true labels).")
flags.DEFINE_string("model_dir", None, "Checkpoints, logs, vocabulary, metrics.json; default runs/<model>.")
flags.DEFINE_string("export_dir", "exports", "SavedModels go to <export_dir>/<model>/<version>.")
flags.DEFINE_integer("epochs", None, "Overrides train.epochs.")
flags.DEFINE_integer("steps_per_epoch", None, "Overrides train.steps_per_epoch (default: one pass).")
flags.DEFINE_integer("batch_size", None, "Overrides train.batch_size (global, over all replicas).")
flags.DEFINE_float("learning_rate", None, "Overrides train.learning_rate (peak, after warmup).")
flags.DEFINE_integer("steps_per_loop", None, "Overrides train.steps_per_loop (steps per tf.function call).")
flags.DEFINE_alias("steps_per_execution", "steps_per_loop")
flags.DEFINE_integer("sequence_length", None, "Overrides data.sequence_length (text models).")
flags.DEFINE_integer("checkpoint_every_steps", None, "Overrides train.checkpoint_every_steps.")
flags.DEFINE_float("clipnorm", None, "Overrides train.clipnorm (global gradient norm clipping).")
flags.DEFINE_bool("jit_compile", None, "Overrides train.jit_compile (XLA for each replica's step; default auto: "
                  "where that measured faster, trainers/xla.py).")
flags.DEFINE_float("train_hours", None, "Overrides train.train_hours: a time budget for training; at the first "
                   "loop end past it the run checkpoints, evaluates and exports (rerun to resume).")
flags.DEFINE_bool("restore_best", None, "Overrides train.restore_best: after train_and_eval's last epoch, "
                  "evaluate and export the weights of the best evaluation instead of the last.")
flags.DEFINE_string("strategy", None, "Overrides runtime.strategy: default | one_device | mirrored | multi_worker | tpu.")
flags.DEFINE_string("intra_op_threads", None, "Overrides runtime.intra_op_threads: auto (one thread per op where "
                    "that measured faster: trainers/op_threads.py) | N threads one op may use | 0 (one per core).")
flags.DEFINE_integer("cpu_devices", None, "Overrides runtime.cpu_devices: split a GPU-less host into N devices.")
flags.DEFINE_string("tpu", None, "Overrides runtime.tpu: local, a TPU name, or grpc://host:port.")
flags.DEFINE_string("mixed_precision", None, "Overrides runtime.mixed_precision: float32 | mixed_float16 | mixed_bfloat16 "
                    "| auto (the faster on this machine, by the rules of trainers/precision.py).")
flags.DEFINE_enum("mode", "train_and_eval", MODES, "train_and_eval: train, evaluating after each epoch "
                  "(best checkpoint kept), then evaluate and export; train: train and export; eval: evaluate "
                  "the latest checkpoint; export: export the best (else latest) checkpoint; predict: answer "
                  "--text with the latest SavedModel in <export_dir>/<model>, without a server.")
flags.DEFINE_multi_string("text", None, "With --mode=predict: a text to classify (repeatable).")
flags.DEFINE_enum("quantize", None, ["int8"], "Also export <model>_int8: int8 weights by Keras' "
                  "post-training quantization, with its size and eval accuracy beside the float model's.")

USAGE_ERROR = 2

_FLAG_OVERRIDES = {  # flag -> (config section, field)
    "epochs": ("train", "epochs"),
    "steps_per_epoch": ("train", "steps_per_epoch"),
    "batch_size": ("train", "batch_size"),
    "learning_rate": ("train", "learning_rate"),
    "steps_per_loop": ("train", "steps_per_loop"),
    "sequence_length": ("data", "sequence_length"),
    "data_dir": ("data", "data_dir"),
    "dataset": ("data", "dataset"),
    "train_files": ("data", "train_files"),
    "eval_files": ("data", "eval_files"),
    "task": ("task", "name"),
    "init_checkpoint": ("task", "init_checkpoint"),
    "preset": ("task", "preset"),
    "lora_rank": ("task", "lora_rank"),
    "objective": ("task", "objective"),
    "nsp": ("task", "nsp"),
    "packing": ("task", "packing"),
    "whole_word_masking": ("task", "whole_word_masking"),
    "teacher": ("task", "teacher"),
    "temperature": ("task", "temperature"),
    "alpha": ("task", "alpha"),
    "bucket_boundaries": ("data", "bucket_boundaries"),
    "checkpoint_every_steps": ("train", "checkpoint_every_steps"),
    "clipnorm": ("train", "clipnorm"),
    "jit_compile": ("train", "jit_compile"),
    "restore_best": ("train", "restore_best"),
    "train_hours": ("train", "train_hours"),
    "strategy": ("runtime", "strategy"),
    "cpu_devices": ("runtime", "cpu_devices"),
    "tpu": ("runtime", "tpu"),
    "mixed_precision": ("runtime", "mixed_precision"),
    "intra_op_threads": ("runtime", "intra_op_threads"),
}


def same_family_model(flag_model, config_model) -> str:
    """`--model`, when it names another size of the --config's model class (`--config=bert/sst2_local
    --model=bert_mini`: the recipe on BERT-Mini's sizes; the YAML's other model fields still apply)."""
    if registry.get_spec(flag_model).model_class is not registry.get_spec(config_model).model_class:
        raise ConfigError(f"--model={flag_model} contradicts --config's model.name={config_model}; "
                          f"--model may only name another size of the same family")
    return flag_model


def resolve_config() -> config_lib.ExperimentConfig:
    """The YAML named by --config (or the model's default), then --params_override, then direct flags."""
    if FLAGS.config:
        values = config_lib.load_config(FLAGS.config).to_dict()
        if FLAGS.model and FLAGS.model != values["model"]["name"]:
            values["model"]["name"] = same_family_model(FLAGS.model, values["model"]["name"])
    else:
        if not FLAGS.model:
            raise ConfigError("--model is required (or --config); try --model=bert")
        # Own labeled files: <model>/files.yaml, sized for real sentences.
        values = config_lib.default_values(FLAGS.model, FLAGS.dataset or ("files" if FLAGS.train_files else None),
                                           FLAGS.task)
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


def set_op_threads(config):
    """Applies runtime.intra_op_threads (`auto`: by trainers/op_threads.py's rule) and says what it chose."""
    threads = config.runtime.intra_op_threads
    if threads != op_threads.AUTO:
        op_threads.apply(int(threads), asked=True)
        return
    threads, reason = op_threads.auto_threads(config.runtime.strategy, config.model_fields, config.train.batch_size,
                                              config.train.jit_compile)
    chosen = "one thread per op" if threads == 1 else "TensorFlow's default threads per op (one per core)"
    if threads != op_threads.DEFAULT and not op_threads.apply(threads, asked=False):
        chosen = "the threads per op this process already runs with (TensorFlow started before the run)"
    print(f"Threads: {chosen} (--intra_op_threads=auto on {reason})")


def run(config, *, mode, model_dir, export_dir, quantize=None, phases=None):
    """One run of `config` in `model_dir` (see the module docstring), as `python -m trainers.run` does.

    Args:
        mode: one of MODES but predict.
        model_dir: pathlib.Path.
        export_dir: pathlib.Path, or None to skip the export (a hyper-parameter search's trials).
        quantize: None, or "int8" to also export an int8 copy.
        phases: a `trainers.phases.Phases` whose clock started with the process (default: one
            starting now); the run times its phases into it and prints its summary last.

    Returns:
        The final eval metrics (also in `model_dir/metrics.json`), or None where mode does not evaluate.
    """
    phases = phases or Phases()
    runtime = config.runtime
    with phases.phase("startup", since=phases.started, report_end=True):
        # Paths first: a run must not train for an hour and then find it cannot write its outputs.
        prepare_directory(model_dir, "model_dir")
        if export_dir is not None and mode != "eval":
            prepare_directory(export_dir, "export_dir", create=False)  # Created by the export, if any.
        config, reason = xla.resolve(config)
        if reason:
            print(f"XLA: {'on' if config.train.jit_compile else 'off'} for the train step (--jit_compile=auto on {reason})")
        set_op_threads(config)
        if runtime.cpu_devices:
            split_cpu(runtime.cpu_devices)
        strategy = create_strategy(runtime.strategy, cpu_devices=runtime.cpu_devices, tpu=runtime.tpu)
    print(f"Strategy: {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)")
    if runtime.mixed_precision == precision.AUTO:
        policy, reason = precision.auto_policy(strategy, config.model_fields, config.train.jit_compile)
        print(f"Precision: {policy} (--mixed_precision=auto on {reason})")
        runtime = dataclasses.replace(runtime, mixed_precision=policy)
        config = dataclasses.replace(config, runtime=runtime)
    chief = is_chief(strategy)
    if not chief:
        model_dir = pathlib.Path(tempfile.mkdtemp(prefix="zoo-worker-"))

    model_dir.mkdir(parents=True, exist_ok=True)
    config_lib.check_resumable(config, model_dir)
    if mode in ("train", "train_and_eval"):
        config_lib.save_config(config, model_dir / "config.yaml", header=package_versions())

    keras.mixed_precision.set_global_policy(runtime.mixed_precision)
    task = tasks.create_task(config, model_dir=model_dir, phases=phases, export_run=export_run)
    with phases.phase("data", "reading and preparing the train and eval splits"):
        inputs = task.prepare_inputs()
    # After the data is prepared (building a dataset draws random numbers): the same initial
    # weights and dropout masks on every run of this config.
    keras.utils.set_random_seed(config.train.seed)
    steps_per_epoch = (
        config.train.steps_per_epoch
        or inputs.steps_per_epoch
        or max(1, inputs.num_train_examples // config.train.batch_size)
    )
    with phases.phase("model"), strategy.scope():
        model = task.build_model(inputs)
        optimizer = create_optimizer(config, model, total_steps=config.train.epochs * steps_per_epoch)
    lora_rank = getattr(config.task, "lora_rank", None)
    print(f"Model: {type(model).__name__}, {parameter_counts(model)}" + (f" (LoRA rank {lora_rank})" if lora_rank else ""))
    trainer = Trainer(
        strategy=strategy,
        objective=task.objective,
        model=model,
        optimizer=optimizer,
        model_dir=model_dir,
        steps_per_loop=config.train.steps_per_loop,
        jit_compile=config.train.jit_compile,
        checkpoint_every_steps=config.train.checkpoint_every_steps,
        adversarial_epsilon=config.train.adversarial_epsilon,
    )

    evaluated = {}  # global step -> the eval metrics of the weights at that step, from this run.
    if mode in ("train", "train_and_eval"):

        def evaluate_and_keep_best(epoch):
            with phases.phase("evaluation", f"scoring the eval split after epoch {epoch + 1}",
                              report_end=False) as evaluation:
                metrics = trainer.evaluate(inputs.eval_input_fn)
                trainer.save_if_best(metrics)
            evaluated[int(trainer.global_step.numpy())] = metrics
            print(f"Eval after epoch {epoch + 1}: {format_metrics(metrics, task)} in {evaluation.seconds:.1f} s")

        with phases.phase("training") as training:  # Its end line: "Trained to step ...".
            trainer.train(
                inputs.train_input_fn,
                epochs=config.train.epochs,
                steps_per_epoch=steps_per_epoch,
                after_epoch=evaluate_and_keep_best if mode == "train_and_eval" else None,
                time_budget_seconds=config.train.train_hours and config.train.train_hours * 3600,
            )
        first_step, steps = trainer.first_step, int(trainer.global_step.numpy()) - trainer.first_step
        train_seconds = max(training.seconds, 1e-9)
        print(f"Trained to step {first_step + steps} in {training.wall_seconds:.1f} s; " + (
            f"epoch time {train_seconds * steps_per_epoch / steps:.1f} s "
            f"({trainer.examples_trained / train_seconds:.1f} examples/s, evaluation excluded)" if steps
            else "nothing left to train (the run had finished)"))
        if first_step and math.isfinite(trainer.train_seconds.numpy()):
            print(f"Training since step 0, over every call of this run: {float(trainer.train_seconds.numpy()):.1f} s")
        if mode == "train_and_eval" and config.train.restore_best:
            print(f"Restoring the best evaluation's weights: {trainer.restore(best=True)}")
    elif mode == "eval":
        print(f"Evaluating {trainer.restore()}")
    else:
        print(f"Exporting {trainer.restore(best=True)}")

    metrics = None
    if mode in ("eval", "train_and_eval"):
        step = int(trainer.global_step.numpy())
        if step in evaluated:  # The final weights were scored after their epoch: not scored again.
            metrics, scored = dict(evaluated[step]), f"as after its epoch (step {step})"
        else:
            with phases.phase("evaluation", "scoring the eval split", report_end=False) as evaluation:
                metrics = trainer.evaluate(inputs.eval_input_fn)
            scored = f"in {evaluation.seconds:.1f} s"
        metrics["global_step"] = step
        # Since step 0, resumed calls included; None for a run resumed from an older checkpoint.
        run_train_seconds = float(trainer.train_seconds.numpy())
        metrics["train_seconds"] = run_train_seconds if math.isfinite(run_train_seconds) else None
        write_json_atomically(model_dir / "metrics.json", metrics)
        print(f"Eval metrics: {format_metrics(metrics, task)} on {metrics['num_examples']} examples "
              f"{scored} ({model_dir / 'metrics.json'})")
    if runtime.strategy == "multi_worker":
        checksum = sum(float(tf.reduce_sum(tf.cast(weight, tf.float64))) for weight in model.weights)
        print(f"Weights checksum: {checksum!r}")
    if not chief:
        shutil.rmtree(model_dir, ignore_errors=True)
    elif mode != "eval":
        version_dir = task.finish(model, inputs, export_dir=export_dir)
        if quantize and version_dir is not None:
            with phases.phase("quantization", f"{quantize} weights, evaluated and exported"):
                export_quantized(trainer, task, inputs, export_dir, quantize, float_version_dir=version_dir)
    print(phases.summary())
    return metrics


def export_run(run_dir, export_dir) -> pathlib.Path:
    """Exports a trained run's best checkpoint as `--mode=export` would, on the host in float32
    (a distillation's teacher); returns the SavedModel's version directory.

    The caller's global precision policy is restored afterwards: the export sets its own.
    """
    config = dataclasses.replace(config_lib.load_config(run_dir / "config.yaml"), runtime=config_lib.RuntimeConfig())
    policy = keras.mixed_precision.global_policy()
    run(config, mode="export", model_dir=pathlib.Path(run_dir), export_dir=export_dir)
    keras.mixed_precision.set_global_policy(policy)
    return latest_version_dir(export_dir / config.model_name)


def parameter_counts(model) -> str:
    """"4,490 of 9,602 parameters trainable (46.8%)": what LoRA (or a frozen encoder) leaves to train."""
    trainable = sum(int(tf.size(weight)) for weight in model.trainable_weights)
    total = sum(int(tf.size(weight)) for weight in model.weights)
    return f"{trainable:,} of {total:,} parameters trainable ({100 * trainable / max(total, 1):.2f}%)"


def directory_problem(path) -> str | None:
    """Why directory `path` could not be created and written in ("File exists", "Not a directory",
    "Permission denied"), or None; creates nothing."""
    existing = next(parent for parent in [path, *path.parents] if parent.exists())
    if not existing.is_dir():
        return os.strerror(errno.EEXIST if existing == path else errno.ENOTDIR)
    if not os.access(existing, os.W_OK | os.X_OK):
        return os.strerror(errno.EACCES)
    return None


def prepare_directory(path, flag, create=True):
    """Raises a one-line ConfigError naming `--flag` when directory `path` cannot be created and
    written in; with `create`, creates it (and its parents) and writes a file there."""
    problem = directory_problem(path)
    if problem is None and create:
        try:
            path.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=path).close()
        except OSError as error:
            problem = error.strerror
    if problem:
        raise ConfigError(f"--{flag}={path} cannot be used as a directory ({problem}); "
                          "name a directory that exists or can be created")


def format_metrics(metrics, task):
    """"accuracy=0.9120, loss=0.2301, ...": the task's eval metrics that `metrics` holds, in its order."""
    return ", ".join(f"{name}={metrics[name]:.4f}" for name in task.EVAL_METRICS if name in metrics)


def predict(model_name, export_dir, texts):
    """Prints the latest exported version's answers for `texts`, as TF Serving would give them."""
    if not texts:
        raise ConfigError("--mode=predict needs at least one --text")
    model_base = export_dir / model_name
    if not model_base.is_dir():
        raise ConfigError(f"--mode=predict: no SavedModel at {model_base}; train or --mode=export first")
    for text, answer in zip(texts, predict_local(model_base, texts)):
        print(f"{text!r}: class {answer['class_id']}, probabilities {answer['probabilities']}")


def start_cli(argv):
    """What every absl entry point over a run does first: quiet logs, and no stray arguments."""
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # tfds logs every file it opens at INFO.
    tfds.disable_progress_bar()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


def parse_flags(argv):
    """absl's flag parsing, where a malformed flag (`--learning_rate=abc`, `--epoch=3`) is a one-line
    usage error that exits 2 like every other, instead of absl's "FATAL Flags parsing error" and 1."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        print(f"error: {error}; see --helpshort", file=sys.stderr)
        sys.exit(USAGE_ERROR)


def main(argv):
    start_cli(argv)
    try:
        config = resolve_config()
        if FLAGS.mode == "predict":
            predict(config.model_name, pathlib.Path(FLAGS.export_dir), FLAGS.text)
            return
        model_dir = pathlib.Path(FLAGS.model_dir or f"runs/{config.model_name}")
        run(config, mode=FLAGS.mode, model_dir=model_dir, export_dir=pathlib.Path(FLAGS.export_dir),
            quantize=FLAGS.quantize, phases=Phases(started=STARTED))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except TrainingDivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
