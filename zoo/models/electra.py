"""ELECTRA: pretraining a text encoder as a discriminator rather than a generator.

Clark et al. 2020, "ELECTRA: Pre-training Text Encoders as Discriminators Rather Than
Generators", https://arxiv.org/abs/2003.10555.

A small generator (a masked LM) fills the masked positions with tokens sampled from its own
predictions; the discriminator, a BERT encoder, then tells for EVERY token of the corrupted text
whether it is the original. Masked LM learns from the 15% of tokens it masks; replaced-token
detection learns from all of them, which is why ELECTRA-Small beats a BERT-Small trained with the
same compute by 4.8 GLUE points (section 3.3, table 1). Fine-tuning starts from the
discriminator's encoder, as it starts from a masked-LM run's.
"""

import keras
import keras_hub
import tensorflow as tf

from zoo.layers.dropout import random_algorithm, replica_seed
from zoo.models.bert import BertTask, bert_blocks

# The generator's share of the discriminator's width: section 3.2 finds 1/4 to 1/2 best (a
# stronger generator poses a too-hard task); the smallest models use 1/4.
GENERATOR_FRACTION = 0.25


def _initializer():
    return keras.initializers.TruncatedNormal(stddev=0.02)  # BERT's and ELECTRA's.


def scatter_predictions(token_ids, mask_positions, mask_weights, values):
    """`token_ids` [batch, sequence] with `values` [batch, predictions] written at the real masked
    positions (`mask_weights` > 0), and whether each position was one of them [batch, sequence].

    The positions of a row are distinct, so a one-hot sum writes each value once.
    """
    sequence_length = tf.shape(token_ids)[1]
    chosen = tf.one_hot(mask_positions, sequence_length, dtype=tf.int32)  # [batch, predictions, sequence]
    chosen *= tf.cast(mask_weights > 0, tf.int32)[:, :, tf.newaxis]
    is_masked = tf.reduce_max(chosen, axis=1) > 0  # [batch, sequence]
    written = tf.reduce_sum(chosen * tf.cast(values, tf.int32)[:, :, tf.newaxis], axis=1)
    return tf.where(is_masked, written, token_ids), is_masked


@keras.saving.register_keras_serializable(package="zoo")
class ElectraPretrainer(BertTask):
    """ELECTRA's generator and discriminator, trained jointly (section 2).

    1. Generator: Transformer blocks GENERATOR_FRACTION as wide as the discriminator (as many
       layers) over the discriminator's own input embeddings (token, position, segment),
       projected to its width; a masked-LM head tied to the same token embedding predicts the
       masked tokens. Section 3.1 shares the embeddings because the generator's softmax over the
       vocabulary updates every token's embedding, where detection updates only the tokens in
       its input. Here sharing is what lets detection learn at all: with embeddings of its own the
       discriminator stayed at the share of originals (the same p(replaced) for every token) in
       10- and 15-minute runs on IMDB + WikiText-2 and on toy counting sequences alike
       (tests/models/test_electra.py).
    2. Each masked position gets a token sampled from the generator's distribution (Gumbel-max
       on its logits, no gradient through the sample, as in the paper).
    3. Discriminator: `self.encoder` (the BERT encoder fine-tuning starts from) reads the
       corrupted text; a dense GELU layer and a linear unit give each token's logit of
       "replaced". A sampled token equal to the original counts as original.

    Args:
        **encoder_config: the discriminator's encoder fields (`ENCODER_FIELDS`, see `BertEncoder`).

    Call arguments:
        inputs: dict of int32: "token_ids" (masked), "segment_ids", "padding_mask"
            [batch, sequence]; "mask_positions", "mask_ids" (the original tokens there) and
            "mask_weights" (float, 0 for unused prediction slots) [batch, predictions].

    Returns:
        {"mlm_logits": float32 [batch, predictions, vocabulary_size] (the generator's),
         "replaced_logits": float32 [batch, sequence], "replaced": float32 [batch, sequence]
         (1 where the corrupted token differs from the original)}.
    """

    def __init__(self, **encoder_config):
        super().__init__(**encoder_config)
        encoder = self.encoder
        generator_dim = max(64, int(encoder.hidden_dim * GENERATOR_FRACTION))
        # === Layers ===
        # ELECTRA-Small's embedding projection: the shared [hidden]-wide embeddings to the generator's width.
        self.generator_projection = keras.layers.Dense(generator_dim, kernel_initializer=_initializer(),
                                                       name="generator_projection")
        self.generator_blocks = bert_blocks(encoder.num_layers, max(1, generator_dim // 64), 4 * generator_dim,
                                            encoder.dropout, name="generator_layer")
        # Its intermediate dense widens the generator's states back to the token embedding's width.
        self.generator_head = keras_hub.layers.MaskedLMHead(
            vocabulary_size=encoder.vocabulary_size,
            token_embedding=encoder.token_embedding,
            intermediate_activation="gelu",
            layer_norm_epsilon=1e-12,
            kernel_initializer=_initializer(),
            dtype="float32",
            name="generator_head",
        )
        self.discriminator_dense = keras.layers.Dense(encoder.hidden_dim, activation="gelu",
                                                      kernel_initializer=_initializer(), name="discriminator_dense")
        self.discriminator_head = keras.layers.Dense(1, kernel_initializer=_initializer(), dtype="float32",
                                                     name="discriminator_head")
        self.sampling_seed = keras.random.SeedGenerator(0, name="sampling_seed")

    def call(self, inputs, training=False):
        segments = {"segment_ids": inputs["segment_ids"], "padding_mask": inputs["padding_mask"]}
        generated = self.generator_projection(self.encoder.embed({"token_ids": inputs["token_ids"], **segments},
                                                                 training=training))  # [batch, sequence, generator]
        for block in self.generator_blocks:
            generated = block(generated, padding_mask=inputs["padding_mask"], training=training)
        mlm_logits = self.generator_head(keras.ops.cast(generated, "float32"),
                                         mask_positions=inputs["mask_positions"])  # [batch, predictions, vocab]
        # Gumbel-max: argmax(logits + Gumbel noise) is a sample of softmax(logits). Evaluation draws
        # the same noise every time, so that two evaluations of the same weights agree.
        algorithm = random_algorithm()
        seed = replica_seed(self.sampling_seed, algorithm) if training else tf.constant([0, 0], tf.int32)
        uniform = tf.random.stateless_uniform(tf.shape(mlm_logits), seed, minval=1e-9, maxval=1.0, alg=algorithm)
        sampled = tf.argmax(tf.stop_gradient(mlm_logits) - tf.math.log(-tf.math.log(uniform)), axis=-1,
                            output_type=tf.int32)  # [batch, predictions]
        corrupted, _ = scatter_predictions(inputs["token_ids"], inputs["mask_positions"], inputs["mask_weights"], sampled)
        original, _ = scatter_predictions(inputs["token_ids"], inputs["mask_positions"], inputs["mask_weights"],
                                          inputs["mask_ids"])
        sequence = self.encoder({"token_ids": corrupted, **segments}, training=training)["sequence_output"]
        replaced_logits = self.discriminator_head(self.discriminator_dense(sequence))[..., 0]  # [batch, sequence]
        return {
            "mlm_logits": mlm_logits,
            "replaced_logits": replaced_logits,
            "replaced": tf.cast(corrupted != original, tf.float32),
        }
