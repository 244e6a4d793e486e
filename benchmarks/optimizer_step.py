"""The zoo's train step with its AdamW (one TensorFlow kernel per variable) against Keras' AdamW.

    python -m benchmarks.optimizer_step                  # bert_tiny, transformer, gru (~1 min)
    python -m benchmarks.optimizer_step --models=bert_tiny --sequence_length=24

Both sides are `Trainer.train_steps` as `trainers.run` builds it (the default strategy, one step
per call, no XLA), at batch 32 and 16 tokens (SST-2's median length bucket), with one intra-op
thread, as `--intra_op_threads=auto` chooses for such a run: the small steps of a fine-tuning
command, bound by launching ops rather than by arithmetic. The peer is the same Trainer whose
optimizer was traced with Keras' own AdamW update (`keras.optimizers.AdamW.update_step` and its
weight decay) in place of `trainers.optimization.FusedAdamW`'s. Per-step medians in alternating
blocks, and the ops of one optimizer update on each side (`optimizer.apply`'s graph).
"""

import argparse
import contextlib
import dataclasses
import tempfile
from unittest import mock

from benchmarks import common

common.quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.train_throughput import make_batch, setups, zoo_step, zoo_trainer  # noqa: E402
from trainers import op_threads  # noqa: E402
from trainers.optimization import FusedAdamW  # noqa: E402

NAME = "optimizer_step"
SHIPPED = "zoo Trainer, FusedAdamW (shipped)"
KERAS = "zoo Trainer, Keras' AdamW"
MODELS = ("bert_tiny", "bert_mini", "transformer", "gru", "lstm")


@contextlib.contextmanager
def keras_adamw():
    """While tracing: FusedAdamW's update replaced by Keras' AdamW's (weight decay included)."""
    with mock.patch.object(FusedAdamW, "update_step", keras.optimizers.AdamW.update_step), \
            mock.patch.object(FusedAdamW, "_apply_weight_decay", keras.optimizers.AdamW._apply_weight_decay):
        yield


def update_ops(optimizer, variables) -> int:
    """Ops in the graph of one `optimizer.apply` over `variables` (traced, not run)."""
    gradients = [tf.zeros_like(variable) for variable in variables]
    return len(tf.function(lambda: optimizer.apply(gradients, variables)).get_concrete_function().graph.get_operations())


def markdown(document) -> str:
    rows = [
        [f"`{row['model']}`", f"{row['batch_size']} x {row['sequence_length']}", f"{row['vocabulary_size']:,}", str(row["variables"]),
         f"{row['keras_ms']:.1f} ({row['keras_update_ops']:,} ops)", f"{row['fused_ms']:.1f} ({row['fused_update_ops']:,} ops)",
         f"**{row['speedup']:.2f}x**"]
        for row in document["results"]
    ]
    settings = document["settings"]
    return (
        f"{common.environment_line(document)}\n\n"
        + common.markdown_table(
            ["model", "batch x tokens", "vocabulary", "variables", f"ms/step, {KERAS} (ops per update)",
             f"ms/step, {SHIPPED} (ops per update)", "speed-up"], rows)
        + f"\n\n{'The whole step in XLA' if settings['jit_compile'] else 'No XLA'}, {settings['intra_op_threads']} intra-op thread(s); per-step medians over "
        f"{settings['blocks']} alternating blocks of {settings['calls_per_block']} steps after 2 untimed calls per side.\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.optimizer_step", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert_tiny,transformer,gru")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--sequence_length", type=int, default=16)
    parser.add_argument("--intra_op_threads", type=int, default=1, help="0: one per core (TensorFlow's default)")
    parser.add_argument("--vocabulary_size", type=int, default=None,
                        help="the token table's rows (default: BERT's 30,522 for bert_*, 8,000 for the others)")
    parser.add_argument("--jit_compile", action="store_true", help="the whole step in XLA, as `--jit_compile` trains")
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--calls_per_block", type=int, default=20)
    common.add_output_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    names = common.selected_models(parser, args.models, MODELS)
    op_threads.apply(args.intra_op_threads, asked=True)
    available = setups()
    results = []
    for name in names:
        setup = dataclasses.replace(available[name], batch_size=args.batch_size, sequence_length=args.sequence_length)
        if args.vocabulary_size:
            setup = dataclasses.replace(setup, zoo_config={**setup.zoo_config, "vocabulary_size": args.vocabulary_size})
        batch = make_batch(setup)
        with tempfile.TemporaryDirectory() as model_dir:
            steps, ops = {}, {}
            for side, tracing in ((SHIPPED, contextlib.nullcontext), (KERAS, keras_adamw)):
                with tracing():
                    steps[side], _ = zoo_step(setup, batch, args.jit_compile, 1, f"{model_dir}/{len(steps)}")
                    steps[side]()  # Traced here.
                    trainer = zoo_trainer(setup, batch, args.jit_compile, 1, f"{model_dir}/ops{len(ops)}")
                    ops[side] = update_ops(trainer.optimizer, trainer.model.trainable_variables)
                steps[side]()
            times = common.alternating_blocks(steps, blocks=args.blocks, calls_per_block=args.calls_per_block)
        row = {"model": name, "batch_size": setup.batch_size, "sequence_length": setup.sequence_length,
               "vocabulary_size": setup.zoo_config["vocabulary_size"],
               "variables": len(trainer.model.trainable_variables),
               "fused_ms": common.median(times[SHIPPED]) * 1e3, "keras_ms": common.median(times[KERAS]) * 1e3,
               "fused_update_ops": ops[SHIPPED], "keras_update_ops": ops[KERAS],
               "fused_seconds_all": times[SHIPPED], "keras_seconds_all": times[KERAS]}
        row["speedup"] = row["keras_ms"] / row["fused_ms"]
        results.append(row)
        print(f"{name:12s} Keras' AdamW {row['keras_ms']:6.1f} ms ({row['keras_update_ops']} ops), "
              f"FusedAdamW {row['fused_ms']:6.1f} ms ({row['fused_update_ops']} ops): {row['speedup']:.2f}x", flush=True)
    document = common.new_document(NAME, settings=vars(args), results=results)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
