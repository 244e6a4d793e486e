"""`--task=pretrain`: BERT's masked LM + next sentence prediction on a corpus of documents.

Devlin et al. 2018, section 3.1. The corpus is a tfds text dataset (`data.dataset`) or the user's
text files (`data.train_files`: a sentence or paragraph a line, blank lines between documents);
`zoo.data.pretraining` makes its sentence pairs and masks them. The run's output is its
`model_dir`: `--task=classify --init_checkpoint=<model_dir>` fine-tunes its encoder.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

import zoo
from trainers.tasks.base import Task, TaskConfig, TaskInputs, register_task
from trainers.tasks.classification import cross_entropy, model_overrides
from trainers.vocabulary import text_preprocessor
from zoo import data
from zoo.data import pretraining
from zoo.data.pipeline import PADDING_LABEL, make_input_fn
from zoo.errors import ConfigError
from zoo.export import serving_input_spec
from zoo.models.bert import BertPretrainer


@dataclasses.dataclass
class PretrainingConfig(TaskConfig):
    """pretrain's fields: which tokens the masked LM predicts, and an optional starting preset."""

    name: str = "pretrain"
    preset: str | None = None  # A keras-hub preset to continue pretraining (sizes, weights, vocabulary).
    mask_rate: float = 0.15  # Share of the real tokens chosen for the masked LM to predict.
    max_predictions: int = 20  # Masked tokens predicted per sequence, at most.
    RESUME_FIELDS = ("preset",)

    def validate(self, model_spec):
        if model_spec.input_kind != "bert":
            raise ConfigError(f"--task=pretrain trains BERT's masked LM and next sentence prediction; "
                              f"--model={model_spec.name} is not a BERT (try --model=bert)")
        if not 0 < self.mask_rate < 1:
            raise ConfigError(f"task.mask_rate must be in (0, 1), got {self.mask_rate}")
        if self.max_predictions <= 0:
            raise ConfigError(f"task.max_predictions must be a positive integer, got {self.max_predictions}")


class MaskedLMAndNextSentence:
    """BERT's pretraining loss (Devlin et al. 2018, section 3.1): masked LM + next sentence prediction.

    Labels: {"mask_ids": int32 [batch, predictions] (the original tokens at the masked positions),
    "mask_weights": float [batch, predictions] (0 where a row has fewer predictions),
    "next_sentence_label": int32 [batch] (1: B follows A in its document, 0: B is random)}.
    Outputs: {"mlm_logits": [batch, predictions, vocabulary], "nsp_logits": [batch, 2]}.

    An example's loss is its mean cross-entropy over its masked tokens plus its NSP
    cross-entropy; metrics are per masked token (MLM) and per example (NSP).
    """

    EVAL_METRICS = ("loss", "mlm_accuracy", "mlm_loss", "nsp_accuracy", "nsp_loss")
    SUMS = ("loss_sum", "count", "mlm_loss_sum", "mlm_correct", "mlm_count", "nsp_loss_sum", "nsp_correct")
    RATIOS = {
        "loss": ("loss_sum", "count"),
        "mlm_loss": ("mlm_loss_sum", "mlm_count"),
        "mlm_accuracy": ("mlm_correct", "mlm_count"),
        "nsp_loss": ("nsp_loss_sum", "count"),
        "nsp_accuracy": ("nsp_correct", "count"),
    }
    best_metric = "mlm_accuracy"

    def _token_losses(self, labels, outputs):
        """Masked-token cross-entropies and weights [batch, predictions], NSP cross-entropy [batch]."""
        nsp_labels = labels["next_sentence_label"]
        real = tf.cast(nsp_labels != PADDING_LABEL, tf.float32)  # Filler rows: every label is -1.
        weights = tf.cast(labels["mask_weights"], tf.float32) * real[:, tf.newaxis]
        mlm = cross_entropy(tf.maximum(labels["mask_ids"], 0), outputs["mlm_logits"]) * weights
        nsp = cross_entropy(tf.maximum(nsp_labels, 0), outputs["nsp_logits"]) * real
        return mlm, weights, nsp, real

    def per_example_loss(self, labels, outputs):
        mlm, weights, nsp, _ = self._token_losses(labels, outputs)
        return tf.reduce_sum(mlm, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0) + nsp

    def _example_values(self, labels, outputs, per_example_loss):
        """The SUMS, one value per example [batch], before summing."""
        mlm, weights, nsp, real = self._token_losses(labels, outputs)
        mlm_hits = tf.argmax(outputs["mlm_logits"], axis=-1, output_type=tf.int32) == labels["mask_ids"]
        nsp_hits = tf.argmax(outputs["nsp_logits"], axis=-1, output_type=tf.int32) == labels["next_sentence_label"]
        return {
            "loss_sum": per_example_loss,
            "count": real,
            "mlm_loss_sum": tf.reduce_sum(mlm, axis=1),
            "mlm_correct": tf.reduce_sum(tf.cast(mlm_hits, tf.float32) * weights, axis=1),
            "mlm_count": tf.reduce_sum(weights, axis=1),
            "nsp_loss_sum": nsp,
            "nsp_correct": tf.cast(nsp_hits, tf.float32) * real,
        }

    def step_sums(self, labels, outputs, per_example_loss):
        values = self._example_values(labels, outputs, per_example_loss)
        return {name: tf.reduce_sum(value) for name, value in values.items()}

    def eval_values(self, labels, outputs):
        return self._example_values(labels, outputs, self.per_example_loss(labels, outputs))

    def eval_metrics(self, values):
        sums = {name: float(np.sum(value)) for name, value in values.items()}
        metrics = {metric: sums[top] / max(sums[bottom], 1.0) for metric, (top, bottom) in self.RATIOS.items()}
        return dict(metrics, num_examples=int(sums["count"]))


