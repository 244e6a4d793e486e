"""BERT pretraining examples: corpus reading, next-sentence pairs, masking as the paper's 15% / 80-10-10."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.data import pretraining
from zoo.data.text import RESERVED_TOKENS, TextPreprocessor
from zoo.errors import ConfigError

WORDS = [f"w{index}" for index in range(60)]
VOCABULARY = RESERVED_TOKENS + WORDS + ["."]


def test_files_give_one_document_per_blank_line_separated_block_and_a_sentence_per_line(tmp_path):
    (tmp_path / "a.txt").write_text("First line. Second sentence here!\nThird line\n\n\nNew doc one.\n")
    (tmp_path / "b.txt").write_text("Other file doc.\nIts second line.")  # No final newline or blank line.
    documents = pretraining.documents_from_files(str(tmp_path / "*.txt"))
    assert documents == [
        ["First line.", "Second sentence here!", "Third line"],
        ["New doc one."],
        ["Other file doc.", "Its second line."],
    ]


def test_a_glob_matching_nothing_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^--train_files=\S+nothing\*\.txt matches no file"):
        pretraining.documents_from_files(str(tmp_path / "nothing*.txt"))


def test_pairs_are_next_sentences_or_random_sentences_of_other_documents_half_the_time():
    documents = [[f"d{doc} s{position}" for position in range(5)] for doc in range(200)]
    first, second, is_next = pretraining.sentence_pairs(documents, seed=3)
    assert len(first) == 200 * 4  # Every sentence with a successor is an A once.
    assert 0.45 < np.mean(is_next) < 0.55
    for a, b, label in zip(first, second, is_next):
        a_doc, a_position = a.split()
        b_doc, b_position = b.split()
        if label:
            assert (b_doc, int(b_position[1:])) == (a_doc, int(a_position[1:]) + 1)
        else:
            assert b_doc != a_doc
    with pytest.raises(ConfigError, match="at least 2 documents"):
        pretraining.sentence_pairs(documents[:1])


def test_masking_chooses_15_percent_of_real_tokens_and_replaces_80_10_10():
    tf.random.set_seed(0)
    text_preprocessor = TextPreprocessor(VOCABULARY, sequence_length=40, output_format="bert")
    example_preprocessor = pretraining.PretrainingPreprocessor(text_preprocessor, mask_rate=0.15, max_predictions=8)
    rng = np.random.default_rng(0)
    sentences = [" ".join(rng.choice(WORDS, size=15)) for _ in range(800)]
    pairs = tf.data.Dataset.from_tensor_slices(((sentences[::2], sentences[1::2]), [1, 0] * 200))
    inputs, labels = next(iter(pairs.map(example_preprocessor).batch(400)))
    unmasked, _ = next(iter(pairs.map(lambda pair, label: (text_preprocessor(pair[0], pair[1]), label)).batch(400)))

    positions, weights = inputs["mask_positions"].numpy(), labels["mask_weights"].numpy()
    original = unmasked["token_ids"].numpy()
    rows = np.repeat(np.arange(400)[:, None], 8, axis=1)
    chosen = weights > 0
    # The labels are the original tokens at the chosen positions; never [CLS], [SEP] or padding.
    np.testing.assert_array_equal(labels["mask_ids"].numpy()[chosen], original[rows[chosen], positions[chosen]])
    assert not np.isin(original[rows[chosen], positions[chosen]], [0, 2, 3]).any()
    # 32 real word tokens per pair (+ 3 special): 15% is 4.8 a row (capped at 8).
    assert 4.0 < chosen.sum(axis=1).mean() < 5.6
    replaced = inputs["token_ids"].numpy()[rows[chosen], positions[chosen]]
    kept = original[rows[chosen], positions[chosen]]
    share_mask, share_same = np.mean(replaced == 4), np.mean(replaced == kept)
    assert 0.75 < share_mask < 0.85 and 0.07 < share_same < 0.14  # 80% [MASK], 10% unchanged (+ chance)
    assert labels["next_sentence_label"].numpy().tolist() == [1, 0] * 200
    np.testing.assert_array_equal(inputs["segment_ids"], unmasked["segment_ids"])
