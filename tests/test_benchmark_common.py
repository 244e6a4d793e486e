"""What every benchmark's document says about how it was run.

`benchmarks` is a folder of scripts run from the repository root, not an installed package: these
tests run its code there, in a subprocess, as the other benchmark tests do.
"""

import shlex
import subprocess
import sys

from cli_runs import REPO


def run_in_repository(script):
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_command_line_pastes_back_into_a_shell():
    printed = run_in_repository(
        "import sys, types; from benchmarks import common; "
        "sys.modules['__main__'] = types.SimpleNamespace(__spec__=types.SimpleNamespace(name='benchmarks.pretrain')); "
        "sys.argv = ['pretrain.py', '--pretrain_flags=--packing --nsp', '--minutes=85']; "
        "print(common.command_line())")
    assert shlex.split(printed) == ["python", "-m", "benchmarks.pretrain", "--pretrain_flags=--packing --nsp",
                                    "--minutes=85"]


def test_the_load_average_is_the_one_before_the_benchmark_ran():
    # A benchmark writes its document at the end, when its own runs have raised the load.
    printed = run_in_repository(
        "import os; from benchmarks import common; before = common.LOAD_AVERAGE_AT_IMPORT; "
        "os.getloadavg = lambda: (99.0, 99.0, 99.0); "
        "print(common.machine()['load_average_at_start'] == [round(value, 2) for value in before], before)")
    assert printed.startswith("True (") and "99.0" not in printed