@register_task
class PretrainingTask(Task):
    """Pretrain a BERT encoder: masked LM + next sentence prediction on a text corpus (Devlin et al. 2018)."""

    name = "pretrain"
    Config = PretrainingConfig
    EVAL_METRICS = MaskedLMAndNextSentence.EVAL_METRICS

    def create_objective(self):
        return MaskedLMAndNextSentence()

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
        """Sentence pairs from the documents; training re-masks each pass, evaluation is masked once."""
        config, task_config = self.config, self.config.task
        train_documents, eval_documents = self.documents()

        def sentences():
            return tf.data.Dataset.from_tensor_slices([sentence for document in train_documents for sentence in document])

        preprocessor = text_preprocessor(
            config, self.model_dir, texts_fn=sentences, num_texts=sum(len(document) for document in train_documents),
            output_format="bert", phases=self.phases, preset=self.preset,
        )
        example_preprocessor = pretraining.PretrainingPreprocessor(
            preprocessor, mask_rate=task_config.mask_rate, max_predictions=task_config.max_predictions
        )
        train_pairs = pretraining.pairs_dataset(train_documents, seed=config.train.seed)
        eval_pairs = pretraining.pairs_dataset(eval_documents, seed=config.train.seed + 1)
        # Masked once: every evaluation scores the same masked tokens.
        eval_examples = eval_pairs.map(example_preprocessor).batch(int(eval_pairs.cardinality()))
        eval_examples = tf.data.Dataset.from_tensor_slices(next(iter(eval_examples)))
        common = dict(global_batch_size=config.train.batch_size, seed=config.train.seed, preprocesses_labels=True)
        (first, _), is_next = next(iter(eval_pairs.take(1)))
        sample_model_input, _ = next(iter(eval_examples.take(1).batch(1)))
        return TaskInputs(
            modality="text",
            num_classes=2,
            class_names=["not_next", "is_next"],
            num_train_examples=int(train_pairs.cardinality()),
            preprocessor=preprocessor,
            serving_input_spec=serving_input_spec("bert"),
            train_input_fn=make_input_fn(lambda: train_pairs, example_preprocessor, training=True, **common),
            eval_input_fn=make_input_fn(lambda: eval_examples, lambda inputs, labels: (inputs, labels),
                                        training=False, **common),
            sample_input=first[None],
            sample_label=int(is_next),
            sample_model_input=sample_model_input,
        )

    def build_model(self, inputs: TaskInputs) -> keras.Model:
        """A `BertPretrainer` (encoder + masked-LM and next-sentence heads) of the model's sizes."""
        encoder_config = {**zoo.default_config(self.config.model_name), **model_overrides(self.config, inputs, self.preset)}
        encoder_config.pop("num_classes", None)
        model = BertPretrainer(**encoder_config)
        model(inputs.sample_model_input, training=False)
        if self.preset is not None:
            self.preset.load_weights_into(model.encoder)
        return model

    def finish(self, model, inputs, *, export_dir):
        """No SavedModel: the run's checkpoints are what fine-tuning starts from."""
        print(f"Pretrained encoder in {self.model_dir}; fine-tune it with --task=classify "
              f"--init_checkpoint={self.model_dir}")
        return None
