"""Masks stay in place when detections drop out for a frame or a few."""

import numpy as np
import pytest

from kaiserslautern_vss.detection.types import UNTRACKED, Detections
from kaiserslautern_vss.privacy.anonymizer import Anonymizer, PrivacySettings
from kaiserslautern_vss.privacy.errors import PrivacyConfigError, PrivacyInputError
from kaiserslautern_vss.privacy.persistence import MaskMemory

NO_BOXES = np.zeros((0, 4), np.float32)
NO_IDS = np.zeros(0, np.int64)


def covers(outer: np.ndarray, inner: np.ndarray) -> bool:
    return bool((outer[:2] <= inner[:2]).all() and (outer[2:] >= inner[2:]).all())


def test_lost_track_is_held_moved_on_and_grown_then_dropped():
    memory = MaskMemory(hold_frames=2, growth_per_frame=0.1)
    for step in range(3):
        box = np.array([[100 + 10 * step, 50, 140 + 10 * step, 90]], np.float32)
        np.testing.assert_array_equal(memory.update(box, [4]), box)
    first_miss = memory.update(NO_BOXES, NO_IDS)
    np.testing.assert_allclose(first_miss, [[117.5, 48, 172.5, 92]])  # stretched 10 px, grown 10 %
    assert covers(first_miss[0], box[0])
    assert len(memory.update(NO_BOXES, NO_IDS)) == 1
    assert len(memory.update(NO_BOXES, NO_IDS)) == 0


def test_returning_track_is_not_masked_twice():
    memory = MaskMemory(hold_frames=5)
    memory.update(np.array([[0, 0, 10, 10]]), [1])
    memory.update(NO_BOXES, NO_IDS)
    assert len(memory.update(np.array([[1, 0, 11, 10]]), [1])) == 1


def test_untracked_box_is_held_until_a_current_box_covers_it():
    memory = MaskMemory(hold_frames=3, growth_per_frame=0.0)
    face = np.array([[200, 100, 230, 140]], np.float32)
    untracked = [UNTRACKED]
    memory.update(face, untracked)
    np.testing.assert_array_equal(memory.update(NO_BOXES, NO_IDS), face)
    elsewhere = np.array([[500, 100, 530, 140]], np.float32)
    assert len(memory.update(elsewhere, untracked)) == 2
    moved_face = face + np.array([3, 2, 3, 2], np.float32)
    masked = memory.update(np.vstack([elsewhere, moved_face]), [UNTRACKED, UNTRACKED])
    np.testing.assert_array_equal(masked, np.vstack([elsewhere, moved_face]))


def test_zero_hold_frames_holds_nothing_and_reset_forgets():
    assert len(MaskMemory(0).update(NO_BOXES, NO_IDS)) == 0
    memory = MaskMemory(0)
    memory.update(np.array([[0, 0, 10, 10]]), [UNTRACKED])
    assert len(memory.update(NO_BOXES, NO_IDS)) == 0
    memory = MaskMemory(5)
    memory.update(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), [1, UNTRACKED])
    memory.reset()
    assert len(memory.update(NO_BOXES, NO_IDS)) == 0


def test_bad_memory_input_is_refused():
    with pytest.raises(PrivacyConfigError, match='hold_frames must be 0 or more, got -1'):
        MaskMemory(-1)
    with pytest.raises(PrivacyInputError, match='got 1 boxes but 2 track ids'):
        MaskMemory(1).update(np.array([[0, 0, 1, 1]]), [1, 2])


@pytest.mark.parametrize('track_id', [3, UNTRACKED])
def test_flickering_person_detection_never_shows_the_head(track_id):
    settings = PrivacySettings(face_detection=False, hold_frames=2)
    anonymizer = Anonymizer(settings, None)
    rng = np.random.default_rng(2)
    seen = [True, False, True, True, False, True, False, True]
    for step, detected in enumerate(seen):
        image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        person = np.array([[100 + 2 * step, 60, 140 + 2 * step, 180]], np.float32)
        detections = (Detections(person, [0.8], ('person',), [track_id]) if detected
                      else Detections.empty())
        frame = anonymizer.anonymize(image, detections)
        head = (slice(60, 90), slice(100 + 2 * step, 140 + 2 * step))
        assert (frame.image[head] != image[head]).any(axis=2).mean() > 0.95, f'head shown in frame {step}'
