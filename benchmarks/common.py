"""What every benchmark shares: the machine's description, timing, result files, BENCHMARKS.md.

Timing follows docs/keras_tf_behaviour.md section 11: absolute speeds on a shared 2-core machine drift
between runs, so a comparison is measured in one process, per step (never whole `fit` calls), in
blocks that alternate between the two sides, and reported as medians and their ratio.
"""

import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import re
import shlex
import statistics
import sys
import time

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent
RESULTS_DIR = REPOSITORY / "benchmarks" / "results"
BENCHMARKS_MD = REPOSITORY / "BENCHMARKS.md"
PACKAGES = ["tensorflow", "keras", "keras-hub", "tensorflow-text", "tensorflow-datasets", "numpy"]


# Every benchmark imports this module first and writes its document last: the load before it ran
# is the one that says whether other jobs shared the machine, not the load its own runs made.
LOAD_AVERAGE_AT_IMPORT = os.getloadavg()


def machine() -> dict:
    """CPU model, cores this process may use, vector extensions, memory and load at the start."""
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text() if pathlib.Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    flags = set(flags.group(1).split()) if flags else set()
    meminfo = pathlib.Path("/proc/meminfo")
    memory = re.search(r"MemTotal:\s*(\d+) kB", meminfo.read_text()) if meminfo.exists() else None
    return {
        "cpu": model.group(1).strip() if model else platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "vector_extensions": sorted(flags & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}),
        "memory_gib": round(int(memory.group(1)) / 2**20, 1) if memory else None,
        "load_average_at_start": [round(value, 2) for value in LOAD_AVERAGE_AT_IMPORT],
        "gpu": "none",
    }


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def command_line() -> str:
    """How this benchmark was started, as a user would type it."""
    module = sys.modules["__main__"].__spec__.name if getattr(sys.modules["__main__"], "__spec__", None) else sys.argv[0]
    return "python -m " + shlex.join([module, *sys.argv[1:]])  # Quoted: it pastes back into a shell.


def new_document(name, **fields) -> dict:
    return {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
        "machine": machine(),
        "versions": versions(),
        **fields,
    }


def result_path(document) -> pathlib.Path:
    """`benchmarks/results/<benchmark>/<UTC timestamp>.json`, where a run's result is saved (a figure
    drawn from it lies beside it, under the same name)."""
    stamp = document["date"].replace(":", "").replace("-", "").replace("+0000", "Z")
    return RESULTS_DIR / document["benchmark"] / f"{stamp}.json"


def save_result(document) -> pathlib.Path:
    """Writes the run's result JSON at `result_path(document)`."""
    path = result_path(document)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def environment_line(document) -> str:
    """One line saying when, where and with what a result was measured."""
    machine_info, found = document["machine"], document["versions"]
    packages = ", ".join(f"{name} {version}" for name, version in found.items() if version)
    load = " / ".join(f"{value:g}" for value in machine_info["load_average_at_start"])
    return (
        f"Measured {document['date'][:16].replace('T', ' ')} UTC on {machine_info['cpu']}, "
        f"{machine_info['cores']} cores ({', '.join(machine_info['vector_extensions']) or 'no AVX2'}), "
        f"{machine_info['memory_gib']} GiB, no GPU; load average at start {load}. {packages}. "
        f"Command: `{document['command']}`."
    )


def write_section(name, markdown):
    """Replaces BENCHMARKS.md's section between `<!-- BEGIN name -->` and `<!-- END name -->`.

    The text around the sections (written by hand) is kept; a missing section is appended.
    """
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    if begin in text and end in text:
        start, stop = text.index(begin), text.index(end) + len(end)
        text = text[:start] + block + text[stop:]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    BENCHMARKS_MD.write_text(text)


def publish(document, markdown, write_markdown=True) -> pathlib.Path:
    """Saves a run's result JSON and, unless told not to, rewrites its BENCHMARKS.md section."""
    path = save_result(document)
    print(f"Result: {path}")
    if write_markdown:
        write_section(document["benchmark"], markdown(document))
        print(f"Updated {BENCHMARKS_MD}")
    return path


