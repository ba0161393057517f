"""LeNet-5 on scikit-learn's handwritten digits, with fastconv layers (and the same run with torch layers).

`python -m fastconv.demo digits`: trains LeNet-5 (tanh, average-pool subsampling; see
fastconv.models.LeNet5) on the 8x8 digits upsampled to 32x32 (see fastconv.demo.data), with a fixed
seed and a stratified 25% held-out test split, and trains the same network built from torch.nn layers
(same initial weights, same batches) interleaved with it; prints per-epoch loss / test accuracy of both,
writes a PNG of the curves, and prints both training times side by side.

`--transfer`: pretrain on digits 0-4, then learn digits 5-9 with a freshly initialised head (F6 + output),
once with the convolutional base frozen and once fine-tuning everything, and compare test accuracies.
"""
import copy

import torch

from .. import models
from .data import load_digits_32, select_classes
from .train import fit


def build(seed, num_classes=10, layers=None):
    torch.manual_seed(seed)
    return models.LeNet5(num_classes=num_classes, layers=layers)


def run_digits(epochs=12, seed=0, compare_torch=True, plot="digits_training.png", lr=3e-3, batch_size=32,
               out=print, progress=True):
    data = load_digits_32(seed)
    out(f"digits: {len(data['x_train'])} training / {len(data['x_test'])} test images, LeNet-5 on 32x32, "
        f"{epochs} epochs, seed {seed}, {torch.get_num_threads()} threads")
    builds = {"fastconv": build(seed)}
    if compare_torch:
        builds["torch"] = build(seed, layers=torch.nn)
        builds["torch"].load_state_dict(builds["fastconv"].state_dict())  # same initial weights
        out("training the fastconv and the torch build interleaved, step by step on the same batches")
    runs = fit(builds, data, epochs, lr, batch_size, seed, label="digits", out=out, progress=progress)
    for name, h in runs.items():
        out(f"{name + ' layers:':16s} test accuracy {100 * h['accuracy'][-1]:.2f}%  final train loss "
            f"{h['loss'][-1]:.4f}  training time {h['time']:.2f} s")
    if compare_torch:
        out(f"time ratio torch / fastconv: {runs['torch']['time'] / runs['fastconv']['time']:.2f} "
            "(> 1: fastconv faster)")
    if plot:
        plot_curves(runs, plot, "LeNet-5 on sklearn digits")
        out(f"wrote {plot}")
    return runs


def run_transfer(epochs=8, seed=0, plot="digits_transfer.png", lr=3e-3, batch_size=32, out=print, progress=True):
    data = load_digits_32(seed)
    first, second = select_classes(data, range(5)), select_classes(data, range(5, 10))
    out(f"transfer: pretrain on digits 0-4 ({len(first['x_train'])} images), then learn 5-9 "
        f"({len(second['x_train'])} images) with a new head")
    base = build(seed, num_classes=5)
    pre = fit({"pretrain": base}, first, epochs, lr, batch_size, seed, label="pretrain 0-4", out=out,
              progress=progress)["pretrain"]
    out(f"pretrained on 0-4: test accuracy {100 * pre['accuracy'][-1]:.2f}%")
    runs = {}
    for mode in ("frozen base", "fine-tune all"):
        model = copy.deepcopy(base)
        model.classifier = build(seed + 1, num_classes=5).classifier  # the same new head in both modes
        if mode == "frozen base":
            for p in model.features.parameters():
                p.requires_grad_(False)
        runs[mode] = fit({mode: model}, second, epochs, lr, batch_size, seed, label=mode, out=out,
                         progress=progress)[mode]
        n_train = runs[mode]["trained_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        out(f"{mode:13s}: test accuracy on 5-9 {100 * runs[mode]['accuracy'][-1]:.2f}% "
            f"({n_train} trained parameters, {runs[mode]['time']:.2f} s)")
    if plot:
        plot_curves(runs, plot, "digits 5-9 after pretraining on 0-4")
        out(f"wrote {plot}")
    return {"pretrain": pre, **runs}


def plot_curves(runs, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for name, h in runs.items():
        epochs = range(1, len(h["loss"]) + 1)
        ax_loss.plot(epochs, h["loss"], marker="o", label=name)
        ax_acc.plot(epochs, [100 * a for a in h["accuracy"]], marker="o", label=name)
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="held-out accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
