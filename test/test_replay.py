"""vss-replay and vss-bag-from-video: planning, timing, and re-running an incident through the graph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import CompressedImage

from conftest import shared_file, wait_until
from kaiserslautern_vss.bringup.arguments import derive_graph
from kaiserslautern_vss.bringup.contract import published_topics
from kaiserslautern_vss.bringup.playback import (LOOP_GAP_NS, ReplayError, ReplayTopic, Timeline,
                                                 plan_replay)
from kaiserslautern_vss.bringup.processes import GraphProcesses, ros_environment
from kaiserslautern_vss.ros.image_conversion import compressed_to_bgr
from kaiserslautern_vss.tools.bag_from_video import bag_from_video
from kaiserslautern_vss.tools.bag_info import summarize_bag

REPO = Path(__file__).resolve().parents[1]
INCIDENT_BAG_TOPICS = {
    '/vss/cam01/image_anonymized/compressed': 'sensor_msgs/msg/CompressedImage',
    '/vss/cam01/detections': 'vision_msgs/msg/Detection2DArray',
    '/vss/cam01/camera_info': 'sensor_msgs/msg/CameraInfo',
    '/vss/cam02/image_anonymized/compressed': 'sensor_msgs/msg/CompressedImage',
    '/vss/events': 'std_msgs/msg/String',
}
START_NS = 1_795_000_000_000_000_000
# vtest.avi frames 480..600: people step onto the demo lawn zone about 4.5 s in and stay.
FIRST_FRAME, FRAMES = 480, 120


def test_incident_bag_plan_decodes_anonymised_images_and_skips_what_the_graph_computes():
    plan = plan_replay(INCIDENT_BAG_TOPICS)
    assert set(plan.topics) == {
        ReplayTopic('/vss/cam01/image_anonymized/compressed', 'sensor_msgs/msg/CompressedImage', 'cam01',
                    '/vss/cam01/image_raw'),
        ReplayTopic('/vss/cam02/image_anonymized/compressed', 'sensor_msgs/msg/CompressedImage', 'cam02',
                    '/vss/cam02/image_raw'),
        ReplayTopic('/vss/cam01/camera_info', 'sensor_msgs/msg/CameraInfo', 'cam01', '/vss/cam01/camera_info')}
    assert all(t.decode for t in plan.topics if t.target.endswith('image_raw'))
    assert plan.skipped == {'/vss/cam01/detections': 'computed again by the graph',
                            '/vss/events': 'not an input of the graph'}
    assert plan.cameras == ['cam01', 'cam02']


def test_raw_images_win_and_foreign_topics_need_a_mapping():
    topics = {'/vss/cam01/image_anonymized/compressed': 'sensor_msgs/msg/CompressedImage',
              '/vss/cam01/image_raw': 'sensor_msgs/msg/Image',
              '/vss/cam01/image_annotated': 'sensor_msgs/msg/Image',
              '/front/image': 'sensor_msgs/msg/Image'}
    plan = plan_replay(topics)
    assert [t.source for t in plan.topics] == ['/vss/cam01/image_raw']
    assert 'map it with --map' in plan.skipped['/front/image']
    assert plan.skipped['/vss/cam01/image_annotated'] == 'computed again by the graph'
    mapped = plan_replay(topics, {'/front/image': 'cam01'})
    assert [t.source for t in mapped.topics] == ['/front/image']
    with pytest.raises(ReplayError, match='not in the bag: /rear/image'):
        plan_replay(topics, {'/rear/image': 'cam02'})
    with pytest.raises(ReplayError, match='no image topic to replay'):
        plan_replay({'/vss/events': 'std_msgs/msg/String'})


def test_clock_timeline_keeps_bag_stamps_and_loops_move_forward():
    timeline = Timeline(first_ns=START_NS, last_ns=START_NS + 10 * 10**9, rate=2.0, base_ns=START_NS,
                        stamps_follow_rate=False)
    assert timeline.due_s(START_NS + 4 * 10**9) == pytest.approx(2.0)
    assert timeline.stamp_ns(START_NS + 4 * 10**9) == START_NS + 4 * 10**9
    assert timeline.clock_ns(2.0) == START_NS + 4 * 10**9  # /clock agrees with the stamps due then
    second_loop_first = timeline.stamp_ns(START_NS, loop=1)
    assert second_loop_first == START_NS + 10 * 10**9 + LOOP_GAP_NS
    assert timeline.due_s(START_NS, loop=1) == pytest.approx((10 * 10**9 + LOOP_GAP_NS) / 2e9)


def test_wall_clock_timeline_stamps_follow_wall_time():
    wall = 2_000_000_000_000_000_000
    timeline = Timeline(START_NS, START_NS + 10**9, rate=2.0, base_ns=wall, stamps_follow_rate=True)
    bag_ns = START_NS + 600_000_000
    assert timeline.stamp_ns(bag_ns) == wall + round(timeline.due_s(bag_ns) * 1e9)
    with pytest.raises(ReplayError, match='rate must be > 0'):
        Timeline(START_NS, START_NS, rate=0.0, base_ns=0, stamps_follow_rate=True)


def test_bag_from_video_writes_frames_at_the_video_rate(tmp_path):
    bag = tmp_path / 'bag'
    assert bag_from_video(shared_file('data/vtest.avi'), bag, 'cam03', START_NS, first_frame=10,
                          frame_count=15) == 15
    with Reader(bag) as reader:
        images = [c for c in reader.connections if c.topic == '/vss/cam03/image_raw/compressed']
        stamps, first = [], None
        for connection, stamp, raw in reader.messages(connections=images):
            stamps.append(stamp)
            first = first if first is not None else deserialize_message(raw, CompressedImage)
        assert {c.topic: c.msgcount for c in reader.connections}['/vss/cam03/camera_info'] == 1
    assert stamps[0] == START_NS and np.allclose(np.diff(stamps), 100_000_000)
    assert compressed_to_bgr(first).shape == (576, 768, 3)
    with pytest.raises(FileExistsError):
        bag_from_video(shared_file('data/vtest.avi'), bag, 'cam03', START_NS)


# --- the graph, real processes: footage -> incident bag -> replayed -> the same incident ---------

def _graph_config(tmp_path: Path, run: str) -> Path:
    document = yaml.safe_load((REPO / 'config' / 'vss.yaml').read_text())
    document['/vss/event_manager']['ros__parameters'].update(
        rules_file=str(REPO / 'config' / 'rules_demo.yaml'), record_root=str(tmp_path / run),
        pre_event_s=3.0, post_event_s=2.0, end_hold_s=2.0)
    path = tmp_path / f'{run}.yaml'
    path.write_text(yaml.safe_dump(document))
    return path


def _replay_through_graph(tmp_path: Path, run: str, bag: Path, clock: bool, check_topics=None) -> list[dict]:
    """Start the graph without camera drivers, replay ``bag`` into it, return the incidents' start events."""
    specs = derive_graph(_graph_config(tmp_path, run), use_sim_time=clock, camera_drivers=False)
    command = [sys.executable, '-m', 'kaiserslautern_vss.tools.replay', str(bag), '--wait-s', '40']
    command += ['--clock', '--clock-tail-s', '6'] if clock else []
    with GraphProcesses(specs) as graph:
        replay = subprocess.run(command, env=ros_environment(), capture_output=True, text=True, timeout=80)
        assert replay.returncode == 0, replay.stderr
        assert 'not (fully) subscribed' not in replay.stderr
        if check_topics is not None:
            check_topics(specs)
        if not clock:  # the live graph ends the incident and closes the bag on its own clock
            wait_until(lambda: any((p / 'metadata.yaml').is_file() for p in (tmp_path / run).glob('*')), 10)
        assert not graph.failed_at_startup()
    bags = sorted(p for p in (tmp_path / run).iterdir() if (p / 'metadata.yaml').is_file())
    events = [e for b in bags for e in summarize_bag(b).events if e.get('phase') == 'start']
    return events, bags


