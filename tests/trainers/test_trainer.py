"""The training loop on a real zoo model: learning, checkpoints that hold every weight, restore."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from trainers.trainer import Trainer, TrainingDivergedError, checkpointable_weights, densify, real_tokens
from trainers.config import config_from_dict
from trainers.optimization import create_optimizer
from trainers.tasks.classification import Classification
from zoo.data.pipeline import PADDING_LABEL

BERT = dict(vocabulary_size=40, hidden_dim=32, num_heads=2, intermediate_dim=64, max_sequence_length=16)


def _bert_batch(size=16):
    rng = np.random.default_rng(0)
    token_ids = rng.integers(5, 40, [size, 8]).astype(np.int32)
    labels = (token_ids[:, 1] > 20).astype(np.int32)
    inputs = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": np.ones_like(token_ids)}
    return inputs, labels


def _input_fn(repeat):
    inputs, labels = _bert_batch()

    def input_fn(input_context=None):
        dataset = tf.data.Dataset.from_tensor_slices((inputs, labels))
        return dataset.repeat().batch(8, drop_remainder=True) if repeat else dataset.batch(8)

    return input_fn


def _trainer(model_dir, learning_rate=3e-3, steps=12):
    config = config_from_dict({"model": {"name": "bert"}, "train": {"learning_rate": learning_rate}})
    model = zoo.build("bert", **BERT)
    model(_bert_batch(2)[0])
    optimizer = create_optimizer(config, model, total_steps=steps)
    strategy = tf.distribute.get_strategy()
    return Trainer(strategy=strategy, objective=Classification(), model=model, optimizer=optimizer, model_dir=model_dir, steps_per_loop=4)


def test_checkpointable_weights_cover_layers_kept_in_lists(tmp_path):
    """BERT keeps its encoder blocks in a list; every weight must reach the checkpoint."""
    model = zoo.build("bert", **BERT)
    model(_bert_batch(2)[0])
    path = tf.train.Checkpoint(model=checkpointable_weights(model)).save(str(tmp_path / "ckpt"))
    saved = [key for key in tf.train.load_checkpoint(path).get_variable_to_shape_map() if key.startswith("model/")]
    assert len(saved) == len(model.weights) > 30


def test_training_lowers_the_loss_and_restore_brings_back_the_trained_weights(tmp_path):
    trainer = _trainer(tmp_path)
    before = trainer.evaluate(_input_fn(repeat=False))
    trainer.train(_input_fn(repeat=True), epochs=3, steps_per_epoch=4)
    after = trainer.evaluate(_input_fn(repeat=False))
    assert int(trainer.global_step.numpy()) == 12
    assert after["loss"] < before["loss"]

    fresh = _trainer(tmp_path)
    assert fresh.restore().endswith("ckpt-12")
    assert int(fresh.global_step.numpy()) == 12
    for trained, restored in zip(trainer.model.weights, fresh.model.weights):
        np.testing.assert_array_equal(trained.numpy(), restored.numpy())
    assert fresh.evaluate(_input_fn(repeat=False))["loss"] == pytest.approx(after["loss"], abs=1e-6)


def test_rows_labelled_padding_weigh_nothing_in_training(tmp_path):
    """Filler rows (label -1) that keep a batch's shape static add no loss, no gradient, no count."""
    trainer = _trainer(tmp_path)
    trainer.model = zoo.build("bert", **BERT, dropout=0.0)
    inputs, labels = _bert_batch(8)
    trainer.model(inputs)
    padded_labels = np.where(np.arange(8) < 5, labels, PADDING_LABEL).astype(np.int32)
    _, padded_loss, padded_gradients = trainer.gradients(inputs, padded_labels)
    real_inputs = {key: value[:5] for key, value in inputs.items()}
    _, real_loss, real_gradients = trainer.gradients(real_inputs, labels[:5])
    np.testing.assert_allclose(padded_loss.numpy()[:5], real_loss.numpy(), atol=1e-6)
    np.testing.assert_array_equal(padded_loss.numpy()[5:], 0.0)
    for padded, real in zip(padded_gradients, real_gradients):  # The mean is over all 8 rows.
        np.testing.assert_allclose(tf.convert_to_tensor(padded) * 8 / 5, tf.convert_to_tensor(real), atol=1e-6)


def test_nan_loss_stops_with_a_clear_error_naming_the_kept_checkpoint(tmp_path):
    trainer = _trainer(tmp_path, learning_rate=1e30)
    with pytest.raises(TrainingDivergedError, match=r"loss became nan near step \d+; the last good checkpoint"):
        trainer.train(_input_fn(repeat=True), epochs=50, steps_per_epoch=4)


