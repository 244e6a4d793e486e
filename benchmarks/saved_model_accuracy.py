"""Scores an exported SavedModel on a real eval split, in a process that imports no zoo code.

    python -m benchmarks.saved_model_accuracy EXPORT_VERSION_DIR sst2_local|mnist_local

Prints one JSON line, {"accuracy": ..., "num_examples": ...}. What TF Serving would answer: the
raw eval inputs (SST-2 dev sentences as strings, MNIST test images as pixels 0..255) go through
the `serving_default` signature, preprocessing included, and its `class_id` is compared with the
labels read straight from the source files, not through the zoo's tfds builders. Only TensorFlow
and tensorflow_text (whose ops the in-graph tokenizer uses) are imported.

`benchmarks.accuracy` runs it after each training run, and a test runs it after a small one: an
export that scores otherwise than the trainer's evaluation reported is a bug.
"""

import gzip
import json
import os
import pathlib
import sys

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer's ops the SavedModel holds)

BATCH_SIZE = 256


def shared_data_dir() -> pathlib.Path:
    """Where the real data lives: as `zoo.data.local.shared_data_dir` finds it, without importing zoo."""
    configured = os.environ.get("ZOO_SHARED_DATA")
    return pathlib.Path(configured) if configured else pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


def sst2_dev():
    """(sentences: object array [872] of str, labels: int array [872]) from `sst2/dev.tsv`."""
    lines = (shared_data_dir() / "sst2" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]  # Header first.
    rows = [line.rsplit("\t", 1) for line in lines if line]
    return np.array([sentence for sentence, _ in rows], dtype=object), np.array([int(label) for _, label in rows])


def mnist_test():
    """(images: float32 [10000, 28, 28, 1] of 0..255, labels: int array [10000]) from the IDX files."""
    folder = shared_data_dir() / "mnist"
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz") as file:
        images = np.frombuffer(file.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)  # 16-byte IDX header.
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz") as file:
        labels = np.frombuffer(file.read(), np.uint8, offset=8)  # 8-byte IDX header.
    return images.astype(np.float32), labels.astype(np.int64)


EVAL_SPLITS = {"sst2_local": sst2_dev, "mnist_local": mnist_test}


def saved_model_accuracy(version_dir, dataset) -> dict:
    inputs, labels = EVAL_SPLITS[dataset]()
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    (input_name,) = serve.structured_input_signature[1]  # `text` or `image`.
    predictions = np.concatenate(
        [serve(**{input_name: tf.constant(inputs[start:start + BATCH_SIZE])})["class_id"].numpy()
         for start in range(0, len(labels), BATCH_SIZE)]
    )
    return {"accuracy": float(np.mean(predictions == labels)), "num_examples": int(len(labels))}


if __name__ == "__main__":
    print(json.dumps(saved_model_accuracy(sys.argv[1], sys.argv[2])))
