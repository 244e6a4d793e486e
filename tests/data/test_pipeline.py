"""make_input_fn: sharding, per-replica batches, one-pass evaluation, repeated training batches."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.data.images import ImagePreprocessor
from zoo.data.pipeline import make_input_fn
from zoo.data.text import RESERVED_TOKENS, TextPreprocessor

NUM_EXAMPLES = 50


def load_numbered_images():
    """Image i is filled with i and labelled i, so every batch says which examples it holds."""
    numbers = tf.data.Dataset.range(NUM_EXAMPLES)
    return numbers.map(lambda i: (tf.fill([4, 4, 1], tf.cast(i, tf.uint8)), i))


def _labels(dataset):
    return [int(label) for _, labels in dataset for label in labels.numpy()]


def _context(pipeline_id):
    return tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2)


def test_eval_sees_every_example_once_in_per_replica_batches():
    input_fn = make_input_fn(load_numbered_images, ImagePreprocessor(), global_batch_size=8, training=False)
    dataset = input_fn(None)
    images, labels = dataset.element_spec
    assert images == tf.TensorSpec([None, 4, 4, 1], tf.float32) and labels.dtype == tf.int32
    batches = list(dataset)
    assert [len(labels) for _, labels in batches] == [8] * 6 + [2]  # The last partial batch is kept.
    assert _labels(batches) == list(range(NUM_EXAMPLES))
    for images, labels in batches:
        np.testing.assert_array_equal(images.numpy()[:, 0, 0, 0], labels.numpy())


def test_training_shards_are_disjoint_and_cover_the_data():
    input_fn = make_input_fn(load_numbered_images, ImagePreprocessor(), global_batch_size=8, training=True)
    epoch_batches = NUM_EXAMPLES // 2 // 4  # Each shard holds half the examples, 4 per batch.
    shards = [input_fn(_context(pipeline_id)).take(epoch_batches) for pipeline_id in (0, 1)]
    for shard in shards:
        assert max(len(labels) for _, labels in shard) == 4  # 8 over 2 replicas.
    first, second = (_labels(shard) for shard in shards)
    assert not set(first) & set(second)
    assert len(set(first + second)) == len(first + second) == epoch_batches * 8


def test_every_worker_evaluates_the_whole_eval_split():
    input_fn = make_input_fn(load_numbered_images, ImagePreprocessor(), global_batch_size=8, training=False)
    for pipeline_id in (0, 1):
        assert sorted(_labels(input_fn(_context(pipeline_id)))) == list(range(NUM_EXAMPLES))


def test_training_batches_are_static_shuffled_and_repeated():
    input_fn = make_input_fn(load_numbered_images, ImagePreprocessor(), global_batch_size=10, training=True, seed=3)
    dataset = input_fn(_context(1))
    images, labels = dataset.element_spec
    assert images.shape == [5, 4, 4, 1] and labels.shape == [5]
    # The 25 examples of shard 1 (odd numbers), over two epochs of 5 batches each.
    two_epochs = _labels(dataset.take(10))
    first_epoch, second_epoch = two_epochs[:25], two_epochs[25:]
    assert sorted(first_epoch) == sorted(second_epoch) == list(range(1, NUM_EXAMPLES, 2))
    assert first_epoch != sorted(first_epoch) and first_epoch != second_epoch
    # The same seed gives the same order.
    assert _labels(input_fn(_context(1)).take(10)) == two_epochs


def test_training_drops_the_last_partial_batch():
    input_fn = make_input_fn(load_numbered_images, ImagePreprocessor(), global_batch_size=8, training=True)
    assert all(len(labels) == 8 for _, labels in input_fn(None).take(20))


@pytest.mark.parametrize("output_format", ["token_ids", "bert"])
def test_text_batches(output_format):
    vocabulary = RESERVED_TOKENS + ["i", "love", "this", "movie", "!"]
    preprocessor = TextPreprocessor(vocabulary, sequence_length=6, output_format=output_format)

    def load_reviews():
        return tf.data.Dataset.from_tensor_slices((["I love this movie!", "this movie", ""] * 4, [1, 0, 0] * 4))

    inputs, labels = make_input_fn(load_reviews, preprocessor, global_batch_size=4, training=True)(None).element_spec
    for spec in tf.nest.flatten(inputs):
        assert spec == tf.TensorSpec([4, 6], tf.int32)
    assert labels == tf.TensorSpec([4], tf.int32)


def test_feeds_distribute_datasets_from_function():
    strategy = tf.distribute.get_strategy()
    input_fn = make_input_fn(load_numbered_images, ImagePreprocessor(), global_batch_size=8, training=False)
    dataset = strategy.distribute_datasets_from_function(input_fn)
    assert sorted(_labels(dataset)) == list(range(NUM_EXAMPLES))


def test_eval_for_several_replicas_pads_the_last_step_with_labelled_padding():
    """One pipeline feeding 2 replicas: whole steps, every real example once, padding labelled -1."""
    from zoo.data.pipeline import PADDING_LABEL

    values = tf.range(11, dtype=tf.int64)
    input_fn = make_input_fn(
        lambda: tf.data.Dataset.from_tensor_slices((values, values % 2)),
        preprocessor=lambda value: value,
        global_batch_size=4,
        training=False,
    )
    context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2)
    batches = list(input_fn(context).as_numpy_iterator())
    assert [len(labels) for _, labels in batches] == [2] * 6  # 12 rows: 11 examples + 1 padding.
    inputs = np.concatenate([batch_inputs for batch_inputs, _ in batches])
    labels = np.concatenate([batch_labels for _, batch_labels in batches])
    assert sorted(inputs[labels != PADDING_LABEL].tolist()) == list(range(11))
    assert (labels == PADDING_LABEL).sum() == 1
