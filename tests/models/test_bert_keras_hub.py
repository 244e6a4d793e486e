"""keras-hub BERT presets in the zoo BERT: same outputs, same sizes, clear errors."""

import keras_hub
import numpy as np
import pytest

import zoo
from zoo.errors import ConfigError
from zoo.models.bert import BERT_SIZES, BertPretrainer
from zoo.presets import load_bert_preset

SIZES = dict(vocabulary_size=120, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=24)
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"word{index}" for index in range(115)]


def _random_inputs():
    rng = np.random.default_rng(0)
    padding_mask = np.ones([3, 24], np.int32)
    padding_mask[0, 10:] = 0
    padding_mask[1, 20:] = 0
    segment_ids = np.zeros_like(padding_mask)
    segment_ids[:, 6:] = 1
    return {
        "token_ids": rng.integers(5, 120, [3, 24]).astype(np.int32) * padding_mask,
        "segment_ids": segment_ids * padding_mask,
        "padding_mask": padding_mask,
    }


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    """A randomly initialised keras-hub BertBackbone and its tokenizer, saved as a local preset."""
    path = tmp_path_factory.mktemp("preset")
    keras_hub.models.BertBackbone(**SIZES).save_to_preset(str(path))
    keras_hub.models.BertTokenizer(vocabulary=VOCABULARY, lowercase=True).save_to_preset(str(path))
    return path


def test_a_preset_loaded_into_zoo_bert_gives_the_same_sequence_and_pooled_outputs(preset_dir):
    preset = load_bert_preset(str(preset_dir))
    model = zoo.build("bert", **preset.encoder_config)
    preset.load_weights_into(model.encoder)
    inputs = _random_inputs()

    ours = model.encoder(inputs)
    theirs = keras_hub.models.BertBackbone.from_preset(str(preset_dir))(inputs)
    real = inputs["padding_mask"][..., None].astype(bool)
    sequence_difference = np.abs(np.asarray(ours["sequence_output"]) - np.asarray(theirs["sequence_output"]))
    assert (sequence_difference * real).max() <= 1e-5
    assert np.abs(np.asarray(ours["pooled_output"]) - np.asarray(theirs["pooled_output"])).max() <= 1e-5
    assert preset.vocabulary == VOCABULARY and preset.lowercase


def test_a_preset_of_other_sizes_is_refused_in_one_line(preset_dir):
    preset = load_bert_preset(str(preset_dir))
    model = zoo.build("bert", **dict(preset.encoder_config, num_layers=3))
    with pytest.raises(ConfigError, match=r"other sizes than the model: num_layers 3 \(model\) vs 2 \(preset\)$"):
        preset.load_weights_into(model.encoder)


def test_an_unreadable_preset_is_a_one_line_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^--preset=\S+ could not be loaded as a keras-hub BERT preset \(") as error:
        load_bert_preset(str(tmp_path / "missing"))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("size", ["bert_tiny", "bert_mini"])
def test_each_size_has_keras_hubs_parameter_count(size):
    """Turc et al.'s sizes: the zoo encoder has exactly the weights of keras-hub's backbone."""
    config = zoo.default_config(size)
    fields = ["vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim", "max_sequence_length"]
    backbone = keras_hub.models.BertBackbone(**{field: config[field] for field in fields})
    model = zoo.build(size)
    model(_random_inputs())
    assert model.encoder.count_params() == backbone.count_params()
    assert (config["num_layers"], config["hidden_dim"]) == tuple(BERT_SIZES[size].values())
    assert config["num_heads"] * 64 == config["hidden_dim"] and config["intermediate_dim"] == 4 * config["hidden_dim"]


def test_pretrainer_shares_the_token_embedding_with_its_masked_lm_head():
    model = BertPretrainer(**SIZES)
    inputs = dict(_random_inputs(), mask_positions=np.array([[1, 2], [3, 4], [5, 0]], np.int32))
    outputs = model(inputs)
    assert tuple(outputs["mlm_logits"].shape) == (3, 2, 120) and tuple(outputs["nsp_logits"].shape) == (3, 2)
    embeddings = [weight for weight in model.weights if "embeddings" in weight.path and "token" in weight.path]
    assert len(embeddings) == 1  # Tied: the head's output projection is the transposed embedding.


def test_lora_freezes_the_encoder_and_leaves_outputs_unchanged_until_trained():
    model = zoo.build("bert", **SIZES)
    inputs = _random_inputs()
    before = np.asarray(model(inputs))
    total = model.count_params()
    model.enable_lora(rank=4)
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    np.testing.assert_allclose(np.asarray(model(inputs)), before, atol=1e-6)
    # Per block: query and value (kernels [32, 2 heads, 16]) get Keras' A [32, 2, 4] and B [4, 16];
    # their biases [2, 16] stay trainable.
    adapters = 2 * 2 * (32 * 2 * 4 + 4 * 16)
    biases = 2 * 2 * 32
    assert trainable == adapters + biases + (32 * 2 + 2)  # + the classifier head
    assert trainable < 0.1 * total  # (This toy encoder is small; bert_tiny trains about 1%.)
