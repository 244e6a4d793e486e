"""The search space of `python -m trainers.tune`: which config fields a search varies, over what.

A YAML file names the eval metric to optimise and, per config field, the values to try:

    objective: {metric: eval/accuracy, direction: max}
    parameters:
      train.learning_rate: {float: [1.0e-4, 1.0e-2], sampling: log}  # log-uniform between the bounds
      model.num_layers: {int: [1, 3]}                                  # 1, 2 or 3 (`step` is optional)
      model.hidden_dim: {choice: [32, 48, 64]}
      model.dropout: {float: [0.0, 0.3]}

A field is `section.name`: a field of the `data`, `train` or `runtime` dataclass of
`trainers.config`, or `model.<name>` for a field of the model's registered config. Each bound
and choice must make a valid config on its own; a mistake is a one-line `ConfigError` that names
the field and what it accepts. KerasTuner does the sampling: `SearchSpace.hyperparameters()`
declares the fields as `keras_tuner.HyperParameters`.
"""

import dataclasses

import keras_tuner as kt
import yaml

import zoo
from trainers import config as config_lib
from trainers import tasks
from zoo.errors import ConfigError, did_you_mean

# The eval metrics that `trainers.run.run` reports for each task; the objective is one of them,
# as `eval/<name>`.
EVAL_METRICS = {name: task.EVAL_METRICS for name, task in tasks.TASKS.items()}
DIRECTIONS = ("max", "min")
KINDS = ("choice", "int", "float")
SAMPLINGS = ("linear", "log")
SECTIONS = tuple(field.name for field in dataclasses.fields(config_lib.ExperimentConfig))  # model, data, train, runtime


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One searched config field and the values KerasTuner may give it.

    Args:
        field: str. "section.name", e.g. "train.learning_rate".
        kind: str. "choice" (one of `values`), "int" or "float" (between `values` = (low, high),
            both included).
        values: tuple. The choices, or (low, high).
        sampling: str. int and float: "linear", or "log" (uniform in log(value); low > 0).
        step: int, float or None. int and float: only low + k * step (int: default 1).
    """

    field: str
    kind: str
    values: tuple
    sampling: str = "linear"
    step: int | float | None = None

    def declare(self, hyperparameters: kt.HyperParameters):
        """Adds this field to `hyperparameters` (KerasTuner's search space), named after the field."""
        if self.kind == "choice" and isinstance(self.values[0], bool):
            hyperparameters.Boolean(self.field)  # A Choice would turn True / False into 1 / 0.
        elif self.kind == "choice":
            hyperparameters.Choice(self.field, list(self.values))
        elif self.kind == "int":
            hyperparameters.Int(self.field, *self.values, step=self.step or 1, sampling=self.sampling)
        else:
            hyperparameters.Float(self.field, *self.values, step=self.step, sampling=self.sampling)


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """A search's objective (an eval metric and its direction) and its parameters."""

    metric: str  # "eval/<name>", one of EVAL_METRICS of the base config's task.
    direction: str  # "max" or "min"
    parameters: tuple[Parameter, ...]

    def objective(self) -> kt.Objective:
        return kt.Objective(self.metric, self.direction)

    def hyperparameters(self) -> kt.HyperParameters:
        hyperparameters = kt.HyperParameters()
        for parameter in self.parameters:
            parameter.declare(hyperparameters)
        return hyperparameters


def with_values(config: config_lib.ExperimentConfig, values: dict) -> config_lib.ExperimentConfig:
    """`config` with each "section.name" of `values` set, checked as a config YAML is checked.

    Model fields are checked when the model is built (`zoo.build`), as in any run.
    """
    document = config.to_dict()
    for field, value in values.items():
        section, name = field.split(".", 1)
        document[section][name] = value
    return config_lib.config_from_dict(document)


def load_search_space(path, base_config: config_lib.ExperimentConfig) -> SearchSpace:
    """Reads and checks the search space YAML at `path` (or a shipped one, `search/transformer`)
    against the config that trials start from."""
    path = config_lib.config_file(path, "--search_space")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"--search_space: {path} is not valid YAML ({str(error).splitlines()[0]})") from None
    return parse_search_space(document, base_config)


def parse_search_space(document, base_config: config_lib.ExperimentConfig) -> SearchSpace:
    """Checks a search space read from YAML (see the module docstring); mistakes are ConfigErrors."""
    if not isinstance(document, dict) or set(document) != {"objective", "parameters"}:
        keys = sorted(document) if isinstance(document, dict) else document
        raise ConfigError(f"search space: expected the keys objective and parameters, got {keys!r}")
    metric, direction = _objective(document["objective"], base_config.task.name)
    fields = document["parameters"]
    if not isinstance(fields, dict) or not fields:
        raise ConfigError(f"search space: parameters must map config fields to ranges, got {fields!r}")
    parameters = tuple(_parameter(field, spec, base_config) for field, spec in fields.items())
    return SearchSpace(metric, direction, parameters)


