"""The experiment config: every shipped YAML loads; mistakes are one-line errors naming the field."""

import pytest

import zoo
from trainers import config as config_lib
from zoo.data import buckets
from zoo.errors import ConfigError

# trainers/configs/search/ holds the search spaces of trainers.tune (tests/trainers/test_search_space.py).
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


@pytest.mark.parametrize("path", sorted(config_lib.CONFIGS_DIR.glob("*/sst2_local.yaml")),
                         ids=lambda path: path.parent.name)
def test_sst2_recipes_pin_valid_length_buckets(path):
    """`auto` buckets depend on whether the step compiles, and other batches move an SST-2 figure by a
    few tenths: each recipe names the buckets its BENCHMARKS.md figures were measured with."""
    data = config_lib.load_config(path).data
    assert data.bucket_boundaries != "auto"
    boundaries = buckets.parse_boundaries(data.bucket_boundaries, data.sequence_length)
    assert len(boundaries) >= 5 and boundaries[-1] == data.sequence_length


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
        (dict(train={"jit_compile": 3}), r"train\.jit_compile must be bool or str, got 3"),
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


@pytest.mark.parametrize("size", [1, 5])
def test_a_vocabulary_must_hold_more_than_its_reserved_tokens(size):
    with pytest.raises(ConfigError, match=rf"data\.vocabulary_size must exceed the 5 reserved tokens \(\[PAD\], .*got {size}$"):
        config_lib.config_from_dict(_values(data={"vocabulary_size": size}))
    config_lib.config_from_dict(_values(data={"vocabulary_size": 6}))


@pytest.mark.parametrize(
    "model, epsilon, message",
    [
        ("gru", -1, "train.adversarial_epsilon must be >= 0 (0: off), got -1.0"),
        ("cnn", 1, "train.adversarial_epsilon perturbs token embeddings; --model=cnn reads images"),
    ],
)
def test_adversarial_epsilon_is_refused_below_zero_and_for_images(model, epsilon, message):
    with pytest.raises(ConfigError) as error:
        config_lib.config_from_dict(_values(model={"name": model}, train={"adversarial_epsilon": epsilon}))
    assert message in str(error.value)


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


def test_params_override_keeps_commas_inside_quotes_in_the_value():
    values = config_lib.apply_overrides(_values(), "data.bucket_boundaries='16,40',train.batch_size=8")
    config = config_lib.config_from_dict(values)
    assert config.data.bucket_boundaries == "16,40"
    assert config.train.batch_size == 8


