"""Detections -> vision_msgs/Detection2DArray (class_id = class name, id = track id); the way
back, without ROS, is :mod:`kaiserslautern_vss.ros.detection_reading`."""

from __future__ import annotations

from std_msgs.msg import Header
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from kaiserslautern_vss.detection.types import UNTRACKED, Detections


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
