"""Atomic writes: readers see the old file or the new one, never half of one, and no temporary is left."""

import json

import pytest

from zoo.atomic import write_atomically, write_json_atomically, write_text_atomically


def test_writes_replace_the_file_and_leave_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    write_json_atomically(path, {"b": 1, "a": [1, 2]})
    write_json_atomically(path, {"b": 2, "a": 0.5})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": 2}
    assert path.read_text().startswith('{\n  "a"')  # Indented, keys sorted.
    write_text_atomically(tmp_path / "notes.txt", "text\n")
    assert (tmp_path / "notes.txt").read_text() == "text\n"
    assert sorted(child.name for child in tmp_path.iterdir()) == ["metrics.json", "notes.txt"]


@pytest.mark.parametrize("directory", [False, True])
def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, directory):
    path = tmp_path / "trials.json"
    path.write_text("old\n")

    def failing_write(temporary):
        if directory:
            temporary.mkdir()
            (temporary / "part").write_text("half")
        else:
            temporary.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, failing_write)
    assert path.read_text() == "old\n"
    assert [child.name for child in tmp_path.iterdir()] == ["trials.json"]


def test_writes_a_directory_under_its_final_name(tmp_path):
    def write(temporary):
        temporary.mkdir()
        (temporary / "shard").write_text("tokens")

    write_atomically(tmp_path / "cache", write)
    assert (tmp_path / "cache" / "shard").read_text() == "tokens"
    assert [child.name for child in tmp_path.iterdir()] == ["cache"]
