"""Length buckets: boundaries, tokenize-once cache, bucketed epochs, and padding that changes nothing."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.data import buckets
from zoo.data.pipeline import PADDING_LABEL
from zoo.data.text import RESERVED_TOKENS, TextPreprocessor
from zoo.errors import ConfigError

WORDS = ["good", "bad", "film", "plot", "dull", "great", "not", "very"]
VOCABULARY = RESERVED_TOKENS + WORDS
NUM_EXAMPLES = 45
SEQUENCE_LENGTH = 32
BATCH_SIZE = 8


def numbered_texts():
    """Example i has 1 + (i * 7) % 30 words and label i, so each batch says which examples it holds."""
    texts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(1 + (i * 7) % 30)) for i in range(NUM_EXAMPLES)]
    return tf.data.Dataset.from_tensor_slices((texts, tf.range(NUM_EXAMPLES, dtype=tf.int64)))


def preprocessor(output_format):
    return buckets.PadToLongest(TextPreprocessor(VOCABULARY, SEQUENCE_LENGTH, output_format=output_format))


@pytest.fixture(scope="module", params=["token_ids", "bert"])
def tokenized(request, tmp_path_factory):
    """(load_tokens, lengths, output_format) for the numbered texts, tokenized once."""
    cache_dir = tmp_path_factory.mktemp("tokens")
    load_tokens, lengths = buckets.tokenize_once(numbered_texts, preprocessor(request.param), cache_dir, "numbered")
    return load_tokens, lengths, request.param


@pytest.mark.parametrize("limits", [buckets.COMPILED_LIMITS, buckets.UNCOMPILED_LIMITS])
def test_choose_boundaries_minimises_padding_within_limits(limits):
    lengths = np.random.default_rng(0).zipf(1.6, 5000).clip(1, 128)
    boundaries = buckets.choose_boundaries(lengths, 128, limits)
    assert 2 <= len(boundaries) <= limits.max_buckets and boundaries == sorted(boundaries)
    assert boundaries[-1] == lengths.max()
    assert all(bound % limits.multiple == 0 for bound in boundaries[:-1])
    one_bucket = buckets.padded_tokens(lengths, [128])
    assert buckets.padded_tokens(lengths, boundaries) < one_bucket / 4
    for other in ([8, 16, 32, 64, 128], [16, 32, 48, 96, lengths.max()]):
        assert buckets.padded_tokens(lengths, boundaries) <= buckets.padded_tokens(lengths, other)


def test_uncompiled_limits_pad_less_than_compiled():
    lengths = np.random.default_rng(1).zipf(1.6, 5000).clip(1, 128)
    compiled = buckets.choose_boundaries(lengths, 128, buckets.COMPILED_LIMITS)
    uncompiled = buckets.choose_boundaries(lengths, 128, buckets.UNCOMPILED_LIMITS)
    assert buckets.padded_tokens(lengths, uncompiled) < buckets.padded_tokens(lengths, compiled)


def every_combination(lengths, sequence_length, limits):
    """`choose_boundaries` by brute force: the first of all candidate boundary lists, fewest buckets
    first and each count in ascending order, with the fewest padded tokens."""
    longest = int(np.minimum(lengths, sequence_length).max())
    candidates = range(limits.multiple, longest, limits.multiple)
    options = [[*inner, longest] for count in range(limits.max_buckets)
               for inner in itertools.combinations(candidates, count)]
    return min(options, key=lambda boundaries: buckets.padded_tokens(np.minimum(lengths, sequence_length), boundaries))


@pytest.mark.parametrize("seed", range(6))
def test_choose_boundaries_is_the_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    # Few distinct lengths make ties likely: both must then pick the same boundaries.
    lengths = rng.choice([1, 3, 8, 9, 16, 17, 30, 40, 41, 56], size=int(rng.integers(5, 60)))
    for limits in (buckets.COMPILED_LIMITS, buckets.BucketLimits(max_buckets=4, multiple=4)):
        assert buckets.choose_boundaries(lengths, 64, limits) == every_combination(lengths, 64, limits)


def test_parse_boundaries():
    assert buckets.parse_boundaries("none", 64) == [64]
    assert buckets.parse_boundaries("16,32", 64) == [16, 32, 64]
    assert buckets.parse_boundaries(" 16, 64 ", 64) == [16, 64]
    assert buckets.parse_boundaries("auto", 64, np.array([3, 5, 40])) == buckets.choose_boundaries([3, 5, 40], 64)
    assert buckets.parse_boundaries("auto", 64, np.array([3, 5, 40]), buckets.UNCOMPILED_LIMITS) == [4, 8, 40]
    for bad in ("32,16", "16,16", "0,8", "16,128", "short"):
        with pytest.raises(ConfigError, match="bucket_boundaries"):
            buckets.parse_boundaries(bad, 64)


@pytest.mark.parametrize("output_format", ["token_ids", "bert"])
def test_pad_to_longest_cuts_only_unused_padding(output_format):
    layer = preprocessor(output_format)
    full = layer.preprocessor(tf.constant(["good film", "not very good bad plot"]))
    trimmed = layer(tf.constant(["good film", "not very good bad plot"]))
    longest = 5 if output_format == "token_ids" else 7  # [CLS] + 5 words + [SEP]
    for name, tensor in (trimmed.items() if output_format == "bert" else [("token_ids", trimmed)]):
        reference = full[name] if output_format == "bert" else full
        assert tensor.shape == (2, longest)
        np.testing.assert_array_equal(tensor, reference[:, :longest])
        np.testing.assert_array_equal(reference[:, longest:], 0)
    special_tokens = 2 if output_format == "bert" else 0
    assert _shape(layer(tf.constant("good film"))) == (2 + special_tokens,)  # One example: its own length.
    assert _shape(layer(tf.constant([""]))) == (1, max(special_tokens, 1))  # Never zero columns.


def test_tokenize_once_reuses_its_cache(tokenized, tmp_path):
    load_tokens, lengths, output_format = tokenized
    assert lengths.shape == (NUM_EXAMPLES,) and lengths.max() <= SEQUENCE_LENGTH
    assert [int(label) for _, label in load_tokens()] == list(range(NUM_EXAMPLES))  # File order kept.

    def must_not_load():
        raise AssertionError("tokenized again")

    cache_dir = tmp_path / "cache"
    buckets.tokenize_once(numbered_texts, preprocessor(output_format), cache_dir, "same")
    _, again = buckets.tokenize_once(must_not_load, preprocessor(output_format), cache_dir, "same")
    np.testing.assert_array_equal(again, lengths)


def _real_labels(batches):
    return sorted(int(label) for _, labels in batches for label in labels.numpy() if label != PADDING_LABEL)


def _shape(model_inputs):
    return tuple((model_inputs["token_ids"] if isinstance(model_inputs, dict) else model_inputs).shape)


def test_each_training_epoch_sees_every_example_once_in_declared_buckets(tokenized):
    load_tokens, lengths, _ = tokenized
    boundaries = buckets.parse_boundaries("auto", SEQUENCE_LENGTH, lengths)
    steps = buckets.steps_per_epoch(lengths, boundaries, BATCH_SIZE)
    input_fn = buckets.make_bucketed_input_fn(load_tokens, boundaries, BATCH_SIZE, training=True, seed=3)
    batches = list(input_fn(None).take(2 * steps))
    for epoch in (batches[:steps], batches[steps:]):
        assert _real_labels(epoch) == list(range(NUM_EXAMPLES))
    shapes = {_shape(model_inputs) for model_inputs, _ in batches}
    assert shapes <= {(BATCH_SIZE, bound) for bound in boundaries} and len(shapes) > 1
    # Shuffled across buckets: the epochs' batch orders differ.
    assert [_shape(x) for x, _ in batches[:steps]] != [_shape(x) for x, _ in batches[steps:]]


def test_eval_is_one_pass_and_replicas_share_a_bucket(tokenized):
    load_tokens, lengths, _ = tokenized
    boundaries = [8, 16, SEQUENCE_LENGTH]
    input_fn = buckets.make_bucketed_input_fn(load_tokens, boundaries, BATCH_SIZE, training=False)
    two_replicas = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2)
    batches = list(input_fn(two_replicas))
    assert _real_labels(batches) == list(range(NUM_EXAMPLES))
    assert len(batches) == 2 * buckets.steps_per_epoch(lengths, boundaries, BATCH_SIZE)
    for first, second in zip(batches[::2], batches[1::2]):  # One step's two replicas.
        assert _shape(first[0]) == _shape(second[0]) and _shape(first[0])[0] == BATCH_SIZE // 2


def test_label_structures_stay_with_their_examples_and_filler_rows_carry_padding(tmp_path):
    """Distillation's labels: {"label", "teacher_probabilities"} through the cache and the buckets."""
    def labelled():
        return numbered_texts().map(lambda text, label: (
            text, {"label": label, "teacher_probabilities": tf.stack([tf.cast(label, tf.float32), 0.5])}))

    load_tokens, _ = buckets.tokenize_once(labelled, preprocessor("token_ids"), tmp_path, "structured")
    input_fn = buckets.make_bucketed_input_fn(load_tokens, [8, 16, SEQUENCE_LENGTH], BATCH_SIZE, training=False)
    seen = []
    for _, labels in input_fn(None):
        label, teacher = labels["label"].numpy(), labels["teacher_probabilities"].numpy()
        assert label.dtype == np.int32 and teacher.dtype == np.float32 and teacher.shape == (BATCH_SIZE, 2)
        real = label != PADDING_LABEL
        np.testing.assert_array_equal(teacher[real, 0], label[real])
        assert (teacher[~real] == PADDING_LABEL).all()
        seen += label[real].tolist()
    assert sorted(seen) == list(range(NUM_EXAMPLES))


