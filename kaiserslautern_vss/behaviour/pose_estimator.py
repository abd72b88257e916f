"""Top-down pose estimation: MoveNet SinglePose on person crops of the frame in memory.

Each person box is enlarged and made square around its centre (MoveNet was trained on people
centred with a margin), warped straight from the frame into the model's input (one resample,
out-of-frame parts black) and the keypoints are mapped back to image pixels. The model takes
one crop at a time (fixed batch 1); a dynamic-batch export would run the crops together.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from kaiserslautern_vss.behaviour.types import KEYPOINT_NAMES
from kaiserslautern_vss.detection.cpu_budget import NO_SPINNING

POSE_MODEL_FILE = 'movenet_lightning.onnx'
#: the square crop's side, relative to the box's longer side
CROP_MARGIN = 1.25
_LOAD_ERRORS = (ort_state.Fail, ort_state.InvalidArgument, ort_state.InvalidGraph,
                ort_state.InvalidProtobuf, ort_state.NoSuchFile, ort_state.NotImplemented,
                ort_state.RuntimeException, ort_state.NoModel)


class PoseModelError(RuntimeError):
    """The pose model cannot be used; the message names the path and what to do."""


def square_crop(box: np.ndarray, margin: float = CROP_MARGIN) -> tuple[float, float, float]:
    """``(x0, y0, side)``: the square around ``box`` (x1, y1, x2, y2) that a pose is taken on."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1, 1.0) * margin
    return (x1 + x2 - side) / 2, (y1 + y2 - side) / 2, side


class PoseEstimator:
    """MoveNet SinglePose (input int32 N x S x S x 3 RGB, output N x 1 x 17 x (y, x, score)
    normalised to the crop). Thread-safe (an ONNX Runtime session may run from several
    threads): the cameras' workers share one estimator."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        path = Path(path)
        if not path.is_file():
            raise PoseModelError(f'pose model {path} does not exist or is not a file: put '
                                 f'{POSE_MODEL_FILE} there (scripts make it from the MoveNet weights) '
                                 'or run without the pose model (assault and vehicle_tampering off)')
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        for key, value in NO_SPINNING.items():
            options.add_session_config_entry(key, value)
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options,
                                                 providers=['CPUExecutionProvider'])
        except _LOAD_ERRORS as error:
            raise PoseModelError(f'pose model {path} is not a loadable ONNX model ({error})') from error
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        shape = inputs[0].shape if len(inputs) == 1 else None
        if (shape is None or len(shape) != 4 or shape[3] != 3 or not isinstance(shape[1], int)
                or shape[1] != shape[2] or inputs[0].type != 'tensor(int32)'
                or len(outputs) != 1 or tuple(outputs[0].shape[-2:]) != (len(KEYPOINT_NAMES), 3)):
            raise PoseModelError(
                f'pose model {path} is not MoveNet SinglePose (int32 N x S x S x 3 in, N x 1 x 17 x 3 '
                f'out); it takes {[(i.name, i.shape, i.type) for i in inputs]} and gives '
                f'{[(o.name, o.shape) for o in outputs]}')
        self._input_name = inputs[0].name
        self._side = int(shape[1])
        self._dynamic_batch = not isinstance(shape[0], int)
        self.path = path

    def estimate(self, image_bgr: np.ndarray, boxes: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Keypoints (N, 17, 3) = x, y in ``image_bgr`` pixels, confidence; one per box."""
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, len(KEYPOINT_NAMES), 3), np.float32)
        crops = [square_crop(box) for box in boxes]
        tensors = np.stack([self._warp(image_bgr, crop) for crop in crops])
        if self._dynamic_batch:
            raw = self._session.run(None, {self._input_name: tensors})[0]
        else:
            raw = np.concatenate([self._session.run(None, {self._input_name: tensor[None]})[0]
                                  for tensor in tensors])
        raw = raw.reshape(len(boxes), len(KEYPOINT_NAMES), 3)
        origin = np.array([[crop[0], crop[1]] for crop in crops], np.float32)[:, None, :]
        side = np.array([crop[2] for crop in crops], np.float32)[:, None, None]
        keypoints = np.empty_like(raw, dtype=np.float32)
        keypoints[..., :2] = origin + raw[..., [1, 0]] * side  # model gives (y, x)
        keypoints[..., 2] = raw[..., 2]
        return keypoints

    def _warp(self, image_bgr: np.ndarray, crop: tuple[float, float, float]) -> np.ndarray:
        x0, y0, side = crop
        scale = self._side / side
        transform = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]], np.float32)
        patch = cv2.warpAffine(image_bgr, transform, (self._side, self._side), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB).astype(np.int32)


def load_pose_estimator(path: str | Path, threads: int = 1) -> PoseEstimator:
    """The MoveNet pose estimator at ``path``; :class:`PoseModelError` when it is missing or not
    a SinglePose model."""
    return PoseEstimator(path, threads)
