"""BERT pretraining examples: documents -> sentence pairs -> masked `[CLS] A [SEP] B [SEP]`.

Devlin et al. 2018, section 3.1 and appendix A.1:
- Next sentence prediction: for each sentence A of a document, B is the sentence that follows
  it half of the time (label 1, IsNext) and a random sentence of another document otherwise
  (label 0, NotNext).
- Masked LM: 15% of the tokens (never [CLS], [SEP] or padding) are chosen for prediction; of
  those, 80% become [MASK], 10% a random token and 10% stay unchanged
  (`keras_hub.layers.MaskedLMMaskGenerator`).

A corpus is a list of documents, each a list of sentences, read from a tfds text dataset (one
example per document, split into sentences at . ! ?) or from local text files (one sentence or
paragraph per line; a blank line ends a document, as in google-research/bert's input format).
"""

import random
import re

import keras_hub
import tensorflow as tf

from zoo.errors import ConfigError

# A sentence ends at . ! or ? followed by white space (paragraph lines hold several).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text) -> list[str]:
    return [sentence for sentence in _SENTENCE_END.split(text.strip()) if sentence]


def documents_from_texts(texts) -> list[list[str]]:
    """One document per text (str or bytes), split into sentences; empty texts are skipped."""
    documents = []
    for text in texts:
        sentences = split_sentences(text.decode("utf-8") if isinstance(text, bytes) else text)
        if sentences:
            documents.append(sentences)
    return documents


def documents_from_files(pattern) -> list[list[str]]:
    """Documents of the text files matching the glob `pattern` (local or gs://), in name order.

    Raises:
        ConfigError: no file matches, or the files hold no text.
    """
    paths = sorted(tf.io.gfile.glob(pattern))
    if not paths:
        raise ConfigError(f"--train_files={pattern} matches no file; pass a glob of UTF-8 text files")
    documents, lines = [], []
    for path in paths:
        with tf.io.gfile.GFile(path, "r") as file:
            for line in [*file, ""]:  # The end of a file also ends its last document.
                if line.strip():
                    lines.extend(split_sentences(line))
                elif lines:
                    documents.append(lines)
                    lines = []
    if not documents:
        raise ConfigError(f"--train_files={pattern}: the files hold no text")
    return documents


def sentence_pairs(documents, seed=0):
    """(sentence A, sentence B, is_next) for every sentence that has a successor in its document.

    Returns:
        Three lists of equal length: A texts, B texts, and labels (1 IsNext, 0 NotNext: B drawn
        from another document).

    Raises:
        ConfigError: fewer than two documents (no "random sentence from another document").
    """
    if len(documents) < 2:
        raise ConfigError(f"next-sentence pairs need at least 2 documents, the corpus has {len(documents)}")
    rng = random.Random(seed)
    first, second, is_next = [], [], []
    for index, document in enumerate(documents):
        for position in range(len(document) - 1):
            first.append(document[position])
            if rng.random() < 0.5:
                second.append(document[position + 1])
                is_next.append(1)
            else:
                other = rng.randrange(len(documents) - 1)
                other += other >= index  # Any document but this one.
                second.append(rng.choice(documents[other]))
                is_next.append(0)
    if not first:
        raise ConfigError("the corpus has no document of two or more sentences: next-sentence pairs need them")
    return first, second, is_next


def pairs_dataset(documents, seed=0) -> tf.data.Dataset:
    """`((A, B), is_next)` examples, the raw input and label a `PretrainingPreprocessor` takes."""
    first, second, is_next = sentence_pairs(documents, seed)
    return tf.data.Dataset.from_tensor_slices(((first, second), is_next))


class PretrainingPreprocessor:
    """A sentence pair and its NSP label -> the pretraining model's inputs and the objective's labels.

    Args:
        text_preprocessor: `zoo.data.text.TextPreprocessor` with output_format="bert" (packs and
            pads to its sequence_length).
        mask_rate: float. Share of the real tokens chosen for prediction (BERT: 0.15).
        max_predictions: int. Predictions per sequence (BERT: 20 for 128 tokens); fewer chosen
            tokens are padded with weight 0.

    Call arguments:
        pair: (A, B) tf.string scalars. is_next: int scalar.

    Returns:
        (inputs, labels): inputs {"token_ids", "segment_ids", "padding_mask": int32 [sequence],
        "mask_positions": int32 [max_predictions]}; labels {"mask_ids": int32 [max_predictions],
        "mask_weights": float32 [max_predictions], "next_sentence_label": int32 []}.
    """

    def __init__(self, text_preprocessor, mask_rate=0.15, max_predictions=20):
        tokenizer = text_preprocessor.tokenizer
        self.text_preprocessor = text_preprocessor
        self.masker = keras_hub.layers.MaskedLMMaskGenerator(
            vocabulary_size=text_preprocessor.vocabulary_size,
            mask_selection_rate=mask_rate,
            mask_token_id=tokenizer.token_to_id("[MASK]"),
            mask_selection_length=max_predictions,
            unselectable_token_ids=[tokenizer.token_to_id(token) for token in ("[PAD]", "[CLS]", "[SEP]")],
            mask_token_rate=0.8,
            random_token_rate=0.1,
        )

    def __call__(self, pair, is_next):
        packed = self.text_preprocessor(pair[0], pair[1])
        masked = self.masker(packed["token_ids"])
        inputs = {
            "token_ids": tf.cast(masked["token_ids"], tf.int32),
            "segment_ids": packed["segment_ids"],
            "padding_mask": packed["padding_mask"],
            "mask_positions": tf.cast(masked["mask_positions"], tf.int32),
        }
        labels = {
            "mask_ids": tf.cast(masked["mask_ids"], tf.int32),
            "mask_weights": tf.cast(masked["mask_weights"], tf.float32),
            "next_sentence_label": tf.cast(is_next, tf.int32),
        }
        return inputs, labels
