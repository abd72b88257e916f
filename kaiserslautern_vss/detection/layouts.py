"""Output layouts of common YOLO ONNX exports: recognising them and decoding them to candidates.

All decoders return, per batch image, candidate boxes ``x1, y1, x2, y2`` in model-input pixels,
their scores and class indices, before any non-maximum suppression.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

YOLO_STRIDES = (8, 16, 32)
# One anchor-based YOLOv5 head predicts three anchors per grid cell.
YOLOV5_ANCHORS_PER_CELL = 3
# Rows of the single-output end-to-end form: x1, y1, x2, y2, score, class.
END_TO_END_ROW = 6

Shape = Sequence[int | str | None]


class LayoutError(ValueError):
    """A model's outputs do not match any supported (or the requested) layout."""


class ModelLayout(Enum):
    YOLOX = 'yolox'            # (B, N, 5+C) raw grid offsets / log sizes, objectness, classes
    YOLOV5 = 'yolov5'          # (B, N, 5+C) decoded cx, cy, w, h in input pixels, objectness, classes
    YOLOV8 = 'yolov8'          # (B, 4+C, N) decoded cx, cy, w, h, classes; no objectness (YOLO11 too)
    END_TO_END = 'end_to_end'  # NMS inside: (B, K, 6) or num_dets, det_boxes, det_scores, det_classes

    @property
    def includes_nms(self) -> bool:
        return self is ModelLayout.END_TO_END


@dataclass(frozen=True)
class Candidates:
    """Decoded, not yet suppressed detections of one image in model-input pixels."""

    boxes: np.ndarray      # (N, 4) float32 x1, y1, x2, y2
    scores: np.ndarray     # (N,) float32
    class_ids: np.ndarray  # (N,) int64

    def select(self, keep: np.ndarray) -> Candidates:
        return Candidates(self.boxes[keep], self.scores[keep], self.class_ids[keep])


def parse_layout(name: str) -> ModelLayout | None:
    """``'auto'`` -> None (recognise from the shapes), else the named layout."""
    if name == 'auto':
        return None
    try:
        return ModelLayout(name)
    except ValueError:
        choices = ', '.join(["'auto'"] + [f"'{layout.value}'" for layout in ModelLayout])
        raise LayoutError(f"unknown layout '{name}'; use one of {choices}") from None


