#!/usr/bin/python3
"""Writes a ResNet-18 or ResNet-50 ONNX graph with random weights and torchvision's structure.

No ImageNet ResNet weights can reach our machines, so the embed engine is checked against ONNX
Runtime on graphs that have the exact shape of a torchvision export (opset 13):

  conv1 7x7/2 pad 3 (no bias) -> BatchNormalization -> Relu -> MaxPool 3x3/2 pad 1
  layer1..layer4: BasicBlock (18) or Bottleneck v1.5 (50, stride on the 3x3), with a 1x1
  strided conv + BatchNormalization downsample on the first block where the shape changes
  GlobalAveragePool -> Flatten (or the exporter's Shape/Gather/Unsqueeze/Concat/Reshape)
  -> Gemm(transB=1) to 1000 classes

BatchNormalization stays as separate nodes, as torch.onnx.export(training=EVAL) leaves them
with do_constant_folding off. Initializers use raw_data and torchvision's parameter names. The
graph outputs are "logits" (the Gemm) and "embedding" (the Gemm's input, the pooled feature),
so ONNX Runtime can be asked for both. metadata_props "preprocessing" states ImageNet
mean/std.

Weights: He-normal convolutions (mode fan_out, like torchvision), BatchNormalization close to
identity (running mean near 0, variance near 1), and the last BatchNormalization of each
residual branch scaled down so that the residual sums stay O(1) through all blocks; the
classifier uses torchvision's uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)). The same seed gives
the same file.

Needs Debian's python3-onnx and python3-numpy (run with /usr/bin/python3).

  make_resnet.py --depth 18 --out build/models/resnet18.onnx [--seed 1] [--flatten flatten|reshape]
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PREPROCESSING = ("RGB; resize shorter side to 256 (bilinear), center crop 224x224; "
                 "mean=0.485,0.456,0.406; std=0.229,0.224,0.225 (ImageNet, torchvision); NCHW float32")


class Builder:
    def __init__(self, rng):
        self.rng = rng
        self.nodes = []
        self.inits = []
        self.count = {}

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=arr.dtype), name))
        return name

    def node(self, op, scope, inputs, attrs=None, out=None):
        name = f"{scope}/{op}"
        out = out or f"{name}_output_0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **(attrs or {})))
        return out

    def conv(self, scope, x, cin, cout, k, stride, pad):
        fan_out = cout * k * k
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_out), size=(cout, cin, k, k)).astype(np.float32)
        self.init(f"{scope}.weight", w)
        return self.node("Conv", "/" + scope.replace(".", "/"), [x, f"{scope}.weight"],
                         dict(dilations=[1, 1], group=1, kernel_shape=[k, k], pads=[pad] * 4,
                              strides=[stride, stride]))

    def bn(self, scope, x, c, damp=1.0):
        r = self.rng
        self.init(f"{scope}.weight", (r.uniform(0.8, 1.2, c) * damp).astype(np.float32))
        self.init(f"{scope}.bias", r.normal(0.0, 0.05, c).astype(np.float32))
        self.init(f"{scope}.running_mean", r.normal(0.0, 0.05, c).astype(np.float32))
        self.init(f"{scope}.running_var", r.uniform(0.8, 1.2, c).astype(np.float32))
        ins = [x] + [f"{scope}.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
        return self.node("BatchNormalization", "/" + scope.replace(".", "/"), ins,
                         dict(epsilon=1e-5, momentum=0.9))

    def relu(self, scope, x):
        return self.node("Relu", "/" + scope.replace(".", "/"), [x])


# Residual branches are damped so that each block adds a fraction of its input's variance.
RESIDUAL_DAMP = 0.3


def basic_block(b, scope, x, cin, planes, stride):
    y = b.relu(f"{scope}.relu", b.bn(f"{scope}.bn1", b.conv(f"{scope}.conv1", x, cin, planes, 3, stride, 1), planes))
    y = b.bn(f"{scope}.bn2", b.conv(f"{scope}.conv2", y, planes, planes, 3, 1, 1), planes, RESIDUAL_DAMP)
    if stride != 1 or cin != planes:
        x = b.bn(f"{scope}.downsample.1", b.conv(f"{scope}.downsample.0", x, cin, planes, 1, stride, 0), planes)
    s = b.node("Add", "/" + scope.replace(".", "/"), [y, x])
    return b.relu(f"{scope}.relu_1", s), planes


def bottleneck(b, scope, x, cin, planes, stride):
    out = planes * 4
    y = b.relu(f"{scope}.relu", b.bn(f"{scope}.bn1", b.conv(f"{scope}.conv1", x, cin, planes, 1, 1, 0), planes))
    y = b.relu(f"{scope}.relu_1",
               b.bn(f"{scope}.bn2", b.conv(f"{scope}.conv2", y, planes, planes, 3, stride, 1), planes))
    y = b.bn(f"{scope}.bn3", b.conv(f"{scope}.conv3", y, planes, out, 1, 1, 0), out, RESIDUAL_DAMP)
    if stride != 1 or cin != out:
        x = b.bn(f"{scope}.downsample.1", b.conv(f"{scope}.downsample.0", x, cin, out, 1, stride, 0), out)
    s = b.node("Add", "/" + scope.replace(".", "/"), [y, x])
    return b.relu(f"{scope}.relu_2", s), out


def flatten_like_exporter(b, x):
    """torch.flatten(x, 1) as older PyTorch exporters wrote it: the batch size is read from the
    tensor's Shape at run time and the Reshape target is built from it."""
    def const(name, arr):
        return b.node("Constant", name, [], dict(value=numpy_helper.from_array(arr, name + "_value")))

    shape = b.node("Shape", "/Shape", [x])
    idx = const("/Constant", np.array(0, dtype=np.int64))
    batch = b.node("Gather", "/Gather", [shape, idx], dict(axis=0))
    axes = const("/Constant_1", np.array([0], dtype=np.int64))
    batch1 = b.node("Unsqueeze", "/Unsqueeze", [batch, axes])
    minus1 = const("/Constant_2", np.array([-1], dtype=np.int64))
    target = b.node("Concat", "/Concat", [batch1, minus1], dict(axis=0))
    return b.node("Reshape", "/Reshape", [x, target], out="embedding")


