"""`--task=pretrain`: BERT's masked LM + next sentence prediction, or ELECTRA's replaced-token
detection, on a corpus of documents.

Devlin et al. 2018, section 3.1, with the options later work added (`PretrainingConfig`: ELECTRA's
objective, no NSP, packing, whole word masking, short sequences first). The corpus is a tfds text dataset
(`data.dataset`) or the user's text files (`data.train_files`: a sentence or paragraph a line,
blank lines between documents); `zoo.data.pretraining` makes its examples and masks them. The run's output is its
`model_dir`: `--task=classify --init_checkpoint=<model_dir>` fine-tunes its encoder (the
discriminator's, for ELECTRA).
"""

import dataclasses
import math
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf

import yaml

import zoo
from trainers.tasks.base import Task, TaskConfig, TaskInputs, cross_entropy, model_overrides, register_task
from trainers.trainer import checkpointable_weights
from trainers.vocabulary import text_preprocessor
from zoo import data
from zoo.data import pretraining
from zoo.data.pipeline import PADDING_LABEL, make_input_fn
from zoo.errors import ConfigError
from zoo.export import serving_input_spec
from zoo.models.bert import ENCODER_SIZE_FIELDS, BertPretrainer
from zoo.models.electra import ElectraPretrainer

# [CLS] A [SEP] B [SEP] with a token of A and B at least, and a little more.
MIN_SEQUENCE_LENGTH = 8
# task.objective -> the model it trains; each keeps the encoder fine-tuning starts from as `.encoder`.
PRETRAINERS = {"mlm": BertPretrainer, "electra": ElectraPretrainer}


@dataclasses.dataclass
class PretrainingConfig(TaskConfig):
    """pretrain's fields: the objectives, how examples fill the sequences, which tokens the masked LM
    predicts, and an optional starting preset.

    Training draws new masks at every pass over the data (dynamic masking); evaluation scores the
    same masked tokens every time. Defaults are BERT's original recipe; RoBERTa's (Liu et al. 2019)
    is `nsp: false, packing: true`, with `whole_word_masking: true` as BERT's 2019 models.

    `objective: electra` (Clark et al. 2020) trains a small generator's masked LM and, on its
    samples, a discriminator that tells every token replaced or original (`ReplacedTokenDetection`);
    it has no next sentence prediction, so `nsp` defaults to false with it.

    `packing` is off by default: on, it changes what an example and an epoch are (fewer, fuller
    examples), so a config's step counts and metrics would silently mean something else. Turn it
    on for a new run: on zoo_reviews a packed sequence fills its 64 tokens, where a sentence pair
    fills about 40% of them.

    `short_sequence_fraction` is BERT's schedule (appendix A.2: 90% of the steps at 128 tokens,
    then 512): the first fraction of the run's steps reads batches of `short_sequence_length`
    tokens (a quarter of the full length by default, and less than a quarter of its cost); the rest
    read full sequences. Evaluation is always at full length. The batches' sequence dimension is then unknown to the
    model (TPUs compile each length once).
    """

    name: str = "pretrain"
    objective: str = "mlm"  # mlm: BERT's masked LM (+ NSP); electra: replaced-token detection.
    preset: str | None = None  # A keras-hub preset to continue pretraining (sizes, weights, vocabulary).
    mask_rate: float = 0.15  # Share of the real tokens chosen for the masked LM to predict.
    # Masked tokens predicted per sequence, at most. None: as many as the mask rate can choose in a
    # full row, ceil(mask_rate * sequence_length) (BERT's 20 for 128 tokens; 10 for 64).
    max_predictions: int | None = None
    # Next sentence prediction (pairs A, B); false: one segment, the masked LM alone. None: true for
    # the mlm objective, false for electra (which has none).
    nsp: bool | None = None
    packing: bool = False  # Fill each sequence with consecutive sentences (see above).
    whole_word_masking: bool = False  # Mask a word's WordPieces ("##" continuations) together.
    short_sequence_fraction: float = 0.0  # Share of the train steps at short_sequence_length first.
    short_sequence_length: int | None = None  # None: data.sequence_length // 4.
    RESUME_FIELDS = ("preset", "objective")

    @property
    def next_sentence_prediction(self) -> bool:
        return self.objective == "mlm" if self.nsp is None else self.nsp

    def validate(self, model_spec):
        if model_spec.input_kind != "bert":
            raise ConfigError(f"--task=pretrain trains BERT's masked LM and next sentence prediction; "
                              f"--model={model_spec.name} is not a BERT (try --model=bert)")
        if self.objective not in PRETRAINERS:
            raise ConfigError(f"task.objective must be one of {', '.join(PRETRAINERS)}, got {self.objective!r}")
        if self.objective == "electra" and self.nsp:
            raise ConfigError("task.objective=electra has no next sentence prediction; leave task.nsp unset or false")
        if not 0 < self.mask_rate < 1:
            raise ConfigError(f"task.mask_rate must be in (0, 1), got {self.mask_rate}")
        if self.max_predictions is not None and self.max_predictions <= 0:
            raise ConfigError(f"task.max_predictions must be a positive integer (or null: ceil(task.mask_rate * "
                              f"data.sequence_length)), got {self.max_predictions}")
        if not 0 <= self.short_sequence_fraction < 1:
            raise ConfigError(f"task.short_sequence_fraction must be in [0, 1), got {self.short_sequence_fraction}")
        if self.short_sequence_length is not None and self.short_sequence_length < MIN_SEQUENCE_LENGTH:
            raise ConfigError(f"task.short_sequence_length must be an integer >= {MIN_SEQUENCE_LENGTH} "
                              f"(or null: data.sequence_length // 4), got {self.short_sequence_length}")

    def predictions_per_sequence(self, sequence_length) -> int:
        """The masked LM's prediction slots per row of `sequence_length` tokens: `max_predictions`,
        or by default every token the mask rate can choose there.

        A row never has more than ceil(mask_rate * sequence_length) masked tokens, and each slot
        is scored over the whole vocabulary whether a token fills it or not: at 64 tokens, 20
        slots (BERT's number for 128) left half of the head's work on padding.
        """
        return self.max_predictions or math.ceil(self.mask_rate * sequence_length)

    def short_length(self, sequence_length) -> int:
        """The short phase's sequence length, for a run of `sequence_length`.

        Raises:
            ConfigError: it is not shorter than `sequence_length`, or too short to hold a pair.
        """
        length = self.short_sequence_length or sequence_length // 4
        if not MIN_SEQUENCE_LENGTH <= length < sequence_length:
            raise ConfigError(f"task.short_sequence_length must be in [{MIN_SEQUENCE_LENGTH}, data.sequence_length="
                              f"{sequence_length}), got {length}" + ("" if self.short_sequence_length else
                              " (data.sequence_length // 4; set task.short_sequence_length)"))
        return length


