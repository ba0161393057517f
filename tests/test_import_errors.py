"""Importing fastconv without its compiled extension says so plainly, with the command that builds it (Python's
own message from a source tree is a confusing "circular import" of fastconv._C). Fresh processes; a meta_path
hook stands in for the missing or broken extension (an editable install elsewhere would otherwise supply one)."""
import os
import shutil
import subprocess
import sys

import fastconv

PACKAGE = os.path.dirname(os.path.abspath(fastconv.__file__))
BLOCK = ("import sys\n"
         "class Block:\n"
         "    def find_spec(self, name, path=None, target=None):\n"
         "        if name == 'fastconv._C':\n"
         "            raise ImportError({message!r}, name=name)\n"
         "sys.meta_path.insert(0, Block())\n")


def _last_error_line(cwd, message, body, pythonpath=""):
    env = dict(os.environ, PYTHONPATH=pythonpath)
    res = subprocess.run([sys.executable, "-c", BLOCK.format(message=message) + body], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    return res.stderr.strip().splitlines()[-1]


def test_source_tree_without_the_extension(tmp_path):
    """A copy of the package without _C*.so, imported from its parent directory as from a fresh checkout, and
    `python -m fastconv` there."""
    shutil.copytree(PACKAGE, tmp_path / "fastconv", ignore=shutil.ignore_patterns("_C*.so", "_C*.pyd", "__pycache__"))
    for body in ("import fastconv", "import runpy; runpy.run_module('fastconv', run_name='__main__')"):
        last = _last_error_line(tmp_path, "No module named 'fastconv._C'", body)
        assert last.startswith("ImportError: fastconv's compiled extension (fastconv._C) is not built in "
                               f"{tmp_path / 'fastconv'}"), last
        assert "pip install --no-build-isolation -e ." in last and "circular import" not in last


def test_extension_that_does_not_load(tmp_path):
    """The extension is there but fails to load, as one built against another torch does."""
    last = _last_error_line(tmp_path, "undefined symbol: _ZN3c10simulated", "import fastconv",
                            pythonpath=os.path.dirname(PACKAGE))
    assert f"{PACKAGE}/_C" in last and "does not load (undefined symbol: _ZN3c10simulated)" in last, last
    assert "another torch" in last and "pip install --no-build-isolation -e ." in last
