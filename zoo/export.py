"""SavedModels for TF Serving: raw inputs in, probabilities out, written atomically by version.

The preprocessing that fed training (WordPiece tokenization, packing, pixel casting) is placed
inside the serving graph, so a client sends what it has (`text` strings or `image` pixels) and
TF Serving needs no zoo code. Text models' graphs use tensorflow-text ops, which stock TF Serving
links in; a Python process that loads them must `import tensorflow_text` first.

Layout (what `tensorflow_model_server --model_base_path=<export_dir>/<model_name>` reads):

    <export_dir>/<model_name>/1/saved_model.pb
    <export_dir>/<model_name>/2/...            # each export adds the next version
"""

import os
import pathlib
import shutil

import keras
import tensorflow as tf


def serving_input_spec(input_kind, image_shape=None, text_pair=False):
    """The raw input a client sends for a model of `input_kind` (see zoo.registry.INPUT_KINDS).

    Text models take `text`: tf.string [batch]; BERT on a sentence-pair task (`text_pair`) takes
    `text` and `text_pair`, both tf.string [batch] (a tuple of two specs). Image models take
    `image`: float32 [batch, height, width, channels], pixel values 0..255 (JSON numbers convert).
    """
    if input_kind == "image":
        return tf.TensorSpec([None, *image_shape], tf.float32, name="image")
    text = tf.TensorSpec([None], tf.string, name="text")
    if text_pair:
        if input_kind != "bert":
            raise ValueError(f"sentence pairs need a BERT model (input_kind 'bert'), got {input_kind!r}")
        return text, tf.TensorSpec([None], tf.string, name="text_pair")
    return text


def _checked(raw_inputs, input_spec):
    """`raw_inputs`, with its shape checked when the graph runs.

    A signature's TensorSpec fixes the dtype, but neither TF Serving nor a loaded signature
    enforces its shape: a rank-2 batch of strings would otherwise be tokenized into nonsense.
    """
    return tf.ensure_shape(raw_inputs, input_spec.shape, name=f"check_{input_spec.name}_shape")


def next_version(model_base) -> int:
    """One more than the highest integer version under `model_base` (1 for a new model)."""
    versions = [int(path.name) for path in pathlib.Path(model_base).glob("*") if path.name.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(
    model, preprocessor, input_spec, *, export_dir, model_name, encoder=None, tflite=False
) -> pathlib.Path:
    """Writes `preprocessor` + `model` as the next version of `<export_dir>/<model_name>`.

    Signatures:
        serving_default: `input_spec` (one TensorSpec, or a tuple for `text` + `text_pair`) ->
            `probabilities` (float32 [batch, num_classes]) and `class_id` (int64 [batch]).
        encode (when `encoder` is given, e.g. BERT's `model.encoder`): the same input ->
            `pooled_output` (float32 [batch, hidden_dim]), a sentence embedding.

    A wrong dtype or rank is rejected by the signature itself (INVALID_ARGUMENT); text of any
    length is truncated to the preprocessor's sequence length; any batch size works.

    The version is written into a temporary directory beside its final place and renamed only
    when complete, so a server watching `<export_dir>/<model_name>` never loads half of it, and an
    existing version is never overwritten. With `tflite`, the version directory also holds
    `model.tflite` (the same serving function, for mobile and edge runtimes).

    Returns:
        The version directory written.
    """
    model_base = pathlib.Path(export_dir) / model_name
    model_base.mkdir(parents=True, exist_ok=True)

    input_specs = tuple(input_spec) if isinstance(input_spec, (tuple, list)) else (input_spec,)

    def model_inputs(raw_inputs):
        return preprocessor(*[_checked(raw, spec) for raw, spec in zip(raw_inputs, input_specs)])

    @tf.function(input_signature=input_specs)
    def serve(*raw_inputs):
        logits = model(model_inputs(raw_inputs), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return {"probabilities": probabilities, "class_id": tf.argmax(probabilities, axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(preprocessor)
    archive.add_endpoint("serving_default", serve)
    if encoder is not None:

        @tf.function(input_signature=input_specs)
        def encode(*raw_inputs):
            pooled = encoder(model_inputs(raw_inputs), training=False)["pooled_output"]
            return {"pooled_output": tf.cast(pooled, tf.float32)}

        archive.add_endpoint("encode", encode)

    temporary = model_base / f".tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        archive.write_out(str(temporary), verbose=False)
        if tflite:
            converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], model)
            (temporary / "model.tflite").write_bytes(converter.convert())
        version_dir = _rename_to_next_version(temporary, model_base)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)  # Only left behind when the export failed.
    write_models_config(export_dir)
    return version_dir


def _rename_to_next_version(temporary, model_base) -> pathlib.Path:
    while True:
        version_dir = model_base / str(next_version(model_base))
        try:
            os.rename(temporary, version_dir)  # Atomic; fails rather than replace a non-empty directory.
            return version_dir
        except OSError:
            if not version_dir.exists():
                raise
            # Another export took this version number between listing and renaming: take the next.


def write_models_config(export_dir) -> pathlib.Path:
    """Writes `<export_dir>/models.config` listing every model exported there, for TF Serving.

    `tensorflow_model_server --model_config_file=<export_dir>/models.config` then serves them all,
    each at its highest version. Written to a temporary file and renamed, like the versions.
    """
    export_dir = pathlib.Path(export_dir).resolve()
    models = sorted(
        path for path in export_dir.iterdir() if path.is_dir() and any(child.name.isdigit() for child in path.iterdir())
    )
    entries = "".join(
        f'  config {{\n    name: "{path.name}"\n    base_path: "{path}"\n    model_platform: "tensorflow"\n  }}\n'
        for path in models
    )
    config_path = export_dir / "models.config"
    temporary = export_dir / f".models.config.tmp-{os.getpid()}"
    temporary.write_text(f"model_config_list {{\n{entries}}}\n")
    os.replace(temporary, config_path)
    return config_path


def saved_model_size_bytes(version_dir) -> int:
    """Bytes on disk of a SavedModel version directory (graph, variables and assets)."""
    return sum(path.stat().st_size for path in pathlib.Path(version_dir).rglob("*") if path.is_file())
