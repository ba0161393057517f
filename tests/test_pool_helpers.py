"""Input makers shared by the pooling tests."""
import torch


def make_input(shape, layout, dtype=torch.float64, distinct=False, seed=0):
    """Random input in the given layout ('contiguous', 'channels_last', 'noncontig'). distinct=True gives
    a permutation of distinct values (no ties: max pooling is differentiable there)."""
    g = torch.Generator().manual_seed(seed)
    n = 1
    for s in shape:
        n *= s
    if distinct:
        x = (torch.randperm(n, generator=g).to(dtype) / max(n, 1) - 0.5).reshape(shape)
    else:
        x = torch.randn(shape, generator=g, dtype=dtype)
    if layout == "channels_last" and len(shape) == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "noncontig":
        # every other column of a wider tensor
        wide = torch.zeros(*shape[:-1], 2 * shape[-1], dtype=dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    return x
