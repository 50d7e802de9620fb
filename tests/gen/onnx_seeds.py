"""Writes the onnx_load fuzz seed corpus: tiny valid models for every supported op family,
plus truncated and hostile variants. Run with Debian's python3 (python3-onnx):
    /usr/bin/python3 tests/gen/onnx_seeds.py fuzz/onnx_load/corpus
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs, outputs, inits=(), opset=13, meta=None):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    if meta:
        for k, v in meta.items():
            p = m.metadata_props.add()
            p.key, p.value = k, v
    return m.SerializeToString()


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    dw = numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "dw")
    bn = [numpy_helper.from_array(rng.random(4).astype(np.float32) + 0.5, n) for n in ("g", "be", "mu", "var")]
    fc = numpy_helper.from_array(rng.standard_normal((5, 4)).astype(np.float32), "fc")
    fcb = numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "fcb")
    lo = numpy_helper.from_array(np.array(0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(6, np.float32), "hi")
    seeds = {}
    seeds["cnn.onnx"] = model(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c1"], pads=[0, 0, 1, 1], strides=[2, 2]),
            helper.make_node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["n1"], epsilon=1e-3),
            helper.make_node("Clip", ["n1", "lo", "hi"], ["r1"]),
            helper.make_node("Conv", ["r1", "dw"], ["c2"], group=4, pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c2"], ["r2"]),
            helper.make_node("Add", ["r2", "r1"], ["a"]),
            helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("GlobalAveragePool", ["p"], ["gp"]),
            helper.make_node("Flatten", ["gp"], ["embedding"], axis=1),
            helper.make_node("Gemm", ["embedding", "fc", "fcb"], ["logits"], transB=1),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        [vi("x", ["N", 3, 16, 16])],
        [vi("embedding", ["N", 4]), vi("probabilities", ["N", 5])],
        [w, b, dw, fc, fcb, lo, hi] + bn,
        meta={"preprocessing": "value = pixel/127.5 - 1"},
    )
    shp = numpy_helper.from_array(np.array([0], np.int64), "zero")
    neg = numpy_helper.from_array(np.array([-1], np.int64), "neg")
    seeds["shape_chain.onnx"] = model(
        [
            helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
            helper.make_node("Shape", ["p"], ["s"]),
            helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
            helper.make_node("Concat", ["n", "neg"], ["shape"], axis=0),
            helper.make_node("Reshape", ["p", "shape"], ["y"]),
            helper.make_node("MatMul", ["y", "mm"], ["z"]),
            helper.make_node("Dropout", ["z"], ["d"]),
            helper.make_node("Identity", ["d"], ["out"]),
        ],
        [vi("x", ["N", 3, 8, 8])],
        [vi("out", ["N", 2])],
        [shp, neg, numpy_helper.from_array(rng.standard_normal((192, 2)).astype(np.float32), "mm")],
    )
    seeds["unsupported_op.onnx"] = model(
        [helper.make_node("LSTM", ["x"], ["y"])], [vi("x", [1, 3])], [vi("y", [1, 3])]
    )
    ext = onnx.TensorProto()
    ext.name = "w"
    ext.data_type = TensorProto.FLOAT
    ext.dims.extend([1])
    ext.data_location = TensorProto.EXTERNAL
    e = ext.external_data.add()
    e.key, e.value = "location", "weights.bin"
    seeds["external_data.onnx"] = model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [1])], [vi("y", [1])], [ext]
    )
    full = seeds["cnn.onnx"]
    for cut in (1, 7, 40, len(full) // 2, len(full) - 3):
        seeds["cnn_truncated_%d.onnx" % cut] = full[:cut]
    # A length prefix far past the end of the buffer.
    seeds["huge_length.onnx"] = bytes([0x3A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + full[:20]
    # Dims whose product overflows.
    big = onnx.TensorProto()
    big.name = "w"
    big.data_type = TensorProto.FLOAT
    big.dims.extend([1 << 40, 1 << 40])
    seeds["dims_overflow.onnx"] = model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [1])], [vi("y", [1])], [big]
    )
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
