"""What would make the zoo's BERT train step faster than keras-hub's? Variants timed side by side.

    python -m benchmarks.bert_step_variants                  # bert_tiny and bert_mini (~3 min)
    python -m benchmarks.bert_step_variants --models=bert_tiny

A diagnostic behind BENCHMARKS.md's analysis of `train_throughput`, not a measurement of shipped
code: besides the zoo Trainer's step and keras-hub's, it times changes the zoo does not have,
all with XLA, in alternating blocks in one process:

- trainer step: `Trainer.train_steps` as shipped (XLA over forward + backward, AdamW outside);
- whole step in XLA: forward, backward and the AdamW update in one jit-compiled function;
- + threefry dropout: the same, with Keras' dropout drawing its mask with
  `tf.nn.experimental.stateless_dropout(..., rng_alg="threefry")` instead of the default
  algorithm (Philox on CPU). This patches a private Keras function for the duration of the
  variant's tracing; the zoo would need its own dropout to do the same.
- no dropout: the whole step in XLA with dropout 0 everywhere: not the same training, but the
  ceiling of what any dropout implementation could reach.

Each step's GFLOP/s (FLOPs by the formula of `train_throughput`) is set against the fp32 matmul
rate measured in the same process.
"""

import argparse
import contextlib
import tempfile

from benchmarks import common

common.quiet_tensorflow()

import keras  # noqa: E402
import keras.src.backend.tensorflow.random as keras_tf_random  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from benchmarks.train_throughput import make_batch, peer_step, run_config, setups, zoo_step  # noqa: E402
from trainers import experiment  # noqa: E402

NAME = "bert_step_variants"


@contextlib.contextmanager
def threefry_dropout():
    """Keras' TF dropout with the threefry generator while tracing inside this block."""
    original = keras_tf_random.dropout

    def dropout(inputs, rate, noise_shape=None, seed=None):
        if rate in (0.0, 1.0):
            return original(inputs, rate, noise_shape, seed)
        seed = keras_tf_random._cast_seed(keras_tf_random.draw_seed(seed))
        noise_shape = keras_tf_random._get_concrete_noise_shape(inputs, noise_shape)
        return tf.nn.experimental.stateless_dropout(
            inputs, rate=rate, noise_shape=noise_shape, seed=seed, rng_alg="threefry"
        )

    keras_tf_random.dropout = dropout
    try:
        yield
    finally:
        keras_tf_random.dropout = original


def whole_step_in_xla(setup, batch, patch, **overrides):
    """One jit-compiled function: forward, backward and the AdamW update (traced under `patch`)."""
    inputs, labels = batch
    keras.utils.set_random_seed(0)
    model = zoo.build(setup.zoo_name, **{**setup.zoo_config, **overrides})
    model(inputs, training=False)
    optimizer = experiment.create_optimizer(run_config(setup, True), model, total_steps=10**6)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=True)
    def step(inputs, labels):
        with tf.GradientTape() as tape:
            mean_loss = tf.reduce_mean(loss(labels, model(inputs, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(mean_loss, model.trainable_variables), model.trainable_variables))
        return mean_loss

    with patch():
        step(inputs, labels)  # Traced and compiled here.
    return lambda: float(step(inputs, labels))


def markdown(document) -> str:
    rows = [
        [f"`{row['model']}`", row["variant"], f"{row['step_seconds'] * 1e3:.0f}", f"{row['examples_per_second']:.0f}",
         f"**{row['ratio_over_keras_hub']:.2f}x**", f"{row['gflops']:.0f} ({row['matmul_fraction'] * 100:.0f}%)"]
        for row in document["results"]
    ]
    matmul = document["matmul_gflops"]
    return (
        f"{common.environment_line(document)}\n\n"
        + common.markdown_table(
            ["model", "step (all with XLA)", "ms/step", "examples/s", "vs keras-hub", "GFLOP/s (% of matmul)"], rows
        )
        + f"\n\nfp32 matmul 2048x2048 in this run: {matmul['median']:.0f} GFLOP/s (median of "
        + ", ".join(f"{value:.0f}" for value in matmul["runs"])
        + f"). Per-step medians over {document['settings']['blocks']} alternating blocks after 2 untimed "
        "calls per side.\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bert_step_variants", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert_tiny,bert_mini")
    parser.add_argument("--blocks", type=int, default=4)
    common.add_output_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    available = setups()
    matmul_runs = [common.matmul_gflops()]
    results = []
    for name in args.models.split(","):
        setup = available[name.strip()]
        batch = make_batch(setup)
        with tempfile.TemporaryDirectory() as model_dir:
            trainer_call, _ = zoo_step(setup, batch, True, 1, model_dir)
            peer_call, _, _ = peer_step(setup, batch, True)
            sides = {
                "keras-hub BertClassifier, train_on_batch": peer_call,
                "zoo: trainer step (as shipped)": trainer_call,
                "zoo: whole step in XLA": whole_step_in_xla(setup, batch, contextlib.nullcontext),
                "zoo: whole step in XLA + threefry dropout": whole_step_in_xla(setup, batch, threefry_dropout),
                "zoo: whole step in XLA, no dropout (ceiling)": whole_step_in_xla(
                    setup, batch, contextlib.nullcontext, dropout=0.0
                ),
            }
            for call in sides.values():
                call()
                call()
            calls = 2 if name.strip() == "bert_mini" else 6
            times = common.alternating_blocks(sides, blocks=args.blocks, calls_per_block=calls)
        matmul_runs.append(common.matmul_gflops())
        peer = common.median(times["keras-hub BertClassifier, train_on_batch"])
        flops_per_step = 3 * setup.forward_flops_per_example * setup.batch_size
        for side, seconds in times.items():
            row = {"model": setup.name, "variant": side, "step_seconds": common.median(seconds),
                   "step_seconds_all": seconds,
                   "examples_per_second": setup.batch_size / common.median(seconds),
                   "ratio_over_keras_hub": peer / common.median(seconds),
                   "gflops": flops_per_step / common.median(seconds) / 1e9}
            results.append(row)
            print(f"{setup.name:10s} {side:45s} {row['step_seconds'] * 1e3:7.1f} ms  {row['ratio_over_keras_hub']:.2f}x", flush=True)
    matmul = common.median(matmul_runs)
    for row in results:
        row["matmul_fraction"] = row["gflops"] / matmul
    document = common.new_document(
        NAME, settings=vars(args), matmul_gflops={"median": matmul, "runs": matmul_runs}, results=results
    )
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
