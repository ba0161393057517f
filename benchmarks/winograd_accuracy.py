"""Accuracy of fastconv's float32 3x3 and 5x5 convolutions against a float64 reference, Winograd on and off.

For every 3x3 and 5x5 stride-1 layer of the benchmark zoo (and its batch; dilated ones included, which run Winograd on
their subgrids, csrc/cpu/conv/conv_subgrid.cpp; grouped ones too, AlexNet's): the relative error ||y - y64|| / ||y64|| of
the output, the input gradient and the weight gradient (for a random grad_output), with
fastconv.backends.cpu.allow_winograd True (default) and False, next to torch's own float32 error.

    python benchmarks/winograd_accuracy.py [--json PATH]
"""
import argparse
import json
import platform

import torch
import torch.nn.functional as TF

import fastconv
import fastconv.nn.functional as FF
from fastconv.bench import zoo


def rel(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


def errors(conv, x, w, b, padding, dilation, groups, g):
    xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
    y = conv(xs, ws, b, padding=padding, dilation=dilation, groups=groups)
    gx, gw = torch.autograd.grad(y, (xs, ws), g)
    return y, gx, gw


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the table here")
    args = ap.parse_args()
    rows = []
    for case in zoo.select(zoo.load(), suite="full", ops=["conv2d"]):
        p, layer = case.params, case.layer
        groups = p.get("groups", 1)
        if p.get("stride", 1) != 1 or (groups > 1 and groups == case.input_shape("cpu")[1]):  # not depthwise
            continue
        ks = layer["kernel_size"]
        r = ks if isinstance(ks, int) else ks[0] if ks[0] == ks[1] else 0
        if r not in (3, 5):
            continue
        shape = case.input_shape("cpu")
        wshape = (layer["out_channels"], shape[1] // groups, r, r)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=g)
        w = torch.randn(wshape, generator=g) / (r * wshape[1] ** 0.5)
        b = torch.randn(wshape[0], generator=g)
        padding, dilation = p.get("padding", 0), p.get("dilation", 1)
        xd, wd = x.double().requires_grad_(), w.double().requires_grad_()
        yd = TF.conv2d(xd, wd, b.double(), padding=padding, dilation=dilation, groups=groups)
        grad = torch.randn(yd.shape, generator=g)
        gxd, gwd = torch.autograd.grad(yd, (xd, wd), grad.double())
        row = {"case": case.name, "input": list(shape), "weight": list(wshape)}
        for name, conv, allow in (("fastconv_winograd", FF.conv2d, True), ("fastconv_exact", FF.conv2d, False),
                                  ("torch", TF.conv2d, True)):
            with fastconv.backends.cpu.flags(allow_winograd=allow):
                y, gx, gw = errors(conv, x, w, b, padding, dilation, groups, grad)
            row[name] = {"output": rel(y, yd), "grad_input": rel(gx, gxd), "grad_weight": rel(gw, gwd)}
        rows.append(row)
        print(f"{case.name:28s} winograd out {row['fastconv_winograd']['output']:.1e} "
              f"gin {row['fastconv_winograd']['grad_input']:.1e} gw {row['fastconv_winograd']['grad_weight']:.1e}"
              f" | exact out {row['fastconv_exact']['output']:.1e} | torch out {row['torch']['output']:.1e}",
              flush=True)
    worst = max(max(r["fastconv_winograd"].values()) for r in rows)
    print(f"worst Winograd-on relative error over {len(rows)} layers: {worst:.2e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                       "layers": rows, "worst_winograd": worst}, f, indent=1)


if __name__ == "__main__":
    main()
