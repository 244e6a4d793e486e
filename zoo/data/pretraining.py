"""BERT pretraining examples: documents -> token ids -> examples -> masked `[CLS] A [SEP] B [SEP]`.

Devlin et al. 2018, section 3.1 and appendix A.1, and what later work changed:
- Next sentence prediction: for each sentence A of a document, B is the sentence that follows
  it half of the time (label 1, IsNext) and a random sentence of another document otherwise
  (label 0, NotNext). RoBERTa (Liu et al. 2019) drops it: one segment of a document.
- Packing: an example holds as many consecutive sentences as fit the sequence, rather than one
  pair padded (BERT's own data script; RoBERTa's FULL-SENTENCES across documents).
- Masked LM: 15% of the tokens (never [CLS], [SEP] or padding) are chosen for prediction; of
  those, 80% become [MASK], 10% a random token and 10% stay unchanged; optionally whole words.
  Training draws new masks at every pass (RoBERTa's dynamic masking).

The sentences are tokenized once (`tokenize_documents`), the examples built from token ids
(`pretraining_examples`), packed to the sequence once and masked per batch
(`PretrainingPreprocessor`, `masked_input_fn`).

A corpus is a list of documents, each a list of sentences, read from a tfds text dataset (one
example per document, split into sentences at . ! ?) or from local text files (one sentence or
paragraph per line; a blank line ends a document, as in google-research/bert's input format).
"""

import random
import re

import numpy as np
import tensorflow as tf

from zoo.data.text import pack_segments
from zoo.data.pipeline import make_input_fn
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


def tokenize_documents(documents, tokenizer) -> list[list[np.ndarray]]:
    """Every sentence's token ids (int32 numpy [tokens]), tokenized once, in batches."""
    sentences = tf.constant([sentence for document in documents for sentence in document], tf.string)
    token_ids = []
    for batch in tf.data.Dataset.from_tensor_slices(sentences).batch(1024).map(tokenizer):
        token_ids.extend(np.split(batch.flat_values.numpy().astype(np.int32), np.cumsum(batch.row_lengths().numpy())[:-1]))
    tokenized, start = [], 0
    for document in documents:
        tokenized.append(token_ids[start:start + len(document)])
        start += len(document)
    return tokenized


def sentence_pairs(documents, seed=0):
    """(sentence A, sentence B, is_next) for every sentence that has a successor in its document.

    A sentence is anything (text or token ids); it is passed through as it is.

    Returns:
        Three lists of equal length: A sentences, B sentences, and labels (1 IsNext, 0 NotNext: B
        drawn from another document).

    Raises:
        ConfigError: fewer than two documents (no "random sentence from another document").
    """
    _check_two_documents(documents)
    rng = random.Random(seed)
    first, second, is_next = [], [], []
    for index, document in enumerate(documents):
        for position in range(len(document) - 1):
            first.append(document[position])
            if rng.random() < 0.5:
                second.append(document[position + 1])
                is_next.append(1)
            else:
                second.append(rng.choice(documents[_other_document(rng, index, len(documents))]))
                is_next.append(0)
    if not first:
        raise ConfigError("the corpus has no document of two or more sentences: next-sentence pairs need them")
    return first, second, is_next


def packed_sentence_pairs(documents, max_tokens, seed=0):
    """Pairs of sentence runs filling `max_tokens` together: google-research/bert's
    `create_instances_from_document`.

    Consecutive sentences of a document are gathered until they hold `max_tokens` tokens (or the
    document ends); a random number of them is A. B is the rest half of the time (IsNext), else
    sentences of another document from a random one on, up to the remaining tokens (NotNext; the
    unused sentences of the run start the next one). A run of one sentence always gets a random B.

    Args:
        documents: lists of sentences, each int token ids (a list or numpy array).
        max_tokens: int. Tokens of A and B together (the sequence length less [CLS] and two [SEP]).

    Returns:
        Three lists of equal length: A token ids, B token ids (int32 numpy) and labels.
    """
    _check_two_documents(documents)
    rng = random.Random(seed)
    first, second, is_next = [], [], []
    for index, document in enumerate(documents):
        run, run_tokens, position = [], 0, 0
        while position < len(document):
            run.append(document[position])
            run_tokens += len(document[position])
            position += 1
            if position < len(document) and run_tokens < max_tokens:
                continue
            split = rng.randint(1, len(run) - 1) if len(run) > 1 else 1
            first.append(np.concatenate(run[:split]).astype(np.int32))
            if len(run) > 1 and rng.random() < 0.5:
                second.append(np.concatenate(run[split:]).astype(np.int32))
                is_next.append(1)
            else:
                other = documents[_other_document(rng, index, len(documents))]
                start = rng.randrange(len(other))
                end = start + 1
                while end < len(other) and sum(len(sentence) for sentence in other[start:end]) < max_tokens - len(first[-1]):
                    end += 1
                second.append(np.concatenate(other[start:end]).astype(np.int32))
                is_next.append(0)
                position -= len(run) - split
            run, run_tokens = [], 0
    return first, second, is_next


