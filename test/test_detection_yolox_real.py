"""The real YOLOX-Nano on vtest.avi frames, the HOG fallback, and model loading failures."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_file

from kaiserslautern_vss.detection.factory import create_detector
from kaiserslautern_vss.detection.hog_detector import HogPeopleDetector
from kaiserslautern_vss.detection.layouts import ModelLayout
from kaiserslautern_vss.detection.onnx_detector import DetectorSettings, ModelLoadError, OnnxDetector

# Walking people found by YOLOX-Nano (default settings) per frame when this test was written,
# checked by eye; the range allows one more or fewer. Frame 0 includes a sign post scored 0.53.
PERSONS_PER_FRAME = {0: 4, 150: 8, 300: 7, 450: 4, 600: 7, 750: 8}


@pytest.fixture(scope='module')
def model_path() -> str:
    return str(shared_file('models/yolox_nano.onnx'))


@pytest.fixture(scope='module')
def detector(model_path) -> OnnxDetector:
    return OnnxDetector(DetectorSettings(model_path=model_path))


@pytest.fixture(scope='module')
def frames() -> dict[int, np.ndarray]:
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    chosen = {}
    for index in range(max(PERSONS_PER_FRAME) + 1):
        ok, frame = capture.read()
        assert ok, f'vtest.avi ended at frame {index}'
        if index in PERSONS_PER_FRAME:
            chosen[index] = frame
    capture.release()
    return chosen


def test_yolox_nano_is_recognised(detector):
    assert detector.layout is ModelLayout.YOLOX
    assert detector.input_size == (416, 416)
    assert detector.providers == ('CPUExecutionProvider',)
    assert not detector.supports_dynamic_batch
    # coco_classes.txt beside the model uses Darknet spellings; labels use the COCO ones.
    assert detector.class_names[3] == 'motorcycle'


@pytest.mark.parametrize('frame_index', sorted(PERSONS_PER_FRAME))
def test_walking_people_are_found(detector, frames, frame_index):
    detections = detector.detect(frames[frame_index])
    persons = detections.of_class('person')
    expected = PERSONS_PER_FRAME[frame_index]
    assert expected - 1 <= len(persons) <= expected + 1
    assert set(detections.labels) <= set(DetectorSettings('').class_allowlist)
    height, width = frames[frame_index].shape[:2]
    assert (detections.boxes >= 0).all()
    assert (detections.boxes[:, [0, 2]] <= width).all() and (detections.boxes[:, [1, 3]] <= height).all()
    # People on this square are 40-130 pixels tall and upright.
    person_heights = persons.boxes[:, 3] - persons.boxes[:, 1]
    assert ((person_heights > 20) & (person_heights < 160)).all()
    assert (person_heights > persons.boxes[:, 2] - persons.boxes[:, 0]).all()


def test_batch_and_concurrent_calls_give_the_same_detections(detector, frames):
    images = [frames[0], frames[300], frames[750]]
    one_by_one = [detector.detect(image) for image in images]
    with ThreadPoolExecutor(max_workers=3) as pool:
        concurrent = list(pool.map(detector.detect, images))
    for results in (detector.detect_batch(images), concurrent):
        for got, expected in zip(results, one_by_one):
            np.testing.assert_allclose(got.boxes, expected.boxes, atol=1e-3)
            assert got.labels == expected.labels


def test_hog_fallback_finds_a_person(frames):
    detections = HogPeopleDetector().detect(frames[150])
    assert len(detections) >= 1
    assert set(detections.labels) == {'person'}
    assert ((detections.scores > 0) & (detections.scores < 1)).all()


def test_unavailable_provider_falls_back_with_a_warning(model_path, caplog):
    with caplog.at_level(logging.WARNING, logger='kaiserslautern_vss.detection'):
        detector = OnnxDetector(DetectorSettings(
            model_path=model_path, providers=('NoSuchExecutionProvider', 'CPUExecutionProvider')))
    assert detector.providers == ('CPUExecutionProvider',)
    assert "providers ['NoSuchExecutionProvider'] are not available" in caplog.text


def test_missing_model_raises_naming_the_path(tmp_path):
    missing = tmp_path / 'nothing_here.onnx'
    with pytest.raises(ModelLoadError, match=f'detection model {missing} does not exist .* set model_path'):
        OnnxDetector(DetectorSettings(model_path=str(missing)))


def test_non_onnx_file_raises_and_never_falls_back(tmp_path):
    broken = tmp_path / 'broken.onnx'
    broken.write_text('this is not a protobuf')
    message = f'detection model {broken} is not a loadable ONNX model'
    with pytest.raises(ModelLoadError, match=message):
        OnnxDetector(DetectorSettings(model_path=str(broken)))
    with pytest.raises(ModelLoadError, match=message):
        create_detector(DetectorSettings(model_path=str(broken)), allow_hog_fallback=True)


def test_factory_loads_the_onnx_model_when_present(model_path):
    detector, description = create_detector(DetectorSettings(model_path=model_path))
    assert isinstance(detector, OnnxDetector)
    assert description == 'ONNX yolox_nano.onnx (yolox, 416x416, CPUExecutionProvider)'


@pytest.mark.parametrize('model', ['', 'does/not/exist.onnx'])
def test_factory_falls_back_to_hog_loudly_or_raises(model, caplog):
    with caplog.at_level(logging.WARNING, logger='kaiserslautern_vss.detection'):
        detector, description = create_detector(DetectorSettings(model_path=model))
    assert isinstance(detector, HogPeopleDetector)
    assert description.startswith('HOG people detector (fallback:')
    assert 'Detection quality is POOR' in caplog.text and 'Set model_path' in caplog.text
    with pytest.raises(ModelLoadError, match='no detection model: .* or allow the HOG fallback'):
        create_detector(DetectorSettings(model_path=model), allow_hog_fallback=False)


def test_class_names_file_next_to_the_model_is_used(tmp_path, model_path):
    copy = tmp_path / 'model.onnx'
    copy.write_bytes(Path(model_path).read_bytes())
    (tmp_path / 'coco_classes.txt').write_text('person\n')
    with pytest.raises(ModelLoadError, match='scores 80 classes but 1 class names were loaded'):
        OnnxDetector(DetectorSettings(model_path=str(copy)))
