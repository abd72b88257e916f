"""Privacy does not degrade silently without a privacy-grade detection model (#16).

- On hand-checked vtest.avi frames, in video mode, the conservative masking behind the HOG
  fallback masks every visible head; YOLOX and HOG alone are measured on the same frames.
- The conservative masking itself on synthetic frames: first frame, motion, hold, release.
- A site configuration requiring a privacy-grade model is refused before start (config
  validation) and at node start-up (exit 2), saying what to install where.
- The real vision_pipeline process without a model: the detector reports its grade on
  /diagnostics and /vss/events, the privacy node shows conservative masking, and what it
  publishes is masked conservatively.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from conftest import REPO_ROOT, shared_file, wait_until
from graph_observer import GraphObserver
from kaiserslautern_vss.bringup.graph import GraphConfigError, load_graph
from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.bringup.processes import GraphProcesses, ros_environment
from kaiserslautern_vss.detection.factory import create_detector
from kaiserslautern_vss.detection.grade import DETECTOR_INFO_SCHEMA, DetectorGrade
from kaiserslautern_vss.detection.hog_detector import HogPeopleDetector
from kaiserslautern_vss.detection.onnx_detector import DetectorSettings
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.parameters import detector, privacy
from kaiserslautern_vss.parameters.spec import validate_parameters
from kaiserslautern_vss.privacy.anonymizer import Anonymizer, PrivacyConfigError, PrivacySettings
from kaiserslautern_vss.privacy.conservative import (ConservativeAnonymizer, ConservativeSettings, MotionRegions,
                                                     anonymizer_for, masking_mode)
from kaiserslautern_vss.privacy.coverage import (MASKED_CHANGED_SHARE, changed_shares, head_cores,
                                                 untouched_share)
from kaiserslautern_vss.privacy.face_detector import CenterFaceDetector
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.image_conversion import bgr_to_image, image_to_bgr

# Every person whose head is visible, as x1, y1, x2, y2 boxes whose top seventh (middle half
# of the width) is the head (coverage.head_cores). Candidates were YOLOX-Nano's persons; each
# frame was then looked at, enlarged, and corrected by hand: YOLOX's false person on the blue
# sign at (30, 109) removed; people it missed or merged added; people whose head is outside
# the frame or hidden (the left edge at 220, the right edge at 460, inside the car boot at 780)
# left out.
HAND_CHECKED_PERSONS = {
    100: [(346, 197, 379, 274), (587, 154, 619, 236), (494, 147, 517, 218), (376, 177, 408, 256),
          (222, 60, 238, 94), (517, 151, 539, 219),
          (424, 174, 450, 258)],  # added: behind the assembly-point sign, head above it
    220: [(580, 294, 626, 412), (658, 110, 680, 162), (96, 181, 124, 250), (740, 236, 767, 322),
          (680, 113, 700, 163), (364, 163, 391, 240)],
    340: [(474, 161, 505, 238), (638, 206, 671, 299), (333, 206, 367, 297), (667, 211, 699, 295),
          (310, 179, 341, 253), (410, 181, 457, 267)],
    460: [(349, 213, 384, 298),
          (511, 204, 543, 300), (510, 229, 540, 319)],  # YOLOX: one box for the man and the woman in red
    580: [(229, 335, 280, 469), (183, 427, 256, 576), (638, 304, 669, 410), (676, 232, 716, 330),
          (579, 171, 611, 248), (283, 146, 309, 217)],
    700: [(278, 205, 310, 293), (517, 165, 544, 233), (100, 286, 145, 397), (364, 173, 393, 257),
          (474, 134, 497, 199), (184, 165, 212, 235), (683, 212, 728, 307), (403, 148, 427, 205),
          (730, 44, 750, 114)],  # added: walking behind the parked car, head above its roof
    780: [(611, 200, 646, 297), (348, 258, 391, 365), (565, 245, 604, 346), (235, 164, 261, 244),
          (663, 135, 688, 203),
          (315, 174, 343, 240), (303, 200, 331, 272)],  # YOLOX: one box for these two
}
# Video mode: each hand-checked frame is anonymised after the frames before it, so motion has
# a background and masks have history (longer than the conservative hold of 15 frames).
HISTORY_FRAMES = 20


def _anonymized_at_checked_frames(person_detector, anonymizer_factory) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``frame -> (raw, anonymised)``, each frame run through a fresh anonymizer after its history."""
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    results = {}
    for checked in HAND_CHECKED_PERSONS:
        anonymizer = anonymizer_factory()
        capture.set(cv2.CAP_PROP_POS_FRAMES, checked - HISTORY_FRAMES)
        for _ in range(HISTORY_FRAMES + 1):
            raw = capture.read()[1]
            masked = anonymizer.anonymize(raw, person_detector.detect(raw)).image
        results[checked] = (raw, masked)
    capture.release()
    return results


