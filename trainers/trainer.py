"""The training loop: K steps of `strategy.run(train_step)` per `tf.function` call.

This is TF Model Garden's (Orbit's) pattern rather than `model.fit`: Keras 3.15's `fit` breaks under
MultiWorkerMirroredStrategy and with `steps_per_execution > 1` under any strategy (see
docs/keras_tf_behaviour.md section 1), and TPUs need many steps per host call. The model stays a plain Keras model.

State that makes a killed run resumable lives in one `tf.train.Checkpoint`: the model, the
optimizer (with its slot variables), dropout's random-number states, the global step and the
seconds trained so far. The global step is also the position in the train data: a resumed run
skips the batches already trained on, whose order the shuffle seed fixes. The data iterator itself is not checkpointed: its
state holds the shuffle buffer and the partly filled cache of tokenized examples (for a large
corpus many times the size of the weights), and pipelines with random ops (BERT's masking)
cannot be serialized at all.
"""

import contextlib
import functools
import json
import math
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf

from trainers import adversarial
from zoo.atomic import write_json_atomically
from zoo.errors import ConfigError


# Speeds the progress line and TensorBoard show, each of the last host call (its steps_per_loop steps).
THROUGHPUT = ("examples_per_s", "tokens_per_s")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def checkpointable_weights(model) -> tf.train.Checkpoint:
    """A checkpointable view of all of `model`'s weights, in creation order.

    `tf.train.Checkpoint(model=model)` would silently miss layers that a Keras 3 model keeps in a
    Python list (BERT's encoder blocks, the CNN's conv blocks): Keras tracks them with its own
    TrackedList, which TensorFlow's object graph does not follow. The same config builds the
    same weights in the same order, so the list restores exactly, and a shape mismatch fails loudly.
    """
    return tf.train.Checkpoint(weights=list(model.weights))


def real_tokens(inputs):
    """The real (non-padding) tokens of a batch, a float32 scalar: BERT's padding mask summed, or
    the non-zero ids of a [batch, sequence] int tensor (0 is padding); 0 for images. What the
    progress line's tokens/s counts."""
    if isinstance(inputs, dict) and "padding_mask" in inputs:
        return tf.reduce_sum(tf.cast(inputs["padding_mask"], tf.float32))
    if not isinstance(inputs, dict) and inputs.dtype.is_integer and inputs.shape.rank == 2:
        return tf.reduce_sum(tf.cast(inputs != 0, tf.float32))
    return tf.constant(0.0)


