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


def serving_input_spec(input_kind, image_shape=None) -> tf.TensorSpec:
    """The raw input a client sends for a model of `input_kind` (see zoo.registry.INPUT_KINDS).

    Text models take `text`: tf.string [batch]. Image models take `image`: float32
    [batch, height, width, channels] with pixel values 0..255 (JSON numbers convert to it).
    """
    if input_kind == "image":
        return tf.TensorSpec([None, *image_shape], tf.float32, name="image")
    return tf.TensorSpec([None], tf.string, name="text")


def next_version(model_base) -> int:
    """One more than the highest integer version under `model_base` (1 for a new model)."""
    versions = [int(path.name) for path in pathlib.Path(model_base).glob("*") if path.name.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(model, preprocessor, input_spec, *, export_dir, model_name) -> pathlib.Path:
    """Writes `preprocessor` + `model` as the next version of `<export_dir>/<model_name>`.

    The SavedModel's `serving_default` signature maps `input_spec` to
    `probabilities` (float32 [batch, num_classes]) and `class_id` (int64 [batch]).

    The version is written into a temporary directory beside its final place and renamed only
    when complete, so a server watching `<export_dir>/<model_name>` never loads half of it, and an
    existing version is never overwritten.

    Returns:
        The version directory written.
    """
    model_base = pathlib.Path(export_dir) / model_name
    model_base.mkdir(parents=True, exist_ok=True)

    @tf.function(input_signature=[input_spec])
    def serve(raw_inputs):
        logits = model(preprocessor(raw_inputs), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return {"probabilities": probabilities, "class_id": tf.argmax(probabilities, axis=-1)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(preprocessor)
    archive.add_endpoint("serving_default", serve)

    temporary = model_base / f".tmp-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    archive.write_out(str(temporary), verbose=False)
    while True:
        version_dir = model_base / str(next_version(model_base))
        try:
            os.rename(temporary, version_dir)  # Atomic; fails rather than replace a non-empty directory.
            return version_dir
        except OSError:
            if not version_dir.exists():
                raise
            # Another export took this version number between listing and renaming: take the next.
