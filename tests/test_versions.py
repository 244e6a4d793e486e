"""Version numbers under an export base: the next one to write, and the versions there are."""

from zoo.versions import next_version, version_dirs


def test_next_version_ignores_non_numeric_entries(tmp_path):
    assert next_version(tmp_path / "absent") == 1
    for name in ("1", "7", ".tmp-123", "notes"):
        (tmp_path / name).mkdir()
    assert next_version(tmp_path) == 8


def test_version_dirs_are_ordered_by_number_not_by_name(tmp_path):
    assert version_dirs(tmp_path / "absent") == []
    for name in ("10", "9", "2", ".tmp-123", "notes"):
        (tmp_path / name).mkdir()
    assert [path.name for path in version_dirs(tmp_path)] == ["2", "9", "10"]
    assert next_version(tmp_path) == 11
