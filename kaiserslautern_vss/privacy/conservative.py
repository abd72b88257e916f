"""Conservative masking for a detector that is not privacy-grade (the HOG fallback).

HOG misses small, sitting and occluded people and CenterFace misses faces turned away or a few
pixels tall, so neither may decide alone what stays recognisable. This policy masks the union of

- every region that moved within the last ``motion_hold_frames`` frames (background subtraction,
  dilated generously): people walking or shifting are covered whether anything detects them;
- the heads of every person the detector found (whole persons where the policy says so);
- every face CenterFace finds, in the whole frame and around those heads.

It costs background around moving people. Someone who has stood still since before the stream
started, or for longer than the background model remembers, is covered by the two detectors only. The first frame of a stream has no
background yet and counts as all moving, so a stream starts masked entirely for
``motion_hold_frames`` frames, and a single still image is masked entirely.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np

from ..detection.grade import DetectorGrade
from ..detection.types import Detections
from .anonymizer import AnonymizedFrame, Anonymizer, PrivacyPolicy, PrivacySettings
from .errors import PrivacyConfigError
from .face_detector import CenterFaceDetector
from .masking import MaskMethod, apply_masks
from .regions import check_image

#: how the masking mode is named in diagnostics and tool output
CONSERVATIVE_MODE = 'conservative'
#: whole-frame face search scale when the configuration has that search off (0)
CONSERVATIVE_FACE_SCALE = PrivacySettings.face_scale


class FrameMasker(Protocol):
    """What a privacy stage needs from the anonymiser of one camera."""

    settings: PrivacySettings

    def reset(self) -> None: ...

    def anonymize(self, image_bgr: np.ndarray, detections: Detections | None) -> AnonymizedFrame: ...

    def fully_masked(self, image_bgr: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ConservativeSettings:
    """``motion_hold_frames``: how long a region stays masked after it last moved (15 = 1.5 s at
    10 Hz). Motion is found on a copy ``analysis_height`` rows high; moving regions are grown by
    ``dilation_fraction`` of the frame height on every side.
    ``history_frames`` is how many frames the background model remembers: someone standing
    still fades into the background after about that long."""

    motion_hold_frames: int = 15
    analysis_height: int = 288
    dilation_fraction: float = 0.02
    history_frames: int = 500

    def __post_init__(self) -> None:
        for valid, message in (
                (self.motion_hold_frames >= 1, f'motion_hold_frames must be at least 1, got {self.motion_hold_frames}'),
                (self.analysis_height >= 32, f'analysis_height must be at least 32 rows, got {self.analysis_height}'),
                (0.0 < self.dilation_fraction <= 0.5,
                 f'dilation_fraction must be in (0, 0.5], got {self.dilation_fraction}'),
                (self.history_frames >= 2, f'history_frames must be at least 2, got {self.history_frames}')):
            if not valid:
                raise PrivacyConfigError(message)


class MotionRegions:
    """Where anything moved in the last frames of one camera (MOG2 background model), grown."""

    def __init__(self, settings: ConservativeSettings = ConservativeSettings()) -> None:
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self._subtractor = cv2.createBackgroundSubtractorMOG2(
            history=self.settings.history_frames, detectShadows=False)
        self._frame = 0
        self._last_moved: np.ndarray | None = None  # frame number each analysis pixel last moved

    def update(self, image_bgr: np.ndarray) -> np.ndarray:
        """A boolean (H, W) mask of ``image_bgr`` covering every region that moved recently."""
        check_image(image_bgr)
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self.settings.analysis_height / height)
        small = cv2.resize(image_bgr, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
        if self._last_moved is None or self._last_moved.shape != small.shape[:2]:
            self.reset()  # first frame, or the camera's resolution changed: no background yet
            self._last_moved = np.zeros(small.shape[:2], np.int64)
        self._frame += 1
        moving = (self._subtractor.apply(small) > 0).astype(np.uint8)  # the first frame: all moving
        # An opening removes single-pixel speckle (sensor noise), keeping even far-away people.
        moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
        self._last_moved[moving > 0] = self._frame
        recent = (self._last_moved > 0) & (self._frame - self._last_moved < self.settings.motion_hold_frames)
        radius = max(1, round(self.settings.dilation_fraction * small.shape[0]))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        grown = cv2.dilate(recent.astype(np.uint8), kernel)
        return cv2.resize(grown, (width, height), interpolation=cv2.INTER_NEAREST) > 0


def mask_region(image_bgr: np.ndarray, region: np.ndarray, method: MaskMethod, strength: int) -> np.ndarray:
    """Masks the pixels of ``image_bgr`` under the boolean ``region`` in place; returns the boxes
    of its connected parts. Each part is masked as its whole box would be (blocks as coarse as
    that box warrants), but only the pixels of the part are replaced."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
    boxes = []
    for label, (x, y, width, height, _) in enumerate(stats[1:], start=1):
        window = image_bgr[y:y + height, x:x + width]
        masked = window.copy()
        apply_masks(masked, np.array([[0, 0, width, height]], np.float32), method, strength)
        part = labels[y:y + height, x:x + width] == label
        window[part] = masked[part]
        boxes.append((x, y, x + width, y + height))
    return np.array(boxes, np.float32).reshape(-1, 4)


