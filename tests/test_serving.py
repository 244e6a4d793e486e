"""Serving: signatures and input handling of a BERT export, warm-up records, TFLite, int8, the REST and
gRPC clients, and a real tensorflow_model_server when one is on PATH."""

import concurrent.futures
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the export's tokenizer ops)
from tensorflow_serving.apis import prediction_service_pb2_grpc

import zoo
from zoo import serving
from zoo.data.images import ImagePreprocessor
from zoo.data.text import RESERVED_TOKENS, TextPreprocessor
from zoo.export import export_saved_model, saved_model_size_bytes, serving_input_spec
from zoo.serving import warmup

VOCABULARY = RESERVED_TOKENS + ["i", "love", "this", "movie", "!", "dull", "film", "not", "bad", "a"]
SEQUENCE_LENGTH = 16
# Evaluation-like inputs for the warm-up records: 40 texts of 0 to ~80 words.
EVAL_TEXTS = np.array([" ".join(["not bad", "a dull film", "i love this movie !"][i % 3] for _ in range(i % 20))
                       for i in range(40)], dtype=object)


@pytest.fixture(scope="module")
def bert_export(tmp_path_factory):
    """A tiny BERT with its WordPiece preprocessor, exported once for the module."""
    export_dir = tmp_path_factory.mktemp("exports")
    preprocessor = TextPreprocessor(VOCABULARY, sequence_length=SEQUENCE_LENGTH, output_format="bert")
    model = zoo.build(
        "bert", vocabulary_size=len(VOCABULARY), hidden_dim=32, num_heads=2, intermediate_dim=64, max_sequence_length=32
    )
    model(preprocessor(tf.constant(["i love this movie"])))
    version_dir = export_saved_model(
        model,
        preprocessor,
        serving_input_spec("bert"),
        export_dir=export_dir,
        model_name="bert",
        encoder=model.encoder,
        warmup_inputs={"text": EVAL_TEXTS},
    )
    return model, preprocessor, version_dir


def _probabilities(model, preprocessor, texts):
    return tf.nn.softmax(model(preprocessor(tf.constant(texts)), training=False)).numpy()


def test_serving_default_and_encode_match_the_keras_model(bert_export):
    model, preprocessor, version_dir = bert_export
    loaded = tf.saved_model.load(str(version_dir))
    texts = ["I love this movie!", "a dull film"]
    served = loaded.signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(served["probabilities"], _probabilities(model, preprocessor, texts), atol=1e-6)
    np.testing.assert_array_equal(served["class_id"], served["probabilities"].numpy().argmax(-1))
    encoded = loaded.signatures["encode"](text=tf.constant(texts))["pooled_output"]
    expected = model.encoder(preprocessor(tf.constant(texts)))["pooled_output"]
    np.testing.assert_allclose(encoded, expected, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 33])
def test_any_batch_size_empty_and_over_long_texts(bert_export, batch):
    model, preprocessor, version_dir = bert_export
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    texts = (["", "not bad " * 200, "I love this movie!"] * batch)[:batch]
    probabilities = serve(text=tf.constant(texts))["probabilities"].numpy()
    assert probabilities.shape == (batch, 2)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    # An over-long text is truncated to the sequence length: same answer as its first tokens.
    if batch > 1:
        truncated = " ".join(["not bad"] * SEQUENCE_LENGTH)
        np.testing.assert_allclose(
            probabilities[1], serve(text=tf.constant([truncated]))["probabilities"].numpy()[0], atol=1e-6
        )


@pytest.mark.parametrize(
    "bad_input", [tf.constant([1, 2]), tf.constant([["two", "dimensions"]]), tf.constant("scalar")]
)
def test_wrong_dtype_or_rank_is_rejected(bert_export, bad_input):
    serve = tf.saved_model.load(str(bert_export[2])).signatures["serving_default"]
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        serve(text=bad_input)


