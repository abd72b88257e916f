"""The vision pipeline without ROS, with the real YOLOX-Nano and the real anonymizer on vtest.avi:
every detected head leaves masked, failed inference leaves fully masked, stamps outside the
window are refused one by one, overload sheds frames before any work; plus the stamp window
and the per-reason log throttle."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from conftest import shared_file
from failing_model import failing_yolox_model
from kaiserslautern_vss.detection.onnx_detector import DetectorSettings, OnnxDetector
from kaiserslautern_vss.detection.scheduler import SchedulerSettings
from kaiserslautern_vss.log_throttle import ReasonThrottle
from kaiserslautern_vss.pipeline.stamp_window import FUTURE, PAST, StampWindow, StampWindowError
from kaiserslautern_vss.pipeline.vision import (INFERENCE_FAILED, REFUSED, PipelineOutput, PipelineSettings,
                                                Problem, VisionPipeline)
from kaiserslautern_vss.privacy.anonymizer import Anonymizer, PrivacySettings
from kaiserslautern_vss.privacy.coverage import heads_masked
from kaiserslautern_vss.privacy.detection_validation import ValidationSettings
from kaiserslautern_vss.privacy.masking import MaskMethod, mask_everything

NOW_NS = 1_800_000_000 * 10**9
FRAME_NS = 100_000_000
MASKING = PrivacySettings(face_detection=False)


class Outputs:
    def __init__(self) -> None:
        self.frames: list[PipelineOutput] = []
        self.problems: list[Problem] = []
        self.lock = threading.Lock()

    def output(self, frame: PipelineOutput) -> None:
        with self.lock:
            self.frames.append(frame)

    def report(self, problem: Problem) -> None:
        with self.lock:
            self.problems.append(problem)


@pytest.fixture(scope='module')
def vtest_frames() -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 200)
    return [capture.read()[1] for _ in range(12)]


def _pipeline(detector, cameras=('cam01',), publish_failed=True, tolerance_s=2.0) -> tuple[VisionPipeline, Outputs]:
    outputs = Outputs()
    pipeline = VisionPipeline(
        [detector], {camera: Anonymizer(MASKING, None) for camera in cameras},
        SchedulerSettings(motion_gating=False),
        PipelineSettings(StampWindow(tolerance_s), ValidationSettings(known_labels=frozenset(detector.class_names)),
                         publish_failed),
        outputs.output, clock_ns=lambda: NOW_NS, report=outputs.report)
    return pipeline, outputs


@pytest.fixture(scope='module')
def yolox() -> OnnxDetector:
    return OnnxDetector(DetectorSettings(model_path=str(shared_file('models/yolox_nano.onnx'))))


def _feed_one_by_one(pipeline: VisionPipeline, frames, camera='cam01', start_ns=NOW_NS) -> None:
    pipeline.start()
    try:
        for index, frame in enumerate(frames):
            pipeline.submit(camera, frame, start_ns + index * FRAME_NS, index)
            assert pipeline.scheduler.wait_idle(30.0)
    finally:
        pipeline.stop()


def test_every_head_the_detector_finds_leaves_masked(yolox, vtest_frames):
    pipeline, outputs = _pipeline(yolox)
    _feed_one_by_one(pipeline, vtest_frames)
    assert [frame.context for frame in outputs.frames] == list(range(len(vtest_frames)))
    masked = heads = 0
    for frame in outputs.frames:
        raw = vtest_frames[frame.context]
        assert frame.failure is None and frame.stamp_ns == NOW_NS + frame.context * FRAME_NS
        found_masked, found = heads_masked(raw, frame.image, frame.detections.of_class('person').boxes)
        masked, heads = masked + found_masked, heads + found
    assert heads >= 5 * len(vtest_frames) and masked == heads
    counts = pipeline.counts()['cam01']
    assert (counts.submitted, counts.masked, counts.failed_closed, counts.refused) == (12, 12, {}, {})


def test_failed_inference_leaves_every_frame_fully_masked_or_dropped(tmp_path, vtest_frames):
    model, names = failing_yolox_model(tmp_path)
    failing = OnnxDetector(DetectorSettings(model_path=model, class_names_path=names, layout='yolox'))
    pipeline, outputs = _pipeline(failing)
    _feed_one_by_one(pipeline, vtest_frames[:3])
    assert [frame.failure for frame in outputs.frames] == [INFERENCE_FAILED] * 3
    for frame in outputs.frames:
        assert np.array_equal(frame.image, mask_everything(vtest_frames[frame.context], MaskMethod.PIXELATE))
        assert frame.detections is None
    assert pipeline.counts()['cam01'].failed_closed == {INFERENCE_FAILED: 3}
    assert 'cannot be reshaped' in outputs.problems[0].detail

    dropping, dropped = _pipeline(failing, publish_failed=False)
    _feed_one_by_one(dropping, vtest_frames[:2])
    assert [frame.image for frame in dropped.frames] == [None, None]


def test_frames_stamped_outside_the_window_are_refused_one_by_one(yolox, vtest_frames):
    pipeline, outputs = _pipeline(yolox, tolerance_s=2.0)
    day_ns = 86_400 * 10**9
    stamps = [NOW_NS, NOW_NS + day_ns, NOW_NS + FRAME_NS, NOW_NS - day_ns, NOW_NS + 2 * FRAME_NS,
              NOW_NS + 2_100_000_000, NOW_NS + 3 * FRAME_NS]
    pipeline.start()
    try:
        accepted = [pipeline.submit('cam01', vtest_frames[0], stamp, stamp) for stamp in stamps]
        for stamp in stamps:  # one at a time, so none is shed
            pipeline.submit('cam01', vtest_frames[0], stamp, stamp)
            assert pipeline.scheduler.wait_idle(30.0)
    finally:
        pipeline.stop()
    assert accepted == [True, False, True, False, True, False, True]
    published = [frame.stamp_ns for frame in outputs.frames if frame.failure is None]
    assert published[-4:] == [NOW_NS, NOW_NS + FRAME_NS, NOW_NS + 2 * FRAME_NS, NOW_NS + 3 * FRAME_NS]
    assert pipeline.counts()['cam01'].refused == {FUTURE: 4, PAST: 2}
    assert {problem.reason for problem in outputs.problems if problem.kind == REFUSED} == {FUTURE, PAST}


def test_overload_sheds_frames_before_any_work_and_never_unmasks(yolox, vtest_frames):
    pipeline, outputs = _pipeline(yolox, cameras=('cam01', 'cam02'))
    pipeline.start()
    try:
        for index in range(60):  # far faster than one session can infer
            for camera in ('cam01', 'cam02'):
                pipeline.submit(camera, vtest_frames[index % len(vtest_frames)], NOW_NS + index * FRAME_NS // 10,
                                index % len(vtest_frames))
        assert pipeline.scheduler.wait_idle(60.0)
    finally:
        pipeline.stop()
    stats = pipeline.scheduler.stats()
    for camera in ('cam01', 'cam02'):
        frames = [frame for frame in outputs.frames if frame.camera_id == camera]
        assert stats[camera].dropped + len(frames) == 60 and stats[camera].dropped > 0
        assert all(frame.failure is None for frame in frames)
        for frame in frames:
            masked, heads = heads_masked(vtest_frames[frame.context], frame.image,
                                         frame.detections.of_class('person').boxes)
            assert masked == heads


def test_stamp_window():
    window = StampWindow(2.0)
    assert window.refusal(NOW_NS + 2 * 10**9, NOW_NS) is None
    assert window.refusal(NOW_NS - 2 * 10**9, NOW_NS) is None
    assert window.refusal(NOW_NS + 2 * 10**9 + 1, NOW_NS) == FUTURE
    assert window.refusal(NOW_NS - 2 * 10**9 - 1, NOW_NS) == PAST
    with pytest.raises(StampWindowError, match='must be positive'):
        StampWindow(0.0)


def test_log_throttle_is_per_reason_and_counts_what_it_held_back():
    now = [0.0]
    throttle = ReasonThrottle(period_s=5.0, clock=lambda: now[0])
    assert throttle.admit(('cam01', 'future')) == 0
    assert throttle.admit(('cam01', 'past')) == 0  # another reason is not held back by the first
    assert throttle.admit(('cam01', 'future')) is None
    assert throttle.admit(('cam01', 'future')) is None
    now[0] = 5.0
    assert throttle.admit(('cam01', 'future')) == 2
