"""SavedModels for TF Serving: raw inputs in, probabilities out, written atomically by version.

The preprocessing that fed training (WordPiece tokenization, packing, pixel casting) is placed
inside the serving graph, so a client sends what it has (`text` strings or `image` pixels) and
TF Serving needs no zoo code. Text models' graphs use core TensorFlow ops plus three
tensorflow-text ops that stock TF Serving has linked since 2.11 (WordPiece, case folding, regex
split; zoo.serving.compatibility checks each export); a Python process that loads them must
`import tensorflow_text` first.

Layout (what `tensorflow_model_server --model_base_path=<export_dir>/<model_name>` reads):

    <export_dir>/<model_name>/1/saved_model.pb
    <export_dir>/<model_name>/1/assets.extra/   # warm-up records, manifest.json, model_card.md
    <export_dir>/<model_name>/2/...             # each export adds the next version
    <export_dir>/models.config, batching.config, monitoring.config, docker-compose.yml  (zoo.serving.bundle)
"""

import logging
import os
import pathlib
import shutil

import keras
import tensorflow as tf

from zoo.serving import bundle, compatibility, model_card, warmup
from zoo.versions import next_version


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


def export_saved_model(
    model, preprocessor, input_spec, *, export_dir, model_name, encoder=None, tflite=False, warmup_inputs=None,
    description=None,
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

    Every version holds `assets.extra/manifest.json` and `model_card.md` (zoo.serving.model_card:
    `description` is what the caller knows of the run: config, metrics, labels, dataset,
    limitations) and, given `warmup_inputs` (dict input name -> numpy array [n, ...] of
    evaluation inputs as a client sends them), TF Serving's warm-up records
    (zoo.serving.warmup). After the rename, `<export_dir>` gets the serving bundle of every
    model there (zoo.serving.bundle).

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
        if warmup_inputs is not None:
            warmup.write_warmup_requests(temporary, warmup_inputs, model_name=model_name)
        manifest = model_card.build_manifest(temporary, model=model, model_name=model_name, description=description)
        model_card.write_model_card(temporary, manifest)
        version_dir = _rename_to_next_version(temporary, model_base)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)  # Only left behind when the export failed.
    try:
        bundle.write_bundle(export_dir)
    except compatibility.IncompatibleError as error:  # The version is served elsewhere, or by a custom build.
        logging.getLogger(__name__).warning("no serving bundle for %s: %s", export_dir, error)
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


def saved_model_size_bytes(version_dir) -> int:
    """Bytes on disk of a SavedModel version directory (graph, variables and assets)."""
    return sum(path.stat().st_size for path in pathlib.Path(version_dir).rglob("*") if path.is_file())
