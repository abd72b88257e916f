"""Leitstelle console costs (issue 15): live grid to three browsers, opening a 60 s incident.

    python benchmarks/bench_console.py [--seconds 20] [--clients 3] [--refresh-hz 2]

1. The operator_console node as a real process, fed over DDS by ten cameras at 10 fps
   (1280x720 JPEGs of vtest.avi, q80 like the privacy node, and detections, published pre-serialized from this
   process). Its CPU share is measured with nobody on the live view (it then subscribes
   no camera topic), then with ``--clients`` HTTPS clients polling exactly like live.js:
   the status JSON at the grid refresh rate, then every camera whose frame changed, over
   one kept-alive connection each. Budget for the second: 10 % of one core, receiving the
   ten streams included.
2. A 60 s incident (10 fps, 1280x720 vtest.avi) written by the event manager's recorder and sealed,
   plain and encrypted: time from requesting the incident page until the first frame's
   JPEG has arrived (page, timeline, frame 0), cold (nothing cached); budget 1 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / 'test')]
from kaiserslautern_vss.bringup.isolation import isolate_ros_domain  # noqa: E402

isolate_ros_domain()
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(REPO / 'config' / 'fastdds_localhost.xml'))

import rclpy  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from console_support import (PASSWORD, SECOND, T0, ConsoleClient, console_settings, detections_cdr,  # noqa: E402
                             jpeg_cdr, make_users, record_incident, running_console, scene, totp_code)
from kaiserslautern_vss.bringup.node_spec import NodeSpec  # noqa: E402
from kaiserslautern_vss.bringup.processes import GraphProcesses  # noqa: E402
from kaiserslautern_vss.recordings.encryption import load_or_create_key  # noqa: E402
from kaiserslautern_vss.ros import qos  # noqa: E402
from kaiserslautern_vss.ros.topics import camera_topic  # noqa: E402
from servers.alert_receivers import free_port  # noqa: E402

CAMERAS = [f'cam{n:02d}' for n in range(1, 11)]
FPS = 10
WIDTH, HEIGHT = 1280, 720


def video_frames(video: Path, count: int) -> list:
    """``count`` consecutive frames of ``video`` at the site's 1280x720 (real JPEG sizes)."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            raise SystemExit(f'cannot read {count} frames from {video}')
        frames.append(cv2.resize(frame, (WIDTH, HEIGHT)))
    return frames


