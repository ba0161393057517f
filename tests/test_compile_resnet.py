"""torch.compile(fullgraph=True) of a converted ResNet-18: no graph breaks (fullgraph raises on one), the
graph calls fastconv's ops (not torch's convolution), and compiled outputs, gradients and batch-norm
statistics match eager, in eval and in train mode.

Two backends: aot_eager (dynamo + AOT autograd with fastconv's fake kernels, the parts a fastconv op can
break) in float32, and inductor, torch.compile's default, which generates C++ for the ops around fastconv's
(about 30 s here). The inductor run is in float64: in float32 inductor's fused batch norm alone moves the
input gradient of this 2-image training step by ~1e-3 relative (measured with torch's own layers: 1.4e-3;
fastconv's: 1.1e-3), which would hide an error of fastconv's of that size; in float64 it is ~1e-12.
FASTCONV_SKIP_INDUCTOR=1 skips it.
"""
import copy

import pytest
import torch

import fastconv
from fastconv import models
from conftest import COMPILE_BACKENDS, assert_close_scaled, graph_op_names, recording_backend


def _converted_resnet18(dtype):
    torch.manual_seed(0)
    model = models.resnet18(num_classes=5, width=0.125, layers=torch.nn).to(dtype)
    model, report = fastconv.convert(model, strict=True)
    assert len(report.swapped) == 22  # 20 convs (incl. 3 projections), the max pool and the adaptive avg pool
    return model


@pytest.mark.parametrize("backend,dtype", COMPILE_BACKENDS)
def test_compiled_converted_resnet18_matches_eager(backend, dtype):
    torch._dynamo.reset()
    eager = _converted_resnet18(dtype)
    compiled_model = copy.deepcopy(eager)
    graphs = []
    compiled = torch.compile(compiled_model, fullgraph=True, backend=recording_backend(backend, graphs))
    x = torch.randn(2, 3, 32, 32, dtype=dtype)

    eager.eval()
    compiled_model.eval()
    with torch.no_grad():
        assert_close_scaled(compiled(x), eager(x), what="eval output")
    assert len(graphs) == 1  # fullgraph: one graph for the whole forward
    names = graph_op_names(graphs)
    assert any("fastconv.conv2d" in n for n in names), names
    assert any("fastconv" in n and "max_pool2d" in n for n in names), names
    assert not any(n.endswith("conv2d") and "fastconv" not in n for n in names), names

    eager.train()
    compiled_model.train()
    for model, fn in ((eager, eager), (compiled_model, compiled)):
        xi = x.clone().requires_grad_(True)
        y = fn(xi)
        (y * torch.linspace(-1, 1, y.numel(), dtype=dtype).view_as(y)).sum().backward()
        model.result = (y.detach(), xi.grad)
    assert_close_scaled(compiled_model.result[0], eager.result[0], what="train output")
    assert_close_scaled(compiled_model.result[1], eager.result[1], what="input gradient")
    for (name, p), q in zip(eager.named_parameters(), compiled_model.parameters()):
        assert_close_scaled(q.grad, p.grad, what=f"gradient of {name}")
    for (name, b), c in zip(eager.named_buffers(), compiled_model.buffers()):
        if b.is_floating_point():
            assert_close_scaled(c, b, what=f"buffer {name}")
