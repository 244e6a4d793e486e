"""Text batches padded to a few length buckets instead of one maximum: tokenize once, pad little.

Sentences are short (GLUE SST-2: 9.4 words on average, p95 26), yet BERT recipes pad every one to
128 tokens, so most of each step multiplies padding. Here:

1. `tokenize_once` runs the preprocessor over a split once, in a parallel `map`, and saves each
   example's token ids, trimmed to its own length, in `model_dir` (`tf.data.Dataset.save`); every
   epoch, and every later run on that `model_dir`, reads them back.
2. `choose_boundaries` picks the padded lengths ("buckets") that minimise the padded tokens of an
   epoch, from the training split's length distribution: at most 5, multiples of 8, where the
   train step is compiled (XLA, TPUs: each bucket's shape is one compilation); at most 10,
   multiples of 4, where it is not (a new shape costs nothing there, and SST-2's epoch then pads
   to 1.14 times its real tokens instead of 1.33: BENCHMARKS.md, "Fine-tuning on SST-2").
   Other buckets batch other examples together, which moves an SST-2 recipe's dev accuracy by a
   few tenths of a point, so the shipped SST-2 recipes (`<model>/sst2_local`) pin the buckets
   their BENCHMARKS.md figures were measured with in `data.bucket_boundaries`.
3. `make_bucketed_input_fn` groups examples by length (`Dataset.bucket_by_sequence_length`), pads
   each batch to its bucket's length, fills a bucket's last partial batch with rows labelled
   `PADDING_LABEL` (the trainer gives them zero weight), and shuffles the batches across buckets.
   Every batch has one of the buckets' static shapes, so XLA compiles once per bucket, and an epoch
   of `steps_per_epoch(...)` steps sees every example exactly once.
4. `PadToLongest` does the same at serving time: a request is padded to its longest text, not to
   the model's maximum.

Padding never changes a model's answer, because every zoo text model masks it (token id 0, or the
`padding_mask`); the tests check logits and losses against fixed padding.
"""

import dataclasses
import hashlib
import os
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from zoo.atomic import write_atomically
from zoo.data.pipeline import PADDING_LABEL, as_int32_labels
from zoo.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class BucketLimits:
    """What `choose_boundaries` may choose from: at most `max_buckets` boundaries, each a multiple of
    `multiple` (shapes that vector units split evenly) or the longest example's length."""

    max_buckets: int
    multiple: int


# A compiled step (XLA, TPUs) compiles once per bucket shape; an uncompiled one runs any shape.
COMPILED_LIMITS = BucketLimits(max_buckets=5, multiple=8)
UNCOMPILED_LIMITS = BucketLimits(max_buckets=10, multiple=4)
# Texts per tokenizer call in `tokenize_once`.
TOKENIZE_BATCH = 1024
# Part of every token cache's name: a cache of an older layout (one saved element per example,
# before 2026-12-02) is not read as this one.
CACHE_FORMAT = "ragged-batches"


def sequence_lengths(model_inputs):
    """int32 [...]: the number of non-padding tokens of each row of a preprocessor's output.

    Args:
        model_inputs: int token ids [..., sequence] (padding id 0), or a dict with a
            `padding_mask` [..., sequence] (BERT's).
    """
    if isinstance(model_inputs, dict):
        return tf.reduce_sum(tf.cast(model_inputs["padding_mask"], tf.int32), axis=-1)
    return tf.reduce_sum(tf.cast(tf.not_equal(model_inputs, 0), tf.int32), axis=-1)


def trim_to_longest(model_inputs):
    """Cuts the padding columns that no row uses: [..., sequence] -> [..., longest row (at least 1)].

    Padding sits at the end of each row, so the cut keeps every token.
    """
    longest = tf.maximum(tf.reduce_max(sequence_lengths(model_inputs)), 1)
    return tf.nest.map_structure(lambda tensor: tensor[..., :longest], model_inputs)


class PadToLongest(keras.layers.Layer):
    """A text preprocessor whose output is padded to the longest text of its input, not to its
    `sequence_length` (which still caps it).

    One example (a scalar string) comes out at its own length, the form `tokenize_once` saves; a
    serving request of batch B comes out as [B, longest], so a short request costs what its
    tokens cost.

    Args:
        preprocessor: a `zoo.data.text.TextPreprocessor` (either output format).

    Example:

    ```python
    layer = PadToLongest(TextPreprocessor(vocabulary, sequence_length=128))
    layer(tf.constant(["a fine film", "dull"])).shape    # (2, 3), not (2, 128)
    ```
    """

    def __init__(self, preprocessor, **kwargs):
        super().__init__(**kwargs)
        self.preprocessor = preprocessor
        self.built = True
        self._allow_non_tensor_positional_args = True

    @property
    def vocabulary_size(self):
        return self.preprocessor.vocabulary_size

    @property
    def sequence_length(self):
        return self.preprocessor.sequence_length

    def call(self, text, text_pair=None):
        if text_pair is None:
            return trim_to_longest(self.preprocessor(text))
        return trim_to_longest(self.preprocessor(text, text_pair))


