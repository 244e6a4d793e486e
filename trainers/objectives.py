"""What a run optimises and reports: classification, distillation, or BERT's masked-LM + NSP pretraining.

The trainer's loop is the same for every task; an objective tells it, per replica and batch,

    per_example_loss(labels, outputs) -> float [batch]       averaged over the GLOBAL batch
    step_sums(labels, outputs, loss)  -> {SUMS name: scalar}  summed over replicas and steps
    RATIOS: metric -> (numerator, denominator) of those sums  (progress bar, TensorBoard)
    eval_values(labels, outputs)      -> {name: [rows]}        one pass, concatenated on the host
    eval_metrics(values)              -> {metric: float}       metrics.json, best checkpoint
    EVAL_METRICS: the names eval_metrics reports (a search's objective is one of them)

Rows labelled `PADDING_LABEL` only keep a batch's shape static: they weigh zero and are not counted.
"""

import keras
import numpy as np
import tensorflow as tf

from zoo.data.pipeline import PADDING_LABEL


def classification_metrics(labels, probabilities):
    """Loss, accuracy, macro precision / recall / F1, and ROC-AUC for two classes.

    Args:
        labels: int array [num_examples].
        probabilities: float array [num_examples, num_classes] (softmax of the logits).
    """
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    num_classes = probabilities.shape[-1]
    predictions = probabilities.argmax(axis=-1)
    # confusion[true, predicted]
    confusion = np.zeros([num_classes, num_classes], np.float64)
    np.add.at(confusion, (labels, predictions), 1.0)
    true_positives = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros(num_classes), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros(num_classes), where=actual > 0)
    f1_denominator = precision + recall
    f1 = np.divide(2 * precision * recall, f1_denominator, out=np.zeros(num_classes), where=f1_denominator > 0)
    present = actual > 0  # Macro averages over the classes that occur in the labels.
    label_probabilities = probabilities[np.arange(len(labels)), labels]
    metrics = {
        "loss": float(-np.log(np.maximum(label_probabilities, 1e-12)).mean()),
        "accuracy": float(true_positives.sum() / len(labels)),
        "precision": float(precision[present].mean()),
        "recall": float(recall[present].mean()),
        "f1": float(f1[present].mean()),
        "num_examples": int(len(labels)),
    }
    if num_classes == 2:
        auc = keras.metrics.AUC(num_thresholds=1000)
        auc.update_state(labels, probabilities[:, 1])
        metrics["auc"] = float(auc.result())
    return metrics


