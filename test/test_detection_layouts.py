"""Every supported output layout, through tiny ONNX models whose outputs are known constants,
so the decoded, filtered, suppressed and rescaled boxes can be checked exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kaiserslautern_vss.detection.layouts import LayoutError, ModelLayout, recognise_layout, yolo_grid_count
from kaiserslautern_vss.detection.onnx_detector import DetectorSettings, ModelLoadError, OnnxDetector

SIZE = 64                       # model input: 64x64
GRID = yolo_grid_count(SIZE, SIZE)  # 8*8 + 4*4 + 2*2 = 84
YOLOV5_ROWS = 3 * GRID              # three anchors per cell
NAMES = ('person', 'handbag')
SOURCE = np.zeros((128, 128, 3), np.uint8)  # scale 0.5: source boxes are model boxes * 2


def _save_model(path: Path, outputs: dict[str, np.ndarray], batch: int | str = 1) -> str:
    """A model taking ``images`` (batch, 3, 64, 64) whose outputs are the given constants,
    repeated along the batch dimension (so a dynamic batch gives one copy per image)."""
    nodes = [
        helper.make_node('Shape', ['images'], ['input_shape']),
        helper.make_node('Slice', ['input_shape', 'zero', 'one'], ['batch_size']),
    ]
    initializers = [numpy_helper.from_array(np.array([0], np.int64), 'zero'),
                    numpy_helper.from_array(np.array([1], np.int64), 'one')]
    graph_outputs = []
    for name, value in outputs.items():
        initializers += [numpy_helper.from_array(value[None], f'{name}_value'),
                         numpy_helper.from_array(np.array(value.shape, np.int64), f'{name}_dims')]
        nodes += [helper.make_node('Concat', ['batch_size', f'{name}_dims'], [f'{name}_shape'], axis=0),
                  helper.make_node('Expand', [f'{name}_value', f'{name}_shape'], [name])]
        graph_outputs.append(helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(value.dtype), [batch, *value.shape]))
    graph = helper.make_graph(
        nodes, 'constant_detector',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, [batch, 3, SIZE, SIZE])],
        graph_outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return str(path)


@pytest.fixture
def names_file(tmp_path: Path) -> str:
    path = tmp_path / 'names.txt'
    path.write_text('\n'.join(NAMES) + '\n')
    return str(path)


def _detector(model_path: str, names_file: str, **overrides) -> OnnxDetector:
    settings = dict(model_path=model_path, class_names_path=names_file, class_allowlist=NAMES,
                    score_threshold=0.3) | overrides
    return OnnxDetector(DetectorSettings(**settings))


def _yolox_rows() -> np.ndarray:
    rows = np.zeros((GRID, 5 + len(NAMES)), np.float32)
    # Stride 16, cell (x=1, y=2) -> row 64 + 2*4 + 1: centre ((0.5+1)*16, (0.25+2)*16) = (24, 36),
    # size (2*16, 3*16) = (32, 48) -> box (8, 12, 40, 60); score 0.9*0.8 = 0.72, handbag.
    rows[73] = [0.5, 0.25, np.log(2), np.log(3), 0.9, 0.1, 0.8]
    # Stride 8, cell (x=3, y=0) -> row 3: centre (28, 4), size (8, 16) -> box (24, -4, 32, 12)
    # clipped to y >= 0; score 0.5*0.9 = 0.45, person.
    rows[3] = [0.5, 0.5, 0.0, np.log(2), 0.5, 0.9, 0.2]
    # Under the threshold: 0.5 * 0.5 = 0.25.
    rows[10] = [0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0]
    return rows


EXPECTED_BOXES = np.array([[16, 24, 80, 120], [48, 0, 64, 24]], np.float32)  # model boxes * 2
EXPECTED_SCORES = [0.72, 0.45]
EXPECTED_LABELS = ('handbag', 'person')


def _assert_expected(detections) -> None:
    np.testing.assert_allclose(detections.boxes, EXPECTED_BOXES, atol=1e-3)
    np.testing.assert_allclose(detections.scores, EXPECTED_SCORES, atol=1e-6)
    assert detections.labels == EXPECTED_LABELS


def _decoded_rows() -> np.ndarray:
    """The same two objects as cx, cy, w, h in input pixels, objectness, class scores."""
    rows = np.zeros((YOLOV5_ROWS, 5 + len(NAMES)), np.float32)
    rows[5] = [24, 36, 32, 48, 0.9, 0.1, 0.8]
    rows[200] = [28, 4, 8, 16, 0.5, 0.9, 0.2]
    rows[201] = [28, 4, 8, 16, 0.5, 0.5, 0.0]
    return rows



def test_yolox_raw_grid_output_is_decoded_exactly(tmp_path, names_file):
    detector = _detector(_save_model(tmp_path / 'yolox.onnx', {'output': _yolox_rows()}), names_file)
    assert detector.layout is ModelLayout.YOLOX
    assert detector.input_size == (SIZE, SIZE) and detector.class_names == NAMES
    _assert_expected(detector.detect(SOURCE))


def test_yolov5_decoded_output_with_objectness(tmp_path, names_file):
    detector = _detector(_save_model(tmp_path / 'v5.onnx', {'output': _decoded_rows()}), names_file)
    assert detector.layout is ModelLayout.YOLOV5
    _assert_expected(detector.detect(SOURCE))


def test_yolov8_channels_first_output_without_objectness(tmp_path, names_file):
    channels = np.zeros((4 + len(NAMES), GRID), np.float32)
    channels[:, 7] = [24, 36, 32, 48, 0.1, 0.72]
    channels[:, 50] = [28, 4, 8, 16, 0.45, 0.2]
    channels[:, 51] = [28, 4, 8, 16, 0.25, 0.0]
    detector = _detector(_save_model(tmp_path / 'v8.onnx', {'output0': channels}), names_file)
    assert detector.layout is ModelLayout.YOLOV8
    _assert_expected(detector.detect(SOURCE))


def test_end_to_end_single_output_with_padding_rows(tmp_path, names_file):
    rows = np.zeros((10, 6), np.float32)
    rows[0] = [8, 12, 40, 60, 0.72, 1]
    rows[1] = [24, -4, 32, 12, 0.45, 0]
    rows[2] = [24, 0, 32, 12, 0.25, 0]
    detector = _detector(_save_model(tmp_path / 'e2e.onnx', {'output': rows}), names_file)
    assert detector.layout is ModelLayout.END_TO_END
    _assert_expected(detector.detect(SOURCE))


def test_end_to_end_four_outputs_reads_only_num_dets_rows(tmp_path, names_file):
    boxes = np.array([[8, 12, 40, 60], [24, -4, 32, 12], [0, 0, 64, 64]], np.float32)
    outputs = {'num_dets': np.array([2], np.int32), 'det_boxes': boxes,
               'det_scores': np.array([0.72, 0.45, 0.99], np.float32),
               'det_classes': np.array([1, 0, 0], np.int32)}
    detector = _detector(_save_model(tmp_path / 'e2e4.onnx', outputs), names_file)
    assert detector.layout is ModelLayout.END_TO_END
    _assert_expected(detector.detect(SOURCE))


def test_nms_is_per_class_and_allowlist_and_class_thresholds_filter(tmp_path, names_file):
    rows = np.zeros((YOLOV5_ROWS, 5 + len(NAMES)), np.float32)
    rows[0] = [32, 32, 20, 40, 1.0, 0.9, 0.0]  # person
    rows[1] = [33, 32, 20, 40, 1.0, 0.8, 0.0]  # the same person again: suppressed
    rows[2] = [32, 32, 20, 40, 1.0, 0.0, 0.7]  # a handbag on the same spot: kept
    path = _save_model(tmp_path / 'v5.onnx', {'output': rows})
    assert _detector(path, names_file).detect(SOURCE).labels == ('person', 'handbag')
    assert _detector(path, names_file, class_allowlist=('person',)).detect(SOURCE).labels == ('person',)
    raised = _detector(path, names_file, class_thresholds={'person': 0.95}).detect(SOURCE)
    assert raised.labels == ('handbag',)


def test_yolox_versus_yolov5_is_decided_by_the_grid_count_or_an_explicit_layout(tmp_path, names_file):
    path = _save_model(tmp_path / 'yolox.onnx', {'output': _yolox_rows()})
    as_v5 = _detector(path, names_file, layout='yolov5')
    assert as_v5.layout is ModelLayout.YOLOV5
    # Read as already-decoded pixels, the raw offsets and log sizes are tiny boxes at the origin.
    detections = as_v5.detect(SOURCE)
    assert len(detections) >= 1 and detections.boxes.max() < 4
    shapes = [(1, GRID, 85)], [(1, GRID + 7, 85)], [(1, 3 * GRID, 85)]
    assert [recognise_layout((1, 3, SIZE, SIZE), s) for s in shapes] == [
        ModelLayout.YOLOX, ModelLayout.YOLOV5, ModelLayout.YOLOV5]


@pytest.mark.parametrize(('input_shape', 'output_shapes', 'expected'), [
    ((1, 3, 640, 640), [(1, 8400, 85)], ModelLayout.YOLOX),
    ((1, 3, 640, 640), [(1, 25200, 85)], ModelLayout.YOLOV5),
    ((1, 3, 640, 640), [(1, 84, 8400)], ModelLayout.YOLOV8),
    (('batch', 3, 640, 640), [('batch', 84, 8400)], ModelLayout.YOLOV8),
    ((1, 3, 640, 640), [(1, 300, 6)], ModelLayout.END_TO_END),
    ((1, 3, 640, 640), [(1, 1), (1, 100, 4), (1, 100), (1, 100)], ModelLayout.END_TO_END),
    ((1, 3, 'height', 'width'), [(1, 25200, 85)], ModelLayout.YOLOV5),
])
def test_recognise_layout_from_shapes(input_shape, output_shapes, expected):
    assert recognise_layout(input_shape, output_shapes) is expected


@pytest.mark.parametrize(('output_shapes', 'layout', 'message'), [
    ([(1, 4, 4)], 'auto', 'cannot recognise the output layout .* set the layout explicitly'),
    ([(1, 8400)], 'auto', 'cannot recognise the output layout'),
    ([(1, 'n', 'm')], 'auto', 'cannot recognise the output layout'),
    ([(1, 8400, 85)], 'yolo9000', "unknown layout 'yolo9000'; use one of 'auto', 'yolox'"),
    ([(1, 8400)], 'yolox', "layout 'yolox' needs one output of rank 3"),
    ([(1, 300, 7)], 'end_to_end', r"layout 'end_to_end' needs rows of 6"),
])
def test_unrecognised_or_incompatible_layouts_are_errors(output_shapes, layout, message):
    with pytest.raises(LayoutError, match=message):
        recognise_layout((1, 3, 640, 640), output_shapes, layout)


def test_unrecognised_model_fails_to_load_naming_the_path(tmp_path, names_file):
    path = _save_model(tmp_path / 'odd.onnx', {'output': np.zeros((4, 4), np.float32)})
    with pytest.raises(ModelLoadError, match=f'detection model {path}: cannot recognise'):
        _detector(path, names_file)


def test_class_count_must_match_the_class_names(tmp_path):
    path = _save_model(tmp_path / 'yolox.onnx', {'output': _yolox_rows()})
    with pytest.raises(ModelLoadError, match='scores 2 classes but 80 class names were loaded'):
        OnnxDetector(DetectorSettings(model_path=path))


def test_dynamic_batch_runs_one_inference_with_per_image_scales(tmp_path, names_file):
    path = _save_model(tmp_path / 'v5_dynamic.onnx', {'output': _decoded_rows()}, batch='batch')
    detector = _detector(path, names_file)
    assert detector.supports_dynamic_batch
    small, large = np.zeros((64, 64, 3), np.uint8), np.zeros((256, 128, 3), np.uint8)
    results = detector.detect_batch([SOURCE, small, large])
    _assert_expected(results[0])
    np.testing.assert_allclose(results[1].boxes, EXPECTED_BOXES / 2, atol=1e-3)
    # 128x256 into 64x64: scale 0.25, boxes * 4, clipped to the 128-wide image.
    np.testing.assert_allclose(results[2].boxes, [[32, 48, 128, 240], [96, 0, 128, 48]], atol=1e-3)
    assert detector.detect_batch([]) == []


def test_static_batch_model_runs_images_back_to_back(tmp_path, names_file):
    detector = _detector(_save_model(tmp_path / 'v5.onnx', {'output': _decoded_rows()}), names_file)
    assert not detector.supports_dynamic_batch
    for detections in detector.detect_batch([SOURCE, SOURCE]):
        _assert_expected(detections)