def parse_boundaries(value, sequence_length, lengths=None, limits=COMPILED_LIMITS) -> list[int]:
    """`--bucket_boundaries` -> the ascending padded lengths, the last one `sequence_length` or less.

    Args:
        value: str. `"auto"` (from `lengths`, see `choose_boundaries`), `"none"` (one bucket:
            every batch padded to `sequence_length`), or ascending integers `"16,32,64"`
            (`sequence_length` is added as the last bucket when larger).
        sequence_length: int. The preprocessor's maximum.
        lengths: int array [num_examples], the training split's token counts; needed for "auto".
        limits: `BucketLimits` for "auto": `COMPILED_LIMITS` or `UNCOMPILED_LIMITS`.
    """
    value = str(value).strip().lower()
    if value == "auto":
        return choose_boundaries(lengths, sequence_length, limits)
    if value == "none":
        return [sequence_length]
    try:
        boundaries = [int(part) for part in value.split(",")]
    except ValueError:
        raise ConfigError(
            f"data.bucket_boundaries must be auto, none or ascending integers like 16,32,64; got {value!r}"
        ) from None
    if boundaries != sorted(set(boundaries)) or boundaries[0] <= 0 or boundaries[-1] > sequence_length:
        raise ConfigError(
            f"data.bucket_boundaries must ascend strictly within 1..data.sequence_length={sequence_length}; "
            f"got {value!r}"
        )
    return boundaries if boundaries[-1] == sequence_length else boundaries + [sequence_length]


def padded_tokens(lengths, boundaries, counts=1) -> int:
    """Tokens an epoch computes, padding included, when each example is padded to its bucket.

    `counts`: how many examples have each of `lengths` (1: `lengths` lists every example).
    """
    buckets = np.searchsorted(boundaries, lengths)  # The first boundary >= each length.
    return int((np.asarray(boundaries)[buckets] * counts).sum())


def choose_boundaries(lengths, sequence_length, limits=COMPILED_LIMITS) -> list[int]:
    """The padded lengths (at most `limits.max_buckets`) that minimise an epoch's padded tokens.

    The last boundary is the longest example (a bucket padded beyond it would only add padding);
    the others are chosen among the multiples of `limits.multiple` below it. Dynamic programming
    over those candidates (a few hundred at most for 512 tokens) finds the same optimum as trying
    every combination, and the same boundaries where two choices pad alike: the one with fewer
    buckets, then the one whose boundaries come first in ascending order. For SST-2 with BERT's
    tokens, `COMPILED_LIMITS` gives 8, 16, 24, 40 and the longest, near the 42nd, 72nd, 86th and
    98th percentiles.

    Args:
        lengths: int array [num_examples]. Token counts, each at most `sequence_length`.
        sequence_length: int.
        limits: `BucketLimits`.
    """
    values, counts = np.unique(np.minimum(np.asarray(lengths), sequence_length), return_counts=True)
    longest = max(int(values.max(initial=1)), 1)
    candidates = [*range(limits.multiple, longest, limits.multiple), longest]
    # Examples up to each candidate length, so that a bucket's cost (its examples, those in
    # (previous, boundary], padded to boundary) takes O(1).
    examples_up_to = [int(counts[values <= candidate].sum()) for candidate in candidates]

    def bucket_cost(previous, index):
        below = examples_up_to[previous] if previous is not None else 0
        return candidates[index] * (examples_up_to[index] - below)

    # best[k][i]: (padded tokens, boundaries) of the best k + 1 buckets whose last is candidates[i].
    best = [[(bucket_cost(None, i), (candidates[i],)) for i in range(len(candidates))]]
    for _ in range(1, limits.max_buckets):
        previous_row = best[-1]
        best.append([
            min(((previous_row[j][0] + bucket_cost(j, i), previous_row[j][1] + (candidates[i],)) for j in range(i)),
                default=(np.inf, ()))
            for i in range(len(candidates))
        ])
    return list(min((row[-1][0], len(row[-1][1]), row[-1][1]) for row in best)[2])