def _heads_and_background(results) -> tuple[int, int, float, dict[int, list[tuple[int, ...]]]]:
    """(heads masked, heads, mean share of pixels away from people untouched, missed persons by frame)."""
    masked_heads = heads = 0
    untouched, missed = [], {}
    for checked, (raw, masked) in results.items():
        persons = np.array(HAND_CHECKED_PERSONS[checked], np.float32)
        shares = changed_shares(raw, masked, head_cores(persons, raw.shape))
        masked_heads += int((shares >= MASKED_CHANGED_SHARE).sum())
        heads += len(persons)
        untouched.append(untouched_share(raw, masked, persons))
        missed[checked] = [HAND_CHECKED_PERSONS[checked][i] for i in np.flatnonzero(shares < MASKED_CHANGED_SHARE)]
    return masked_heads, heads, float(np.mean(untouched)), {k: v for k, v in missed.items() if v}


@pytest.fixture(scope='module')
def face_detector() -> CenterFaceDetector:
    return CenterFaceDetector()


@pytest.fixture(scope='module')
def conservative_fallback(face_detector):
    return _anonymized_at_checked_frames(
        HogPeopleDetector(), lambda: ConservativeAnonymizer(PrivacySettings(), face_detector))


@pytest.mark.slow
def test_conservative_fallback_masks_every_hand_checked_head(conservative_fallback):
    masked, heads, untouched, missed = _heads_and_background(conservative_fallback)
    print(f'conservative fallback: {masked}/{heads} heads masked, {untouched:.1%} of the pixels away '
          f'from people untouched')
    assert heads == 44
    assert missed == {}
    assert untouched >= 0.75  # measured 84.8 %: moving people's surroundings are masked, not the scene


@pytest.mark.slow
def test_yolox_and_hog_alone_on_the_same_frames(face_detector, conservative_fallback):
    """The comparison for the record: what each detector leaves on the same frames."""
    yolox, _ = create_detector(DetectorSettings(model_path=str(shared_file('models/yolox_nano.onnx'))))
    rows = {'YOLOX-Nano, policy heads': _anonymized_at_checked_frames(
                yolox, lambda: Anonymizer(PrivacySettings(), face_detector)),
            'HOG alone, policy heads': _anonymized_at_checked_frames(
                HogPeopleDetector(), lambda: Anonymizer(PrivacySettings(), face_detector)),
            'conservative fallback (HOG)': conservative_fallback}
    measured = {name: _heads_and_background(results) for name, results in rows.items()}
    for name, (masked, heads, untouched, missed) in measured.items():
        print(f'{name}: {masked}/{heads} heads masked, {untouched:.1%} background untouched; missed {missed}')
    yolox_masked, hog_masked, fallback_masked = (measured[name][0] for name in rows)
    assert hog_masked <= 0.7 * fallback_masked  # why HOG alone must not decide what is masked
    assert yolox_masked >= 0.9 * fallback_masked
    assert measured['YOLOX-Nano, policy heads'][2] > measured['conservative fallback (HOG)'][2]


def _moving_square_frames(count: int, start_x: int = 20, step: int = 4) -> list[np.ndarray]:
    """A textured static scene with a bright textured square moving right by ``step`` pixels a frame."""
    rng = np.random.default_rng(1)
    scene = rng.integers(60, 120, (120, 160, 3), np.uint8)
    square = rng.integers(180, 255, (20, 20, 3), np.uint8)
    frames = []
    for index in range(count):
        frame = scene.copy()
        x = start_x + step * index
        frame[50:70, x:x + 20] = square
        frames.append(frame)
    return frames


def test_motion_regions_cover_what_moves_hold_it_and_release_it():
    settings = ConservativeSettings(motion_hold_frames=5, analysis_height=120)
    motion = MotionRegions(settings)
    frames = _moving_square_frames(12)
    assert motion.update(frames[0]).all()  # no background yet: everything counts as moving
    for frame in frames[1:10]:
        moving = motion.update(frame)
    assert moving[50:70, 56:76].all()  # the square where it is now
    assert not moving[:20].any() and not moving[100:].any()  # the still scene far from it
    still = frames[9]
    for _ in range(settings.motion_hold_frames - 1):
        assert motion.update(still)[50:70, 56:76].any()  # held after it stopped
    for _ in range(3):
        released = motion.update(still)
    assert not released.any()
    assert motion.update(np.zeros((60, 80, 3), np.uint8)).all()  # new resolution: background anew


