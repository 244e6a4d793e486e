"""From an export to a running TF Serving: clients, op compatibility, warm-up, bundle, model card.

    client         predict_rest, predict_grpc, predict_local: the same answers from a server or a SavedModel
    compatibility  which TF Serving releases load a SavedModel's ops (zoo/serving/ops_table.yaml)
    warmup         assets.extra/tf_serving_warmup_requests, TF Serving's warm-up records
    model_card     assets.extra/manifest.json and model_card.md
    bundle         models.config, batching.config, monitoring.config and docker-compose.yml

`python -m zoo.serving` is the command line (see zoo/serving/__main__.py).
"""

from zoo.serving.client import ServingError, latest_version_dir, predict_grpc, predict_local, predict_rest

__all__ = ["ServingError", "latest_version_dir", "predict_grpc", "predict_local", "predict_rest"]
