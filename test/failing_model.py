"""A real ONNX model that loads as a YOLOX detector and fails in ONNX Runtime on every inference:
its output is reshaped to a shape computed from the pixel values, which never fits. Drives the
inference-failure path of the vision pipeline without mocking the detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 64
ROWS = 8 * 8 + 4 * 4 + 2 * 2  # YOLOX grid cells at 64x64
NAMES = ('person', 'handbag')


def failing_yolox_model(directory: Path) -> tuple[str, str]:
    """(model path, class names path) in ``directory``; configure ``layout: yolox`` (the output
    shape is only known at run time)."""
    names = directory / 'failing_names.txt'
    names.write_text('\n'.join(NAMES) + '\n')
    rows = np.zeros((1, ROWS, 5 + len(NAMES)), np.float32)
    nodes = [
        helper.make_node('ReduceMax', ['images'], ['brightest'], keepdims=0),
        helper.make_node('Cast', ['brightest'], ['brightest_int'], to=TensorProto.INT64),
        helper.make_node('Add', ['brightest_int', 'offset'], ['columns']),
        helper.make_node('Reshape', ['columns', 'one'], ['columns_1d']),
        helper.make_node('Concat', ['one', 'minus_one', 'columns_1d'], ['shape'], axis=0),
        helper.make_node('Reshape', ['rows', 'shape'], ['output']),
    ]
    initializers = [numpy_helper.from_array(rows, 'rows'),
                    numpy_helper.from_array(np.array(1000, np.int64), 'offset'),
                    numpy_helper.from_array(np.array([1], np.int64), 'one'),
                    numpy_helper.from_array(np.array([-1], np.int64), 'minus_one')]
    graph = helper.make_graph(
        nodes, 'failing_detector',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info('output', TensorProto.FLOAT, [1, ROWS, 5 + len(NAMES)])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=False)
    path = directory / 'failing_yolox.onnx'
    onnx.save(model, path)
    return str(path), str(names)
