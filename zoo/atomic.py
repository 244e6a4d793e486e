"""Atomic writes: a file (or directory) is written under a temporary name beside its path, then renamed.

Readers never see half a file: a resumed run reading `metrics.json`, a tuner reading
`trials.json`, TF Serving loading a version's warm-up records, the token cache read back by the
next run. A write that fails (or is killed) leaves the old file as it was; a failed write also
removes its temporary file, and a killed one leaves only a hidden `.<name>.tmp-<pid>`.
"""

import json
import os
import pathlib
import shutil


def write_atomically(path, write):
    """Calls `write(temporary)` with a path beside `path`, then renames it over `path`.

    Args:
        path: str or Path. Its directory must exist (the rename is atomic within one file system).
        write: `fn(temporary_path)` that creates the file or directory at the given
            `pathlib.Path` (such as `lambda temporary: dataset.save(str(temporary))`). A directory
            replaces nothing: if `path` already exists, the rename fails.
    """
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if temporary.is_dir():
            shutil.rmtree(temporary)
        else:
            temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(path, text):
    """Writes the string `text` to `path` atomically."""
    write_atomically(path, lambda temporary: temporary.write_text(text))


def write_json_atomically(path, document):
    """Writes `document` to `path` atomically as indented JSON with sorted keys."""
    write_text_atomically(path, json.dumps(document, indent=2, sort_keys=True) + "\n")