@pytest.mark.parametrize(
    "override, message",
    [("train.batch_size", "expected section.field=value"), ("trian.epochs=2", "unknown section 'trian' \\(did you mean train"),
     ("data.bucket_boundaries=16,40", "got '40' \\(a value holding commas goes in quotes")],
)
def test_malformed_params_override_is_a_config_error(override, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.apply_overrides(_values(), override)


def test_task_section_is_the_named_tasks_typed_config():
    config = config_lib.config_from_dict(
        _values(model={"name": "gru"}, data={"dataset": "zoo_sentiment"},
                task={"name": "distill", "teacher": "exports/bert", "alpha": 1})
    )
    assert type(config.task).__name__ == "DistillationConfig"
    assert (config.task.teacher, config.task.alpha, config.task.temperature) == ("exports/bert", 1.0, 2.0)
    assert config_lib.config_from_dict(_values()).task.name == "classify"  # No task section: classify.


@pytest.mark.parametrize(
    "task, message",
    [
        ({"name": "clasify"}, "task.name must be one of classify, distill, pretrain, got 'clasify' (did you mean classify?)"),
        ({"teacher": "x"}, "task.teacher is a field of --task=distill, not of --task=classify"),
        ({"name": "pretrain", "lora_rank": 2}, "task.lora_rank is a field of --task=classify or distill, not of --task=pretrain"),
        ({"name": "distill", "teacher": "x", "temperature": 0}, "task.temperature must be > 0, got 0.0"),
        ({"name": "classify", "label_smoothing": 1}, "task.label_smoothing must be in [0, 1), got 1.0"),
        ({"name": "classify", "lora_rank": "two"}, "task.lora_rank must be int or null, got 'two'"),
        ({"name": "pretrain"}, "--task=pretrain trains BERT's masked LM and next sentence prediction; --model=cnn"),
    ],
)
def test_task_mistakes_name_the_field_and_the_task(task, message):
    with pytest.raises(ConfigError) as error:
        config_lib.config_from_dict(_values(task=task))
    assert message in str(error.value)


def test_another_tasks_field_left_at_its_default_is_dropped():
    # A classify config (lora_rank: null) rerun with --task=pretrain: nothing to complain about.
    values = config_lib.config_from_dict(_values(model={"name": "bert"}, data={"dataset": "zoo_reviews"})).to_dict()
    values["task"]["name"] = "pretrain"
    assert config_lib.config_from_dict(values).task == config_lib.tasks.TASKS["pretrain"].Config()


def test_configs_written_before_the_task_section_load_into_it():
    legacy = _values(model={"name": "bert"}, data={"dataset": "zoo_reviews", "max_predictions": 5},
                     train={"task": "pretrain", "epochs": 2})
    config = config_lib.config_from_dict(legacy)
    assert (config.task.name, config.task.max_predictions, config.train.epochs) == ("pretrain", 5, 2)
    override = config_lib.apply_overrides(_values(model={"name": "bert"}), "train.lora_rank=4")
    assert config_lib.config_from_dict(override).task.lora_rank == 4


def test_resuming_needs_the_same_task_and_resume_fields(tmp_path):
    config = config_lib.config_from_dict(_values(model={"name": "bert"}, data={"dataset": "zoo_sentiment"}))
    config_lib.save_config(config, tmp_path / "config.yaml")
    config_lib.check_resumable(config, tmp_path)
    lora = config_lib.config_from_dict({**config.to_dict(), "task": {"lora_rank": 2}})
    with pytest.raises(ConfigError, match=r"task\.lora_rank=None, not 2; use a new --model_dir"):
        config_lib.check_resumable(lora, tmp_path)
    pretrain = config_lib.config_from_dict({**config.to_dict(), "task": {"name": "pretrain"}})
    with pytest.raises(ConfigError, match=r"task\.name='classify', not 'pretrain'"):
        config_lib.check_resumable(pretrain, tmp_path)


def test_shipped_configs_are_found_by_name_inside_the_package():
    assert config_lib.config_file("bert/sst2_local") == config_lib.CONFIGS_DIR / "bert" / "sst2_local.yaml"
    assert config_lib.config_file("search/transformer.yaml").parent.name == "search"
    with pytest.raises(ConfigError, match=r"--config: no such file 'bert/sst3', nor a shipped config; shipped: .*bert/sst2_local"):
        config_lib.config_file("bert/sst3")
    assert config_lib.default_config_path("bert_mini", "sst2_local", task="pretrain").name == "pretrain.yaml"
    assert config_lib.default_config_path("gru", "sst2_local", task="pretrain").name == "sst2_local.yaml"


def test_a_time_budget_must_be_positive_hours():
    assert config_lib.config_from_dict(_values(train={"train_hours": 2})).train.train_hours == 2.0
    with pytest.raises(ConfigError, match=r"train\.train_hours must be > 0, got 0.0"):
        config_lib.config_from_dict(_values(train={"train_hours": 0}))


def test_a_model_without_shipped_configs_runs_its_registered_defaults_on_offline_data(monkeypatch, tmp_path):
    shipped = config_lib.default_values("bert_mini", "sst2_local")
    assert shipped["model"]["name"] == "bert_mini" and shipped["data"]["dataset"] == "sst2_local"
    monkeypatch.setattr(config_lib, "CONFIGS_DIR", tmp_path)  # As for a newly added model: no YAML at all.
    for name, dataset in [("gru", "zoo_sentiment"), ("cnn", "zoo_digits"), ("bert_mini", "zoo_sentiment")]:
        values = config_lib.default_values(name)
        assert (values["model"], values["data"]["dataset"]) == ({"name": name}, dataset)
        config_lib.config_from_dict(values)  # A valid config.


@pytest.mark.parametrize("model, task", [("bert_mini", "pretrain"), ("gru", None), ("cnn", None)])
def test_every_shipped_default_checkpoints_within_its_epochs(model, task):
    """A killed run loses at most `checkpoint_every_steps` steps, even when its one epoch lasts hours
    (a one-epoch pretraining run killed after an hour once had no checkpoint at all)."""
    config = config_lib.config_from_dict(config_lib.default_values(model, task=task))
    assert config.train.checkpoint_every_steps == 1000
