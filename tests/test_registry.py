"""The registry: build and list by name; unknown names and fields are one-line ConfigErrors."""

import keras
import pytest

import zoo
from zoo.errors import ConfigError


def test_list_models_names_every_family_and_filters_by_pattern():
    assert zoo.list_models() == [
        "bert", "bert_base", "bert_medium", "bert_mini", "bert_small", "bert_tiny", "bow", "cnn", "gru", "lstm", "transformer"
    ]
    assert zoo.list_models("bert_*") == ["bert_base", "bert_medium", "bert_mini", "bert_small", "bert_tiny"]
    assert zoo.list_models("*ru") == ["gru"]
    assert zoo.list_models("nothing*") == []


def test_build_applies_overrides_on_top_of_the_default_config():
    model = zoo.build("bert", num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024)
    assert isinstance(model, keras.Model)
    config = model.get_config()
    assert (config["num_layers"], config["hidden_dim"], config["num_heads"], config["intermediate_dim"]) == (
        4, 256, 4, 1024,
    )
    assert config["vocabulary_size"] == zoo.default_config("bert")["vocabulary_size"]


def test_gru_and_lstm_share_a_class_but_not_a_cell():
    assert type(zoo.build("gru")) is type(zoo.build("lstm"))
    assert zoo.default_config("gru")["cell_type"] == "gru"
    assert zoo.default_config("lstm")["cell_type"] == "lstm"


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown model 'bret' \(did you mean bert\?\); known models: bert, bert_base, bert_medium, bert_mini, bert_small, bert_tiny, bow, cnn, gru"):
        zoo.build("bret")


def test_unknown_override_names_the_field():
    with pytest.raises(ConfigError, match=r"model 'cnn' has no config field 'filter' \(did you mean filters\?\)"):
        zoo.build("cnn", filter=(8,))


def test_default_config_is_a_copy():
    zoo.default_config("cnn")["dropout"] = 0.9
    assert zoo.default_config("cnn")["dropout"] == 0.25
