"""vss-replay: play a bag (an incident bag or any rosbag2 with images) into the graph.

    vss-replay BAG [--rate 1.0] [--loop] [--clock [--clock-tail-s 10]] [--map TOPIC=CAMERA]

Images go to /vss/<cam>/image_raw (compressed ones decoded to bgr8), so detection,
masking and rules run again on recorded footage; detections and events in the bag are
not replayed (the graph computes them again). Incident bags only hold anonymised images:
what is replayed from them is already anonymised and gets masked a second time. The
graph reads image_raw only for cameras whose driver it does not host (start it with
``--no-camera-drivers``): the vision pipeline then takes these frames as its camera input,
detects and masks them like camera frames, and refuses frames stamped outside its
stamp window (so with ``--clock`` it must run on /clock, ``--use-sim-time``).

Timing is the bag's own. With --clock the messages keep their recorded stamps and
/clock (rosgraph_msgs/Clock) publishes bag time: start the graph with use_sim_time
(``vss-bringup --use-sim-time --no-camera-drivers`` or launch/replay.launch.py). Without
--clock stamps are moved to the wall clock, for a graph running live.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader, ReaderError
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from kaiserslautern_vss.bringup.playback import (CAMERA_INFO, COMPRESSED, ReplayError, ReplayPlan,
                                                 ReplayTopic, Timeline, plan_replay)
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.image_conversion import ImageConversionError, bgr_to_image, compressed_to_bgr
from kaiserslautern_vss.ros.stamps import header_stamp_ns, time_from_ns
from kaiserslautern_vss.ros.topics import camera_topic

CLOCK_PERIOD_S = 0.02
CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
#: image_raw subscribers of a running graph: the vision pipeline's replay input
GRAPH_IMAGE_SUBSCRIBERS = 1
#: detections subscribers of a running graph: the event manager
GRAPH_DETECTION_SUBSCRIBERS = 1
_MESSAGE_CLASSES = {'sensor_msgs/msg/Image': Image, COMPRESSED: CompressedImage, CAMERA_INFO: CameraInfo}


class Replayer:
    """Publishes one bag's planned topics on a timeline; counts what it published."""

    def __init__(self, node: Node, bag: Path, plan: ReplayPlan, publish_clock: bool) -> None:
        self.node = node
        self.bag = bag
        self.plan = plan
        self.by_source = plan.by_source()
        self.publishers = {t.target: node.create_publisher(
            Image if t.target.endswith('image_raw') else CameraInfo, t.target, qos.SENSOR) for t in plan.topics}
        self.clock_pub = node.create_publisher(Clock, '/clock', CLOCK_QOS) if publish_clock else None
        self.published = {t.target: 0 for t in plan.topics}
        self.undecodable = 0

    def wait_for_graph(self, timeout_s: float) -> bool:
        """Until every replayed camera's vision pipeline and event manager listen."""
        def ready() -> bool:
            return all(self.node.count_subscribers(camera_topic(c, 'image_raw')) >= GRAPH_IMAGE_SUBSCRIBERS
                       and self.node.count_subscribers(camera_topic(c, 'detections')) >= GRAPH_DETECTION_SUBSCRIBERS
                       for c in self.plan.cameras)
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def play(self, timeline: Timeline, loops: int | None, clock_tail_s: float) -> None:
        """``loops``: None = forever. Sleeps until each message is due, ticking /clock meanwhile."""
        started = time.monotonic()
        loop = 0
        while loops is None or loop < loops:
            with Reader(self.bag) as reader:
                connections = [c for c in reader.connections if c.topic in self.by_source]
                for connection, bag_ns, raw in reader.messages(connections=connections):
                    self._wait(started, timeline, timeline.due_s(bag_ns, loop))
                    self._publish(self.by_source[connection.topic], raw, timeline, loop)
            loop += 1
        if self.clock_pub is not None:
            end_s = timeline.due_s(timeline.last_ns, loop - 1) + clock_tail_s / timeline.rate
            self._wait(started, timeline, end_s)

    def _wait(self, started: float, timeline: Timeline, due_s: float) -> None:
        while True:
            elapsed = time.monotonic() - started
            if self.clock_pub is not None:
                self.clock_pub.publish(Clock(clock=time_from_ns(timeline.clock_ns(min(elapsed, due_s)))))
            if elapsed >= due_s:
                return
            time.sleep(min(CLOCK_PERIOD_S, due_s - elapsed))

    def _publish(self, topic: ReplayTopic, raw: bytes, timeline: Timeline, loop: int) -> None:
        msg = deserialize_message(raw, _MESSAGE_CLASSES[topic.msgtype])
        msg.header.stamp = time_from_ns(timeline.stamp_ns(header_stamp_ns(msg.header), loop))
        if topic.decode:
            try:
                msg = bgr_to_image(compressed_to_bgr(msg), msg.header)
            except ImageConversionError as error:
                self.undecodable += 1
                self.node.get_logger().error(f'{topic.source}: skipping frame: {error}',
                                             throttle_duration_sec=5.0)
                return
        self.publishers[topic.target].publish(msg)
        self.published[topic.target] += 1