def test_workers_share_each_steps_bucket_and_split_each_epoch(tokenized):
    """Two workers keep the buckets: at every step both hold half of one global batch, padded to
    the same bucket (their collectives see equal shapes), and together they see each example once."""
    load_tokens, lengths, _ = tokenized
    boundaries = [8, 16, SEQUENCE_LENGTH]
    steps = buckets.steps_per_epoch(lengths, boundaries, BATCH_SIZE)
    input_fn = buckets.make_bucketed_input_fn(load_tokens, boundaries, BATCH_SIZE, training=True, seed=5)
    workers = [
        list(input_fn(tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker,
                                                 num_replicas_in_sync=2)).take(steps))
        for worker in range(2)
    ]
    shapes = [[_shape(x) for x, _ in worker] for worker in workers]
    assert shapes[0] == shapes[1]
    assert {shape[0] for shape in shapes[0]} == {BATCH_SIZE // 2}
    assert len({shape[1] for shape in shapes[0]}) > 1  # Several buckets, not the longest for all.
    assert _real_labels(workers[0] + workers[1]) == list(range(NUM_EXAMPLES))


@pytest.mark.parametrize("model_name", ["bert", "transformer"])
def test_buckets_give_the_same_logits_and_losses_as_fixed_padding(model_name, tmp_path):
    output_format = "bert" if model_name == "bert" else "token_ids"
    load_tokens, lengths = buckets.tokenize_once(numbered_texts, preprocessor(output_format), tmp_path, "x")
    model = zoo.build(model_name, vocabulary_size=len(VOCABULARY), num_classes=NUM_EXAMPLES, num_layers=2,
                      num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=SEQUENCE_LENGTH)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def per_example(boundaries):
        """label -> (logits, loss) over one eval pass."""
        input_fn = buckets.make_bucketed_input_fn(load_tokens, boundaries, BATCH_SIZE, training=False)
        found = {}
        for model_inputs, labels in input_fn(None):
            logits = model(model_inputs, training=False).numpy()
            losses = loss(tf.maximum(labels, 0), logits).numpy()
            for row, label in enumerate(labels.numpy()):
                if label != PADDING_LABEL:
                    found[int(label)] = (logits[row], losses[row])
        return found

    bucketed = per_example(buckets.parse_boundaries("auto", SEQUENCE_LENGTH, lengths))
    fixed = per_example(buckets.parse_boundaries("none", SEQUENCE_LENGTH))
    assert sorted(bucketed) == sorted(fixed) == list(range(NUM_EXAMPLES))
    for label in range(NUM_EXAMPLES):
        np.testing.assert_allclose(bucketed[label][0], fixed[label][0], atol=1e-5)
        np.testing.assert_allclose(bucketed[label][1], fixed[label][1], atol=1e-5)


@pytest.mark.parametrize("jit_compile, expected", [
    (False, [4, 8, 12, 16, 20, 24, 28, 32, 36, 40]),  # UNCOMPILED_LIMITS: 10 buckets, multiples of 4.
    (True, [8, 16, 24, 32, 40]),  # COMPILED_LIMITS: each shape one XLA compilation.
])
def test_a_runs_auto_buckets_follow_whether_its_step_compiles(tmp_path, jit_compile, expected):
    """Through the classification task as `trainers.run` builds it: texts of 1 to 40 words, each a
    token, so every length is equally common."""
    from trainers import config as config_lib
    from trainers import tasks

    rows = [(" ".join(WORDS[(i + j) % len(WORDS)] for j in range(1 + i % 40)), i % 2) for i in range(400)]
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    values = config_lib.load_config("transformer/files").to_dict()
    values["data"].update(train_files=str(train), eval_files=str(train), vocabulary_size=100)
    values["train"].update(jit_compile=jit_compile)
    (tmp_path / "run").mkdir()
    task = tasks.create_task(config_lib.config_from_dict(values), model_dir=tmp_path / "run")
    described = task.prepare_inputs().bucket_description  # "4 (p10), 8 (p20), ..."
    assert [int(part.split()[0]) for part in described.split(", ")] == expected
