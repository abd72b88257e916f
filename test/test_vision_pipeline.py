"""The vision pipeline without ROS, with the real YOLOX-Nano and the real anonymizer on vtest.avi:
every detected head leaves masked, failed inference leaves fully masked, stamps outside the
window are refused one by one, overload sheds frames before any work, the behaviour analyzer
sees each masked frame's raw pixels and validated detections and cannot cost a frame its
masking; plus the stamp window and the per-reason log throttle."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from conftest import shared_file
from kaiserslautern_vss.behaviour.types import PERSON_DOWN, BehaviourResult, Cue, Pose
from failing_model import failing_yolox_model
from kaiserslautern_vss.detection.onnx_detector import DetectorSettings, OnnxDetector
from kaiserslautern_vss.detection.scheduler import SchedulerSettings
from kaiserslautern_vss.log_throttle import ReasonThrottle
from kaiserslautern_vss.pipeline.stamp_window import FUTURE, PAST, StampWindow, StampWindowError
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.pipeline.vision import (BEHAVIOUR_FAILED, INFERENCE_FAILED, REFUSED, PipelineOutput,
                                                PipelineSettings, Problem, VisionPipeline)
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


class BoxPoses:
    """A behaviour analyzer of the protocol that keeps what it was given: one pose per tracked
    person (keypoints along its box's diagonal) and a person_down cue from the widest box."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, np.ndarray, Detections, float]] = []

    def analyse(self, camera_id: str, image: np.ndarray, detections: Detections, stamp_s: float) -> BehaviourResult:
        self.calls.append((camera_id, image.copy(), detections, stamp_s))
        persons = detections.of_class('person')
        diagonal = np.linspace(0.0, 1.0, 17)[:, None]
        poses = tuple(Pose(int(track), np.hstack([box[:2] + diagonal * (box[2:] - box[:2]), np.ones((17, 1))]))
                      for box, track in zip(persons.boxes, persons.track_ids))
        widest = max(((box[2] - box[0]) / max(box[3] - box[1], 1.0) for box in persons.boxes), default=0.0)
        return BehaviourResult(poses, (Cue(PERSON_DOWN, float(min(widest, 1.0)), (), {'aspect': float(widest)}),),
                               pose_cues=False)


class BrokenAnalyzer:
    def analyse(self, camera_id, image, detections, stamp_s) -> BehaviourResult:
        raise RuntimeError('pose model exploded')


def _pipeline(detector, cameras=('cam01',), publish_failed=True, tolerance_s=2.0,
              behaviour=None) -> tuple[VisionPipeline, Outputs]:
    outputs = Outputs()
    pipeline = VisionPipeline(
        [detector], {camera: Anonymizer(MASKING, None) for camera in cameras},
        SchedulerSettings(motion_gating=False),
        PipelineSettings(StampWindow(tolerance_s), ValidationSettings(known_labels=frozenset(detector.class_names)),
                         publish_failed),
        outputs.output, clock_ns=lambda: NOW_NS, report=outputs.report, behaviour=behaviour)
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


def test_behaviour_sees_the_raw_frame_in_memory_after_masking(yolox, vtest_frames):
    analyzer = BoxPoses()
    pipeline, outputs = _pipeline(yolox, behaviour=analyzer)
    _feed_one_by_one(pipeline, vtest_frames[:4])
    assert len(analyzer.calls) == len(outputs.frames) == 4
    for frame, (camera, image, detections, stamp_s) in zip(outputs.frames, analyzer.calls):
        assert camera == 'cam01' and stamp_s == frame.stamp_ns / 1e9
        assert np.array_equal(image, vtest_frames[frame.context])  # raw pixels, never the masked copy
        assert detections is frame.detections  # the validated detections the masks were made from
        assert len(frame.behaviour.poses) == len(detections.of_class('person')) > 0
        assert frame.behaviour.cues[0].kind == PERSON_DOWN
        masked, heads = heads_masked(vtest_frames[frame.context], frame.image, detections.of_class('person').boxes)
        assert masked == heads
    counts = pipeline.counts()['cam01'].behaviour
    assert (counts.analysed, counts.failed) == (4, 0) and counts.cpu_s >= 0.0


def test_a_failing_behaviour_analyzer_never_costs_a_frame_its_masking(yolox, vtest_frames):
    pipeline, outputs = _pipeline(yolox, behaviour=BrokenAnalyzer())
    _feed_one_by_one(pipeline, vtest_frames[:3])
    assert [(frame.failure, frame.behaviour) for frame in outputs.frames] == [(None, None)] * 3
    for frame in outputs.frames:
        masked, heads = heads_masked(vtest_frames[frame.context], frame.image,
                                     frame.detections.of_class('person').boxes)
        assert masked == heads > 0
    counts = pipeline.counts()['cam01']
    assert (counts.masked, counts.failed_closed, counts.behaviour.analysed, counts.behaviour.failed) == (3, {}, 0, 3)
    assert [(p.kind, p.reason) for p in outputs.problems] == [(BEHAVIOUR_FAILED, 'RuntimeError')] * 3
    assert 'pose model exploded' in outputs.problems[0].detail


def test_frames_failed_closed_are_not_analysed(tmp_path, vtest_frames):
    model, names = failing_yolox_model(tmp_path)
    analyzer = BoxPoses()
    pipeline, outputs = _pipeline(OnnxDetector(DetectorSettings(model_path=model, class_names_path=names,
                                                                layout='yolox')), behaviour=analyzer)
    _feed_one_by_one(pipeline, vtest_frames[:2])
    assert [(frame.failure, frame.behaviour) for frame in outputs.frames] == [(INFERENCE_FAILED, None)] * 2
    assert analyzer.calls == []


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
