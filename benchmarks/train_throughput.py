"""Train-step throughput of every zoo model against a Keras / keras-hub peer of the same size.

    python -m benchmarks.train_throughput                       # all models, XLA off and on (~5 min)
    python -m benchmarks.train_throughput --models=bert_tiny,cnn --quick

One train step = forward, backward and the AdamW update, on a fixed batch held in memory (the
input pipeline is measured apart, by `benchmarks.input_pipeline`). Both sides use the optimizer
`trainers.optimization.create_optimizer` builds (AdamW, warmup + cosine schedule, no weight decay
on biases and norms) and sparse softmax cross-entropy on logits.

- zoo: `trainers.trainer.Trainer.train_steps`, the trainer's own `tf.function`, called with
  `steps_per_loop` steps (default 1: one host call per step, as the peer's `train_on_batch`);
  with XLA on the Trainer compiles the whole step (update included) on this one device. A
  second zoo trainer runs at the config's default `train.steps_per_loop` (20
  steps per host call, as `trainers.run` trains) in the same alternating blocks, so the table
  also shows what the zoo's own loop gains over one host call per step.
- peer: `model.train_on_batch` after `model.compile(jit_compile=...)`; Keras compiles its whole
  train step (update included) with XLA when asked.

Peers: keras-hub `BertClassifier` on a `BertBackbone` of the same sizes (preprocessor=None, fed
token dicts) for bert_tiny / bert_mini; keras-hub `TransformerEncoder` layers for transformer;
`keras.layers.GRU` / `LSTM` for gru / lstm; a `keras.Sequential` conv net for cnn.

FLOPs are counted by formula (2 per multiply-add of every matmul and convolution; backward
= 2x forward, so a train step = 3x forward; embeddings, norms, softmax and the update are not
counted), and set against the fp32 rate of `tf.matmul` on 2048x2048 operands measured in the
same run.
"""

import argparse
import dataclasses
import math
import tempfile

from benchmarks import common

common.quiet_tensorflow()

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import yaml  # noqa: E402

import zoo  # noqa: E402
from trainers import config as config_lib  # noqa: E402
from trainers.optimization import create_optimizer  # noqa: E402
from trainers.tasks.classification import Classification  # noqa: E402
from trainers.trainer import Trainer  # noqa: E402

NAME = "train_throughput"
BERT_VOCABULARY_SIZE = 30522  # BERT's uncased WordPiece vocabulary, as BERT-Tiny / BERT-Mini have.
TARGET_XLA_RATIO = 1.25  # zoo BERT examples/s over keras-hub's, with XLA
TARGET_MATMUL_FRACTION = 0.60  # bert_mini's train step against the matmul rate


@dataclasses.dataclass
class Setup:
    """One model size: the zoo model, its peer, and the batch both train on."""

    name: str
    zoo_name: str  # registry name
    zoo_config: dict  # zoo.build overrides (num_classes and vocabulary_size included)
    batch_size: int
    sequence_length: int | None  # text models
    image_shape: tuple | None  # image models
    learning_rate: float
    build_peer: callable  # () -> an unbuilt keras.Model taking the same batch
    forward_flops_per_example: float
    description: str

    @property
    def tokens_per_step(self):
        return self.batch_size * self.sequence_length if self.sequence_length else None


# ---------------------------------------------------------------- FLOPs by formula (forward pass)
def encoder_flops(sequence_length, hidden_dim, intermediate_dim, num_layers):
    """Per example: Q, K, V and output projections, Q K^T, softmax(.) V, and the feed-forward pair."""
    projections = 2 * (4 * hidden_dim * hidden_dim + 2 * hidden_dim * intermediate_dim)
    attention = 2 * 2 * sequence_length * hidden_dim
    return num_layers * sequence_length * (projections + attention)


def recurrent_flops(sequence_length, input_dim, hidden_dim, gates, directions):
    """Per example: each gate's input and recurrent matmuls at every step, in every direction."""
    return directions * sequence_length * gates * 2 * (input_dim * hidden_dim + hidden_dim * hidden_dim)


