"""Event manager costs on vtest.avi frames (JPEG q85, as image_anonymized/compressed).

    python benchmarks/bench_event_manager.py [--node-seconds 20]

Figures: RAM per camera per buffered second (tracemalloc), CPU share of the recording +
rules core for ten cameras at 10 fps (process CPU time / simulated stream time, one
incident recording on one camera), and time from the incident start to its first bytes
on disk (pre-event seconds flushed). Then the node itself as a real process, driven over
DDS by ten cameras at 10 fps (anonymised JPEG, detections and camera_info per frame,
published pre-serialized from this process): its CPU ms per frame, DDS, rclpy executor and
deserialisation included, and the pre-event bytes it reports in its diagnostics.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kaiserslautern_vss.bringup.isolation import isolate_ros_domain  # noqa: E402

isolate_ros_domain()
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE',
                      str(Path(__file__).resolve().parents[1] / 'config' / 'fastdds_localhost.xml'))

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from kaiserslautern_vss.bringup.node_spec import NodeSpec  # noqa: E402
from kaiserslautern_vss.bringup.processes import GraphProcesses  # noqa: E402
from kaiserslautern_vss.detection.types import Detections  # noqa: E402
from kaiserslautern_vss.events.incident import IncidentUpdate  # noqa: E402
from kaiserslautern_vss.events.recorder import IncidentRecorder  # noqa: E402
from kaiserslautern_vss.events.ring_buffer import BufferedMessage, RingBuffer  # noqa: E402
from kaiserslautern_vss.events.rule_engine import RuleEngine  # noqa: E402
from kaiserslautern_vss.events.rule_schema import parse_rules  # noqa: E402
from kaiserslautern_vss.parameters.event_manager import PARAMETERS  # noqa: E402
from kaiserslautern_vss.parameters.spec import validate_parameters  # noqa: E402
from kaiserslautern_vss.paths import shared_dir  # noqa: E402
from kaiserslautern_vss.ros import qos  # noqa: E402
from kaiserslautern_vss.ros.detection_conversion import detections_to_msg  # noqa: E402
from kaiserslautern_vss.ros.topics import camera_topic  # noqa: E402
from kaiserslautern_vss.ros.typestore import vss_typestore  # noqa: E402

CAMERAS = [f'cam{n:02d}' for n in range(1, 11)]
FPS, SECONDS, PRE_EVENT_S = 10, 10, 5.0
SECOND = 10**9


def vtest_jpegs(count: int) -> list[bytes]:
    capture = cv2.VideoCapture(str(shared_dir() / 'data' / 'vtest.avi'))
    jpegs = []
    while len(jpegs) < count:
        ok, frame = capture.read()
        if not ok:
            break
        jpegs.append(cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    return jpegs


def image_cdr(jpeg: bytes, stamp_ns: int) -> bytes:
    store = vss_typestore()
    t = store.types
    msg = t['sensor_msgs/msg/CompressedImage'](
        header=t['std_msgs/msg/Header'](stamp=t['builtin_interfaces/msg/Time'](
            sec=stamp_ns // SECOND, nanosec=stamp_ns % SECOND), frame_id='cam'),
        format='jpeg', data=np.frombuffer(jpeg, np.uint8))
    return store.serialize_cdr(msg, 'sensor_msgs/msg/CompressedImage')


def ram_per_buffered_second(payloads: list[bytes]) -> tuple[float, float]:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    buffer = RingBuffer(PRE_EVENT_S + 1.0, 1 << 30)
    for i, payload in enumerate(payloads[:FPS * SECONDS]):
        buffer.push(BufferedMessage('/img', i * SECOND // FPS, bytes(payload)))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    seconds = (len(buffer) - 1) / FPS
    return used / seconds, buffer.nbytes / seconds


def cpu_share_and_first_byte(payloads: list[bytes], root: Path) -> tuple[float, float]:
    topics = {f'/vss/{c}/image_anonymized/compressed': 'sensor_msgs/msg/CompressedImage' for c in CAMERAS}
    recorder = IncidentRecorder(root, PRE_EVENT_S, 2.0, 64 << 20, topics)
    engine = RuleEngine(parse_rules([{'name': f'{c}_zone', 'kind': 'zone_intrusion', 'camera': c,
                                      'zone': [[0, 430], [330, 430], [600, 576], [0, 576]]} for c in CAMERAS]))
    people = Detections(np.array([[100.0, 300.0, 140.0, 420.0]] * 5), np.full(5, 0.8), ('person',) * 5,
                        np.arange(5))
    t0 = 1_795_000_000 * SECOND
    trigger_s = None
    cpu_start = time.process_time()
    for frame in range(FPS * SECONDS):
        stamp = t0 + frame * SECOND // FPS
        for index, camera in enumerate(CAMERAS):
            recorder.on_message(camera, f'/vss/{camera}/image_anonymized/compressed', stamp,
                                payloads[(frame + index) % len(payloads)])
            engine.update(camera, stamp, people)
        if frame == FPS * 6:  # an incident on cam01 after the pre-event buffer filled
            started = time.perf_counter()
            incident = engine.trigger('cam01', stamp, source='bench', reason='bench', duration_s=2.0)[0].incident
            path = recorder.on_incident(IncidentUpdate('start', incident), stamp)
            mcap = next(path.glob('*.mcap'))
            assert mcap.stat().st_size > 100_000  # the pre-event seconds are in the OS already
            trigger_s = time.perf_counter() - started
        recorder.poll(stamp)
    cpu_s = time.process_time() - cpu_start
    recorder.close_all()
    return cpu_s / SECONDS, trigger_s


ZONE = [[0, 430], [330, 430], [600, 576], [0, 576]]


def serialized_stream(jpegs: list[bytes]) -> tuple[list[bytes], bytes, bytes]:
    """One camera's messages as CDR (stamps patched in when sent): images, detections, camera_info."""
    from rclpy.serialization import serialize_message
    images = [serialize_message(CompressedImage(format='jpeg', data=jpeg)) for jpeg in jpegs]
    people = Detections(np.array([[100.0, 100.0, 140.0, 220.0]] * 5), np.full(5, 0.8), ('person',) * 5,
                        np.arange(5))
    return images, serialize_message(detections_to_msg(people, CompressedImage().header)), \
        serialize_message(CameraInfo(width=768, height=576))


