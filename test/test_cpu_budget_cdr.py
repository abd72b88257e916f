"""Inference threads derived from cores and cameras; header stamps read from serialized messages."""

from __future__ import annotations

import os

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage
from vision_msgs.msg import Detection2DArray

from kaiserslautern_vss.detection.cpu_budget import available_cores, intra_op_threads_for, session_count_for
from kaiserslautern_vss.ros.cdr import CdrError, header_stamp_ns_from_cdr


@pytest.mark.parametrize('cameras, cores, threads, sessions', [
    (10, 2, 1, 2),   # the site box: two single-thread sessions, no pool to spin
    (10, 16, 1, 10),  # never more sessions than cameras
    (1, 8, 8, 1),    # one camera on a big machine: one session, all cores for latency
    (3, 8, 2, 3),
    (0, 4, 4, 1),    # no camera known yet: the whole machine, one session
])
def test_threads_and_sessions_never_oversubscribe(cameras, cores, threads, sessions):
    assert intra_op_threads_for(cameras, cores) == threads
    assert session_count_for(threads, cameras or None, cores) == sessions
    assert threads * sessions <= max(cores, 1)


def test_cores_are_those_this_process_may_use():
    assert available_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize('message', [CompressedImage(), Detection2DArray()])
def test_header_stamp_from_cdr(message):
    message.header.stamp.sec, message.header.stamp.nanosec = 1_795_000_000, 123_456_789
    message.header.frame_id = 'cam01'
    assert header_stamp_ns_from_cdr(serialize_message(message)) == 1_795_000_000_123_456_789


def test_header_stamp_big_endian():
    payload = b'\x00\x00\x00\x00' + (7).to_bytes(4, 'big') + (9).to_bytes(4, 'big')
    assert header_stamp_ns_from_cdr(payload) == 7_000_000_009


@pytest.mark.parametrize('payload', [b'', b'\x00\x01\x00\x00\x01', b'\x01\x02\x00\x00' + bytes(8)])
def test_not_a_cdr_header_is_refused(payload):
    with pytest.raises(CdrError, match='not a CDR message'):
        header_stamp_ns_from_cdr(payload)


def test_detections_from_cdr_equal_those_from_the_message():
    from std_msgs.msg import Header

    from kaiserslautern_vss.detection.types import UNTRACKED, Detections
    from kaiserslautern_vss.ros.detection_conversion import detections_to_msg
    from kaiserslautern_vss.ros.detection_reading import detections_from_cdr, msg_to_detections
    detections = Detections(np.array([[10.0, 20.0, 50.0, 120.0], [0.0, 0.0, 5.5, 9.25]]), np.array([0.9, 0.4]),
                            ('person', 'car'), np.array([7, UNTRACKED]))
    msg = detections_to_msg(detections, Header(frame_id='cam01'))
    from_cdr, from_msg = detections_from_cdr(serialize_message(msg)), msg_to_detections(msg)
    assert from_cdr.labels == from_msg.labels == ('person', 'car')
    assert np.allclose(from_cdr.boxes, from_msg.boxes) and np.allclose(from_cdr.scores, from_msg.scores)
    assert from_cdr.track_ids.tolist() == from_msg.track_ids.tolist() == [7, UNTRACKED]


def test_sessions_never_spin_while_waiting():
    from conftest import shared_file

    from kaiserslautern_vss.detection.cpu_budget import NO_SPINNING
    from kaiserslautern_vss.detection.onnx_detector import DetectorSettings, OnnxDetector
    from kaiserslautern_vss.privacy.face_detector import CenterFaceDetector
    detector = OnnxDetector(DetectorSettings(str(shared_file('models/yolox_nano.onnx')), intra_op_threads=2))
    for session in (detector._session, CenterFaceDetector()._session):
        options = session.get_session_options()
        assert {key: options.get_session_config_entry(key) for key in NO_SPINNING} == NO_SPINNING
    assert detector._session.get_session_options().intra_op_num_threads == 2
