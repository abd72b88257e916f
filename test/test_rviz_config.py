"""config/vss.rviz shows only topics the site graph publishes, never a raw image, and every camera
(and the skeletons of the camera whose frame is fixed)."""

from pathlib import Path

import yaml

from kaiserslautern_vss.bringup.contract import is_internal, published_topics
from site_support import load_site

CONFIG = Path(__file__).resolve().parents[1] / 'config'


def _topics(node) -> list[str]:
    """Every topic named anywhere in an rviz config (displays nest topics as Topic: {Value: ...})."""
    if isinstance(node, dict):
        found = [node['Value']] if isinstance(node.get('Value'), str) and node['Value'].startswith('/') else []
        return found + [t for value in node.values() for t in _topics(value)]
    if isinstance(node, list):
        return [t for item in node for t in _topics(item)]
    return []


LAYOUT = yaml.safe_load((CONFIG / 'vss.rviz').read_text())
SITE = load_site()


def test_every_topic_in_the_layout_is_published_by_the_site_graph_with_a_matching_display():
    published = published_topics(SITE)
    displays = LAYOUT['Visualization Manager']['Displays']
    assert displays
    for display in displays:
        for topic in _topics(display):
            assert topic in published, f'{topic} is not published by the site graph'
            if display['Class'] == 'rviz_default_plugins/Image':
                assert published[topic] == 'sensor_msgs/msg/Image'
            if display['Class'] == 'rviz_default_plugins/MarkerArray':
                assert published[topic] == 'visualization_msgs/msg/MarkerArray'


def test_no_raw_image_and_every_camera_annotated():
    topics = _topics(LAYOUT)
    assert not [t for t in topics if is_internal(t)]
    cameras = [s.parameters['camera_id'] for s in SITE if s.executable == 'camera_driver']
    assert sorted(topics) == sorted([f'/vss/{camera}/image_annotated' for camera in cameras]
                                    + ['/vss/cam01/skeletons'])  # the fixed frame's camera


def test_the_checks_can_fail():
    assert _topics({'Displays': [{'Topic': {'Value': '/vss/cam01/image_raw'}}]}) == ['/vss/cam01/image_raw']
    assert is_internal('/vss/cam01/image_raw') and not is_internal('/vss/cam01/image_anonymized')
    assert '/vss/cam11/image_annotated' not in published_topics(SITE)
