"""The whole-frame face search on every n-th frame only, without a frame showing the face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.privacy.anonymizer import Anonymizer, PrivacyPolicy, PrivacySettings
from kaiserslautern_vss.privacy.face_detector import CenterFaceDetector

MESSI = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / 'messi5.jpg'
MESSI_FACE = np.array([227, 94, 257, 133], np.float32)


class CountingFaceDetector(CenterFaceDetector):
    """The real CenterFace, counting its whole-frame and region searches."""

    def __init__(self) -> None:
        super().__init__(threads=1)
        self.whole_frame = self.regions = 0

    def detect(self, image_bgr, scale=1.0, score_threshold=None):
        self.whole_frame += scale == 0.5
        return super().detect(image_bgr, scale, score_threshold)

    def detect_in_regions(self, image_bgr, regions, min_side, score_threshold=None):
        self.regions += 1
        return super().detect_in_regions(image_bgr, regions, min_side, score_threshold)


@pytest.fixture(scope='module')
def messi() -> np.ndarray:
    if not MESSI.is_file():
        pytest.skip(f'{MESSI} is absent: the shared test data lives in ../shared beside the checkout')
    return cv2.imread(str(MESSI))


def face_masked(raw: np.ndarray, image: np.ndarray) -> bool:
    x1, y1, x2, y2 = MESSI_FACE.astype(int)
    return (raw[y1:y2, x1:x2] != image[y1:y2, x1:x2]).any(axis=2).mean() > 0.9


def test_faces_found_stay_masked_between_searches(messi):
    detector = CountingFaceDetector()
    settings = PrivacySettings(policy=PrivacyPolicy.FACES, face_search_every=3, hold_frames=2,
                               face_in_person_boxes=False)
    anonymizer = Anonymizer(settings, detector)
    frames = [anonymizer.anonymize(messi, None) for _ in range(7)]
    assert detector.whole_frame == 3  # frames 0, 3 and 6
    assert [frame.faces_found for frame in frames] == [1, 0, 0, 1, 0, 0, 1]
    assert all(face_masked(messi, frame.image) for frame in frames)
    anonymizer.reset()
    anonymizer.anonymize(messi, None)
    assert detector.whole_frame == 4  # a new stream starts with a search


def test_heads_are_not_searched_for_faces_inside_their_masks(messi):
    detector = CountingFaceDetector()
    person = Detections(np.array([[170, 75, 320, 342]]), np.array([0.9]), ('person',))
    heads = Anonymizer(PrivacySettings(policy=PrivacyPolicy.HEADS), detector).anonymize(messi, person)
    assert detector.regions == 0
    assert face_masked(messi, heads.image)
    faces = Anonymizer(PrivacySettings(policy=PrivacyPolicy.FACES), detector).anonymize(messi, person)
    assert detector.regions == 1  # only faces are masked: persons' heads are searched closely
    assert faces.faces_found == 1  # found by both searches, counted once
    assert face_masked(messi, faces.image)
