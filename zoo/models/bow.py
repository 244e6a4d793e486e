"""fastText's text classifier: the bag-of-n-grams baseline every sequence model is measured against."""

import keras

from zoo.layers import ClassifierHead
from zoo.registry import register

# fastText's bigram hash, `h = h * 116049371 + id` (Dictionary::addWordNgrams in
# facebookresearch/fastText), applied to a pair of token ids.
_HASH_MULTIPLIER = 116049371


def bigram_buckets(token_ids, num_buckets):
    """Hashes each pair of neighbouring token ids into one of `num_buckets` bigram ids.

    Args:
        token_ids: int [batch, sequence].
        num_buckets: int. Size of the bigram embedding table.

    Returns:
        int64 [batch, max(sequence - 1, 0)]: the bucket of (token_ids[:, i], token_ids[:, i + 1]).
    """
    token_ids = keras.ops.cast(token_ids, "int64")  # 8000 * 116049371 overflows int32.
    return (token_ids[:, :-1] * _HASH_MULTIPLIER + token_ids[:, 1:]) % num_buckets


@register("bow", input_kind="token_ids")
@keras.saving.register_keras_serializable(package="zoo")
class BagOfNgrams(keras.Model):
    """Unigram + hashed bigram embeddings -> masked average -> linear classifier (`ClassifierHead`).

    Joulin et al. 2016, "Bag of Tricks for Efficient Text Classification"
    (https://arxiv.org/abs/1607.01759): a sentence is the average of the embeddings of its words
    and of its word bigrams, and a linear layer reads the class off that average. Bigrams carry
    local order ("not good") at the cost of one table lookup each; the hashing trick maps the
    unbounded set of bigrams to `num_buckets` rows, colliding pairs sharing a row. The bigrams
    are computed here, in the graph, from the token ids every zoo text model takes, so the
    SavedModel answers raw text as the others do. The head has no dropout: fastText's classifier
    is that one linear layer.

    A token id 0 is padding: neither it nor a bigram that touches it enters the average, so a
    sentence gets the same logits whatever it is padded to (and an empty one its bias).

    Args:
        vocabulary_size: int. Size of the unigram embedding table (the token ids).
        num_classes: int. Number of output classes.
        embedding_dim: int. Width of the sentence representation (fastText's hidden size, 10
            in the paper's sentiment experiments).
        num_buckets: int. Rows of the hashed bigram embedding table.

    Call arguments:
        token_ids: int32 [batch, sequence]; 0 is padding.

    Returns:
        Logits, float32 [batch, num_classes].

    Example:
    >>> model = BagOfNgrams(vocabulary_size=100, num_classes=2, num_buckets=1000)
    >>> model(keras.ops.ones([2, 16], "int32")).shape
    (2, 2)
    """

    def __init__(self, vocabulary_size=2000, num_classes=2, embedding_dim=16, num_buckets=2**16, **kwargs):
        super().__init__(**kwargs)
        # === Layers ===
        self.unigram_embedding = keras.layers.Embedding(vocabulary_size, embedding_dim)
        self.bigram_embedding = keras.layers.Embedding(num_buckets, embedding_dim)
        self.head = ClassifierHead(num_classes)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.num_buckets = num_buckets

    def call(self, token_ids):
        is_token = keras.ops.not_equal(token_ids, 0)  # [batch, sequence]
        unigram_mask = keras.ops.cast(is_token, self.compute_dtype)[..., None]  # [batch, sequence, 1]
        bigram_mask = keras.ops.cast(is_token[:, :-1] & is_token[:, 1:], self.compute_dtype)[..., None]
        unigrams = self.unigram_embedding(token_ids) * unigram_mask  # [batch, sequence, embedding_dim]
        bigrams = self.bigram_embedding(bigram_buckets(token_ids, self.num_buckets)) * bigram_mask  # [batch, sequence - 1, embedding_dim]
        total = keras.ops.sum(unigrams, axis=1) + keras.ops.sum(bigrams, axis=1)  # [batch, embedding_dim]
        count = keras.ops.sum(unigram_mask, axis=1) + keras.ops.sum(bigram_mask, axis=1)  # [batch, 1]
        return self.head(total / keras.ops.maximum(count, 1.0))

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_classes": self.num_classes,
            "embedding_dim": self.embedding_dim,
            "num_buckets": self.num_buckets,
        }
