"""Skeletons as rviz2 markers and back into image pixels for the console, and the cues the
console shows: numbers only, low-confidence joints left out, stale skeletons cleared."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from std_msgs.msg import Header, String
from visualization_msgs.msg import Marker

from kaiserslautern_vss.behaviour.messages import encode_behaviour
from kaiserslautern_vss.behaviour.types import (ASSAULT, FLEEING, PERSON_DOWN, SKELETON_EDGES, BehaviourResult, Cue,
                                               Pose)
from kaiserslautern_vss.console.behaviour_overlay import decode_cues, decode_skeletons
from kaiserslautern_vss.console.messages import MessageError
from kaiserslautern_vss.ros.skeleton_markers import MIN_KEYPOINT_SCORE, skeleton_markers
from kaiserslautern_vss.ros.stamps import time_from_ns

STAMP_NS = 1_795_000_000_123_000_000
HEADER = Header(stamp=time_from_ns(STAMP_NS), frame_id='cam01_optical_frame')


def _pose(track_id: int, hidden: tuple[int, ...] = ()) -> Pose:
    keypoints = np.array([[100.0 + 3 * i, 200.0 + 10 * i, 0.9] for i in range(17)])
    keypoints[list(hidden), 2] = MIN_KEYPOINT_SCORE / 2
    return Pose(track_id, keypoints)


def test_markers_hold_confident_keypoints_and_limbs_after_a_deleteall():
    array = skeleton_markers((_pose(3), _pose(7, hidden=(9, 10))), HEADER)
    first, *markers = array.markers
    assert first.action == Marker.DELETEALL
    by_key = {(m.ns, m.id): m for m in markers}
    assert set(by_key) == {('keypoints', 3), ('limbs', 3), ('keypoints', 7), ('limbs', 7)}
    assert len(by_key['keypoints', 3].points) == 17 and len(by_key['keypoints', 7].points) == 15
    assert len(by_key['limbs', 3].points) == 2 * len(SKELETON_EDGES)
    assert len(by_key['limbs', 7].points) == 2 * (len(SKELETON_EDGES) - 2)  # both forearms end at a hidden wrist
    assert all(m.header == HEADER and m.lifetime.nanosec > 0 for m in markers)
    assert skeleton_markers((), HEADER).markers[0].action == Marker.DELETEALL  # nobody posed: clear


def test_the_console_reads_the_markers_back_in_image_pixels():
    stamp, skeletons = decode_skeletons(serialize_message(skeleton_markers((_pose(3),), HEADER)))
    assert stamp == STAMP_NS
    (skeleton,) = skeletons
    assert skeleton['track_id'] == 3 and skeleton['points'][0] == [100.0, 200.0]
    shoulders = SKELETON_EDGES.index((5, 6))
    assert skeleton['limbs'][shoulders] == [115.0, 250.0, 118.0, 260.0]
    assert decode_skeletons(serialize_message(skeleton_markers((), HEADER)))[1] == []
    with pytest.raises(MessageError):
        decode_skeletons(b'\x00\x01\x00\x00garbage')


def test_the_console_shows_the_cues_that_scored_highest_first():
    result = BehaviourResult((), (Cue(ASSAULT, 0.4, (1, 2), {'strikes': 3.0}), Cue(PERSON_DOWN, 0.9, (2,)),
                                  Cue(FLEEING, 0.0, ())), pose_cues=True)
    stamp, cues = decode_cues(serialize_message(String(data=encode_behaviour('cam01', STAMP_NS, result))))
    assert stamp == STAMP_NS
    assert cues == [{'kind': PERSON_DOWN, 'score': 0.9, 'track_ids': [2], 'evidence': {}},
                    {'kind': ASSAULT, 'score': 0.4, 'track_ids': [1, 2], 'evidence': {'strikes': 3.0}}]
    with pytest.raises(MessageError, match='behaviour'):
        decode_cues(serialize_message(String(data='{"schema": "vss.behaviour/1", "camera": ""}')))
