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
    assert model.encoder.hidden_dim == 64 and model.generator_projection.units == 64  # max(64, 64 / 4)
    clone = ElectraPretrainer.from_config(model.get_config())
    clone(_inputs())
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    assert tf.reduce_all(tf.shape(clone(_inputs())["replaced"]) == [2, 6])


def test_the_generator_reads_and_predicts_through_the_discriminators_token_embedding():
    """Section 3.1's shared embeddings: one token table [vocabulary, hidden] in the whole model, the
    generator's masked LM trains it too (without it detection stayed at the base rate)."""
    model = ElectraPretrainer(**dict(SIZES, hidden_dim=256, num_heads=4, intermediate_dim=512))
    inputs = _inputs()
    with tf.GradientTape() as tape:
        outputs = model(inputs, training=True)
        mlm_loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(inputs["mask_ids"], outputs["mlm_logits"]))
    assert model.generator_head.token_embedding is model.encoder.token_embedding
    assert [tuple(weight.shape) for weight in model.weights].count((50, 256)) == 1
    assert model.generator_projection.units == 64  # A quarter of 256.
    (gradient,) = tape.gradient(mlm_loss, [model.encoder.token_embedding.embeddings])
    assert float(tf.reduce_max(tf.abs(tf.convert_to_tensor(gradient)))) > 0


def test_joint_training_learns_to_detect_the_generators_samples():
    """The whole objective (masked LM + 50 x detection, both trained) on counting sequences, where a
    replaced token is visible from its neighbours: the discriminator must beat the share of
    originals, which a collapsed one (p(replaced) the same everywhere) only matches."""
    import keras

    keras.utils.set_random_seed(0)
    vocabulary, length, predictions, batch = 200, 16, 3, 32
    model = ElectraPretrainer(vocabulary_size=vocabulary, num_layers=1, num_heads=2, hidden_dim=64,
                              intermediate_dim=128, max_sequence_length=length, dropout=0.0)
    optimizer = keras.optimizers.Adam(1e-3)
    rng = np.random.default_rng(0)

    def counting_batch():
        tokens = rng.integers(10, vocabulary - length, batch)[:, None] + np.arange(length)[None]
        positions = np.sort(np.stack([rng.choice(np.arange(1, length), predictions, replace=False)
                                      for _ in range(batch)]), axis=1)
        masked = tokens.copy()
        np.put_along_axis(masked, positions, 1, axis=1)  # 1: [MASK]
        return {"token_ids": masked.astype(np.int32), "segment_ids": np.zeros_like(masked, np.int32),
                "padding_mask": np.ones_like(masked, np.int32), "mask_positions": positions.astype(np.int32),
                "mask_ids": np.take_along_axis(tokens, positions, 1).astype(np.int32),
                "mask_weights": np.ones([batch, predictions], np.float32)}

    @tf.function
    def train_step(inputs):
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            mlm = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(inputs["mask_ids"], outputs["mlm_logits"]))
            detection = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(outputs["replaced"],
                                                                               outputs["replaced_logits"]))
            loss = mlm + 50.0 * detection
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        correct = tf.cast((outputs["replaced_logits"] > 0) == (outputs["replaced"] > 0.5), tf.float32)
        return tf.reduce_mean(correct), 1.0 - tf.reduce_mean(outputs["replaced"])

    margins = []
    for step in range(600):
        accuracy, originals = train_step(counting_batch())
        if step >= 500:
            margins.append(float(accuracy - originals))
    assert np.mean(margins) > 0.03, f"detection {np.mean(margins):+.3f} over the share of originals"
