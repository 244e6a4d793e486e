"""`--strategy` -> a tf.distribute strategy, in one place (Model Garden's get_distribution_strategy).

Every failure a user can cause (no TPU reachable, a CPU split asked for too late, a device that does
not exist) becomes a one-line `ConfigError` here, before any model is built: a MirroredStrategy
over a device that does not exist constructs fine and then hangs forever in training.
"""

import json
import socket
import urllib.error

import tensorflow as tf

from zoo.errors import ConfigError

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


def split_cpu(num_devices):
    """Splits the host CPU into `num_devices` logical devices, so `mirrored` can run on a laptop.

    Must run before TensorFlow initialises its devices (before the first op).
    """
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices
        )
    except RuntimeError:
        raise ConfigError(
            "--cpu_devices must be applied before TensorFlow starts; it cannot change devices now"
        ) from None


def _connect_tpu(tpu):
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (
        ValueError,
        urllib.error.URLError,
        tf.errors.NotFoundError,
        tf.errors.UnimplementedError,
        tf.errors.UnavailableError,
    ):
        raise ConfigError(
            f"--strategy=tpu: no TPU reachable at --tpu={tpu or '(unset)'}; "
            "use --strategy=default or --strategy=mirrored on this machine"
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def create_strategy(name, *, cpu_devices=None, tpu=None) -> tf.distribute.Strategy:
    """The strategy named by `--strategy`.

    Args:
        name: one of STRATEGIES.
        cpu_devices: int or None. For `mirrored` on a machine without GPUs: how many logical CPU
            devices to split the host into (call `split_cpu` first).
        tpu: str or None. `local`, a TPU name, or a `grpc://host:port` address for `tpu`.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
        if cpu_devices and len(cpus) < cpu_devices:
            raise ConfigError(f"--cpu_devices={cpu_devices} but only {len(cpus)} logical CPU devices exist")
        return tf.distribute.MirroredStrategy(cpus[: cpu_devices or len(cpus)])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _connect_tpu(tpu)


def is_chief(strategy) -> bool:
    """Whether this process writes the run's outputs: always, except on non-chief multi-workers.

    With MultiWorkerMirroredStrategy every worker saves checkpoints (saving is collective), but
    only the chief (task "chief", else worker 0) into model_dir; the others into a scratch dir.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def loopback_tf_configs(num_workers) -> list[str]:
    """`TF_CONFIG` values for a MultiWorkerMirroredStrategy job of `num_workers` processes on this
    machine (127.0.0.1, free ports), worker 0 first: to try `--strategy=multi_worker` without a
    cluster, as the tests and benchmarks do.
    """
    sockets = [socket.socket() for _ in range(num_workers)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    workers = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    for sock in sockets:
        sock.close()
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
            for index in range(num_workers)]
