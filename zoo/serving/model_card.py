"""What an export is, carried inside it: `assets.extra/manifest.json` and `assets.extra/model_card.md`.

TF Serving ignores `assets.extra/` beyond its warm-up file, so both travel with the version
wherever it is copied. The manifest is for programs (every field below); the card is the same
facts for people. Fields:

    model          name, class, Keras config (the version is the directory's name)
    sizes          bytes of the SavedModel (graph, variables, assets) and of its variables
    parameters     total and trainable counts
    training       the run's config (its data section names the training data) and dataset facts
    metrics        the run's evaluation metrics (its metrics.json), or null when there are none
    packages       python and package versions that wrote the export
    signatures     each signature's inputs and outputs: dtype and shape (-1: any size)
    labels         class names by class id (empty when the dataset has none)
    tf_serving     ops beyond core TensorFlow, the releases that load it, the oldest of them
    limitations    what the model does not do, in sentences
"""

import importlib.metadata
import json
import pathlib
import platform

import yaml

from zoo.atomic import write_text_atomically
from zoo.serving import compatibility

MANIFEST = "manifest.json"
MODEL_CARD = "model_card.md"
PACKAGES = ("tensorflow", "keras", "keras-hub", "tensorflow-text", "zoo")


def package_versions() -> dict:
    """{"python": ..., package: version} for the packages an export depends on (None if absent)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def signatures(version_dir) -> dict:
    """{signature: {"inputs": {name: {"dtype", "shape"}}, "outputs": {...}}} as TF Serving reads them."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString((pathlib.Path(version_dir) / "saved_model.pb").read_bytes())
    meta_graph = next(graph for graph in saved_model.meta_graphs if "serve" in graph.meta_info_def.tags)

    def describe(tensors):
        return {
            name: {"dtype": tf.dtypes.as_dtype(info.dtype).name, "shape": [dim.size for dim in info.tensor_shape.dim]}
            for name, info in sorted(tensors.items())
        }

    return {
        name: {"inputs": describe(signature.inputs), "outputs": describe(signature.outputs)}
        for name, signature in sorted(meta_graph.signature_def.items())
        if not name.startswith("__")  # __saved_model_init_op is not a signature clients call.
    }


def build_manifest(version_dir, *, model, model_name, description=None) -> dict:
    """The manifest of the export in `version_dir` (written, assets.extra aside), as a JSON-able dict.

    Args:
        model: the exported keras.Model.
        model_name: the name it is served under.
        description: what the caller knows about the run, all optional: "config" (the run's
            config as a dict), "metrics" (its evaluation metrics), "labels" (class names),
            "dataset" (dict of facts such as its name and sizes), "limitations" (list of str).
    """
    description = description or {}
    version_dir = pathlib.Path(version_dir)
    files = [path for path in version_dir.rglob("*") if path.is_file() and "assets.extra" not in path.parts]
    reports = compatibility.op_inventory(version_dir)
    releases = compatibility.loading_releases(reports)
    return {
        "model": {
            "name": model_name,
            "class": type(model).__name__,
            "config": _json_safe(model.get_config()),
        },
        "sizes": {
            "saved_model_bytes": sum(path.stat().st_size for path in files),
            "variables_bytes": sum(path.stat().st_size for path in files if "variables" in path.parts),
        },
        "parameters": {
            "total": int(model.count_params()),
            "trainable": int(sum(int(weight.numpy().size) for weight in model.trainable_weights)),
        },
        "training": {"config": description.get("config"), "dataset": description.get("dataset")},
        "metrics": description.get("metrics"),
        "packages": package_versions(),
        "signatures": signatures(version_dir),
        "labels": list(description.get("labels") or []),
        "tf_serving": {
            "non_core_ops": [
                {"op": report.name, "kind": report.kind, "introduced": report.introduced} for report in reports
            ],
            "releases": releases,
            "oldest": releases[0] if releases else None,
            "table": compatibility.TABLE_PATH.name,
        },
        "limitations": list(description.get("limitations") or []),
    }


def _json_safe(value):
    """`value` with tuples as lists, NumPy scalars as numbers, anything else JSON cannot hold as its repr."""
    return json.loads(json.dumps(value, default=lambda item: item.item() if hasattr(item, "item") else repr(item)))


