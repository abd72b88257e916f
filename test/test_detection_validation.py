"""sanitize_detections: every kind of invalid detection is repaired towards more masking or
rejects the frame, counted by reason; valid detections pass unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.parameters.privacy import validation_settings
from kaiserslautern_vss.privacy.detection_validation import (EMPTY_BOX, LABEL_CASE, NON_FINITE_BOX,
                                                             NON_FINITE_SCORE, OUTSIDE_IMAGE, SWAPPED_CORNERS,
                                                             TOO_MANY, UNKNOWN_LABEL, DetectionValidationError,
                                                             ValidationSettings, detector_labels,
                                                             sanitize_detections)

SHAPE = (480, 640, 3)
SETTINGS = ValidationSettings(known_labels=frozenset({'person', 'car'}), max_detections=100)


def detections(*boxes, labels=None, scores=None) -> Detections:
    labels = labels or ('person',) * len(boxes)
    scores = np.full(len(boxes), 0.9) if scores is None else scores
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), scores, labels, np.arange(1, len(boxes) + 1))


def test_valid_detections_pass_unchanged():
    given = detections([10, 20, 60, 200], [300, 100, 340, 220], labels=('person', 'car'))
    result = sanitize_detections(given, SHAPE, SETTINGS)
    assert result.rejected is None and not result.repairs
    np.testing.assert_array_equal(result.detections.boxes, given.boxes)
    assert result.detections.labels == ('person', 'car')
    assert result.detections.track_ids.tolist() == [1, 2]


def test_empty_detections_are_valid():
    result = sanitize_detections(Detections.empty(), SHAPE, SETTINGS)
    assert result.rejected is None and len(result.detections) == 0


@pytest.mark.parametrize('label, expected, reason', [
    ('Person', 'person', LABEL_CASE), (' PERSON ', 'person', LABEL_CASE),
    ('pedestrian', 'person', UNKNOWN_LABEL), ('', 'person', UNKNOWN_LABEL), ('Car', 'car', LABEL_CASE)])
def test_labels_in_another_case_are_normalised_and_unknown_ones_masked_as_persons(label, expected, reason):
    result = sanitize_detections(detections([10, 20, 60, 200], labels=(label,)), SHAPE, SETTINGS)
    assert result.detections.labels == (expected,)
    assert result.repairs == {reason: 1}


def test_without_known_labels_only_case_is_normalised():
    result = sanitize_detections(detections([10, 20, 60, 200], labels=('Pedestrian',)), SHAPE,
                                 ValidationSettings())
    assert result.detections.labels == ('pedestrian',) and result.repairs == {LABEL_CASE: 1}


def test_swapped_corners_are_put_right():
    result = sanitize_detections(detections([60, 200, 10, 20]), SHAPE, SETTINGS)
    assert result.detections.boxes.tolist() == [[10, 20, 60, 200]]
    assert result.repairs == {SWAPPED_CORNERS: 1}


def test_boxes_sticking_out_are_clipped_without_counting():
    result = sanitize_detections(detections([-30, -10, 60, 900]), SHAPE, SETTINGS)
    assert result.detections.boxes.tolist() == [[0, 0, 60, 480]] and not result.repairs


def test_non_finite_scores_are_kept_as_certain():
    result = sanitize_detections(detections([10, 20, 60, 200], scores=np.array([np.nan])), SHAPE, SETTINGS)
    assert result.detections.scores.tolist() == [1.0] and result.repairs == {NON_FINITE_SCORE: 1}


@pytest.mark.parametrize('box, reason', [
    ([np.nan, 20, 60, 200], NON_FINITE_BOX), ([10, 20, np.inf, 200], NON_FINITE_BOX),
    ([10, 20, 10, 200], EMPTY_BOX), ([10, 20, 60, 20.5], EMPTY_BOX),
    ([700, 20, 760, 200], OUTSIDE_IMAGE), ([10, -300, 60, -100], OUTSIDE_IMAGE), ([-60, 20, 0, 200], OUTSIDE_IMAGE)])
def test_boxes_that_cannot_be_placed_reject_the_frame(box, reason):
    result = sanitize_detections(detections([100, 100, 150, 250], box), SHAPE, SETTINGS)
    assert result.detections is None and result.rejected == reason


def test_absurd_counts_reject_the_frame():
    many = detections(*[[10, 20, 60, 200]] * 101)
    result = sanitize_detections(many, SHAPE, SETTINGS)
    assert result.detections is None and result.rejected == TOO_MANY
    assert result.detail == '101 > max_detections 100'
    assert sanitize_detections(detections(*[[10, 20, 60, 200]] * 100), SHAPE, SETTINGS).rejected is None


def test_duplicates_are_kept():
    result = sanitize_detections(detections([10, 20, 60, 200], [10, 20, 60, 200]), SHAPE, SETTINGS)
    assert len(result.detections) == 2 and not result.repairs


def test_bad_settings_are_refused():
    with pytest.raises(DetectionValidationError, match='max_detections must be at least 1'):
        ValidationSettings(max_detections=0)
    with pytest.raises(DetectionValidationError, match="person label 'person' is not among the known labels"):
        ValidationSettings(known_labels=frozenset({'car'}))


def test_known_labels_are_the_allowlist_or_the_model_classes():
    class WithClasses:
        class_names = ('person', 'car', 'dog')

    assert detector_labels(WithClasses(), ['person', 'car']) == {'person', 'car'}
    assert detector_labels(WithClasses(), []) == {'person', 'car', 'dog'}
    assert detector_labels(object(), []) == {'person'}  # the HOG fallback finds persons only
    settings = validation_settings({'max_detections': 7}, frozenset({'car'}))
    assert settings.known_labels == {'person', 'car'} and settings.max_detections == 7