class Trainer:
    """Trains and evaluates a model under a tf.distribute strategy, for one objective.

    Args:
        strategy: tf.distribute.Strategy. The model and optimizer must have been built in its scope.
        model: keras.Model. Maps a batch of inputs to the outputs `objective` reads (a
            classifier's logits [batch, num_classes]).
        optimizer: keras.optimizers.Optimizer (a LossScaleOptimizer under mixed_float16).
        model_dir: str or Path. Checkpoints and TensorBoard logs go here.
        steps_per_loop: int. Train steps per `tf.function` call.
        checkpoint_every_steps: int or None. Also save within an epoch, at the first loop end at
            least this many steps after the last save (None: at epoch ends only).
        jit_compile: bool. Compile the train step with XLA: under the default and one-device
            strategies the whole step (forward, backward and the optimizer's update) as one XLA
            function; under other strategies each replica's forward and backward pass only, with
            the update (and its cross-replica gradient sum) outside XLA: compiling `strategy.run`
            as a whole fails under MirroredStrategy (keras-team/keras#19005,
            docs/keras_tf_behaviour.md section 2).
        whole_step_in_xla: bool. With `jit_compile`, compile the whole step wherever the strategy
            allows (see `jit_compile`); False keeps the update outside XLA on one device too, as
            `benchmarks.bert_step_variants` times both.
        objective: the task's loss and metrics, e.g. `trainers.tasks.classification.Classification()`.
        adversarial_epsilon: float. > 0: each step adds a pass with the token embeddings moved
            adversarially by this L2 norm (`trainers.adversarial`); the model needs a trainable
            token embedding.
    """

    def __init__(
        self,
        *,
        strategy,
        objective,
        model,
        optimizer,
        model_dir,
        steps_per_loop,
        jit_compile=False,
        whole_step_in_xla=True,
        checkpoint_every_steps=None,
        adversarial_epsilon=0.0,
    ):
        self.strategy = strategy
        self.model = model
        self.optimizer = optimizer
        self.model_dir = pathlib.Path(model_dir)
        self.steps_per_loop = steps_per_loop
        self.objective = objective
        self.adversarial_epsilon = adversarial_epsilon
        if adversarial_epsilon:
            # Which of the trainable variables is the table the adversarial pass perturbs.
            table = adversarial.token_embedding_table(model)
            trainable = [id(variable) for variable in model.trainable_variables]
            if id(table) not in trainable:
                raise ConfigError("train.adversarial_epsilon needs a trainable token embedding; "
                                  "with task.lora_rank it is frozen: set train.adversarial_epsilon=0")
            self._table_index = trainable.index(id(table))
        self.examples_trained = 0
        self.budget_reached = False  # Whether the last `train` stopped at its time budget.
        self.first_step = 0  # The step the last `train` started from: a resumed run's checkpoint step.
        with strategy.scope():
            # The default strategy is no "current strategy" even in its own scope.
            one_device = isinstance(strategy, tf.distribute.OneDeviceStrategy) or not tf.distribute.has_strategy()
        self.jit_compile = jit_compile
        self.whole_step_in_xla = jit_compile and whole_step_in_xla and one_device
        # One replica's step, what `strategy.run` calls, and the part of it compiled with XLA (if any).
        self._replica_step = tf.function(self._train_step, jit_compile=True) if self.whole_step_in_xla else self._train_step
        self._compute_gradients = (
            tf.function(self.gradients, jit_compile=True) if jit_compile and not self.whole_step_in_xla else self.gradients
        )
        with strategy.scope():
            self.global_step = tf.Variable(
                0, dtype=tf.int64, trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA
            )
            # Seconds spent in train steps since step 0, over every call of a resumed run: a run
            # resumed after a kill (or a time budget) still says how long its training took.
            self.train_seconds = tf.Variable(
                0.0, dtype=tf.float64, trainable=False, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA
            )
        model_weights = checkpointable_weights(model)
        # Dropout's random-number states: a resumed run draws the masks an uninterrupted one draws.
        weight_ids = {id(weight) for weight in model.weights}
        random_states = [variable for variable in model.variables if id(variable) not in weight_ids]
        self._checkpoint = tf.train.Checkpoint(
            model=model_weights, random_states=random_states, optimizer=optimizer, global_step=self.global_step,
            train_seconds=self.train_seconds,
        )
        self._manager = tf.train.CheckpointManager(
            self._checkpoint,
            str(self.model_dir / "checkpoints"),
            max_to_keep=3,
            step_counter=self.global_step,
            checkpoint_interval=checkpoint_every_steps,
        )
        # The weights with the best eval accuracy so far, kept apart from the rolling checkpoints.
        self._best_manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=model_weights, global_step=self.global_step), str(self.model_dir / "best"), max_to_keep=1
        )
        self._train_writer = tf.summary.create_file_writer(str(self.model_dir / "train"))
        self._eval_writer = tf.summary.create_file_writer(str(self.model_dir / "eval"))

    # ---------------------------------------------------------------- one replica's step
    def gradients(self, inputs, labels):
        """One replica's forward and backward pass, without the update: the part of a train step
        that `jit_compile` compiles with XLA under the multi-device strategies, callable alone (the
        padding test runs it eagerly).

        Args:
            inputs: a batch of model inputs (a tensor or dict of tensors, [batch, ...]).
            labels: what the objective's `per_example_loss` reads (class ids [batch]; -1 marks a
                padding row, which weighs nothing).

        Returns:
            `(outputs, per_example_loss, gradients)`: the model's outputs, the loss [batch], and one
            gradient per `model.trainable_variables` (an embedding's as sparse `tf.IndexedSlices`),
            of the loss averaged over the global batch and multiplied by the optimizer's loss scale.
            With `adversarial_epsilon`, the gradients are the clean and the perturbed passes' summed,
            all dense.
        """
        outputs, per_example_loss, gradients = self._loss_gradients(inputs, labels)
        if not self.adversarial_epsilon:
            return outputs, per_example_loss, gradients
        table = self.model.trainable_variables[self._table_index]
        delta = adversarial.perturbation(gradients[self._table_index], self.adversarial_epsilon)
        _, _, perturbed_gradients = self._loss_gradients(inputs, labels, perturbation=(table, delta))
        return outputs, per_example_loss, [densify(a) + densify(b) for a, b in zip(gradients, perturbed_gradients)]

    def _loss_gradients(self, inputs, labels, perturbation=None):
        """One forward and backward pass (`gradients`' returns); `perturbation`: a (variable,
        delta) pair the pass reads as `variable + delta` (`trainers.adversarial.perturbed`)."""
        with tf.GradientTape() as tape:
            with adversarial.perturbed(self.model, *perturbation) if perturbation else contextlib.nullcontext():
                outputs = self.model(inputs, training=True)
            per_example_loss = self.objective.per_example_loss(labels, outputs)
            # Averaged over the GLOBAL batch, so that summing gradients over replicas is the mean.
            loss = tf.nn.compute_average_loss(per_example_loss)
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
            # Multiplied by the loss scale under mixed_float16; the optimizer divides it out again.
            scaled_loss = self.optimizer.scale_loss(loss)
        return outputs, per_example_loss, tape.gradient(scaled_loss, self.model.trainable_variables)

    def _train_step(self, batch):
        inputs, labels = batch
        outputs, per_example_loss, gradients = self._compute_gradients(inputs, labels)
        gradients = [densify(gradient) for gradient in gradients]
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))
        return dict(self.objective.step_sums(labels, outputs, per_example_loss), tokens=real_tokens(inputs))

    def _eval_step(self, batch):
        inputs, labels = batch
        return self.objective.eval_values(labels, self.model(inputs, training=False))

    # ---------------------------------------------------------------- K steps per host call
    @tf.function
    def _train_loop(self, iterator, num_steps):
        """Runs `num_steps` train steps; returns the objective's SUMS and the real `tokens` over them."""
        totals = {name: 0.0 for name in (*self.objective.SUMS, "tokens")}
        for _ in tf.range(num_steps):
            per_replica = self.strategy.run(self._replica_step, args=(next(iterator),))
            sums = {
                key: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for key, value in per_replica.items()
            }
            totals = {key: totals[key] + sums[key] for key in totals}
            self.global_step.assign_add(1)
        return totals

    # Length buckets give eval batches several shapes; past the second, one trace with the
    # sequence axis left open serves them all (a BERT trace costs about a second on 2 cores).
    @tf.function(reduce_retracing=True)
    def _eval_batch(self, batch):
        return self.strategy.run(self._eval_step, args=(batch,))

    def _local_eval_results(self, batch):
        """The objective's eval values of this worker's replicas for `batch`, concatenated (no collective)."""
        per_replica = self._eval_batch(batch)
        return {
            key: np.concatenate([value.numpy() for value in self.strategy.experimental_local_results(values)])
            for key, values in per_replica.items()
        }

    # ---------------------------------------------------------------- public API
    def train_steps(self, iterator, num_steps):
        """Runs `num_steps` train steps in one host call (one `tf.function` call), without
        checkpoints, summaries or a progress bar: what `train` repeats, and what benchmarks time.

        Args:
            iterator: an iterator over `strategy.distribute_datasets_from_function(...)`.
            num_steps: int (or int32 scalar tensor).

        Returns:
            The objective's SUMS over the steps, and the real `tokens` trained on (`real_tokens`):
            name -> float32 scalar tensor.
        """
        return self._train_loop(iterator, tf.convert_to_tensor(num_steps, tf.int32))

    def train(self, train_input_fn, *, epochs, steps_per_epoch, after_epoch=None, time_budget_seconds=None):
        """Trains until `epochs * steps_per_epoch` steps, resuming from the latest checkpoint.

        Args:
            train_input_fn: `fn(tf.distribute.InputContext) -> tf.data.Dataset`, repeated, batched.
            epochs: int.
            steps_per_epoch: int.
            after_epoch: optional `fn(epoch)` called after each epoch's checkpoint (e.g. evaluate).
            time_budget_seconds: optional float. Stop at the first loop end past this many seconds
                of this call, with a checkpoint there (`budget_reached` is then True); a later
                call resumes from it. Every worker stops at the same step (`_past_deadline`).

        Returns:
            The objective's training metrics (RATIOS) over the last epoch (dict). The examples this
            call trained on (filler rows and the steps of an earlier, resumed run not counted)
            are left in `self.examples_trained`.
        """
        manager = self._manager
        if manager.latest_checkpoint:
            # A checkpoint written before the training time was kept leaves it unknown (NaN), not 0.
            self.train_seconds.assign(math.nan)
            self._checkpoint.restore(manager.latest_checkpoint).expect_partial()
            print(f"Resuming from {manager.latest_checkpoint} at step {int(self.global_step.numpy())}")
        trained_steps = self.first_step = int(self.global_step.numpy())
        iterator = iter(self.strategy.distribute_datasets_from_function(_skip_batches(train_input_fn, trained_steps)))
        train_loop = self._train_loop
        if isinstance(self.strategy, (tf.distribute.MultiWorkerMirroredStrategy, tf.distribute.TPUStrategy)):
            # On a preemption notice (SIGTERM, or a TPU maintenance event) every worker saves a
            # checkpoint at the same step and exits; the restarted job resumes from it.
            handler = tf.distribute.experimental.PreemptionCheckpointHandler(self.strategy.cluster_resolver, manager)
            train_loop = functools.partial(handler.run, self._train_loop)

        total_steps = epochs * steps_per_epoch
        epoch_metrics = {}
        self.examples_trained = 0
        self.budget_reached = False
        deadline = None if time_budget_seconds is None else time.monotonic() + time_budget_seconds
        if deadline is not None:
            stop_by = time.strftime("%H:%M", time.localtime(time.time() + time_budget_seconds))
            print(f"Time budget: {time_budget_seconds / 3600:g} h; training stops at the first loop end after {stop_by}")
        if self._train_loop.experimental_get_tracing_count() == 0 and trained_steps < total_steps:
            # The first call traces the step (and compiles it with XLA for each batch shape it
            # meets): seconds without a progress update (bert_tiny on SST-2, 2 cores: 5 s, 18 s with XLA).
            compiling = " and compiling it with XLA for each batch shape" if self.jit_compile else ""
            print(f"Training: tracing the train step{compiling}; the progress bar starts after the first "
                  f"{min(self.steps_per_loop, steps_per_epoch)} steps ...")
        while (step := int(self.global_step.numpy())) < total_steps and not self.budget_reached:
            epoch = step // steps_per_epoch
            print(f"Epoch {epoch + 1}/{epochs}")
            progress = keras.utils.Progbar(steps_per_epoch, stateful_metrics=[*self.objective.RATIOS, *THROUGHPUT])
            epoch_end = (epoch + 1) * steps_per_epoch
            epoch_sums = {name: 0.0 for name in self.objective.SUMS}
            while step < epoch_end and not self.budget_reached:
                num_steps = min(self.steps_per_loop, epoch_end - step)
                started = time.perf_counter()
                sums = {key: float(value) for key, value in train_loop(iterator, tf.constant(num_steps)).items()}
                loop_seconds = time.perf_counter() - started
                self.train_seconds.assign_add(loop_seconds)
                throughput = self._throughput(sums, loop_seconds)
                if not math.isfinite(sums["loss_sum"]):
                    raise TrainingDivergedError(
                        f"loss became {sums['loss_sum']} near step {step}; the last good checkpoint "
                        f"{manager.latest_checkpoint} is kept (try a lower --learning_rate)"
                    )
                step += num_steps
                self.examples_trained += int(sums["count"])
                epoch_sums = {key: epoch_sums[key] + sums[key] for key in epoch_sums}
                epoch_metrics = self._ratios(epoch_sums)
                progress.update(step - epoch * steps_per_epoch, [*epoch_metrics.items(), *throughput.items()])
                with self._train_writer.as_default(step=step):
                    for name, value in {**self._ratios(sums), **throughput}.items():
                        tf.summary.scalar(name, value)
                    tf.summary.scalar("learning_rate", float(self.optimizer.learning_rate))
                if manager.checkpoint_interval and step < epoch_end:
                    manager.save(checkpoint_number=self.global_step, check_interval=True)
                self.budget_reached = deadline is not None and self._past_deadline(deadline)
            manager.save(checkpoint_number=self.global_step, check_interval=False)
            if self.budget_reached:
                print(f"\nTime budget of {time_budget_seconds / 3600:g} h reached at step {step} of {total_steps}; "
                      f"{manager.latest_checkpoint} resumes it")
            elif after_epoch is not None:
                after_epoch(epoch)
        return epoch_metrics

    def _past_deadline(self, deadline) -> bool:
        """Whether `time.monotonic()` has passed `deadline` on any worker: clocks differ between
        workers, so under MultiWorkerMirroredStrategy they agree by a MAX all-reduce, and all stop
        at the same step (else one would wait forever in the next step's collectives)."""
        past = time.monotonic() > deadline
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return past
        votes = self.strategy.run(lambda: tf.constant(float(past)))
        return bool(self.strategy.reduce(tf.distribute.ReduceOp.MAX, votes, axis=None) > 0)

    @staticmethod
    def _throughput(sums, seconds):
        """THROUGHPUT of one host call: examples (and real tokens, for text) per second of it."""
        rates = {"examples_per_s": sums["count"] / seconds}
        if sums["tokens"]:
            rates["tokens_per_s"] = sums["tokens"] / seconds
        return rates

    def _ratios(self, sums):
        return {metric: sums[top] / max(sums[bottom], 1.0) for metric, (top, bottom) in self.objective.RATIOS.items()}

    def restore(self, best=False):
        """Loads the latest checkpoint (or, with `best`, the best one if any) for eval or export.

        Returns:
            The checkpoint path restored.
        """
        manager = self._best_manager if best and self._best_manager.latest_checkpoint else self._manager
        if manager.latest_checkpoint is None:
            raise ConfigError(f"--model_dir={self.model_dir} holds no checkpoint; train first (--mode=train_and_eval)")
        manager.checkpoint.restore(manager.latest_checkpoint).expect_partial()
        return manager.latest_checkpoint

    def save_if_best(self, metrics):
        """Keeps the current weights in `model_dir/best` when the objective's best_metric beats every earlier eval."""
        metric = self.objective.best_metric
        best_path = self.model_dir / "best" / "metrics.json"
        best = json.loads(best_path.read_text())[metric] if best_path.is_file() else -math.inf
        if metrics[metric] > best:
            self._best_manager.save(checkpoint_number=self.global_step)
            write_json_atomically(best_path, dict(metrics, global_step=int(self.global_step.numpy())))

    def evaluate(self, eval_input_fn):
        """The objective's eval metrics over one pass of the eval data, also to TensorBoard."""
        dataset = self.strategy.distribute_datasets_from_function(eval_input_fn)
        batches = [self._local_eval_results(batch) for batch in dataset]
        if not batches:
            raise ConfigError("the eval split is empty; choose another dataset or split")
        metrics = self.objective.eval_metrics({key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]})
        with self._eval_writer.as_default(step=int(self.global_step.numpy())):
            for name, value in metrics.items():
                if name != "num_examples":
                    tf.summary.scalar(name, value)
        return metrics


