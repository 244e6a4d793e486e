"""Where a masked-LM pretraining step's time goes, stage by stage: the encoder, the masked-LM head
over the vocabulary, the backward pass and AdamW's update of the embedding table.

    python -m benchmarks.pretrain_step                      # bert_mini, the recipe's shapes (~3 min)
    python -m benchmarks.pretrain_step --models=bert

The step is the one `trainers.run --task=pretrain --config=bert/pretrain_own_text` runs: a
`BertPretrainer` (masked LM + next sentence prediction, dropout 0) trained by the zoo `Trainer`
at batch 32 x 64 under `--mixed_precision=auto` (mixed_bfloat16 on a CPU with bf16 units), AdamW
with global-norm clipping. Each variant differs in what the issue named as candidates:

- prediction slots: every slot of `mask_positions` is scored over the whole vocabulary, a
  masked token in it or not. BERT's 20 slots are meant for 128 tokens; a row of 64 holds at
  most ceil(0.15 x 64) = 10 masked tokens, the default since `task.max_predictions: null`;
- vocabulary: the masked-LM head and the dense update of the token table grow with it.

Stages, each a separate call in alternating blocks in one process: the encoder's forward pass
alone, the forward pass with both heads, forward + backward (`Trainer.gradients`), and the whole
step with the update (`Trainer.train_steps`, one step a call). The difference between two stages
is the time of the part they differ by (heads; backward; update).
"""

import argparse
import tempfile

from benchmarks import common

common.quiet_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402
from trainers import config as config_lib  # noqa: E402
from trainers.optimization import create_optimizer  # noqa: E402
from trainers.precision import AUTO, auto_policy  # noqa: E402
from trainers.tasks.pretraining import MaskedLMAndNextSentence  # noqa: E402
from trainers.trainer import Trainer  # noqa: E402
from zoo.models.bert import BertPretrainer  # noqa: E402

NAME = "pretrain_step"
RECIPE = "bert/pretrain_own_text"
STAGES = ("encoder forward", "forward with heads", "forward + backward", "whole step")
# Variant -> (vocabulary size, prediction slots a row).
VARIANTS = {
    "8k vocabulary, 20 slots (the 2026-12-05 runs)": (8000, 20),
    "8k vocabulary, 10 slots (max_predictions: null)": (8000, 10),
    "16k vocabulary, 10 slots": (16000, 10),
}


def make_batch(batch_size, sequence_length, vocabulary_size, slots, masked_tokens, seed=0):
    """A packed pretraining batch: `masked_tokens` predictions a row, padded to `slots` (weight 0).

    Returns:
        (inputs, labels) as `PretrainingPreprocessor.mask` makes them: inputs {"token_ids",
        "segment_ids", "padding_mask": int32 [batch, sequence], "mask_positions": int32 [batch,
        slots]}; labels {"mask_ids": int32, "mask_weights": float32 [batch, slots],
        "next_sentence_label": int32 [batch]}.
    """
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, vocabulary_size, [batch_size, sequence_length]).astype(np.int32)
    positions = np.zeros([batch_size, slots], np.int32)
    positions[:, :masked_tokens] = [np.sort(rng.choice(np.arange(1, sequence_length - 1), masked_tokens, replace=False))
                                    for _ in range(batch_size)]
    weights = np.zeros([batch_size, slots], np.float32)
    weights[:, :masked_tokens] = 1.0
    segment_ids = np.zeros_like(token_ids)
    segment_ids[:, sequence_length // 2:] = 1
    inputs = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": np.ones_like(token_ids),
              "mask_positions": positions}
    labels = {"mask_ids": np.take_along_axis(token_ids, positions, axis=1) * weights.astype(np.int32),
              "mask_weights": weights, "next_sentence_label": rng.integers(0, 2, batch_size).astype(np.int32)}
    return tf.nest.map_structure(tf.constant, (inputs, labels))


