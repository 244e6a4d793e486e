"""A keras-hub BERT preset's weights, loaded into the zoo BERT encoder, give keras-hub's outputs."""

import keras_hub
import numpy as np

from zoo.models.bert import BertEncoder

SIZES = dict(vocabulary_size=120, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=24)


def test_preset_weights_give_the_same_sequence_and_pooled_outputs(tmp_path):
    keras_hub.models.BertBackbone(**SIZES).save_to_preset(str(tmp_path / "preset"))
    backbone = keras_hub.models.BertBackbone.from_preset(str(tmp_path / "preset"))

    rng = np.random.default_rng(0)
    padding_mask = np.ones([3, 24], np.int32)
    padding_mask[0, 10:] = 0
    padding_mask[1, 20:] = 0
    segment_ids = np.zeros_like(padding_mask)
    segment_ids[:, 6:] = 1
    inputs = {
        "token_ids": rng.integers(5, 120, [3, 24]).astype(np.int32) * padding_mask,
        "segment_ids": segment_ids * padding_mask,
        "padding_mask": padding_mask,
    }
    encoder = BertEncoder(**SIZES)
    encoder(inputs)
    encoder.load_keras_hub_weights(backbone)

    ours, theirs = encoder(inputs), backbone(inputs)
    real = padding_mask[..., None].astype(bool)
    sequence_difference = np.abs(np.asarray(ours["sequence_output"]) - np.asarray(theirs["sequence_output"]))
    assert (sequence_difference * real).max() <= 1e-5
    np.testing.assert_allclose(ours["pooled_output"], theirs["pooled_output"], atol=1e-5)
