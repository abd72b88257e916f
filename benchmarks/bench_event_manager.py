"""Event manager core costs on vtest.avi frames (JPEG q85, as image_anonymized/compressed).

    python benchmarks/bench_event_manager.py

Figures: RAM per camera per buffered second (tracemalloc), CPU share of the recording +
rules core for ten cameras at 10 fps (process CPU time / simulated stream time, one
incident recording on one camera), and time from the incident start to its first bytes
on disk (pre-event seconds flushed). Excludes DDS transport and rclpy deserialisation.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.events.bag_writer import vss_typestore
from kaiserslautern_vss.events.incident import IncidentUpdate
from kaiserslautern_vss.events.recorder import IncidentRecorder
from kaiserslautern_vss.events.ring_buffer import BufferedMessage, RingBuffer
from kaiserslautern_vss.events.rules import RuleEngine, parse_rules
from kaiserslautern_vss.paths import shared_dir

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


def main() -> None:
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


if __name__ == '__main__':
    main()
