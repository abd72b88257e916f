"""The whole graph (vision_pipeline + event_manager processes) over real DDS on a vtest.avi clip;
raw frames are watched through the camera driver's commissioning switch publish_raw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from mcap_ros2.reader import read_ros2_messages
from rosbags.rosbag2 import Reader

from conftest import wait_until
from graph_observer import GraphObserver, vtest_clip
from kaiserslautern_vss.bringup.graph import load_graph
from kaiserslautern_vss.bringup.processes import GraphProcesses
from kaiserslautern_vss.privacy.regions import head_regions
from kaiserslautern_vss.ros.detection_reading import msg_to_detections
from kaiserslautern_vss.ros.image_conversion import image_to_bgr

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CLIP_FRAMES = range(440, 640)  # 20 s; people step onto the lawn about 8 s in
PRE_EVENT_S, POST_EVENT_S = 3.0, 2.0
FRAME_PERIOD_S = 0.1


def _graph_config(tmp_path: Path, clip: Path) -> Path:
    demo = yaml.safe_load((Path(__file__).resolve().parents[1] / 'config' / 'vss.yaml').read_text())
    demo['/vss/cam01/camera_driver']['ros__parameters'].update(url=str(clip), publish_raw=True)
    demo['/vss/event_manager']['ros__parameters'].update(
        rules_file=str(Path(__file__).resolve().parents[1] / 'config' / 'rules_demo.yaml'),
        record_root=str(tmp_path / 'recordings'), pre_event_s=PRE_EVENT_S, post_event_s=POST_EVENT_S)
    path = tmp_path / 'graph.yaml'
    path.write_text(yaml.safe_dump(demo))
    return path


@pytest.fixture(scope='module')
def pipeline_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('pipeline')
    config = _graph_config(tmp_path, vtest_clip(tmp_path / 'clip.avi', CLIP_FRAMES))
    context = rclpy.context.Context()
    rclpy.init(context=context)
    observer = GraphObserver(context, 'pipeline_observer', annotated=True)
    graph = GraphProcesses(load_graph(config))
    graph.start()
    try:
        driver = graph.of_executable('vision_pipeline')[0]  # ends with the clip
        assert wait_until(lambda: driver.returncode is not None or bool(graph.failed_at_startup()),
                          len(CLIP_FRAMES) * FRAME_PERIOD_S + 60, step=observer.spin)
        assert not graph.failed_at_startup(), 'a node refused to start'
        wait_until(lambda: False, POST_EVENT_S + 2.0, step=observer.spin)  # post-event window
    finally:
        codes = graph.stop()
    observer.close()
    context.try_shutdown()
    return observer, codes, tmp_path / 'recordings'


def test_every_node_exits_cleanly(pipeline_run):
    _, codes, _ = pipeline_run
    assert all(code == 0 for code in codes.values()), codes


def test_detections_carry_image_stamps_and_find_people(pipeline_run):
    observer, _, _ = pipeline_run
    assert len(observer.raw) > 0.8 * len(CLIP_FRAMES)
    # The detector keeps only each camera's newest frame, so a loaded machine may skip some.
    assert len(observer.detections) > 0.6 * len(CLIP_FRAMES)
    # The observer's own best-effort subscription may miss a raw frame under load.
    matched = [key for key in observer.detections if key in observer.raw]
    assert len(matched) > 0.95 * len(observer.detections)
    assert all(observer.detections[k].header.frame_id == observer.raw[k].header.frame_id for k in matched)
    with_person = [k for k, m in observer.detections.items() if 'person' in msg_to_detections(m).labels]
    assert len(with_person) > 0.8 * len(observer.detections)


def test_anonymized_frames_differ_from_raw_inside_every_head_region(pipeline_run):
    observer, _, _ = pipeline_run
    checked = 0
    for key, anonymized in observer.anonymized.items():
        if key not in observer.raw or key not in observer.detections:
            continue
        raw, anonymized = image_to_bgr(observer.raw[key]), image_to_bgr(anonymized)
        persons = msg_to_detections(observer.detections[key]).of_class('person')
        for x1, y1, x2, y2 in head_regions(persons.boxes, raw.shape).astype(int):
            if (x2 - x1) * (y2 - y1) < 16:
                continue
            assert not np.array_equal(raw[y1:y2, x1:x2], anonymized[y1:y2, x1:x2]), f'head unmasked at {key}'
            checked += 1
    assert checked > 100


def _bags(recordings: Path) -> list[Path]:
    return sorted(p for p in recordings.iterdir() if (p / 'metadata.yaml').is_file())


def test_one_incident_bag_readable_by_two_independent_readers(pipeline_run):
    observer, _, recordings = pipeline_run
    starts = [e for e in observer.events if e.get('phase') == 'start']
    assert len(starts) >= 1
    bags = _bags(recordings)
    assert len(bags) == len(starts)
    bag = bags[0]
    with Reader(bag) as reader:
        topics = {c.topic: c.msgcount for c in reader.connections}
        assert topics['/vss/cam01/image_anonymized/compressed'] > 0
        assert topics['/vss/cam01/detections'] > 0
        assert topics['/vss/events'] >= 1
        assert not any('image_raw' in t for t in topics)
    mcap_files = list(bag.glob('*.mcap'))
    mcap_topics = {m.channel.topic for f in mcap_files for m in read_ros2_messages(str(f))}
    assert mcap_topics == set(topics)


def test_bag_starts_pre_event_seconds_before_the_trigger(pipeline_run):
    observer, _, recordings = pipeline_run
    start = next(e for e in observer.events if e.get('phase') == 'start')
    trigger_ns = start['incident']['started_ns'] if 'incident' in start else start['started_ns']
    bag = _bags(recordings)[0]
    with Reader(bag) as reader:
        images = [c for c in reader.connections if c.topic.endswith('image_anonymized/compressed')]
        first_image_ns = min(t for _, t, _ in reader.messages(connections=images))
    # The bag starts with the first frame inside the pre-event window: none older, none missing.
    window_start_ns = trigger_ns - PRE_EVENT_S * 1e9
    assert first_image_ns >= window_start_ns
    earlier = [sec * 10**9 + nanosec for sec, nanosec in observer.raw if sec * 10**9 + nanosec < first_image_ns]
    assert earlier and max(earlier) < window_start_ns
    assert trigger_ns - first_image_ns > (PRE_EVENT_S - 2 * FRAME_PERIOD_S) * 1e9


def test_commissioning_view_shows_the_open_incident(pipeline_run):
    observer, _, _ = pipeline_run
    start = next(e for e in observer.events if e.get('phase') == 'start')
    during = [image_to_bgr(m) for k, m in observer.annotated.items()
              if k[0] * 10**9 + k[1] > start['started_ns'] + 10**9]
    assert during, 'no annotated frame during the incident'
    banner = [frame for frame in during if (frame[2:20, :, 2] > 150).mean() > 0.5 and (frame[2:20, :, 0] < 60).mean() > 0.5]
    assert len(banner) > 0.5 * len(during)
