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


def _preprocessor(sequence_length=40, **options):
    text_preprocessor = TextPreprocessor(VOCABULARY, sequence_length=sequence_length, output_format="bert")
    return pretraining.PretrainingPreprocessor(text_preprocessor, **options)


def _token_documents(rng, num_documents, sentences=(3, 7), words=(2, 9)):
    """Documents of sentences of random word ids (those of WORDS: 5..64)."""
    return [[rng.integers(5, 65, size=rng.integers(*words)).astype(np.int32) for _ in range(rng.integers(*sentences))]
            for _ in range(num_documents)]


def test_slots_past_ceil_mask_rate_times_length_stay_empty_and_change_no_choice():
    """At 64 tokens a row holds at most ceil(0.15 * 64) = 10 masked tokens: BERT's 20 slots (meant
    for 128) leave the last 10 as padding the masked-LM head scores anyway, and 10 choose the same
    tokens from the same random draws."""
    rng = np.random.default_rng(0)
    rows = [rng.integers(5, 65, size=70).astype(np.int32) for _ in range(200)]  # Longer than the row: full rows.
    examples = tf.data.Dataset.from_tensor_slices(((pretraining._ragged(rows),), [1] * 200))
    masked = {}
    for slots in (20, 10):
        example_preprocessor = _preprocessor(sequence_length=64, mask_rate=0.15, max_predictions=slots,
                                             next_sentence_prediction=False)
        batch = next(iter(examples.map(example_preprocessor.pack).batch(200)))
        tf.random.set_seed(0)
        masked[slots] = example_preprocessor.mask(*batch)
    (inputs_20, labels_20), (inputs_10, labels_10) = masked[20], masked[10]
    assert (labels_10["mask_weights"].numpy() == 1).all()  # 62 real tokens: ceil(9.3) = 10 chosen in every row.
    assert (labels_20["mask_weights"].numpy()[:, 10:] == 0).all()
    np.testing.assert_array_equal(inputs_20["mask_positions"].numpy()[:, :10], inputs_10["mask_positions"].numpy())
    np.testing.assert_array_equal(inputs_20["token_ids"].numpy(), inputs_10["token_ids"].numpy())


def test_masking_chooses_15_percent_of_real_tokens_and_replaces_80_10_10():
    tf.random.set_seed(0)
    example_preprocessor = _preprocessor(mask_rate=0.15, max_predictions=8)
    rng = np.random.default_rng(0)
    sentences = [" ".join(rng.choice(WORDS, size=15)) for _ in range(800)]
    documents = pretraining.tokenize_documents([sentences[index:index + 2] for index in range(0, 800, 2)],
                                               example_preprocessor.tokenizer)
    first, second = [document[0] for document in documents], [document[1] for document in documents]
    examples = tf.data.Dataset.from_tensor_slices(((pretraining._ragged(first), pretraining._ragged(second)), [1, 0] * 200))
    unmasked, _ = next(iter(examples.map(example_preprocessor.pack).batch(400)))
    inputs, labels = example_preprocessor.mask(unmasked, {"next_sentence_label": tf.constant([1, 0] * 200)})

    positions, weights = inputs["mask_positions"].numpy(), labels["mask_weights"].numpy()
    original = unmasked["token_ids"].numpy()
    rows = np.repeat(np.arange(400)[:, None], 8, axis=1)
    chosen = weights > 0
    # The labels are the original tokens at the chosen positions; never [CLS], [SEP] or padding.
    np.testing.assert_array_equal(labels["mask_ids"].numpy()[chosen], original[rows[chosen], positions[chosen]])
    assert not np.isin(original[rows[chosen], positions[chosen]], [0, 2, 3]).any()
    # 30 real word tokens per pair (+ 3 special: 40 - 3 - round-robin truncation of 15 + 15 + 2 dots): 15% is 4.65, capped at 8.
    assert (chosen.sum(axis=1) == 5).mean() > 0.95
    replaced = inputs["token_ids"].numpy()[rows[chosen], positions[chosen]]
    kept = original[rows[chosen], positions[chosen]]
    share_mask, share_same = np.mean(replaced == 4), np.mean(replaced == kept)
    assert 0.75 < share_mask < 0.85 and 0.07 < share_same < 0.14  # 80% [MASK], 10% unchanged (+ chance)
    # Nothing else changes.
    unchosen = np.ones_like(original, bool)
    unchosen[rows[chosen], positions[chosen]] = False
    np.testing.assert_array_equal(inputs["token_ids"].numpy()[unchosen], original[unchosen])
    assert labels["next_sentence_label"].numpy().tolist() == [1, 0] * 200
    np.testing.assert_array_equal(inputs["segment_ids"], unmasked["segment_ids"])


def test_tokenize_documents_keeps_documents_and_sentences_apart():
    example_preprocessor = _preprocessor()
    documents = pretraining.tokenize_documents([["w1 w2.", "w3."], ["w4 w5 w6."]], example_preprocessor.tokenizer)
    word = {token: index for index, token in enumerate(VOCABULARY)}
    assert [[sentence.tolist() for sentence in document] for document in documents] == [
        [[word["w1"], word["w2"], word["."]], [word["w3"], word["."]]], [[word["w4"], word["w5"], word["w6"], word["."]]]]