def _adam(gradients, learning_rate=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Adam's rule (Kingma & Ba 2015, algorithm 1) in numpy, from a zero start: the total update."""
    m = v = update = 0.0
    for step, gradient in enumerate(gradients, start=1):
        m = beta_1 * m + (1 - beta_1) * gradient
        v = beta_2 * v + (1 - beta_2) * gradient**2
        update = update + learning_rate * (m / (1 - beta_1**step)) / (np.sqrt(v / (1 - beta_2**step)) + epsilon)
    return update


def test_densified_embedding_gradients_take_adams_step_for_repeated_tokens():
    """A token twice in a batch has gradient rows g1 and g2: Adam must see (g1 + g2), squared after
    summing. Keras' Adam on the raw IndexedSlices squares g1 and g2 apart; densify sums first."""
    rows = tf.constant([[1.0], [3.0]])
    steps = [tf.IndexedSlices(rows, tf.constant([0, 1]), tf.constant([2, 1])),  # tokens 0 and 1
             tf.IndexedSlices(rows, tf.constant([1, 1]), tf.constant([2, 1]))]  # token 1, twice
    expected = _adam(np.array([[1.0, 3.0], [0.0, 4.0]]))  # per token: its summed gradient at each step

    def trained(transform):
        variable = keras.Variable(np.zeros([2, 1], "float32"))
        optimizer = keras.optimizers.Adam(learning_rate=0.1)
        for gradient in steps:
            optimizer.apply_gradients([(transform(gradient), variable)])
        return -variable.numpy()[:, 0]

    np.testing.assert_allclose(trained(densify), expected, rtol=1e-4)  # Keras places epsilon apart.
    assert not np.allclose(trained(lambda gradient: gradient), expected, rtol=1e-2)  # Why densify exists.
    dense = tf.ones([2, 1])
    assert densify(dense) is dense


def test_a_time_budget_stops_at_a_loop_end_with_a_checkpoint_and_a_rerun_finishes(tmp_path, capsys):
    evaluated = []
    trainer = _trainer(tmp_path)
    trainer.train(_input_fn(repeat=True), epochs=3, steps_per_epoch=8, after_epoch=evaluated.append,
                  time_budget_seconds=0.0)
    assert trainer.budget_reached and int(trainer.global_step.numpy()) == 4  # One loop of 4 steps.
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-4") and evaluated == []
    assert "Time budget of 0 h reached at step 4 of 24" in capsys.readouterr().out

    resumed = _trainer(tmp_path)
    resumed.train(_input_fn(repeat=True), epochs=3, steps_per_epoch=8, after_epoch=evaluated.append,
                  time_budget_seconds=3600.0)
    assert not resumed.budget_reached and int(resumed.global_step.numpy()) == 24 and evaluated == [0, 1, 2]
    # The resumed run's training time starts from the first call's, restored with the checkpoint.
    first_call = float(trainer.train_seconds.numpy())
    assert 0 < first_call < float(resumed.train_seconds.numpy())


def test_real_tokens_count_what_is_not_padding():
    padding_mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], np.int32)
    assert float(real_tokens({"token_ids": padding_mask * 7, "padding_mask": padding_mask})) == 4.0
    assert float(real_tokens(tf.constant([[5, 3, 0], [0, 0, 0]]))) == 2.0  # 0 is padding in token ids.
    assert float(real_tokens(tf.zeros([2, 8, 8, 1]))) == 0.0  # Images have no tokens.


def test_progress_shows_examples_and_tokens_per_second_and_tensorboard_keeps_them(tmp_path, capsys):
    trainer = _trainer(tmp_path)
    sums = trainer.train_steps(iter(tf.distribute.get_strategy().distribute_datasets_from_function(
        _input_fn(repeat=True))), 2)
    assert float(sums["tokens"]) == 2 * 8 * 8  # Two batches of 8 examples of 8 real tokens.
    trainer.train(_input_fn(repeat=True), epochs=1, steps_per_epoch=8)
    progress = capsys.readouterr().out
    assert "examples_per_s:" in progress and "tokens_per_s:" in progress
    logged = {value.tag for path in (tmp_path / "train").glob("events*")
              for event in tf.compat.v1.train.summary_iterator(str(path)) for value in event.summary.value}
    assert {"examples_per_s", "tokens_per_s", "accuracy", "learning_rate"} <= logged


def test_the_first_call_says_it_traces_the_step_before_the_silent_first_loop(tmp_path, capsys):
    """Tracing (and XLA compiling) the step takes seconds before the first progress update; a
    line says so, once: a later call reuses the trace."""
    trainer = _trainer(tmp_path)
    trainer.train(_input_fn(repeat=True), epochs=1, steps_per_epoch=8)
    first = capsys.readouterr().out
    trainer.train(_input_fn(repeat=True), epochs=2, steps_per_epoch=8)
    second = capsys.readouterr().out
    line = "Training: tracing the train step; the progress bar starts after the first 4 steps ..."
    assert first.count(line) == 1 and first.index(line) < first.index("examples_per_s:")
    assert "tracing" not in second and "examples_per_s:" in second


def test_a_checkpoint_from_before_the_training_time_was_kept_leaves_that_time_unknown(tmp_path):
    trainer = _trainer(tmp_path)
    older = tf.train.Checkpoint(model=checkpointable_weights(trainer.model), global_step=trainer.global_step)
    older.save(str(tmp_path / "checkpoints" / "ckpt"))
    resumed = _trainer(tmp_path)
    resumed.train(_input_fn(repeat=True), epochs=1, steps_per_epoch=4)
    assert int(resumed.global_step.numpy()) == 4 and np.isnan(resumed.train_seconds.numpy())