def parse_map(assignments: list[str]) -> dict[str, str]:
    mapping = {}
    for assignment in assignments:
        topic, sep, camera = assignment.partition('=')
        if not sep or not topic.startswith('/') or not camera:
            raise ReplayError(f'--map {assignment!r}: expected /bag/topic=camera_id')
        mapping[topic] = camera
    return mapping


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-replay', description=__doc__.split('\n')[0])
    parser.add_argument('bag', type=Path, help='rosbag2 directory (e.g. an incident bag)')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed factor (default 1)')
    parser.add_argument('--loop', action='store_true', help='play the bag again and again')
    parser.add_argument('--clock', action='store_true',
                        help='keep recorded stamps and publish /clock (graph with use_sim_time)')
    parser.add_argument('--clock-tail-s', type=float, default=10.0,
                        help='with --clock: bag seconds /clock keeps running after the last message, '
                             'so open incidents end and their bags close (default %(default)s)')
    parser.add_argument('--map', action='append', default=[], metavar='TOPIC=CAMERA',
                        help='replay an image topic outside /vss/<cam>/ as that camera')
    parser.add_argument('--wait-s', type=float, default=30.0,
                        help='how long to wait for the graph to subscribe (default %(default)s)')
    args = parser.parse_args(argv)
    if not args.rate > 0 or args.clock_tail_s < 0:
        parser.error('--rate must be > 0 and --clock-tail-s >= 0')
    try:
        with Reader(args.bag) as reader:
            plan = plan_replay({c.topic: c.msgtype for c in reader.connections}, parse_map(args.map))
            first_ns, last_ns = reader.start_time, reader.end_time
    except (ReaderError, ReplayError, OSError) as error:
        print(f'vss-replay: {args.bag}: {error}', file=sys.stderr)
        return 2
    for topic, reason in sorted(plan.skipped.items()):
        print(f'vss-replay: not replaying {topic}: {reason}', flush=True)

    rclpy.init()
    node = rclpy.create_node('vss_replay')
    replayer = Replayer(node, args.bag, plan, publish_clock=args.clock)
    try:
        if not replayer.wait_for_graph(args.wait_s):
            print(f'vss-replay: the graph for {", ".join(plan.cameras)} is not (fully) subscribed after '
                  f'{args.wait_s:g} s; playing anyway', file=sys.stderr, flush=True)
        timeline = Timeline(first_ns, last_ns, args.rate, base_ns=first_ns if args.clock else time.time_ns(),
                            stamps_follow_rate=not args.clock)
        print(f'vss-replay: playing {args.bag} ({(last_ns - first_ns) / 1e9:.1f} s) at rate {args.rate:g}'
              f'{" with /clock" if args.clock else ""} into {", ".join(plan.cameras)}', flush=True)
        replayer.play(timeline, None if args.loop else 1, args.clock_tail_s)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print('vss-replay: published ' + ', '.join(f'{topic}: {n}' for topic, n in replayer.published.items()),
          flush=True)
    return 1 if replayer.undecodable else 0


if __name__ == '__main__':
    raise SystemExit(main())
