"""A serving bundle beside the exports: what `docker compose up` in `<export_dir>` needs to serve them all.

    <export_dir>/models.config        every model, at /models/<name> (the container's mount)
    <export_dir>/batching.config      --batching_parameters_file for --enable_batching
    <export_dir>/monitoring.config    --monitoring_config_file: Prometheus metrics on the REST port
    <export_dir>/docker-compose.yml   tensorflow/serving at a release that loads every model, ports 8500/8501
    <export_dir>/models.local.config  on request: the same models at this machine's absolute paths

The compose file mounts `<export_dir>` (its own directory) read-only at /models; TF Serving polls
models.config, so a new export is served without a restart. Every file is written atomically.
"""

import pathlib

import yaml
from google.protobuf import text_format

from zoo.atomic import write_text_atomically
from zoo.serving import compatibility, config_protos, latest_version_dir, warmup
from zoo.versions import version_dirs

CONTAINER_DIR = "/models"
GRPC_PORT, REST_PORT = 8500, 8501
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
CONFIG_POLL_SECONDS = 60
BATCH_THREADS = 4  # Batches run at once; TF Serving's guide suggests the serving host's core count.
FILES = ("models.config", "batching.config", "monitoring.config", "docker-compose.yml")
LOCAL_MODELS_CONFIG = "models.local.config"


def exported_models(export_dir) -> list:
    """The model base directories under `export_dir` that hold a SavedModel version, by name."""
    return sorted(
        path for path in pathlib.Path(export_dir).iterdir()
        if path.is_dir() and any((version_dir / "saved_model.pb").is_file() for version_dir in version_dirs(path))
    )


def models_config_text(models, base_dir) -> str:
    """TF Serving's ModelServerConfig (text format) serving each of `models` from `<base_dir>/<name>`."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for model in models:
        config.model_config_list.config.add(
            name=model.name, base_path=f"{str(base_dir).rstrip('/')}/{model.name}", model_platform="tensorflow"
        )
    return text_format.MessageToString(config)


def batching_config_text() -> str:
    """BatchingParameters: batches of up to `warmup.LARGE_BATCH`, waiting at most 2 ms to fill one.

    The largest batch equals the warm-up's large batch, so the shapes the batcher forms are warm.
    """
    parameters = config_protos.batching_parameters(
        max_batch_size={"value": warmup.LARGE_BATCH},
        batch_timeout_micros={"value": 2000},
        max_enqueued_batches={"value": 100},
        num_batch_threads={"value": BATCH_THREADS},
    )
    return text_format.MessageToString(parameters)


def monitoring_config_text() -> str:
    """MonitoringConfig: Prometheus metrics at `PROMETHEUS_PATH` on the REST port."""
    config = config_protos.monitoring_config(prometheus_config={"enable": True, "path": PROMETHEUS_PATH})
    return text_format.MessageToString(config)


def serving_release(models, requested=None) -> str:
    """The TF Serving release the compose file runs: the newest release named by `requested`
    ("X.Y" or "X.Y.Z"; None: any in the table) that loads every model's latest version.

    Raises:
        compatibility.IncompatibleError: one line naming the model and the op that no such release loads.
    """
    candidates = compatibility.resolve_release(requested) if requested else compatibility.tf_serving_releases()
    for model in models:
        version_dir = latest_version_dir(model)
        candidates = compatibility.narrow_releases(
            compatibility.op_inventory(version_dir), candidates, model=f"{model.name} ({version_dir})", requested=requested
        )
    return candidates[-1]


def compose_text(release) -> str:
    """docker-compose.yml: tensorflow/serving:<release> serving this directory's models.config."""
    flags = [
        f"--model_config_file={CONTAINER_DIR}/models.config",
        f"--model_config_file_poll_wait_seconds={CONFIG_POLL_SECONDS}",
        "--enable_batching=true",
        f"--batching_parameters_file={CONTAINER_DIR}/batching.config",
        f"--monitoring_config_file={CONTAINER_DIR}/monitoring.config",
    ]
    compose = {
        "services": {
            "serving": {
                "image": f"tensorflow/serving:{release}",
                # The image's entrypoint starts tensorflow_model_server with --port=8500
                # --rest_api_port=8501 and appends these flags.
                "command": flags,
                "ports": [f"{GRPC_PORT}:{GRPC_PORT}", f"{REST_PORT}:{REST_PORT}"],
                "volumes": [f".:{CONTAINER_DIR}:ro"],
                "restart": "unless-stopped",
            }
        }
    }
    header = (f"# Serves every model of this directory: docker compose up (gRPC :{GRPC_PORT}, REST :{REST_PORT},\n"
              f"# Prometheus metrics at :{REST_PORT}{PROMETHEUS_PATH}). Written by python -m zoo.serving bundle.\n")
    return header + yaml.safe_dump(compose, sort_keys=False)


def write_bundle(export_dir, *, tf_serving=None, local_config=False) -> dict:
    """Writes the bundle's files into `export_dir` (see the module docstring).

    Args:
        export_dir: the directory holding `<model>/<version>/` exports.
        tf_serving: None, or the release ("X.Y" or "X.Y.Z") the compose file must run.
        local_config: also write `models.local.config`, naming this machine's absolute paths
            (for a `tensorflow_model_server` started outside a container).

    Returns:
        {"release": the TF Serving release, file name: path written, ...}.

    Raises:
        compatibility.IncompatibleError: as `serving_release`.
    """
    export_dir = pathlib.Path(export_dir)
    models = exported_models(export_dir)
    release = serving_release(models, tf_serving)
    texts = {
        "models.config": models_config_text(models, CONTAINER_DIR),
        "batching.config": batching_config_text(),
        "monitoring.config": monitoring_config_text(),
        "docker-compose.yml": compose_text(release),
    }
    if local_config:
        texts[LOCAL_MODELS_CONFIG] = models_config_text(models, export_dir.resolve())
    written = {"release": release}
    for name, text in texts.items():
        write_text_atomically(export_dir / name, text)
        written[name] = export_dir / name
    return written