def stamped(payload: bytes, stamp_ns: int) -> bytes:
    """``payload`` (CDR, header first) with header.stamp set: cheaper than building a message."""
    data = bytearray(payload)
    struct.pack_into('<iI', data, 4, *divmod(stamp_ns, SECOND))
    return bytes(data)


def node_cpu_per_frame(jpegs: list[bytes], seconds: float, root: Path) -> tuple[float, float, float, str]:
    """The event manager process fed ten cameras at FPS for ``seconds`` after a warm-up:
    its CPU ms per camera frame, the feeder's, the frames/s it sent, and the pre-event buffer
    bytes its diagnostics report."""
    rules = root / 'rules.yaml'
    rules.write_text('rules:\n' + ''.join(
        f'  - {{name: {c}_zone, kind: zone_intrusion, camera: {c}, classes: [person], zone: {ZONE}}}\n'
        for c in CAMERAS))
    values = validate_parameters(PARAMETERS, dict(
        cameras=CAMERAS, rules_file=str(rules), record_root=str(root / 'bags'), pre_event_s=10.0,
        signing_key_file=str(root / 'signing.pem'), audit_key_file=str(root / 'audit.key'),
        encryption_key_file=str(root / 'recordings.key')), 'bench')
    images, detections, camera_info = serialized_stream(jpegs)
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('bench_event_feeder', context=context)
    publishers = [(node.create_publisher(CompressedImage, camera_topic(c, 'image_anonymized/compressed'),
                                         qos.SENSOR),
                   node.create_publisher(Detection2DArray, camera_topic(c, 'detections'), qos.RELIABLE),
                   node.create_publisher(CameraInfo, camera_topic(c, 'camera_info'), qos.SENSOR))
                  for c in CAMERAS]
    buffered = ['none reported']

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            for kv in status.values:
                if 'buffer' in kv.key and 'bytes' in kv.key:
                    buffered[0] = f'{int(kv.value) / 2**20:.1f} MB'

    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    graph = GraphProcesses([NodeSpec('event_manager', 'event_manager', '/vss', values)], log_level='warn')
    graph.start()
    try:
        deadline = time.monotonic() + 60
        while not all(p.get_subscription_count() for trio in publishers for p in trio):
            if time.monotonic() > deadline:
                raise SystemExit('the event manager did not subscribe within 60 s')
            executor.spin_once(timeout_sec=0.1)
        process = psutil.Process(graph.nodes[0].process.pid)
        sent, start, measured = 0, time.monotonic(), None
        warmup_s = 12.0  # the pre-event buffers fill (10 s) before the window
        next_tick = start
        while time.monotonic() < start + warmup_s + seconds:
            if measured is None and time.monotonic() >= start + warmup_s:
                measured = (process.cpu_times(), time.process_time(), sent, time.monotonic())
            # Cameras are not in step: one camera's frame at a time, evenly spread.
            stamp_ns = time.time_ns()
            image_pub, detections_pub, info_pub = publishers[sent % len(publishers)]
            image_pub.publish(stamped(images[sent % len(images)], stamp_ns))
            detections_pub.publish(stamped(detections, stamp_ns))
            info_pub.publish(stamped(camera_info, stamp_ns))
            sent += 1
            next_tick += 1.0 / (FPS * len(publishers))
            while (delay := next_tick - time.monotonic()) > 0:
                executor.spin_once(timeout_sec=delay)
        cpu, feeder_cpu, sent_before, since = measured
        end_cpu = process.cpu_times()
        frames = sent - sent_before
        node_ms = 1e3 * (end_cpu.user + end_cpu.system - cpu.user - cpu.system) / frames
        feeder_ms = 1e3 * (time.process_time() - feeder_cpu) / frames
        rate = frames / (time.monotonic() - since)
        for _ in range(20):
            executor.spin_once(timeout_sec=0.1)
    finally:
        graph.stop()
        node.destroy_node()
        context.try_shutdown()
    return node_ms, feeder_ms, rate, buffered[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--node-seconds', type=float, default=20.0,
                        help='measured seconds of the driven node (after a 12 s warm-up; default: %(default)s)')
    args = parser.parse_args()
    jpegs = vtest_jpegs(100)
    payloads = [image_cdr(j, i) for i, j in enumerate(jpegs)]
    traced, payload_bytes = ram_per_buffered_second(payloads)
    with tempfile.TemporaryDirectory() as root:
        share, first_byte_s = cpu_share_and_first_byte(payloads, Path(root))
    print(f'vtest.avi JPEG q85: {np.mean([len(j) for j in jpegs]) / 1e3:.1f} kB/frame, {FPS} fps')
    print('| figure | value |')
    print('| --- | --- |')
    print(f'| RAM per camera per buffered second (traced) | {traced / 1e6:.2f} MB |')
    print(f'| of which JPEG payload | {payload_bytes / 1e6:.2f} MB ({traced / payload_bytes:.2f}x) |')
    print(f'| RAM for 10 cameras x {PRE_EVENT_S + 1:.0f} s buffer | {10 * (PRE_EVENT_S + 1) * traced / 1e6:.0f} MB |')
    print(f'| CPU share, 10 cameras x {FPS} fps, 1 recording (one core) | {100 * share:.1f} % |')
    print(f'| incident start -> pre-event ({PRE_EVENT_S:.0f} s) on disk | {1e3 * first_byte_s:.1f} ms |')
    with tempfile.TemporaryDirectory() as root:
        node_ms, feeder_ms, rate, buffered = node_cpu_per_frame(jpegs, args.node_seconds, Path(root))
    print(f'| event manager process over DDS, 10 cameras, {rate:.0f} frames/s: CPU per frame '
          f'| **{node_ms:.2f} ms** (feeder {feeder_ms:.2f} ms) |')
    print(f'| pre-event buffers, 10 cameras x 10 s (its diagnostics) | {buffered} |')


if __name__ == '__main__':
    main()