def contiguous_segments(documents):
    """Each sentence joined with its successor in the document (a one-sentence document alone):
    the examples of next sentence prediction less their random B, one segment each."""
    return [np.concatenate(document[position:position + 2]).astype(np.int32)
            for document in documents for position in range(max(1, len(document) - 1))]


def packed_segments(documents, max_tokens, separator_id):
    """All documents' tokens in one stream, a `separator_id` between documents, cut into runs of
    `max_tokens`: only the last run is shorter.

    RoBERTa's FULL-SENTENCES (Liu et al. 2019, section 4.2) without its padding: where the next
    sentence does not fit, the run takes its first tokens and the next run starts with the rest.
    """
    pieces = []
    for document in documents:
        if pieces:
            pieces.append(np.array([separator_id], np.int32))
        pieces.extend(document)
    stream = np.concatenate(pieces).astype(np.int32)
    return np.split(stream, range(max_tokens, len(stream), max_tokens))


def _check_two_documents(documents):
    if len(documents) < 2:
        raise ConfigError(f"next-sentence pairs need at least 2 documents, the corpus has {len(documents)}")


def _other_document(rng, index, num_documents):
    """A random document index other than `index`."""
    other = rng.randrange(num_documents - 1)
    return other + (other >= index)


def _ragged(sequences):
    """int32 `tf.RaggedTensor` [len(sequences), (tokens)] of numpy sequences."""
    flat_values = np.concatenate([np.zeros([0], np.int32), *sequences]).astype(np.int32)
    return tf.RaggedTensor.from_row_lengths(flat_values, [len(sequence) for sequence in sequences])


def pretraining_examples(tokenized_documents, *, sequence_length, next_sentence_prediction, packing,
                         separator_id, seed=0) -> tf.data.Dataset:
    """`((segment, ...), is_next)` examples of token ids, what `PretrainingPreprocessor.pack` takes.

    Args:
        tokenized_documents: lists of sentences' token ids (`tokenize_documents`).
        sequence_length: int. The length the examples are packed to ([CLS] and [SEP]s included).
        next_sentence_prediction: bool. True: two segments A and B, is_next 1 or 0
            (`sentence_pairs`, or `packed_sentence_pairs`). False: one segment, is_next 1
            (`contiguous_segments`, or `packed_segments`).
        packing: bool. Fill the sequences with consecutive sentences rather than one sentence pair.
        separator_id: int. [SEP], between documents of packed single segments.
    """
    if next_sentence_prediction:
        if packing:
            first, second, is_next = packed_sentence_pairs(tokenized_documents, sequence_length - 3, seed)
        else:
            first, second, is_next = sentence_pairs(tokenized_documents, seed)
        return tf.data.Dataset.from_tensor_slices(((_ragged(first), _ragged(second)), is_next))
    if packing:
        segments = packed_segments(tokenized_documents, sequence_length - 2, separator_id)
    else:
        segments = contiguous_segments(tokenized_documents)
    return tf.data.Dataset.from_tensor_slices(((_ragged(segments),), [1] * len(segments)))


