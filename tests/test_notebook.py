"""notebooks/colab_tpu_bert.ipynb: valid, and its cells run top to bottom on this CPU.

The notebook's "parameters" cell is kept and a cell that overrides it is inserted after it, as papermill
does: no install, this checkout, the offline dataset, the default strategy in float32 without XLA, a few
steps, and every output under tmp_path.
"""

import ast
import glob
import json
import os
import re
import sys
import time

import nbclient
import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from cli_runs import REPO

pytest.importorskip("ipykernel", reason="ipykernel is not installed: the notebook needs a Python kernel to run")

NOTEBOOK = REPO / "notebooks" / "colab_tpu_bert.ipynb"
PARAMETERS = {
    "INSTALL", "ZOO_DIR", "DATASET", "DATA_DIR", "STRATEGY", "TPU", "MIXED_PRECISION", "JIT_COMPILE",
    "EPOCHS", "STEPS_PER_EPOCH", "MODEL_DIR", "EXPORT_DIR", "GCS_EXPORT_DIR",
}


def cell_tagged(notebook, tag):
    (cell,) = [cell for cell in notebook.cells if tag in cell.metadata.get("tags", [])]
    return cell


def stream_text(cell):
    return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")


def test_notebook_is_valid_and_its_parameters_cell_holds_every_switch():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    parameters = cell_tagged(notebook, "parameters")
    assigned = {target.id for node in ast.parse(parameters.source).body if isinstance(node, ast.Assign)
                for target in node.targets}
    assert PARAMETERS <= assigned, f"missing from the parameters cell: {sorted(PARAMETERS - assigned)}"
    assert 'ZOO_GIT_URL = "https://github.com/zoo-models/zoo.git"' in parameters.source
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "outputs are committed"


@pytest.fixture
def current_python_kernel(tmp_path, monkeypatch):
    """A kernelspec named python3 that starts this interpreter's ipykernel, found before any other."""
    kernel_dir = tmp_path / "jupyter" / "kernels" / "python3"
    kernel_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python"}
    (kernel_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "python3"


CPU_OVERRIDES = {
    "INSTALL": False,
    "ZOO_DIR": str(REPO),
    "DATASET": "zoo_sentiment",
    "STRATEGY": "default",
    "TPU": None,
    "MIXED_PRECISION": "float32",
    "JIT_COMPILE": False,
    "EPOCHS": 1,
    "STEPS_PER_EPOCH": 5,
    "BATCH_SIZE": None,
    "STEPS_PER_LOOP": None,
    "GCS_EXPORT_DIR": None,
}


def with_parameters(notebook, overrides):
    """`notebook` with a cell that sets `overrides` right after its "parameters" cell (papermill's way)."""
    source = "\n".join(f"{name} = {value!r}" for name, value in overrides.items())
    index = notebook.cells.index(cell_tagged(notebook, "parameters"))
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    return notebook


def execute(notebook, kernel_name, cwd):
    """Runs every cell in order; raises CellExecutionError, with the cell and its traceback, if one fails."""
    started = time.perf_counter()
    try:
        nbclient.NotebookClient(notebook, kernel_name=kernel_name, timeout=240,
                                resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        print(f"notebook executed in {time.perf_counter() - started:.1f} s")


def test_notebook_trains_exports_and_predicts_on_cpu(tmp_path, data_dir, current_python_kernel):
    notebook = with_parameters(nbformat.read(NOTEBOOK, as_version=4), dict(
        CPU_OVERRIDES,
        DATA_DIR=str(data_dir),  # Not tfds' default in $HOME: the offline dataset is built here.
        MODEL_DIR=str(tmp_path / "run"),
        EXPORT_DIR=str(tmp_path / "exports"),
        GCS_EXPORT_DIR=str(tmp_path / "bucket"),  # tf.io.gfile copies to a local path as it does to gs://.
    ))
    execute(notebook, current_python_kernel, tmp_path)

    output = "\n".join(stream_text(cell) for cell in notebook.cells if cell.cell_type == "code")
    assert "Strategy: _DefaultDistributionStrategy with 1 replica(s)" in output
    assert "--mixed_precision=float32 --nojit_compile --epochs=1" in output
    (version_dir,) = (tmp_path / "exports" / "bert").iterdir()
    assert version_dir.name == "1" and (version_dir / "saved_model.pb").is_file()
    assert (tmp_path / "run" / "metrics.json").is_file()

    cli_output = stream_text(cell_tagged(notebook, "predict-cli"))
    python_output = stream_text(cell_tagged(notebook, "predict-savedmodel"))
    cli_answers = re.findall(r"^'(.+)': class (\d+), probabilities", cli_output, re.MULTILINE)
    python_answers = re.findall(r"^'(.+)': (\w+) \(class (\d+), p=", python_output, re.MULTILINE)
    assert [text for text, _ in cli_answers] == ["I love this movie!", "A dull, lifeless film that never ends."]
    assert [(text, class_id) for text, _, class_id in python_answers] == cli_answers  # The same SavedModel.
    assert all(name in ("negative", "positive") for _, name, _ in python_answers)

    copied = tmp_path / "bucket" / "bert" / "1"
    assert sorted(path.relative_to(copied) for path in copied.rglob("*") if path.is_file()) == sorted(
        path.relative_to(version_dir) for path in version_dir.rglob("*") if path.is_file())


@pytest.mark.skipif(bool(glob.glob("/dev/accel*") + glob.glob("/dev/vfio/[0-9]*"))
                    or any(os.environ.get(name) for name in ("COLAB_TPU_ADDR", "TPU_NAME")),
                    reason="this machine may have a TPU")
def test_without_a_tpu_the_notebook_says_so_and_suggests_a_strategy(tmp_path, current_python_kernel):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells = notebook.cells[: notebook.cells.index(cell_tagged(notebook, "find-tpu")) + 1]
    notebook = with_parameters(notebook, dict(CPU_OVERRIDES, STRATEGY="tpu", DATA_DIR=None))
    with pytest.raises(CellExecutionError) as raised:
        execute(notebook, current_python_kernel, tmp_path)
    message = str(raised.value)
    assert "No TPU found" in stream_text(cell_tagged(notebook, "find-tpu"))
    assert "STRATEGY is 'tpu' but this runtime has no TPU" in message
    assert "Runtime > Change runtime type > TPU" in message and "set STRATEGY = " in message
