"""Fixtures of the end-to-end tests, and the test tiers; `tests/cli_runs.py` (their helpers) is importable.

Two tiers (README, "Run the tests"):
- fast, `pytest -m "not slow"`: in-process unit tests of every module, a few minutes on 2 cores;
- full, `pytest` (CI): also the tests marked `slow` here, which train through the CLI in
  subprocesses, export and serve in fresh processes, or train recipes on the real data.
"""

import pathlib
import sys

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

# Modules whose every test runs the trainer CLI or exports and serves in fresh processes, slowest
# first: the full suite starts them first (pytest-xdist hands whole modules to workers in
# collection order, `--no-loadscope-reorder`), so that no long module is left to run alone at the end.
SLOW_MODULES = [
    "test_strategies.py",
    "test_run.py",
    "test_accuracy_real.py",
    "test_bert_workflow.py",
    "test_distill.py",
    "test_tune.py",
    "test_notebook.py",
    "test_run_files.py",
    "test_serving.py",
    "test_serving_bundle.py",
    "trainers/test_distributed.py",
    "trainers/test_resume.py",
    "test_serving_compatibility.py",
    "test_packaging.py",
]
# Single tests of otherwise fast modules that train for many steps or export a SavedModel.
SLOW_TESTS = {
    "data/test_buckets.py::test_buckets_give_the_same_logits_and_losses_as_fixed_padding",
    "data/test_local.py::test_load_reads_the_real_splits",
    "data/test_local.py::test_sst2_local_matches_source_md",
    "data/test_local.py::test_mnist_local_matches_source_md",
    "data/test_offline.py::test_builds_without_the_importlib_resources_package",
    "data/test_pretraining.py::test_masking_chooses_15_percent_of_real_tokens_and_replaces_80_10_10",
    "data/test_text.py::test_exported_saved_model_tokenizes_raw_strings",
    "models/test_models.py::test_model_fit_learns_a_separable_task",
    "models/test_models.py::test_recurrent_embedding_dropout_acts_only_in_training",
    "trainers/test_trainer.py::test_training_lowers_the_loss_and_restore_brings_back_the_trained_weights",
    "test_export.py::test_a_bert_pair_task_serves_text_and_text_pair_tokenized_in_the_graph",
}


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.path.relative_to(TESTS).as_posix()
        if module in SLOW_MODULES or f"{module}::{item.originalname}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)

    def start_order(item):  # The slow modules in SLOW_MODULES' order, then the rest as collected.
        module = item.path.relative_to(TESTS).as_posix()
        return SLOW_MODULES.index(module) if module in SLOW_MODULES else len(SLOW_MODULES)

    items.sort(key=start_order)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One tfds data_dir per test module, so each offline dataset is built once there."""
    return tmp_path_factory.mktemp("tfds")