class MaskedLMAndNextSentence:
    """BERT's pretraining loss (Devlin et al. 2018, section 3.1): masked LM + next sentence prediction.

    Labels: {"mask_ids": int32 [batch, predictions] (the original tokens at the masked positions),
    "mask_weights": float [batch, predictions] (0 where a row has fewer predictions),
    "next_sentence_label": int32 [batch] (1: B follows A in its document, 0: B is random)}.
    Outputs: {"mlm_logits": [batch, predictions, vocabulary], "nsp_logits": [batch, 2]}.

    An example's loss is its mean cross-entropy over its masked tokens plus its NSP
    cross-entropy; metrics are per masked token (MLM) and per example (NSP). Filler rows (every
    label -1) count for nothing.

    Args:
        next_sentence_prediction: bool. False (RoBERTa): the masked LM alone; the labels hold no
            "next_sentence_label", the model's "nsp_logits" are ignored and no NSP metric exists.
    """

    EVAL_METRICS = ("loss", "mlm_accuracy", "mlm_loss", "nsp_accuracy", "nsp_loss")
    best_metric = "mlm_accuracy"

    def __init__(self, next_sentence_prediction=True):
        self.next_sentence_prediction = next_sentence_prediction
        self.SUMS = ("loss_sum", "count", "mlm_loss_sum", "mlm_correct", "mlm_count")
        self.RATIOS = {
            "loss": ("loss_sum", "count"),
            "mlm_loss": ("mlm_loss_sum", "mlm_count"),
            "mlm_accuracy": ("mlm_correct", "mlm_count"),
        }
        if next_sentence_prediction:
            self.SUMS += ("nsp_loss_sum", "nsp_correct")
            self.RATIOS.update(nsp_loss=("nsp_loss_sum", "count"), nsp_accuracy=("nsp_correct", "count"))

    def _token_losses(self, labels, outputs):
        """Masked-token cross-entropies and weights [batch, predictions], and real rows [batch]."""
        real = tf.cast(labels["mask_ids"][:, 0] != PADDING_LABEL, tf.float32)  # Filler rows: every label is -1.
        weights = tf.cast(labels["mask_weights"], tf.float32) * real[:, tf.newaxis]
        mlm = cross_entropy(tf.maximum(labels["mask_ids"], 0), outputs["mlm_logits"]) * weights
        return mlm, weights, real

    def _next_sentence_losses(self, labels, outputs, real):
        """NSP cross-entropy [batch]."""
        return cross_entropy(tf.maximum(labels["next_sentence_label"], 0), outputs["nsp_logits"]) * real

    def per_example_loss(self, labels, outputs):
        mlm, weights, real = self._token_losses(labels, outputs)
        loss = tf.reduce_sum(mlm, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)
        if self.next_sentence_prediction:
            loss += self._next_sentence_losses(labels, outputs, real)
        return loss

    def _example_values(self, labels, outputs, per_example_loss):
        """The SUMS, one value per example [batch], before summing."""
        mlm, weights, real = self._token_losses(labels, outputs)
        mlm_hits = tf.argmax(outputs["mlm_logits"], axis=-1, output_type=tf.int32) == labels["mask_ids"]
        values = {
            "loss_sum": per_example_loss,
            "count": real,
            "mlm_loss_sum": tf.reduce_sum(mlm, axis=1),
            "mlm_correct": tf.reduce_sum(tf.cast(mlm_hits, tf.float32) * weights, axis=1),
            "mlm_count": tf.reduce_sum(weights, axis=1),
        }
        if self.next_sentence_prediction:
            nsp_hits = tf.argmax(outputs["nsp_logits"], axis=-1, output_type=tf.int32) == labels["next_sentence_label"]
            values.update(nsp_loss_sum=self._next_sentence_losses(labels, outputs, real),
                          nsp_correct=tf.cast(nsp_hits, tf.float32) * real)
        return values

    def step_sums(self, labels, outputs, per_example_loss):
        values = self._example_values(labels, outputs, per_example_loss)
        return {name: tf.reduce_sum(value) for name, value in values.items()}

    def eval_values(self, labels, outputs):
        return self._example_values(labels, outputs, self.per_example_loss(labels, outputs))

    def eval_metrics(self, values):
        sums = {name: float(np.sum(value)) for name, value in values.items()}
        metrics = {metric: sums[top] / max(sums[bottom], 1.0) for metric, (top, bottom) in self.RATIOS.items()}
        return dict(metrics, num_examples=int(sums["count"]))


