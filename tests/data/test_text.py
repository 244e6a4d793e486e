"""WordPiece vocabulary learning and the TextPreprocessor layer's shapes, formats and export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.data.text import (
    RESERVED_TOKENS,
    TextPreprocessor,
    compute_vocabulary,
    load_vocabulary,
    save_vocabulary,
)

SEQUENCE_LENGTH = 8
CORPUS = [
    "I love this movie!",
    "I hated this film.",
    "The plot was not good, but the acting was great.",
    "What a boring movie",
] * 20


@pytest.fixture(scope="module")
def vocabulary():
    return compute_vocabulary(tf.data.Dataset.from_tensor_slices(CORPUS), vocabulary_size=200)


def _ids(vocabulary, tokens):
    return [vocabulary.index(token) for token in tokens]


def test_vocabulary_is_lowercase_with_reserved_tokens_first(vocabulary):
    assert vocabulary[: len(RESERVED_TOKENS)] == RESERVED_TOKENS
    assert vocabulary[0] == "[PAD]"
    assert {"i", "love", "this", "movie", "!"} <= set(vocabulary)
    assert "I" not in vocabulary and "Movie" not in vocabulary
    assert len(vocabulary) == len(set(vocabulary))


def test_vocabulary_size_is_an_upper_bound():
    texts = tf.data.Dataset.from_tensor_slices(CORPUS)
    assert len(compute_vocabulary(texts, vocabulary_size=30)) == 30


def test_vocabulary_is_the_same_on_every_run():
    """Workers and resumed runs each learn their own vocabulary, so the same texts must give the
    same ids. `tokenizers`' trainer alone numbered this corpus's tokens differently on each of 5
    runs (400+ of 500 ids moved): its `##` characters in hash-map order, its merges' ties by them."""
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrst")
    corpus = [" ".join("".join(rng.choice(letters, rng.integers(3, 8))) for _ in range(8)) for _ in range(300)]
    vocabularies = [compute_vocabulary(tf.data.Dataset.from_tensor_slices(corpus), vocabulary_size=500) for _ in range(5)]
    assert len(vocabularies[0]) == 500
    assert all(vocabulary == vocabularies[0] for vocabulary in vocabularies[1:])


def test_save_and_load_vocabulary(vocabulary, tmp_path):
    path = tmp_path / "vocabulary.txt"
    save_vocabulary(vocabulary, path)
    assert path.read_text().splitlines() == vocabulary
    assert load_vocabulary(path) == vocabulary


def test_token_ids_of_a_scalar_and_a_batch(vocabulary):
    preprocessor = TextPreprocessor(vocabulary, sequence_length=SEQUENCE_LENGTH)
    expected = _ids(vocabulary, ["i", "love", "this", "movie", "!"]) + [0, 0, 0]
    scalar = preprocessor("I love this movie!")
    assert scalar.dtype == tf.int32 and scalar.shape == [SEQUENCE_LENGTH]
    assert scalar.numpy().tolist() == expected
    batch = preprocessor(tf.constant(["I LOVE this movie!", "", "this " * 20]))
    assert batch.dtype == tf.int32 and batch.shape == [3, SEQUENCE_LENGTH]
    assert batch.numpy()[0].tolist() == expected
    assert batch.numpy()[1].tolist() == [0] * SEQUENCE_LENGTH  # Empty text: all padding.
    assert batch.numpy()[2].tolist() == [vocabulary.index("this")] * SEQUENCE_LENGTH  # Truncated.
    assert preprocessor(["zzqx"]).numpy()[0, 0] == RESERVED_TOKENS.index("[UNK]")


def test_bert_format(vocabulary):
    preprocessor = TextPreprocessor(vocabulary, sequence_length=SEQUENCE_LENGTH, output_format="bert")
    cls, sep = RESERVED_TOKENS.index("[CLS]"), RESERVED_TOKENS.index("[SEP]")
    outputs = preprocessor(tf.constant(["I love this movie!", "", "this " * 20]))
    assert set(outputs) == {"token_ids", "segment_ids", "padding_mask"}
    for value in outputs.values():
        assert value.dtype == tf.int32 and value.shape == [3, SEQUENCE_LENGTH]
    token_ids = outputs["token_ids"].numpy()
    assert token_ids[0].tolist() == [cls] + _ids(vocabulary, ["i", "love", "this", "movie", "!"]) + [sep, 0]
    assert token_ids[1].tolist() == [cls, sep] + [0] * (SEQUENCE_LENGTH - 2)
    assert token_ids[2, 0] == cls and token_ids[2, -1] == sep  # Truncated, still closed by [SEP].
    np.testing.assert_array_equal(outputs["padding_mask"].numpy(), (token_ids != 0).astype(np.int32))
    assert not outputs["segment_ids"].numpy().any()

    scalar = preprocessor("I love this movie!")
    assert scalar["token_ids"].shape == [SEQUENCE_LENGTH]
    np.testing.assert_array_equal(scalar["token_ids"], token_ids[0])


