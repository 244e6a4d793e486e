"""One model family per module; importing this package imports them all, and each registers its
models with `zoo.registry` where it defines them: adding a model is one module here plus its test."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