class ReplacedTokenDetection(MaskedLMAndNextSentence):
    """ELECTRA's loss (Clark et al. 2020, section 2): the generator's masked LM plus
    DISCRIMINATOR_WEIGHT x the discriminator's binary cross-entropy over every real token.

    Labels: {"mask_ids", "mask_weights"} as the masked LM's, plus "padding_mask" int32
    [batch, sequence] (`electra_example`). Outputs: `zoo.models.electra.ElectraPretrainer`'s
    {"mlm_logits", "replaced_logits" [batch, sequence], "replaced" [batch, sequence]}.

    Reports the masked LM's metrics (the generator's) and the discriminator's per-token
    `rtd_accuracy` and `rtd_loss`. The best checkpoint is the discriminator's: what fine-tuning reads.
    """

    DISCRIMINATOR_WEIGHT = 50.0  # The paper's lambda: its loss is per token, the masked LM's per masked token.
    best_metric = "rtd_accuracy"

    def __init__(self):
        super().__init__(next_sentence_prediction=False)
        self.SUMS += ("rtd_loss_sum", "rtd_correct", "token_count")
        self.RATIOS.update(rtd_loss=("rtd_loss_sum", "token_count"), rtd_accuracy=("rtd_correct", "token_count"))

    def _detection_losses(self, labels, outputs, real):
        """Per-token binary cross-entropies and token weights [batch, sequence] (real tokens of real rows)."""
        weights = tf.cast(labels["padding_mask"], tf.float32) * real[:, tf.newaxis]
        losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=outputs["replaced"], logits=outputs["replaced_logits"])
        return losses * weights, weights

    def per_example_loss(self, labels, outputs):
        mlm, weights, real = self._token_losses(labels, outputs)
        detection, token_weights = self._detection_losses(labels, outputs, real)
        return (tf.reduce_sum(mlm, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)
                + self.DISCRIMINATOR_WEIGHT * tf.reduce_sum(detection, axis=1)
                / tf.maximum(tf.reduce_sum(token_weights, axis=1), 1.0))

    def _example_values(self, labels, outputs, per_example_loss):
        values = super()._example_values(labels, outputs, per_example_loss)
        _, _, real = self._token_losses(labels, outputs)
        detection, token_weights = self._detection_losses(labels, outputs, real)
        hits = tf.cast((outputs["replaced_logits"] > 0) == (outputs["replaced"] > 0.5), tf.float32)
        return dict(values, rtd_loss_sum=tf.reduce_sum(detection, axis=1),
                    rtd_correct=tf.reduce_sum(hits * token_weights, axis=1),
                    token_count=tf.reduce_sum(token_weights, axis=1))