def add_trainer_run_flags(parser):
    """The flags of a benchmark whose figures come from `python -m trainers.run` processes."""
    parser.add_argument("--data_dir", default=None, help="tfds data_dir (default: tfds' own, ~/tensorflow_datasets)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed per run")
    add_output_flags(parser)


def selected_models(parser, text, known):
    """The names in `--models` ("a,b"), each one of `known`; anything else is a usage error."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; choose from {', '.join(known)}")
    return names


def add_output_flags(parser):
    """--no_markdown (measure, leave BENCHMARKS.md alone) and --markdown_from (measure nothing)."""
    parser.add_argument("--no_markdown", action="store_true", help="do not rewrite BENCHMARKS.md")
    parser.add_argument(
        "--markdown_from", default=None, metavar="JSON",
        help="measure nothing: rewrite this benchmark's BENCHMARKS.md section from a saved result "
        "(a path, or 'latest' for the newest file in benchmarks/results/<name>/)",
    )


def load_result(name, source) -> dict:
    """A saved result JSON of benchmark `name`: the file `source`, or the newest one for `latest`."""
    if source == "latest":
        saved = sorted((RESULTS_DIR / name).glob("*.json"))
        if not saved:
            raise SystemExit(f"no saved result in {RESULTS_DIR / name}")
        source = saved[-1]
    document = json.loads(pathlib.Path(source).read_text())
    if document.get("benchmark") != name:
        raise SystemExit(f"{source} is a {document.get('benchmark')!r} result, not {name!r}")
    return document


def markdown_from(name, markdown, source):
    """Rewrites BENCHMARKS.md's section `name` from a saved result JSON (`latest`: the newest one)."""
    write_section(name, markdown(load_result(name, source)))
    print(f"Updated {BENCHMARKS_MD} from {source}")


def accuracy_cell(result) -> str:
    """An accuracy as BENCHMARKS.md shows it: bold, and with several seeds (`seed_accuracies`) their
    mean (`accuracy`) with each seed and the range beside it."""
    seeds = result.get("seed_accuracies", [result["accuracy"]])
    if len(seeds) == 1:
        return f"**{result['accuracy'] * 100:.1f}%**"
    return (f"**{result['accuracy'] * 100:.1f}%** (seeds {' / '.join(f'{seed * 100:.1f}' for seed in seeds)}, "
            f"range {(max(seeds) - min(seeds)) * 100:.1f})")


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values):
    return statistics.median(values)


def percentile(values, fraction):
    """The `fraction` quantile (0..1) by linear interpolation, as numpy's default."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def alternating_blocks(sides, *, blocks, calls_per_block):
    """Times `sides` (name -> callable doing one synchronous call) in alternating blocks.

    Block b runs `calls_per_block` calls of every side (an int, or a dict name -> int), in the
    listed order for even b and in reverse for odd b, so a slow spell of the shared machine hits
    both sides alike.

    Returns:
        name -> list of seconds, one per call.
    """
    names = list(sides)
    times = {name: [] for name in names}
    for block in range(blocks):
        for name in names if block % 2 == 0 else reversed(names):
            count = calls_per_block[name] if isinstance(calls_per_block, dict) else calls_per_block
            for _ in range(count):
                started = time.perf_counter()
                sides[name]()
                times[name].append(time.perf_counter() - started)
    return times


def matmul_gflops(shape=(2048, 2048, 2048), repeats=8, dtype="float32") -> float:
    """The machine's matmul rate: median GFLOP/s of `tf.matmul` of [m, k] x [k, n] operands of
    `dtype`, `shape` = (m, k, n)."""
    import tensorflow as tf

    rows, inner, columns = shape
    a = tf.cast(tf.random.stateless_normal([rows, inner], seed=[1, 2]), dtype)
    b = tf.cast(tf.random.stateless_normal([inner, columns], seed=[3, 4]), dtype)
    # The sum makes it synchronous.
    matmul = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
    for _ in range(3):  # Tracing, thread pool start-up, clock ramp-up.
        matmul(a, b).numpy()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        matmul(a, b).numpy()
        seconds.append(time.perf_counter() - started)
    return 2 * rows * inner * columns / median(seconds) / 1e9


def quiet_tensorflow():
    """Hides TensorFlow's C++ info logs; call before importing it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
