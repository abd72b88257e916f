"""Detections checked before they decide what is masked: invalid ones never skip masking.

The anonymizer trusts the boxes it is given; a box that is wrong in a way that hides a
person (a class spelled differently, corners swapped, a NaN centre, coordinates in another
scale) would leave that person unmasked. Every detection set passes :func:`sanitize_detections`
first. What can be repaired without guessing is repaired towards more masking (case and
unknown labels become a person, swapped corners are put right, boxes sticking out of the
image are clipped); what cannot be placed (non-finite or empty boxes, boxes entirely outside
the image, absurd counts) rejects the whole frame, which the caller then fails closed.
Every repair and rejection is reported by reason, for counters and logs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from kaiserslautern_vss.detection.types import Detections

# Reasons, as they appear in diagnostics (counted per camera).
TOO_MANY = 'too many detections'
NON_FINITE_BOX = 'non-finite box'
EMPTY_BOX = 'empty box'
OUTSIDE_IMAGE = 'box outside the image'
SWAPPED_CORNERS = 'swapped box corners'
LABEL_CASE = 'label in another case'
UNKNOWN_LABEL = 'unknown label masked as person'
NON_FINITE_SCORE = 'non-finite score'


class DetectionValidationError(ValueError):
    """Invalid validation settings."""


class RejectedDetections(ValueError):
    """Raised by callers that fail a frame closed on any error, for detections rejected here."""


@dataclass(frozen=True)
class ValidationSettings:
    """``person_label``: what an unknown label is masked as. ``known_labels``: the labels the
    detector can give (lower case); empty means any label is known. ``max_detections``: more
    in one frame than this is taken for a broken detector."""

    person_label: str = 'person'
    known_labels: frozenset[str] = frozenset()
    max_detections: int = 1000

    def __post_init__(self) -> None:
        object.__setattr__(self, 'known_labels', frozenset(label.strip().lower() for label in self.known_labels))
        if self.max_detections < 1:
            raise DetectionValidationError(f'max_detections must be at least 1, got {self.max_detections}')
        if self.known_labels and self.person_label not in self.known_labels:
            raise DetectionValidationError(f'person label {self.person_label!r} is not among the known labels')


@dataclass(frozen=True)
class Validated:
    """The detections to mask with (None: the frame must fail closed, ``rejected`` says why,
    ``detail`` adds what a log line needs) and how many detections each repair touched."""

    detections: Detections | None
    repairs: Counter = field(default_factory=Counter)
    rejected: str | None = None
    detail: str = ''


def detector_labels(detector: object, class_allowlist: Iterable[str]) -> frozenset[str]:
    """Every label ``detector`` can give: its allowlist, else all classes of its model (a
    detector without class names, the HOG fallback, gives persons only)."""
    return frozenset(class_allowlist) or frozenset(getattr(detector, 'class_names', ('person',)))


def sanitize_detections(detections: Detections, image_shape: tuple[int, ...],
                        settings: ValidationSettings) -> Validated:
    """``detections`` made safe to mask with for an image of ``image_shape``, or rejected."""
    count = len(detections)
    if count > settings.max_detections:
        return Validated(None, rejected=TOO_MANY, detail=f'{count} > max_detections {settings.max_detections}')
    if count == 0:
        return Validated(detections)
    boxes = detections.boxes
    height, width = image_shape[0], image_shape[1]
    if not np.isfinite(boxes).all():
        return Validated(None, rejected=NON_FINITE_BOX)
    repairs: Counter = Counter()
    swapped = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    repairs[SWAPPED_CORNERS] = int(swapped.sum())
    boxes = np.hstack([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])])
    if ((boxes[:, 2] - boxes[:, 0] < 1) | (boxes[:, 3] - boxes[:, 1] < 1)).any():
        return Validated(None, rejected=EMPTY_BOX)
    if ((boxes[:, 2] <= 0) | (boxes[:, 0] >= width) | (boxes[:, 3] <= 0) | (boxes[:, 1] >= height)).any():
        return Validated(None, rejected=OUTSIDE_IMAGE)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height)
    labels = _normalized_labels(detections.labels, settings, repairs)
    scores = detections.scores
    finite_scores = np.isfinite(scores)
    repairs[NON_FINITE_SCORE] = int((~finite_scores).sum())
    scores = np.where(finite_scores, scores, 1.0).astype(np.float32)
    return Validated(Detections(boxes, scores, labels, detections.track_ids), +repairs)


def _normalized_labels(labels: Iterable[str], settings: ValidationSettings, repairs: Counter) -> tuple[str, ...]:
    normalized = []
    for label in labels:
        lowered = label.strip().lower()
        if settings.known_labels and lowered not in settings.known_labels:
            repairs[UNKNOWN_LABEL] += 1
            lowered = settings.person_label
        elif lowered != label:
            repairs[LABEL_CASE] += 1
        normalized.append(lowered)
    return tuple(normalized)
