"""YOLO-family object detection with ONNX Runtime: letterbox, inference, decode, filter, NMS."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from kaiserslautern_vss.detection.class_names import ClassNamesError, class_names_for_model
from kaiserslautern_vss.detection.cpu_budget import NO_SPINNING
from kaiserslautern_vss.detection.grade import DetectorGrade
from kaiserslautern_vss.detection.layouts import (Candidates, LayoutError, ModelLayout, class_count,
                                                  decode, parse_layout, recognise_layout)
from kaiserslautern_vss.detection.letterbox import letterbox
from kaiserslautern_vss.detection.nms import class_aware_nms
from kaiserslautern_vss.detection.types import Detections

LOGGER = logging.getLogger('kaiserslautern_vss.detection')

DEFAULT_CLASS_ALLOWLIST = ('person', 'bicycle', 'car', 'motorcycle', 'bus', 'truck', 'backpack',
                           'handbag', 'suitcase')

_ORT_LOAD_ERRORS = (ort_state.Fail, ort_state.InvalidArgument, ort_state.InvalidGraph,
                    ort_state.InvalidProtobuf, ort_state.NoSuchFile, ort_state.NotImplemented,
                    ort_state.RuntimeException, ort_state.EPFail, ort_state.NoModel)
_INPUT_DTYPES = {'tensor(float)': np.float32, 'tensor(float16)': np.float16}


class ModelLoadError(RuntimeError):
    """The detection model cannot be used; the message names the path and what to do."""


class DetectorSettingsError(ValueError):
    """A detector setting is out of range."""


@dataclass(frozen=True)
class DetectorSettings:
    """What :class:`OnnxDetector` loads and how it filters.

    ``class_allowlist`` empty means every class of the model. ``class_thresholds`` overrides
    ``score_threshold`` per class name. Thread counts of 0 let ONNX Runtime choose.
    """

    model_path: str
    class_names_path: str = ''
    layout: str = 'auto'
    providers: tuple[str, ...] = ('CPUExecutionProvider',)
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    score_threshold: float = 0.35
    nms_iou: float = 0.45
    class_allowlist: tuple[str, ...] = DEFAULT_CLASS_ALLOWLIST
    class_thresholds: Mapping[str, float] = field(default_factory=dict)
    max_detections: int = 300

    def __post_init__(self) -> None:
        # Lists arrive from YAML / ROS parameters; keep the frozen settings truly immutable.
        object.__setattr__(self, 'providers', tuple(self.providers))
        object.__setattr__(self, 'class_allowlist', tuple(self.class_allowlist))
        object.__setattr__(self, 'class_thresholds',
                           MappingProxyType({str(k): float(v) for k, v in self.class_thresholds.items()}))
        try:
            parse_layout(self.layout)
        except LayoutError as error:
            raise DetectorSettingsError(str(error)) from None
        if not self.providers:
            raise DetectorSettingsError('providers must name at least one ONNX Runtime execution provider')
        for name, value in (('intra_op_threads', self.intra_op_threads),
                            ('inter_op_threads', self.inter_op_threads)):
            if value < 0:
                raise DetectorSettingsError(f'{name} must be >= 0 (0 = ONNX Runtime default), got {value}')
        if not 0.0 <= self.score_threshold <= 1.0:
            raise DetectorSettingsError(f'score_threshold must be in [0, 1], got {self.score_threshold}')
        for name, value in self.class_thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise DetectorSettingsError(f"class_thresholds['{name}'] must be in [0, 1], got {value}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise DetectorSettingsError(f'nms_iou must be in (0, 1], got {self.nms_iou}')
        if self.max_detections < 1:
            raise DetectorSettingsError(f'max_detections must be >= 1, got {self.max_detections}')


def parse_class_thresholds(entries: Sequence[str]) -> dict[str, float]:
    """``['person:0.4', 'suitcase:0.3']`` (the ROS-parameter form) -> ``{'person': 0.4, ...}``."""
    thresholds: dict[str, float] = {}
    for entry in entries:
        name, separator, value = entry.rpartition(':')
        try:
            score = float(value)
        except ValueError:
            score = None
        if not separator or not name.strip() or score is None:
            raise DetectorSettingsError(f"class_thresholds entry {entry!r} is not 'class name:score', "
                                        "e.g. 'person:0.4'")
        if name.strip() in thresholds:
            raise DetectorSettingsError(f'class_thresholds names {name.strip()!r} twice')
        thresholds[name.strip()] = score
    return thresholds


def _choose_providers(requested: Sequence[str]) -> list[str]:
    available = ort.get_available_providers()
    chosen = [provider for provider in requested if provider in available]
    if len(chosen) < len(requested):
        fallback = chosen or ['CPUExecutionProvider']
        LOGGER.warning('ONNX Runtime execution providers %s are not available in this installation '
                       '(available: %s); using %s',
                       [p for p in requested if p not in available], available, fallback)
        return fallback
    return chosen


def _open_session(settings: DetectorSettings) -> ort.InferenceSession:
    path = Path(settings.model_path)
    if not settings.model_path:
        raise ModelLoadError('no detection model configured: set model_path to a YOLO ONNX export '
                             '(e.g. yolox_nano.onnx)')
    if not path.is_file():
        raise ModelLoadError(f'detection model {path} does not exist or is not a file: set model_path '
                             'to a YOLO ONNX export (e.g. yolox_nano.onnx)')
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads
    options.inter_op_num_threads = settings.inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    for key, value in NO_SPINNING.items():  # a busy box: waiting pool threads sleep, not spin
        options.add_session_config_entry(key, value)
    requested = _choose_providers(settings.providers)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=requested)
    except _ORT_LOAD_ERRORS as error:
        raise ModelLoadError(f'detection model {path} is not a loadable ONNX model ({error}); point '
                             'model_path at an ONNX export of a YOLOX/YOLOv5/YOLOv8 detector') from error
    used = session.get_providers()
    if not set(requested) <= set(used):
        LOGGER.warning('ONNX Runtime could not start providers %s for %s; running on %s',
                       [p for p in requested if p not in used], path, used)
    return session


def _is_single_image_input(inputs: Sequence[ort.NodeArg]) -> bool:
    """One (batch, 3, height, width) input; a symbolic channel dimension is accepted."""
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        return False
    channels = inputs[0].shape[1]
    return not isinstance(channels, int) or channels == 3


class OnnxDetector:
    """One ONNX detection model. ``detect`` keeps no per-call state on the instance, and
    ONNX Runtime's ``run`` is thread-safe, so one detector may serve several threads."""

    grade = DetectorGrade.MODEL  # a trained detector: privacy masking may rely on it

    def __init__(self, settings: DetectorSettings) -> None:
        self._settings = settings
        self._session = _open_session(settings)
        path = settings.model_path
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if not _is_single_image_input(inputs):
            raise ModelLoadError(f'detection model {path} must take one image input (batch, 3, height, '
                                 f'width); it takes {[(i.name, i.shape) for i in inputs]}')
        model_input = inputs[0]
        batch, _, height, width = model_input.shape
        if not (isinstance(height, int) and isinstance(width, int)):
            raise ModelLoadError(f'detection model {path} has a dynamic input size {model_input.shape}; '
                                 're-export it with a fixed height and width')
        if isinstance(batch, int) and batch != 1:
            raise ModelLoadError(f'detection model {path} has a fixed batch size of {batch}; re-export '
                                 'it with batch 1 or a dynamic batch dimension')
        if model_input.type not in _INPUT_DTYPES:
            raise ModelLoadError(f'detection model {path} takes {model_input.type}; expected float or '
                                 'float16 images')
        self._input_name = model_input.name
        self._input_dtype = _INPUT_DTYPES[model_input.type]
        self._input_size = (width, height)
        self._dynamic_batch = not isinstance(batch, int)
        output_shapes = [output.shape for output in outputs]
        try:
            self._layout = recognise_layout(model_input.shape, output_shapes, parse_layout(settings.layout))
        except LayoutError as error:
            raise ModelLoadError(f'detection model {path}: {error}') from None
        try:
            self._class_names = class_names_for_model(path, settings.class_names_path)
        except ClassNamesError as error:
            raise ModelLoadError(f'detection model {path}: {error}') from None
        scored = class_count(self._layout, output_shapes)
        if scored is not None and scored != len(self._class_names):
            raise ModelLoadError(f'detection model {path} scores {scored} classes but '
                                 f'{len(self._class_names)} class names were loaded; set '
                                 'class_names_path to the model\'s own class list')
        self._class_thresholds = self._thresholds_per_class()
        self._min_score = float(self._class_thresholds.min())

    def _thresholds_per_class(self) -> np.ndarray:
        """Score threshold by class index; +inf for classes outside the allowlist."""
        settings, names = self._settings, self._class_names
        wanted = settings.class_allowlist or names
        unknown = sorted((set(wanted) | set(settings.class_thresholds)) - set(names))
        if unknown:
            LOGGER.warning('class names %s in class_allowlist/class_thresholds are not classes of %s '
                           'and are ignored (its classes: %s)', unknown, settings.model_path, list(names))
        thresholds = np.full(len(names), np.inf, dtype=np.float32)
        for index, name in enumerate(names):
            if name in wanted:
                thresholds[index] = settings.class_thresholds.get(name, settings.score_threshold)
        if np.isinf(thresholds).all():
            raise ModelLoadError(f'none of class_allowlist {list(wanted)} is a class of '
                                 f'{settings.model_path}; choose from {list(names)}')
        return thresholds

    @property
    def input_size(self) -> tuple[int, int]:
        """The model's input (width, height)."""
        return self._input_size

    @property
    def providers(self) -> tuple[str, ...]:
        """The execution providers the session actually uses."""
        return tuple(self._session.get_providers())

    @property
    def layout(self) -> ModelLayout:
        return self._layout

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._class_names

    @property
    def supports_dynamic_batch(self) -> bool:
        return self._dynamic_batch

    def detect(self, image_bgr: np.ndarray) -> Detections:
        """Allow-listed objects over their thresholds, boxes in ``image_bgr`` pixels."""
        tensor, scale = letterbox(image_bgr, self._input_size)
        return self._to_detections(self._infer(tensor)[0], scale, image_bgr.shape)

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """:meth:`detect` for each image; one batched inference where the model allows it."""
        if not self._dynamic_batch or len(images) < 2:
            return [self.detect(image) for image in images]
        width, height = self._input_size
        batch = np.empty((len(images), 3, height, width), dtype=np.float32)
        scales = [letterbox(image, self._input_size, out=batch[i])[1] for i, image in enumerate(images)]
        return [self._to_detections(candidates, scale, image.shape)
                for candidates, scale, image in zip(self._infer(batch), scales, images)]

    def _infer(self, batch: np.ndarray) -> list[Candidates]:
        outputs = self._session.run(None, {self._input_name: batch.astype(self._input_dtype, copy=False)})
        return decode(self._layout, outputs, self._input_size, self._min_score)

    def _to_detections(self, candidates: Candidates, scale: float,
                       image_shape: tuple[int, ...]) -> Detections:
        known = (candidates.class_ids >= 0) & (candidates.class_ids < len(self._class_names))
        candidates = candidates.select(known)
        candidates = candidates.select(candidates.scores >= self._class_thresholds[candidates.class_ids])
        width, height = self._input_size
        # Clipping to the canvas first keeps coordinates non-negative, as class-aware NMS needs.
        boxes = np.clip(candidates.boxes, 0, np.array([width, height, width, height], np.float32))
        if self._layout.includes_nms:
            keep = np.argsort(-candidates.scores, kind='stable')[:self._settings.max_detections]
        else:
            keep = class_aware_nms(boxes, candidates.scores, candidates.class_ids,
                                   self._settings.nms_iou, self._settings.max_detections)
        image_height, image_width = image_shape[:2]
        boxes = np.clip(boxes[keep] / scale, 0,
                        np.array([image_width, image_height, image_width, image_height], np.float32))
        visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        keep = keep[visible]
        return Detections(boxes[visible], candidates.scores[keep],
                          tuple(self._class_names[i] for i in candidates.class_ids[keep]))
