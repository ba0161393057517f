"""fastconv.fold_batchnorm: eval-mode BatchNorm folded into the convolution before it (fastconv/fold.py)."""
import pytest
import torch

import fastconv
import fastconv.models as M


def randomize_bn(model):
    """BatchNorms with statistics and affine parameters far from the identity, so a missed fold shows."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            if m.running_mean is not None:
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            if m.weight is not None:
                m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model


def count(model, cls):
    return sum(isinstance(m, cls) for m in model.modules())


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("convert", [False, True], ids=["torch", "fastconv"])
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_folds_every_conv_bn_pair_of_a_network(name, convert):
    torch.manual_seed(0)
    model = (M.resnet18 if name == "resnet18" else M.MobileNetV2)(num_classes=10)
    randomize_bn(model)
    if convert:
        fastconv.convert(model)
    model.eval()
    bns = count(model, torch.nn.BatchNorm2d)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fastconv.fold_batchnorm(model)
    assert folded.folded_batchnorms == bns and count(folded, torch.nn.BatchNorm2d) == 0
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, actual = model(x), folded(x)
        assert rel_err(actual, expected) < 1e-5
        xl = x.contiguous(memory_format=torch.channels_last)
        assert rel_err(folded(xl), expected) < 1e-5
    # the argument is left as it was
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    if convert:
        assert count(folded, fastconv.nn.Conv2d) == count(model, fastconv.nn.Conv2d)


def test_training_mode_is_refused():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="model.eval"):
        fastconv.fold_batchnorm(model)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fastconv.fold_batchnorm(lambda x: x)


class Branchy(torch.nn.Module):
    """Not traceable by torch.fx (a branch on a tensor's value): only adjacent Sequential pairs are folded. Its
    separate conv and BN attributes are not a pair fold_batchnorm may assume."""

    def __init__(self):
        super().__init__()
        self.block = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8),
                                         torch.nn.ReLU())
        self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(8)

    def forward(self, x):
        y = self.block(x)
        if y.sum() > 0:
            return self.bn(y) + self.conv(y)
        return self.conv(y)


def test_untraceable_model_folds_sequential_pairs_only():
    model = randomize_bn(Branchy()).eval()
    folded = fastconv.fold_batchnorm(model)
    assert folded.folded_batchnorms == 1 and type(folded) is Branchy
    assert isinstance(folded.block[1], torch.nn.Identity) and isinstance(folded.bn, torch.nn.BatchNorm2d)
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        assert rel_err(folded(x), model(x)) < 1e-5


class SharedOutput(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3)
        self.bn = torch.nn.BatchNorm2d(6)
        self.conv1d = torch.nn.Conv1d(4, 5, 3, bias=False)
        self.bn1d = torch.nn.BatchNorm1d(5, affine=False)
        self.untracked = torch.nn.Sequential(torch.nn.Conv2d(6, 6, 1), torch.nn.BatchNorm2d(6, track_running_stats=False))

    def forward(self, x, s):
        c = self.conv(x)
        return self.untracked(self.bn(c) + c), self.bn1d(self.conv1d(s))


def test_only_a_bn_that_is_the_convs_sole_consumer_is_folded():
    """conv's output also feeds the sum: not folded. Conv1d + BatchNorm1d without affine, no conv bias: folded. A
    BatchNorm without running statistics (it normalizes with the batch's own) is never folded."""
    model = randomize_bn(SharedOutput()).eval()
    folded = fastconv.fold_batchnorm(model)
    assert folded.folded_batchnorms == 1
    x, s = torch.randn(2, 3, 8, 8), torch.randn(3, 4, 11)
    with torch.no_grad():
        for a, e in zip(folded(x, s), model(x, s)):
            assert rel_err(a, e) < 1e-5


def test_float64_model_folds_to_float64():
    model = randomize_bn(torch.nn.Sequential(fastconv.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))).double().eval()
    folded = fastconv.fold_batchnorm(model)
    assert folded.folded_batchnorms == 1
    conv = [m for m in folded.modules() if isinstance(m, torch.nn.Conv2d)][0]
    assert conv.weight.dtype == torch.float64 and conv.bias.dtype == torch.float64
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    with torch.no_grad():
        assert rel_err(folded(x), model(x)) < 1e-12
