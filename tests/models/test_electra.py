"""ELECTRA's pretrainer: the discriminator reads the generator's samples at the masked positions
only, and its labels say exactly where a sample differs from the original."""

import numpy as np
import tensorflow as tf

from zoo.models.electra import ElectraPretrainer, scatter_predictions

SIZES = dict(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=64, intermediate_dim=128, max_sequence_length=16)


def _inputs():
    token_ids = np.array([[2, 7, 4, 9, 3, 0], [2, 4, 4, 3, 0, 0]], np.int32)  # 4: [MASK]
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": (token_ids > 0).astype(np.int32),
        "mask_positions": np.array([[2, 0], [1, 2]], np.int32),  # Row 0 has one prediction.
        "mask_ids": np.array([[11, 0], [12, 13]], np.int32),
        "mask_weights": np.array([[1.0, 0.0], [1.0, 1.0]], np.float32),
    }


def test_scatter_writes_only_the_real_masked_positions():
    inputs = _inputs()
    written, is_masked = scatter_predictions(inputs["token_ids"], inputs["mask_positions"], inputs["mask_weights"],
                                             inputs["mask_ids"])
    np.testing.assert_array_equal(written, [[2, 7, 11, 9, 3, 0], [2, 12, 13, 3, 0, 0]])
    np.testing.assert_array_equal(is_masked, [[0, 0, 1, 0, 0, 0], [0, 1, 1, 0, 0, 0]])


def test_replaced_labels_mark_samples_that_differ_from_the_original_and_nothing_else():
    model = ElectraPretrainer(**SIZES)
    inputs = _inputs()
    outputs = model(inputs, training=True)
    assert outputs["mlm_logits"].shape == (2, 2, 50) and outputs["replaced_logits"].shape == (2, 6)
    replaced = outputs["replaced"].numpy()
    unmasked = np.ones_like(replaced, bool)
    unmasked[0, 2] = unmasked[1, 1] = unmasked[1, 2] = False
    assert not replaced[unmasked].any()  # Never a position the generator did not fill.
    # An untrained generator over 50 tokens almost never samples the original: all three replaced.
    assert replaced[~unmasked].sum() >= 2


def test_a_generator_that_is_sure_of_the_original_replaces_nothing():
    model = ElectraPretrainer(**SIZES)
    inputs = dict(_inputs(), mask_ids=np.array([[11, 0], [11, 11]], np.int32))
    model(inputs)
    # The head's output bias (its only weight of shape [vocabulary]) made huge for token 11, the
    # original at every masked position: every sample is 11, so nothing counts as replaced.
    (bias,) = [weight for weight in model.generator_head.weights if weight.shape == (50,)]
    bias.assign(np.where(np.arange(50) == 11, 1e4, -1e4).astype(np.float32))
    assert model(inputs)["replaced"].numpy().sum() == 0


def test_the_discriminator_encoder_is_what_fine_tuning_reads_and_config_round_trips():
    model = ElectraPretrainer(**SIZES)
    model(_inputs())
    assert model.encoder.hidden_dim == 64 and model.generator.hidden_dim == 64  # max(64, 64 / 4)
    clone = ElectraPretrainer.from_config(model.get_config())
    clone(_inputs())
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    assert tf.reduce_all(tf.shape(clone(_inputs())["replaced"]) == [2, 6])
