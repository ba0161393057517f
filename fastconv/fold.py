"""Folding eval-mode BatchNorm into the convolution before it, for inference.

In eval mode BatchNorm is a fixed per-channel affine map, y = (x - mean) * gamma / sqrt(var + eps) + beta, so a
convolution followed by it is one convolution with rescaled weights and a new bias:

    w' = w * s,  b' = (b - mean) * s + beta,  s = gamma / sqrt(var + eps)   (per output channel)

which saves the BatchNorm's pass over every activation. The model's numbers change only by rounding (the new
weights are computed in float64 and rounded once). Opt-in and for inference only: the folded model has no
BatchNorm left to train, and its statistics are frozen.

    model = fastconv.fold_batchnorm(fastconv.convert(model).eval())

Where the data flow is a plain chain (torch.fx can trace the model: torchvision's ResNets, VGG, MobileNets,
DenseNet's transitions), every convolution whose only consumer is a BatchNorm is folded, and the result is a
torch.fx.GraphModule. A model fx cannot trace has only the (convolution, BatchNorm) pairs that sit next to each
other in an nn.Sequential folded, which is always safe, and keeps its own class.
"""
from __future__ import annotations

import copy

import torch

_BN = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)  # fastconv's convolution modules subclass torch's


class _LeafTracer(torch.fx.Tracer):
    """Keeps torch.nn and fastconv.nn modules whole (fastconv's forward has Python fast paths fx cannot trace)."""

    def is_leaf_module(self, m, qualname):
        if type(m).__module__.startswith("fastconv.nn"):
            return True
        return super().is_leaf_module(m, qualname)


def _foldable(conv, bn):
    pair = (isinstance(conv, torch.nn.Conv1d) and isinstance(bn, torch.nn.BatchNorm1d)) or (
        isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d))
    return pair and bn.running_mean is not None and bn.running_var is not None and bn.num_features == conv.out_channels


def _fold_into(conv, bn):
    """Rewrites conv's weight and bias in place so that conv alone computes bn(conv(x))."""
    w = conv.weight.detach()
    dev, dtype = w.device, w.dtype
    var = bn.running_var.detach().to(dev, torch.float64)
    mean = bn.running_mean.detach().to(dev, torch.float64)
    gamma = bn.weight.detach().to(dev, torch.float64) if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.detach().to(dev, torch.float64) if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    bias = conv.bias.detach().to(torch.float64) if conv.bias is not None else torch.zeros_like(mean)
    shape = (-1,) + (1,) * (w.dim() - 1)
    new_w = (w.to(torch.float64) * scale.reshape(shape)).to(dtype)
    new_b = ((bias - mean) * scale + beta).to(dtype)
    with torch.no_grad():
        conv.weight.copy_(new_w)
    conv.bias = torch.nn.Parameter(new_b, requires_grad=conv.weight.requires_grad)


def _fold_graph(model, graph):
    gm = torch.fx.GraphModule(model, graph, model.__class__.__name__)
    modules = dict(gm.named_modules())
    folded = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), _BN):
            continue
        src = node.args[0] if node.args else None
        if not isinstance(src, torch.fx.Node) or src.op != "call_module" or len(src.users) != 1:
            continue
        conv, bn = modules.get(src.target), modules[node.target]
        if len(node.args) != 1 or node.kwargs or not _foldable(conv, bn):
            continue
        _fold_into(conv, bn)
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
        folded += 1
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm, folded


def _fold_sequentials(model):
    folded = 0
    for seq in [m for m in model.modules() if isinstance(m, torch.nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if _foldable(conv, bn):
                _fold_into(conv, bn)
                seq._modules[b] = torch.nn.Identity()
                folded += 1
    return model, folded


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Returns a copy of `model` with every eval-mode BatchNorm that directly follows a convolution folded into it
    (see the module docstring); `model` itself is left as it is. The model must be in eval mode: folding freezes
    the running statistics. `folded_batchnorms` on the result counts the folds."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"fold_batchnorm: model must be a torch.nn.Module, got {type(model).__name__}")
    training = [name or type(m).__name__ for name, m in model.named_modules() if isinstance(m, _BN) and m.training]
    if training:
        raise ValueError(f"fold_batchnorm: BatchNorm modules in training mode ({', '.join(training[:3])}"
                         f"{', ...' if len(training) > 3 else ''}); call model.eval() first (folding freezes their "
                         "running statistics)")
    model = copy.deepcopy(model)
    try:
        graph = _LeafTracer().trace(model)
    except Exception:  # not traceable by torch.fx (data-dependent control flow): the safe subset
        graph = None
    folded_model, folded = _fold_graph(model, graph) if graph is not None else _fold_sequentials(model)
    folded_model.folded_batchnorms = folded
    return folded_model


__all__ = ["fold_batchnorm"]