def test_conservative_anonymizer_masks_motion_people_and_still_images(face_detector):
    # Whatever the configuration says, persons' heads and faces are masked too.
    assert ConservativeAnonymizer(PrivacySettings(policy='faces'), face_detector).settings.policy.value == 'heads'
    anonymizer = ConservativeAnonymizer(PrivacySettings(face_detection=False, face_scale=0.0), face_detector,
                                        ConservativeSettings(motion_hold_frames=3))
    assert anonymizer.settings.face_detection and anonymizer.settings.face_scale == 0.5
    frames = _moving_square_frames(8)
    first = anonymizer.anonymize(frames[0], None).image
    assert (first != frames[0]).any(axis=2).mean() > 0.9  # a still image: masked entirely
    for frame in frames[1:]:
        result = anonymizer.anonymize(frame, Detections(np.array([[120, 10, 150, 100]]), np.array([0.9]),
                                                        ('person',)))
    changed = (result.image != frames[-1]).any(axis=2)
    assert changed[50:70, 48:68].mean() > 0.6  # the moving square
    assert changed[8:40, 120:150].mean() > 0.6  # the head region of the (still) detected person
    assert not changed[100:, :100].any()  # the still scene elsewhere
    anonymizer.reset()
    assert (anonymizer.anonymize(frames[-1], None).image != frames[-1]).any(axis=2).mean() > 0.9


def test_the_masking_follows_the_detector_grade(face_detector):
    settings = PrivacySettings()
    assert type(anonymizer_for(DetectorGrade.MODEL, settings, face_detector)) is Anonymizer
    assert type(anonymizer_for(DetectorGrade.FALLBACK, settings, face_detector)) is ConservativeAnonymizer
    assert masking_mode(DetectorGrade.MODEL, settings) == 'policy heads'
    assert masking_mode(DetectorGrade.FALLBACK, settings).startswith('conservative: everything that moved')
    assert HogPeopleDetector.grade is DetectorGrade.FALLBACK and not DetectorGrade.FALLBACK.privacy_grade
    with pytest.raises(PrivacyConfigError, match='motion_hold_frames must be at least 1'):
        ConservativeSettings(motion_hold_frames=0)


@pytest.fixture
def no_model_anywhere(tmp_path, monkeypatch) -> Path:
    """A machine where no detection model is installed: nothing in any place the search looks."""
    empty = tmp_path / 'no_shared'
    empty.mkdir()
    monkeypatch.setenv('VSS_SHARED_DIR', str(empty))
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.delenv('VSS_MODEL_DIR', raising=False)
    return tmp_path


def test_site_config_without_a_model_is_refused_before_start(no_model_anywhere):
    with pytest.raises(GraphConfigError) as refused:
        load_graph(REPO_ROOT / 'config' / 'site_rathausvorplatz.yaml')
    message = str(refused.value)
    assert '/vss/detector: require_privacy_grade_model is set but there is no privacy-grade detection model' \
        in message
    assert 'Install a YOLO ONNX export as yolox_nano.onnx in one of: ' in message
    assert str(no_model_anywhere / 'no_shared' / 'models') in message
    assert str(no_model_anywhere / 'home' / '.local' / 'share' / 'kaiserslautern_vss' / 'models') in message
    # The demo configuration runs without one (HOG, conservative masking).
    assert load_graph(REPO_ROOT / 'config' / 'vss.yaml')
    # ... and so does the site once a model is where the message says.
    models = no_model_anywhere / 'no_shared' / 'models'
    models.mkdir()
    (models / 'yolox_nano.onnx').symlink_to(shared_file('models/yolox_nano.onnx'))
    assert load_graph(REPO_ROOT / 'config' / 'site_rathausvorplatz.yaml')


def _pipeline_specs(**detector_parameters) -> list[NodeSpec]:
    """Detector and privacy node for cam01 (frames from image_raw: no camera driver hosted)."""
    detector_values = validate_parameters(detector.PARAMETERS, {'cameras': ['cam01'], 'sessions': 1,
                                                                **detector_parameters}, 'test detector')
    privacy_values = validate_parameters(privacy.PARAMETERS, {'cameras': ['cam01']}, 'test privacy')
    return [NodeSpec('detector', 'detector', '/vss', detector_values),
            NodeSpec('privacy', 'privacy', '/vss', privacy_values)]