def _objective(objective, task):
    if not isinstance(objective, dict) or set(objective) != {"metric", "direction"}:
        raise ConfigError(f"search space: objective must be {{metric: eval/<name>, direction: max or min}}, "
                          f"got {objective!r}")
    metric, direction = objective["metric"], objective["direction"]
    names = EVAL_METRICS[task]
    name = str(metric).removeprefix("eval/")
    if not str(metric).startswith("eval/") or name not in names:
        raise ConfigError(f"search space: unknown objective metric {metric!r}{did_you_mean(name, names)}; "
                          f"task.name={task} reports eval/<name> for: {', '.join(names)}")
    if direction not in DIRECTIONS:
        raise ConfigError(f"search space: objective direction must be max or min, got {direction!r}")
    return metric, direction


def _field_names(section, config):
    """The names a search may set in `section`: the model's registered fields, or the dataclass's."""
    if section == "model":
        return list(zoo.default_config(config.model_name))
    return [field.name for field in dataclasses.fields(getattr(config, section))]


def _check_field(field, config):
    section, _, name = str(field).partition(".")
    if section not in SECTIONS or not name:
        raise ConfigError(f"search space: a parameter must be section.field with section one of "
                          f"{', '.join(SECTIONS)}, got {field!r}")
    names = _field_names(section, config)
    if name not in names:
        owner = f"model {config.model_name}" if section == "model" else section
        raise ConfigError(f"search space: unknown config field {field}{did_you_mean(name, names)}; "
                          f"{owner} accepts: {', '.join(names)}")


def _parameter(field, spec, config) -> Parameter:
    _check_field(field, config)
    kinds = [kind for kind in KINDS if isinstance(spec, dict) and kind in spec]
    if len(kinds) != 1:
        raise ConfigError(f"search space: {field} must be one of {{choice: [values]}}, {{int: [low, high]}} "
                          f"or {{float: [low, high]}}, got {spec!r}")
    kind = kinds[0]
    options = {key: value for key, value in spec.items() if key != kind}
    accepted = set() if kind == "choice" else {"sampling", "step"}
    if set(options) - accepted:
        key = sorted(set(options) - accepted)[0]
        raise ConfigError(f"search space: {field}: unknown key {key!r} beside {kind}; "
                          f"accepted: {', '.join(sorted(accepted)) or 'none'}")
    if kind == "choice":
        parameter = Parameter(field, kind, _choices(field, spec[kind]))
    else:
        parameter = _range(field, kind, spec[kind], options.get("sampling", "linear"), options.get("step"))
    for value in parameter.values:
        _check_value(field, value, config)
    return parameter


def _choices(field, values) -> tuple:
    """The choices as one type, as a KerasTuner Choice holds them: ints among floats become floats."""
    if not isinstance(values, list) or len(values) < 2:
        raise ConfigError(f"search space: {field}: choice must list at least two values, got {values!r}")
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
        if any(isinstance(value, float) for value in values):
            values = [float(value) for value in values]
    elif not (all(isinstance(value, bool) for value in values) or all(isinstance(value, str) for value in values)):
        raise ConfigError(f"search space: {field}: choice values must be all numbers, all strings or all "
                          f"booleans, got {values!r}")
    if len(set(values)) != len(values):
        raise ConfigError(f"search space: {field}: choice lists a value twice: {values!r}")
    return tuple(values)


def _number(field, value, kind):
    """A bound or step as `kind`; YAML 1.1 reads `1e-3` (no dot) as a string, so floats may be strings."""
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise ConfigError(f"search space: {field}: {kind} bounds and step must be {kind}s, got {value!r}")


def _range(field, kind, bounds, sampling, step) -> Parameter:
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ConfigError(f"search space: {field}: {kind} takes [low, high], got {bounds!r}")
    low, high = (_number(field, bound, kind) for bound in bounds)
    if not low < high:
        raise ConfigError(f"search space: {field}: {kind} range needs low < high, got [{low}, {high}]")
    if sampling not in SAMPLINGS:
        raise ConfigError(f"search space: {field}: sampling must be linear or log, got {sampling!r}")
    if sampling == "log" and low <= 0:
        raise ConfigError(f"search space: {field}: log sampling needs low > 0, got [{low}, {high}]")
    if step is not None:
        step = _number(field, step, kind)
        if step <= 0:
            raise ConfigError(f"search space: {field}: step must be > 0, got {step}")
    return Parameter(field, kind, (low, high), sampling, step)


def _check_value(field, value, config):
    """`value` must make a valid config: the dataclass's type and rules, or the model field's type."""
    section, _, name = field.partition(".")
    if section == "model":
        current = config.model.get(name, zoo.default_config(config.model_name)[name])
        if isinstance(current, bool) or isinstance(value, bool):
            same_type = isinstance(current, bool) and isinstance(value, bool)
        elif isinstance(current, float):
            same_type = isinstance(value, (int, float))  # An int is a float field's whole number.
        else:
            same_type = current is None or isinstance(value, type(current))
        if not same_type:
            raise ConfigError(f"search space: {field} is {type(current).__name__} ({name}={current!r} in the "
                              f"base config), got {value!r}")
        return
    try:
        with_values(config, {field: value})
    except ConfigError as error:
        raise ConfigError(f"search space: {field}={value!r} is not a valid config: {error}") from None