def convnet_flops(image_shape, filters, kernel_size):
    """Per example: each "same" convolution at its input's size; pooling halves (ceil) the size after it."""
    height, width, channels = image_shape
    total = 0
    for width_out in filters:
        total += 2 * height * width * kernel_size * kernel_size * channels * width_out
        height, width, channels = math.ceil(height / 2), math.ceil(width / 2), width_out
    return total


# ---------------------------------------------------------------- peers
def bert_peer(config):
    def build():
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=config["vocabulary_size"],
            num_layers=config["num_layers"],
            num_heads=config["num_heads"],
            hidden_dim=config["hidden_dim"],
            intermediate_dim=config["intermediate_dim"],
            dropout=config["dropout"],
            max_sequence_length=config["max_sequence_length"],
        )
        return keras_hub.models.BertClassifier(
            backbone, num_classes=config["num_classes"], preprocessor=None, dropout=config["dropout"]
        )

    return build


def transformer_peer(config, sequence_length):
    def build():
        token_ids = keras.Input([sequence_length], dtype="int32", name="token_ids")
        padding_mask = keras.ops.not_equal(token_ids, 0)
        hidden_dim = config["hidden_dim"]
        x = keras.layers.Embedding(config["vocabulary_size"], hidden_dim)(token_ids) * hidden_dim**0.5
        x = x + keras_hub.layers.SinePositionEncoding()(x)
        x = keras.layers.Dropout(config["dropout"])(x)
        for _ in range(config["num_layers"]):
            x = keras_hub.layers.TransformerEncoder(
                config["intermediate_dim"], config["num_heads"], dropout=config["dropout"], layer_norm_epsilon=1e-5
            )(x, padding_mask=padding_mask)
        x = keras.layers.GlobalAveragePooling1D()(x, mask=padding_mask)
        x = keras.layers.Dropout(config["dropout"])(x)
        return keras.Model(token_ids, keras.layers.Dense(config["num_classes"])(x))

    return build


def recurrent_peer(config, sequence_length):
    cell = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[config["cell_type"]]

    def build():
        recurrent = cell(config["hidden_dim"])
        return keras.Sequential(
            [
                keras.Input([sequence_length], dtype="int32"),
                keras.layers.Embedding(config["vocabulary_size"], config["embedding_dim"], mask_zero=True),
                keras.layers.Bidirectional(recurrent) if config["bidirectional"] else recurrent,
                keras.layers.Dropout(config["dropout"]),
                keras.layers.Dense(config["num_classes"]),
            ]
        )

    return build


def convnet_peer(config, image_shape):
    def build():
        layers = [keras.Input(image_shape), keras.layers.Rescaling(1.0 / 255)]
        for width in config["filters"]:
            layers += [
                keras.layers.Conv2D(width, config["kernel_size"], padding="same", use_bias=False),
                keras.layers.BatchNormalization(momentum=0.9),
                keras.layers.ReLU(),
                keras.layers.MaxPooling2D(2, padding="same"),
            ]
        layers += [
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dropout(config["dropout"]),
            keras.layers.Dense(config["num_classes"]),
        ]
        return keras.Sequential(layers)

    return build


# ---------------------------------------------------------------- the setups
def _experiment(model_name, dataset):
    """A config YAML's model overrides, batch size, sequence length and learning rate."""
    values = yaml.safe_load(config_lib.default_config_path(model_name, dataset).read_text())
    overrides = {key: value for key, value in values["model"].items() if key != "name"}
    config = {**zoo.default_config(model_name), **overrides}
    return config, values["train"]["batch_size"], values.get("data", {}).get("sequence_length"), values["train"]


