"""The experiment config: one typed schema, filled from a YAML file, then from flags.

A whole run is one readable object (TF Model Garden's idea, without its layers of factories):

    model:   {name: bert, num_layers: 2, ...}   # zoo.build(name, **the rest)
    task:    {name: classify, preset: null, ...}  # the task's own typed section (trainers.tasks)
    data:    {dataset: zoo_sentiment, sequence_length: 64, ...}
    train:   {epochs: 3, batch_size: 32, learning_rate: 1e-3, ...}
    runtime: {strategy: default, mixed_precision: float32, ...}

`trainers/configs/<model>/<dataset>.yaml` (inside the package, so an installed zoo has them)
holds the defaults of each experiment; `load_config` checks every key and type and turns a
mistake into a one-line `ConfigError` that names the field. The `task` section's fields are the
named task's (`trainers.tasks.<task>.Config`), checked by that task.
"""

import dataclasses
import pathlib
import re
import types
import typing

import yaml

from trainers import tasks
from trainers.tasks.classification import MODALITY
from zoo import registry
from zoo.data import OFFLINE_DEFAULTS
from zoo.data.text import RESERVED_TOKENS
from zoo.errors import ConfigError, did_you_mean

CONFIGS_DIR = pathlib.Path(__file__).resolve().parent / "configs"


@dataclasses.dataclass
class DataConfig:
    """Which tfds dataset feeds the run and how text becomes token ids."""

    dataset: str = "zoo_sentiment"
    data_dir: str | None = None  # tfds data_dir; None means tfds' default (~/tensorflow_datasets).
    sequence_length: int = 64  # Text is truncated or padded to this many tokens.
    vocabulary_size: int = 2000  # Upper bound of the WordPiece vocabulary learned from the train split.
    lowercase: bool = True  # Uncased WordPiece (a --preset sets its tokenizer's own).
    # Local files instead of `dataset`. classify: labeled TSV/CSV (path or glob); pretrain: a glob of
    # text files (a sentence or paragraph a line, blank lines between documents).
    train_files: str | None = None
    eval_files: str | None = None  # classify: needed with train_files; pretrain: default every 20th document.
    bucket_boundaries: str = "auto"  # Text batches padded to length buckets: auto | none | "16,32,64".


@dataclasses.dataclass
class TrainConfig:
    """The optimisation schedule of every task: AdamW, linear warmup then decay, checkpoints."""

    epochs: int = 3
    steps_per_epoch: int | None = None  # None: one pass over the train split.
    batch_size: int = 32  # Global batch, split evenly over replicas.
    learning_rate: float = 1e-3  # Peak learning rate, reached at the end of warmup.
    warmup_fraction: float = 0.1  # Share of all steps spent warming up linearly from 0.
    decay: str = "cosine"  # After warmup, decay to 0: "cosine" or "linear" (BERT's).
    weight_decay: float = 0.01  # Decoupled (AdamW); biases and normalisation scales are exempt.
    steps_per_loop: int = 20  # Train steps run inside one tf.function call (fewer host round trips).
    # Also checkpoint within epochs, so that a killed run loses at most this many steps (None: at
    # epoch ends only, which lost an hour of a one-epoch pretraining run).
    checkpoint_every_steps: int | None = 1000
    clipnorm: float | None = None  # Clip the global gradient norm to this value.
    # > 0: adversarial training on the token embeddings, a second pass per step with the table moved
    # by this L2 norm along its gradient (Miyato et al. 2017; trainers/adversarial.py). 0: off.
    adversarial_epsilon: float = 0.0
    # Layer-wise rate decay (BERT models): each layer below the top trains at this factor of the
    # rate of the one above it (ELECTRA's fine-tuning: 0.8). None: one rate for every layer.
    layer_decay: float | None = None
    # Compile the train step with XLA (on one device, the update too): true | false | auto (where it
    # measured faster: trainers/xla.py).
    jit_compile: bool | str = "auto"
    # train_and_eval: after the last epoch, go back to the weights of the best evaluation
    # (model_dir/best) for the final metrics and the export, as Keras' restore_best_weights.
    restore_best: bool = False
    # Stop training after this many hours (a checkpoint there; evaluation and export follow, and
    # the same command resumes with a new budget). None: no budget.
    train_hours: float | None = None
    seed: int = 0


