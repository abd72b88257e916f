"""Anonymises frames: masks heads, persons or faces found in them, held across short misses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..detection.types import UNTRACKED, Detections
from .errors import PrivacyConfigError
from .face_detector import CenterFaceDetector, non_max_suppression
from .masking import DEFAULT_STRENGTH, MaskMethod, apply_masks, mask_everything
from .persistence import DEFAULT_GROWTH_PER_FRAME, MaskMemory
from .regions import check_image, expand_boxes, head_regions

__all__ = ['AnonymizedFrame', 'Anonymizer', 'MaskMethod', 'PrivacyConfigError', 'PrivacyPolicy', 'PrivacySettings']


class PrivacyPolicy(str, Enum):
    HEADS = 'heads'
    PERSONS = 'persons'
    FACES = 'faces'


@dataclass(frozen=True)
class PrivacySettings:
    """How frames are anonymised; checked on creation.

    ``face_scale`` is the size at which the whole frame is searched for faces (0 turns that
    search off, leaving the search inside person boxes); ``face_search_every`` runs that search
    on every n-th frame of a camera only: the mask memory holds the faces found for
    ``hold_frames`` frames, so n may be at most ``hold_frames + 1``. ``face_region_min_side`` is
    the size person head regions are enlarged to for the search inside them (policy ``faces``
    only: the other policies mask those regions whole). Found faces are masked ``face_margin``
    times their size, persons (policy ``persons``) ``person_margin`` times.
    """

    policy: PrivacyPolicy = PrivacyPolicy.HEADS
    method: MaskMethod = MaskMethod.PIXELATE
    strength: int = DEFAULT_STRENGTH
    face_detection: bool = True
    face_scale: float = 0.5
    face_search_every: int = 1
    face_in_person_boxes: bool = True
    face_region_min_side: int = 64
    face_threshold: float = 0.4
    face_margin: float = 1.4
    person_margin: float = 1.1
    person_labels: tuple[str, ...] = ('person',)
    hold_frames: int = 5
    hold_growth_per_frame: float = DEFAULT_GROWTH_PER_FRAME

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, 'policy', PrivacyPolicy(self.policy))
            object.__setattr__(self, 'method', MaskMethod(self.method))
        except ValueError as error:
            raise PrivacyConfigError(
                f'{error}; policies: {[p.value for p in PrivacyPolicy]}, '
                f'methods: {[m.value for m in MaskMethod]}') from None
        object.__setattr__(self, 'person_labels', tuple(self.person_labels))
        _require(self.strength >= 1, f'strength must be at least 1 block, got {self.strength}')
        _require(0.0 <= self.face_scale <= 2.0, f'face_scale must be in [0, 2], got {self.face_scale}')
        _require(self.face_region_min_side >= 16,
                 f'face_region_min_side must be at least 16 pixels, got {self.face_region_min_side}')
        _require(0.0 < self.face_threshold < 1.0,
                 f'face_threshold must be between 0 and 1 (exclusive), got {self.face_threshold}')
        _require(self.face_margin >= 1.0, f'face_margin must be at least 1.0, got {self.face_margin}')
        _require(self.person_margin >= 1.0, f'person_margin must be at least 1.0, got {self.person_margin}')
        _require(self.hold_frames >= 0, f'hold_frames must be 0 or more, got {self.hold_frames}')
        _require(1 <= self.face_search_every <= self.hold_frames + 1,
                 f'face_search_every must be between 1 and hold_frames + 1 ({self.hold_frames + 1}: faces '
                 f'found are held that long), got {self.face_search_every}')
        _require(self.hold_growth_per_frame >= 0,
                 f'hold_growth_per_frame must be 0 or more, got {self.hold_growth_per_frame}')
        _require(not (self.policy is PrivacyPolicy.FACES and not self.face_detection),
                 "policy 'faces' needs face_detection enabled, otherwise nothing would be masked")
        _require(not (self.face_detection and self.face_scale == 0 and not self.face_in_person_boxes),
                 'face_detection is enabled but face_scale is 0 and face_in_person_boxes is off: '
                 'faces would be searched nowhere')
        _require(self.policy is PrivacyPolicy.FACES or len(self.person_labels) > 0,
                 f'policy {self.policy.value!r} needs at least one entry in person_labels')


@dataclass
class AnonymizedFrame:
    image: np.ndarray
    masked_boxes: np.ndarray
    faces_found: int


class Anonymizer:
    """Anonymises the frames of one camera, in order (it remembers recent masks).

    Errors of the face detector propagate: a caller that cannot anonymise a frame must
    publish :meth:`fully_masked` instead, or nothing.
    """

    def __init__(self, settings: PrivacySettings, face_detector: CenterFaceDetector | None) -> None:
        if settings.face_detection and face_detector is None:
            raise PrivacyConfigError('face_detection is enabled but no face detector was given')
        self.settings = settings
        self._face_detector = face_detector if settings.face_detection else None
        self._memory = MaskMemory(settings.hold_frames, settings.hold_growth_per_frame)
        self._frames_until_face_search = 0

    def reset(self) -> None:
        """Forgets held masks, for a stream that does not continue the previous frames."""
        self._memory.reset()
        self._frames_until_face_search = 0

    def anonymize(self, image_bgr: np.ndarray, detections: Detections | None) -> AnonymizedFrame:
        """A masked copy of ``image_bgr``; the input array is left as it is.

        ``detections`` are the objects found in this very frame; None where no object
        detector is in use (only faces are masked then). A caller whose detections did not
        arrive in time should use :meth:`fully_masked` rather than pass None.
        """
        check_image(image_bgr)
        settings = self.settings
        persons = (Detections.empty() if detections is None
                   else detections.of_class(*settings.person_labels))
        heads = head_regions(persons.boxes, image_bgr.shape)
        person_masks, person_ids = {
            PrivacyPolicy.HEADS: (heads, persons.track_ids),
            PrivacyPolicy.PERSONS: (expand_boxes(persons.boxes, settings.person_margin, image_bgr.shape),
                                    persons.track_ids),
            PrivacyPolicy.FACES: (np.zeros((0, 4), np.float32), np.zeros(0, np.int64)),
        }[settings.policy]
        faces = self._find_faces(image_bgr, heads)
        face_masks = expand_boxes(faces, settings.face_margin, image_bgr.shape)
        boxes = np.vstack([person_masks, face_masks])
        track_ids = np.concatenate([person_ids, np.full(len(face_masks), UNTRACKED, np.int64)])
        masked_boxes = self._memory.update(boxes, track_ids)
        image = image_bgr.copy()
        apply_masks(image, masked_boxes, settings.method, settings.strength)
        return AnonymizedFrame(image, masked_boxes, len(faces))

    def fully_masked(self, image_bgr: np.ndarray) -> np.ndarray:
        """The whole frame masked beyond recognition: for frames that cannot be anonymised."""
        return mask_everything(image_bgr, self.settings.method)

    def _find_faces(self, image_bgr: np.ndarray, search_regions: np.ndarray) -> np.ndarray:
        """Face boxes from the whole frame and from enlarged head regions, as configured."""
        detector, settings = self._face_detector, self.settings
        if detector is None:
            return np.zeros((0, 4), np.float32)
        found = [(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))]
        # The whole-frame search (the costliest step of masking) on every n-th frame: in between,
        # the faces it found are held by the mask memory.
        if settings.face_scale > 0 and self._frames_until_face_search == 0:
            found.append(detector.detect(image_bgr, settings.face_scale, settings.face_threshold))
        self._frames_until_face_search = (self._frames_until_face_search - 1) % settings.face_search_every
        # Inside head and person masks a face is hidden already; searching there costs time only.
        if settings.face_in_person_boxes and settings.policy is PrivacyPolicy.FACES and len(search_regions):
            found.append(detector.detect_in_regions(image_bgr, search_regions, settings.face_region_min_side,
                                                    settings.face_threshold))
        boxes = np.vstack([found_boxes for found_boxes, _ in found])
        scores = np.concatenate([found_scores for _, found_scores in found])
        # Both searches find the larger faces: count each once.
        return boxes[non_max_suppression(boxes, scores, settings.face_threshold)]

def _require(condition: bool, message: str) -> None:
    if not condition:
        raise PrivacyConfigError(message)