def setups() -> dict:
    found = {}
    for name, sizes in {
        "bert_tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
        "bert_mini": dict(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024),
    }.items():
        config = {
            **zoo.default_config("bert"),
            **sizes,
            "vocabulary_size": BERT_VOCABULARY_SIZE,
            "max_sequence_length": 128,
            "dropout": 0.1,
        }
        flops = encoder_flops(128, config["hidden_dim"], config["intermediate_dim"], config["num_layers"])
        flops += 2 * config["hidden_dim"] * (config["hidden_dim"] + config["num_classes"])  # pooler + head
        found[name] = Setup(
            name, "bert", config, 32, 128, None, 5e-4, bert_peer(config), flops,
            f"{sizes['num_layers']} layers, {sizes['hidden_dim']} hidden, {sizes['num_heads']} heads, "
            f"{sizes['intermediate_dim']} ff, vocab {BERT_VOCABULARY_SIZE}",
        )
    config, batch_size, sequence_length, train = _experiment("transformer", "sst2_local")
    found["transformer"] = Setup(
        "transformer", "transformer", dict(config, vocabulary_size=8000), batch_size, sequence_length, None,
        train["learning_rate"], transformer_peer(dict(config, vocabulary_size=8000), sequence_length),
        encoder_flops(sequence_length, config["hidden_dim"], config["intermediate_dim"], config["num_layers"]),
        f"{config['num_layers']} layers, {config['hidden_dim']} hidden, {config['num_heads']} heads, "
        f"{config['intermediate_dim']} ff, vocab 8000 (trainers/configs/transformer/sst2_local.yaml)",
    )
    for cell, gates in (("gru", 3), ("lstm", 4)):
        config, batch_size, sequence_length, train = _experiment(cell, "sst2_local")
        config = dict(config, vocabulary_size=8000)
        directions = 2 if config["bidirectional"] else 1
        found[cell] = Setup(
            cell, cell, config, batch_size, sequence_length, None, train["learning_rate"],
            recurrent_peer(config, sequence_length),
            recurrent_flops(sequence_length, config["embedding_dim"], config["hidden_dim"], gates, directions),
            f"{'bidirectional ' if directions == 2 else ''}{cell.upper()} {config['hidden_dim']}, "
            f"embedding {config['embedding_dim']}, vocab 8000 (trainers/configs/{cell}/sst2_local.yaml)",
        )
    config, batch_size, _, train = _experiment("cnn", "mnist_local")
    image_shape = (28, 28, 1)
    found["cnn"] = Setup(
        "cnn", "cnn", config, batch_size, None, image_shape, train["learning_rate"],
        convnet_peer(config, image_shape), convnet_flops(image_shape, config["filters"], config["kernel_size"]),
        f"filters {list(config['filters'])}, 28x28x1 (trainers/configs/cnn/mnist_local.yaml)",
    )
    return found


def make_batch(setup, seed=0):
    """A fixed batch of inputs and labels, as the model's input pipeline would deliver it."""
    rng = np.random.default_rng(seed)
    labels = tf.constant(rng.integers(0, setup.zoo_config["num_classes"], setup.batch_size), tf.int32)
    if setup.image_shape:
        images = rng.integers(0, 256, [setup.batch_size, *setup.image_shape]).astype(np.float32)
        return tf.constant(images), labels
    shape = [setup.batch_size, setup.sequence_length]
    # No padding: every position is a real token (ids from 5, after the reserved tokens).
    token_ids = tf.constant(rng.integers(5, setup.zoo_config["vocabulary_size"], shape), tf.int32)
    if setup.zoo_name == "bert":
        return {
            "token_ids": token_ids,
            "segment_ids": tf.zeros(shape, tf.int32),
            "padding_mask": tf.ones(shape, tf.int32),
        }, labels
    return token_ids, labels


# ---------------------------------------------------------------- the two train steps
def run_config(setup, jit_compile):
    """The experiment config both sides' optimizer is made from: `setup`'s model, batch size and learning rate."""
    return config_lib.config_from_dict(
        {
            "model": {"name": setup.zoo_name},
            "train": {"batch_size": setup.batch_size, "learning_rate": setup.learning_rate, "jit_compile": jit_compile},
        }
    )


