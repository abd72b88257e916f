"""Detections <-> vision_msgs/Detection2DArray (class_id = class name, id = track id)."""

from __future__ import annotations

import numpy as np
from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from kaiserslautern_vss.detection.types import UNTRACKED, Detections
from kaiserslautern_vss.ros.typestore import vss_typestore

DETECTION2D_ARRAY = 'vision_msgs/msg/Detection2DArray'


def detections_to_msg(detections: Detections, header: Header) -> Detection2DArray:
    msg = Detection2DArray(header=header)
    for box, score, label, track_id in zip(detections.boxes, detections.scores,
                                           detections.labels, detections.track_ids):
        x1, y1, x2, y2 = (float(v) for v in box)
        detection = Detection2D(header=header, id='' if track_id == UNTRACKED else str(track_id))
        detection.bbox.center.position.x = (x1 + x2) / 2.0
        detection.bbox.center.position.y = (y1 + y2) / 2.0
        detection.bbox.size_x = x2 - x1
        detection.bbox.size_y = y2 - y1
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = label
        hypothesis.hypothesis.score = float(score)
        detection.results.append(hypothesis)
        msg.detections.append(detection)
    return msg


def msg_to_detections(msg: Detection2DArray) -> Detections:
    """Best hypothesis per detection; a non-numeric id counts as untracked."""
    boxes, scores, labels, track_ids = [], [], [], []
    for detection in msg.detections:
        if not detection.results:
            continue
        best = max(detection.results, key=lambda result: result.hypothesis.score).hypothesis
        cx, cy = detection.bbox.center.position.x, detection.bbox.center.position.y
        half_w, half_h = detection.bbox.size_x / 2.0, detection.bbox.size_y / 2.0
        boxes.append((cx - half_w, cy - half_h, cx + half_w, cy + half_h))
        scores.append(best.score)
        labels.append(best.class_id)
        track_ids.append(int(detection.id) if detection.id.isdigit() else UNTRACKED)
    if not labels:
        return Detections.empty()
    return Detections(np.array(boxes), np.array(scores), tuple(labels), np.array(track_ids))


def detections_from_cdr(payload: bytes) -> Detections:
    """:func:`msg_to_detections` of a serialized Detection2DArray (a ``raw=True`` subscription):
    rosbags builds the few fields read here about three times faster than rclpy's message."""
    return msg_to_detections(vss_typestore().deserialize_cdr(payload, DETECTION2D_ARRAY))