def build(depth, seed, flatten):
    if depth == 18:
        block, layers = basic_block, [2, 2, 2, 2]
    elif depth == 50:
        block, layers = bottleneck, [3, 4, 6, 3]
    else:
        raise SystemExit(f"make_resnet: depth must be 18 or 50, not {depth}")
    b = Builder(np.random.default_rng(seed))
    x = b.conv("conv1", "input", 3, 64, 7, 2, 3)
    x = b.relu("relu", b.bn("bn1", x, 64))
    x = b.node("MaxPool", "/maxpool", [x], dict(ceil_mode=0, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]))
    cin = 64
    for li, (planes, n) in enumerate(zip([64, 128, 256, 512], layers)):
        for bi in range(n):
            stride = 2 if (li > 0 and bi == 0) else 1
            x, cin = block(b, f"layer{li + 1}.{bi}", x, cin, planes, stride)
    x = b.node("GlobalAveragePool", "/avgpool", [x])
    if flatten == "flatten":
        emb = b.node("Flatten", "/Flatten", [x], dict(axis=1), out="embedding")
    else:
        emb = flatten_like_exporter(b, x)
    bound = 1.0 / np.sqrt(cin)
    b.init("fc.weight", b.rng.uniform(-bound, bound, size=(1000, cin)).astype(np.float32))
    b.init("fc.bias", b.rng.uniform(-bound, bound, size=(1000,)).astype(np.float32))
    b.node("Gemm", "/fc", [emb, "fc.weight", "fc.bias"], dict(alpha=1.0, beta=1.0, transB=1), out="logits")

    graph = helper.make_graph(
        b.nodes, f"resnet{depth}", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", cin]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])],
        initializer=b.inits)
    model = helper.make_model(graph, producer_name="lookalike tools/models/make_resnet.py",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    helper.set_model_props(model, {
        "preprocessing": PREPROCESSING,
        "architecture": f"torchvision resnet{depth} structure, random weights (seed {seed})",
        "logits_kind": "pre-softmax",
    })
    onnx.checker.check_model(model)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depth", type=int, required=True, choices=[18, 50])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--flatten", choices=["flatten", "reshape"], default=None,
                    help="how the pooled feature is flattened (default: Flatten for 18, "
                         "the exporter's Shape/Gather/Unsqueeze/Concat/Reshape for 50)")
    a = ap.parse_args()
    flatten = a.flatten or ("flatten" if a.depth == 18 else "reshape")
    model = build(a.depth, a.seed, flatten)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, a.out)
    n = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    print(f"make_resnet: wrote {a.out}: resnet{a.depth}, {len(model.graph.node)} nodes, {n} parameters, "
          f"flatten={flatten}, seed {a.seed}", file=sys.stderr)


if __name__ == "__main__":
    main()