def stage_calls(config, vocabulary_size, batch, model_dir) -> dict:
    """Stage name -> a synchronous callable running that stage of the recipe's step once."""
    encoder_config = {**zoo.default_config(config.model_name), **config.model_overrides,
                      "vocabulary_size": vocabulary_size, "max_sequence_length": config.data.sequence_length}
    encoder_config.pop("num_classes", None)
    keras.utils.set_random_seed(0)
    model = BertPretrainer(**encoder_config)
    inputs, labels = batch
    model(inputs, training=False)
    trainer = Trainer(strategy=tf.distribute.get_strategy(), objective=MaskedLMAndNextSentence(),
                      model=model, optimizer=create_optimizer(config, model, config.train.steps_per_epoch),
                      model_dir=model_dir, steps_per_loop=1)
    encoder_inputs = {key: inputs[key] for key in ("token_ids", "segment_ids", "padding_mask")}
    encoder = tf.function(lambda: tf.reduce_sum(tf.cast(model.encoder(encoder_inputs, training=True)["sequence_output"],
                                                        tf.float32)))
    forward = tf.function(lambda: tf.add_n([tf.reduce_sum(tf.cast(output, tf.float32))
                                            for output in model(inputs, training=True).values()]))
    backward = tf.function(lambda: tf.add_n([tf.reduce_sum(tf.convert_to_tensor(gradient))
                                             for gradient in trainer.gradients(inputs, labels)[2]]))
    iterator = iter(trainer.strategy.distribute_datasets_from_function(
        lambda context: tf.data.Dataset.from_tensors(batch).repeat()))
    return {"encoder forward": lambda: float(encoder()), "forward with heads": lambda: float(forward()),
            "forward + backward": lambda: float(backward()),
            "whole step": lambda: float(trainer.train_steps(iterator, 1)["loss_sum"])}


def markdown(document) -> str:
    settings = document["settings"]
    baseline = {}  # model -> its first variant's whole step
    rows = []
    for result in document["results"]:
        stages = result["stages"]
        baseline.setdefault(result["model"], stages["whole step"])
        rows.append([f"`{result['model']}`", result["variant"], f"`{result['policy']}`",
                     *(f"{stages[stage] * 1e3:.0f}" for stage in STAGES),
                     f"{(stages['forward with heads'] - stages['encoder forward']) * 1e3:.0f}",
                     f"{(stages['whole step'] - stages['forward + backward']) * 1e3:.0f}",
                     f"**{baseline[result['model']] / stages['whole step']:.2f}x**"])
    return (
        f"{common.environment_line(document)}\n\n"
        f"`{RECIPE}`'s step, batch {settings['batch_size']} x {settings['sequence_length']}, "
        f"{settings['masked_tokens']} masked tokens a row, under the policy `--mixed_precision=auto` picks "
        f"here ({document['results'][0]['policy_reason']}); milliseconds per call:\n\n"
        + common.markdown_table(["model", "variant", "policy", *STAGES, "heads (forward)", "update", "step speed-up"], rows)
        + f"\n\nPer-call medians over {settings['blocks']} alternating blocks of {settings['calls']} calls, after 2 "
        "untimed calls per side. heads: forward with heads minus the encoder's; update: whole step minus forward + "
        "backward; speed-up: the model's first variant's whole step over this one's.\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pretrain_step", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert_mini")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3, help="calls of each side per block")
    common.add_output_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    results = []
    for size in common.selected_models(parser, args.models, ("bert", "bert_mini", "bert_small")):
        config = config_lib.load_config(RECIPE)
        config = config_lib.config_from_dict(config_lib.apply_overrides(config.to_dict(), f"model.name={size}"))
        length, batch_size = config.data.sequence_length, config.train.batch_size
        masked_tokens = config.task.predictions_per_sequence(length)
        strategy = tf.distribute.get_strategy()
        policy, reason = auto_policy(strategy, {**zoo.default_config(size), **config.model_overrides}, False)
        if config.runtime.mixed_precision != AUTO:
            policy, reason = config.runtime.mixed_precision, f"{RECIPE}'s own"
        sides = {}
        with tempfile.TemporaryDirectory() as model_dir:
            keras.mixed_precision.set_global_policy(policy)
            try:
                for index, (variant, (vocabulary_size, slots)) in enumerate(VARIANTS.items()):
                    batch = make_batch(batch_size, length, vocabulary_size, slots, masked_tokens)
                    for stage, call in stage_calls(config, vocabulary_size, batch, f"{model_dir}/{index}").items():
                        sides[(variant, stage)] = call
            finally:
                keras.mixed_precision.set_global_policy("float32")
            for call in sides.values():
                call()
                call()
            times = common.alternating_blocks(sides, blocks=args.blocks, calls_per_block=args.calls)
        for variant in VARIANTS:
            stages = {stage: common.median(times[(variant, stage)]) for stage in STAGES}
            results.append({"model": size, "variant": variant, "policy": policy, "policy_reason": reason, "stages": stages,
                            "seconds_all": {stage: times[(variant, stage)] for stage in STAGES}})
            print(f"{size:10s} {variant:48s} " + "  ".join(f"{stage} {stages[stage] * 1e3:5.0f} ms" for stage in STAGES),
                  flush=True)
    document = common.new_document(NAME, settings={**vars(args), "batch_size": batch_size, "sequence_length": length,
                                                   "masked_tokens": masked_tokens},
                                   results=results)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