@pytest.fixture(scope='module')
def replay_runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('replay')
    footage = tmp_path / 'footage'
    bag_from_video(shared_file('data/vtest.avi'), footage, 'cam01', START_NS, FIRST_FRAME, FRAMES)
    original, original_bags = _replay_through_graph(tmp_path, 'original', footage, clock=False)
    live_topics = {}

    def check_topics(specs):
        context = rclpy.context.Context()
        rclpy.init(context=context)
        node = rclpy.create_node('topic_probe', context=context)
        expected = published_topics(specs)
        wait_until(lambda: set(expected) <= {name for name, _ in node.get_topic_names_and_types()}, 10)
        live_topics.update({name: types for name, types in node.get_topic_names_and_types()})
        node.destroy_node()
        context.try_shutdown()

    assert len(original_bags) == 1, 'the footage should give one incident bag'
    replayed, _ = _replay_through_graph(tmp_path, 'replayed', original_bags[0], clock=True,
                                        check_topics=check_topics)
    return original, replayed, live_topics, specs_topics(tmp_path)


def specs_topics(tmp_path: Path) -> dict[str, str]:
    return published_topics(derive_graph(_graph_config(tmp_path, 'replayed'), camera_drivers=False))


@pytest.mark.slow
@pytest.mark.ros
def test_replayed_incident_is_the_recorded_incident(replay_runs):
    original, replayed, _, _ = replay_runs
    assert len(original) == 1 and len(replayed) == 1, (original, replayed)
    assert replayed[0]['rule'] == original[0]['rule'] == 'lawn_intrusion'
    assert replayed[0]['camera'] == original[0]['camera'] == 'cam01'
    # Same footage (masked once more), same rule: the trigger lands within min_duration_s (0.5 s)
    # plus the frames a busy detector skips (it keeps only the newest frame).
    shift_s = (replayed[0]['started_ns'] - original[0]['started_ns']) / 1e9
    print(f'replay fidelity: {len(replayed)} of {len(original)} incident(s) found again, trigger shift {shift_s:+.2f} s')
    assert abs(shift_s) <= 1.5


@pytest.mark.slow
@pytest.mark.ros
def test_contract_topics_exist_in_the_running_graph(replay_runs):
    _, _, live_topics, expected = replay_runs
    for topic, msgtype in expected.items():
        assert topic in live_topics, f'{topic} is in bringup.contract but not published by the graph'
        assert msgtype in live_topics[topic]
