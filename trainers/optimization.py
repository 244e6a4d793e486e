"""The optimizer of every run: AdamW with BERT's schedule (linear warmup, then cosine or linear decay).

Its state (moments, step) is checkpointed with the model, so a resumed run continues the
schedule where it stopped.
"""

import keras

# Parameters that AdamW leaves out of weight decay (BERT's recipe): biases and normalisation.
NO_WEIGHT_DECAY = ["bias", "gamma", "beta"]


@keras.saving.register_keras_serializable(package="zoo")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Rises linearly from 0 to `decay(0)` over `warmup_steps`, then follows `decay(step - warmup_steps)`.

    The warmup of BERT's recipe in front of any Keras decay schedule (Model Garden's pattern).
    """

    def __init__(self, decay, warmup_steps):
        self.decay = decay
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup_steps = keras.ops.cast(self.warmup_steps, "float32")
        warming = self.decay(0) * step / keras.ops.maximum(warmup_steps, 1.0)
        return keras.ops.where(step < warmup_steps, warming, self.decay(keras.ops.maximum(step - warmup_steps, 0.0)))

    def get_config(self):
        return {"decay": keras.optimizers.schedules.serialize(self.decay), "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config):
        return cls(keras.optimizers.schedules.deserialize(config["decay"]), config["warmup_steps"])


def layer_rate_multipliers(model, layer_decay) -> dict:
    """Variable path -> learning-rate multiplier of layer-wise rate decay (ELECTRA's fine-tuning,
    Clark et al. 2020, section 3.1 and appendix A): with `groups = model.layers_by_depth()` (input
    first), group `i` of `n` trains at `layer_decay ** (n - i)` of the rate: the top block at
    `layer_decay`, the embeddings at `layer_decay ** n`, what is above the groups (pooler, heads) at
    the full rate. The lower layers, which hold what pretraining learned most generally, move least.
    None: every variable at the full rate (an empty dict).
    """
    if layer_decay is None:
        return {}
    groups = model.layers_by_depth()
    return {variable.path: layer_decay ** (len(groups) - depth)
            for depth, layers in enumerate(groups) for layer in layers for variable in layer.trainable_variables}


@keras.saving.register_keras_serializable(package="zoo")
class LayerwiseDecayAdamW(keras.optimizers.AdamW):
    """AdamW whose step for each variable is scaled by its multiplier (`layer_rate_multipliers`).

    The scaled rate reaches Adam's update; the decoupled weight decay keeps the unscaled rate
    (at fine-tuning's decay of 0.01 and rates of 1e-4 it shrinks a weight by 1e-6 a step).

    Args:
        rate_multipliers: dict, variable path -> multiplier; variables not in it: 1.
        **kwargs: `keras.optimizers.AdamW`'s.
    """

    def __init__(self, rate_multipliers=None, **kwargs):
        super().__init__(**kwargs)
        self.rate_multipliers = dict(rate_multipliers or {})
        self._multiplier_by_index = []

    def build(self, variables):
        super().build(variables)
        # In the order of AdamW's own slots, so `update_step` finds a variable's by the same index.
        self._multiplier_by_index = [self.rate_multipliers.get(variable.path, 1.0) for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        super().update_step(gradient, variable, learning_rate * self._multiplier_by_index[self._get_variable_index(variable)])

    def get_config(self):
        return {**super().get_config(), "rate_multipliers": self.rate_multipliers}


def create_optimizer(config, model, total_steps) -> keras.optimizers.Optimizer:
    """AdamW with BERT's schedule: linear warmup to the peak rate, then cosine or linear decay to 0.

    Biases and normalization scales are exempt from weight decay. With `train.layer_decay` each
    layer group of the model's `layers_by_depth()` trains at its own share of the rate
    (`layer_rate_multipliers`). Under mixed_float16 it is wrapped
    in a LossScaleOptimizer, so small float16 gradients do not underflow; bfloat16 has float32's
    range and needs no loss scaling.
    """
    train_config = config.train
    warmup_steps = int(train_config.warmup_fraction * total_steps)
    decay_steps = max(1, total_steps - warmup_steps)
    if train_config.decay == "cosine":
        decay = keras.optimizers.schedules.CosineDecay(train_config.learning_rate, decay_steps)
    else:
        decay = keras.optimizers.schedules.PolynomialDecay(train_config.learning_rate, decay_steps, 0.0, power=1.0)
    schedule = LinearWarmup(decay, warmup_steps)
    optimizer = LayerwiseDecayAdamW(
        layer_rate_multipliers(model, train_config.layer_decay),
        learning_rate=schedule, weight_decay=train_config.weight_decay, global_clipnorm=train_config.clipnorm,
    )
    optimizer.exclude_from_weight_decay(var_names=NO_WEIGHT_DECAY)
    if config.runtime.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)  # Slot variables exist before a checkpoint restores them.
    return optimizer