def test_saved_model_cli_shows_the_signatures(bert_export):
    command = shutil.which("saved_model_cli")
    command = [command] if command else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run(
        [*command, "show", "--dir", str(bert_export[2]), "--all"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for expected in ["signature_def['serving_default']", "signature_def['encode']", "inputs['text'] tensor_info",
                     "dtype: DT_STRING", "outputs['probabilities']", "outputs['class_id']", "outputs['pooled_output']"]:
        assert expected in result.stdout, expected


def test_warmup_records_parse_and_replay_through_the_loaded_signature(bert_export):
    """TF Serving's format: PredictionLog protos in a TFRecord file; batch 1 and a large batch, short and long."""
    model, preprocessor, version_dir = bert_export
    requests = warmup.read_warmup_requests(version_dir)
    assert 0 < len(requests) <= warmup.MAX_RECORDS
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    batches = []
    for request in requests:
        assert request.model_spec.name == "bert" and request.model_spec.signature_name == "serving_default"
        assert set(request.inputs) == {"text"}
        texts = tf.make_ndarray(request.inputs["text"])
        assert set(texts.tolist()) <= {text.encode() for text in EVAL_TEXTS}  # Drawn from the evaluation inputs.
        probabilities = serve(text=tf.constant(texts))["probabilities"].numpy()
        np.testing.assert_allclose(probabilities, _probabilities(model, preprocessor, texts.tolist()), atol=1e-6)
        batches.append(texts)
    assert sorted({len(texts) for texts in batches}) == [1, warmup.LARGE_BATCH]
    lengths = [len(text) for text in EVAL_TEXTS]
    assert {len(batches[0][0]), len(batches[1][0])} == {min(lengths), max(lengths)}  # The shortest and the longest.


def test_cnn_export_carries_a_tflite_model_with_the_same_answers(tmp_path):
    model = zoo.build("cnn", filters=(8, 16))
    images = np.random.default_rng(0).uniform(0, 255, [4, 8, 8, 1]).astype(np.float32)
    expected = tf.nn.softmax(model(images)).numpy()
    version_dir = export_saved_model(
        model, ImagePreprocessor(), serving_input_spec("image", [8, 8, 1]), export_dir=tmp_path, model_name="cnn",
        tflite=True,
    )
    interpreter = tf.lite.Interpreter(model_path=str(version_dir / "model.tflite"))
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], [4, 8, 8, 1])
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    outputs = {detail["name"]: interpreter.get_tensor(detail["index"]) for detail in interpreter.get_output_details()}
    probabilities = next(value for value in outputs.values() if value.dtype == np.float32)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_int8_export_is_smaller_and_answers_nearly_the_same(tmp_path):
    model = zoo.build("bert", vocabulary_size=len(VOCABULARY), hidden_dim=64, num_heads=2, intermediate_dim=256)
    preprocessor = TextPreprocessor(VOCABULARY, sequence_length=SEQUENCE_LENGTH, output_format="bert")
    texts = ["I love this movie!", "a dull film", "not bad"]
    expected = _probabilities(model, preprocessor, texts)
    spec = serving_input_spec("bert")
    float_dir = export_saved_model(model, preprocessor, spec, export_dir=tmp_path, model_name="bert")
    model.quantize("int8")
    int8_dir = export_saved_model(model, preprocessor, spec, export_dir=tmp_path, model_name="bert_int8")
    # The weights shrink about 4x; the graph (which dominates a model this small) does not.
    assert saved_model_size_bytes(int8_dir / "variables") < 0.5 * saved_model_size_bytes(float_dir / "variables")
    served = tf.saved_model.load(str(int8_dir)).signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(served["probabilities"], expected, atol=0.02)


# ------------------------------------------------------------------ the client


