"""What a replay publishes and when: ROS-free planning for vss-replay.

A bag's image topics are mapped to the graph's input ``/vss/<cam>/image_raw`` so the
vision pipeline (detection, masking) and rules run again on recorded footage. Incident bags hold
``image_anonymized/compressed`` (never raw images): those are decoded and fed in, so a
replayed incident is already anonymised footage, masked a second time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kaiserslautern_vss.ros.topics import camera_topic

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
#: per camera, the first of these found in a bag is replayed (raw before re-encoded;
#: image_annotated is never used: its drawn boxes would be detected again)
IMAGE_PREFERENCE = ('image_raw', 'image_anonymized', 'image_raw/compressed', 'image_anonymized/compressed')
#: gap between the end of one loop and the start of the next, so stamps never repeat
LOOP_GAP_NS = 100_000_000


class ReplayError(ValueError):
    """A bag or mapping that cannot be replayed into the graph."""


@dataclass(frozen=True)
class ReplayTopic:
    source: str       # topic in the bag
    msgtype: str      # its ROS type
    camera: str
    target: str       # topic published into the graph

    @property
    def decode(self) -> bool:
        """Compressed images are decoded to bgr8 Image (the graph's input type)."""
        return self.msgtype == COMPRESSED


@dataclass(frozen=True)
class ReplayPlan:
    topics: tuple[ReplayTopic, ...]
    skipped: dict[str, str]  # bag topic -> why it is not replayed

    @property
    def cameras(self) -> list[str]:
        return sorted({t.camera for t in self.topics})

    def by_source(self) -> dict[str, ReplayTopic]:
        return {t.source: t for t in self.topics}


def camera_of(topic: str) -> tuple[str, str] | None:
    """``/vss/cam01/image_anonymized/compressed`` -> ``('cam01', 'image_anonymized/compressed')``."""
    parts = topic.strip('/').split('/', 2)
    if len(parts) == 3 and parts[0] == 'vss':
        return parts[1], parts[2]
    return None


def plan_replay(topics: Mapping[str, str], camera_map: Mapping[str, str] | None = None) -> ReplayPlan:
    """Choose what to publish from a bag's ``topic -> type``.

    ``camera_map`` names the camera of image topics outside the ``/vss/<cam>/`` contract
    (``{'/front/image': 'cam03'}``); it wins over the preference order.
    """
    camera_map = dict(camera_map or {})
    missing = sorted(set(camera_map) - set(topics))
    if missing:
        raise ReplayError(f'--map names topic(s) not in the bag: {", ".join(missing)}; '
                            f'bag topics: {", ".join(sorted(topics))}')
    chosen: dict[str, tuple[int, str]] = {}  # camera -> (preference rank, topic)
    skipped: dict[str, str] = {}
    for topic, msgtype in topics.items():
        mapped = camera_map.get(topic)
        parsed = camera_of(topic)
        if mapped is not None:
            if msgtype not in (IMAGE, COMPRESSED):
                raise ReplayError(f'--map {topic}: type {msgtype} is not an image')
            rank, camera = -1, mapped
        elif parsed is not None and msgtype in (IMAGE, COMPRESSED) and parsed[1] in IMAGE_PREFERENCE:
            rank, camera = IMAGE_PREFERENCE.index(parsed[1]), parsed[0]
        else:
            skipped[topic] = _why_skipped(topic, msgtype, parsed)
            continue
        previous = chosen.get(camera)
        if previous is None or rank < previous[0]:
            if previous is not None:
                skipped[previous[1]] = f'{camera} is replayed from {topic}'
            chosen[camera] = (rank, topic)
        else:
            skipped[topic] = f'{camera} is replayed from {previous[1]}'
    replayed = [ReplayTopic(topic, topics[topic], camera, camera_topic(camera, 'image_raw'))
                for camera, (_, topic) in sorted(chosen.items())]
    for camera in list(chosen):
        info = camera_topic(camera, 'camera_info')
        if topics.get(info) == CAMERA_INFO:
            replayed.append(ReplayTopic(info, CAMERA_INFO, camera, info))
            skipped.pop(info, None)
    if not chosen:
        raise ReplayError('no image topic to replay; image topics must be /vss/<cam>/'
                            f'{{{",".join(IMAGE_PREFERENCE)}}} or mapped with --map TOPIC=CAMERA; '
                            f'bag topics: {", ".join(sorted(topics)) or "none"}')
    return ReplayPlan(tuple(replayed), skipped)


def _why_skipped(topic: str, msgtype: str, parsed: tuple[str, str] | None) -> str:
    if parsed is not None and parsed[1] in ('detections', 'image_annotated'):
        return 'computed again by the graph'
    if parsed is not None and parsed[1] == 'camera_info':
        return 'its camera has no images in the bag'
    if msgtype in (IMAGE, COMPRESSED):
        return 'image topic without a camera; map it with --map TOPIC=CAMERA'
    return 'not an input of the graph'


@dataclass(frozen=True)
class Timeline:
    """When each bag message is published and which stamp it carries.

    ``first_ns``/``last_ns``: the bag's message time span. ``base_ns``: the stamp of the
    first message (the bag's own ``first_ns`` with ``--clock``, the wall clock at start
    otherwise). With ``--clock`` stamps keep bag time and /clock follows it, so rules see
    recorded durations at any ``rate``; on the wall clock stamps advance with wall time.
    Loop ``k`` is shifted by ``k * span``, so stamps and /clock never run backwards.
    """

    first_ns: int
    last_ns: int
    rate: float
    base_ns: int
    stamps_follow_rate: bool

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ReplayError(f'rate must be > 0, got {self.rate!r}')
        if self.last_ns < self.first_ns:
            raise ReplayError(f'bag ends ({self.last_ns}) before it starts ({self.first_ns})')

    @property
    def span_ns(self) -> int:
        return self.last_ns - self.first_ns + LOOP_GAP_NS

    def due_s(self, bag_ns: int, loop: int = 0) -> float:
        """Seconds after the start of playback at which this message is published."""
        return (bag_ns - self.first_ns + loop * self.span_ns) / self.rate / 1e9

    def stamp_ns(self, bag_ns: int, loop: int = 0) -> int:
        """The stamp a message recorded at (or stamped with) ``bag_ns`` gets."""
        elapsed_ns = bag_ns - self.first_ns + loop * self.span_ns
        return self.base_ns + round(elapsed_ns / self.rate if self.stamps_follow_rate else elapsed_ns)

    def clock_ns(self, elapsed_s: float) -> int:
        """/clock after ``elapsed_s`` of playback (``--clock`` only)."""
        return self.base_ns + round(elapsed_s * self.rate * 1e9)
