"""The registry: build and list by name; defaults from the constructors; unknown names and fields are one-line
ConfigErrors."""

import keras
import numpy as np
import pytest

import zoo
from zoo import registry
from zoo.errors import ConfigError
from zoo.layers import ClassifierHead
from zoo.models.bert import ENCODER_FIELDS, ENCODER_SIZE_FIELDS, BertClassifier, BertEncoder, BertPretrainer
from zoo.models.rnn import RecurrentClassifier


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


@pytest.mark.parametrize(
    "name, override, message",
    [
        ("transformer", {"hidden_dim": 0}, r"^model\.hidden_dim must be a positive integer \(model 'transformer'\), got 0$"),
        ("gru", {"dropout": 1.5}, r"^model\.dropout must be in \[0, 1\) \(model 'gru'\), got 1\.5$"),
        ("cnn", {"filters": [32, 0]},
         r"^model\.filters must be a list, each item a positive integer \(model 'cnn'\), got \[32, 0\]$"),
    ],
)
def test_an_override_out_of_its_fields_range_names_the_field(name, override, message):
    with pytest.raises(ConfigError, match=message):
        zoo.build(name, **override)


def test_every_models_defaults_keep_the_range_rule():
    """Every int field counts or sizes something and every float field is a fraction: a model whose
    defaults broke that rule would need its own ranges in `registry.check_overrides`."""
    for name in zoo.list_models():
        registry.check_overrides(name, zoo.default_config(name))


def test_default_config_is_a_copy():
    zoo.default_config("cnn")["dropout"] = 0.9
    assert zoo.default_config("cnn")["dropout"] == 0.25


def test_a_default_config_is_the_constructors_defaults_updated_by_the_registration():
    """Defaults are written once, in the constructor: a registered name states only what differs."""
    for name in zoo.list_models():  # The constructor's fields, in its order.
        spec = zoo.get_spec(name)
        assert list(spec.default_config) == list(registry.config_fields(spec.model_class)), name
    assert zoo.default_config("gru") == registry.config_fields(RecurrentClassifier)
    assert zoo.default_config("lstm") == {**zoo.default_config("gru"), "cell_type": "lstm"}
    assert zoo.default_config("bert") == zoo.default_config("bert_tiny") == registry.config_fields(BertClassifier)
    assert zoo.default_config("bert_mini") == {
        **zoo.default_config("bert"), "num_layers": 4, "hidden_dim": 256, "num_heads": 4, "intermediate_dim": 1024,
    }


def test_bert_task_models_take_the_encoders_fields_written_once_in_its_signature():
    assert ENCODER_FIELDS == (
        "vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "max_sequence_length",
        "num_segments", "dropout",
    )
    assert ENCODER_SIZE_FIELDS == ENCODER_FIELDS[:-1]
    assert registry.config_fields(BertClassifier) == {**registry.config_fields(BertEncoder), "num_classes": 2}
    pretrainer = BertPretrainer(num_layers=1, hidden_dim=64, num_heads=1, intermediate_dim=32, dropout=0.2)
    assert {field: pretrainer.get_config()[field] for field in ENCODER_FIELDS} == {
        **registry.config_fields(BertEncoder), "num_layers": 1, "hidden_dim": 64, "num_heads": 1,
        "intermediate_dim": 32, "dropout": 0.2,
    }


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as it is; what a test registers is gone after it."""
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))


class LinearProbe(keras.Model):
    """A model as small as a family gets: mean token embedding -> the shared head.

    `max_sequence_length` is unused: an optional field, whose None default takes any value.
    """

    def __init__(self, vocabulary_size=100, num_classes=2, embedding_dim=8, dropout=0.0, max_sequence_length=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.token_embedding = keras.layers.Embedding(vocabulary_size, embedding_dim)
        self.head = ClassifierHead(num_classes, dropout=dropout)

    def call(self, token_ids, training=False):
        return self.head(keras.ops.mean(self.token_embedding(token_ids), axis=1), training=training)


def test_adding_a_model_is_one_class_and_one_register_call(scratch_registry):
    registry.register("probe", input_kind="token_ids", embedding_dim=4)(LinearProbe)
    assert "probe" in zoo.list_models() and zoo.get_spec("probe").input_kind == "token_ids"
    assert zoo.default_config("probe") == dict(
        vocabulary_size=100, num_classes=2, embedding_dim=4, dropout=0.0, max_sequence_length=None
    )
    model = zoo.build("probe", num_classes=3)
    assert model.token_embedding.output_dim == 4
    assert tuple(model(np.ones([2, 5], np.int32)).shape) == (2, 3)
    with pytest.raises(ConfigError, match=r"^model\.dropout must be float \(model 'probe'\), got 'high'$"):
        zoo.build("probe", dropout="high")
    registry.check_overrides("probe", {"max_sequence_length": 64})


def test_a_registration_names_only_constructor_arguments_and_gives_each_a_default(scratch_registry):
    with pytest.raises(ValueError, match=r"model 'probe': LinearProbe takes no embeding_dim"):
        registry.register("probe", input_kind="token_ids", embeding_dim=4)(LinearProbe)
    assert "probe" not in zoo.list_models()

    class Unsized(keras.Model):
        def __init__(self, vocabulary_size, num_classes=2, **kwargs):
            super().__init__(**kwargs)

    with pytest.raises(ValueError, match=r"model 'unsized': give vocabulary_size a default"):
        registry.register("unsized", input_kind="token_ids")(Unsized)
    registry.register("unsized", input_kind="token_ids", vocabulary_size=10)(Unsized)
    assert zoo.default_config("unsized") == {"vocabulary_size": 10, "num_classes": 2}