def zoo_trainer(setup, batch, jit_compile, steps_per_loop, model_dir, **trainer_options) -> Trainer:
    """The zoo `Trainer` of `setup`'s model, built (under the global dtype policy) on `batch`.

    `trainer_options` go to `Trainer` (`benchmarks.bert_step_variants` sets `whole_step_in_xla`).
    """
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.build(setup.zoo_name, **setup.zoo_config)
        model(batch[0], training=False)
        optimizer = create_optimizer(run_config(setup, jit_compile), model, total_steps=10**6)
    trainer = Trainer(
        strategy=strategy,
        objective=Classification(),
        model=model,
        optimizer=optimizer,
        model_dir=model_dir,
        steps_per_loop=steps_per_loop,
        jit_compile=jit_compile,
        **trainer_options,
    )
    return trainer


def zoo_step(setup, batch, jit_compile, steps_per_loop, model_dir, **trainer_options):
    """A callable running `steps_per_loop` steps of the zoo Trainer's loop, synchronously; the
    model's parameter count. Arguments as `zoo_trainer`'s."""
    trainer = zoo_trainer(setup, batch, jit_compile, steps_per_loop, model_dir, **trainer_options)
    dataset = trainer.strategy.distribute_datasets_from_function(
        lambda context: tf.data.Dataset.from_tensors(batch).repeat())
    iterator = iter(dataset)
    num_steps = tf.constant(steps_per_loop)

    def step():
        totals = trainer.train_steps(iterator, num_steps)
        return float(totals["loss_sum"])  # Waits for the step to finish.

    return step, trainer.model.count_params()


def peer_step(setup, batch, jit_compile):
    """A callable running one `train_on_batch` of the peer model, and whether Keras kept XLA on."""
    keras.utils.set_random_seed(0)
    model = setup.build_peer()
    model(batch[0], training=False)
    optimizer = create_optimizer(run_config(setup, jit_compile), model, total_steps=10**6)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    inputs, labels = batch

    def step():
        return model.train_on_batch(inputs, labels)  # Returns Python floats: synchronous.

    return step, model.count_params(), bool(model.jit_compile)


def measure(setup, jit_compile, args):
    """Per-step medians of zoo and peer, measured in alternating blocks after a warm-up."""
    batch = make_batch(setup)
    with tempfile.TemporaryDirectory() as model_dir:
        zoo_call, zoo_params = zoo_step(setup, batch, jit_compile, args.steps_per_loop, model_dir + "/zoo")
        peer_call, peer_params, peer_jit = peer_step(setup, batch, jit_compile)
        sides = {"zoo": zoo_call, "peer": peer_call}
        if args.shipped_steps_per_loop > 1:
            sides["zoo_loop"], _ = zoo_step(setup, batch, jit_compile, args.shipped_steps_per_loop, model_dir + "/loop")
        for _ in range(args.warmup):  # Tracing, XLA compilation, first-touch allocations.
            for call in sides.values():
                call()
        probe = common.alternating_blocks({"zoo": zoo_call, "peer": peer_call}, blocks=1, calls_per_block=1)
        call_seconds = max(probe["zoo"][0], probe["peer"][0])
        calls = max(1, min(20, round(args.block_seconds / call_seconds)))
        # The zoo_loop side runs shipped_steps_per_loop steps a call: one call a block keeps its
        # share of every block close to the others'.
        times = common.alternating_blocks(sides, blocks=args.blocks, calls_per_block={"zoo": calls, "peer": calls, "zoo_loop": 1})
    zoo_seconds = common.median(times["zoo"]) / args.steps_per_loop
    peer_seconds = common.median(times["peer"])
    loop_seconds = common.median(times["zoo_loop"]) / args.shipped_steps_per_loop if "zoo_loop" in times else None
    flops_per_step = 3 * setup.forward_flops_per_example * setup.batch_size
    return {
        "model": setup.name,
        "description": setup.description,
        "jit_compile": jit_compile,
        "peer_jit_compile": peer_jit,
        "batch_size": setup.batch_size,
        "sequence_length": setup.sequence_length,
        "zoo_params": zoo_params,
        "peer_params": peer_params,
        "steps_per_loop": args.steps_per_loop,
        "calls_per_block": calls,
        "blocks": args.blocks,
        "zoo_step_seconds": zoo_seconds,
        "peer_step_seconds": peer_seconds,
        "zoo_step_seconds_all": [value / args.steps_per_loop for value in times["zoo"]],
        "peer_step_seconds_all": times["peer"],
        "zoo_examples_per_second": setup.batch_size / zoo_seconds,
        "peer_examples_per_second": setup.batch_size / peer_seconds,
        "zoo_tokens_per_second": setup.tokens_per_step / zoo_seconds if setup.tokens_per_step else None,
        "peer_tokens_per_second": setup.tokens_per_step / peer_seconds if setup.tokens_per_step else None,
        "ratio_zoo_over_peer": peer_seconds / zoo_seconds,
        "shipped_steps_per_loop": args.shipped_steps_per_loop if loop_seconds else None,
        "zoo_loop_step_seconds": loop_seconds,
        "zoo_loop_step_seconds_all": (
            [value / args.shipped_steps_per_loop for value in times["zoo_loop"]] if loop_seconds else None
        ),
        "ratio_zoo_loop_over_peer": peer_seconds / loop_seconds if loop_seconds else None,
        "gflop_per_step": flops_per_step / 1e9,
        "zoo_gflops": flops_per_step / zoo_seconds / 1e9,
        "peer_gflops": flops_per_step / peer_seconds / 1e9,
        "zoo_loop_gflops": flops_per_step / loop_seconds / 1e9 if loop_seconds else None,
    }


