"""Train, evaluate and export a zoo model: `python -m trainers.run --model=bert`.

A run, in order: flags -> config -> strategy -> data + preprocessor -> model and optimizer under
`strategy.scope()` -> train (resuming from `--model_dir`) -> evaluate -> `metrics.json` -> SavedModel
-> one prediction from the exported SavedModel on a sample input.

With no flags but `--model`, it trains the model's offline default (`configs/<model>/offline.yaml`),
which needs no network.

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
import pathlib  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402
from absl import app, flags, logging  # noqa: E402

import zoo  # noqa: E402
from trainers import config as config_lib  # noqa: E402
from trainers import distillation  # noqa: E402
from trainers import experiment  # noqa: E402
from trainers.objectives import create_objective  # noqa: E402
from trainers.phases import Phases  # noqa: E402
from trainers.strategy import create_strategy, is_chief, split_cpu  # noqa: E402
from trainers.trainer import Trainer, TrainingDivergedError  # noqa: E402
from zoo.atomic import write_json_atomically  # noqa: E402
from zoo.errors import ConfigError  # noqa: E402
from zoo.export import export_saved_model, saved_model_size_bytes  # noqa: E402
from zoo.presets import load_bert_preset  # noqa: E402
from zoo.serving import model_card, predict_local  # noqa: E402

FLAGS = flags.FLAGS
MODES = ["train_and_eval", "train", "eval", "export", "predict"]
flags.DEFINE_string("model", None, "Registered model name: bert (bert_tiny .. bert_base), bow, cnn, gru, lstm, transformer.")
flags.DEFINE_enum("task", None, list(config_lib.TASKS), "Overrides train.task. pretrain: BERT's masked LM + "
                  "next sentence prediction on a text corpus (--dataset, or --train_files); distill: learn from "
                  "--teacher's softened probabilities and the labels; default classify.")
flags.DEFINE_string("config", None, "Experiment YAML; default configs/<model>/<dataset or offline>.yaml.")
flags.DEFINE_string("params_override", "", "Comma-separated section.field=value, e.g. model.num_layers=4.")
flags.DEFINE_string("dataset", None, "tfds dataset name (e.g. zoo_sentiment, imdb_reviews, glue/sst2, mnist).")
flags.DEFINE_string("train_files", None, "Your files instead of --dataset (path or glob). Classify: labeled TSV/CSV "
                    "(header: sentence or text, optional sentence2, label). --task=pretrain: UTF-8 text files, one "
                    "sentence or paragraph per line, documents separated by blank lines.")
flags.DEFINE_string("eval_files", None, "Files to evaluate on, as --train_files (needed for classify; pretrain "
                    "holds out every 20th document without it).")
flags.DEFINE_string("bucket_boundaries", None, "Overrides data.bucket_boundaries: auto (from the train "
                    "lengths, at most 5), none (pad to --sequence_length), or lengths like 16,32,64.")
flags.DEFINE_string("data_dir", None, "tfds data_dir where datasets are read and built.")
flags.DEFINE_string("init_checkpoint", None, "Overrides train.init_checkpoint: the --model_dir of a --task=pretrain "
                    "run; fine-tuning starts from its encoder and vocabulary.")
flags.DEFINE_string("preset", None, "Overrides train.preset: a keras-hub BERT preset (local directory, or a handle "
                    "such as bert_tiny_en_uncased with a network); its sizes, weights and vocabulary.")
flags.DEFINE_integer("lora_rank", None, "Overrides train.lora_rank: freeze the BERT encoder and train rank-R LoRA "
                     "adapters on its attention query/value projections, plus the head.")
flags.DEFINE_string("teacher", None, "Overrides train.teacher (--task=distill): a SavedModel, an export base "
                    "such as exports/bert_mini, or a trained run's --model_dir.")
flags.DEFINE_float("temperature", None, "Overrides train.temperature (--task=distill): T, softening the outputs.")
flags.DEFINE_float("alpha", None, "Overrides train.alpha (--task=distill): weight of the teacher's soft loss "
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
flags.DEFINE_bool("jit_compile", None, "Overrides train.jit_compile (XLA for each replica's step).")
flags.DEFINE_bool("restore_best", None, "Overrides train.restore_best: after train_and_eval's last epoch, "
                  "evaluate and export the weights of the best evaluation instead of the last.")
flags.DEFINE_string("strategy", None, "Overrides runtime.strategy: default | one_device | mirrored | multi_worker | tpu.")
flags.DEFINE_integer("cpu_devices", None, "Overrides runtime.cpu_devices: split a GPU-less host into N devices.")
flags.DEFINE_string("tpu", None, "Overrides runtime.tpu: local, a TPU name, or grpc://host:port.")
flags.DEFINE_string("mixed_precision", None, "Overrides runtime.mixed_precision: float32 | mixed_float16 | mixed_bfloat16.")
flags.DEFINE_enum("mode", "train_and_eval", MODES, "train_and_eval: train, evaluating after each epoch "
                  "(best checkpoint kept), then evaluate and export; train: train and export; eval: evaluate "
                  "the latest checkpoint; export: export the best (else latest) checkpoint; predict: answer "
                  "--text with the latest SavedModel in <export_dir>/<model>, without a server.")
flags.DEFINE_multi_string("text", None, "With --mode=predict: a text to classify (repeatable).")
flags.DEFINE_enum("quantize", None, ["int8"], "Also export <model>_int8: int8 weights by Keras' "
                  "post-training quantization, with its size and eval accuracy beside the float model's.")

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
    "train_files": ("data", "train_files"),
    "eval_files": ("data", "eval_files"),
    "task": ("train", "task"),
    "init_checkpoint": ("train", "init_checkpoint"),
    "preset": ("train", "preset"),
    "lora_rank": ("train", "lora_rank"),
    "teacher": ("train", "teacher"),
    "temperature": ("train", "temperature"),
    "alpha": ("train", "alpha"),
    "bucket_boundaries": ("data", "bucket_boundaries"),
    "checkpoint_every_steps": ("train", "checkpoint_every_steps"),
    "clipnorm": ("train", "clipnorm"),
    "jit_compile": ("train", "jit_compile"),
    "restore_best": ("train", "restore_best"),
    "strategy": ("runtime", "strategy"),
    "cpu_devices": ("runtime", "cpu_devices"),
    "tpu": ("runtime", "tpu"),
    "mixed_precision": ("runtime", "mixed_precision"),
}


def resolve_config() -> config_lib.ExperimentConfig:
    """The YAML named by --config (or the model's default), then --params_override, then direct flags."""
    if FLAGS.config:
        values = config_lib.load_config(FLAGS.config).to_dict()
        if FLAGS.model and FLAGS.model != values["model"]["name"]:
            raise ConfigError(f"--model={FLAGS.model} contradicts --config's model.name={values['model']['name']}")
    else:
        if not FLAGS.model:
            raise ConfigError("--model is required (or --config); try --model=bert")
        path = config_lib.default_config_path(
            # Own labeled files: configs/<model>/files.yaml, sized for real sentences.
            FLAGS.model, FLAGS.dataset or ("files" if FLAGS.train_files and FLAGS.task != "pretrain" else None), FLAGS.task
        )
        if FLAGS.task == "pretrain" and zoo.get_spec(FLAGS.model).input_kind != "bert":
            raise ConfigError(f"--task=pretrain trains BERT's masked LM and next sentence prediction; "
                              f"--model={FLAGS.model} is not a BERT (try --model=bert)")
        if not path.is_file():
            raise ConfigError(f"--model={FLAGS.model} has no default config at {path}")
        values = config_lib.load_config(path).to_dict()
        values["model"]["name"] = FLAGS.model  # bert_mini from configs/bert/: the size's own defaults.
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
        if runtime.cpu_devices:
            split_cpu(runtime.cpu_devices)
        strategy = create_strategy(runtime.strategy, cpu_devices=runtime.cpu_devices, tpu=runtime.tpu)
    print(f"Strategy: {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)")
    chief = is_chief(strategy)
    if not chief:
        model_dir = pathlib.Path(tempfile.mkdtemp(prefix="zoo-worker-"))

    model_dir.mkdir(parents=True, exist_ok=True)
    experiment.check_same_experiment(config, model_dir)
    if mode in ("train", "train_and_eval"):
        config_lib.save_config(config, model_dir / "config.yaml", header=package_versions())

    preset = load_bert_preset(config.train.preset) if config.train.preset else None
    teacher = teacher_saved_model(config.train.teacher, model_dir) if config.train.task == "distill" else None
    keras.mixed_precision.set_global_policy(runtime.mixed_precision)  # After the teacher's export, if any.
    with phases.phase("data", "reading and preparing the train and eval splits"):
        task = experiment.prepare_task(config, model_dir, preset, teacher, phases=phases)
    # After the data is prepared (building a dataset draws random numbers): the same initial
    # weights and dropout masks on every run of this config.
    keras.utils.set_random_seed(config.train.seed)
    steps_per_epoch = (
        config.train.steps_per_epoch
        or task.steps_per_epoch
        or max(1, task.num_train_examples // config.train.batch_size)
    )
    with phases.phase("model"), strategy.scope():
        model = experiment.build_model(config, task, preset)
        optimizer = experiment.create_optimizer(config, model, total_steps=config.train.epochs * steps_per_epoch)
    print(f"Model: {type(model).__name__}, {experiment.parameter_counts(model)}"
          + (f" (LoRA rank {config.train.lora_rank})" if config.train.lora_rank else ""))
    trainer = Trainer(
        strategy=strategy,
        objective=create_objective(config.train),
        model=model,
        optimizer=optimizer,
        model_dir=model_dir,
        steps_per_loop=config.train.steps_per_loop,
        jit_compile=config.train.jit_compile,
        checkpoint_every_steps=config.train.checkpoint_every_steps,
    )

    if mode in ("train", "train_and_eval"):

        def evaluate_and_keep_best(epoch):
            with phases.phase("evaluation", f"scoring the eval split after epoch {epoch + 1}",
                              report_end=False) as evaluation:
                metrics = trainer.evaluate(task.eval_input_fn)
                trainer.save_if_best(metrics)
            print(f"Eval after epoch {epoch + 1}: {format_metrics(metrics)} in {evaluation.seconds:.1f} s")

        first_step = int(trainer.global_step.numpy())
        with phases.phase("training") as training:  # Its end line: "Trained to step ...".
            trainer.train(
                task.train_input_fn,
                epochs=config.train.epochs,
                steps_per_epoch=steps_per_epoch,
                after_epoch=evaluate_and_keep_best if mode == "train_and_eval" else None,
            )
        steps, train_seconds = int(trainer.global_step.numpy()) - first_step, max(training.seconds, 1e-9)
        print(f"Trained to step {first_step + steps} in {training.wall_seconds:.1f} s; epoch time "
              f"{train_seconds * steps_per_epoch / max(steps, 1):.1f} s "
              f"({trainer.examples_trained / train_seconds:.1f} examples/s, evaluation excluded)")
        if mode == "train_and_eval" and config.train.restore_best:
            print(f"Restoring the best evaluation's weights: {trainer.restore(best=True)}")
    elif mode == "eval":
        print(f"Evaluating {trainer.restore()}")
    else:
        print(f"Exporting {trainer.restore(best=True)}")

    metrics = None
    if mode in ("eval", "train_and_eval"):
        with phases.phase("evaluation", "scoring the eval split", report_end=False) as evaluation:
            metrics = trainer.evaluate(task.eval_input_fn)
        metrics["global_step"] = int(trainer.global_step.numpy())
        write_json_atomically(model_dir / "metrics.json", metrics)
        print(f"Eval metrics: {format_metrics(metrics)} on {metrics['num_examples']} examples "
              f"in {evaluation.seconds:.1f} s ({model_dir / 'metrics.json'})")
    if runtime.strategy == "multi_worker":
        checksum = sum(float(tf.reduce_sum(tf.cast(weight, tf.float64))) for weight in model.weights)
        print(f"Weights checksum: {checksum!r}")
    if not chief:
        shutil.rmtree(model_dir, ignore_errors=True)
    elif config.train.task == "pretrain":
        print(f"Pretrained encoder in {model_dir}; fine-tune it with --task=classify --init_checkpoint={model_dir}")
    elif mode != "eval" and export_dir is not None:
        with phases.phase("export", f"writing a SavedModel under {export_dir / config.model_name} and loading it back"):
            version_dir = export_and_try(experiment.without_lora(model, task), task, config.model_name, export_dir,
                                         model_dir=model_dir)
        if quantize:
            with phases.phase("quantization", f"{quantize} weights, evaluated and exported"):
                export_quantized(trainer, task, config.model_name, export_dir, quantize, float_version_dir=version_dir)
    print(phases.summary())
    return metrics


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


def teacher_saved_model(teacher, model_dir) -> pathlib.Path:
    """--teacher as a SavedModel directory: as given, or a trained run's model_dir, exported once.

    A run's model_dir is exported (best checkpoint) on the host, in float32, into
    `model_dir/teacher/<teacher model>/<version>`, as `--mode=export` would export it.
    """
    saved_model = distillation.find_teacher_saved_model(teacher)
    if saved_model is not None:
        return saved_model
    teacher_dir = pathlib.Path(teacher)
    if not (teacher_dir / "config.yaml").is_file():
        raise ConfigError(f"--teacher={teacher} is neither a SavedModel, an export base (<export_dir>/<model>) "
                          "nor a trained run's --model_dir")
    teacher_config = dataclasses.replace(config_lib.load_config(teacher_dir / "config.yaml"), runtime=config_lib.RuntimeConfig())
    export_base = model_dir / "teacher" / teacher_config.model_name
    if distillation.find_teacher_saved_model(export_base) is None:
        print(f"Exporting the teacher {teacher_dir} to {export_base}")
        run(teacher_config, mode="export", model_dir=teacher_dir, export_dir=model_dir / "teacher")
    return distillation.find_teacher_saved_model(export_base)


def export_quantized(trainer, task, model_name, export_dir, quantize, *, float_version_dir):
    """Quantizes the model's weights to int8 in place, evaluates it and exports `<model>_int8`."""
    float_metrics = trainer.evaluate(task.eval_input_fn)
    with trainer.strategy.scope():
        trainer.model.quantize(quantize)
    quantized_metrics = trainer.evaluate(task.eval_input_fn)
    # No TFLite here: the converter has no kernels for Keras' int8 matmuls.
    version_dir = export_and_try(trainer.model, task, f"{model_name}_{quantize}", export_dir, tflite=False,
                                 model_dir=trainer.model_dir, metrics=quantized_metrics)
    print(
        f"float32: {saved_model_size_bytes(float_version_dir) / 1e6:.2f} MB, "
        f"accuracy {float_metrics['accuracy']:.4f}; {quantize}: "
        f"{saved_model_size_bytes(version_dir) / 1e6:.2f} MB, accuracy {quantized_metrics['accuracy']:.4f}"
    )


def format_metrics(metrics):
    names = ["accuracy", "loss", "precision", "recall", "f1", "auc", "teacher_agreement",
             "mlm_accuracy", "mlm_loss", "nsp_accuracy", "nsp_loss"]
    return ", ".join(f"{name}={metrics[name]:.4f}" for name in names if name in metrics)


def export_and_try(model, task, model_name, export_dir, tflite=True, *, model_dir, metrics=None):
    """Exports the SavedModel (with warm-up records from eval inputs and a model card from `model_dir`'s
    config and metrics, or `metrics`), prints the TF Serving releases that load it, loads it back
    and prints its answer for a sample input."""
    version_dir = export_saved_model(
        model,
        task.preprocessor,
        task.serving_input_spec,
        export_dir=export_dir,
        model_name=model_name,
        encoder=getattr(model, "encoder", None),  # BERT: also an `encode` signature (sentence embedding).
        # TFLite for the CNN (mobile, edge); its builtin kernels need a float32 model.
        tflite=tflite and task.modality == "image" and keras.mixed_precision.global_policy().name == "float32",
        warmup_inputs=task.eval_inputs,
        description=model_card.run_description(model_dir, modality=task.modality, labels=task.class_names,
                                               num_train_examples=task.num_train_examples, metrics=metrics),
    )
    print(f"SavedModel: {version_dir}")
    print(f"TF Serving: {model_card.serving_summary(model_card.read_manifest(version_dir))}")
    serving = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    if task.modality == "image":
        sample, description = task.sample_input, f"the first eval image (label {task.sample_label})"
    else:
        sample, description = tf.constant([SAMPLE_TEXT]), repr(SAMPLE_TEXT)
    if isinstance(task.serving_input_spec, tuple):  # A sentence-pair task: text and text_pair.
        sample, description = task.sample_input, "the first eval pair"
    names = [spec.name for spec in tf.nest.flatten(task.serving_input_spec)]
    probabilities = serving(**dict(zip(names, tf.nest.flatten(sample))))["probabilities"].numpy()[0]
    class_id = int(probabilities.argmax())
    name = task.class_names[class_id] if task.class_names else str(class_id)
    print(f"Exported model's answer for {description}: {name} (p={probabilities[class_id]:.3f})")
    return version_dir


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
    app.run(main)
