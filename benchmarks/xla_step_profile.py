"""Where an XLA train step's time goes, by stage and layer: the zoo's BERT step beside keras-hub's.

    python -m benchmarks.xla_step_profile                   # bert_tiny and bert_mini (~5 min)
    python -m benchmarks.xla_step_profile --models=bert_mini

XLA compiles a train step into one executable of a few hundred "thunks" (a matmul, a fused loop,
a random-number call) that the CPU's threads run, several at a time where the step's data flow
allows. TensorFlow's profiler records every thunk's start and duration; the HLO module XLA dumps
says which TensorFlow op each thunk came from (its `op_name` metadata, e.g.
`gradient_tape/.../self_attention_layer/dropout/...`). This benchmark records a few steps of the
zoo `Trainer` (built as `benchmarks.bert_step_variants` builds it: whole step in XLA, the zoo's
dropout) and of keras-hub's `BertClassifier.train_on_batch` (XLA), each in its own profiling
session, and sums the thunks' durations per step by:

- stage: forward, backward (`gradient_tape/`), the optimizer's update;
- part: attention projections, attention scores and context (the two batched matmuls), softmax,
  dropout's mask draws (the random-number calls), the rest of dropout (applying the masks),
  feed-forward, layer norm, embeddings, and the rest (loss, head, pooler).

The zoo's dropout draws each mask again in the backward pass (`zoo.layers.dropout.redrawn_dropout`);
that draw keeps its forward op's name, so both draws count as "forward / dropout: drawing masks".

The sums are thread time: two threads run thunks at once ("busy": all thunks' time / (wall time x
cores)). They do not say which thunks sit on the step's critical path: threefry's mask bits take
about a tenth of bert_mini's thread time, yet removing them does not shorten the step
(`benchmarks.bert_step_variants`), for they run while the other thread is in a matmul.
"""

import argparse
import collections
import glob
import os
import re
import tempfile

from benchmarks import common

DUMP_DIRECTORY = tempfile.mkdtemp(prefix="xla_step_profile_")
# Before TensorFlow starts: XLA reads its flags once. Each compiled module's optimized HLO is
# written as text (with its metadata) into DUMP_DIRECTORY.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={DUMP_DIRECTORY} --xla_dump_hlo_as_text"
common.quiet_tensorflow()

import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from benchmarks.bert_step_variants import VARIANTS, trainer_step  # noqa: E402
from benchmarks.train_throughput import make_batch, peer_step, setups  # noqa: E402

NAME = "xla_step_profile"
PEER = "keras-hub"
ZOO = "zoo as shipped"
# Column -> the `benchmarks.bert_step_variants` variant profiled as it.
ZOO_SIDES = {
    ZOO: "zoo Trainer as shipped: whole step in XLA, threefry dropout, masks drawn again in the backward pass",
    "zoo, hashed words for the masks (not shipped)": "zoo Trainer, hashed words for the masks (not shipped)",
    "zoo, no dropout (ceiling)": "zoo Trainer as shipped, no dropout (ceiling)",
}
STAGES = ("forward", "backward", "update")
# Part of the model an op belongs to: the first pattern its op_name (or op type) matches, in order.
# Names come as TensorFlow scopes ("self_attention_layer_1/query_1/...") or, for reductions, as
# the reducer's name with underscores for slashes: the patterns accept both.
PARTS = [
    ("dropout: drawing masks", r"StatelessRandom|RandomUniform|RngBitGenerator"),
    ("dropout: applying masks", r"dropout"),
    ("attention softmax", r"self_attention_layer.*softmax"),
    ("attention projections", r"self_attention_layer(?:_\d+)*[/_](?:query|key|value|attention_output)"),
    ("attention scores and context", r"self_attention_layer"),
    ("feed-forward", r"feedforward_(?:intermediate|output)_dense"),
    ("layer norm", r"layer_norm"),
    ("embeddings", r"embedding|UnsortedSegmentSum"),
]
# The optimizer's ops: AdamW (the zoo's `LayerwiseDecayAdamW` on both sides) and its gradient clipping.
UPDATE = r"adam|global_norm|clip_by"
# Ops the gradient makes outside `gradient_tape/` scopes: sums of a tensor's gradients from its
# several consumers, and the embedding table's gradient rows summed by token id.
BACKWARD_OP_TYPES = ("AddN", "UnsortedSegmentSum")
OTHER = "the rest (loss, pooler, head, gradient sums)"
# Thunk events that are not computations of the module but the executor's own bookkeeping.
BOOKKEEPING = re.compile(r"^(ThunkExecutor|SlinkyThreadPool|end: )")