class PretrainingPreprocessor:
    """Token-id examples -> the pretraining model's inputs (`pack`, once) and masked-LM labels (`mask`,
    per batch: a batch drawn again is masked anew).

    Masked LM (Devlin et al. 2018, section 3.1 and appendix A.1): `mask_rate` of a row's real
    tokens (never [CLS], [SEP] or padding), at most `max_predictions`, are chosen in random order;
    each becomes [MASK] 80% of the time, a random token 10%, and stays itself 10%. With whole word
    masking (google-research/bert, 2019), the units chosen are words: a word start and the "##"
    pieces after it, masked together; words are taken in random order while their tokens fit the
    row's budget (a word that overflows it ends the choice, where BERT's script would try the next).

    Args:
        text_preprocessor: `zoo.data.text.TextPreprocessor` (its tokenizer and sequence_length).
        mask_rate: float. Share of the real tokens chosen for prediction (BERT: 0.15).
        max_predictions: int. Predictions per sequence (BERT: 20 for 128 tokens); fewer chosen
            tokens are padded with weight 0.
        next_sentence_prediction: bool. Label examples with `next_sentence_label`.
        whole_word_masking: bool. Choose whole words rather than single WordPieces.
        sequence_length: int or None. The packed length (None: the text preprocessor's).

    Example:

    ```python
    preprocessor = PretrainingPreprocessor(TextPreprocessor(vocabulary, 16, output_format="bert"))
    examples = pretraining_examples(tokenize_documents(documents, preprocessor.tokenizer), sequence_length=16,
                                    next_sentence_prediction=True, packing=False, separator_id=3)
    inputs, labels = next(iter(examples.map(preprocessor.pack).batch(8).map(preprocessor.mask)))
    inputs["token_ids"].shape, inputs["mask_positions"].shape    # (8, 16), (8, 20)
    ```
    """

    def __init__(self, text_preprocessor, mask_rate=0.15, max_predictions=20, *, next_sentence_prediction=True,
                 whole_word_masking=False, sequence_length=None):
        self.tokenizer = text_preprocessor.tokenizer
        vocabulary = self.tokenizer.get_vocabulary()
        self.special_ids = {token: self.tokenizer.token_to_id(token) for token in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")}
        self.vocabulary_size = len(vocabulary)
        self.mask_rate = mask_rate
        self.max_predictions = max_predictions
        self.next_sentence_prediction = next_sentence_prediction
        self.whole_word_masking = whole_word_masking
        self.sequence_length = sequence_length or text_preprocessor.sequence_length
        # Lookup tables indexed by token id.
        unselectable = [self.special_ids[token] for token in ("[PAD]", "[CLS]", "[SEP]")]
        self.selectable_table = tf.constant([index not in unselectable for index in range(len(vocabulary))])
        self.continuation_table = tf.constant([token.startswith("##") for token in vocabulary])

    def pack(self, segments, is_next):
        """One example `((A,) or (A, B), is_next)` of token ids -> `(inputs, labels)`.

        Returns:
            inputs {"token_ids", "segment_ids", "padding_mask": int32 [sequence_length]}; labels
            {"next_sentence_label": int32 []}, or {} without next sentence prediction.
        """
        token_ids, segment_ids = pack_segments(
            [tf.RaggedTensor.from_tensor(segment[tf.newaxis]) for segment in segments],
            sequence_length=self.sequence_length,
            start_id=self.special_ids["[CLS]"],
            end_id=self.special_ids["[SEP]"],
            pad_id=self.special_ids["[PAD]"],
        )
        inputs = {
            "token_ids": token_ids[0],
            "segment_ids": segment_ids[0],
            "padding_mask": tf.cast(token_ids[0] != self.special_ids["[PAD]"], tf.int32),
        }
        labels = {"next_sentence_label": tf.cast(is_next, tf.int32)} if self.next_sentence_prediction else {}
        return inputs, labels

    def mask(self, inputs, labels):
        """A batch of packed examples -> masked inputs (+ "mask_positions") and labels (+ "mask_ids",
        "mask_weights"), with fresh random choices at every call.

        Returns:
            (inputs, labels): inputs {"token_ids", "segment_ids", "padding_mask": int32 [batch, sequence],
            "mask_positions": int32 [batch, max_predictions]}; labels {"mask_ids": int32
            [batch, max_predictions], "mask_weights": float32 [batch, max_predictions],
            ("next_sentence_label": int32 [batch])}.
        """
        token_ids = inputs["token_ids"]
        chosen = self._choose(token_ids)  # bool [batch, sequence]
        batch_size, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
        positions = tf.ragged.boolean_mask(tf.broadcast_to(tf.range(length), [batch_size, length]), chosen)
        shape = [None, self.max_predictions]
        mask_positions = positions.to_tensor(default_value=0, shape=shape)
        mask_weights = tf.ones_like(positions, tf.float32).to_tensor(default_value=0.0, shape=shape)
        mask_ids = tf.gather(token_ids, mask_positions, batch_dims=1) * tf.cast(mask_weights, tf.int32)
        # 80% [MASK], 10% a random token, 10% unchanged.
        draw = tf.random.uniform(tf.shape(token_ids))
        random_ids = tf.random.uniform(tf.shape(token_ids), maxval=self.vocabulary_size, dtype=tf.int32)
        replacement = tf.where(draw < 0.8, self.special_ids["[MASK]"], tf.where(draw < 0.9, random_ids, token_ids))
        masked = {**inputs, "token_ids": tf.where(chosen, replacement, token_ids), "mask_positions": mask_positions}
        return masked, {**labels, "mask_ids": mask_ids, "mask_weights": mask_weights}

    def _choose(self, token_ids):
        """The tokens to predict, bool [batch, sequence]: whole units (tokens, or words) in random
        order, while their tokens fit each row's budget min(max_predictions, ceil(mask_rate * real tokens))."""
        selectable = tf.gather(self.selectable_table, token_ids)
        unit_start = selectable
        if self.whole_word_masking:
            # A "##" piece continues the word of the selectable token before it.
            previous_selectable = tf.pad(selectable[:, :-1], [[0, 0], [1, 0]])
            unit_start = selectable & ~(tf.gather(self.continuation_table, token_ids) & previous_selectable)
        batch_size, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
        selectable, unit_start = tf.reshape(selectable, [-1]), tf.reshape(unit_start, [-1])
        num_units = tf.reduce_sum(tf.cast(unit_start, tf.int32))
        # Each selectable token's unit (numbered over the whole batch); num_units for the others.
        unit_of_token = tf.where(selectable, tf.cumsum(tf.cast(unit_start, tf.int32)) - 1, num_units)
        unit_sizes = tf.math.unsorted_segment_sum(tf.cast(selectable, tf.int32), unit_of_token, num_units + 1)[:-1]
        unit_rows = tf.boolean_mask(tf.repeat(tf.range(batch_size), length), unit_start)
        # Units in random order within their row (rows stay in order): a running count of their tokens.
        order = tf.argsort(tf.cast(unit_rows, tf.float64) + tf.random.uniform([num_units], dtype=tf.float64))
        sizes, rows = tf.gather(unit_sizes, order), tf.gather(unit_rows, order)
        running = tf.cumsum(sizes)
        row_offsets = tf.math.unsorted_segment_min(running - sizes, rows, batch_size)
        real_tokens = tf.math.unsorted_segment_sum(sizes, rows, batch_size)
        budget = tf.minimum(self.max_predictions, tf.cast(tf.math.ceil(tf.cast(real_tokens, tf.float32) * self.mask_rate), tf.int32))
        chosen_in_order = running - tf.gather(row_offsets, rows) <= tf.gather(budget, rows)
        chosen_units = tf.scatter_nd(order[:, tf.newaxis], chosen_in_order, [num_units])
        chosen = tf.gather(tf.concat([chosen_units, [False]], axis=0), unit_of_token)
        return tf.reshape(chosen, [batch_size, length])


def masked_input_fn(examples_fn, preprocessor, *, global_batch_size, training, seed=0):
    """`make_input_fn` over `examples_fn()` (`pretraining_examples`): packed once (and cached), then
    masked batch by batch after the cache, so that every pass over the training data draws new masks
    (RoBERTa's dynamic masking, Liu et al. 2019, section 4.1). Evaluation should mask once instead
    (`masked_once`), so that every evaluation scores the same tokens."""
    input_fn = make_input_fn(examples_fn, preprocessor.pack, global_batch_size=global_batch_size, training=training,
                             seed=seed, preprocesses_labels=True)

    def masked(input_context=None):
        return input_fn(input_context).map(preprocessor.mask, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    return masked


def masked_once(examples, preprocessor) -> tf.data.Dataset:
    """`examples` packed and masked now, as a dataset of single examples: the same masks at every pass."""
    batch = next(iter(examples.map(preprocessor.pack).batch(int(examples.cardinality())).map(preprocessor.mask)))
    return tf.data.Dataset.from_tensor_slices(batch)


def short_then_full(short_input_fn, full_input_fn, short_steps):
    """An input function whose first `short_steps` train steps read `short_input_fn`'s batches, then
    `full_input_fn`'s: BERT's schedule of short sequences first (Devlin et al. 2018, appendix A.2).

    One step takes one batch per replica of its input pipeline. The sequence dimension of the
    batches is then None (the model traces once for it); a resumed run skips the short batches
    it has trained on, as any others.
    """
    def input_fn(input_context=None):
        input_context = input_context or tf.distribute.InputContext()
        batches_per_step = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        short = short_input_fn(input_context).take(short_steps * batches_per_step)
        return short.concatenate(full_input_fn(input_context))

    return input_fn
