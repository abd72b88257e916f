"""The three message kinds the console reads, decoded from CDR with rosbags (no ROS needed).

Live topics arrive serialized from the node and bags hold the same bytes, so live view
and playback share these decoders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kaiserslautern_vss.bounded_json import parse_untrusted_json
from kaiserslautern_vss.events.incident import EVENT_SCHEMA
from kaiserslautern_vss.ros.detection_reading import msg_to_detections
from kaiserslautern_vss.ros.typestore import vss_typestore

COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
DETECTIONS = 'vision_msgs/msg/Detection2DArray'
STRING = 'std_msgs/msg/String'


class MessageError(ValueError):
    """A message the console cannot show (undecodable, not a JPEG)."""


class NotAnIncident(MessageError):
    """A well-formed /vss/events message of another schema (e.g. the detector's start-up info)."""


@dataclass(frozen=True)
class Box:
    """One detection as drawn in the browser: corner, size, label, track id (-1, UNTRACKED: none)."""

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


def stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def deserialize(cdr: bytes, msgtype: str) -> Any:
    try:
        return vss_typestore().deserialize_cdr(cdr, msgtype)
    except Exception as error:  # rosbags raises assorted errors on malformed CDR
        raise MessageError(f'undecodable {msgtype}: {error}') from error


def jpeg_from_cdr(cdr: bytes) -> tuple[int, bytes]:
    """``(stamp_ns, jpeg_bytes)`` of a serialized CompressedImage; only JPEG is served."""
    msg = deserialize(cdr, COMPRESSED_IMAGE)
    data = msg.data.tobytes()
    if not ('jpeg' in msg.format.lower() or 'jpg' in msg.format.lower()) or data[:2] != b'\xff\xd8':
        raise MessageError(f'compressed image is {msg.format!r}, not JPEG')
    return stamp_ns(msg.header), data


def decode_detections(cdr: bytes) -> tuple[int, list[Box]]:
    """``(stamp_ns, boxes)`` of a serialized Detection2DArray (best hypothesis per detection)."""
    msg = deserialize(cdr, DETECTIONS)
    detections = msg_to_detections(msg)
    boxes = [Box(float(x1), float(y1), float(x2 - x1), float(y2 - y1), label, int(track_id), float(score))
             for (x1, y1, x2, y2), score, label, track_id in zip(detections.boxes, detections.scores,
                                                                 detections.labels, detections.track_ids)]
    return stamp_ns(msg.header), boxes


def decode_event(cdr: bytes) -> dict[str, Any]:
    """The incident JSON of a serialized /vss/events String."""
    try:
        event = parse_untrusted_json(deserialize(cdr, STRING).data)
    except ValueError as error:  # UntrustedJsonError: too large, too deep, not JSON
        raise MessageError(f'event is not JSON: {error}') from error
    if isinstance(event, dict) and event.get('schema', EVENT_SCHEMA) != EVENT_SCHEMA:
        raise NotAnIncident(f'not an incident event: schema {event["schema"]!r}')
    if not isinstance(event, dict) or 'id' not in event:
        raise MessageError('event without incident id')
    return event