def test_packed_single_segments_fill_every_sequence_but_the_last_with_documents_in_order():
    documents = _token_documents(np.random.default_rng(1), 30)
    examples = pretraining.pretraining_examples(documents, sequence_length=32, next_sentence_prediction=False,
                                                packing=True, separator_id=3)
    inputs, labels = next(iter(examples.map(_preprocessor(sequence_length=32, next_sentence_prediction=False).pack).batch(1000)))
    assert labels == {}  # No next sentence label.
    padding_mask = inputs["padding_mask"].numpy()
    assert padding_mask[:-1].all() and not padding_mask[-1].all()  # Only the last sequence has padding.
    assert not inputs["segment_ids"].numpy().any()  # One segment.
    token_ids = inputs["token_ids"].numpy()
    assert (token_ids[:, 0] == 2).all()
    stream = np.concatenate([row[1:mask.sum() - 1] for row, mask in zip(token_ids, padding_mask)])
    expected = np.concatenate([np.concatenate([*document, [3]]) for document in documents])[:-1]
    np.testing.assert_array_equal(stream, expected)  # Every token once, in order, [SEP] between documents.
    # Unpacked: each sentence with its successor, padded.
    unpacked = pretraining.pretraining_examples(documents, sequence_length=32, next_sentence_prediction=False,
                                                packing=False, separator_id=3)
    assert int(unpacked.cardinality()) == sum(len(document) - 1 for document in documents) > 2 * len(token_ids)


def test_packed_sentence_pairs_fill_sequences_with_whole_sentences_of_one_document():
    rng = np.random.default_rng(2)
    # Every token of sentence `position` of document `index` is index * 100 + position.
    documents = [[np.full(rng.integers(2, 9), index * 100 + position, np.int32) for position in range(rng.integers(1, 16))]
                 for index in range(300)]
    first, second, is_next = pretraining.packed_sentence_pairs(documents, max_tokens=29, seed=0)

    def sentences(tokens):  # (document, first position, last position) of a run of whole sentences.
        keys = list(dict.fromkeys(tokens.tolist()))
        assert [len(documents[key // 100][key % 100]) for key in keys] == [tokens.tolist().count(key) for key in keys]
        assert len({key // 100 for key in keys}) == 1 and keys == list(range(keys[0], keys[-1] + 1))
        return keys[0] // 100, keys[0] % 100, keys[-1] % 100

    for a, b, label in zip(first, second, is_next):
        a_document, _, a_end = sentences(a)
        b_document, b_start, _ = sentences(b)
        if label:
            assert (b_document, b_start) == (a_document, a_end + 1)
        else:
            assert b_document != a_document
    assert 0.3 < np.mean(is_next) < 0.5  # One-sentence runs (a document's last) always get a random B.
    # Every sentence is in some A or IsNext B; pairs fill the sequence: twice the tokens of sentence pairs.
    used = {key for a, b, label in zip(first, second, is_next) for key in [*a, *(b if label else [])]}
    assert used == {sentence[0] for document in documents for sentence in document}
    unpacked = pretraining.sentence_pairs(documents, seed=0)
    assert np.mean([len(a) + len(b) for a, b in zip(first, second)]) > 2 * np.mean([len(a) + len(b) for a, b in zip(*unpacked[:2])])
    assert len(first) < len(unpacked[0]) / 2


def test_whole_word_masking_masks_the_pieces_of_a_word_together():
    tf.random.set_seed(1)
    rng = np.random.default_rng(3)
    vocabulary = VOCABULARY + [f"##p{index}" for index in range(10)]
    text_preprocessor = TextPreprocessor(vocabulary, sequence_length=40, output_format="bert")
    continuation = np.array([token.startswith("##") for token in vocabulary])
    # Rows of words of 1 to 3 pieces.
    rows = [np.concatenate([[rng.integers(5, 65)] + list(rng.integers(66, 76, size=rng.integers(0, 3))) for _ in range(12)])
            for _ in range(300)]
    examples = tf.data.Dataset.from_tensor_slices(((pretraining._ragged(rows),), [1] * 300))
    for whole_words in (True, False):
        example_preprocessor = pretraining.PretrainingPreprocessor(
            text_preprocessor, mask_rate=0.15, max_predictions=10, next_sentence_prediction=False,
            whole_word_masking=whole_words)
        inputs, labels = next(iter(examples.map(example_preprocessor.pack).batch(300).map(example_preprocessor.mask)))
        original = next(iter(examples.map(example_preprocessor.pack).batch(300)))[0]["token_ids"].numpy()
        chosen = np.zeros_like(original, bool)
        weights = labels["mask_weights"].numpy() > 0
        for row, (positions, weight) in enumerate(zip(inputs["mask_positions"].numpy(), weights)):
            chosen[row, positions[weight]] = True
        is_piece = continuation[original]
        # A piece is chosen exactly when the token before it is (its word start or an earlier piece).
        word_broken = is_piece[:, 1:] & (chosen[:, 1:] != chosen[:, :-1])
        if whole_words:
            assert not word_broken.any()
            assert 0.12 < chosen.sum() / (original > 3).sum() < 0.16  # 15% of the tokens, in whole words.
            assert (chosen & is_piece).any()
        else:
            assert word_broken.any()  # Token masking splits words.
