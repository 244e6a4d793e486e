"""Helpers of the end-to-end tests: running the trainer CLI, and serving an export as TF Serving would."""

import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np

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

