"""The detector node in the real vision_pipeline process over DDS: two cameras of vtest.avi
frames in (through the replay input: no camera driver hosted), detections with the frames'
stamps, class names and track ids out; one camera stopping leaves the other running; a
missing model or disagreeing camera lists refuse to start."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter

import cv2
import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from conftest import shared_file, wait_until
from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.bringup.processes import GraphProcesses, ros_environment
from kaiserslautern_vss.parameters import detector, privacy
from kaiserslautern_vss.parameters.spec import validate_parameters
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.detection_reading import msg_to_detections
from kaiserslautern_vss.ros.image_conversion import bgr_to_image
from kaiserslautern_vss.ros.topics import camera_topic

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CAMERAS = ('cam01', 'cam02')
BOTH_FRAMES, CAM01_ALONE_FRAMES = 40, 20


def _pipeline_specs(privacy_cameras=CAMERAS, **parameters) -> list[NodeSpec]:
    """Detector and privacy node (cheap masking: no face search) in one vision_pipeline."""
    detector_values = validate_parameters(detector.PARAMETERS, {'cameras': list(CAMERAS), **parameters},
                                          'test detector')
    privacy_values = validate_parameters(privacy.PARAMETERS, {'cameras': list(privacy_cameras),
                                                              'face_detection': False}, 'test privacy')
    return [NodeSpec('detector', 'detector', '/vss', detector_values),
            NodeSpec('privacy', 'privacy', '/vss', privacy_values)]


class FeedAndObserve:
    """Publishes image_raw per camera and records detections by camera and stamp."""

    def __init__(self, context) -> None:
        self.node = rclpy.create_node('detector_test_feed', context=context)
        self.image_pubs = {cam: self.node.create_publisher(Image, camera_topic(cam, 'image_raw'), qos.SENSOR)
                           for cam in CAMERAS}
        self.detections: dict[str, dict[tuple[int, int], Detection2DArray]] = {cam: {} for cam in CAMERAS}
        self.sent: dict[str, list[tuple[int, int]]] = {cam: [] for cam in CAMERAS}
        self.lock = threading.Lock()
        self.detection_subs = [
            self.node.create_subscription(Detection2DArray, camera_topic(cam, 'detections'),
                                          lambda msg, cam=cam: self._store(cam, msg), qos.RELIABLE)
            for cam in CAMERAS]
        self.diagnostics: dict[str, str] = {}  # the pipeline's, for failure messages
        self.node.create_subscription(DiagnosticArray, '/diagnostics', lambda msg: self.diagnostics.update(
            {status.name: status.message for status in msg.status}), 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def _store(self, camera_id: str, msg: Detection2DArray) -> None:
        with self.lock:
            self.detections[camera_id][(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg

    def spin(self) -> None:
        self.executor.spin_once(timeout_sec=0.02)

    def connected(self) -> bool:
        return (all(pub.get_subscription_count() > 0 for pub in self.image_pubs.values())
                and all(sub.get_publisher_count() > 0 for sub in self.detection_subs))

    def answered(self, cameras: tuple[str, ...]) -> bool:
        with self.lock:
            return all(self.sent[c][-1] in self.detections[c] for c in cameras)

    def send(self, camera_id: str, frame: np.ndarray) -> None:
        header = Header(frame_id=f'{camera_id}_optical_frame')
        now_ns = time.time_ns()  # inside the pipeline's stamp window
        header.stamp.sec, header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
        self.sent[camera_id].append((header.stamp.sec, header.stamp.nanosec))
        self.image_pubs[camera_id].publish(bgr_to_image(frame, header))


def _vtest(count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    frames = [capture.read()[1] for _ in range(count)]
    capture.release()
    assert all(frame is not None for frame in frames)
    return frames


@pytest.fixture(scope='module')
def run():
    frames = _vtest(BOTH_FRAMES + CAM01_ALONE_FRAMES)
    context = rclpy.context.Context()
    rclpy.init(context=context)
    feed = FeedAndObserve(context)
    graph = GraphProcesses(_pipeline_specs(model_path=str(shared_file('models/yolox_nano.onnx')),
                                           sessions=2, allow_hog_fallback=False))
    graph.start()
    try:
        assert wait_until(lambda: feed.connected() or bool(graph.failed_at_startup()), 60, step=feed.spin)
        assert not graph.failed_at_startup(), 'the detector refused to start'
        for index, frame in enumerate(frames):
            cameras = CAMERAS if index < BOTH_FRAMES else ('cam01',)  # then cam02 stops sending
            for camera_id in cameras:
                feed.send(camera_id, frame)
            # Paced by the detector, not the clock (the test machine is shared and slow): the
            # next frame goes out once this one's detections are back.
            wait_until(lambda: feed.answered(cameras), 5.0, step=feed.spin)
    finally:
        codes = graph.stop()
    feed.node.destroy_node()
    context.try_shutdown()
    return feed, codes


def test_the_node_exits_cleanly(run):
    _, codes = run
    assert codes == {'vision_pipeline': 0}


def test_every_camera_gets_detections_with_its_own_frame_stamps(run):
    feed, _ = run
    for camera_id in CAMERAS:
        received = feed.detections[camera_id]
        assert len(received) >= 0.95 * len(feed.sent[camera_id]), (camera_id, feed.diagnostics)
        assert set(received) <= set(feed.sent[camera_id]), camera_id
        assert all(msg.header.frame_id == f'{camera_id}_optical_frame' for msg in received.values())


def test_people_are_found_with_scores_and_stable_track_ids(run):
    feed, _ = run
    for camera_id in CAMERAS:
        in_order = [msg_to_detections(feed.detections[camera_id][key])
                    for key in feed.sent[camera_id] if key in feed.detections[camera_id]]
        assert sum('person' in detections.labels for detections in in_order) >= 0.9 * len(in_order)
        assert all(((d.scores >= 0.35) & (d.scores <= 1.0)).all() for d in in_order)
        persons = [d.of_class('person') for d in in_order[5:]]
        tracked = sum(int((d.track_ids > 0).sum()) for d in persons)
        assert tracked >= 0.7 * sum(len(d) for d in persons), camera_id
        # Identities persist: the people walking through all frames keep their ids for most of them.
        lifetimes = Counter(int(i) for d in persons for i in d.track_ids if i > 0)
        assert sum(frames >= 0.8 * len(persons) for frames in lifetimes.values()) >= 3, lifetimes


def test_a_camera_that_stops_does_not_affect_the_other(run):
    feed, _ = run
    alone = feed.sent['cam01'][BOTH_FRAMES:]
    assert sum(key in feed.detections['cam01'] for key in alone) >= 0.95 * len(alone)
    assert len(feed.sent['cam02']) == BOTH_FRAMES


def _refused(specs: list[NodeSpec]) -> int:
    graph = GraphProcesses(specs)
    graph.start()
    try:
        assert wait_until(lambda: graph.nodes[0].returncode is not None, 30)
    finally:
        graph.stop()
    return graph.nodes[0].returncode


def test_a_missing_model_refuses_to_start_with_a_clear_message(tmp_path, capfd):
    missing = tmp_path / 'no_such_model.onnx'
    assert _refused(_pipeline_specs(model_path=str(missing), allow_hog_fallback=False)) == 2
    assert f"no detection model: model_path '{missing}' does not exist" in capfd.readouterr().err


def test_detector_and_privacy_must_serve_the_same_cameras(capfd):
    assert _refused(_pipeline_specs(privacy_cameras=('cam01',))) == 2
    assert ("detector cameras ['cam01', 'cam02'] and privacy cameras ['cam01'] differ"
            in capfd.readouterr().err)


@pytest.mark.parametrize('names, message', [
    (['/vss/cam01/camera_driver'], 'need exactly one detector and one privacy node'),
    (['/vss/detector', '/vss/privacy', '/vss/tracker'], 'got /vss/tracker'),
    (['detector', '/vss/privacy'], 'got detector')])
def test_the_pipeline_refuses_node_names_it_cannot_host(names, message, capfd):
    done = subprocess.run([sys.executable, '-m', 'kaiserslautern_vss.nodes.vision_pipeline', *names, '--ros-args'],
                          env=ros_environment(), timeout=60)
    assert done.returncode == 2
    assert message in capfd.readouterr().err
