"""Dropout under XLA, forward and backward: TensorFlow's own stateless dropout against the zoo's.

    python -m benchmarks.dropout_masks                 # about 1 minute
    python -m benchmarks.dropout_masks --no_markdown   # BENCHMARKS.md untouched

Each side is one XLA-compiled function (as `trainers.run --jit_compile` compiles the train step)
returning the gradient of sum(dropout(x)^2) for the inputs of one bert_mini encoder block's
dropouts at batch 32 x 128 tokens: the attention probabilities [32, 4, 128, 128] and the two
sublayer outputs [32, 128, 256], at BERT's rate of 0.1:

- TensorFlow (the peer): `tf.nn.experimental.stateless_dropout` with threefry, its mask kept for
  the backward pass (Keras' dropout is the same op with Philox, which under XLA on a CPU takes
  seconds per mask: `zoo/layers/dropout.py`);
- the zoo as shipped: `zoo.layers.dropout.redrawn_dropout`, threefry's 32-bit words compared with
  rate * 2^32, the mask drawn again in the backward pass;
- a cheaper generator, not shipped: the same dropout with its words from `hashed_words` (each
  element's index through two keyed rounds of an integer hash) instead of threefry's;
- no dropout: the same function with the inputs scaled instead of masked, the floor every side
  pays (reading and writing the tensors); each side's dropout cost is its time above it.

Per-call medians over alternating blocks after 2 untimed calls per side.
"""

import argparse
import contextlib
from unittest import mock

from benchmarks import common

common.quiet_tensorflow()

import tensorflow as tf  # noqa: E402

from zoo.layers import dropout as dropout_module  # noqa: E402

NAME = "dropout_masks"
RATE = 0.1
SHAPES = [[32, 4, 128, 128], [32, 128, 256], [32, 128, 256]]  # One bert_mini block at batch 32 x 128.
PEER = "TensorFlow stateless_dropout (threefry), mask kept"
FLOOR = "no dropout (inputs scaled)"


def lowbias32(words):
    """Chris Wellons' `lowbias32` integer hash (hash-prospector, 2018), uint32 -> uint32: a
    bijection (xor-shifts and multiplications by odd constants are invertible) chosen by search
    for avalanche, each input bit flipping each output bit with probability close to 0.5."""
    words = words ^ tf.bitwise.right_shift(words, tf.constant(16, tf.uint32))
    words = words * tf.constant(0x7FEB352D, tf.uint32)
    words = words ^ tf.bitwise.right_shift(words, tf.constant(15, tf.uint32))
    words = words * tf.constant(0x846CA68B, tf.uint32)
    return words ^ tf.bitwise.right_shift(words, tf.constant(16, tf.uint32))


def hashed_words(shape, seed, algorithm):
    """Uniform uint32 [shape] standing in for `zoo.layers.dropout.random_words`: each element's
    flat index hashed twice, XORed with one of two words that `algorithm` draws from `seed` before
    each round. A dozen integer ops that XLA fuses into the multiply applying the mask, where
    threefry spends 20 rounds on every pair of words."""
    keys = tf.random.stateless_uniform([2], seed, minval=None, maxval=None, dtype=tf.uint32, alg=algorithm)
    index = tf.bitcast(tf.range(tf.reduce_prod(shape), dtype=tf.int32), tf.uint32)
    return tf.reshape(lowbias32(lowbias32(index ^ keys[0]) ^ keys[1]), shape)


def tensorflow_dropout(inputs, seed):
    return tf.nn.experimental.stateless_dropout(inputs, rate=RATE, seed=seed, rng_alg="threefry")


def zoo_dropout(inputs, seed):
    return dropout_module.redrawn_dropout(inputs, RATE, tf.shape(inputs), seed)


def no_dropout(inputs, seed):
    del seed
    return inputs * (1.0 / (1.0 - RATE))


# Side -> (dropout function, what to patch while it is traced).
SIDES = {
    PEER: (tensorflow_dropout, contextlib.nullcontext),
    "zoo redrawn_dropout, threefry (shipped)": (zoo_dropout, contextlib.nullcontext),
    "zoo redrawn_dropout, hashed words (not shipped)": (
        zoo_dropout, lambda: mock.patch.object(dropout_module, "random_words", hashed_words)),
    FLOOR: (no_dropout, contextlib.nullcontext),
}


def compiled_step(dropout, inputs):
    """A synchronous call: the gradient of sum(dropout(x)^2) over `inputs`, summed to a scalar."""

    @tf.function(jit_compile=True)
    def step(seed):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.add_n([tf.reduce_sum(tf.square(dropout(x, seed + index))) for index, x in enumerate(inputs)])
        return tf.add_n([tf.reduce_sum(gradient) for gradient in tape.gradient(loss, inputs)])

    seed = tf.constant([1, 2], tf.int32)
    return lambda: step(seed).numpy()


def markdown(document) -> str:
    rows = [
        [row["side"], f"{row['call_seconds'] * 1e3:.2f}", f"{row['dropout_seconds'] * 1e3:.2f}",
         "-" if row["side"] == FLOOR else f"**{row['dropout_cost_vs_tensorflow']:.2f}**"]
        for row in document["results"]
    ]
    return (
        f"{common.environment_line(document)}\n\n"
        + common.markdown_table(
            ["side (all XLA)", "ms per call", "dropout's cost: ms above no dropout", "cost / TensorFlow's"], rows)
        + f"\n\nOne call: forward and backward over {', '.join(str(shape) for shape in SHAPES)} at rate {RATE}; "
        f"per-call medians over {document['settings']['blocks']} alternating blocks of "
        f"{document['settings']['calls']} calls after 2 untimed calls per side.\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dropout_masks", description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--calls", type=int, default=5, help="calls per side in each block")
    common.add_output_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    inputs = [tf.random.stateless_normal(shape, [index, 0]) for index, shape in enumerate(SHAPES)]
    sides = {}
    for side, (dropout, patch) in SIDES.items():
        sides[side] = compiled_step(dropout, inputs)
        with patch():
            sides[side]()  # Traced and compiled here.
        sides[side]()
    times = common.alternating_blocks(sides, blocks=args.blocks, calls_per_block=args.calls)
    floor = common.median(times[FLOOR])
    peer_cost = common.median(times[PEER]) - floor
    results = []
    for side, seconds in times.items():
        cost = common.median(seconds) - floor
        results.append({"side": side, "call_seconds": common.median(seconds), "call_seconds_all": seconds,
                        "dropout_seconds": cost, "dropout_cost_vs_tensorflow": cost / peer_cost})
        print(f"{side:50s} {common.median(seconds) * 1e3:7.2f} ms  dropout {cost * 1e3:6.2f} ms", flush=True)
    document = common.new_document(NAME, settings=vars(args), rate=RATE, shapes=SHAPES, results=results)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
