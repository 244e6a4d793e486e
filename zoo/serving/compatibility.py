"""Which stock TF Serving releases can load a SavedModel: its ops against zoo/serving/ops_table.yaml.

TF Serving registers core TensorFlow's ops and the tensorflow-text ops of the release it pins;
a graph naming any other op fails to load ("Op type not registered"). This module lists the ops
of a SavedModel's graph and function library that core TensorFlow does not define, says which
release introduced each, and which TF Serving releases in the table load them all.
"""

import dataclasses
import functools
import pathlib

import yaml

TABLE_PATH = pathlib.Path(__file__).with_name("ops_table.yaml")
TENSORFLOW_TEXT = "tensorflow-text"
NEWER_CORE = "core TensorFlow after 2.11"
UNKNOWN = "unknown"


class IncompatibleError(ValueError):
    """A requested TF Serving release cannot load the model; the message is one line naming the op."""


@dataclasses.dataclass(frozen=True)
class OpReport:
    """One op of a SavedModel that core TensorFlow 2.11 (the oldest in the table) does not define.

    kind: TENSORFLOW_TEXT, NEWER_CORE or UNKNOWN (neither core TensorFlow nor in the table).
    introduced: the tensorflow-text release that introduced it (None for the other kinds).
    releases: the TF Serving releases in the table that load it, oldest first (empty if none is known).
    """

    name: str
    kind: str
    introduced: str | None
    releases: tuple


def _release_key(release):
    return tuple(int(part) for part in release.split("."))


@functools.cache
def load_table() -> dict:
    """zoo/serving/ops_table.yaml, parsed (its header comment says where each part comes from)."""
    return yaml.safe_load(TABLE_PATH.read_text())


def tf_serving_releases() -> list:
    """Every TF Serving release in the table, oldest first, e.g. ["2.11.0", ..., "2.20.0"]."""
    return sorted(load_table()["tf_serving_releases"], key=_release_key)


def saved_model_ops(version_dir) -> set:
    """The op types of a SavedModel's graphs and their function libraries.

    Calls of library functions (a node whose op is a function's name) are not ops and are left out.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString((pathlib.Path(version_dir) / "saved_model.pb").read_bytes())
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        library = meta_graph.graph_def.library
        functions = {function.signature.name for function in library.function}
        ops |= {node.op for node in meta_graph.graph_def.node}
        for function in library.function:
            ops |= {node.op for node in function.node_def}
        ops -= functions
    return ops


def _report(op) -> OpReport | None:
    """The op's report, or None when every TF Serving release in the table has it (old core ops)."""
    import tensorflow as tf

    table = load_table()
    text_op = table["tensorflow_text_ops"].get(op)
    if text_op is not None:
        releases = tuple(
            release
            for release in tf_serving_releases()
            if _release_key(table["tf_serving_releases"][release]["tensorflow_text"]) >= _release_key(text_op["linked"])
        )
        return OpReport(op, TENSORFLOW_TEXT, text_op["introduced"], releases)
    if op in table["core_ops_added_after_tensorflow_2_11"]:
        return OpReport(op, NEWER_CORE, None, ())
    if hasattr(tf.raw_ops, op):
        return None
    return OpReport(op, UNKNOWN, None, ())


def op_inventory(version_dir) -> list:
    """The `OpReport` of every op of the SavedModel that not every TF Serving release has, by name."""
    reports = (_report(op) for op in sorted(saved_model_ops(version_dir)))
    return [report for report in reports if report is not None]


def loading_releases(reports) -> list:
    """The TF Serving releases in the table that load every op of `reports`, oldest first."""
    return [release for release in tf_serving_releases() if all(release in report.releases for report in reports)]


def resolve_release(requested) -> list:
    """The table's releases that `requested` names: "X.Y" (all its patch releases) or "X.Y.Z".

    Raises:
        IncompatibleError: no release in the table matches (the message lists the accepted ones).
    """
    matches = [release for release in tf_serving_releases() if release == requested or release.startswith(f"{requested}.")]
    if not matches:
        raise IncompatibleError(
            f"--tf_serving={requested} is not a TF Serving release in {TABLE_PATH.name}; "
            f"it knows {', '.join(tf_serving_releases())}"
        )
    return matches


def narrow_releases(reports, candidates, *, model="the model", requested=None) -> list:
    """The releases of `candidates` that load every op of `reports`, oldest first.

    Args:
        requested: the --tf_serving value that `candidates` came from, for the message (None: the table).

    Raises:
        IncompatibleError: none does; one line naming the first op that none of them loads, and
            which releases load it.
    """
    able = [release for release in candidates if all(release in report.releases for report in reports)]
    if able:
        return able
    # Each op's releases are a run of the table up to its newest release, so some op shares none with
    # `candidates`.
    report = next(report for report in reports if not set(report.releases) & set(candidates))
    where = f"TF Serving {requested}" if requested else f"no TF Serving release in {TABLE_PATH.name}"
    who = f"TF Serving {_describe(report.releases)} can" if report.releases else "no release in the table can"
    raise IncompatibleError(
        f"{where} cannot load {model}: op {report.name} ({_origin(report)}) is not registered there; {who}"
    )


def check_release(reports, requested, model="the model") -> str:
    """The newest release named by `requested` ("X.Y" or "X.Y.Z") that loads every op of `reports`.

    Raises:
        IncompatibleError: as `resolve_release` and `narrow_releases`.
    """
    return narrow_releases(reports, resolve_release(requested), model=model, requested=requested)[-1]


def _origin(report) -> str:
    if report.kind == TENSORFLOW_TEXT:
        return f"tensorflow-text {report.introduced}"
    if report.kind == NEWER_CORE:
        return "core TensorFlow, added after 2.11"
    return "neither core TensorFlow nor tensorflow-text"


def _describe(releases) -> str:
    """"2.11.0 to 2.20.0" for a run of consecutive releases of the table, else the list."""
    every = tf_serving_releases()
    if not releases:
        return "none"
    first, last = every.index(releases[0]), every.index(releases[-1])
    if list(releases) == every[first:last + 1] and len(releases) > 1:
        return f"{releases[0]} to {releases[-1]}"
    return ", ".join(releases)


def format_report(version_dir, reports) -> list:
    """The lines `python -m zoo.serving check` prints: one per op, then the releases that load it all."""
    lines = [f"{version_dir}: {len(reports)} op(s) beyond core TensorFlow 2.11"]
    width = max((len(report.name) for report in reports), default=0)
    for report in reports:
        lines.append(f"  {report.name:<{width}}  {_origin(report)}; loaded by TF Serving {_describe(report.releases)}")
    releases = loading_releases(reports)
    if releases:
        lines.append(f"Loads in TF Serving {_describe(releases)} (of {len(tf_serving_releases())} releases in "
                     f"{TABLE_PATH.name}); oldest: {releases[0]}")
    else:
        lines.append(f"No TF Serving release in {TABLE_PATH.name} loads it")
    return lines
