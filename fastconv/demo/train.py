"""Minibatch training (Adam with a one-cycle learning rate, cross-entropy) of one or more models on the
same batches, with per-epoch loss / test accuracy.

Several models (e.g. a fastconv build and a torch build with the same initial weights) are trained
*interleaved*: each step draws one batch and then runs forward + backward + optimizer step on every model in
turn, timing each model's step on its own. The machine's load then affects both builds alike, which makes
the time comparison fair on a busy machine, and both builds see exactly the same data.
"""
import time

import numpy as np
import torch

from .._optional import progress_bar
from .data import random_shift


def evaluate(model, x, y, batch_size=256):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += (model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
    return correct / max(1, len(x))


def fit(models, data, epochs, lr=3e-3, batch_size=32, seed=0, shift=2, label="train", out=print, progress=True):
    """Trains every model of the dict `models` (name -> nn.Module) in place. The batch order and the random
    shifts (augmentation, up to `shift` pixels) depend only on `seed`. Only parameters with requires_grad
    are optimised (a frozen base stays frozen). Returns name -> history dict: per-epoch 'loss' (training
    loss of the epoch) and 'accuracy' (held-out), and 'time' (s, summed training steps, evaluation excluded).
    """
    x_train, y_train = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    x_test, y_test = torch.from_numpy(data["x_test"]), torch.from_numpy(data["y_test"])
    background = float(data["x_train"].min())  # the standardised value of a blank pixel
    steps = (len(x_train) + batch_size - 1) // batch_size
    opts, scheds = {}, {}
    for name, model in models.items():
        opts[name] = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
        scheds[name] = torch.optim.lr_scheduler.OneCycleLR(opts[name], max_lr=lr, total_steps=epochs * steps)
    rng = np.random.RandomState(seed)
    hist = {name: {"loss": [], "accuracy": [], "time": 0.0} for name in models}
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        bar = progress_bar("demo", total=steps, desc=f"{label} epoch {epoch + 1}/{epochs}", unit="batch",
                           disable=not progress)
        for model in models.values():
            model.train()
        totals = dict.fromkeys(models, 0.0)
        for i in range(0, len(x_train), batch_size):
            idx = torch.from_numpy(order[i:i + batch_size])
            xb = random_shift(x_train[idx], rng, shift, background) if shift else x_train[idx]
            yb = y_train[idx]
            for name, model in models.items():
                t0 = time.perf_counter()
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                opts[name].zero_grad(set_to_none=True)
                loss.backward()
                opts[name].step()
                hist[name]["time"] += time.perf_counter() - t0
                scheds[name].step()
                totals[name] += loss.item() * len(idx)
            bar.set_postfix_str("loss " + " ".join(f"{totals[n] / min(i + batch_size, len(x_train)):.4f}"
                                                   for n in models), refresh=False)
            bar.update(1)
        parts = []
        for name, model in models.items():
            h = hist[name]
            h["loss"].append(totals[name] / len(x_train))
            h["accuracy"].append(evaluate(model, x_test, y_test))
            prefix = f"{name}: " if len(models) > 1 else ""
            parts.append(f"{prefix}loss {h['loss'][-1]:.4f} test acc {100 * h['accuracy'][-1]:6.2f}%")
        bar.close()
        out(f"{label} epoch {epoch + 1:2d}/{epochs}  " + "  ".join(parts))
    return hist
