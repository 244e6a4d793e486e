"""Numbered versions under a model's export base: TF Serving's `<export_dir>/<model>/<N>/` layout.

TF Serving serves the highest integer subdirectory of a model's base path and ignores the rest,
so the export (the next number), the clients and the teacher (the highest) and the serving bundle
(which bases hold a version) all read the numbers here, and skip the same entries: an export's
temporary `.tmp-<pid>` directory, notes, anything not a number.
"""

import pathlib


def version_dirs(model_base) -> list:
    """The integer-named entries of `model_base`, lowest number first ([] if it does not exist)."""
    versions = [path for path in pathlib.Path(model_base).glob("*") if path.name.isdigit()]
    return sorted(versions, key=lambda path: int(path.name))


def next_version(model_base) -> int:
    """One more than the highest integer version under `model_base` (1 for a new model)."""
    versions = version_dirs(model_base)
    return int(versions[-1].name) + 1 if versions else 1