def read_hlo_metadata(path) -> dict:
    """Instruction name -> (op_type, op_name) of an optimized HLO text dump.

    A fusion or call carries no metadata of its own: it takes that of the first instruction with
    any in the computation it calls, else that computation's reducer's name (XLA names a layer
    norm's reductions after their TensorFlow scope). What has neither and makes uint32 words of
    rank 2 or more is a mask's random bits (threefry's expansion of the key into words).
    """
    own, calls, first_in_computation = {}, {}, {}
    computation = None
    for line in open(path):
        if line.startswith("%") or line.startswith("ENTRY"):
            computation = line.split()[1 if line.startswith("ENTRY") else 0].lstrip("%")
            continue
        match = re.match(r"^\s*(?:ROOT )?%([\w.\-]+) = (?:(\w+)\[([\d,]*)\])?", line)
        if not match:
            continue
        name, dtype, dimensions = match.groups()
        metadata = re.search(r'metadata=\{op_type="([^"]*)" op_name="([^"]*)"', line)
        called = re.search(r"(calls|to_apply)=%([\w.\-]+)", line)
        if metadata:
            own[name] = metadata.groups()
            first_in_computation.setdefault(computation, own[name])
        elif called and called.group(1) == "to_apply":  # A reducer: its name holds the scope.
            first_in_computation.setdefault(computation, ("", called.group(2)))
        if not metadata and called:
            calls[name] = called.group(2)
        if not metadata and dtype == "u32" and dimensions and dimensions.count(",") >= 1:
            own.setdefault(name, ("RngBitGenerator", "random bits"))
    resolved = dict(own)
    for name, callee in calls.items():
        resolved.setdefault(name, first_in_computation.get(callee, ("", "")))
    return resolved


