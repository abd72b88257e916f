"""vision_msgs/Detection2DArray -> Detections (class_id = class name, id = track id), from an rclpy
or rosbags message or straight from CDR: no ROS needed (the console and the event manager read
detections this way)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kaiserslautern_vss.detection.types import UNTRACKED, Detections
from kaiserslautern_vss.ros.typestore import vss_typestore

DETECTION2D_ARRAY = 'vision_msgs/msg/Detection2DArray'


def msg_to_detections(msg: Any) -> Detections:
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