class Cameras:
    """Ten cameras' anonymised JPEGs and detections at 10 fps, from a background thread."""

    def __init__(self, images: list) -> None:
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('bench_cameras', context=self.context)
        self.publishers = [(self.node.create_publisher(CompressedImage, camera_topic(c, 'image_anonymized/compressed'),
                                                       qos.SENSOR),
                            self.node.create_publisher(Detection2DArray, camera_topic(c, 'detections'), qos.RELIABLE))
                           for c in CAMERAS]
        # ten distinct frames, serialized once: this process must not starve the console
        self.payloads = [(bytes(jpeg_cdr(T0, image)), bytes(detections_cdr(T0, scene(index)[1])))
                         for index, image in enumerate(images)]
        self.jpeg_bytes = max(len(image) for image, _ in self.payloads)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        sent = 0
        next_frame = time.monotonic()
        while not self._stop.is_set():
            for index, (images, detections) in enumerate(self.publishers):
                image, boxes = self.payloads[(sent + index) % len(self.payloads)]
                images.publish(image)
                detections.publish(boxes)
            sent += 1
            next_frame += 1.0 / FPS
            self._stop.wait(max(0.0, next_frame - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.node.destroy_node()
        self.context.try_shutdown()


def poll_like_the_browser(client: ConsoleClient, refresh_hz: float, stop: threading.Event, counts: list[int]) -> None:
    """live.js: status JSON, then each camera whose sequence number changed."""
    seen: dict[str, int] = {}
    while not stop.is_set():
        started = time.monotonic()
        for camera in client.get('/api/live/status').json()['cameras']:
            if camera['seq'] and seen.get(camera['camera']) != camera['seq']:
                reply = client.get(f'/api/live/{camera["camera"]}.jpg?seq={camera["seq"]}')
                seen[camera['camera']] = camera['seq']
                counts[0] += reply.status == 200
        stop.wait(max(0.0, 1.0 / refresh_hz - (time.monotonic() - started)))


def cpu_share(process: psutil.Process, seconds: float) -> float:
    before, start = process.cpu_times(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = process.cpu_times(), time.monotonic() - start
    return (after.user + after.system - before.user - before.system) / elapsed


def live_grid(tmp: Path, images: list, seconds: float, clients: int, refresh_hz: float) -> None:
    port = free_port()
    keys = tmp / 'keys'
    accounts = make_users(keys / 'users.json')
    graph = GraphProcesses([NodeSpec('operator_console', 'operator_console', '/vss', dict(
        cameras=CAMERAS, record_root=str(tmp / 'recordings'), bind_address='127.0.0.1', port=port,
        users_file=str(keys / 'users.json'), tls_self_signed=True, tls_cert_file=str(keys / 'cert.pem'),
        tls_key_file=str(keys / 'console_key.pem'), signing_key_file=str(keys / 'signing_key.pem'),
        audit_key_file=str(keys / 'audit.key'), export_root=str(tmp / 'exports'), live_refresh_hz=refresh_hz))],
        log_level='warn', respawn=False)
    graph.start()
    cameras = Cameras(images[::10])
    try:
        cameras.start()
        console = psutil.Process(graph.nodes[0].process.pid)
        browsers = [ConsoleClient('127.0.0.1', port) for _ in range(clients)]
        deadline = time.monotonic() + 60
        while True:
            try:
                if all(client.login(user, PASSWORD, totp_code(accounts[user])).status == 303
                       for client, user in zip(browsers, ['olga', 'ingo', 'anna'])):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit('the console did not come up within 60 s')
            time.sleep(0.5)
        time.sleep(12.0)  # logged in, nobody on the live view: camera topics are not subscribed
        idle = cpu_share(console, seconds)
        stop, counts = threading.Event(), [0]
        pollers = [threading.Thread(target=poll_like_the_browser, args=(client, refresh_hz, stop, counts))
                   for client in browsers]
        for poller in pollers:
            poller.start()
        while counts[0] < len(CAMERAS) * clients:  # every client saw every camera (the node subscribes first)
            if time.monotonic() > deadline + 60:
                raise SystemExit('the console served no frames within 60 s of the live view opening')
            time.sleep(0.2)
        time.sleep(2.0)
        counts[0] = 0
        serving = cpu_share(console, seconds)
        frames_served = counts[0]
        stop.set()
        for poller in pollers:
            poller.join()
    finally:
        cameras.stop()
        graph.stop()
    print(f'live grid: {len(CAMERAS)} cameras x {FPS} fps in ({WIDTH}x{HEIGHT}, '
          f'JPEG ~{cameras.jpeg_bytes // 1024} KiB), '
          f'{clients} clients at {refresh_hz:g} Hz')
    print(f'  console process, nobody watching:       {100 * idle:5.1f} % of one core')
    print(f'  console process, {clients} clients watching:  {100 * serving:5.1f} % of one core '
          f'({frames_served / seconds:.0f} JPEGs/s served; receiving the ten streams included)')
    print(f'  budget 10 % of one core: {"ok" if serving <= 0.10 else "OVER"}')


def first_frame(tmp: Path, images: list) -> None:
    key_file = tmp / 'keys' / 'recordings.key'
    key, _ = load_or_create_key(key_file)
    root = tmp / 'recordings'
    settings = console_settings(tmp, root, encryption_key_file=key_file)
    made = time.monotonic()
    options = dict(seconds=60.0, width=WIDTH, height=HEIGHT, frames=lambda index: images[index % len(images)])
    plain = record_incident(root, settings.signing_key_file, incident_id='e5' * 16, **options)
    encrypted = record_incident(root, settings.signing_key_file, start_ns=T0 + 3600 * SECOND,
                                incident_id='f6' * 16, encryption_key=key, **options)
    print(f'incidents recorded in {time.monotonic() - made:.0f} s: '
          f'{sum(p.stat().st_size for p in plain.iterdir()) / 1e6:.1f} MB each')
    with running_console(settings) as running:
        client = running.logged_in('olga')
        for label, folder in (('plain', plain), ('encrypted', encrypted)):
            start = time.monotonic()
            page = client.get(f'/incidents/{folder.name}')
            timeline = client.get(f'/api/incidents/{folder.name}/timeline').json()
            frame = client.get(f'/api/incidents/{folder.name}/frames/0.jpg')
            elapsed = time.monotonic() - start
            assert page.status == 200 and frame.body[:2] == b'\xff\xd8', (page.status, frame.status)
            print(f'open a 60 s incident ({label}, {len(timeline["frames"])} frames): first frame after '
                  f'{1000 * elapsed:.0f} ms (budget 1000 ms: {"ok" if elapsed < 1.0 else "OVER"})')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=20.0, help='measuring window of each CPU figure')
    parser.add_argument('--clients', type=int, default=3, choices=(1, 2, 3), help='one per test user')
    parser.add_argument('--refresh-hz', type=float, default=2.0, help='live_refresh_hz of the grid')
    parser.add_argument('--video', type=Path, default=REPO.parent / 'shared' / 'data' / 'vtest.avi')
    args = parser.parse_args()
    images = video_frames(args.video, 100)
    with tempfile.TemporaryDirectory(prefix='vss-bench-console-') as tmp:
        live_grid(Path(tmp) / 'live', images, args.seconds, args.clients, args.refresh_hz)
        first_frame(Path(tmp) / 'incident', images)


if __name__ == '__main__':
    main()