def breakdown(setup, args):
    """Where a zoo step's time goes (XLA on): forward without and with dropout, backward, update."""
    x, y = make_batch(setup)
    keras.utils.set_random_seed(0)
    model = zoo.build(setup.zoo_name, **setup.zoo_config)
    model(x, training=False)
    optimizer = create_optimizer(run_config(setup, True), model, total_steps=10**6)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=True)
    def forward(inputs, training):
        return tf.reduce_sum(model(inputs, training=training))

    @tf.function(jit_compile=True)
    def gradients(inputs, labels):
        with tf.GradientTape() as tape:
            mean_loss = tf.reduce_mean(loss(labels, model(inputs, training=True)))
        return tape.gradient(mean_loss, model.trainable_variables)

    @tf.function
    def gradients_only(inputs, labels):
        return tf.add_n([tf.reduce_sum(tf.convert_to_tensor(gradient)) for gradient in gradients(inputs, labels)])

    @tf.function
    def full_step(inputs, labels):  # What a Trainer step does, without the metric sums.
        optimizer.apply_gradients(zip(gradients(inputs, labels), model.trainable_variables))
        return optimizer.iterations

    stages = {
        "forward, inference (no dropout)": lambda: forward(x, False).numpy(),
        "forward, training (dropout)": lambda: forward(x, True).numpy(),
        "forward + backward": lambda: gradients_only(x, y).numpy(),
        "forward + backward + AdamW update": lambda: full_step(x, y).numpy(),
    }
    for stage in stages.values():
        stage()
        stage()
    times = common.alternating_blocks(stages, blocks=args.blocks, calls_per_block=2)
    forward_flops = setup.forward_flops_per_example * setup.batch_size
    flops = [forward_flops, forward_flops, 3 * forward_flops, 3 * forward_flops]
    return [
        {"stage": stage, "seconds": common.median(times[stage]), "gflops": count / common.median(times[stage]) / 1e9}
        for stage, count in zip(stages, flops)
    ]