def test_bert_text_pair(vocabulary):
    preprocessor = TextPreprocessor(vocabulary, sequence_length=SEQUENCE_LENGTH, output_format="bert")
    cls, sep = RESERVED_TOKENS.index("[CLS]"), RESERVED_TOKENS.index("[SEP]")
    love, movie = _ids(vocabulary, ["love", "movie"])
    outputs = preprocessor(tf.constant(["love"]), tf.constant(["movie"]))
    assert outputs["token_ids"].numpy()[0].tolist() == [cls, love, sep, movie, sep, 0, 0, 0]
    assert outputs["segment_ids"].numpy()[0].tolist() == [0, 0, 0, 1, 1, 0, 0, 0]
    with pytest.raises(ValueError, match="text_pair"):
        TextPreprocessor(vocabulary, sequence_length=SEQUENCE_LENGTH)("love", "movie")


def test_vocabulary_from_file_and_size(vocabulary, tmp_path):
    path = tmp_path / "vocabulary.txt"
    save_vocabulary(vocabulary, path)
    from_file = TextPreprocessor(str(path), sequence_length=SEQUENCE_LENGTH)
    assert from_file.vocabulary_size == len(vocabulary)
    np.testing.assert_array_equal(
        from_file("I love this movie!"),
        TextPreprocessor(vocabulary, sequence_length=SEQUENCE_LENGTH)("I love this movie!"),
    )


def test_bad_arguments_are_rejected(vocabulary):
    with pytest.raises(ValueError, match=r"must hold .* with \[PAD\] first; it lacks \['\[CLS\]'"):
        TextPreprocessor(["a", "[UNK]", "[PAD]"], sequence_length=4)
    with pytest.raises(ValueError, match=r"starts with \['\[UNK\]'"):
        TextPreprocessor(["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"], sequence_length=4)
    with pytest.raises(ValueError, match="output_format"):
        TextPreprocessor(vocabulary, sequence_length=4, output_format="gpt")


def test_a_bert_vocabulary_with_special_tokens_elsewhere_tokenizes_as_keras_hubs_bert_tokenizer():
    """BERT's own layout: [PAD] 0, [unused..], [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103."""
    import keras_hub

    words = ["the", "movie", "was", "great", "##ly", "fun", "!", "a"]
    vocabulary = ["[PAD]"] + [f"[unused{index}]" for index in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    texts = tf.constant(["The movie was greatly FUN!", "a zebra"])
    ours = TextPreprocessor(vocabulary, sequence_length=10, output_format="bert")(texts)
    theirs = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True), sequence_length=10
    )(texts)
    for key in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(np.asarray(ours[key]), np.asarray(theirs[key], dtype=np.int32))
    assert list(np.asarray(ours["token_ids"])[1, :4]) == [101, 111, 100, 102]  # [CLS] a [UNK] [SEP]


@pytest.mark.parametrize("output_format", ["token_ids", "bert"])
def test_get_config_round_trips(vocabulary, output_format):
    preprocessor = TextPreprocessor(vocabulary, sequence_length=SEQUENCE_LENGTH, output_format=output_format)
    config = preprocessor.get_config()
    restored = TextPreprocessor.from_config(config)
    assert restored.get_config() == config
    assert list(config["vocabulary"]) == vocabulary
    texts = tf.constant(["The plot was not good, but I love this movie"])
    tf.nest.map_structure(np.testing.assert_array_equal, restored(texts), preprocessor(texts))


@pytest.mark.parametrize("output_format", ["token_ids", "bert"])
def test_inside_tf_data_and_tf_function(vocabulary, output_format):
    preprocessor = TextPreprocessor(vocabulary, sequence_length=SEQUENCE_LENGTH, output_format=output_format)
    dataset = tf.data.Dataset.from_tensor_slices(CORPUS[:4]).map(preprocessor)
    for spec in tf.nest.flatten(dataset.element_spec):
        assert spec == tf.TensorSpec([SEQUENCE_LENGTH], tf.int32)
    expected = preprocessor(tf.constant(CORPUS[:4]))
    from_dataset = next(iter(dataset.batch(4)))
    tf.nest.map_structure(np.testing.assert_array_equal, from_dataset, expected)
    in_function = tf.function(preprocessor)(tf.constant(CORPUS[:4]))
    tf.nest.map_structure(np.testing.assert_array_equal, in_function, expected)


@pytest.mark.parametrize("output_format", ["token_ids", "bert"])
def test_exported_saved_model_tokenizes_raw_strings(vocabulary, output_format, tmp_path):
    preprocessor = TextPreprocessor(vocabulary, sequence_length=SEQUENCE_LENGTH, output_format=output_format)
    archive = keras.export.ExportArchive()
    archive.track(preprocessor)
    archive.add_endpoint("serve", preprocessor.call, input_signature=[tf.TensorSpec([None], tf.string)])
    archive.write_out(str(tmp_path / "1"), verbose=False)

    texts = tf.constant(["I love this movie!", ""])
    served = tf.saved_model.load(str(tmp_path / "1")).serve(texts)
    tf.nest.map_structure(np.testing.assert_array_equal, served, preprocessor(texts))
