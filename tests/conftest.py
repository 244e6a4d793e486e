"""Fixtures of the end-to-end tests; `tests/cli_runs.py` (their helpers) is importable from test modules."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One tfds data_dir per test module, so each offline dataset is built once there."""
    return tmp_path_factory.mktemp("tfds")