# ---------------------------------------------------------------- report
def markdown(document) -> str:
    matmul = document["matmul_gflops"]
    loop = document["settings"].get("shipped_steps_per_loop") or "-"
    rows = []
    for row in document["results"]:
        tokens = (
            f"{row['zoo_tokens_per_second']:,.0f} / {row['peer_tokens_per_second']:,.0f}"
            if row["zoo_tokens_per_second"]
            else "-"
        )
        rows.append(
            [
                f"`{row['model']}`",
                "on" if row["jit_compile"] else "off",
                f"{row['zoo_step_seconds'] * 1e3:.0f} / {row['peer_step_seconds'] * 1e3:.0f}",
                f"{row['zoo_examples_per_second']:,.0f} / {row['peer_examples_per_second']:,.0f}",
                tokens,
                f"**{row['ratio_zoo_over_peer']:.2f}x**",
                (
                    f"{row['zoo_loop_step_seconds'] * 1e3:.0f} ms, **{row['ratio_zoo_loop_over_peer']:.2f}x**"
                    if row.get("zoo_loop_step_seconds")
                    else "-"
                ),
                f"{row['gflop_per_step']:.2f}",
                f"{row['zoo_gflops']:.0f} ({row['zoo_gflops'] / matmul['median'] * 100:.0f}%)",
                f"{row['peer_gflops']:.0f} ({row['peer_gflops'] / matmul['median'] * 100:.0f}%)",
            ]
        )
    table = common.markdown_table(
        ["model", "XLA", "ms/step zoo / peer", "examples/s zoo / peer", "tokens/s zoo / peer", "zoo / peer",
         f"zoo at {loop} steps per call: ms/step, zoo / peer", "GFLOP/step", "zoo GFLOP/s (% of matmul)",
         "peer GFLOP/s (% of matmul)"],
        rows,
    )
    sizes = "\n".join(
        f"- `{row['model']}`: {row['description']}; batch {row['batch_size']}"
        + (f", sequence {row['sequence_length']}" if row["sequence_length"] else "")
        + f"; {row['zoo_params']:,} parameters (peer {row['peer_params']:,})"
        for row in document["results"]
        if row["jit_compile"] == document["results"][0]["jit_compile"]
    )
    targets = "\n".join(f"- {line}" for line in document["targets"])
    runs = matmul["runs"]
    if max(runs) > 1.5 * min(runs):
        targets += (
            f"\n- The matmul rate swung from {min(runs):.0f} to {max(runs):.0f} GFLOP/s within this run (other "
            "jobs on the machine): the % of matmul figures and their verdicts above are not reliable."
        )
    breakdowns = ""
    for name, stages in document.get("breakdowns", {}).items():
        rows = [
            [stage["stage"], f"{stage['seconds'] * 1e3:.0f}", f"{stage['gflops']:.0f} ({stage['gflops'] / matmul['median'] * 100:.0f}%)"]
            for stage in stages
        ]
        breakdowns += (
            f"\nWhere a zoo `{name}` step goes, XLA on (each stage a separate jit-compiled function):\n\n"
            + common.markdown_table(["stage", "ms", "GFLOP/s (% of matmul)"], rows)
            + "\n"
        )
    return (
        f"{common.environment_line(document)}\n\n"
        f"fp32 matmul 2048x2048: **{matmul['median']:.0f} GFLOP/s** (median of {len(matmul['runs'])} "
        f"measurements in this run: {', '.join(f'{value:.0f}' for value in matmul['runs'])}).\n"
        f"Per-step medians over {document['settings']['blocks']} alternating blocks, after "
        f"{document['settings']['warmup']} untimed warm-up calls per side; zoo timed through "
        f"`Trainer.train_steps` with steps_per_loop={document['settings']['steps_per_loop']} (one host call "
        "per step, as the peer's `train_on_batch`; the ratio column), and again, in the same blocks, with "
        f"steps_per_loop={loop} (the default of `trainers.run`). XLA on: the peer compiles its whole train "
        "step (`compile(jit_compile=True)`), the zoo Trainer its forward + backward pass, the AdamW update "
        "outside XLA.\n\n"
        f"{table}\n\n{sizes}\n{breakdowns}\nTargets:\n{targets}\n"
    )