def run_description(model_dir, *, modality, labels, num_train_examples, metrics=None) -> dict:
    """What a `trainers.run` run in `model_dir` tells of an export: the `description` of `build_manifest`.

    Reads `model_dir/config.yaml` (the resolved config) and, unless `metrics` is given (an int8
    copy's own), `model_dir/metrics.json`. Either may be missing (a run not yet evaluated).

    Args:
        modality: "text" or "image".
        labels: class names by class id.
        num_train_examples: int. Examples in the training split.
    """
    model_dir = pathlib.Path(model_dir)
    config_path, metrics_path = model_dir / "config.yaml", model_dir / "metrics.json"
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else None
    if metrics is None and metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
    data = (config or {}).get("data", {})
    source = data.get("dataset") if not data.get("train_files") else f"{data['train_files']} (eval: {data.get('eval_files')})"
    limitations = [
        f"Evaluated only on the evaluation split of {source}; accuracy on other data (domains, "
        "languages, lengths, distributions) is not measured.",
        "The probabilities are a softmax, not calibrated; the model has not been checked for bias.",
    ]
    if modality == "text":
        limitations.insert(0, f"Reads at most {data.get('sequence_length')} WordPiece tokens of a text (or of a pair, "
                              "shared in turn); the rest is cut. Words outside the learned vocabulary fall apart "
                              "into pieces or [UNK].")
    return {
        "config": _json_safe(config),
        "metrics": _json_safe(metrics),
        "labels": list(labels),
        "dataset": {"source": source, "train_examples": num_train_examples},
        "limitations": limitations,
    }


def serving_summary(manifest) -> str:
    """One line for the export log: the TF Serving releases that load the export, and the oldest."""
    serving = manifest["tf_serving"]
    if not serving["oldest"]:
        return f"no TF Serving release in zoo/serving/{serving['table']} loads it (python -m zoo.serving check)"
    return (f"loads in TF Serving {serving['releases'][0]} to {serving['releases'][-1]} "
            f"(oldest release that loads it: {serving['oldest']})")


def render_card(manifest) -> str:
    """model_card.md: the manifest's facts as Markdown."""
    model, sizes, parameters = manifest["model"], manifest["sizes"], manifest["parameters"]
    serving = manifest["tf_serving"]
    lines = [
        f"# {model['name']}",
        "",
        f"`{model['class']}`, {parameters['total']:,} parameters ({parameters['trainable']:,} trainable); "
        f"SavedModel {sizes['saved_model_bytes'] / 1e6:.2f} MB, of which variables {sizes['variables_bytes'] / 1e6:.2f} MB.",
        "",
        "## Signatures",
        "",
        "| signature | inputs | outputs |",
        "|-----------|--------|---------|",
    ]
    for name, signature in manifest["signatures"].items():
        lines.append(f"| `{name}` | {_tensors(signature['inputs'])} | {_tensors(signature['outputs'])} |")
    lines += ["", "## Labels", ""]
    lines += [f"{class_id}. {label}" for class_id, label in enumerate(manifest["labels"])] or ["(none: class ids only)"]
    lines += ["", "## Training", ""]
    dataset = manifest["training"]["dataset"] or {}
    lines += [f"- {key}: {value}" for key, value in dataset.items()] or ["- dataset: not recorded"]
    config = manifest["training"]["config"]
    if config:
        lines += ["", "Config (as `--config` reads it):", "", "```yaml", yaml.safe_dump(config, sort_keys=False).rstrip(), "```"]
    lines += ["", "## Evaluation", ""]
    metrics = manifest["metrics"]
    if metrics:
        lines += ["| metric | value |", "|--------|-------|"]
        lines += [f"| {name} | {value:.4f} |" if isinstance(value, float) else f"| {name} | {value} |"
                  for name, value in metrics.items()]
    else:
        lines.append("No evaluation metrics were recorded for this export.")
    lines += ["", "## TF Serving", ""]
    ops = ", ".join(f"`{op['op']}`" for op in serving["non_core_ops"]) or "none"
    if serving["oldest"]:
        lines.append(f"Loads in TF Serving {', '.join(serving['releases'])}; oldest: **{serving['oldest']}** "
                     f"(ops beyond core TensorFlow: {ops}; table: zoo/serving/{serving['table']}).")
    else:
        lines.append(f"No TF Serving release in zoo/serving/{serving['table']} loads it (ops: {ops}).")
    lines += ["", "## Limitations", ""]
    lines += [f"- {limitation}" for limitation in manifest["limitations"]] or ["- None recorded."]
    lines += ["", "## Packages", ""]
    lines.append(", ".join(f"{name} {version}" for name, version in manifest["packages"].items()))
    return "\n".join(lines) + "\n"


def _tensors(tensors) -> str:
    return ", ".join(f"`{name}` {info['dtype']} {info['shape']}" for name, info in tensors.items())


def write_model_card(version_dir, manifest):
    """Writes `assets.extra/manifest.json` and `assets.extra/model_card.md` (each atomically)."""
    extra = pathlib.Path(version_dir) / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    write_text_atomically(extra / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    write_text_atomically(extra / MODEL_CARD, render_card(manifest))


def read_manifest(version_dir) -> dict:
    """The manifest of an export (a version directory)."""
    return json.loads((pathlib.Path(version_dir) / "assets.extra" / MANIFEST).read_text())
