"""Adversarial training on the token embeddings (trainers/adversarial.py) inside the Trainer's step."""

import numpy as np
import pytest
import tensorflow as tf

import zoo
from trainers import adversarial
from trainers.config import config_from_dict
from trainers.optimization import create_optimizer
from trainers.tasks.classification import Classification
from trainers.trainer import Trainer, densify
from zoo.errors import ConfigError

GRU = dict(vocabulary_size=30, embedding_dim=8, hidden_dim=8, pooling="max")
EPSILON = 0.5


def _batch():
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, 30, [8, 6]).astype(np.int32)
    token_ids[::2, 4:] = 0  # Some padding.
    return tf.constant(token_ids), tf.constant((token_ids[:, 0] > 15).astype(np.int32))


def _model(name="gru", **overrides):
    fields = GRU if name == "gru" else dict(vocabulary_size=30, hidden_dim=16, num_heads=2, intermediate_dim=32,
                                            max_sequence_length=8)
    model = zoo.build(name, **{**fields, **overrides})
    inputs, _ = _batch()
    model(inputs if name != "bert" else _bert_inputs(inputs))
    return model


def _bert_inputs(token_ids):
    return {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids), "padding_mask": tf.cast(token_ids != 0, tf.int32)}


def _trainer(model, tmp_path, epsilon=EPSILON):
    config = config_from_dict({"model": {"name": "gru"}, "train": {"learning_rate": 1e-3}})
    return Trainer(strategy=tf.distribute.get_strategy(), objective=Classification(), model=model,
                   optimizer=create_optimizer(config, model, total_steps=10), model_dir=tmp_path, steps_per_loop=1,
                   adversarial_epsilon=epsilon)


def _loss(model, inputs, labels):
    return float(tf.reduce_mean(Classification().per_example_loss(labels, model(inputs, training=True))))


def test_perturbation_has_length_epsilon_along_the_gradient():
    sparse = tf.IndexedSlices(tf.constant([[3.0, 4.0], [0.0, 12.0]]), tf.constant([1, 3]), tf.constant([5, 2]))
    delta = adversarial.perturbation(sparse, 2.0).numpy()
    assert delta.shape == (5, 2)
    assert np.linalg.norm(delta) == pytest.approx(2.0, rel=1e-6)
    np.testing.assert_allclose(delta[[1, 3]], 2.0 * np.array([[3, 4], [0, 12]]) / 13.0, rtol=1e-6)
    np.testing.assert_array_equal(delta[[0, 2, 4]], 0.0)  # Rows of tokens not in the batch stay put.
    np.testing.assert_array_equal(adversarial.perturbation(tf.zeros([4, 2]), 2.0), 0.0)  # No NaN.


def test_the_perturbed_pass_reads_the_moved_table_and_writes_nothing(tmp_path):
    model = _model(dropout=0.0)
    inputs, labels = _batch()
    table = adversarial.token_embedding_table(model)
    before = table.numpy()
    delta = tf.random.stateless_normal(table.shape, seed=[1, 2]) * 0.1
    with adversarial.perturbed(model, table, delta):
        perturbed_logits = model(inputs).numpy()
    np.testing.assert_array_equal(table.numpy(), before)
    moved = _model(dropout=0.0)
    moved.set_weights(model.get_weights())
    adversarial.token_embedding_table(moved).assign(before + delta.numpy())
    np.testing.assert_allclose(perturbed_logits, moved(inputs).numpy(), atol=1e-6)
    assert not np.allclose(perturbed_logits, model(inputs).numpy(), atol=1e-4)


def test_a_step_descends_on_the_clean_and_the_perturbed_losses_gradients_summed(tmp_path):
    """The step's gradients against both passes computed by hand, with the table moved by assignment."""
    model = _model(dropout=0.0)
    inputs, labels = _batch()
    outputs, per_example_loss, gradients = _trainer(model, tmp_path).gradients(inputs, labels)
    clean = _trainer(model, tmp_path / "clean", epsilon=0.0).gradients(inputs, labels)[2]
    table = adversarial.token_embedding_table(model)
    index = [id(variable) for variable in model.trainable_variables].index(id(table))
    delta = adversarial.perturbation(clean[index], EPSILON)
    clean_loss = _loss(model, inputs, labels)
    table.assign_add(delta)
    perturbed_loss = _loss(model, inputs, labels)
    perturbed = _trainer(model, tmp_path / "moved", epsilon=0.0).gradients(inputs, labels)[2]
    table.assign_sub(delta)
    # The move raises the loss (first order: by about epsilon * ||g||) ...
    assert perturbed_loss > clean_loss
    # ... and the step's gradients are both passes' summed; its outputs and losses the clean pass's.
    for got, want_clean, want_perturbed in zip(gradients, clean, perturbed):
        np.testing.assert_allclose(got, densify(want_clean) + densify(want_perturbed), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(tf.reduce_mean(per_example_loss), clean_loss, rtol=1e-6)


def test_the_perturbed_pass_draws_its_own_dropout_masks(tmp_path):
    """Each pass advances the dropout seeds (checkpointed, so a resumed run draws the same masks)."""
    model = _model(dropout=0.5, embedding_dropout=0.5)
    inputs, labels = _batch()
    weights = {id(weight) for weight in model.weights}
    states = [variable for variable in model.variables if id(variable) not in weights]
    assert states
    before = [np.array(state.numpy()) for state in states]
    _trainer(model, tmp_path, epsilon=0.0).gradients(inputs, labels)
    once = [np.array(state.numpy()) for state in states]
    _trainer(model, tmp_path / "adversarial").gradients(inputs, labels)
    twice = [np.array(state.numpy()) for state in states]
    for start, first, second in zip(before, once, twice):
        np.testing.assert_array_equal(second - first, 2 * (first - start))


def test_bert_perturbs_its_encoders_token_embedding_and_trains_under_xla(tmp_path):
    model = _model("bert", dropout=0.0)
    assert adversarial.token_embedding_table(model) is model.encoder.token_embedding.embeddings
    inputs, labels = _batch()
    trainer = _trainer(model, tmp_path)
    compiled = tf.function(trainer.gradients, jit_compile=True)
    _, _, gradients = compiled(_bert_inputs(inputs), labels)
    _, _, eager = trainer.gradients(_bert_inputs(inputs), labels)
    for got, want in zip(gradients, eager):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("name", ["cnn", "bow"])
def test_a_model_without_token_embeddings_is_refused_with_the_field_named(name, tmp_path):
    model = zoo.build(name, **({"filters": (4, 8)} if name == "cnn" else {"vocabulary_size": 30}))
    with pytest.raises(ConfigError, match="train.adversarial_epsilon needs a model with a token embedding"):
        _trainer(model, tmp_path)


def test_frozen_token_embeddings_are_refused(tmp_path):
    model = _model("bert")
    model.enable_lora(2)
    with pytest.raises(ConfigError, match="train.adversarial_epsilon needs a trainable token embedding"):
        _trainer(model, tmp_path)