@dataclasses.dataclass
class RuntimeConfig:
    """Where and in which precision the run executes (not part of what a model learns)."""

    strategy: str = "default"  # default | one_device | mirrored | multi_worker | tpu
    cpu_devices: int | None = None  # mirrored without GPUs: split the host CPU into this many devices.
    tpu: str | None = None  # tpu: local, a TPU name, or grpc://host:port.
    mixed_precision: str = "float32"  # float32 | mixed_float16 | mixed_bfloat16 | auto (trainers/precision.py)
    # Threads one op may split its work over: auto (trainers/op_threads.py) | N | 0 (one per core).
    intra_op_threads: str | int = "auto"


@dataclasses.dataclass
class ExperimentConfig:
    model: dict  # {"name": registered model name, **constructor overrides}
    task: tasks.TaskConfig = dataclasses.field(default_factory=lambda: tasks.TASKS[tasks.DEFAULT_TASK].Config())
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

    @property
    def model_name(self) -> str:
        return self.model["name"]

    @property
    def model_overrides(self) -> dict:
        return {key: value for key, value in self.model.items() if key != "name"}

    @property
    def model_fields(self) -> dict:
        """Every constructor field of the model: its registered defaults, then this config's overrides."""
        return {**registry.default_config(self.model_name), **self.model_overrides}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_SECTIONS = {"data": DataConfig, "train": TrainConfig, "runtime": RuntimeConfig}
MIXED_PRECISION_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
DECAYS = ("cosine", "linear")
# Task fields of configs written before the task section (a resumed run's config.yaml, an old
# --params_override): section.field -> the task section's field.
_LEGACY_TASK_FIELDS = {
    "train.task": "name",
    **{f"train.{field}": field for field in ("init_checkpoint", "preset", "lora_rank", "teacher", "temperature", "alpha")},
    "data.mask_rate": "mask_rate",
    "data.max_predictions": "max_predictions",
}


