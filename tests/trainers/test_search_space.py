"""trainers.search_space: shipped files parse, KerasTuner gets the declared ranges, mistakes are one-line errors."""

import keras_tuner as kt
import pytest

from trainers import config as config_lib
from trainers import search_space
from zoo.errors import ConfigError

SHIPPED_SPACES = sorted((config_lib.CONFIGS_DIR / "search").glob("*.yaml"))
OBJECTIVE = {"metric": "eval/accuracy", "direction": "max"}


@pytest.fixture(scope="module")
def base_config():
    return config_lib.load_config(config_lib.default_config_path("transformer"))


def _parse(base_config, parameters, objective=OBJECTIVE):
    return search_space.parse_search_space({"objective": objective, "parameters": parameters}, base_config)


@pytest.mark.parametrize("path", SHIPPED_SPACES, ids=lambda path: path.name)
def test_shipped_search_spaces_parse_against_their_models_offline_config(path):
    model_name = path.stem.split("_")[0]  # transformer.yaml, transformer_sst2.yaml: the transformer's spaces.
    base_config = config_lib.load_config(config_lib.default_config_path(model_name))
    space = search_space.load_search_space(path, base_config)
    assert space.parameters


def test_parameters_become_keras_tuner_hyperparameters(base_config):
    space = _parse(base_config, {
        "train.learning_rate": {"float": ["1e-4", 1.0e-2], "sampling": "log"},  # YAML 1.1 reads 1e-4 as a string.
        "model.num_layers": {"int": [1, 5], "step": 2},
        "model.hidden_dim": {"choice": [32, 64]},
        "model.dropout": {"choice": [0, 0.1]},
        "train.jit_compile": {"choice": [True, False]},
    })
    assert (space.metric, space.direction) == ("eval/accuracy", "max")
    assert space.objective().name == "eval/accuracy" and space.objective().direction == "max"
    by_name = {hyperparameter.name: hyperparameter for hyperparameter in space.hyperparameters().space}
    learning_rate = by_name["train.learning_rate"]
    assert isinstance(learning_rate, kt.engine.hyperparameters.Float)
    assert (learning_rate.min_value, learning_rate.max_value, learning_rate.sampling) == (1e-4, 1e-2, "log")
    layers = by_name["model.num_layers"]
    assert (layers.min_value, layers.max_value, layers.step) == (1, 5, 2)
    assert by_name["model.hidden_dim"].values == [32, 64]
    assert by_name["model.dropout"].values == [0.0, 0.1]  # One type: the int 0 became a float.
    assert isinstance(by_name["train.jit_compile"], kt.engine.hyperparameters.Boolean)


def test_with_values_sets_fields_of_every_section(base_config):
    config = search_space.with_values(base_config, {"train.learning_rate": 3e-3, "model.hidden_dim": 32,
                                                    "data.sequence_length": 16})
    assert (config.train.learning_rate, config.model["hidden_dim"], config.data.sequence_length) == (3e-3, 32, 16)
    assert config.model["num_layers"] == base_config.model["num_layers"]
    assert base_config.model["hidden_dim"] == 64  # The base config is not changed.


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"train.lerning_rate": {"float": [0.1, 0.2]}},
         "unknown config field train.lerning_rate (did you mean learning_rate?); train accepts: epochs,"),
        ({"model.hiden_dim": {"choice": [32, 64]}},
         "unknown config field model.hiden_dim (did you mean hidden_dim?); model transformer accepts: vocabulary"),
        ({"optimizer.beta": {"float": [0.1, 0.2]}}, "section one of model, task, data, train, runtime, got 'optimizer.beta'"),
        ({"train.learning_rate": {"float": [0.01, 0.001]}}, "train.learning_rate: float range needs low < high"),
        ({"train.learning_rate": {"float": [0.0, 0.01], "sampling": "log"}}, "log sampling needs low > 0"),
        ({"train.learning_rate": {"float": [0.001, 0.01], "sampling": "exp"}}, "sampling must be linear or log"),
        ({"train.learning_rate": {"float": [0.001]}}, "float takes [low, high], got [0.001]"),
        ({"train.learning_rate": {"float": [0.0, 0.01]}},
         "train.learning_rate=0.0 is not a valid config: train.learning_rate must be > 0"),
        ({"model.num_layers": {"int": [1.5, 3]}}, "int bounds and step must be ints, got 1.5"),
        ({"model.num_layers": {"int": [1, 3], "step": 0}}, "step must be > 0"),
        ({"model.num_layers": {"int": [1, 3], "log": True}}, "unknown key 'log' beside int; accepted: sampling, step"),
        ({"model.num_layers": {"range": [1, 3]}}, "model.num_layers must be one of {choice: [values]}"),
        ({"model.num_layers": {"int": [1, 3], "choice": [1, 2]}}, "model.num_layers must be one of {choice: [values]}"),
        ({"model.hidden_dim": {"choice": [64]}}, "choice must list at least two values"),
        ({"model.hidden_dim": {"choice": [32, 32]}}, "choice lists a value twice"),
        ({"model.hidden_dim": {"choice": [32, "64"]}}, "all numbers, all strings or all booleans"),
        ({"model.hidden_dim": {"float": [32, 64]}},
         "model.hidden_dim is int (hidden_dim=64 in the base config), got 32.0"),
        ({"model.position_embedding": {"choice": [1, 2]}}, "model.position_embedding is str"),
        ({"train.batch_size": {"float": [16, 64]}},
         "train.batch_size=16.0 is not a valid config: train.batch_size must be int"),
        ({"train.batch_size": {"choice": [0, 32]}}, "train.batch_size must be a positive integer, got 0"),
        ({}, "parameters must map config fields to ranges"),
    ],
)
def test_mistakes_are_one_line_errors_naming_the_field(base_config, parameters, message):
    with pytest.raises(ConfigError) as error:
        _parse(base_config, parameters)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "objective, message",
    [
        ({"metric": "eval/acuracy", "direction": "max"},
         "unknown objective metric 'eval/acuracy' (did you mean accuracy, auc?); task.name=classify reports "
         "eval/<name> for: accuracy, loss, precision, recall, f1, auc"),
        ({"metric": "accuracy", "direction": "max"}, "unknown objective metric 'accuracy'"),
        ({"metric": "eval/mlm_accuracy", "direction": "max"}, "unknown objective metric 'eval/mlm_accuracy'"),
        ({"metric": "eval/loss", "direction": "down"}, "direction must be max or min, got 'down'"),
        ({"metric": "eval/loss"}, "objective must be {metric: eval/<name>, direction: max or min}"),
    ],
)
def test_objective_mistakes_name_the_metrics_of_the_task(base_config, objective, message):
    with pytest.raises(ConfigError) as error:
        _parse(base_config, {"model.num_layers": {"int": [1, 2]}}, objective)
    assert message in str(error.value)


def test_a_file_needs_objective_and_parameters_only(base_config, tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("objective: {metric: eval/loss, direction: min}\nparameter: {}\n")
    with pytest.raises(ConfigError, match=r"expected the keys objective and parameters, got \['objective', 'param"):
        search_space.load_search_space(path, base_config)
    with pytest.raises(ConfigError, match="--search_space: no such file"):
        search_space.load_search_space(tmp_path / "missing.yaml", base_config)
    path.write_text("objective: [\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        search_space.load_search_space(path, base_config)