def electra_example(inputs, labels):
    """A masked example as ELECTRA reads it: the model also takes the original tokens and their
    weights (to tell a sample from the original), the loss the padding mask (which tokens count)."""
    inputs = dict(inputs, mask_ids=labels["mask_ids"], mask_weights=labels["mask_weights"])
    return inputs, dict(labels, padding_mask=inputs["padding_mask"])


def load_pretrained_encoder(model_dir, encoder):
    """Copies the encoder of a `--task=pretrain` run's latest checkpoint into `encoder` (not its
    heads, nor ELECTRA's generator): the model of the run's `task.objective`, restored whole.

    Raises:
        ConfigError: `model_dir` holds no pretraining checkpoint, or one of other sizes.
    """
    checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    if checkpoint is None:
        raise ConfigError(f"--init_checkpoint={model_dir} holds no checkpoints/; pass the --model_dir of a "
                          "--task=pretrain run")
    saved = yaml.safe_load((pathlib.Path(model_dir) / "config.yaml").read_text())
    objective = (saved.get("task") or {}).get("objective", "mlm")
    encoder_config = encoder.get_config()
    pretrainer = PRETRAINERS[objective](**{field: encoder_config[field] for field in ENCODER_SIZE_FIELDS})
    one_token = tf.ones([1, 1], tf.int32)
    pretrainer({"token_ids": one_token, "segment_ids": 0 * one_token, "padding_mask": one_token,
                "mask_positions": 0 * one_token, "mask_ids": one_token, "mask_weights": tf.ones([1, 1])})
    try:
        status = tf.train.Checkpoint(model=checkpointable_weights(pretrainer)).restore(checkpoint)
        status.assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.InvalidArgumentError) as error:
        older = ", or an ELECTRA run from before its generator shared the encoder's embeddings (2026-12-05)"
        raise ConfigError(f"--init_checkpoint={model_dir}: {checkpoint} is not a pretraining run of this "
                          f"model's sizes{older if objective == 'electra' else ''} "
                          f"({str(error).splitlines()[0][:200]})") from None
    encoder.set_weights(pretrainer.encoder.get_weights())
    print(f"Encoder initialised from {checkpoint}" + (" (ELECTRA's discriminator)" if objective == "electra" else ""))