def yolo_grid_count(width: int, height: int, strides: Sequence[int] = YOLO_STRIDES) -> int:
    """Number of grid cells over all strides: the row count of an anchor-free YOLO head."""
    return sum((height // stride) * (width // stride) for stride in strides)


def _static(dim: int | str | None) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _input_hw(input_shape: Shape) -> tuple[int | None, int | None]:
    if len(input_shape) != 4:
        raise LayoutError(f'expected an image input of shape (batch, 3, height, width), '
                          f'got {tuple(input_shape)}')
    return _static(input_shape[2]), _static(input_shape[3])


def _is_four_output_end_to_end(output_shapes: Sequence[Shape]) -> bool:
    """num_dets (B, 1), det_boxes (B, K, 4), det_scores (B, K), det_classes (B, K)."""
    ranks = [len(shape) for shape in output_shapes]
    return ranks == [2, 3, 2, 2] and output_shapes[1][2] == 4


def _recognise_single(input_shape: Shape, output_shape: Shape) -> ModelLayout | None:
    if len(output_shape) != 3:
        return None
    height, width = _input_hw(input_shape)
    rows, columns = _static(output_shape[1]), _static(output_shape[2])
    if rows is None or columns is None:
        return None
    grid = yolo_grid_count(width, height) if height and width else None
    if grid is not None:
        if rows == grid and columns > 5:
            return ModelLayout.YOLOX
        if columns == grid and rows > 4:
            return ModelLayout.YOLOV8
        if rows == YOLOV5_ANCHORS_PER_CELL * grid and columns > 5:
            return ModelLayout.YOLOV5
    if columns == END_TO_END_ROW:
        return ModelLayout.END_TO_END
    # Other head sizes (dynamic input, extra strides): long (N, 5+C) rows are the anchor-based
    # form, long (4+C, N) columns the anchor-free one.
    if columns > 5 and rows > columns:
        return ModelLayout.YOLOV5
    if rows > 4 and columns > rows:
        return ModelLayout.YOLOV8
    return None


def _check_explicit(layout: ModelLayout, output_shapes: Sequence[Shape]) -> None:
    if layout is ModelLayout.END_TO_END and _is_four_output_end_to_end(output_shapes):
        return
    if len(output_shapes) != 1 or len(output_shapes[0]) != 3:
        raise LayoutError(f"layout '{layout.value}' needs one output of rank 3, got output shapes "
                          f'{[tuple(shape) for shape in output_shapes]}')
    last = _static(output_shapes[0][2])
    if layout is ModelLayout.END_TO_END and last not in (None, END_TO_END_ROW):
        raise LayoutError(f"layout 'end_to_end' needs rows of {END_TO_END_ROW} "
                          f'(x1, y1, x2, y2, score, class), got output shape {tuple(output_shapes[0])}')


def recognise_layout(input_shape: Shape, output_shapes: Sequence[Shape],
                     layout: ModelLayout | str | None = None) -> ModelLayout:
    """The layout of a model given its input shape (B, 3, H, W) and its output shapes.

    ``layout`` (a :class:`ModelLayout`, its value, or ``'auto'``/None) overrides recognition;
    it is still checked against the output ranks. A (B, N, 5+C) output is YOLOX when N equals
    the grid count of strides 8/16/32 for the input size, YOLOv5 when N is three times it; a
    YOLOX export with decoding built in looks like YOLOv5 output and needs ``layout='yolov5'``.
    """
    requested = parse_layout(layout) if isinstance(layout, str) else layout
    if requested is not None:
        _check_explicit(requested, output_shapes)
        return requested
    if _is_four_output_end_to_end(output_shapes):
        return ModelLayout.END_TO_END
    recognised = (_recognise_single(input_shape, output_shapes[0]) if len(output_shapes) == 1
                  else None)
    if recognised is None:
        raise LayoutError(
            f'cannot recognise the output layout of a model with input {tuple(input_shape)} and '
            f'outputs {[tuple(shape) for shape in output_shapes]}; set the layout explicitly to one '
            f"of {', '.join(repr(item.value) for item in ModelLayout)}")
    return recognised


def _corners(centre_size: np.ndarray) -> np.ndarray:
    """(N, 4) cx, cy, w, h -> (N, 4) float32 x1, y1, x2, y2."""
    half = centre_size[:, 2:4] / 2
    return np.concatenate((centre_size[:, :2] - half, centre_size[:, :2] + half),
                          axis=1).astype(np.float32)


def _best_class(class_scores: np.ndarray, min_score: float,
                objectness: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row the best class and its score; returns the indices of rows over ``min_score``,
    their scores and class ids, so box maths only runs on the rows that survive."""
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(class_ids)), class_ids]
    if objectness is not None:
        scores = scores * objectness
    keep = np.flatnonzero(scores >= min_score)
    return keep, scores[keep].astype(np.float32), class_ids[keep].astype(np.int64)


@functools.lru_cache(maxsize=8)
def _yolox_grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a YOLOX output: its cell's (x, y) index and its stride, in the export's order."""
    cells, strides = [], []
    for stride in YOLO_STRIDES:
        xs, ys = np.meshgrid(np.arange(width // stride), np.arange(height // stride))
        cells.append(np.stack((xs, ys), axis=-1).reshape(-1, 2))
        strides.append(np.full((cells[-1].shape[0], 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


def decode_yolox(output: np.ndarray, input_size: tuple[int, int], min_score: float) -> list[Candidates]:
    width, height = input_size
    cells, strides = _yolox_grid(width, height)
    if output.shape[1] != len(cells):
        raise LayoutError(f'YOLOX output has {output.shape[1]} rows, expected {len(cells)} for '
                          f'input {width}x{height}')
    results = []
    for rows in output:
        keep, scores, class_ids = _best_class(rows[:, 5:], min_score, objectness=rows[:, 4])
        kept, cell, stride = rows[keep], cells[keep], strides[keep]
        centre_size = np.concatenate(((kept[:, :2] + cell) * stride,
                                      np.exp(kept[:, 2:4]) * stride), axis=1)
        results.append(Candidates(_corners(centre_size), scores, class_ids))
    return results


def decode_yolov5(output: np.ndarray, min_score: float) -> list[Candidates]:
    results = []
    for rows in output:
        keep, scores, class_ids = _best_class(rows[:, 5:], min_score, objectness=rows[:, 4])
        results.append(Candidates(_corners(rows[keep, :4]), scores, class_ids))
    return results


def decode_yolov8(output: np.ndarray, min_score: float) -> list[Candidates]:
    results = []
    for channels in output:
        keep, scores, class_ids = _best_class(channels[4:].T, min_score)
        results.append(Candidates(_corners(channels[:4, keep].T), scores, class_ids))
    return results


def decode_end_to_end(outputs: Sequence[np.ndarray], min_score: float) -> list[Candidates]:
    if len(outputs) == 4:
        counts, boxes, scores, classes = outputs
        per_image = [(boxes[i, :int(counts[i, 0])], scores[i, :int(counts[i, 0])],
                      classes[i, :int(counts[i, 0])]) for i in range(len(boxes))]
    else:
        per_image = [(rows[:, :4], rows[:, 4], rows[:, 5]) for rows in outputs[0]]
    results = []
    for image_boxes, image_scores, image_classes in per_image:
        keep = image_scores >= min_score
        results.append(Candidates(image_boxes[keep].astype(np.float32),
                                  image_scores[keep].astype(np.float32),
                                  image_classes[keep].astype(np.int64)))
    return results


def decode(layout: ModelLayout, outputs: Sequence[np.ndarray], input_size: tuple[int, int],
           min_score: float) -> list[Candidates]:
    """Candidates per batch image from a model's raw outputs; ``input_size`` is (width, height)."""
    if layout is ModelLayout.YOLOX:
        return decode_yolox(outputs[0], input_size, min_score)
    if layout is ModelLayout.YOLOV5:
        return decode_yolov5(outputs[0], min_score)
    if layout is ModelLayout.YOLOV8:
        return decode_yolov8(outputs[0], min_score)
    return decode_end_to_end(outputs, min_score)


def class_count(layout: ModelLayout, output_shapes: Sequence[Shape]) -> int | None:
    """How many classes the model scores, where its output shape tells."""
    if layout is ModelLayout.END_TO_END:
        return None
    rows, columns = output_shapes[0][1], output_shapes[0][2]
    if layout is ModelLayout.YOLOV8:
        return rows - 4 if isinstance(rows, int) else None
    return columns - 5 if isinstance(columns, int) else None