def densify(gradient):
    """An embedding's sparse gradient (`tf.IndexedSlices`, one row per token of the batch) as the
    dense tensor of its variable's shape [vocabulary, dim]; other gradients as they are.

    Two reasons (tests/trainers/test_trainer.py and tests/test_strategies.py show both):
    - Replicas all-gather a sparse gradient, whose row count is a replica's tokens and changes
      with the length bucket. Inside the trainer's `tf.range` loop, MirroredStrategy's gathers of
      two steps met with different shapes and aborted ("Shape mismatch in the collective
      instance"). A dense gradient has the same shape at every step (Horovod's `sparse_as_dense`).
    - Keras 3's Adam applied to `IndexedSlices` squares each occurrence of a repeated token apart
      (second moment 1^2 + 1^2, not (1 + 1)^2), so a token seen twice in a batch moved differently
      from Adam's rule, and one replica's half batch differently from the whole. Summed first,
      every strategy makes the textbook update. Adam's update over the table is dense either way.
    """
    return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient


def _skip_batches(input_fn, trained_steps):
    """`input_fn` whose datasets start after the batches of the first `trained_steps` steps.

    Each step takes one batch per replica from its input pipeline: a pipeline that feeds two
    replicas skips two batches a step. The shuffle order is fixed by its seed, so the resumed
    run reads what an uninterrupted run would have read next.
    """
    if not trained_steps:
        return input_fn

    def resumed_input_fn(input_context=None):
        input_context = input_context or tf.distribute.InputContext()
        batches_per_step = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        return input_fn(input_context).skip(trained_steps * batches_per_step)

    return resumed_input_fn
