"""The task registry: every module of trainers/tasks/ registers its task, and everything that lists
tasks (config, --task, tune's metrics) reads the registry; a new task is one module."""

import dataclasses
import pathlib
import pkgutil

import pytest
from absl import flags

from trainers import config as config_lib
from trainers import run, search_space, tasks
from trainers.tasks.base import Task, TaskConfig


def test_each_task_module_registers_its_task_and_nothing_else_lists_them():
    modules = {module.name for module in pkgutil.iter_modules([str(pathlib.Path(tasks.__file__).parent)])}
    assert {task.__module__.rsplit(".", 1)[1] for task in tasks.TASKS.values()} == modules - {"base"}
    assert set(tasks.TASKS) == {"classify", "distill", "pretrain"}
    assert flags.FLAGS["task"].parser.enum_values == sorted(tasks.TASKS)
    assert all(name in flags.FLAGS["task"].help for name in tasks.TASKS)
    assert search_space.EVAL_METRICS == {name: task.EVAL_METRICS for name, task in tasks.TASKS.items()}
    assert run.format_metrics({"accuracy": 0.5, "mlm_accuracy": 0.25}, tasks.TASKS["pretrain"]) == "mlm_accuracy=0.2500"


@pytest.mark.parametrize("name", ["classify", "distill", "pretrain"])
def test_each_task_has_a_typed_config_named_after_it_and_an_objective_with_its_metrics(name):
    task_class = tasks.TASKS[name]
    assert task_class.Config().name == name
    assert set(task_class.Config.RESUME_FIELDS) <= {field.name for field in dataclasses.fields(task_class.Config)}
    assert task_class.summary() and not task_class.summary().endswith("\n")


def test_a_new_task_is_one_class_the_config_accepts_with_its_own_fields(monkeypatch):
    @dataclasses.dataclass
    class RegressionConfig(TaskConfig):
        name: str = "regress"
        loss: str = "huber"

    class Regression(Task):
        """Predict a number per example."""

        name = "regress"
        Config = RegressionConfig

    monkeypatch.setitem(tasks.TASKS, "regress", Regression)
    config = config_lib.config_from_dict({"model": {"name": "gru"}, "task": {"name": "regress", "loss": "l2"}})
    assert (type(config.task), config.task.loss) == (RegressionConfig, "l2")
    with pytest.raises(config_lib.ConfigError, match=r"task\.loss must be str"):
        config_lib.config_from_dict({"model": {"name": "gru"}, "task": {"name": "regress", "loss": 2}})
