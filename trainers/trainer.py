"""The training loop: K steps of `strategy.run(train_step)` per `tf.function` call.

This is TF Model Garden's (Orbit's) pattern rather than `model.fit`: Keras 3.15's `fit` breaks under
MultiWorkerMirroredStrategy and with `steps_per_execution > 1` under any strategy (see
shared/FINDINGS.md), and TPUs need many steps per host call. The model stays a plain Keras model.

State that makes a killed run resumable lives in one `tf.train.Checkpoint`: the model, the
optimizer (with its slot variables), the global step and the position of the train data iterator.
"""

import json
import math
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf

from zoo.registry import ConfigError


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def write_json_atomically(path, document):
    """Writes `document` as JSON to a temporary file, then renames it: readers never see half a file."""
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def classification_metrics(loss_sum, confusion):
    """Loss, accuracy and macro precision / recall / F1 from summed loss and a confusion matrix.

    Args:
        loss_sum: float. Sum of per-example cross-entropy over the evaluated examples.
        confusion: int array [num_classes, num_classes]; rows are true labels, columns predictions.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    count = confusion.sum()
    true_positives = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros_like(true_positives), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros_like(true_positives), where=actual > 0)
    f1_denominator = precision + recall
    f1 = np.divide(2 * precision * recall, f1_denominator, out=np.zeros_like(f1_denominator), where=f1_denominator > 0)
    present = actual > 0  # Macro averages over the classes that occur in the labels.
    return {
        "loss": float(loss_sum / count),
        "accuracy": float(true_positives.sum() / count),
        "precision": float(precision[present].mean()),
        "recall": float(recall[present].mean()),
        "f1": float(f1[present].mean()),
        "num_examples": int(count),
    }


class Trainer:
    """Trains and evaluates a classifier under a tf.distribute strategy.

    Args:
        strategy: tf.distribute.Strategy. The model and optimizer must have been built in its scope.
        model: keras.Model. Maps a batch of inputs to logits [batch, num_classes].
        optimizer: keras.optimizers.Optimizer.
        num_classes: int.
        model_dir: str or Path. Checkpoints and TensorBoard logs go here.
        steps_per_loop: int. Train steps per `tf.function` call.
    """

    def __init__(self, *, strategy, model, optimizer, num_classes, model_dir, steps_per_loop):
        self.strategy = strategy
        self.model = model
        self.optimizer = optimizer
        self.num_classes = num_classes
        self.model_dir = pathlib.Path(model_dir)
        self.steps_per_loop = steps_per_loop
        with strategy.scope():
            self.global_step = tf.Variable(
                0, dtype=tf.int64, trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA
            )
        self._loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
        self._train_writer = tf.summary.create_file_writer(str(self.model_dir / "train"))
        self._eval_writer = tf.summary.create_file_writer(str(self.model_dir / "eval"))

    # ---------------------------------------------------------------- one replica's step
    def _train_step(self, batch):
        inputs, labels = batch
        with tf.GradientTape() as tape:
            logits = self.model(inputs, training=True)
            per_example_loss = self._loss(labels, logits)
            # Averaged over the GLOBAL batch, so that summing gradients over replicas is the mean.
            loss = tf.nn.compute_average_loss(per_example_loss)
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
        gradients = tape.gradient(loss, self.model.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        return self._batch_sums(labels, logits, per_example_loss)

    def _eval_step(self, batch):
        inputs, labels = batch
        logits = self.model(inputs, training=False)
        sums = self._batch_sums(labels, logits, self._loss(labels, logits))
        sums["confusion"] = tf.math.confusion_matrix(
            labels, tf.argmax(logits, axis=-1), num_classes=self.num_classes, dtype=tf.float32
        )
        return sums

    @staticmethod
    def _batch_sums(labels, logits, per_example_loss):
        predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
        return {
            "loss_sum": tf.reduce_sum(tf.cast(per_example_loss, tf.float32)),
            "correct": tf.reduce_sum(tf.cast(predictions == labels, tf.float32)),
            "count": tf.cast(tf.shape(labels)[0], tf.float32),
        }

    def _sum_over_replicas(self, per_replica):
        return tf.nest.map_structure(
            lambda value: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None), per_replica
        )

    # ---------------------------------------------------------------- K steps per host call
    @tf.function
    def _train_loop(self, iterator, num_steps):
        """Runs `num_steps` train steps; returns the sums of loss, correct and count over them."""
        totals = {"loss_sum": 0.0, "correct": 0.0, "count": 0.0}
        for _ in tf.range(num_steps):
            sums = self._sum_over_replicas(self.strategy.run(self._train_step, args=(next(iterator),)))
            totals = {key: totals[key] + sums[key] for key in totals}
            self.global_step.assign_add(1)
        return totals

    @tf.function
    def _eval_batch(self, batch):
        return self._sum_over_replicas(self.strategy.run(self._eval_step, args=(batch,)))

    # ---------------------------------------------------------------- public API
    def train(self, train_input_fn, *, epochs, steps_per_epoch, after_epoch=None):
        """Trains until `epochs * steps_per_epoch` steps, resuming from the latest checkpoint.

        Args:
            train_input_fn: `fn(tf.distribute.InputContext) -> tf.data.Dataset`, repeated, batched.
            epochs: int.
            steps_per_epoch: int.
            after_epoch: optional `fn(epoch)` called after each epoch's checkpoint (e.g. evaluate).

        Returns:
            The training loss and accuracy of the last epoch (dict).
        """
        dataset = self.strategy.distribute_datasets_from_function(train_input_fn)
        iterator = iter(dataset)
        checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, global_step=self.global_step, data_iterator=iterator
        )
        manager = tf.train.CheckpointManager(
            checkpoint, str(self.model_dir / "checkpoints"), max_to_keep=3, step_counter=self.global_step
        )
        if manager.latest_checkpoint:
            checkpoint.restore(manager.latest_checkpoint).expect_partial()
            print(f"Resuming from {manager.latest_checkpoint} at step {int(self.global_step.numpy())}")

        total_steps = epochs * steps_per_epoch
        epoch_metrics = {}
        while (step := int(self.global_step.numpy())) < total_steps:
            epoch = step // steps_per_epoch
            print(f"Epoch {epoch + 1}/{epochs}")
            progress = keras.utils.Progbar(steps_per_epoch, stateful_metrics=["loss", "accuracy"])
            epoch_end = (epoch + 1) * steps_per_epoch
            epoch_sums = {"loss_sum": 0.0, "correct": 0.0, "count": 0.0}
            while step < epoch_end:
                num_steps = min(self.steps_per_loop, epoch_end - step)
                sums = {key: float(value) for key, value in self._train_loop(iterator, tf.constant(num_steps)).items()}
                if not math.isfinite(sums["loss_sum"]):
                    raise TrainingDivergedError(
                        f"loss became {sums['loss_sum']} near step {step}; the last good checkpoint "
                        f"{manager.latest_checkpoint} is kept (try a lower --learning_rate)"
                    )
                step += num_steps
                epoch_sums = {key: epoch_sums[key] + sums[key] for key in epoch_sums}
                epoch_metrics = {
                    "loss": epoch_sums["loss_sum"] / epoch_sums["count"],
                    "accuracy": epoch_sums["correct"] / epoch_sums["count"],
                }
                progress.update(step - epoch * steps_per_epoch, list(epoch_metrics.items()))
                with self._train_writer.as_default(step=step):
                    tf.summary.scalar("loss", sums["loss_sum"] / sums["count"])
                    tf.summary.scalar("accuracy", sums["correct"] / sums["count"])
                    tf.summary.scalar("learning_rate", float(self.optimizer.learning_rate))
            manager.save(checkpoint_number=self.global_step)
            if after_epoch is not None:
                after_epoch(epoch)
        return epoch_metrics

    def evaluate(self, eval_input_fn):
        """Loss, accuracy, macro precision / recall / F1 over one pass of the eval data."""
        dataset = self.strategy.distribute_datasets_from_function(eval_input_fn)
        totals = None
        for batch in dataset:
            sums = {key: value.numpy() for key, value in self._eval_batch(batch).items()}
            totals = sums if totals is None else {key: totals[key] + sums[key] for key in totals}
        if totals is None:
            raise ConfigError("the eval split is empty; choose another dataset or split")
        metrics = classification_metrics(totals["loss_sum"], totals["confusion"])
        with self._eval_writer.as_default(step=int(self.global_step.numpy())):
            for name in ("loss", "accuracy", "precision", "recall", "f1"):
                tf.summary.scalar(name, metrics[name])
        return metrics
