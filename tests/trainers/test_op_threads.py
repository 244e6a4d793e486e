"""`--intra_op_threads=auto` asks for one thread per op only where benchmarks measured it faster."""

import pytest
import tensorflow as tf

from trainers import op_threads
from zoo.errors import ConfigError

SMALL = {"hidden_dim": 128}  # BERT-Tiny, the transformer and the recurrent `files` recipes.
WIDE = {"hidden_dim": 256}  # BERT-Mini.


@pytest.mark.parametrize("strategy, model, batch_size, jit_compile, threads, reason", [
    ("default", SMALL, 64, False, 1, "ops too small to split"),
    ("one_device", SMALL, 32, False, 1, "ops too small to split"),
    ("default", WIDE, 32, False, 0, "ops large enough to split"),
    ("default", SMALL, 128, False, 0, "ops large enough to split"),
    ("default", SMALL, 32, True, 0, "with XLA"),
    ("mirrored", SMALL, 32, False, 0, "the mirrored strategy"),
    ("default", {"filters": 32}, 32, False, 0, "without a hidden width"),  # The CNN: not measured.
])
def test_one_thread_per_op_only_where_it_was_measured_faster(strategy, model, batch_size, jit_compile, threads,
                                                             reason):
    chosen, why = op_threads.auto_threads(strategy, model, batch_size, jit_compile)
    assert chosen == threads and reason in why


def test_a_gpu_keeps_tensorflows_threads(monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert op_threads.auto_threads("default", SMALL, 32, False) == (0, "a GPU")


def test_once_tensorflow_runs_only_an_asked_number_is_an_error():
    tf.constant(1.0) + 1.0  # The runtime starts with the first op.
    running = tf.config.threading.get_intra_op_parallelism_threads()
    other = running + 3
    assert op_threads.apply(running, asked=True)  # What the process already has: nothing to change.
    assert not op_threads.apply(other, asked=False)  # `auto` keeps what the process has.
    with pytest.raises(ConfigError, match=f"runtime.intra_op_threads={other} must be applied before TensorFlow starts"):
        op_threads.apply(other, asked=True)
    assert tf.config.threading.get_intra_op_parallelism_threads() == running
