"""TF Serving's BatchingParameters and MonitoringConfig messages, which tensorflow-serving-api lacks.

The pip package ships the request protos and `model_server_config_pb2` (models.config) but not
the messages of `--batching_parameters_file` and `--monitoring_config_file`. They are declared here
field for field as in TF Serving 2.20.0's
tensorflow_serving/servables/tensorflow/session_bundle_config.proto (BatchingParameters) and
tensorflow_serving/config/monitoring_config.proto, so that zoo writes those files through a
proto's text format and tests parse them back with the same field names, numbers and types.
"""

import functools

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

_PACKAGE = "tensorflow.serving"
_FILE = "zoo/serving/tf_serving_config.proto"
_Field = descriptor_pb2.FieldDescriptorProto

# (name, number, type, type_name or None, label)
_BATCHING_PARAMETERS = [
    ("max_batch_size", 1, _Field.TYPE_MESSAGE, ".google.protobuf.Int64Value", _Field.LABEL_OPTIONAL),
    ("batch_timeout_micros", 2, _Field.TYPE_MESSAGE, ".google.protobuf.Int64Value", _Field.LABEL_OPTIONAL),
    ("max_enqueued_batches", 3, _Field.TYPE_MESSAGE, ".google.protobuf.Int64Value", _Field.LABEL_OPTIONAL),
    ("num_batch_threads", 4, _Field.TYPE_MESSAGE, ".google.protobuf.Int64Value", _Field.LABEL_OPTIONAL),
    ("thread_pool_name", 5, _Field.TYPE_MESSAGE, ".google.protobuf.StringValue", _Field.LABEL_OPTIONAL),
    ("allowed_batch_sizes", 6, _Field.TYPE_INT64, None, _Field.LABEL_REPEATED),
    ("pad_variable_length_inputs", 7, _Field.TYPE_BOOL, None, _Field.LABEL_OPTIONAL),
    ("enable_large_batch_splitting", 8, _Field.TYPE_MESSAGE, ".google.protobuf.BoolValue", _Field.LABEL_OPTIONAL),
    ("max_execution_batch_size", 9, _Field.TYPE_MESSAGE, ".google.protobuf.Int64Value", _Field.LABEL_OPTIONAL),
]
_PROMETHEUS_CONFIG = [
    ("enable", 1, _Field.TYPE_BOOL, None, _Field.LABEL_OPTIONAL),
    ("path", 2, _Field.TYPE_STRING, None, _Field.LABEL_OPTIONAL),
]
_MONITORING_CONFIG = [
    ("prometheus_config", 1, _Field.TYPE_MESSAGE, f".{_PACKAGE}.PrometheusConfig", _Field.LABEL_OPTIONAL),
]


@functools.cache
def _classes() -> dict:
    """Message classes by name, from a private pool (the default pool may hold TF Serving's own)."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    file = descriptor_pb2.FileDescriptorProto(
        name=_FILE, package=_PACKAGE, syntax="proto3", dependency=[wrappers_pb2.DESCRIPTOR.name]
    )
    for name, fields in [("BatchingParameters", _BATCHING_PARAMETERS), ("PrometheusConfig", _PROMETHEUS_CONFIG),
                         ("MonitoringConfig", _MONITORING_CONFIG)]:
        message = file.message_type.add(name=name)
        for field_name, number, field_type, type_name, label in fields:
            message.field.add(name=field_name, number=number, type=field_type, label=label,
                              **({"type_name": type_name} if type_name else {}))
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in ("BatchingParameters", "MonitoringConfig")
    }


def batching_parameters(**fields):
    """A `tensorflow.serving.BatchingParameters` message (the --batching_parameters_file format)."""
    return _classes()["BatchingParameters"](**fields)


def monitoring_config(**fields):
    """A `tensorflow.serving.MonitoringConfig` message (the --monitoring_config_file format)."""
    return _classes()["MonitoringConfig"](**fields)
