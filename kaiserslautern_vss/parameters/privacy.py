"""Parameters the privacy executable declares (see kaiserslautern_vss.parameters.catalogue)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kaiserslautern_vss.parameters.common import CAMERAS
from kaiserslautern_vss.parameters.spec import ParamSpec

if TYPE_CHECKING:
    from kaiserslautern_vss.privacy.anonymizer import PrivacySettings
    from kaiserslautern_vss.privacy.detection_validation import ValidationSettings
    from kaiserslautern_vss.privacy.conservative import ConservativeSettings

PARAMETERS = (
    CAMERAS,
    ParamSpec('policy', 'heads', 'What is masked: heads of persons + faces, whole persons, or faces only',
              choices=('heads', 'persons', 'faces')),
    ParamSpec('method', 'pixelate', 'How it is masked', choices=('pixelate', 'blur', 'fill')),
    ParamSpec('face_detection', True, 'Run CenterFace in addition to the person detector'),
    ParamSpec('face_scale', 0.5, 'Scale of the whole-frame face detection pass (0: only inside person boxes)',
              minimum=0.0, maximum=2.0),
    ParamSpec('face_search_every', 1, 'Whole-frame face detection on every n-th frame of a camera; the faces '
              'found stay masked in between (at most hold_frames + 1)', minimum=1, maximum=101),
    ParamSpec('hold_frames', 5, 'Frames a lost track stays masked', minimum=0, maximum=100),
    ParamSpec('conservative_hold_frames', 15, 'Conservative masking (detector not privacy-grade): frames '
              'a region stays masked after it last moved', minimum=1, maximum=600),
    ParamSpec('on_deadline', 'mask_all', 'Frame that cannot be anonymised (inference failed, detections '
              'rejected as invalid, masking failed): publish it fully masked or drop it',
              choices=('mask_all', 'drop')),
    ParamSpec('stamp_tolerance_s', 5.0, 'Frames stamped further than this from the node clock (ahead or '
              'behind) are refused one by one and counted', minimum=0.05, maximum=86400.0),
    ParamSpec('max_detections', 1000, 'More detections in one frame mean a broken detector: the frame '
              'fails closed', minimum=1, maximum=100000),
    ParamSpec('jpeg_quality', 85, 'JPEG quality of image_anonymized/compressed', minimum=10, maximum=100),
)


def privacy_settings(values: Mapping[str, Any]) -> PrivacySettings:
    """The masking settings from validated parameter values (node and vss-anonymize alike)."""
    # Imported here: the catalogue is read by bringup tools that should not load onnxruntime.
    from kaiserslautern_vss.privacy.anonymizer import PrivacySettings
    return PrivacySettings(policy=values['policy'], method=values['method'],
                           face_detection=values['face_detection'], face_scale=values['face_scale'],
                           face_search_every=values['face_search_every'], hold_frames=values['hold_frames'])


def conservative_settings(values: Mapping[str, Any]) -> ConservativeSettings:
    """Settings of the conservative masking used behind a detector that is not privacy-grade."""
    from kaiserslautern_vss.privacy.conservative import ConservativeSettings
    return ConservativeSettings(motion_hold_frames=values['conservative_hold_frames'])


def validation_settings(values: Mapping[str, Any], detector_labels: frozenset[str]) -> ValidationSettings:
    """How detections are checked before masking (node and vss-anonymize alike); ``detector_labels``
    are the labels the detector can give (privacy.detection_validation.detector_labels)."""
    from kaiserslautern_vss.privacy.detection_validation import ValidationSettings
    return ValidationSettings(known_labels=detector_labels | {'person'}, max_detections=values['max_detections'])
