"""float32 against mixed_bfloat16 on this CPU: where a BERT train step's time goes in each, by size.

    python -m benchmarks.mixed_precision                       # bert_tiny, bert_mini, bert_small (~6 min)
    python -m benchmarks.mixed_precision --models=bert_mini
    python -m benchmarks.mixed_precision --sequence_length=32   # SST-2's sentences (fine-tuning)

A bf16 matmul can run at several times the fp32 rate on CPUs with bf16 units (AVX512-BF16 on AMD
Zen 4, AMX on Intel Sapphire Rapids), yet a whole train step under `--mixed_precision=mixed_bfloat16`
was measured slower than float32. For each BERT size at batch 32 x `--sequence_length` (128, BERT's
fine-tuning length; 32 for SST-2's short sentences), in alternating blocks in one process, both
policies:

- the matmul rate at the encoder's feed-forward shape, [32 x length, hidden] x [hidden, 4 x hidden];
- the stages of the zoo Trainer's step as `trainers.run` runs it by default (no XLA): the forward
  pass (`training=True`), forward and backward (`Trainer.gradients`), and the whole step with
  AdamW's update (`Trainer.train_steps`);
- the whole step with XLA (`--jit_compile`).

The float32 / bf16 ratio of each stage says where bf16 gains and where it loses (the difference
between two stages is the time of the part they differ by). `trainers.run --mixed_precision=auto`
reads nothing from here at run time; its rule (trainers/precision.py) follows these figures.
"""

import argparse
import tempfile

from benchmarks import common

common.quiet_tensorflow()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from benchmarks.train_throughput import BERT_VOCABULARY_SIZE, Setup, encoder_flops, make_batch, zoo_trainer  # noqa: E402

NAME = "mixed_precision"
SIZES = ("bert_tiny", "bert_mini", "bert_small")
POLICIES = ("float32", "mixed_bfloat16")
STAGES = ("forward", "forward + backward", "whole step", "whole step, XLA")
BATCH_SIZE, SEQUENCE_LENGTH = 32, 128  # the default length: BERT's fine-tuning rows


def setup_of(size, sequence_length) -> Setup:
    """A BERT size at batch 32 x `sequence_length` on BERT's vocabulary (no peer: both sides are the zoo's)."""
    config = {**zoo.default_config(size), "vocabulary_size": BERT_VOCABULARY_SIZE,
              "max_sequence_length": sequence_length, "dropout": 0.1}
    flops = encoder_flops(sequence_length, config["hidden_dim"], config["intermediate_dim"], config["num_layers"])
    return Setup(size, "bert", config, BATCH_SIZE, sequence_length, None, 5e-4, None, flops,
                 f"{config['num_layers']} layers, {config['hidden_dim']} hidden, {config['intermediate_dim']} ff")


def stage_calls(setup, batch, policy, model_dir) -> dict:
    """Stage name -> a synchronous callable timing that stage of `setup`'s model under `policy`."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        trainer = zoo_trainer(setup, batch, False, 1, f"{model_dir}/{policy}")
        xla_trainer = zoo_trainer(setup, batch, True, 1, f"{model_dir}/{policy}_xla")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    inputs, labels = batch
    forward = tf.function(lambda: tf.reduce_sum(tf.cast(trainer.model(inputs, training=True), tf.float32)))
    backward = tf.function(lambda: tf.add_n([tf.reduce_sum(tf.convert_to_tensor(gradient))
                                             for gradient in trainer.gradients(inputs, labels)[2]]))
    calls = {"forward": lambda: float(forward()), "forward + backward": lambda: float(backward())}
    for name, each in (("whole step", trainer), ("whole step, XLA", xla_trainer)):
        iterator = iter(each.strategy.distribute_datasets_from_function(
            lambda context: tf.data.Dataset.from_tensors(batch).repeat()))
        calls[name] = lambda each=each, iterator=iterator: float(each.train_steps(iterator, 1)["loss_sum"])
    return calls


def markdown(document) -> str:
    sequence_length = document["settings"].get("sequence_length", SEQUENCE_LENGTH)
    rows = []
    for result in document["results"]:
        for stage in STAGES:
            fp32, bf16 = (result["stages"][policy][stage] for policy in POLICIES)
            rows.append([f"`{result['model']}`", stage, f"{fp32 * 1e3:.0f}", f"{bf16 * 1e3:.0f}", f"**{fp32 / bf16:.2f}x**"])
    matmuls = [f"`{result['model']}` {result['matmul_gflops']['float32']:.0f} fp32 / "
               f"{result['matmul_gflops']['bfloat16']:.0f} bf16 GFLOP/s "
               f"(**{result['matmul_gflops']['bfloat16'] / result['matmul_gflops']['float32']:.2f}x**)"
               for result in document["results"]]
    return (
        f"{common.environment_line(document)}\n\n"
        + common.markdown_table(["model", f"stage (batch {BATCH_SIZE} x {sequence_length})", "float32 ms", "mixed_bfloat16 ms",
                                 "bf16 speed-up"], rows)
        + f"\n\nFeed-forward matmul [{BATCH_SIZE * sequence_length}, hidden] x [hidden, 4 hidden] in the same run: " + "; ".join(matmuls)
        + f". Per-call medians over {document['settings']['blocks']} alternating blocks of "
        f"{document['settings']['calls']} calls, after 2 untimed calls per side.\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mixed_precision", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(SIZES))
    parser.add_argument("--sequence_length", type=int, default=SEQUENCE_LENGTH, help="tokens a row, none padded")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2, help="calls of each side per block")
    common.add_output_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    results = []
    for size in common.selected_models(parser, args.models, SIZES):
        setup = setup_of(size, args.sequence_length)
        batch = make_batch(setup)
        with tempfile.TemporaryDirectory() as model_dir:
            sides = {(policy, stage): call for policy in POLICIES
                     for stage, call in stage_calls(setup, batch, policy, model_dir).items()}
            for call in sides.values():
                call()
                call()
            times = common.alternating_blocks(sides, blocks=args.blocks, calls_per_block=args.calls)
        stages = {policy: {stage: common.median(times[(policy, stage)]) for stage in STAGES} for policy in POLICIES}
        hidden = setup.zoo_config["hidden_dim"]
        matmul = {dtype: common.matmul_gflops((BATCH_SIZE * args.sequence_length, hidden, 4 * hidden), dtype=dtype)
                  for dtype in ("float32", "bfloat16")}
        results.append({"model": size, "description": setup.description, "stages": stages, "matmul_gflops": matmul,
                        "seconds_all": {f"{policy} / {stage}": times[(policy, stage)] for policy, stage in times}})
        for stage in STAGES:
            print(f"{size:10s} {stage:20s} float32 {stages['float32'][stage] * 1e3:7.0f} ms  "
                  f"bf16 {stages['mixed_bfloat16'][stage] * 1e3:7.0f} ms  "
                  f"{stages['float32'][stage] / stages['mixed_bfloat16'][stage]:.2f}x", flush=True)
        print(f"{size:10s} feed-forward matmul: {matmul['float32']:.0f} / {matmul['bfloat16']:.0f} GFLOP/s", flush=True)
    document = common.new_document(NAME, settings=vars(args), results=results)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
