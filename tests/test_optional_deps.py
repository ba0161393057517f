"""The bench and the demo check their optional dependencies (pyproject.toml's bench and demo extras) before
they start, and say what to install; without tqdm they run without a progress bar and say so. A module is made
missing with None in sys.modules (its import fails)."""
import sys

import pytest

from fastconv import _optional
from fastconv._optional import missing_message
from fastconv.bench.__main__ import main as bench_main
from fastconv.demo.__main__ import main as demo_main

TINY = ["--case", "mnist.conv1", "--budget", "0.05", "--min-repeats", "3", "--remeasure", "0", "--no-probes",
        "--threads", "1"]


@pytest.fixture(autouse=True)
def _fresh_notes(monkeypatch):
    monkeypatch.setattr(_optional, "_told", set())  # the missing-tqdm line is said once per process


def _without(monkeypatch, *modules):
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def test_message_names_the_pip_package_and_the_extra(monkeypatch):
    assert missing_message("demo", ["sys", "os"], "x") is None
    _without(monkeypatch, "sklearn", "numpy")
    msg = missing_message("demo", ["sys", "sklearn", "numpy"], "the demo")
    assert msg.startswith("the demo needs scikit-learn, numpy, which are not installed")
    assert "`pip install scikit-learn numpy`" in msg and "'.[demo]'" in msg


def test_bench_without_tqdm_runs_without_a_bar(monkeypatch, capsys):
    _without(monkeypatch, "tqdm")
    assert bench_main(TINY) == 0
    out = capsys.readouterr()
    assert "fastconv.bench: no progress bar: tqdm is not installed (`pip install tqdm`" in out.err
    assert "'.[bench]'" in out.err and "mnist.conv1" in out.out


def test_bench_plot_without_matplotlib_stops_before_the_suite(monkeypatch, capsys, tmp_path):
    _without(monkeypatch, "matplotlib")
    assert bench_main(TINY + ["--plot", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "'.[bench]'" in err
    assert "mnist.conv1" not in err and not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("gone,name", [("sklearn", "scikit-learn"), ("numpy", "numpy")])
def test_demo_without_its_extra(monkeypatch, capsys, gone, name):
    _without(monkeypatch, gone)
    assert demo_main(["digits", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"needs {name}" in err and "'.[demo]'" in err


def test_demo_needs_matplotlib_only_to_plot_and_tqdm_only_for_its_bar(monkeypatch, capsys):
    _without(monkeypatch, "matplotlib")
    assert demo_main(["digits", "--epochs", "1"]) == 2
    assert "needs matplotlib" in capsys.readouterr().err
    _without(monkeypatch, "tqdm")
    assert demo_main(["digits", "--epochs", "1", "--no-torch", "--plot", ""]) == 0
    err = capsys.readouterr().err
    assert err.count("no progress bar: tqdm is not installed") == 1 and "'.[demo]'" in err
