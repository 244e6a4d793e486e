"""Ask an exported zoo model for answers: over TF Serving's REST API, or from a local SavedModel.

    python -m zoo.serving --server=http://localhost:8501 --model_name=bert --text="I love this movie!"
    python -m zoo.serving --saved_model=exports/bert --text="I love this movie!"

Both print one line per input: the class id and the probabilities. Both return the same
structure: a list of {"probabilities": [...], "class_id": int}, one per instance.
"""

import json
import pathlib
import sys
import urllib.error
import urllib.request

USAGE_ERROR = 2


class ServingError(RuntimeError):
    """The server could not be reached or refused the request; the message is one line."""


def predict_rest(url, model_name, instances, timeout=30.0):
    """POSTs `{"instances": instances}` to `<url>/v1/models/<model_name>:predict` (TF Serving REST).

    Args:
        url: str. The server's REST address, e.g. "http://localhost:8501".
        model_name: str. The name TF Serving serves the model under.
        instances: list. Raw inputs: strings for text models, nested lists of pixels for images.

    Returns:
        The server's "predictions": a list of {"probabilities": [...], "class_id": int}.
    """
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


def latest_version_dir(path) -> pathlib.Path:
    """`path` itself if it is a SavedModel, else its highest integer version subdirectory."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted((child for child in path.glob("*") if child.name.isdigit()), key=lambda child: int(child.name))
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


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m zoo.serving", description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--server", help="TF Serving REST address, e.g. http://localhost:8501")
    target.add_argument("--saved_model", help="a SavedModel version directory or model base directory")
    parser.add_argument("--model_name", help="with --server: the served model's name")
    parser.add_argument("--text", action="append", required=True, help="a text to classify (repeatable)")
    args = parser.parse_args(argv)
    if args.server and not args.model_name:
        parser.error("--server needs --model_name")
    try:
        if args.server:
            predictions = predict_rest(args.server, args.model_name, args.text)
        else:
            predictions = predict_local(args.saved_model, args.text)
    except ServingError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    for text, prediction in zip(args.text, predictions):
        probabilities = ", ".join(f"{p:.4f}" for p in prediction["probabilities"])
        print(f"{text!r}: class {prediction['class_id']} (probabilities {probabilities})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
