"""`--intra_op_threads=auto`: how many threads one TensorFlow op may split its work over, by a measured rule.

TensorFlow runs a step's independent ops side by side (its inter-op pool, one thread per core) and
lets each op split its work over a second pool (intra-op, one thread per core). On a CPU-only host
a step of small ops pays for that split: each op hands its shards to the pool and waits for
them, and two ops running side by side, each split over every core, keep twice as many threads
as cores busy. With one thread per op the ops still run side by side, each on its own core.

Measured on a 2-core Xeon with AMX (BENCHMARKS.md, "One thread per op on a CPU"; the SST-2 commands
of `benchmarks.finetune`, one epoch, float32, no XLA), training phase with one thread per op
against TensorFlow's default:

- a 128-wide encoder at batch 32-64: BERT-Tiny 60-64 s against 72-85 s, the transformer 40 s
  against 46-47 s (the same dev accuracy to the last example);
- BERT-Mini (256 wide) at batch 32: the same (46-48 s against 45-47 s, 300 steps);
- the shipped SST-2 recipes at batch 128-256 (every family, 200 steps): within 5% either way;
- the GRU and LSTM 128 wide at batch 64 (their `files` recipes, 400 steps): the same (14-15 s);
- with XLA, whose compiled matmuls split over the intra-op pool: slower (BERT-Tiny 77 s against 71 s).

So `auto` asks for one thread per op only where it measured faster: no GPU or TPU, one replica
(the default or one_device strategy), no XLA, a text model at most 128 wide (`hidden_dim`) and a
batch of at most 64 rows; everywhere else TensorFlow's default (the CNN and `bow`, without a
hidden width, were not measured at such batches). The setting holds for the whole process and must be
made before TensorFlow starts its runtime (`apply`).
"""

import tensorflow as tf

from zoo.errors import ConfigError

AUTO = "auto"
DEFAULT = 0  # TensorFlow's own choice: one thread per core.
SMALL_OPS_MAX_WIDTH = 128  # The widest model at which one thread per op measured faster.
SMALL_OPS_MAX_BATCH = 64  # The largest batch at which it did.
ONE_REPLICA_STRATEGIES = ("default", "one_device")


def auto_threads(strategy_name, model_fields, batch_size, jit_compile) -> tuple[int, str]:
    """The intra-op threads `auto` stands for in this run (0: TensorFlow's default), and why.

    Args:
        strategy_name: `runtime.strategy`.
        model_fields: the model section's fields, with the registered defaults (`hidden_dim`).
        batch_size: `train.batch_size`, global.
        jit_compile: bool, whether the train step is compiled with XLA.
    """
    if strategy_name not in ONE_REPLICA_STRATEGIES:
        return DEFAULT, f"the {strategy_name} strategy (measured only for one replica)"
    if tf.config.list_physical_devices("GPU"):
        return DEFAULT, "a GPU"
    if jit_compile:
        return DEFAULT, "a CPU with XLA, whose matmuls split over the cores"
    width = model_fields.get("hidden_dim")
    if width is None:
        return DEFAULT, "a model without a hidden width (measured only for the text models)"
    if width > SMALL_OPS_MAX_WIDTH or batch_size > SMALL_OPS_MAX_BATCH:
        return DEFAULT, (f"a CPU, a model {width} wide at batch {batch_size}: ops large enough to split "
                         f"(one thread per op pays up to {SMALL_OPS_MAX_WIDTH} wide at batch {SMALL_OPS_MAX_BATCH})")
    return 1, f"a CPU without XLA, a model {width} wide at batch {batch_size}: ops too small to split"


def apply(threads, *, asked) -> bool:
    """Sets the threads one op may use (0: TensorFlow's default); whether it could.

    It can only before TensorFlow's runtime starts (a run in a process that already ran ops, as a
    test or a notebook, keeps what that process has).

    Args:
        threads: int.
        asked: bool, whether the user named the number (then not being able to is an error).

    Raises:
        ConfigError: `asked`, and TensorFlow already runs with another number.
    """
    if threads == tf.config.threading.get_intra_op_parallelism_threads():
        return True  # Already so (0 when TensorFlow was left to choose), started or not.
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:
        if asked:
            raise ConfigError(
                f"runtime.intra_op_threads={threads} must be applied before TensorFlow starts; "
                f"this process already runs with {tf.config.threading.get_intra_op_parallelism_threads()}"
            ) from None
        return False
    return True
