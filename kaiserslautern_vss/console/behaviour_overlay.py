"""Why a behaviour alert fired, for the browser: skeletons (keypoints and limbs in image
pixels) and cue scores with their evidence, decoded from ``/vss/<cam>/skeletons`` and
``/vss/<cam>/behaviour`` as they arrive live and as the incident bags hold them.
"""

from __future__ import annotations

from typing import Any

from kaiserslautern_vss.behaviour.messages import BehaviourMessageError, decode_behaviour
from kaiserslautern_vss.console.messages import STRING, MessageError, deserialize, stamp_ns
from kaiserslautern_vss.ros.topics import SKELETON_PIXEL_SCALE

MARKER_ARRAY = 'visualization_msgs/msg/MarkerArray'
#: visualization_msgs/Marker action and types the skeletons use
_ADD, _LINE_LIST, _SPHERE_LIST = 0, 5, 7
#: more markers than this in one array is not a skeleton message
MAX_MARKERS = 512


def decode_skeletons(cdr: bytes) -> tuple[int, list[dict[str, Any]]]:
    """``(stamp_ns, skeletons)`` of a serialized skeleton MarkerArray: per track id its
    ``points`` [[x, y], ...] and ``limbs`` [[x1, y1, x2, y2], ...] in image pixels."""
    msg = deserialize(cdr, MARKER_ARRAY)
    if not msg.markers or len(msg.markers) > MAX_MARKERS:
        raise MessageError(f'skeletons: {len(msg.markers)} markers')
    skeletons: dict[int, dict[str, Any]] = {}
    for marker in msg.markers:
        if marker.action != _ADD or marker.type not in (_SPHERE_LIST, _LINE_LIST):
            continue
        points = [[round(p.x / SKELETON_PIXEL_SCALE, 1), round(p.y / SKELETON_PIXEL_SCALE, 1)] for p in marker.points]
        skeleton = skeletons.setdefault(int(marker.id), {'track_id': int(marker.id), 'points': [], 'limbs': []})
        if marker.type == _SPHERE_LIST:
            skeleton['points'] += points
        else:
            skeleton['limbs'] += [a + b for a, b in zip(points[::2], points[1::2])]
    return stamp_ns(msg.markers[0].header), list(skeletons.values())


def decode_cues(cdr: bytes) -> tuple[int, list[dict[str, Any]]]:
    """``(stamp_ns, cues)`` of a serialized behaviour message: the cues scoring above 0, highest first."""
    try:
        message = decode_behaviour(deserialize(cdr, STRING).data)
    except BehaviourMessageError as error:
        raise MessageError(f'behaviour: {error}') from error
    cues = sorted((cue for cue in message.cues if cue.score > 0.0), key=lambda cue: -cue.score)
    return message.stamp_ns, [{'kind': cue.kind, 'score': round(cue.score, 2), 'track_ids': list(cue.track_ids),
                               'evidence': {name: round(value, 2) for name, value in cue.evidence.items()}}
                              for cue in cues]
