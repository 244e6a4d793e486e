"""Text -> token ids: the project's one tokenization setup (keras-hub WordPiece, lowercased).

A vocabulary is learned once from the train split and saved beside the run, so training,
evaluation and the exported SavedModel all tokenize with the same one:

    vocabulary = compute_vocabulary(texts, vocabulary_size=2000)    # texts: scalar tf.string
    save_vocabulary(vocabulary, "run/vocabulary.txt")
    preprocessor = TextPreprocessor("run/vocabulary.txt", sequence_length=8)
    preprocessor(tf.constant(["I love this movie!"]))               # int32 [1, 8]
    # [[ 9, 31, 18, 12,  6,  0,  0,  0]]  (ids depend on the vocabulary; 0 is [PAD])
"""

import os

import keras
import keras_hub
import tensorflow as tf
import tokenizers

# Vocabularies learned here start with these: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4.
# Any vocabulary must hold them all and have [PAD] at 0 (padding is 0); BERT's own has
# [PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103.
RESERVED_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
OUTPUT_FORMATS = ("token_ids", "bert")


def compute_vocabulary(texts, vocabulary_size) -> list[str]:
    """Learns a lowercased WordPiece vocabulary of at most `vocabulary_size` tokens, the same one
    on every run and every worker for the same texts.

    With Hugging Face `tokenizers`' WordPiece trainer (Rust): about 2 s for SST-2's 67k
    sentences, where keras-hub's `compute_word_piece_vocabulary` (tensorflow-text's learner, a
    binary search over count thresholds in Python) took 48 s on the same 2-core CPU. Texts are
    split as the in-graph tokenizer (`TextPreprocessor`) splits them: lowercased, accents kept,
    at whitespace and punctuation, each CJK character apart.

    The trainer alone is not deterministic (huggingface/tokenizers#1794): it numbers the
    `##`-prefixed characters in hash-map order, and breaks ties between equally frequent merges
    by those numbers, so two runs on the same texts learned vocabularies differing in about 300
    of SST-2's 8,000 ids (and each worker of a multi-worker job its own). A first pass finds
    those characters; the second learns with them numbered in sorted order, ahead of any merge.

    Args:
        texts: `tf.data.Dataset` of tf.string scalars.
        vocabulary_size: int. The upper bound; a small corpus yields fewer tokens.

    Returns:
        The tokens, `RESERVED_TOKENS` first, then single characters (`##`-prefixed ones first),
        whole words and `##`-prefixed word pieces.
    """
    texts = [text.decode("utf-8") for batch in texts.batch(4096).as_numpy_iterator() for text in batch]
    continuing_characters = sorted(
        token for token in _learn_word_pieces(texts, vocabulary_size, RESERVED_TOKENS)
        if token.startswith("##") and len(token) == 3
    )
    # The trainer keeps every character of the corpus, even past `vocabulary_size`.
    return _learn_word_pieces(texts, vocabulary_size, RESERVED_TOKENS + continuing_characters)[:vocabulary_size]


def _learn_word_pieces(texts, vocabulary_size, first_tokens) -> list[str]:
    """One run of `tokenizers`' WordPiece trainer on `texts` (a list of str): its whole
    vocabulary in id order, `first_tokens` numbered first."""
    learner = tokenizers.Tokenizer(tokenizers.models.WordPiece(unk_token="[UNK]"))
    learner.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True, strip_accents=False)
    learner.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    trainer = tokenizers.trainers.WordPieceTrainer(
        vocab_size=vocabulary_size, special_tokens=first_tokens, continuing_subword_prefix="##", show_progress=False
    )
    learner.train_from_iterator(texts, trainer=trainer)
    return [token for token, _ in sorted(learner.get_vocab().items(), key=lambda token_and_id: token_and_id[1])]


def save_vocabulary(vocabulary, path):
    """Writes one token a line (local or `gs://` paths)."""
    with tf.io.gfile.GFile(os.fspath(path), "w") as file:
        file.write("".join(f"{token}\n" for token in vocabulary))


def load_vocabulary(path) -> list[str]:
    """Reads a vocabulary written by `save_vocabulary`."""
    with tf.io.gfile.GFile(os.fspath(path), "r") as file:
        return file.read().splitlines()


