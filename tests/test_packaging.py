"""A regular (non-editable) install carries what a run reads besides code: the shipped configs."""

import shutil
import subprocess
import sys
import zipfile

from cli_runs import REPO


def test_a_built_wheel_installs_the_configs_and_finds_them_outside_the_repository(tmp_path):
    # Built from a copy: setuptools leaves build/ beside the sources.
    source = shutil.copytree(REPO, tmp_path / "source", ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "runs", "exports", "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "wheel"), str(source)], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "wheel").glob("zoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "trainers" / "configs").glob("*/*.yaml"))
    assert shipped and set(shipped) <= set(names)

    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, cwd=tmp_path)
    found = subprocess.run(
        [sys.executable, "-c", "from trainers import config; print(config.load_config('bert/sst2_local').model_name, "
                               "config.default_config_path('bert_mini', task='pretrain'))"],
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"}, cwd=tmp_path, capture_output=True,
        text=True, check=True,
    ).stdout.split()
    assert found[0] == "bert"
    assert found[1] == str(tmp_path / "site" / "trainers" / "configs" / "bert" / "pretrain.yaml")
