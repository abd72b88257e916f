"""The three message kinds the console reads, decoded from CDR with rosbags (no ROS needed).

Live topics arrive serialized from the node and bags hold the same bytes, so live view
and playback share these decoders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kaiserslautern_vss.bounded_json import parse_untrusted_json
from kaiserslautern_vss.events.bag_writer import vss_typestore
from kaiserslautern_vss.events.incident import EVENT_SCHEMA

COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
DETECTIONS = 'vision_msgs/msg/Detection2DArray'
STRING = 'std_msgs/msg/String'


class MessageError(ValueError):
    """A message the console cannot show (undecodable, not a JPEG)."""


class NotAnIncident(MessageError):
    """A well-formed /vss/events message of another schema (e.g. the detector's start-up info)."""


@dataclass(frozen=True)
class Box:
    """One detection as drawn in the browser: corner, size, label, track id (-1: none)."""

    x: float
    y: float
    w: float
    h: float
    label: str
    track_id: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {'x': round(self.x, 1), 'y': round(self.y, 1), 'w': round(self.w, 1), 'h': round(self.h, 1),
                'label': self.label, 'track_id': self.track_id, 'score': round(self.score, 2)}


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _deserialize(cdr: bytes, msgtype: str) -> Any:
    try:
        return vss_typestore().deserialize_cdr(cdr, msgtype)
    except Exception as error:  # rosbags raises assorted errors on malformed CDR
        raise MessageError(f'undecodable {msgtype}: {error}') from error


def decode_jpeg(cdr: bytes) -> tuple[int, bytes]:
    """``(stamp_ns, jpeg_bytes)`` of a serialized CompressedImage; only JPEG is served."""
    msg = _deserialize(cdr, COMPRESSED_IMAGE)
    data = msg.data.tobytes()
    if not ('jpeg' in msg.format.lower() or 'jpg' in msg.format.lower()) or data[:2] != b'\xff\xd8':
        raise MessageError(f'compressed image is {msg.format!r}, not JPEG')
    return _stamp_ns(msg.header), data


def decode_detections(cdr: bytes) -> tuple[int, list[Box]]:
    """``(stamp_ns, boxes)`` of a serialized Detection2DArray (best hypothesis per detection)."""
    msg = _deserialize(cdr, DETECTIONS)
    boxes = []
    for detection in msg.detections:
        if not detection.results:
            continue
        best = max(detection.results, key=lambda result: result.hypothesis.score).hypothesis
        w, h = float(detection.bbox.size_x), float(detection.bbox.size_y)
        center = detection.bbox.center.position
        boxes.append(Box(float(center.x) - w / 2, float(center.y) - h / 2,
                         w, h, best.class_id, int(detection.id) if detection.id.isdigit() else -1,
                         float(best.score)))
    return _stamp_ns(msg.header), boxes


def decode_event(cdr: bytes) -> dict[str, Any]:
    """The incident JSON of a serialized /vss/events String."""
    try:
        event = parse_untrusted_json(_deserialize(cdr, STRING).data)
    except ValueError as error:  # UntrustedJsonError: too large, too deep, not JSON
        raise MessageError(f'event is not JSON: {error}') from error
    if isinstance(event, dict) and event.get('schema', EVENT_SCHEMA) != EVENT_SCHEMA:
        raise NotAnIncident(f'not an incident event: schema {event["schema"]!r}')
    if not isinstance(event, dict) or 'id' not in event:
        raise MessageError('event without incident id')
    return event
