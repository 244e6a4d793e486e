"""TF Serving warm-up records: `assets.extra/tf_serving_warmup_requests` in every export.

TF Serving replays these `PredictionLog` records (a TFRecord file) when it loads a version and
only then marks it AVAILABLE, so the first client requests do not pay for graph optimization and
the first runs of each kernel. A file of more than 1000 records fails the load. The records here
are built from evaluation inputs: one example at batch 1 and `LARGE_BATCH` examples at once,
each with the shortest and with the longest inputs (a text request is padded to its longest
text, so these are the extreme shapes a request takes).
"""

import pathlib

import numpy as np

from zoo.atomic import write_atomically

WARMUP_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # More fails the load (TF Serving's saved_model_warmup_util.h, kMaxNumRecords).
# The largest batch a warm-up request holds; also batching.config's max_batch_size (zoo.serving.bundle),
# so the warm-up covers the largest batch the server forms.
LARGE_BATCH = 32


def _by_length(raw_inputs):
    """Row indices of `raw_inputs` (dict name -> array [n, ...]) from shortest to longest text.

    Images (numbers) all have one shape: their order is kept.
    """
    first = next(iter(raw_inputs.values()))
    if first.dtype.kind not in "OSU":
        return np.arange(len(first))
    lengths = sum(np.array([len(text) for text in values]) for values in raw_inputs.values())
    return np.argsort(lengths, kind="stable")


def warmup_batches(raw_inputs):
    """The inputs of each warm-up request: dicts name -> array [batch, ...].

    Args:
        raw_inputs: dict input name -> numpy array [n, ...] of evaluation inputs as a client sends
            them (`text`: strings, `text_pair`: strings, `image`: float32 pixels), n >= 1.

    Returns:
        Four batches: the shortest and the longest example alone, then the `LARGE_BATCH` shortest
        and the `LARGE_BATCH` longest together (fewer when n is smaller).
    """
    order = _by_length(raw_inputs)
    large = min(LARGE_BATCH, len(order))
    selections = [order[:1], order[-1:], order[:large], order[-large:]]
    return [{name: values[rows] for name, values in raw_inputs.items()} for rows in selections]


def prediction_logs(raw_inputs, *, model_name, signature_name="serving_default"):
    """The warm-up `PredictionLog` protos (tensorflow-serving-api) for `warmup_batches(raw_inputs)`."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    logs = []
    for batch in warmup_batches(raw_inputs):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature_name
        for name, values in batch.items():
            dtype = tf.string if values.dtype.kind in "OSU" else tf.float32
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values.tolist(), dtype))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs[:MAX_RECORDS]


def write_warmup_requests(version_dir, raw_inputs, *, model_name) -> pathlib.Path:
    """Writes `version_dir/assets.extra/tf_serving_warmup_requests` (atomically) and returns its path."""
    import tensorflow as tf

    path = pathlib.Path(version_dir) / "assets.extra" / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(temporary):
        with tf.io.TFRecordWriter(str(temporary)) as writer:
            for log in prediction_logs(raw_inputs, model_name=model_name):
                writer.write(log.SerializeToString())

    write_atomically(path, write)
    return path


def read_warmup_requests(version_dir) -> list:
    """The `PredictRequest`s of a version's warm-up file, in order."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = pathlib.Path(version_dir) / "assets.extra" / WARMUP_FILE
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        for record in tf.data.TFRecordDataset(str(path))
    ]
