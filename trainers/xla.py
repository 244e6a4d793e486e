"""`--jit_compile=auto` (the default): the train step compiled with XLA only where that measured faster.

With XLA the Trainer compiles a replica's whole step (forward, backward, AdamW) into one function:
fused elementwise loops, and dropout masks drawn with threefry instead of Philox
(`zoo.layers.Dropout`). Each length bucket's batch shape compiles once, a few seconds each, so XLA
pays where the steps are large enough to repay five compilations within the run. Measured on a
2-core Xeon with AMX and on AVX-512 EPYCs (BENCHMARKS.md, "Fine-tuning on SST-2: zoo vs keras-hub's
recipe"; one SST-2 epoch from the vocabulary to the export, float32, one replica):

- BERT-Mini (256 wide): training 207 s with XLA against 268 s without (the whole command 6.0x
  keras-hub's recipe with XLA, 4.4x without), the same dev accuracy (81.2-81.7% against 81.1%);
- BERT-Tiny (128 wide): 83 s against 82-95 s, within the runs' spread; with one thread per op
  (`--intra_op_threads=auto`, which XLA rules out) the run without XLA is the faster one;
- the transformer (128 wide, batch 64): 72.5 s against 54 s: its 17 ms steps do not repay the
  compilations;
- the GRU and LSTM's steps with XLA ran 0.55-1.18x the speed without (`benchmarks.train_throughput`).

So `auto` compiles where those runs measured a gain: a CPU (GPUs were not measured), one replica
(the default or one_device strategy: under the multi-device strategies XLA compiles only forward and
backward), the classification task (the pretraining step was measured without it), float32 (in
bf16 the XLA step measured slower than float32: `trainers/precision.py`) and an attention encoder at
least `MIN_HIDDEN_DIM` wide. Everywhere else the step runs without XLA; `--jit_compile` or
`--nojit_compile` decides it by hand.
"""

import dataclasses

import tensorflow as tf

from trainers.op_threads import ONE_REPLICA_STRATEGIES

AUTO = "auto"
MIN_HIDDEN_DIM = 256  # BERT-Mini's width: the narrowest encoder whose SST-2 run XLA made faster.


def auto_jit_compile(strategy_name, model_fields, task_name, mixed_precision) -> tuple[bool, str]:
    """Whether `auto` compiles this run's train step with XLA, and why (for the run's log line).

    Args:
        strategy_name: `runtime.strategy`.
        model_fields: the model section's fields, with the registered defaults (`hidden_dim`,
            `num_heads` for an attention encoder).
        task_name: `task.name`.
        mixed_precision: `runtime.mixed_precision` as configured (`auto` not yet resolved).
    """
    if strategy_name not in ONE_REPLICA_STRATEGIES:
        return False, f"the {strategy_name} strategy (measured only for one replica)"
    if tf.config.list_physical_devices("GPU"):
        return False, "a GPU (measured only on CPUs; add --jit_compile to compile there)"
    if task_name != "classify":
        return False, f"the {task_name} task (measured only for classification)"
    if mixed_precision != "float32":
        return False, f"--mixed_precision={mixed_precision} (measured only in float32)"
    if "num_heads" not in model_fields:
        return False, "a CPU and a model without attention: the recurrent models measured no faster with XLA"
    width = model_fields["hidden_dim"]
    if width < MIN_HIDDEN_DIM:
        return False, (f"a CPU and an encoder {width} wide: steps too small to repay a compilation per length "
                       f"bucket; XLA pays for encoders {MIN_HIDDEN_DIM}+ wide")
    return True, f"a CPU and an encoder {width} wide: steps large enough to repay a compilation per length bucket"


def resolve(config):
    """`config` with `train.jit_compile` a bool (`auto` decided by `auto_jit_compile`), and the
    reason for the log line (None where the config named the choice)."""
    if config.train.jit_compile != AUTO:
        return config, None
    chosen, reason = auto_jit_compile(config.runtime.strategy, config.model_fields, config.task.name,
                                      config.runtime.mixed_precision)
    return dataclasses.replace(config, train=dataclasses.replace(config.train, jit_compile=chosen)), reason
