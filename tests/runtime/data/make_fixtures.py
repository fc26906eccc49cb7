"""Writes the ONNX fixtures of tests/runtime with onnx.helper and ONNX Runtime's quantiser, and
their expected outputs computed by onnxruntime (so tests without onnx/onnxruntime still check
ember.runtime against an independent reference). Rerun only to change the fixtures:

    python tests/runtime/data/make_fixtures.py
"""
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)


def save(model, name, feeds):
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(HERE, name)
    onnx.save(model, path)
    outs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    np.savez(path.replace(".onnx", "_expected.npz"), **feeds,
             **{f"out_{i}": o for i, o in enumerate(outs)})


def model(nodes, inputs, outputs, inits, name):
    g = h.make_graph(nodes, name, inputs, outputs,
                     initializer=[nh.from_array(a, n) for n, a in inits.items()])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], producer_name="fixture",
                     producer_version="1")
    m.ir_version = 8
    h.set_model_props(m, {"purpose": "ember.runtime tests"})
    return m


def f32(*shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# an MLP: MatMul + Add, Relu, Gemm, Softmax; dynamic batch
mlp = model([h.make_node("MatMul", ["x", "W1"], ["h"]), h.make_node("Add", ["h", "b1"], ["a"]),
             h.make_node("Relu", ["a"], ["r"]),
             h.make_node("Gemm", ["r", "W2", "b2"], ["logits"], transB=1),
             h.make_node("Softmax", ["logits"], ["probs"], axis=-1)],
            [h.make_tensor_value_info("x", T.FLOAT, ["batch", 6])],
            [h.make_tensor_value_info("probs", T.FLOAT, ["batch", 3]),
             h.make_tensor_value_info("logits", T.FLOAT, ["batch", 3])],
            {"W1": f32(6, 16), "b1": f32(16), "W2": f32(3, 16), "b2": f32(3)}, "mlp")
save(mlp, "mlp.onnx", {"x": f32(5, 6, scale=1.0)})

# a CNN, float, then quantised by ONNX Runtime: dynamic, static QDQ and static QOperator
cnn = model([h.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c"], ["r"]),
             h.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             h.make_node("Flatten", ["p"], ["f"]),
             h.make_node("Gemm", ["f", "W2", "B2"], ["y"], transB=1)],
            [h.make_tensor_value_info("x", T.FLOAT, ["batch", 1, 8, 8])],
            [h.make_tensor_value_info("y", T.FLOAT, ["batch", 10])],
            {"W": f32(4, 1, 3, 3), "B": f32(4, scale=0.1), "W2": f32(10, 64, scale=0.2),
             "B2": f32(10, scale=0.1)}, "cnn")
# ONNX Runtime's QOperator form of a Gemm is a contrib op (com.microsoft.QGemm): this one
# ends in a MatMul, which becomes the standard QLinearMatMul
cnn_mm = model([h.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
                h.make_node("Relu", ["c"], ["r"]),
                h.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                h.make_node("Flatten", ["p"], ["f"]), h.make_node("MatMul", ["f", "W2"], ["y"])],
               [h.make_tensor_value_info("x", T.FLOAT, ["batch", 1, 8, 8])],
               [h.make_tensor_value_info("y", T.FLOAT, ["batch", 10])],
               {"W": f32(4, 1, 3, 3), "B": f32(4, scale=0.1), "W2": f32(64, 10, scale=0.2)},
               "cnn_matmul")
x = f32(4, 1, 8, 8, scale=1.0)
tmp = os.path.join(HERE, "_cnn_float.onnx")
tmp_mm = os.path.join(HERE, "_cnn_matmul_float.onnx")
onnx.save(cnn, tmp)
onnx.save(cnn_mm, tmp_mm)
try:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)

    out = os.path.join(HERE, "cnn_dynamic_ort.onnx")
    quantize_dynamic(tmp, out, weight_type=QuantType.QInt8)
    save(onnx.load(out), "cnn_dynamic_ort.onnx", {"x": x})

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": f32(8, 1, 8, 8, scale=1.0)} for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    for src, fmt, name in ((tmp, QuantFormat.QDQ, "cnn_qdq_ort.onnx"),
                           (tmp_mm, QuantFormat.QOperator, "cnn_qop_ort.onnx")):
        out = os.path.join(HERE, name)
        quantize_static(src, out, Reader(), quant_format=fmt, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        save(onnx.load(out), name, {"x": x})
finally:
    os.remove(tmp)
    os.remove(tmp_mm)