def targets(results, matmul):
    lines = []
    for row in results:
        if row["model"].startswith("bert") and row["jit_compile"]:
            met = "met" if row["ratio_zoo_over_peer"] >= TARGET_XLA_RATIO else "NOT met"
            line = (
                f"{row['model']} with XLA: zoo / keras-hub = {row['ratio_zoo_over_peer']:.2f}x at one step per "
                f"host call (target >= {TARGET_XLA_RATIO}x): {met}"
            )
            if row.get("ratio_zoo_loop_over_peer"):
                loop_met = "met" if row["ratio_zoo_loop_over_peer"] >= TARGET_XLA_RATIO else "NOT met"
                line += (
                    f"; {row['ratio_zoo_loop_over_peer']:.2f}x with the zoo at its default "
                    f"{row['shipped_steps_per_loop']} steps per call: {loop_met}"
                )
            lines.append(line)
    for row in results:
        if row["model"] == "bert_mini":
            best = max(row["zoo_gflops"], row.get("zoo_loop_gflops") or 0)
            fraction = best / matmul
            met = "met" if fraction >= TARGET_MATMUL_FRACTION else "NOT met"
            lines.append(
                f"bert_mini train step, XLA {'on' if row['jit_compile'] else 'off'}: {best:.0f} GFLOP/s "
                f"= {fraction * 100:.0f}% of the matmul rate (target >= {TARGET_MATMUL_FRACTION * 100:.0f}%): {met} "
                f"(keras-hub: {row['peer_gflops'] / matmul * 100:.0f}%)"
            )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert_tiny,bert_mini,transformer,gru,lstm,cnn")
    parser.add_argument("--jit", default="off,on", help="off, on, or off,on")
    parser.add_argument("--quick", action="store_true", help="fewer and shorter blocks (about 2 minutes)")
    parser.add_argument("--blocks", type=int, default=None, help="alternating blocks per side (default 5, quick 3)")
    parser.add_argument("--block_seconds", type=float, default=None, help="target length of a block (default 2, quick 1)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls per side (default 3, quick 2)")
    parser.add_argument("--steps_per_loop", type=int, default=1, help="zoo train steps per tf.function call")
    parser.add_argument(
        "--shipped_steps_per_loop", type=int, default=config_lib.TrainConfig().steps_per_loop,
        help="also time the zoo at this many steps per call (default: trainers.run's default; 0 or 1: skip)",
    )
    parser.add_argument("--no_breakdown", action="store_true", help="skip the per-stage timing of the BERT steps")
    common.add_output_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    args.blocks = args.blocks or (3 if args.quick else 5)
    args.block_seconds = args.block_seconds or (1.0 if args.quick else 2.0)
    args.warmup = args.warmup or (2 if args.quick else 3)
    available = setups()
    names = common.selected_models(parser, args.models, available)
    jit_modes = [{"off": False, "on": True}[mode.strip()] for mode in args.jit.split(",")]

    matmul_runs = [common.matmul_gflops()]
    print(f"fp32 matmul 2048x2048: {matmul_runs[0]:.0f} GFLOP/s", flush=True)
    results = []
    for name in names:
        for jit_compile in jit_modes:
            row = measure(available[name], jit_compile, args)
            results.append(row)
            print(
                f"{name:12s} XLA {'on ' if jit_compile else 'off'}  zoo {row['zoo_step_seconds'] * 1e3:7.1f} ms  "
                f"peer {row['peer_step_seconds'] * 1e3:7.1f} ms  zoo/peer {row['ratio_zoo_over_peer']:.2f}x  "
                f"zoo {row['zoo_gflops']:.0f} GFLOP/s",
                flush=True,
            )
        matmul_runs.append(common.matmul_gflops())
    breakdowns = {}
    if not args.no_breakdown:
        for name in names:
            if name.startswith("bert"):
                breakdowns[name] = breakdown(available[name], args)
                print(f"{name} breakdown: " + ", ".join(f"{stage['stage']} {stage['seconds'] * 1e3:.0f} ms" for stage in breakdowns[name]), flush=True)
    matmul = common.median(matmul_runs)
    document = common.new_document(
        NAME,
        settings={key: value for key, value in vars(args).items() if key not in ("no_markdown", "no_breakdown")},
        matmul_gflops={"median": matmul, "runs": matmul_runs},
        results=results,
        breakdowns=breakdowns,
        targets=targets(results, matmul),
    )
    print("\n".join(document["targets"]))
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