def round_robin_lengths(lengths, budget):
    """How many tokens of each segment survive truncating their total to `budget`, in turn.

    Tokens are kept one at a time from each segment in turn, the first segment first, until
    `budget` tokens are kept or the segments run out (tensorflow-text's `RoundRobinTrimmer`, which
    keras-hub's `MultiSegmentPacker` uses). For two segments of lengths a and b this keeps
    a' = min(a, max(ceil(budget / 2), budget - b)) and b' = min(b, budget - a').

    Args:
        lengths: list of one or two int tensors [batch]: each segment's length.
        budget: int. The most tokens kept in all.

    Returns:
        A list like `lengths`: the kept lengths.
    """
    if len(lengths) == 1:
        return [tf.minimum(lengths[0], budget)]
    if len(lengths) != 2:
        raise ValueError(f"pack_segments packs one or two segments, got {len(lengths)}")
    first_length, second_length = lengths
    kept_first = tf.minimum(first_length, tf.maximum((budget + 1) // 2, budget - second_length))
    return [kept_first, tf.minimum(second_length, budget - kept_first)]


def pack_segments(segments, *, sequence_length, start_id, end_id, pad_id):
    """Packs `[start] a [end] (b [end])` into fixed-length rows, with core TensorFlow ops only.

    The same outputs as keras-hub's `MultiSegmentPacker` (round-robin truncation, segment ids 0
    for the start token, `a` and its end token, 1 for `b` and its end token, 0 for padding),
    without its `TFText>RoundRobinTrim` op: TF Serving releases before 2.20 do not link that op, so
    a serving graph holding it would not load there (see zoo/serving/ops_table.yaml).

    Args:
        segments: list of one or two int32 `tf.RaggedTensor` [batch, (tokens)].
        sequence_length: int. The length of every output row; texts are truncated to fit
            their tokens and the 1 + len(segments) special tokens.
        start_id, end_id, pad_id: int. The [CLS], [SEP] and [PAD] token ids.

    Returns:
        `(token_ids, segment_ids)`, int32 [batch, sequence_length] each.
    """
    budget = sequence_length - 1 - len(segments)
    lengths = [segment.row_lengths() for segment in segments]
    kept = round_robin_lengths(lengths, tf.cast(budget, lengths[0].dtype))
    batch_size = segments[0].nrows()

    def column(value):  # [batch, 1] of `value`, ragged so it concatenates with the segments.
        return tf.RaggedTensor.from_tensor(tf.fill(tf.stack([batch_size, 1]), tf.constant(value, tf.int32)))

    token_pieces, segment_id_pieces = [column(start_id)], [column(0)]
    for segment_id, (segment, keep) in enumerate(zip(segments, kept)):
        positions = tf.ragged.range(segment.row_lengths())
        truncated = tf.ragged.boolean_mask(segment, positions < tf.expand_dims(keep, 1))
        token_pieces += [truncated, column(end_id)]
        segment_id_pieces += [tf.ones_like(truncated) * segment_id, column(segment_id)]
    shape = [None, sequence_length]
    token_ids = tf.concat(token_pieces, axis=1).to_tensor(default_value=pad_id, shape=shape)
    segment_ids = tf.concat(segment_id_pieces, axis=1).to_tensor(default_value=0, shape=shape)
    return token_ids, segment_ids


class TextPreprocessor(keras.layers.Layer):
    """Raw strings -> fixed-length int32 token ids for the zoo's text models.

    Lowercases, splits on whitespace and punctuation, and applies WordPiece
    (`keras_hub.tokenizers.WordPieceTokenizer`); then pads with 0 ([PAD]) or truncates to
    `sequence_length`. The "bert" format also packs `[CLS] text [SEP] (text_pair [SEP])` with
    `pack_segments`, truncating the two texts in turn.

    A scalar string gives [sequence_length] outputs and a batch [batch] gives
    [batch, sequence_length], so the layer maps over single `tf.data` examples as well as it
    serves batches in a SavedModel.

    Args:
        vocabulary: list of str, or the path of a file from `save_vocabulary`. Must hold
            `RESERVED_TOKENS`, with [PAD] first (a keras-hub BERT preset's vocabulary does).
        sequence_length: int. The length of every output sequence.
        output_format: str. `"token_ids"`: an int32 tensor of the text's tokens (no [CLS] or
            [SEP]). `"bert"`: a dict of int32 tensors `token_ids`, `segment_ids` (0 for the
            first text, 1 for `text_pair`) and `padding_mask` (1 for tokens, 0 for padding).
        lowercase: bool. Lowercase first: True for uncased vocabularies (as keras-hub's BertTokenizer).

    Example:

    ```python
    preprocessor = TextPreprocessor(vocabulary, sequence_length=16, output_format="bert")
    inputs = preprocessor(tf.constant(["I love this movie!", ""]))
    inputs["token_ids"].shape    # (2, 16), each row [CLS] ... [SEP] 0 ...
    ```
    """

    def __init__(self, vocabulary, sequence_length, output_format="token_ids", lowercase=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocabulary(vocabulary)
        vocabulary = list(vocabulary)
        missing = [token for token in RESERVED_TOKENS if token not in vocabulary]
        if missing or vocabulary[0] != "[PAD]":
            raise ValueError(f"the vocabulary must hold {RESERVED_TOKENS} with [PAD] first; it lacks {missing} "
                             f"and starts with {vocabulary[:3]}")
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}, got {output_format!r}")

        # === Layers ===
        is_bert = output_format == "bert"
        # For "token_ids" the tokenizer pads and truncates; for "bert" `pack_segments` does, after
        # adding [CLS] and [SEP], so the tokenizer returns ragged ids.
        self.tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=vocabulary,
            sequence_length=None if is_bert else sequence_length,
            lowercase=lowercase,
        )

        # === Config ===
        self._vocabulary = vocabulary
        self.sequence_length = sequence_length
        self.output_format = output_format
        self.lowercase = lowercase
        # Nothing to build: no weights, and any input rank is fine.
        self.built = True
        # Let callers pass Python strings and lists, as keras-hub's preprocessing layers do.
        self._allow_non_tensor_positional_args = True

    @property
    def vocabulary_size(self):
        """Number of token ids, reserved tokens included: the size of a model's embedding table."""
        return len(self._vocabulary)

    def call(self, text, text_pair=None):
        """Tokenizes `text` (tf.string [] or [batch]), paired with `text_pair` for "bert"."""
        if text_pair is not None and self.output_format != "bert":
            raise ValueError('text_pair needs output_format="bert"')
        texts = [tf.convert_to_tensor(text, tf.string)]
        if text_pair is not None:
            texts.append(tf.convert_to_tensor(text_pair, tf.string))
        # One example is tokenized as a batch of one, so `_preprocess` only ever sees [batch].
        is_scalar = texts[0].shape.rank == 0
        if is_scalar:
            texts = [segment[tf.newaxis] for segment in texts]
        outputs = self._preprocess(*texts)
        return tf.nest.map_structure(lambda output: output[0], outputs) if is_scalar else outputs

    # keras-hub tokenizers called eagerly run a pure-Python path that returns NumPy arrays and
    # lists; tracing keeps eager calls on the same TensorFlow ops as tf.data and the SavedModel.
    @tf.function(reduce_retracing=True)
    def _preprocess(self, text, text_pair=None):
        """tf.string [batch] (twice for a pair) -> int32 [batch, sequence_length] (or a dict of)."""
        if self.output_format == "token_ids":
            return self.tokenizer(text)
        segments = [self.tokenizer(text)]
        if text_pair is not None:
            segments.append(self.tokenizer(text_pair))
        token_ids, segment_ids = pack_segments(
            segments,
            sequence_length=self.sequence_length,
            start_id=self.tokenizer.token_to_id("[CLS]"),
            end_id=self.tokenizer.token_to_id("[SEP]"),
            pad_id=self.tokenizer.token_to_id("[PAD]"),
        )
        return {
            "token_ids": token_ids,
            "segment_ids": segment_ids,
            "padding_mask": tf.cast(token_ids != self.tokenizer.token_to_id("[PAD]"), tf.int32),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": list(self._vocabulary),
                "sequence_length": self.sequence_length,
                "output_format": self.output_format,
                "lowercase": self.lowercase,
            }
        )
        return config
