"""On real vtest.avi frames: every head the person detector finds is masked, the rest untouched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import shared_file
from kaiserslautern_vss.privacy.coverage import (changed_shares, head_cores, heads_masked,
                                                 untouched_share)
from kaiserslautern_vss.tools.anonymize import build_frame_anonymizer, node_parameters

FIRST_FRAME, FRAMES = 200, 30  # a busy stretch: 7-8 people per frame


def measure(policy: str) -> tuple[int, int, float]:
    """(masked heads, heads, mean untouched share away from persons) over the frames."""
    detector_values, privacy_values = node_parameters(None)
    frames = build_frame_anonymizer(detector_values, {**privacy_values, 'policy': policy})
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    capture.set(cv2.CAP_PROP_POS_FRAMES, FIRST_FRAME)
    masked = heads = 0
    untouched = []
    for _ in range(FRAMES):
        raw = capture.read()[1]
        persons = frames.detector.detect(raw).of_class('person')
        image = frames.anonymizer.anonymize(raw, persons).image
        found_masked, found = heads_masked(raw, image, persons.boxes)
        masked, heads = masked + found_masked, heads + found
        untouched.append(untouched_share(raw, image, persons.boxes))
    return masked, heads, float(np.mean(untouched))


def test_heads_policy_masks_every_detected_head_and_leaves_the_rest():
    masked, heads, untouched = measure('heads')
    print(f'heads policy: {masked}/{heads} heads masked, {untouched:.1%} of pixels away from people untouched')
    assert heads >= 5 * FRAMES
    assert masked / heads >= 0.99
    assert untouched >= 0.95


def test_faces_policy_misses_most_small_heads_which_the_measure_sees():
    masked, heads, _ = measure('faces')
    print(f'faces policy: {masked}/{heads} heads masked')
    assert masked / heads < 0.5  # CenterFace alone misses people seen from behind or far away


def test_measures_on_a_synthetic_frame():
    raw = np.random.default_rng(0).integers(0, 255, (100, 100, 3), np.uint8)
    masked = raw.copy()
    masked[0:10, 40:60] = 0  # head core of a person box 30..70 x 0..70 (top seventh = 10 rows)
    person = np.array([[30, 0, 70, 70]], np.float32)
    assert head_cores(person, raw.shape).tolist() == [[40, 0, 60, 10]]
    assert changed_shares(raw, masked, head_cores(person, raw.shape)) == pytest.approx([1.0])
    assert heads_masked(raw, masked, person) == (1, 1)
    assert heads_masked(raw, raw, person) == (0, 1)
    masked[90:, 90:] = 0
    assert untouched_share(raw, masked, person) < 1.0
    with pytest.raises(ValueError, match='differ in shape'):
        untouched_share(raw, raw[:50], person)
