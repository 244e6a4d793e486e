"""The experiment config: every shipped YAML loads; mistakes are one-line errors naming the field."""

import pytest

import zoo
from trainers import config as config_lib
from zoo.errors import ConfigError

# configs/search/ holds the search spaces of trainers.tune (tests/trainers/test_search_space.py).
SHIPPED_CONFIGS = sorted(path for path in config_lib.CONFIGS_DIR.glob("*/*.yaml") if path.parent.name != "search")


def _values(**sections):
    values = {"model": {"name": "cnn"}, "data": {"dataset": "zoo_digits"}, "train": {}}
    for section, fields in sections.items():
        values[section] = {**values.get(section, {}), **fields}
    return values


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_shipped_configs_load_and_name_real_model_fields(path):
    config = config_lib.load_config(path)
    assert path.parent.name == config.model_name
    unknown = set(config.model_overrides) - set(zoo.default_config(config.model_name))
    assert not unknown, f"{path} sets fields the model does not have: {unknown}"


def test_every_model_has_an_offline_default():
    for name in zoo.list_models():
        assert config_lib.default_config_path(name).is_file(), name


def test_typo_in_key_names_the_key_and_suggests_the_field():
    with pytest.raises(ConfigError, match=r"train\.bach_size.*did you mean batch_size"):
        config_lib.config_from_dict(_values(train={"bach_size": 8}))


@pytest.mark.parametrize(
    "sections, message",
    [
        # int
        (dict(train={"epochs": "three"}), r"train\.epochs must be int, got 'three'"),
        (dict(model={"name": "bert", "num_layers": "two"}), r"model\.num_layers must be int \(model 'bert'\), got 'two'"),
        (dict(model={"name": "gru", "num_layers": True}), r"model\.num_layers must be int \(model 'gru'\), got True"),
        # float
        (dict(train={"learning_rate": "fast"}), r"train\.learning_rate must be float, got 'fast'"),
        (dict(model={"name": "transformer", "dropout": "none"}), r"model\.dropout must be float \(model 'transformer'\)"),
        # bool
        (dict(train={"jit_compile": 3}), r"train\.jit_compile must be bool, got 3"),
        (dict(model={"name": "gru", "bidirectional": "yes please"}), r"model\.bidirectional must be bool"),
        # list
        (dict(model={"name": "cnn", "filters": 32}), r"model\.filters must be list of int \(model 'cnn'\), got 32"),
        (dict(model={"name": "cnn", "filters": [32, "wide"]}), r"model\.filters must be list of int"),
        # str
        (dict(model={"name": "transformer", "position_embedding": 1}), r"model\.position_embedding must be str"),
    ],
)
def test_wrong_type_names_the_field_and_the_accepted_type(sections, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.config_from_dict(_values(**sections))


def test_right_types_pass_and_an_int_is_a_float():
    config = config_lib.config_from_dict(_values(model={"name": "cnn", "filters": [8, 16], "dropout": 0}))
    assert config.model["filters"] == [8, 16] and config.model["dropout"] == 0


@pytest.mark.parametrize("field", ["batch_size", "epochs", "steps_per_loop"])
def test_non_positive_values_are_rejected(field):
    with pytest.raises(ConfigError, match=rf"train\.{field} must be a positive integer"):
        config_lib.config_from_dict(_values(train={field: 0}))


def test_scientific_notation_learning_rate_is_a_float():
    config = config_lib.config_from_dict(_values(train={"learning_rate": "1e-3"}))
    assert config.train.learning_rate == pytest.approx(0.001)


def test_saved_config_with_versions_header_loads_back(tmp_path):
    config = config_lib.config_from_dict(_values(train={"epochs": 7}))
    path = tmp_path / "config.yaml"
    config_lib.save_config(config, path, header="tensorflow 2.21\nkeras 3.15")
    assert path.read_text().startswith("# tensorflow 2.21\n# keras 3.15\n")
    assert config_lib.load_config(path) == config


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--config: no such file"):
        config_lib.load_config(tmp_path / "absent.yaml")


def test_params_override_sets_nested_fields_with_yaml_types():
    values = config_lib.apply_overrides(_values(), "model.filters=[8, 16], train.batch_size=64,train.learning_rate=1e-3")
    config = config_lib.config_from_dict(values)
    assert config.model["filters"] == [8, 16]
    assert config.train.batch_size == 64
    assert config.train.learning_rate == pytest.approx(0.001)


@pytest.mark.parametrize(
    "override, message",
    [("train.batch_size", "expected section.field=value"), ("trian.epochs=2", "unknown section 'trian' \\(did you mean train")],
)
def test_malformed_params_override_is_a_config_error(override, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.apply_overrides(_values(), override)