class _FakeTFServing(http.server.BaseHTTPRequestHandler):
    """Answers `POST /v1/models/bert:predict` as TF Serving's REST API does, from a SavedModel."""

    version_dir = None

    def do_POST(self):  # noqa: N802  (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/models/bert:predict":
            return self._reply(404, {"error": f"Servable not found for request: {self.path}"})
        if not all(isinstance(text, str) for text in body["instances"]):
            return self._reply(400, {"error": "JSON Value: 1 Type: Number is not of expected type: string"})
        return self._reply(200, {"predictions": serving.predict_local(self.version_dir, body["instances"])})

    def _reply(self, status, document):
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server(bert_export):
    _FakeTFServing.version_dir = bert_export[2]
    server = http.server.HTTPServer(("127.0.0.1", 0), _FakeTFServing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_predict_rest_matches_local_prediction(fake_server, bert_export):
    texts = ["I love this movie!", "a dull film"]
    remote = serving.predict_rest(fake_server, "bert", texts)
    local = serving.predict_local(bert_export[2].parent, texts)  # The base dir: its highest version.
    assert [answer["class_id"] for answer in remote] == [answer["class_id"] for answer in local]
    np.testing.assert_allclose([a["probabilities"] for a in remote], [a["probabilities"] for a in local], atol=1e-6)
    # An address without a scheme, as curl takes it, means http://.
    assert serving.predict_rest(fake_server.removeprefix("http://"), "bert", texts) == remote


def test_rest_errors_are_one_line(fake_server):
    with pytest.raises(serving.ServingError, match=r"answered HTTP 400: JSON Value: 1 .*not of expected type"):
        serving.predict_rest(fake_server, "bert", [1])
    with pytest.raises(serving.ServingError, match="answered HTTP 404: Servable not found"):
        serving.predict_rest(fake_server, "gpt", ["hi"])
    port = _unused_port()
    with pytest.raises(serving.ServingError, match=f"cannot reach http://127.0.0.1:{port}/v1/models/bert:predict"):
        serving.predict_rest(f"http://127.0.0.1:{port}", "bert", ["hi"], timeout=5)


def test_command_line_client_prints_answers_and_rejects_bad_usage(bert_export):
    command = [sys.executable, "-m", "zoo.serving", f"--saved_model={bert_export[2]}", "--text=I love this movie!"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("'I love this movie!': class ")
    missing = subprocess.run(command[:3] + ["--text=hi"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert "one of the arguments --server --grpc --saved_model is required" in missing.stderr


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Answers `Predict` as TF Serving's gRPC API does, from the real SavedModel: NOT_FOUND for another
    model's name, INVALID_ARGUMENT for inputs the signature rejects."""

    def __init__(self, version_dir, model_name):
        self.signatures = tf.saved_model.load(str(version_dir)).signatures
        self.model_name = model_name

    def Predict(self, request, context):  # noqa: N802  (gRPC's naming)
        from tensorflow_serving.apis import predict_pb2

        if request.model_spec.name != self.model_name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({request.model_spec.name})")
        signature = self.signatures[request.model_spec.signature_name or "serving_default"]
        try:
            outputs = signature(**{name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()})
        except (TypeError, ValueError, tf.errors.InvalidArgumentError) as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error).splitlines()[0])
        response = predict_pb2.PredictResponse(model_spec=request.model_spec)
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
        return response


@pytest.fixture(scope="module")
def grpc_server(bert_export):
    """A gRPC PredictionService on 127.0.0.1 serving the module's BERT export as "bert"; yields "HOST:PORT"."""
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_PredictionService(bert_export[2], "bert"), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def _unused_port():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return unused.getsockname()[1]


def test_predict_grpc_matches_the_keras_model(grpc_server, bert_export):
    model, preprocessor, _ = bert_export
    texts = ["I love this movie!", "a dull film", ""]
    answers = serving.predict_grpc(grpc_server, "bert", texts)
    expected = _probabilities(model, preprocessor, texts)
    np.testing.assert_allclose([answer["probabilities"] for answer in answers], expected, atol=1e-6)
    assert [answer["class_id"] for answer in answers] == expected.argmax(-1).tolist()


def test_grpc_errors_are_one_line(grpc_server):
    with pytest.raises(serving.ServingError, match=r"answered NOT_FOUND: Servable not found for request: Latest\(gpt\)$"):
        serving.predict_grpc(grpc_server, "gpt", ["hi"])
    with pytest.raises(serving.ServingError, match="answered INVALID_ARGUMENT: ") as bad_input:
        serving.predict_grpc(grpc_server, "bert", [1.0, 2.0])
    assert "\n" not in str(bad_input.value)
    port = _unused_port()
    with pytest.raises(serving.ServingError, match=f"cannot reach 127.0.0.1:{port} \\(gRPC\\)"):
        serving.predict_grpc(f"127.0.0.1:{port}", "bert", ["hi"], timeout=5)


def test_command_line_grpc_client_answers_and_errors_in_one_line(grpc_server):
    command = [sys.executable, "-m", "zoo.serving", f"--grpc={grpc_server}", "--text=I love this movie!"]
    result = subprocess.run([*command, "--model_name=bert"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("'I love this movie!': class ")
    unknown = subprocess.run([*command, "--model_name=gpt"], capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines()[-1].startswith(f"error: {grpc_server} answered NOT_FOUND: Servable not found")
    assert "Traceback" not in unknown.stderr
    missing = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "--grpc needs --model_name" in missing.stderr


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None, reason="tensorflow_model_server is not on PATH")
def test_real_tensorflow_model_server_serves_rest_grpc_and_warms_up(bert_export, tmp_path):
    """The bundle's local models.config, batching.config and monitoring.config, read by a real server."""
    from zoo.serving import bundle

    model, preprocessor, version_dir = bert_export
    export_dir = version_dir.parent.parent
    bundle.write_bundle(export_dir, local_config=True)
    rest_port, grpc_port = _unused_port(), _unused_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            ["tensorflow_model_server", f"--rest_api_port={rest_port}", f"--port={grpc_port}",
             f"--model_config_file={export_dir / bundle.LOCAL_MODELS_CONFIG}", "--enable_batching=true",
             f"--batching_parameters_file={export_dir / 'batching.config'}",
             f"--monitoring_config_file={export_dir / 'monitoring.config'}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        texts = ["I love this movie!", "a dull film"]
        deadline = time.monotonic() + 120
        while True:
            try:
                rest_answers = serving.predict_rest(f"http://127.0.0.1:{rest_port}", "bert", texts, timeout=5)
                break
            except serving.ServingError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError(log_path.read_text()[-3000:]) from None
                time.sleep(1)
        grpc_answers = serving.predict_grpc(f"127.0.0.1:{grpc_port}", "bert", texts)
        expected = _probabilities(model, preprocessor, texts)
        for answers in (rest_answers, grpc_answers):
            np.testing.assert_allclose([answer["probabilities"] for answer in answers], expected, atol=1e-5)
        with pytest.raises(serving.ServingError, match="NOT_FOUND"):
            serving.predict_grpc(f"127.0.0.1:{grpc_port}", "gpt", texts)
        log = log_path.read_text()
        records = len(warmup.read_warmup_requests(version_dir))
        assert f"Number of warmup records read: {records}." in log, log[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}{bundle.PROMETHEUS_PATH}", timeout=10) as metrics:
            assert b":tensorflow:serving:request_count" in metrics.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
