"""The privacy node over real DDS, in its own process: fail-closed and held masks.

1. camera_driver + detector + privacy as separate processes on a vtest.avi clip; the
   detector is killed mid-run. Frames without detections leave fully masked, never raw.
2. The privacy node alone, fed frames and detections by this test: a person missing from
   one frame's detections stays masked; a frame whose detections never come fails closed.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
import yaml
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from conftest import REPO_ROOT, shared_file, wait_until
from graph_observer import GraphObserver, vtest_clip
from kaiserslautern_vss.bringup.graph import NodeSpec, load_graph
from kaiserslautern_vss.bringup.processes import GraphProcesses
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.parameters.privacy import PARAMETERS
from kaiserslautern_vss.parameters.spec import validate_parameters
from kaiserslautern_vss.privacy.masking import MaskMethod, mask_everything
from kaiserslautern_vss.privacy.regions import head_regions
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.detection_conversion import detections_to_msg, msg_to_detections
from kaiserslautern_vss.ros.image_conversion import bgr_to_image, image_to_bgr

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CLIP_FRAMES = range(300, 450)  # 15 s at 10 fps, several people walking
FRAMES_BEFORE_KILL = 30  # frames the detector answered
FRAMES_AFTER_KILL = 20
DEADLINE_S = 0.3


@pytest.fixture
def observer():
    context = rclpy.context.Context()
    rclpy.init(context=context)
    observer = GraphObserver(context, 'privacy_observer')
    yield observer
    observer.close()
    context.try_shutdown()


def _camera_detector_privacy(tmp_path: Path) -> list[NodeSpec]:
    config = yaml.safe_load((REPO_ROOT / 'config' / 'vss.yaml').read_text())
    del config['/vss/event_manager']
    config['/vss/cam01/camera_driver']['ros__parameters']['url'] = str(vtest_clip(tmp_path / 'clip.avi', CLIP_FRAMES))
    config['/vss/privacy']['ros__parameters'].update(detection_deadline_s=DEADLINE_S, on_deadline='mask_all')
    path = tmp_path / 'graph.yaml'
    path.write_text(yaml.safe_dump(config))
    return load_graph(path)


def fully_masked(raw: np.ndarray) -> np.ndarray:
    return mask_everything(raw, MaskMethod.PIXELATE)


def test_killed_detector_leaves_only_fully_masked_frames(tmp_path, observer):
    graph = GraphProcesses(_camera_detector_privacy(tmp_path), respawn=False)
    with graph:
        def masked_by_policy_so_far() -> int:  # the privacy node fails closed while it starts up
            return int(observer.diagnostics.get('published', 0)) - int(observer.diagnostics.get('fail_closed', 0))

        assert wait_until(lambda: masked_by_policy_so_far() >= FRAMES_BEFORE_KILL or graph.failed_at_startup(),
                          60, step=observer.spin)
        assert not graph.failed_at_startup()
        detector = graph.of_executable('detector')[0].process
        detector.kill()
        detector.wait()
        killed_at = time.monotonic()
        settled = killed_at + DEADLINE_S + 0.5  # frames the detector had answered are out by then
        assert wait_until(lambda: sum(t > settled for t in observer.arrived_s.values()) >= FRAMES_AFTER_KILL,
                          30, step=observer.spin)
        assert wait_until(lambda: int(observer.diagnostics.get(
            'fail_closed: no detections within the deadline', 0)) >= FRAMES_AFTER_KILL // 2, 5, step=observer.spin)

    masked_by_policy = fully_masked_count = after_kill = 0
    first_detections = min(observer.detections)  # earlier ones went out before the observer was found
    for key, message in observer.anonymized.items():
        if key not in observer.raw or key < first_detections:
            continue  # the observer lost that raw frame (best effort) or could not see its detections
        raw, anonymized = image_to_bgr(observer.raw[key]), image_to_bgr(message)
        if key in observer.detections:
            persons = msg_to_detections(observer.detections[key]).of_class('person')
            for x1, y1, x2, y2 in persons.boxes.astype(int):
                assert not np.array_equal(raw[y1:y2, x1:x2], anonymized[y1:y2, x1:x2]), f'person unmasked at {key}'
            masked_by_policy += not np.array_equal(anonymized, fully_masked(raw))
        else:
            # no detections for this frame (skipped, or the detector was dead): fully masked
            assert np.array_equal(anonymized, fully_masked(raw)), f'frame without detections not fully masked at {key}'
            fully_masked_count += 1
        after_kill += observer.arrived_s[key] > settled
    print(f'{masked_by_policy} frames masked by policy, {fully_masked_count} fully masked '
          f'({after_kill} after the kill); diagnostics {observer.diagnostics}')
    assert masked_by_policy >= FRAMES_BEFORE_KILL // 2
    assert after_kill >= FRAMES_AFTER_KILL * 0.8 and fully_masked_count >= after_kill
    assert int(observer.diagnostics['published']) > FRAMES_BEFORE_KILL  # reported a second late at most


# --- the privacy node alone, with detections written by the test --------------------------------

PERSON = np.array([[252, 220, 283, 308]], np.float32)  # a walking person in frame 0 of vtest.avi


def _privacy_alone() -> list[NodeSpec]:
    values = validate_parameters(PARAMETERS, {'cameras': ['cam01'], 'face_detection': False,
                                              'detection_deadline_s': DEADLINE_S, 'hold_frames': 3}, 'test')
    return [NodeSpec('privacy', 'privacy', '/vss', values)]


def test_person_missing_from_one_frame_stays_masked_and_unanswered_frame_fails_closed(observer):
    frame = cv2.VideoCapture(str(shared_file('data/vtest.avi'))).read()[1]
    image_pub = observer.node.create_publisher(Image, '/vss/cam01/image_raw', qos.SENSOR)
    detections_pub = observer.node.create_publisher(Detection2DArray, '/vss/cam01/detections', qos.RELIABLE)
    person = Detections(PERSON, np.array([0.9]), ('person',))
    plan = [person, person, Detections.empty(), person, None]  # None: the detector never answers

    def send(sec: int, detections: Detections | None) -> None:
        header = Header(frame_id='cam01')
        header.stamp.sec = sec
        image_pub.publish(bgr_to_image(frame, header))
        if detections is not None:
            detections_pub.publish(detections_to_msg(detections, header))

    with GraphProcesses(_privacy_alone()):
        # Matching is not symmetric at first: send empty warm-up frames until one comes back.
        for sec in range(1, 100):
            send(sec, Detections.empty())
            if wait_until(lambda: bool(observer.anonymized), 0.3, step=observer.spin):
                break
        assert observer.anonymized, 'the privacy node never answered'
        for index, detections in enumerate(plan):
            send(1_000 + index, detections)
            assert wait_until(lambda: (1_000 + index, 0) in observer.anonymized, 5, step=observer.spin), \
                f'frame {index} never left the privacy node'
    images = [image_to_bgr(observer.anonymized[(1_000 + i, 0)]) for i in range(len(plan))]
    x1, y1, x2, y2 = head_regions(PERSON, frame.shape).astype(int)[0]
    for index, image in enumerate(images[:4]):
        assert not np.array_equal(image[y1:y2, x1:x2], frame[y1:y2, x1:x2]), f'head shown in frame {index}'
        assert np.array_equal(image[:100, 400:], frame[:100, 400:])  # far from the person: untouched
    assert np.array_equal(images[4], fully_masked(frame))
