"""A plain minibatch training loop (Adam, cross-entropy) with per-epoch loss / test accuracy."""
import time

import numpy as np
import torch

from ._progress import Progress


def evaluate(model, x, y, batch_size=256):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            correct += (model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
    return correct / max(1, len(x))


def fit(model, data, epochs, lr=2e-3, batch_size=32, seed=0, label="train", params=None, quiet=False):
    """Trains in place; the data order depends only on `seed`, so two builds see identical batches.
    Returns a history dict: per-epoch train loss, test accuracy, and the total training time (s)."""
    x_train, y_train = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
    x_test, y_test = torch.from_numpy(data["x_test"]), torch.from_numpy(data["y_test"])
    params = [p for p in (model.parameters() if params is None else params) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    rng = np.random.RandomState(seed)
    hist = {"loss": [], "accuracy": [], "time": 0.0}
    steps = (len(x_train) + batch_size - 1) // batch_size
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x_train)))
        bar = None if quiet else Progress(steps, f"{label} epoch {epoch + 1}/{epochs}")
        model.train()
        t0 = time.perf_counter()
        total, seen = 0.0, 0
        for i in range(0, len(x_train), batch_size):
            idx = order[i:i + batch_size]
            loss = torch.nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            if bar:
                bar.update(1, f"loss {total / seen:.4f}")
        hist["time"] += time.perf_counter() - t0
        acc = evaluate(model, x_test, y_test)
        hist["loss"].append(total / seen)
        hist["accuracy"].append(acc)
        if bar:
            bar.close(f"loss {total / seen:.4f} test acc {100 * acc:.2f}%")
    return hist
