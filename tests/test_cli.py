"""`python -m fastconv`'s own options: --help / -h and --version exit 0 on stdout, an unknown command exits 2
with the usage on stderr. Each in a fresh process, as a user runs it."""
import subprocess
import sys

import pytest

import fastconv
from conftest import subprocess_env



def _run(*args):
    return subprocess.run([sys.executable, "-m", "fastconv", *args], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_on_stdout_exits_0(flag):
    res = _run(flag)
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout.startswith("usage: python -m fastconv")
    for cmd in ("info", "bench", "demo", "--version"):
        assert cmd in res.stdout


def test_version_exits_0():
    res = _run("--version")
    assert res.returncode == 0 and res.stdout == f"fastconv {fastconv.__version__}\n"


def test_unknown_command_exits_2_with_usage_on_stderr():
    res = _run("--nonsense")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith("usage: python -m fastconv") and "'--nonsense'" in res.stderr


def test_subcommand_help_exits_0():
    res = _run("bench", "--help")
    assert res.returncode == 0 and "--suite" in res.stdout
