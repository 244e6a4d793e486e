"""The zoo's BERT train step against keras-hub's, with each of its speed levers on and off.

    python -m benchmarks.bert_step_variants                  # bert_tiny and bert_mini (~10 min)
    python -m benchmarks.bert_step_variants --models=bert_tiny

Every zoo side is `Trainer.train_steps` (one step per call, the default strategy, XLA on) as
`trainers.run` builds it; keras-hub's `BertClassifier.train_on_batch` with XLA is the peer. The
levers the zoo ships, each switched off alone and both together, in alternating blocks in one
process:

- whole step in XLA: the Trainer compiles forward, backward and the AdamW update as one XLA
  function on one device (`Trainer(whole_step_in_xla=False)` keeps the update outside, as
  under MirroredStrategy);
- threefry dropout: `zoo.layers.Dropout` draws its masks with threefry under XLA (off: with
  Philox, Keras' generator, by standing `zoo.layers.dropout.random_algorithm` in for the
  variant's tracing);
- masks drawn again in the backward pass (`zoo.layers.dropout.redrawn_dropout`; off: kept for
  it, as `tf.nn.experimental.stateless_dropout` does, with the same threefry masks);
- not shipped, a cheaper generator: the masks' words from `benchmarks.dropout_masks.hashed_words`
  (an integer hash of each element's index) in place of threefry's;
- no dropout: the shipped step with dropout 0 everywhere: not the same training, but the
  ceiling of what any dropout implementation could reach.

Each step's GFLOP/s (FLOPs by the formula of `train_throughput`) is set against the fp32 matmul
rate measured in the same process.
"""

import argparse
import contextlib
import dataclasses
import tempfile
from unittest import mock

from benchmarks import common

common.quiet_tensorflow()

import tensorflow as tf  # noqa: E402

from benchmarks.dropout_masks import hashed_words  # noqa: E402
from benchmarks.train_throughput import make_batch, peer_step, setups, zoo_step  # noqa: E402
from zoo.layers import dropout as dropout_module  # noqa: E402

NAME = "bert_step_variants"


PEER = "keras-hub BertClassifier, train_on_batch"
# Dropout as traced by a variant: as shipped, hashed words, masks kept for the backward pass, or Philox masks.
DROPOUT = {
    "shipped": contextlib.nullcontext,
    "hashed": lambda: mock.patch.object(dropout_module, "random_words", hashed_words),
    "kept": lambda: mock.patch.object(dropout_module, "redrawn_dropout", kept_mask_dropout),
    "philox": lambda: mock.patch.object(dropout_module, "random_algorithm", lambda: "philox"),
}
# Variant name -> (Trainer options, zoo.build overrides, DROPOUT key).
VARIANTS = {
    "zoo Trainer as shipped: whole step in XLA, threefry dropout, masks drawn again in the backward pass": (
        {}, {}, "shipped"),
    "zoo Trainer, hashed words for the masks (not shipped)": ({}, {}, "hashed"),
    "zoo Trainer, update outside XLA": ({"whole_step_in_xla": False}, {}, "shipped"),
    "zoo Trainer, masks kept for the backward pass": ({}, {}, "kept"),
    "zoo Trainer, Philox dropout": ({}, {}, "philox"),
    "zoo Trainer, update outside XLA, Philox dropout (before)": ({"whole_step_in_xla": False}, {}, "philox"),
    "zoo Trainer as shipped, no dropout (ceiling)": ({}, {"dropout": 0.0}, "shipped"),
}


def kept_mask_dropout(inputs, rate, noise_shape, seed, algorithm):
    """`redrawn_dropout`'s masks, kept for the backward pass by TensorFlow's own dropout."""
    return tf.nn.experimental.stateless_dropout(inputs, rate=rate, noise_shape=noise_shape, seed=seed, rng_alg=algorithm)


def trainer_step(setup, batch, model_dir, trainer_options, model_overrides, dropout):
    """A callable running one step of the zoo Trainer, traced (on its first call) with the given levers."""
    setup = dataclasses.replace(setup, zoo_config={**setup.zoo_config, **model_overrides})
    step, _ = zoo_step(setup, batch, True, 1, model_dir, **trainer_options)
    with DROPOUT[dropout]():
        step()  # Traced and compiled here.
    return step


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
            sides = {PEER: peer_step(setup, batch, True)[0]}
            for index, (variant, options) in enumerate(VARIANTS.items()):
                sides[variant] = trainer_step(setup, batch, f"{model_dir}/{index}", *options)
            for call in sides.values():
                call()
                call()
            calls = 2 if name.strip() == "bert_mini" else 6
            times = common.alternating_blocks(sides, blocks=args.blocks, calls_per_block=calls)
        matmul_runs.append(common.matmul_gflops())
        peer = common.median(times[PEER])
        flops_per_step = 3 * setup.forward_flops_per_example * setup.batch_size
        for side, seconds in times.items():
            row = {"model": setup.name, "variant": side, "step_seconds": common.median(seconds),
                   "step_seconds_all": seconds,
                   "examples_per_second": setup.batch_size / common.median(seconds),
                   "ratio_over_keras_hub": peer / common.median(seconds),
                   "gflops": flops_per_step / common.median(seconds) / 1e9}
            results.append(row)
            print(f"{setup.name:10s} {side:100s} {row['step_seconds'] * 1e3:7.1f} ms  {row['ratio_over_keras_hub']:.2f}x", flush=True)
    matmul = common.median(matmul_runs)
    for row in results:
        row["matmul_fraction"] = row["gflops"] / matmul
    document = common.new_document(
        NAME, settings=vars(args), matmul_gflops={"median": matmul, "runs": matmul_runs}, results=results
    )
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