def steps_per_epoch(lengths, boundaries, global_batch_size) -> int:
    """Batches in one pass: each bucket's examples in whole batches, its last one filled up."""
    counts = np.bincount(np.searchsorted(boundaries, lengths), minlength=len(boundaries))
    return int(sum(-(-count // global_batch_size) for count in counts))


def describe(lengths, boundaries) -> str:
    """E.g. "16 (p62), 32 (p95), 64 (p100)": each bucket's length and the share of examples up to it."""
    return ", ".join(f"{bound} (p{100 * np.mean(lengths <= bound):.0f})" for bound in boundaries)


def tokenize_once(load_fn, preprocessor, cache_dir, key):
    """Tokenizes a split once into `cache_dir` and returns how to read it back, with its lengths.

    The token ids of each example are saved trimmed to its own length (a few KB a thousand
    sentences) under a name made from `key`, which must identify the data and the preprocessor
    (files and their modification times, vocabulary, sequence length): a later run with the same
    key reads them instead of tokenizing again. Written to a temporary directory and renamed, so a
    killed run leaves no half-written cache.

    Texts are tokenized TOKENIZE_BATCH at a time and saved as ragged batches (one row per
    example, at its own length), which `load_tokens` unbatches: one tokenizer call and one saved
    element per batch rather than per example: SST-2's 67k sentences in BERT's format took 8 s
    against 41 s one text at a time (2-core CPU); the examples read back are the same.

    Args:
        load_fn: callable. `load_fn()` -> unbatched `(raw_input, label)` pairs; raw_input a
            tf.string scalar or a `(text, text_pair)` tuple.
        preprocessor: `PadToLongest`. One raw input -> model inputs at its own length.
        cache_dir: path. Created if missing.
        key: str.

    Returns:
        `(load_tokens, lengths)`: `load_tokens()` -> `tf.data.Dataset` of `(model_inputs, label)`,
        label int32 (or a structure, see `as_int32_labels`); lengths an int array [num_examples].
    """
    path = os.path.join(os.fspath(cache_dir), hashlib.sha256(f"{CACHE_FORMAT}/{key}".encode()).hexdigest()[:16])
    if not tf.io.gfile.exists(path):
        def tokenize(raw_input, label):  # A batch: [batch] strings -> ragged [batch, (own length)].
            raw_input = raw_input if isinstance(raw_input, tuple) else (raw_input,)
            padded = preprocessor(*raw_input)  # [batch, the batch's longest]
            # What `preprocessor` gives one text alone: its own length, at least 1.
            lengths = tf.maximum(sequence_lengths(padded), 1)
            ragged = tf.nest.map_structure(lambda ids: tf.RaggedTensor.from_tensor(ids, lengths=lengths), padded)
            return ragged, as_int32_labels(label)

        def save(temporary):
            batches = load_fn().batch(TOKENIZE_BATCH).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
            # One shard keeps the file order, so evaluation reads the examples as written.
            batches.save(str(temporary), shard_func=lambda *batch: tf.constant(0, tf.int64))

        write_atomically(path, save)

    def load_tokens():
        # A ragged batch unbatches into rows typed as ragged tensors of rank 1; as plain tensors
        # they go on to `padded_batch`.
        return tf.data.Dataset.load(path).unbatch().map(
            lambda model_inputs, label: (tf.nest.map_structure(tf.convert_to_tensor, model_inputs), label))

    batches = tf.data.Dataset.load(path).map(lambda model_inputs, label: sequence_lengths(model_inputs))
    lengths = np.concatenate([batch.numpy() for batch in batches] or [np.zeros([0], np.int32)])
    return load_tokens, lengths


def make_bucketed_input_fn(load_tokens, boundaries, global_batch_size, training, seed=0, shuffle_buffer=10000):
    """The `input_fn(input_context)` for `strategy.distribute_datasets_from_function` over buckets.

    Args:
        load_tokens: callable. `load_tokens()` -> `(model_inputs, label)` at each example's own
            length, from `tokenize_once`.
        boundaries: list of int. Ascending padded lengths; no example is longer than the last.
        global_batch_size: int. Examples per step over all replicas.
        training: bool. True: shuffled examples, then shuffled batches, repeated forever (one epoch
            is `steps_per_epoch(...)` steps). False: one pass, in bucket order.
        seed: int. The shuffle seed; the order still changes from epoch to epoch.
        shuffle_buffer: int. Examples held by the example shuffle buffer.

    Returns:
        `input_fn(input_context)` -> `tf.data.Dataset` of `(model_inputs, label)`: model_inputs
        [per_replica_batch, bucket length] (or a dict of those), label int32 [per_replica_batch],
        `PADDING_LABEL` in the rows that fill a bucket's last batch. All replicas (of all
        pipelines) get slices of one global batch, so they share its bucket in every step.
    """
    # bucket_by_sequence_length's bucket i holds lengths in [b_(i-1), b_i) and pads to b_i - 1; a
    # last bucket [max + 1, inf) stays empty.
    exclusive_bounds = [bound + 1 for bound in boundaries]

    def input_fn(input_context=None):
        input_context = input_context or tf.distribute.InputContext()
        per_replica_batch_size = input_context.get_per_replica_batch_size(global_batch_size)
        replicas_fed = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        pipeline_batch_size = per_replica_batch_size * replicas_fed
        # Training: every pipeline (worker) builds the same global batches (same seed) and keeps its
        # slice of each, so all replicas are in the same bucket at every step: the step takes as
        # long as its slowest replica, and the updates equal one replica's on the global batch.
        # Eval: each pipeline reads the whole split (no collectives).
        batch_size = global_batch_size if training else pipeline_batch_size

        dataset = load_tokens().cache()
        if training:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed)
        dataset = dataset.bucket_by_sequence_length(
            lambda model_inputs, label: sequence_lengths(model_inputs),
            bucket_boundaries=exclusive_bounds,
            bucket_batch_sizes=[batch_size] * (len(exclusive_bounds) + 1),
            pad_to_bucket_boundary=True,
        )
        dataset = dataset.map(lambda model_inputs, labels: _fill_batch(model_inputs, labels, batch_size))
        if training:
            # Each bucket's last batch comes at the end of a pass; mix them in.
            dataset = dataset.shuffle(256, seed=seed).repeat()
            if input_context.num_input_pipelines > 1:
                dataset = dataset.rebatch(pipeline_batch_size, drop_remainder=True)
                dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        if replicas_fed > 1:
            dataset = dataset.rebatch(per_replica_batch_size, drop_remainder=True)
        return dataset.prefetch(tf.data.AUTOTUNE)

    return input_fn


def _fill_batch(model_inputs, labels, batch_size):
    """Fills a partial batch up to `batch_size` rows with copies of its first row, every label leaf
    `PADDING_LABEL`: real tokens, so no model sees an all-padding row (which can give NaN)."""
    missing = batch_size - tf.shape(tf.nest.flatten(labels)[0])[0]

    def fill(tensor):
        filled = tf.concat([tensor, tf.repeat(tensor[:1], missing, axis=0)], axis=0)
        return tf.ensure_shape(filled, [batch_size, *tensor.shape[1:]])

    def fill_label(label):
        padding = tf.fill([missing, *label.shape[1:]], tf.constant(PADDING_LABEL, label.dtype))
        return tf.ensure_shape(tf.concat([label, padding], axis=0), [batch_size, *label.shape[1:]])

    return tf.nest.map_structure(fill, model_inputs), tf.nest.map_structure(fill_label, labels)


@dataclasses.dataclass(frozen=True)
class BucketedSplits:
    """A task's bucketed input functions (for `distribute_datasets_from_function`) and epoch size.

    Attributes:
        train_input_fn: callable. Repeated, shuffled training batches.
        eval_input_fn: callable. One pass over the eval split.
        steps_per_epoch: int. Training steps that see every example once.
        description: str. The boundaries and their percentiles, e.g. "16 (p62), 32 (p95)".
    """

    train_input_fn: Callable
    eval_input_fn: Callable
    steps_per_epoch: int
    description: str


def bucketed_input_fns(load_train, load_eval, preprocessor, *, cache_dir, cache_key, bucket_boundaries,
                       global_batch_size, compiled, seed=0):
    """Tokenizes both splits once and returns their bucketed input functions.

    Args:
        load_train, load_eval: callables -> `(raw_input, label)` datasets (see `tokenize_once`).
        preprocessor: `PadToLongest`.
        cache_dir: path for the token ids. cache_key: str naming the data and preprocessor.
        bucket_boundaries: str, `--bucket_boundaries` (see `parse_boundaries`).
        global_batch_size: int. seed: int.
        compiled: bool. Whether the train step is compiled per batch shape (XLA, TPUs), which
            limits `auto` to `COMPILED_LIMITS`.

    Returns:
        `BucketedSplits`. The eval split uses the training split's boundaries, plus its own longest
        length if that is beyond them.
    """
    load_train_tokens, train_lengths = tokenize_once(load_train, preprocessor, cache_dir, f"train/{cache_key}")
    load_eval_tokens, eval_lengths = tokenize_once(load_eval, preprocessor, cache_dir, f"eval/{cache_key}")
    limits = COMPILED_LIMITS if compiled else UNCOMPILED_LIMITS
    boundaries = parse_boundaries(bucket_boundaries, preprocessor.sequence_length, train_lengths, limits)
    eval_longest = int(eval_lengths.max(initial=0))
    eval_boundaries = boundaries if eval_longest <= boundaries[-1] else boundaries + [eval_longest]
    common = dict(global_batch_size=global_batch_size, seed=seed)
    return BucketedSplits(
        train_input_fn=make_bucketed_input_fn(load_train_tokens, boundaries, training=True, **common),
        eval_input_fn=make_bucketed_input_fn(load_eval_tokens, eval_boundaries, training=False, **common),
        steps_per_epoch=steps_per_epoch(train_lengths, boundaries, global_batch_size),
        description=describe(train_lengths, boundaries),
    )
