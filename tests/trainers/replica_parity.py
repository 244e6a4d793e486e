"""Trains every zoo model under the default strategy and under MirroredStrategy, same global batch.

Run as a script (logical CPU devices must be configured before TensorFlow starts): splits the
CPU in two, trains each model for a few steps from the same initial weights on the same batches,
once per strategy, and prints {model: {"default": [losses], "mirrored": [losses]}} as JSON. The
losses are read back from the TensorBoard events the trainer writes.
"""

import json
import pathlib
import sys
import tempfile

import numpy as np
import tensorflow as tf

import zoo
from trainers.config import config_from_dict
from trainers.optimization import create_optimizer
from trainers.tasks.classification import Classification
from trainers.strategy import split_cpu
from trainers.trainer import Trainer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # tests/, also when run as a script
from cli_runs import losses_from_events  # noqa: E402

GLOBAL_BATCH, STEPS = 8, 6
TINY = {
    "cnn": dict(filters=(8, 16), translation=0.0),  # No random augmentation: the strategies draw it apart.
    "gru": dict(vocabulary_size=50, embedding_dim=16, hidden_dim=16),
    "lstm": dict(vocabulary_size=50, embedding_dim=16, hidden_dim=16),
    "transformer": dict(vocabulary_size=50, hidden_dim=32, num_heads=4, intermediate_dim=64, max_sequence_length=16),
    "bert": dict(vocabulary_size=50, hidden_dim=32, num_heads=2, intermediate_dim=64, max_sequence_length=16),
}


def examples(name):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, GLOBAL_BATCH * STEPS).astype(np.int32)
    if name == "cnn":
        return rng.uniform(0, 255, [len(labels), 8, 8, 1]).astype(np.float32), labels
    token_ids = rng.integers(5, 50, [len(labels), 12]).astype(np.int32)
    token_ids[::3, 8:] = 0  # Some padding.
    if name != "bert":
        return token_ids, labels
    inputs = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": (token_ids != 0) * 1}
    return {key: value.astype(np.int32) for key, value in inputs.items()}, labels


def train(name, strategy, initial_weights):
    inputs, labels = examples(name)

    def input_fn(input_context):
        batch = input_context.get_per_replica_batch_size(GLOBAL_BATCH)
        return tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(batch, drop_remainder=True).repeat()

    config = config_from_dict({"model": {"name": name}, "train": {"learning_rate": 1e-2, "warmup_fraction": 0.0}})
    with strategy.scope():
        model = zoo.build(name, dropout=0.0, **TINY[name])
        model(tf.nest.map_structure(lambda values: values[:2], inputs))
        if initial_weights is not None:
            model.set_weights(initial_weights)
        optimizer = create_optimizer(config, model, total_steps=STEPS)
    model_dir = pathlib.Path(tempfile.mkdtemp())
    trainer = Trainer(strategy=strategy, objective=Classification(), model=model, optimizer=optimizer, model_dir=model_dir, steps_per_loop=1)
    trainer.train(input_fn, epochs=1, steps_per_epoch=STEPS)
    return model.get_weights(), losses_from_events(model_dir)


def main(names):
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    curves = {}
    for name in names:
        tf.keras.utils.set_random_seed(0)
        initial = zoo.build(name, dropout=0.0, **TINY[name])
        initial(tf.nest.map_structure(lambda values: values[:2], examples(name)[0]))
        weights = initial.get_weights()
        _, default_losses = train(name, tf.distribute.get_strategy(), weights)
        _, mirrored_losses = train(name, mirrored, weights)
        curves[name] = {"default": default_losses, "mirrored": mirrored_losses}
    print(json.dumps(curves))


if __name__ == "__main__":
    split_cpu(2)  # Before TensorFlow starts; importing this module (as the test does) leaves devices alone.
    main(sys.argv[1:] or list(TINY))
