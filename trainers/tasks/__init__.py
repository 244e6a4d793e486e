"""The registry of tasks: `--task=<name>` -> a `trainers.tasks.base.Task` subclass.

Every module of this package that defines a task registers it (`@register_task`) when imported,
and importing this package imports them all: adding a task is one module here plus its test.
`trainers.config`, `--task`'s help and `trainers.tune`'s metrics all read this registry.
"""

import importlib
import pkgutil

from trainers.tasks.base import TASKS, Task, TaskConfig, TaskInputs
from zoo.errors import ConfigError, did_you_mean

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

DEFAULT_TASK = "classify"

__all__ = ["DEFAULT_TASK", "TASKS", "Task", "TaskConfig", "TaskInputs", "get_task_class", "create_task"]


def get_task_class(name) -> type:
    """The Task class registered as `name`; an unknown name is a ConfigError listing the known ones."""
    if name not in TASKS:
        raise ConfigError(f"task.name must be one of {', '.join(sorted(TASKS))}, got {name!r}{did_you_mean(name, list(TASKS))}")
    return TASKS[name]


def create_task(config, *, model_dir, phases=None, export_run=None) -> Task:
    """The task of `config.task.name`, for a run in `model_dir` (see `trainers.tasks.base.Task`)."""
    return get_task_class(config.task.name)(config, model_dir=model_dir, phases=phases, export_run=export_run)