class ConservativeAnonymizer:
    """Anonymises the frames of one camera, in order, with the conservative policy (module doc).

    Same interface as :class:`Anonymizer`; ``settings`` are the effective ones derived from the
    configured ``settings``: persons' heads at least, and faces searched in the whole frame.
    """

    def __init__(self, settings: PrivacySettings, face_detector: CenterFaceDetector,
                 conservative: ConservativeSettings = ConservativeSettings()) -> None:
        # Persons found are masked as configured, but at least their heads (never faces only).
        policy = PrivacyPolicy.PERSONS if settings.policy is PrivacyPolicy.PERSONS else PrivacyPolicy.HEADS
        self.settings = replace(settings, policy=policy, face_detection=True,
                                face_scale=settings.face_scale or CONSERVATIVE_FACE_SCALE)
        self._persons_and_faces = Anonymizer(self.settings, face_detector)
        self._motion = MotionRegions(conservative)

    def reset(self) -> None:
        self._persons_and_faces.reset()
        self._motion.reset()

    def anonymize(self, image_bgr: np.ndarray, detections: Detections | None) -> AnonymizedFrame:
        """A masked copy of ``image_bgr``: moving regions, persons in ``detections``, faces."""
        moved = self._motion.update(image_bgr)
        result = self._persons_and_faces.anonymize(image_bgr, detections)
        moved_boxes = mask_region(result.image, moved, self.settings.method, self.settings.strength)
        return AnonymizedFrame(result.image, np.vstack([result.masked_boxes, moved_boxes]), result.faces_found)

    def fully_masked(self, image_bgr: np.ndarray) -> np.ndarray:
        return self._persons_and_faces.fully_masked(image_bgr)


def masking_mode(grade: DetectorGrade, settings: PrivacySettings) -> str:
    """The masking in force, for diagnostics and tool output: the configured policy behind a
    privacy-grade detector, else the conservative policy."""
    if grade.privacy_grade:
        return f'policy {settings.policy.value}'
    return f'{CONSERVATIVE_MODE}: everything that moved recently + detected persons + faces (detector not privacy-grade)'


def anonymizer_for(grade: DetectorGrade, settings: PrivacySettings, face_detector: CenterFaceDetector | None,
                   conservative: ConservativeSettings = ConservativeSettings()) -> FrameMasker:
    """The configured :class:`Anonymizer` behind a privacy-grade detector, else a
    :class:`ConservativeAnonymizer` (which needs a face detector even where the configuration
    turned face detection off)."""
    if grade.privacy_grade:
        return Anonymizer(settings, face_detector)
    return ConservativeAnonymizer(settings, face_detector or CenterFaceDetector(), conservative)