def _environment_without_a_model() -> dict[str, str]:
    env = ros_environment()
    env.pop('VSS_MODEL_DIR', None)
    return env  # VSS_SHARED_DIR and HOME as no_model_anywhere set them


@pytest.mark.ros
@pytest.mark.slow
def test_the_detector_refuses_to_start_without_a_required_model(no_model_anywhere, capfd):
    graph = GraphProcesses(_pipeline_specs(require_privacy_grade_model=True), env=_environment_without_a_model())
    graph.start()
    try:
        assert wait_until(lambda: graph.nodes[0].returncode is not None, 60)
    finally:
        graph.stop()
    assert graph.nodes[0].returncode == 2
    assert 'require_privacy_grade_model is set but there is no privacy-grade detection model' in capfd.readouterr().err


class _ModeObserver(GraphObserver):
    """A GraphObserver that also keeps the detector's model status."""

    def __init__(self, context) -> None:
        super().__init__(context, 'fallback_test_observer')
        self.model_status: DiagnosticStatus | None = None
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_model_status, 10)
        self.raw_pub = self.node.create_publisher(Image, '/vss/cam01/image_raw', qos.SENSOR)

    def _on_model_status(self, msg: DiagnosticArray) -> None:
        self.model_status = next((s for s in msg.status if s.name == 'detector: model'), self.model_status)


def _observe_pipeline(specs: list[NodeSpec], frame: np.ndarray | None = None) -> _ModeObserver:
    """Runs ``specs`` as the vision_pipeline process until its diagnostics show the masking and,
    given a ``frame``, until that frame came out anonymised; stops it (exit status 0)."""
    context = rclpy.context.Context()
    rclpy.init(context=context)
    observer = _ModeObserver(context)
    graph = GraphProcesses(specs, env=_environment_without_a_model())
    graph.start()
    try:
        assert wait_until(lambda: (observer.model_status is not None and 'masking' in observer.diagnostics)
                          or bool(graph.failed_at_startup()), 90, step=observer.spin)
        assert not graph.failed_at_startup()
        deadline = time.monotonic() + 60
        while frame is not None and not observer.anonymized and time.monotonic() < deadline:
            header = Header(frame_id='cam01_optical_frame')  # best effort: resent until one is out
            header.stamp.sec, header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
            observer.raw_pub.publish(bgr_to_image(frame, header))
            wait_until(lambda: bool(observer.anonymized), 0.5, step=observer.spin)
        wait_until(lambda: any(e.get('schema') == DETECTOR_INFO_SCHEMA for e in observer.events), 10,
                   step=observer.spin)
    finally:
        codes = graph.stop()
        observer.close()
        context.try_shutdown()
    assert codes == {'vision_pipeline': 0}
    return observer


def _detector_info(observer: _ModeObserver) -> dict:
    return next(e for e in observer.events if e.get('schema') == DETECTOR_INFO_SCHEMA)


@pytest.mark.ros
@pytest.mark.slow
def test_without_a_model_diagnostics_and_events_show_the_fallback_and_frames_leave_masked(no_model_anywhere):
    raw = cv2.VideoCapture(str(shared_file('data/vtest.avi'))).read()[1]
    observer = _observe_pipeline(_pipeline_specs(), raw)
    status = observer.model_status
    assert status.level == DiagnosticStatus.WARN
    assert status.message.startswith('NOT privacy-grade, privacy masks conservatively: HOG people detector')
    assert {v.key: v.value for v in status.values}['grade'] == 'fallback'
    assert observer.diagnostics['masking'].startswith('conservative: everything that moved recently')
    info = _detector_info(observer)
    assert info['grade'] == 'fallback' and info['privacy_grade'] is False and info['node'] == '/vss/detector'
    assert info['detector'].startswith('HOG people detector (fallback: model_path is empty)')
    # The first frame has no motion history: it leaves masked entirely.
    assert observer.anonymized
    masked = image_to_bgr(next(iter(observer.anonymized.values())))
    assert (masked != raw).any(axis=2).mean() > 0.9


@pytest.mark.ros
@pytest.mark.slow
def test_with_a_model_diagnostics_and_events_show_privacy_grade_and_the_policy(no_model_anywhere):
    observer = _observe_pipeline(_pipeline_specs(model_path=str(shared_file('models/yolox_nano.onnx'))))
    status = observer.model_status
    assert status.level == DiagnosticStatus.OK
    assert status.message.startswith('privacy-grade: ONNX yolox_nano.onnx')
    assert observer.diagnostics['masking'] == 'policy heads'
    info = _detector_info(observer)
    assert info['grade'] == 'model' and info['privacy_grade'] is True
