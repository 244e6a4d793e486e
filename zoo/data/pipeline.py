"""tf.data input functions for `tf.distribute.Strategy.distribute_datasets_from_function`.

Each input pipeline (one per host, or per worker) reads its own shard of the examples and batches
them for ONE replica, so the strategy never re-splits batches:

    input_fn = make_input_fn(lambda: load("zoo_digits", "train"), ImagePreprocessor(),
                             global_batch_size=64, training=True)
    dataset = strategy.distribute_datasets_from_function(input_fn)   # 64 / replicas per replica
"""

import tensorflow as tf


def make_input_fn(
    load_fn, preprocessor, global_batch_size, training, seed=0, shuffle_buffer=10000, preprocesses_labels=False
):
    """Builds the `input_fn(input_context)` that reads, preprocesses and batches one split.

    Per example: `preprocessor(raw_input)` (in parallel) and the label cast to int32. The
    preprocessed examples are cached in memory after the first pass, so tokenization runs once.

    Args:
        load_fn: callable. `load_fn()` returns an unbatched `tf.data.Dataset` of
            `(raw_input, label)` pairs, e.g. `zoo.data.load`'s.
        preprocessor: callable, usually a Keras layer. One raw input -> the model's input for one
            example (a tensor or a dict of tensors).
        global_batch_size: int. Examples per step over all replicas; must divide evenly by the
            number of replicas.
        training: bool. True: shuffled (`seed`), repeated forever, and only full batches, so every
            batch has a static size (pass `steps_per_epoch`). False: one pass in order, the last
            batch possibly smaller, so evaluation sees every example exactly once; when one
            pipeline feeds several replicas, the last step is padded with examples labelled
            `PADDING_LABEL` (-1) so that no replica gets an empty batch.
        seed: int. The shuffle seed; the order still changes from epoch to epoch.
        shuffle_buffer: int. Examples held by the shuffle buffer.
        preprocesses_labels: bool. `preprocessor(raw_input, label)` returns `(model_input, labels)`
            itself, labels any structure of tensors (BERT pretraining: the masked tokens are labels).

    Returns:
        `input_fn(input_context)` -> `tf.data.Dataset` of `(model_input, label)`, with
        model_input of shape [per_replica_batch, ...] and label int32 [per_replica_batch], where
        per_replica_batch = global_batch_size / num_replicas_in_sync. An `input_context` of None
        means one pipeline feeding one replica.
    """

    def input_fn(input_context=None):
        input_context = input_context or tf.distribute.InputContext()
        dataset = load_fn()
        # Training data is split between input pipelines (workers). Every worker evaluates the
        # whole eval split on its own replicas: complete metrics without collectives, and no
        # worker waits for another whose shard ran out a step earlier.
        if training and input_context.num_input_pipelines > 1:
            dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        dataset = dataset.map(
            preprocessor if preprocesses_labels else lambda raw_input, label: (preprocessor(raw_input), as_int32_labels(label)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        dataset = dataset.cache()
        if training:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed).repeat()
        per_replica_batch_size = input_context.get_per_replica_batch_size(global_batch_size)
        replicas_fed = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        if not training and replicas_fed > 1:
            dataset = _pad_to_whole_steps(dataset, per_replica_batch_size * replicas_fed)
        dataset = dataset.batch(per_replica_batch_size, drop_remainder=training)
        return dataset.prefetch(tf.data.AUTOTUNE)

    return input_fn


PADDING_LABEL = -1
MAP_BATCH = 1024  # Examples per call of `map_in_batches`' function.


def map_in_batches(dataset, fn):
    """`dataset.map(fn)`, with `fn` called on MAP_BATCH examples at a time: the same examples in
    the same order, unbatched again.

    For cheap per-example work (selecting or relabelling fields): a Python-traced map function
    costs tf.data about 18 microseconds per call on a 2-core CPU whatever it does, 1.2 s for one
    pass over SST-2's 67k rows one at a time against 0.1 s a batch at a time
    (docs/keras_tf_behaviour.md section 14). `fn` must work on [batch, ...] tensors and keep the
    batch dimension first.
    """
    return dataset.batch(MAP_BATCH).map(fn).unbatch()


def as_int32_labels(labels):
    """Integer labels as int32, the trainer's dtype; float labels (a teacher's probabilities) as they are.

    Args:
        labels: a tensor, or a structure of them (distillation: `{"label", "teacher_probabilities"}`).
    """
    return tf.nest.map_structure(lambda label: tf.cast(label, tf.int32) if label.dtype.is_integer else label, labels)


def _pad_to_whole_steps(dataset, examples_per_step):
    """Pads one pass of eval data to whole steps with copies of its first example, labelled -1 (every label).

    Otherwise the last step's replicas may get a partial or an EMPTY batch, and some kernels fail
    on zero-sized batches (a convolution on oneDNN, for one). The evaluator drops the padding
    rows by their label.
    """
    def as_padding(model_input, labels):
        return model_input, tf.nest.map_structure(lambda label: tf.fill(tf.shape(label), tf.cast(PADDING_LABEL, label.dtype)), labels)

    padding = dataset.take(1).map(as_padding)
    padded = dataset.concatenate(padding.repeat(examples_per_step - 1))
    return padded.batch(examples_per_step, drop_remainder=True).unbatch()