def _accepted_types(annotation):
    """The runtime types a field annotated `annotation` accepts (`int | None` -> (int, NoneType))."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(typing.get_args(annotation))
    return (annotation,)


def _check_value(section, field, value):
    accepted = _accepted_types(field.type)
    if float in accepted and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)  # YAML 1.1 reads `1e-3` as a string.
        except ValueError:
            pass
    if isinstance(value, bool) and bool not in accepted:
        ok = False
    else:
        ok = isinstance(value, accepted)
    if not ok:
        names = " or ".join("null" if t is type(None) else t.__name__ for t in accepted)
        raise ConfigError(f"{section}.{field.name} must be {names}, got {value!r}")
    return value


def _build_section(section, cls, values):
    if not isinstance(values, dict):
        raise ConfigError(f"{section} must be a mapping of fields, got {values!r}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    checked = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(
                f"unknown config key {section}.{key}{did_you_mean(key, fields)}; "
                f"{section} accepts: {', '.join(fields)}"
            )
        checked[key] = _check_value(section, fields[key], value)
    return cls(**checked)


def _with_task_section(values: dict) -> dict:
    """`values` with the legacy task fields of `train` and `data` moved into `task` (see _LEGACY_TASK_FIELDS)."""
    values = {name: dict(section) if isinstance(section, dict) else section for name, section in values.items()}
    task = values.setdefault("task", {})
    if not isinstance(task, dict):
        raise ConfigError(f"task must be a mapping of fields (name: one of {', '.join(sorted(tasks.TASKS))}), got {task!r}")
    for key, field in _LEGACY_TASK_FIELDS.items():
        section, name = key.split(".")
        if isinstance(values.get(section), dict) and name in values[section]:
            value = values[section].pop(name)
            if value is not None and field not in task:
                task[field] = value
    return values


def _build_task_section(values: dict) -> tasks.TaskConfig:
    """The typed config of the task `values["name"]` names; a field of another task is named as such."""
    task_class = tasks.get_task_class(values.get("name", tasks.DEFAULT_TASK))
    fields = [field.name for field in dataclasses.fields(task_class.Config)]
    own = {}
    for key, value in values.items():
        # Another task's field at that task's default (a config of --task=classify run with
        # --task=pretrain) means nothing here; set to anything else, it is a mistake.
        owners = {name: field.default for name, other in tasks.TASKS.items()
                  for field in dataclasses.fields(other.Config) if field.name == key}
        if key in fields or not owners:
            own[key] = value
        elif any(value != default for default in owners.values()):
            raise ConfigError(f"task.{key} is a field of --task={' or '.join(owners)}, not of --task={task_class.name}; "
                              f"task {task_class.name} accepts: {', '.join(fields)}")
    return _build_section("task", task_class.Config, own)


def config_from_dict(values: dict) -> ExperimentConfig:
    """Validates a nested dict (as read from YAML) into an ExperimentConfig."""
    unknown = set(values) - {"model", "task", *_SECTIONS}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"unknown config section {key!r}{did_you_mean(key, ['model', 'task', *_SECTIONS])}; "
            f"sections: model, task, {', '.join(_SECTIONS)}"
        )
    values = _with_task_section(values)
    model = values.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise ConfigError("model must be a mapping with a 'name' (a registered zoo model)")
    registry.check_overrides(model["name"], {key: value for key, value in model.items() if key != "name"})
    sections = {name: _build_section(name, cls, values.get(name) or {}) for name, cls in _SECTIONS.items()}
    config = ExperimentConfig(model=dict(model), task=_build_task_section(values["task"]), **sections)
    validate(config)
    return config


def validate(config: ExperimentConfig):
    """Rejects values no run can use, naming the field and what is accepted."""
    positive = {
        "data.sequence_length": config.data.sequence_length,
        "data.vocabulary_size": config.data.vocabulary_size,
        "train.epochs": config.train.epochs,
        "train.batch_size": config.train.batch_size,
        "train.steps_per_loop": config.train.steps_per_loop,
    }
    for field in ("steps_per_epoch", "checkpoint_every_steps"):
        if getattr(config.train, field) is not None:
            positive[f"train.{field}"] = getattr(config.train, field)
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key} must be a positive integer, got {value}")
    if config.data.vocabulary_size <= len(RESERVED_TOKENS):
        raise ConfigError(f"data.vocabulary_size must exceed the {len(RESERVED_TOKENS)} reserved tokens "
                          f"({', '.join(RESERVED_TOKENS)}) that every vocabulary starts with, "
                          f"got {config.data.vocabulary_size}")
    if config.train.learning_rate <= 0:
        raise ConfigError(f"train.learning_rate must be > 0, got {config.train.learning_rate}")
    if config.runtime.mixed_precision not in (*MIXED_PRECISION_POLICIES, "auto"):
        raise ConfigError(
            f"runtime.mixed_precision must be one of {', '.join(MIXED_PRECISION_POLICIES)}, auto, "
            f"got {config.runtime.mixed_precision!r}"
        )
    if config.train.train_hours is not None and config.train.train_hours <= 0:
        raise ConfigError(f"train.train_hours must be > 0, got {config.train.train_hours}")
    if config.train.adversarial_epsilon < 0:
        raise ConfigError(f"train.adversarial_epsilon must be >= 0 (0: off), got {config.train.adversarial_epsilon}")
    if config.train.adversarial_epsilon and registry.get_spec(config.model_name).input_kind == "image":
        raise ConfigError(f"train.adversarial_epsilon perturbs token embeddings; --model={config.model_name} "
                          f"reads images: set train.adversarial_epsilon=0")
    if config.train.clipnorm is not None and config.train.clipnorm <= 0:
        raise ConfigError(f"train.clipnorm must be > 0, got {config.train.clipnorm}")
    if config.train.layer_decay is not None:
        if not 0 < config.train.layer_decay <= 1:
            raise ConfigError(f"train.layer_decay must be in (0, 1], got {config.train.layer_decay}")
        if not hasattr(registry.get_spec(config.model_name).model_class, "layers_by_depth"):
            raise ConfigError(f"train.layer_decay needs a model whose layers come in depth order (the BERT sizes), "
                              f"got model {config.model_name!r}")
    if config.train.jit_compile not in (True, False, "auto"):
        raise ConfigError(f"train.jit_compile must be true, false or auto, got {config.train.jit_compile!r}")
    threads = config.runtime.intra_op_threads
    if not (threads == "auto" or str(threads).isdigit()):  # A flag's "2" as well as YAML's 2.
        raise ConfigError(f"runtime.intra_op_threads must be auto or a number of threads >= 0 "
                          f"(0: one per core), got {threads!r}")
    if config.runtime.cpu_devices is not None and config.runtime.cpu_devices <= 0:
        raise ConfigError(f"runtime.cpu_devices must be a positive integer, got {config.runtime.cpu_devices}")
    if config.train.decay not in DECAYS:
        raise ConfigError(f"train.decay must be one of {', '.join(DECAYS)}, got {config.train.decay!r}")
    if not 0 <= config.train.warmup_fraction < 1:
        raise ConfigError(f"train.warmup_fraction must be in [0, 1), got {config.train.warmup_fraction}")
    config.task.validate(registry.get_spec(config.model_name))


def apply_overrides(values: dict, overrides: str) -> dict:
    """Applies `--params_override` ("model.num_layers=4,train.batch_size=64") to a config dict.

    Each value is read as YAML (`4` is an int, `1e-3` a float, `[32, 64]` a list, `'16,32'` a
    string); its type is checked when the dict becomes a config. Commas inside [...] or quotes
    belong to the value, not between assignments.
    """
    assignments = [match.group(0) for match in re.finditer(r"(?:\[[^\]]*\]|'[^']*'|\"[^\"]*\"|[^,])+", overrides)]
    sections = ["model", "task", *_SECTIONS]
    for assignment in filter(None, (part.strip() for part in assignments)):
        key, separator, text = assignment.partition("=")
        section, _, field = key.strip().partition(".")
        if not separator or not field:
            raise ConfigError(f"--params_override: expected section.field=value, got {assignment!r} "
                              f"(a value holding commas goes in quotes: data.bucket_boundaries='16,32')")
        if section not in sections:
            raise ConfigError(
                f"--params_override: unknown section {section!r}"
                f"{did_you_mean(section, sections)}; sections: {', '.join(sections)}"
            )
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--params_override: cannot read the value of {key.strip()} from {text!r}") from None
        values[section] = values.get(section) or {}
        values[section][field] = value
    return values


def default_config_path(model_name, dataset=None, task=None) -> pathlib.Path:
    """The family's `<task>.yaml` (e.g. `pretrain.yaml`), else `<dataset>.yaml`, else `offline.yaml`,
    from `trainers/configs/<model>/`.

    A model without its own directory uses its family's: `bert_mini` reads `trainers/configs/bert/`
    (the first registered name of the same class that has one); the model's registered
    defaults then give its sizes.
    """
    directory = CONFIGS_DIR / model_name
    if not directory.is_dir():
        model_class = registry.get_spec(model_name).model_class  # An unknown name: the registry's error.
        family = [name for name in registry.list_models() if registry.get_spec(name).model_class is model_class]
        directory = next((CONFIGS_DIR / name for name in family if (CONFIGS_DIR / name).is_dir()), directory)
    if task is not None and (directory / f"{task}.yaml").is_file():
        return directory / f"{task}.yaml"
    if dataset is not None and (directory / f"{dataset.replace('/', '_')}.yaml").is_file():
        return directory / f"{dataset.replace('/', '_')}.yaml"
    return directory / "offline.yaml"


def default_values(model_name, dataset=None, task=None) -> dict:
    """What a run of `model_name` does when told nothing else, as a config dict.

    Its family's shipped YAML (`default_config_path`), with `model.name` set (`bert_mini` reads
    `bert/`, then its own sizes from the registry); for a model that ships no YAML, its registered
    defaults on the offline dataset of the data it reads. So a new model needs no config file.
    """
    path = default_config_path(model_name, dataset, task)
    if path.is_file():
        values = load_config(path).to_dict()
    else:
        modality = MODALITY[registry.get_spec(model_name).input_kind]
        values = config_from_dict({"model": {"name": model_name}, "data": {"dataset": OFFLINE_DEFAULTS[modality]}}).to_dict()
    values["model"] = {"name": model_name, **{key: value for key, value in values["model"].items() if key != "name"}}
    return values


def config_file(name, flag="--config") -> pathlib.Path:
    """`name` as a file: a path, or a shipped config named relative to `trainers/configs/`
    (`bert/sst2_local`, `search/transformer`), so an installed zoo finds its own.

    Raises:
        ConfigError: neither exists; names `flag` and lists the shipped configs of that directory.
    """
    path = pathlib.Path(name)
    if path.is_file():
        return path
    shipped = CONFIGS_DIR / (name if str(name).endswith(".yaml") else f"{name}.yaml")
    if shipped.is_file():
        return shipped
    directory = CONFIGS_DIR / path.parts[0] if path.parts else CONFIGS_DIR
    if directory.is_dir() and directory != CONFIGS_DIR:
        known = sorted(f"{directory.name}/{file.stem}" for file in directory.glob("*.yaml"))
    else:
        known = sorted(f"{family.name}/" for family in CONFIGS_DIR.iterdir() if family.is_dir())
    raise ConfigError(f"{flag}: no such file {str(name)!r}, nor a shipped config; shipped: {', '.join(known)}")


def load_config(path) -> ExperimentConfig:
    """The config in file `path` (or the shipped config it names, see `config_file`), checked."""
    path = config_file(path)
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"--config: {path} is not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"--config: {path} must hold a mapping with model, task, data and train sections")
    return config_from_dict(values)


def save_config(config: ExperimentConfig, path, header: str = ""):
    """Writes the resolved config so that `--config=path` repeats the run.

    `header` (e.g. the package versions) goes first as YAML comments, so the file still loads.
    """
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    pathlib.Path(path).write_text(comments + yaml.safe_dump(config.to_dict(), sort_keys=False))


def check_resumable(config: ExperimentConfig, model_dir: pathlib.Path):
    """Refuses to resume a `model_dir` that holds a run of another model, data or task config.

    The model and data sections must match, and the task's name and RESUME_FIELDS (what changes
    the weights: a preset, LoRA, a teacher); a config saved before the task section is read as
    `load_config` reads it.
    """
    saved_path = model_dir / "config.yaml"
    if not saved_path.is_file():
        return
    saved = _with_task_section(yaml.safe_load(saved_path.read_text()))
    current = config.to_dict()
    for section in ("model", "data"):
        if saved.get(section) != current[section]:
            raise ConfigError(
                f"--model_dir={model_dir} holds a run with another {section} config "
                f"({saved_path}); use a new --model_dir or the same config to resume"
            )
    saved_task = {"name": tasks.DEFAULT_TASK, **saved["task"]}
    for field in ("name", *config.task.RESUME_FIELDS):
        if saved_task.get(field) != current["task"][field]:
            raise ConfigError(
                f"--model_dir={model_dir} holds a run with task.{field}={saved_task.get(field)!r}, "
                f"not {current['task'][field]!r}; use a new --model_dir or the same flags to resume"
            )
