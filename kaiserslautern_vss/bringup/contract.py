"""What a graph publishes, derived from its node specs and the topic contract.

Used to check that commissioning layouts (config/vss.rviz) and replays name topics that
exist, and tested against a running graph so this table cannot drift from the nodes.
"""

from __future__ import annotations

from collections.abc import Iterable

from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.ros.topics import EVENTS, camera_topic

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
DIAGNOSTICS = '/diagnostics'

#: per-camera topics each executable publishes: name -> ROS type
CAMERA_OUTPUTS: dict[str, dict[str, str]] = {
    'camera_driver': {'camera_info': 'sensor_msgs/msg/CameraInfo'},
    'detector': {'detections': 'vision_msgs/msg/Detection2DArray'},
    'privacy': {'image_anonymized': IMAGE, 'image_anonymized/compressed': COMPRESSED,
                'image_annotated': IMAGE},
    'event_manager': {},
    'camera_events': {'alarm': 'std_msgs/msg/String'},
    'operator_console': {},  # per camera nothing: it serves HTTPS
}
#: per-camera topics a camera driver publishes only with its commissioning switch publish_raw
RAW_OUTPUTS = {'image_raw': IMAGE}
#: graph-wide topics each executable publishes
GLOBAL_OUTPUTS: dict[str, dict[str, str]] = {
    'camera_driver': {DIAGNOSTICS: 'diagnostic_msgs/msg/DiagnosticArray'},
    'detector': {EVENTS: 'std_msgs/msg/String',  # its start-up information: model and grade
                 DIAGNOSTICS: 'diagnostic_msgs/msg/DiagnosticArray'},
    'privacy': {DIAGNOSTICS: 'diagnostic_msgs/msg/DiagnosticArray'},
    'event_manager': {EVENTS: 'std_msgs/msg/String', DIAGNOSTICS: 'diagnostic_msgs/msg/DiagnosticArray'},
    'camera_events': {DIAGNOSTICS: 'diagnostic_msgs/msg/DiagnosticArray'},
    'operator_console': {DIAGNOSTICS: 'diagnostic_msgs/msg/DiagnosticArray'},
}
#: topics that must never leave the trusted graph (rviz layouts, recordings, exports)
INTERNAL_TOPIC_NAMES = frozenset({'image_raw'})


def served_cameras(spec: NodeSpec) -> list[str]:
    if spec.executable == 'camera_driver':
        return [spec.parameters['camera_id']]
    return list(spec.parameters.get('cameras', []))


def published_topics(specs: Iterable[NodeSpec]) -> dict[str, str]:
    """Topic -> ROS type of everything the graph publishes."""
    topics: dict[str, str] = {}
    for spec in specs:
        outputs = {**CAMERA_OUTPUTS[spec.executable], **(RAW_OUTPUTS if spec.parameters.get('publish_raw') else {})}
        for camera in served_cameras(spec):
            topics.update({camera_topic(camera, name): msgtype for name, msgtype in outputs.items()})
        topics.update(GLOBAL_OUTPUTS[spec.executable])
    return topics


def is_internal(topic: str) -> bool:
    """True for raw camera images, which stay inside the graph."""
    return any(f'/{name}' in topic for name in INTERNAL_TOPIC_NAMES)