def thunk_seconds(logdir) -> dict:
    """Thunk name -> total seconds over the profiled steps, on every CPU thread."""
    (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
    space = xplane_pb2.XSpace()
    space.ParseFromString(open(path, "rb").read())
    totals = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if not BOOKKEEPING.match(name):
                    totals[name] += event.duration_ps * 1e-12
    return totals


def module_for(thunks, modules) -> dict:
    """The metadata of the dumped module whose instructions best cover the profiled thunk names."""
    return max(modules, key=lambda metadata: sum(name in metadata for name in thunks))


def classify(op_type, op_name) -> tuple[str, str]:
    """(stage, part) of an op, from its TensorFlow type and name."""
    lowered = op_name.lower()
    if re.search(UPDATE, lowered):
        stage = "update"
    elif "gradient_tape" in lowered or op_type in BACKWARD_OP_TYPES:
        stage = "backward"
    else:
        stage = "forward"
    text = f"{op_type} {op_name}"
    for part, pattern in PARTS:
        if re.search(pattern, text):
            return stage, part
    return stage, OTHER


def profile_side(step, steps) -> tuple[dict, float]:
    """Thunk seconds per step and the median wall seconds of a step, over `steps` profiled calls of `step`."""
    logdir = tempfile.mkdtemp(prefix="xla_step_profile_trace_")
    tf.profiler.experimental.start(logdir)
    wall = common.alternating_blocks({"side": step}, blocks=1, calls_per_block=steps)["side"]
    tf.profiler.experimental.stop()
    return {name: seconds / steps for name, seconds in thunk_seconds(logdir).items()}, common.median(wall)


def breakdown(thunks, metadata) -> dict:
    """'stage / part' -> thread seconds per step (thunks outside the module, e.g. TensorFlow's own ops, left out)."""
    sums = collections.Counter()
    for name, seconds in thunks.items():
        if name in metadata:
            stage, part = classify(*metadata[name])
            sums[f"{stage} / {part}"] += seconds
    return dict(sums)


def markdown(document) -> str:
    text = f"{common.environment_line(document)}\n\n"
    for model in document["models"]:
        sides = model["sides"]
        keys = sorted({key for side in sides.values() for key in side["thread_seconds"]},
                      key=lambda key: (STAGES.index(key.split(" / ")[0]), -sides[ZOO]["thread_seconds"].get(key, 0)))
        rows = [[key, *(f"{side['thread_seconds'].get(key, 0) * 1e3:.1f}" for side in sides.values())] for key in keys]
        rows.append(["**all thunks**", *(f"**{sum(side['thread_seconds'].values()) * 1e3:.1f}**" for side in sides.values())])
        rows.append(["step wall time (busy: all thunks / (wall time x cores))",
                     *(f"{side['wall_seconds'] * 1e3:.1f} ({side['busy']:.0%} of {side['cores']})" for side in sides.values())])
        text += (f"`{model['model']}` (batch 32 x 128, XLA on both sides), thread ms per step:\n\n"
                 + common.markdown_table(["stage / part", *sides], rows) + "\n\n")
    return text + (f"Each side profiled over {document['settings']['steps']} steps after 3 untimed ones, one side after "
                   "the other (its wall time is not a ratio measured in alternating blocks: "
                   "`benchmarks.bert_step_variants` gives those); thunk durations from TensorFlow's profiler, "
                   "attributed by the optimized HLO's op metadata.\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.xla_step_profile", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert_tiny,bert_mini")
    parser.add_argument("--steps", type=int, default=4)
    common.add_output_flags(parser)
    args = parser.parse_args(argv)
    if args.markdown_from:
        return common.markdown_from(NAME, markdown, args.markdown_from)
    available = setups()
    models = []
    for name in args.models.split(","):
        setup = available[name.strip()]
        batch = make_batch(setup)
        with tempfile.TemporaryDirectory() as model_dir:
            makers = {PEER: lambda: peer_step(setup, batch, True)[0]}
            for index, (side, variant) in enumerate(ZOO_SIDES.items()):
                makers[side] = lambda index=index, variant=variant: trainer_step(
                    setup, batch, f"{model_dir}/{index}", *VARIANTS[variant])
            sides = {}
            for side, make in makers.items():
                dumped = set(glob.glob(f"{DUMP_DIRECTORY}/*after_optimizations.txt"))
                step = make()
                for _ in range(3):  # Compiled on the first call: its modules are the new dumps.
                    step()
                modules = [read_hlo_metadata(path)
                           for path in set(glob.glob(f"{DUMP_DIRECTORY}/*after_optimizations.txt")) - dumped]
                thunks, wall = profile_side(step, args.steps)
                seconds = breakdown(thunks, module_for(thunks, modules))
                sides[side] = {"thread_seconds": seconds, "wall_seconds": wall, "cores": os.cpu_count(),
                               "busy": sum(seconds.values()) / (wall * os.cpu_count())}
                print(f"{setup.name} {side}: {wall * 1e3:.1f} ms a step, {sum(seconds.values()) * 1e3:.1f} thread ms", flush=True)
        models.append({"model": setup.name, "sides": sides})
    document = common.new_document(NAME, settings=vars(args), models=models)
    common.publish(document, markdown, write_markdown=not args.no_markdown)


if __name__ == "__main__":
    main()
