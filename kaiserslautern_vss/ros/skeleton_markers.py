"""Poses as ``visualization_msgs/MarkerArray`` for rviz2 and the incident bags: keypoints and
limbs only, never pixels.

Coordinates are image pixels times :data:`SKELETON_PIXEL_SCALE` (1 px = 1 cm) in the camera's optical
frame (x right, y down), on the plane z = 1: in rviz2 with the camera frame fixed, the skeletons
lie where the people are in the image. Every array starts with DELETEALL and each marker has a
short lifetime, so skeletons of people no longer posed vanish.
"""

from __future__ import annotations

from collections.abc import Sequence

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from kaiserslautern_vss.behaviour.types import SKELETON_EDGES, Pose
from kaiserslautern_vss.ros.topics import SKELETON_PIXEL_SCALE

#: keypoints below this confidence are not drawn (MoveNet scores occluded joints low)
MIN_KEYPOINT_SCORE = 0.3
KEYPOINTS_NS, LIMBS_NS = 'keypoints', 'limbs'
LIFETIME = Duration(sec=0, nanosec=500_000_000)
_KEYPOINT_COLOUR = ColorRGBA(r=1.0, g=0.85, b=0.1, a=1.0)
_LIMB_COLOUR = ColorRGBA(r=0.1, g=0.9, b=1.0, a=1.0)


def skeleton_markers(poses: Sequence[Pose], header: Header) -> MarkerArray:
    """DELETEALL, then one SPHERE_LIST of every confident keypoint and one LINE_LIST of every
    limb between two confident keypoints (markers' ids: the track id)."""
    markers = [Marker(header=header, action=Marker.DELETEALL)]
    for pose in poses:
        confident = pose.keypoints[:, 2] >= MIN_KEYPOINT_SCORE
        points = [_point(x, y) for (x, y, _), ok in zip(pose.keypoints, confident) if ok]
        limbs = [_point(*pose.keypoints[end, :2]) for a, b in SKELETON_EDGES if confident[a] and confident[b]
                 for end in (a, b)]
        if points:
            markers.append(_marker(header, KEYPOINTS_NS, pose.track_id, Marker.SPHERE_LIST, 0.04, points,
                                   _KEYPOINT_COLOUR))
        if limbs:
            markers.append(_marker(header, LIMBS_NS, pose.track_id, Marker.LINE_LIST, 0.02, limbs, _LIMB_COLOUR))
    return MarkerArray(markers=markers)


def _point(x: float, y: float) -> Point:
    return Point(x=float(x) * SKELETON_PIXEL_SCALE, y=float(y) * SKELETON_PIXEL_SCALE, z=1.0)


def _marker(header: Header, namespace: str, track_id: int, kind: int, size: float, points: list[Point],
            colour: ColorRGBA) -> Marker:
    marker = Marker(header=header, ns=namespace, id=int(track_id), type=kind, action=Marker.ADD,
                    points=points, color=colour, lifetime=LIFETIME, frame_locked=False)
    marker.pose.orientation.w = 1.0
    marker.scale.x = marker.scale.y = marker.scale.z = size
    return marker
