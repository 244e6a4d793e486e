"""Ask an exported zoo model for answers: over TF Serving's REST or gRPC API, or from a local SavedModel.

All three return the same structure: a list of {"probabilities": [...], "class_id": int}, one per
instance, and fail with a one-line `ServingError` (refused, unknown model, bad input).
"""

import json
import pathlib
import urllib.error
import urllib.request

from zoo.versions import version_dirs


class ServingError(RuntimeError):
    """The server could not be reached or refused the request; the message is one line."""


def predict_rest(url, model_name, instances, timeout=30.0):
    """POSTs `{"instances": instances}` to `<url>/v1/models/<model_name>:predict` (TF Serving REST).

    Args:
        url: str. The server's REST address, e.g. "http://localhost:8501"; without a scheme
            ("localhost:8501", as curl takes it) http:// is meant.
        model_name: str. The name TF Serving serves the model under.
        instances: list. Raw inputs: strings for text models, nested lists of pixels for images.

    Returns:
        The server's "predictions": a list of {"probabilities": [...], "class_id": int}.
    """
    if "://" not in url:
        url = f"http://{url}"
    endpoint = f"{url.rstrip('/')}/v1/models/{model_name}:predict"
    request = urllib.request.Request(
        endpoint,
        data=json.dumps({"instances": list(instances)}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())["predictions"]
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        try:
            message = json.loads(body)["error"]
        except (ValueError, KeyError):
            message = body.strip() or error.reason
        raise ServingError(f"{endpoint} answered HTTP {error.code}: {message}".splitlines()[0]) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServingError(f"cannot reach {endpoint}: {reason}") from None


def predict_grpc(address, model_name, instances, *, input_name="text", signature_name="serving_default",
                 timeout=30.0):
    """Calls TF Serving's gRPC `PredictionService.Predict` (tensorflow-serving-api's protos).

    Args:
        address: str. The server's gRPC address, "HOST:PORT" (TF Serving listens on 8500).
        model_name: str. The name TF Serving serves the model under.
        instances: list. Raw inputs: strings for text models (sent as tf.string [batch]), nested
            lists of pixels for images (sent as float32 [batch, H, W, C]).
        input_name: str. The signature's input: "text" or "image" (zoo.export.serving_input_spec).

    Returns:
        A list of {"probabilities": [...], "class_id": int}, as `predict_rest` returns it.
    """
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    is_text = all(isinstance(instance, str) for instance in instances)
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(list(instances), tf.string if is_text else tf.float32))
    try:
        with grpc.insecure_channel(address) as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)
    except grpc.RpcError as error:
        details = next(iter((error.details() or "").splitlines()), "")
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            raise ServingError(f"cannot reach {address} (gRPC): {details}") from None
        raise ServingError(f"{address} answered {error.code().name}: {details}") from None
    probabilities = tf.make_ndarray(response.outputs["probabilities"])
    class_ids = tf.make_ndarray(response.outputs["class_id"])
    return [
        {"probabilities": row.tolist(), "class_id": int(class_id)} for row, class_id in zip(probabilities, class_ids)
    ]


def latest_version_dir(path) -> pathlib.Path:
    """`path` itself if it is a SavedModel, else its highest integer version subdirectory."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = version_dirs(path)
    if not versions:
        raise ServingError(f"{path} is neither a SavedModel nor a directory of numbered versions")
    return versions[-1]


def predict_local(saved_model, instances):
    """Runs `serving_default` of a SavedModel in this process, without a server.

    Args:
        saved_model: a version directory, or a model base directory (its highest version is used).
        instances: list of raw inputs, as for `predict_rest`.

    Returns:
        A list of {"probabilities": [...], "class_id": int}, as TF Serving returns it.
    """
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops text models' graphs use)

    serving = tf.saved_model.load(str(latest_version_dir(saved_model))).signatures["serving_default"]
    input_name, input_spec = next(iter(serving.structured_input_signature[1].items()))
    outputs = serving(**{input_name: tf.constant(instances, dtype=input_spec.dtype)})
    return [
        {"probabilities": probabilities.tolist(), "class_id": int(class_id)}
        for probabilities, class_id in zip(outputs["probabilities"].numpy(), outputs["class_id"].numpy())
    ]
