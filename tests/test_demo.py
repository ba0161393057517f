"""The digits demo (fastconv.demo): short runs of the CLI and the training loop, plus the default run's
accuracy claim (>= 97% held-out). One thread, so the tests do not fight over a busy machine's cores."""
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from fastconv import models  # noqa: E402
from fastconv.demo import __main__ as demo_main  # noqa: E402
from fastconv.demo.data import load_digits_32, random_shift, select_classes  # noqa: E402
from fastconv.demo.digits import run_digits, run_transfer  # noqa: E402
from fastconv.demo.train import fit  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _is_png(path):
    return path.exists() and path.read_bytes()[:8] == PNG_MAGIC


def test_data_shapes_and_class_selection():
    data = load_digits_32(0)
    assert data["x_train"].shape[1:] == (1, 32, 32) and data["x_train"].dtype == np.float32
    assert len(data["x_train"]) + len(data["x_test"]) == 1797
    assert abs(float(data["x_train"].mean())) < 1e-4  # standardised on the training set
    upper = select_classes(data, range(5, 10))
    assert set(upper["y_train"].tolist()) == set(range(5)) and len(upper["x_test"]) < len(data["x_test"])


def test_random_shift_moves_each_image_by_its_own_offset():
    x = torch.randn(6, 1, 8, 8)
    out = random_shift(x, np.random.RandomState(0), 2, background=-7.0)
    shifts = np.random.RandomState(0).randint(-2, 3, size=(6, 2))
    for k, (dy, dx) in enumerate(shifts.tolist()):
        ref = torch.roll(x[k], (dy, dx), dims=(-2, -1))
        inside = out[k][:, max(0, dy):8 + min(0, dy), max(0, dx):8 + min(0, dx)]
        assert torch.equal(inside, ref[:, max(0, dy):8 + min(0, dy), max(0, dx):8 + min(0, dx)])
        assert (out[k] == -7.0).sum().item() == 64 - inside.numel()


def test_fastconv_and_torch_builds_train_identically(tmp_path):
    """Two epochs of the demo: same losses and accuracies for both builds, a PNG, per-epoch lines."""
    lines = []
    png = tmp_path / "curves.png"
    runs = run_digits(epochs=2, plot=str(png), out=lines.append, progress=False)
    fc, ref = runs["fastconv"], runs["torch"]
    assert np.allclose(fc["loss"], ref["loss"], rtol=1e-4) and fc["accuracy"] == ref["accuracy"]
    assert fc["accuracy"][-1] > 0.8 and fc["time"] > 0 and ref["time"] > 0
    text = "\n".join(lines)
    for expected in ("epoch  1/2", "epoch  2/2", "fastconv layers: test accuracy", "torch layers:",
                     "time ratio torch / fastconv", f"wrote {png}"):
        assert expected in text, expected
    assert _is_png(png)


def test_default_run_reaches_97_percent():
    """The claim of the README: the default run (12 epochs, seed 0) reaches at least 97% held-out."""
    runs = run_digits(compare_torch=False, plot="", out=lambda s: None, progress=False)
    assert runs["fastconv"]["accuracy"][-1] >= 0.97, runs["fastconv"]["accuracy"]


def test_frozen_base_stays_frozen():
    data = select_classes(load_digits_32(0), range(3))
    torch.manual_seed(0)
    model = models.LeNet5(num_classes=3)
    base = [p.detach().clone() for p in model.features.parameters()]
    head = [p.detach().clone() for p in model.classifier.parameters()]
    for p in model.features.parameters():
        p.requires_grad_(False)
    fit({"m": model}, data, 1, out=lambda s: None, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(base, model.features.parameters()))
    assert not any(torch.equal(a, b) for a, b in zip(head, model.classifier.parameters()))


def test_transfer_mode(tmp_path):
    lines = []
    png = tmp_path / "transfer.png"
    result = run_transfer(epochs=1, plot=str(png), out=lines.append, progress=False)
    assert set(result) == {"pretrain", "frozen base", "fine-tune all"}
    text = "\n".join(lines)
    assert "pretrained on 0-4: test accuracy" in text and _is_png(png)
    assert "frozen base  : test accuracy on 5-9" in text and "fine-tune all: test accuracy on 5-9" in text
    frozen, full = result["frozen base"]["trained_parameters"], result["fine-tune all"]["trained_parameters"]
    n_head = sum(p.numel() for p in models.LeNet5(num_classes=5).classifier.parameters())
    assert frozen == n_head and full > frozen


def test_cli_flags_and_thread_setting_restored(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(2)
    assert demo_main.main(["digits", "--epochs", "1", "--no-torch", "--threads", "1", "--seed", "3"]) == 0
    assert torch.get_num_threads() == 2  # main() restores the caller's setting
    out = capsys.readouterr()
    assert "seed 3, 1 threads" in out.out and "torch layers:" not in out.out
    assert "digits epoch 1/1: 100%" in out.err  # tqdm's bar goes to stderr
    assert _is_png(tmp_path / "digits_training.png")  # the default PNG path
    with pytest.raises(SystemExit):
        demo_main.main(["mnist"])


def test_module_entry_point(tmp_path):
    """`python -m fastconv demo digits` (the top-level CLI) runs in a fresh process."""
    png = tmp_path / "t.png"
    proc = subprocess.run([sys.executable, "-m", "fastconv", "demo", "digits", "--transfer", "--epochs", "1",
                           "--plot", str(png)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fine-tune all: test accuracy on 5-9" in proc.stdout and _is_png(png)
