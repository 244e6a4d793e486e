"""Helpers of the end-to-end tests: running the trainer CLI, and serving an export as TF Serving would."""

import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

REPO = pathlib.Path(__file__).resolve().parent.parent


def run_trainer(*flags, timeout=300, module="trainers.run"):
    return subprocess.run(
        [sys.executable, "-m", module, *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def serve_in_fresh_process(version_dir, raw_inputs, tmp_path):
    """Calls serving_default in a process that never imports zoo, trainers or keras_hub."""
    inputs_path = tmp_path / "inputs.npy"
    np.save(inputs_path, raw_inputs)
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_text  # Registers the WordPiece ops the text graphs use.
        serving = tf.saved_model.load({str(version_dir)!r}).signatures["serving_default"]
        raw = np.load({str(inputs_path)!r}, allow_pickle=True)
        name, spec = next(iter(serving.structured_input_signature[1].items()))
        outputs = serving(**{{name: tf.constant(raw.tolist() if raw.dtype == object else raw, spec.dtype)}})
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("zoo", "trainers", "keras_hub"))
        print(json.dumps({{
            "input_name": name,
            "probabilities": outputs["probabilities"].numpy().tolist(),
            "class_id": outputs["class_id"].numpy().tolist(),
            "leaked": leaked,
        }}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])



def losses_from_events(model_dir):
    """The train loss of each loop, in step order, from the TensorBoard events in `model_dir/train`."""
    losses = []
    for path in sorted((pathlib.Path(model_dir) / "train").glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == "loss":
                    losses.append((event.step, float(tf.make_ndarray(value.tensor))))
    return [loss for _, loss in sorted(losses)]


def keras_probabilities(model_dir, raw_inputs):
    """The probabilities of the run's Keras model (preprocessor and model rebuilt from model_dir,
    final checkpoint restored) for `raw_inputs`, to compare with what its export serves."""
    from trainers import config as config_lib
    from trainers import tasks
    from trainers.trainer import checkpointable_weights

    config = config_lib.load_config(model_dir / "config.yaml")
    task = tasks.create_task(config, model_dir=model_dir)
    inputs = task.prepare_inputs()
    model = task.build_model(inputs)
    checkpoint = tf.train.Checkpoint(model=checkpointable_weights(model))
    checkpoint.restore(tf.train.latest_checkpoint(str(model_dir / "checkpoints"))).expect_partial()
    raw = tf.constant(raw_inputs.tolist() if raw_inputs.dtype == object else raw_inputs)
    return tf.nn.softmax(model(inputs.preprocessor(raw), training=False)).numpy()