@register_task
class PretrainingTask(Task):
    """Pretrain a BERT encoder on a text corpus: masked LM (+ next sentence prediction) or ELECTRA.

    Masked LM and NSP: Devlin et al. 2018; replaced-token detection: Clark et al. 2020.
    """

    name = "pretrain"
    Config = PretrainingConfig
    EVAL_METRICS = (*MaskedLMAndNextSentence.EVAL_METRICS, "rtd_accuracy", "rtd_loss")

    def create_objective(self):
        if self.config.task.objective == "electra":
            return ReplacedTokenDetection()
        return MaskedLMAndNextSentence(next_sentence_prediction=self.config.task.next_sentence_prediction)

    def documents(self):
        """(train, eval) documents: `data.train_files` (and `eval_files`), else the tfds dataset's splits.

        Each document is a list of sentences (str).
        """
        config = self.config
        if config.data.train_files:
            documents = pretraining.documents_from_files(config.data.train_files)
            if config.data.eval_files:
                return documents, pretraining.documents_from_files(config.data.eval_files)
            # Every 20th document is held out for evaluation.
            return [document for index, document in enumerate(documents) if index % 20], documents[::20]
        spec = data.get_dataset_spec(config.data.dataset)
        if spec.modality != "text":
            raise ConfigError(f"--task=pretrain needs text; --dataset={spec.name} holds {spec.modality}, "
                              "try --dataset=zoo_reviews or --train_files=GLOB")

        def documents(split):
            texts = data.load(spec.name, split, config.data.data_dir).map(lambda text, label: text)
            return pretraining.documents_from_texts(texts.as_numpy_iterator())

        return documents(spec.train_split), documents(spec.eval_split)

    def prepare_inputs(self) -> TaskInputs:
        """Examples of the documents' token ids; training re-masks each pass, evaluation is masked once."""
        config, task_config = self.config, self.config.task
        train_documents, eval_documents = self.documents()

        def sentences():
            return tf.data.Dataset.from_tensor_slices([sentence for document in train_documents for sentence in document])

        preprocessor = text_preprocessor(
            config, self.model_dir, texts_fn=sentences, num_texts=sum(len(document) for document in train_documents),
            output_format="bert", phases=self.phases, preset=self.preset,
        )
        tokenized_train = pretraining.tokenize_documents(train_documents, preprocessor.tokenizer)
        tokenized_eval = pretraining.tokenize_documents(eval_documents, preprocessor.tokenizer)

        def examples_and_preprocessor(documents, sequence_length, seed):
            examples = pretraining.pretraining_examples(
                documents, sequence_length=sequence_length, next_sentence_prediction=task_config.next_sentence_prediction,
                packing=task_config.packing, separator_id=preprocessor.tokenizer.token_to_id("[SEP]"), seed=seed,
            )
            example_preprocessor = pretraining.PretrainingPreprocessor(
                preprocessor, mask_rate=task_config.mask_rate,
                max_predictions=task_config.predictions_per_sequence(sequence_length),
                next_sentence_prediction=task_config.next_sentence_prediction, whole_word_masking=task_config.whole_word_masking,
                sequence_length=sequence_length,
            )
            return examples, example_preprocessor

        length, batch_size, seed = config.data.sequence_length, config.train.batch_size, config.train.seed
        train_examples, example_preprocessor = examples_and_preprocessor(tokenized_train, length, seed)
        num_train_examples = int(train_examples.cardinality())
        train_input_fn = pretraining.masked_input_fn(lambda: train_examples, example_preprocessor,
                                                     global_batch_size=batch_size, training=True, seed=seed)
        if task_config.short_sequence_fraction:
            # The run's steps as trainers.run counts them.
            steps_per_epoch = config.train.steps_per_epoch or max(1, num_train_examples // batch_size)
            short_steps = round(task_config.short_sequence_fraction * config.train.epochs * steps_per_epoch)
            short_examples, short_preprocessor = examples_and_preprocessor(
                tokenized_train, task_config.short_length(length), seed)
            short_input_fn = pretraining.masked_input_fn(lambda: short_examples, short_preprocessor,
                                                         global_batch_size=batch_size, training=True, seed=seed)
            train_input_fn = pretraining.short_then_full(short_input_fn, train_input_fn, short_steps)
        eval_examples, _ = examples_and_preprocessor(tokenized_eval, length, seed + 1)
        # Masked once: every evaluation scores the same masked tokens.
        eval_examples = pretraining.masked_once(eval_examples, example_preprocessor)
        if task_config.objective == "electra":
            eval_examples = eval_examples.map(electra_example)
            masked_input_fn = train_input_fn
            train_input_fn = lambda input_context=None: masked_input_fn(input_context).map(electra_example)  # noqa: E731
        sample_model_input, sample_labels = next(iter(eval_examples.take(1).batch(1)))
        return TaskInputs(
            modality="text",
            num_classes=2,
            class_names=["not_next", "is_next"],
            num_train_examples=num_train_examples,
            preprocessor=preprocessor,
            serving_input_spec=serving_input_spec("bert"),
            train_input_fn=train_input_fn,
            eval_input_fn=make_input_fn(lambda: eval_examples, lambda inputs, labels: (inputs, labels),
                                        global_batch_size=batch_size, training=False, seed=seed, preprocesses_labels=True),
            sample_input=tf.constant([eval_documents[0][0]]),
            sample_label=int(sample_labels.get("next_sentence_label", [1])[0]),
            sample_model_input=sample_model_input,
        )

    def build_model(self, inputs: TaskInputs) -> keras.Model:
        """The objective's pretrainer (`PRETRAINERS`) whose encoder has the model's sizes."""
        encoder_config = {**zoo.default_config(self.config.model_name), **model_overrides(self.config, inputs, self.preset)}
        encoder_config.pop("num_classes", None)
        model = PRETRAINERS[self.config.task.objective](**encoder_config)
        model(inputs.sample_model_input, training=False)
        if self.preset is not None:
            self.preset.load_weights_into(model.encoder)
        return model

    def finish(self, model, inputs, *, export_dir):
        """No SavedModel: the run's checkpoints are what fine-tuning starts from."""
        print(f"Pretrained encoder in {self.model_dir}; fine-tune it with --task=classify "
              f"--init_checkpoint={self.model_dir}")
        return None
