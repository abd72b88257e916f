"""tf2onnx's converter for a TF.js graph model, with three gaps of its TF.js reader patched
(used by scripts/get_pose_model.sh; the arguments are tf2onnx.convert's):

- numpy 2 has no ``np.product``;
- fused ops (_FusedConv2D, _FusedDepthwiseConv2dNative, _FusedMatMul) in TF.js graphs lack
  the ``TArgs`` attribute tf2onnx reads their argument types from;
- attributes with a default type (index types) are missing from TF.js node definitions.
"""

import sys

import numpy as np
from tensorflow.python.framework import dtypes
from tf2onnx import convert, tfjs_utils

FUSED_OPS = ('_FusedConv2D', '_FusedDepthwiseConv2dNative', '_FusedMatMul')

if not hasattr(np, 'product'):
    np.product = np.prod
_output_shapes = tfjs_utils.get_output_shapes
_output_names_and_dtypes = tfjs_utils.get_output_names_and_dtypes


def output_shapes_with_targs(node_def, *args, **kwargs):
    if node_def.op in FUSED_OPS and 'TArgs' not in node_def.attr:
        node_def.attr['TArgs'].list.type.extend([node_def.attr['T'].type] * node_def.attr['num_args'].i)
    return _output_shapes(node_def, *args, **kwargs)


def output_names_and_dtypes_with_defaults(op_type, tf_attr, input_dtypes):
    try:
        op_def = tfjs_utils.tf_api_def_map.get_op_def(op_type)
    except Exception:  # noqa: BLE001 - ops TensorFlow does not register (the fused ones) have no defaults
        return _output_names_and_dtypes(op_type, tf_attr, input_dtypes)
    for attr in op_def.attr:
        if (attr.name not in tf_attr and attr.HasField('default_value')
                and attr.default_value.WhichOneof('value') == 'type'):
            tf_attr[attr.name] = dtypes.as_dtype(attr.default_value.type)
    return _output_names_and_dtypes(op_type, tf_attr, input_dtypes)


tfjs_utils.get_output_shapes = output_shapes_with_targs
tfjs_utils.get_output_names_and_dtypes = output_names_and_dtypes_with_defaults

if __name__ == '__main__':
    sys.argv = ['tf2onnx.convert', *sys.argv[1:]]
    convert.main()