def _cross_entropy(labels, logits):
    """Sparse softmax cross-entropy in float32 (logits may be float16 / bfloat16)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))


class Classification:
    """Softmax cross-entropy of logits float [batch, classes] against labels int32 [batch]."""

    name = "classify"
    EVAL_METRICS = ("accuracy", "loss", "precision", "recall", "f1", "auc")  # auc: two classes only.
    SUMS = ("loss_sum", "correct", "count")
    RATIOS = {"loss": ("loss_sum", "count"), "accuracy": ("correct", "count")}
    best_metric = "accuracy"

    def per_example_loss(self, labels, logits):
        real = tf.cast(labels != PADDING_LABEL, tf.float32)
        return _cross_entropy(tf.maximum(labels, 0), logits) * real

    def step_sums(self, labels, logits, per_example_loss):
        real = labels != PADDING_LABEL
        predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
        return {
            "loss_sum": tf.reduce_sum(per_example_loss),
            "correct": tf.reduce_sum(tf.cast(real & (predictions == labels), tf.float32)),
            "count": tf.reduce_sum(tf.cast(real, tf.float32)),
        }

    def eval_values(self, labels, logits):
        real = labels != PADDING_LABEL
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return {"labels": labels[real], "probabilities": probabilities[real]}

    def eval_metrics(self, values):
        return classification_metrics(values["labels"], values["probabilities"])


class Distillation(Classification):
    """Knowledge distillation (Hinton et al. 2015, section 2): match the teacher's softened outputs.

        loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(label, student)

    where x_T = softmax(logits / T). The teacher's logits are log(probabilities) up to a constant,
    which softmax ignores. T^2 keeps the soft term's gradients on the hard term's scale as T grows.

    Labels: {"label": int32 [batch], "teacher_probabilities": float [batch, classes]}
    (trainers.distillation). Outputs: the student's logits float [batch, classes]. Reports the
    classification metrics, plus `teacher_agreement`: the share of examples where the student's
    class is the teacher's.
    """

    name = "distill"
    EVAL_METRICS = (*Classification.EVAL_METRICS, "teacher_agreement")
    SUMS = (*Classification.SUMS, "agreed")
    RATIOS = {**Classification.RATIOS, "teacher_agreement": ("agreed", "count")}

    def __init__(self, temperature, alpha):
        self.temperature = temperature
        self.alpha = alpha

    def per_example_loss(self, labels, logits):
        real = labels["label"] != PADDING_LABEL
        # Filler rows carry -1 for every label: any valid distribution keeps their (zero-weighted) loss finite.
        teacher = tf.where(real[:, tf.newaxis], labels["teacher_probabilities"], 1.0)
        teacher_log_t = tf.nn.log_softmax(tf.math.log(tf.maximum(teacher, 1e-12)) / self.temperature)
        student_log_t = tf.nn.log_softmax(tf.cast(logits, tf.float32) / self.temperature)
        kl = tf.reduce_sum(tf.exp(teacher_log_t) * (teacher_log_t - student_log_t), axis=-1)
        soft = self.alpha * self.temperature**2 * kl * tf.cast(real, tf.float32)
        return soft + (1 - self.alpha) * super().per_example_loss(labels["label"], logits)

    def step_sums(self, labels, logits, per_example_loss):
        sums = super().step_sums(labels["label"], logits, per_example_loss)
        real = labels["label"] != PADDING_LABEL
        agreed = tf.argmax(logits, axis=-1) == tf.argmax(labels["teacher_probabilities"], axis=-1)
        return dict(sums, agreed=tf.reduce_sum(tf.cast(real & agreed, tf.float32)))

    def eval_values(self, labels, logits):
        values = super().eval_values(labels["label"], logits)
        real = labels["label"] != PADDING_LABEL
        return dict(values, teacher_classes=tf.argmax(labels["teacher_probabilities"], axis=-1)[real])

    def eval_metrics(self, values):
        metrics = classification_metrics(values["labels"], values["probabilities"])
        agreement = np.mean(values["probabilities"].argmax(axis=-1) == values["teacher_classes"])
        return dict(metrics, teacher_agreement=float(agreement))


class MaskedLMAndNextSentence:
    """BERT's pretraining loss (Devlin et al. 2018, section 3.1): masked LM + next sentence prediction.

    Labels: {"mask_ids": int32 [batch, predictions] (the original tokens at the masked positions),
    "mask_weights": float [batch, predictions] (0 where a row has fewer predictions),
    "next_sentence_label": int32 [batch] (1: B follows A in its document, 0: B is random)}.
    Outputs: {"mlm_logits": [batch, predictions, vocabulary], "nsp_logits": [batch, 2]}.

    An example's loss is its mean cross-entropy over its masked tokens plus its NSP
    cross-entropy; metrics are per masked token (MLM) and per example (NSP).
    """

    name = "pretrain"
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
        mlm = _cross_entropy(tf.maximum(labels["mask_ids"], 0), outputs["mlm_logits"]) * weights
        nsp = _cross_entropy(tf.maximum(nsp_labels, 0), outputs["nsp_logits"]) * real
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


def create_objective(train_config):
    """The objective of `train_config.task` (a `trainers.config.TrainConfig`)."""
    if train_config.task == Distillation.name:
        return Distillation(train_config.temperature, train_config.alpha)
    return {"classify": Classification, "pretrain": MaskedLMAndNextSentence}[train_config.task]()
