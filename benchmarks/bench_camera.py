"""Camera benchmark: ten simultaneous streams from the test servers, all figures from this one run.

Streams: 5 RTSP H.264 768x576 (GStreamer test server, one shared encoder) + 5 HTTP MJPEG
768x576 at 10 fps (the test MJPEG server, its own process), each camera 10 fps.

1. The vision_pipeline hosting all ten camera drivers (one capture thread per stream), the
   detector (one session, one thread) and the privacy node (face detection off), as
   vss-bringup runs it, with the commissioning switch publish_raw on so image_raw reaches a
   subscriber here that reads only the header stamp. Camera stage CPU per camera and per
   frame: the process's CPU less its inference workers' threads (inference-N, which also
   mask), i.e. capture, decoding, hand-off, camera_info/image_raw publishing and DDS;
   capture-to-hand-off latency p50/p99 (the drivers' own figures from /diagnostics),
   capture-to-receipt (stamp -> arrival here), drop rate (newest-wins replaced in the camera).
2. A bare cv2.VideoCapture read loop (FFmpeg, one thread per stream, no ROS) over the same ten
   streams: CPU per frame. Ratio = camera stage CPU per frame / bare CPU per frame.
3. Faults: the MJPEG server is stopped and restarted N times while the pipeline runs; time
   from the restart to the first new frame of each MJPEG camera.

    python benchmarks/bench_camera.py [--seconds 20] [--outages 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / 'test')]
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
os.environ.setdefault('ROS_DOMAIN_ID', str(200 + os.getpid() % 30))
os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')]))

from servers.rtsp_process import RtspServer, gstreamer_missing  # noqa: E402

from kaiserslautern_vss.paths import sample_video  # noqa: E402

CAMERAS_PER_KIND = 5
FPS = 10.0
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def cpu_s(stat: Path) -> float:
    """User + system CPU seconds from a /proc stat file (a process's includes its threads)."""
    fields = stat.read_text().rpartition(')')[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pipeline_child(arguments: list[str]) -> int:
    """Child mode: the vision_pipeline in this process; each line on stdin is answered on stdout
    with this process's CPU seconds, in all and in its inference worker threads, as JSON."""
    from kaiserslautern_vss.nodes import vision_pipeline

    def answer() -> None:
        for _ in sys.stdin:
            inference = sum(cpu_s(Path(f'/proc/self/task/{thread.native_id}/stat'))
                            for thread in threading.enumerate() if thread.name.startswith('inference-'))
            print(json.dumps({'cpu_s': cpu_s(Path('/proc/self/stat')), 'inference_cpu_s': inference}), flush=True)

    threading.Thread(target=answer, name='bench-cpu', daemon=True).start()
    return vision_pipeline.main(['vision_pipeline', *arguments])


def bare_read_loop(urls: list[str], seconds: float) -> None:
    """Child mode: read every stream with cv2.VideoCapture for ``seconds``; prints frames and CPU as JSON."""
    captures = [cv2.VideoCapture(url, cv2.CAP_FFMPEG) for url in urls]
    counts = [0] * len(urls)
    stop = threading.Event()

    def read(index: int) -> None:
        while not stop.is_set():
            ok, _ = captures[index].read()
            counts[index] += ok

    threads = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(urls))]
    for thread in threads:
        thread.start()
    time.sleep(3.0)  # connect and settle
    frames0, cpu0 = sum(counts), time.process_time()
    time.sleep(seconds)
    print(json.dumps({'frames': sum(counts) - frames0, 'cpu_s': time.process_time() - cpu0}), flush=True)
    stop.set()
    os._exit(0)  # releasing captures under running reads is not worth the wait


def mjpeg_server_main(port: int) -> None:
    """Child mode: the test MJPEG server on ``port``, stopped and started by "stop"/"start" lines on stdin."""
    from servers.mjpeg_server import MjpegServer
    capture = cv2.VideoCapture(str(sample_video()))
    jpegs = [cv2.imencode('.jpg', capture.read()[1], [cv2.IMWRITE_JPEG_QUALITY, 75])[1].tobytes()
             for _ in range(20)]
    server = MjpegServer(jpegs, fps=FPS)
    server.port = port
    server.start()
    print(f'READY {server.port}', flush=True)
    for command in sys.stdin:  # 'stop' / 'start' from the benchmark
        (server.stop if command.strip() == 'stop' else server.start)()
        print('OK', flush=True)


class MjpegServerProcess:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, '--mjpeg-server'], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline().split()[1])
        self.url = f'http://127.0.0.1:{self.port}/mjpeg'

    def command(self, text: str) -> None:
        self.process.stdin.write(text + '\n')
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == 'OK'

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


class StampCounter:
    """Subscribes to every camera's image_raw as raw CDR and reads only the header stamp (cheap)."""

    def __init__(self, cameras: list[str]) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image

        from kaiserslautern_vss.ros import qos
        self.context = rclpy.context.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('camera_bench', context=self.context)
        self.lock = threading.Lock()
        self.latencies_ms: dict[str, list[float]] = {camera: [] for camera in cameras}
        self.last_ns: dict[str, int] = {camera: 0 for camera in cameras}
        self.mark_ns = 0  # first_after_mark: each camera's first stamp after this time
        self.first_after_mark: dict[str, int] = {}
        self.recording = False
        for camera in cameras:
            self.node.create_subscription(Image, f'/vss/{camera}/image_raw',
                                          lambda data, c=camera: self._on_image(c, data), qos.SENSOR, raw=True)
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.diagnostics_at: dict[str, float] = {}  # monotonic receipt time of each camera's latest status
        from diagnostic_msgs.msg import DiagnosticArray
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException
        try:
            while self.context.ok():
                self.executor.spin_once(timeout_sec=0.05)
        except ExternalShutdownException:
            pass

    def _on_image(self, camera: str, data: bytes) -> None:
        now = time.time_ns()
        # CDR: 4-byte encapsulation header, then header.stamp.sec (int32), header.stamp.nanosec (uint32).
        sec, nanosec = np.frombuffer(data, '<i4', 1, 4)[0], np.frombuffer(data, '<u4', 1, 8)[0]
        stamp = int(sec) * 1_000_000_000 + int(nanosec)
        with self.lock:
            self.last_ns[camera] = stamp
            if self.mark_ns and stamp > self.mark_ns:
                self.first_after_mark.setdefault(camera, stamp)
            if self.recording:
                self.latencies_ms[camera].append((now - stamp) / 1e6)

    def _on_diagnostics(self, msg) -> None:
        with self.lock:
            for status in msg.status:
                if not status.name.startswith('camera_driver:'):  # detector and privacy report per camera too
                    continue
                self.diagnostics[status.hardware_id] = {v.key: v.value for v in status.values}
                self.diagnostics_at[status.hardware_id] = time.monotonic()

    def close(self) -> None:
        self.context.try_shutdown()
        self.thread.join(timeout=5)


class PipelineProcess:
    """The vision_pipeline hosting the cameras (publish_raw on), a detector and a privacy node,
    in a child of this script that reports its CPU split (see :func:`pipeline_child`)."""

    def __init__(self, urls: dict[str, str], workdir: Path) -> None:
        from kaiserslautern_vss.bringup.processes import ros_environment
        cameras = list(urls)
        sections = {f'/vss/{camera}/camera_driver': {
            'camera_id': camera, 'url': url, 'publish_raw': True, 'backoff_initial_s': 0.25, 'backoff_max_s': 4.0,
            'stall_timeout_s': 2.0} for camera, url in urls.items()}
        sections['/vss/detector'] = {'cameras': cameras, 'sessions': 1, 'intra_op_threads': 1}
        sections['/vss/privacy'] = {'cameras': cameras, 'face_detection': False}
        params = workdir / 'pipeline.yaml'
        params.write_text(json.dumps({fqn: {'ros__parameters': values} for fqn, values in sections.items()}))
        self.process = subprocess.Popen(
            [sys.executable, __file__, '--pipeline', *sections, '--ros-args', '--params-file', str(params),
             '--log-level', 'warn'], env=ros_environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: ``cpu_s`` in all, ``inference_cpu_s`` of the inference workers."""
        self.process.stdin.write('cpu\n')
        self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f'vision_pipeline ended with {self.process.wait()}')
            if line.startswith('{'):
                return json.loads(line)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.process.send_signal(subprocess.signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def percentiles(values: list[float]) -> tuple[float, float]:
    return tuple(np.percentile(values, [50, 99])) if values else (float('nan'), float('nan'))


def measure_cameras(urls: dict[str, str], counter: StampCounter, pipeline: PipelineProcess, seconds: float) -> dict:
    cameras = list(urls)
    assert wait_for(lambda: all(counter.last_ns[c] for c in cameras), 30), 'not every camera delivered'
    time.sleep(2.0)
    with counter.lock:
        before = {c: (counter.diagnostics_at[c], dict(counter.diagnostics[c])) for c in cameras}
    cpu0 = pipeline.cpu()
    with counter.lock:
        counter.recording = True
    time.sleep(seconds)
    with counter.lock:
        counter.recording = False
    cpu1 = pipeline.cpu()
    inference = cpu1['inference_cpu_s'] - cpu0['inference_cpu_s']
    cpu = cpu1['cpu_s'] - cpu0['cpu_s'] - inference
    time.sleep(1.5)  # one more diagnostics period
    with counter.lock:
        after = {c: (counter.diagnostics_at[c], dict(counter.diagnostics[c])) for c in cameras}

    def rate(key: str) -> float:
        """Per-second increase of a diagnostics counter, each camera over its own two status times."""
        return sum((int(after[c][1][key]) - int(before[c][1][key])) / (after[c][0] - before[c][0]) for c in cameras)

    received = sum(len(v) for v in counter.latencies_ms.values())
    frames, dropped = rate('frames') * seconds, rate('dropped') * seconds
    after = {c: values for c, (_, values) in after.items()}
    node_p50 = np.median([float(after[c]['latency_p50_ms']) for c in cameras])
    node_p99 = max(float(after[c]['latency_p99_ms']) for c in cameras)
    receipt = percentiles([v for values in counter.latencies_ms.values() for v in values])
    return {'cpu_s': cpu, 'inference_cpu_s': inference, 'received': received, 'frames': frames, 'dropped': dropped,
            'node_p50': node_p50, 'node_p99': node_p99, 'receipt_p50': receipt[0], 'receipt_p99': receipt[1],
            'per_kind_receipt': {kind: percentiles([v for c in cameras if c.startswith(kind)
                                                    for v in counter.latencies_ms[c]]) for kind in ('rtsp', 'mjpeg')}}


def measure_outages(mjpeg: MjpegServerProcess, counter: StampCounter, cameras: list[str], outages: int) -> list[float]:
    times = []
    for _ in range(outages):
        mjpeg.command('stop')
        wait_for(lambda: all(counter.diagnostics.get(c, {}).get('state') != 'streaming' for c in cameras), 5)
        time.sleep(1.0)
        back_ns = time.time_ns()
        with counter.lock:
            counter.mark_ns, counter.first_after_mark = back_ns, {}
        mjpeg.command('start')
        wait_for(lambda: all(c in counter.first_after_mark for c in cameras), 10)
        with counter.lock:
            times += [(counter.first_after_mark[c] - back_ns) / 1e9 if c in counter.first_after_mark
                      else float('inf') for c in cameras]
    return times


def main() -> int:
    if sys.argv[1:2] == ['--pipeline']:  # before argparse: the rest are node names and ROS arguments
        return pipeline_child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=20.0)
    parser.add_argument('--outages', type=int, default=5)
    parser.add_argument('--bare', nargs='*', help=argparse.SUPPRESS)
    parser.add_argument('--mjpeg-server', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare is not None:
        bare_read_loop(args.bare, args.seconds)
    if args.mjpeg_server:
        mjpeg_server_main(0)
        return 0
    missing = gstreamer_missing()
    if missing or sample_video() is None:
        print(f'cannot run: {missing or "vtest.avi not found"}', file=sys.stderr)
        return 1

    import tempfile
    rtsp = RtspServer(sample_video())
    rtsp.start()
    mjpeg = MjpegServerProcess()
    urls = {**{f'rtsp{i}': rtsp.url for i in range(CAMERAS_PER_KIND)},
            **{f'mjpeg{i}': mjpeg.url for i in range(CAMERAS_PER_KIND)}}
    counter = StampCounter(list(urls))
    try:
        with tempfile.TemporaryDirectory() as workdir:
            pipeline = PipelineProcess(urls, Path(workdir))
            try:
                node = measure_cameras(urls, counter, pipeline, args.seconds)
                reconnects = measure_outages(mjpeg, counter, [c for c in urls if c.startswith('mjpeg')],
                                             args.outages)
                alive = pipeline.alive()
            finally:
                pipeline.stop()
        bare_out = subprocess.run([sys.executable, __file__, '--seconds', str(args.seconds), '--bare',
                                   *urls.values()], capture_output=True, text=True, timeout=args.seconds + 60)
        bare = json.loads(bare_out.stdout.strip().splitlines()[-1])
    finally:
        counter.close()
        mjpeg.close()
        rtsp.stop()

    cameras = len(urls)
    node_cpu_frame = node['cpu_s'] / max(1, node['frames']) * 1e3
    bare_cpu_frame = bare['cpu_s'] / max(1, bare['frames']) * 1e3
    print(f'\nCamera drivers in the vision_pipeline, {cameras} streams ({CAMERAS_PER_KIND} RTSP H.264 + {CAMERAS_PER_KIND} MJPEG, '
          f'768x576 @ {FPS:g} fps), {args.seconds:g} s, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}')
    print(f'{"":34} {"camera stage":>14} {"bare cv2 loop":>14} {"ratio":>7}')
    print(f'{"frames/s (all streams)":34} {node["frames"] / args.seconds:14.1f} {bare["frames"] / args.seconds:14.1f}')
    print(f'{"CPU % of one core per camera":34} {node["cpu_s"] / args.seconds / cameras * 100:14.1f} '
          f'{bare["cpu_s"] / args.seconds / cameras * 100:14.1f}')
    print(f'{"CPU ms per frame":34} {node_cpu_frame:14.2f} {bare_cpu_frame:14.2f} '
          f'{node_cpu_frame / bare_cpu_frame:7.2f}')
    print(f'inference workers (not in the camera stage): {node["inference_cpu_s"] / args.seconds * 100:.1f} % '
          'of one core')
    print(f'\ncapture -> hand-off to the pipeline (drivers, median p50 / worst p99 of cameras): '
          f'{node["node_p50"]:.1f} / {node["node_p99"]:.1f} ms')
    print(f'capture -> receipt over DDS, p50 / p99: {node["receipt_p50"]:.1f} / {node["receipt_p99"]:.1f} ms'
          + ''.join(f'; {kind} {p50:.1f} / {p99:.1f}' for kind, (p50, p99) in node['per_kind_receipt'].items()))
    print(f'dropped (newest-wins replaced): {node["dropped"]:.0f} of {node["frames"]:.0f} frames '
          f'({node["dropped"] / max(1, node["frames"]) * 100:.2f} %); received here {node["received"]}')
    finite = [t for t in reconnects if t != float('inf')]
    print(f'\nMJPEG server restarts: {args.outages} x {CAMERAS_PER_KIND} cameras, frames back after '
          f'p50 {np.median(finite):.2f} s, max {max(reconnects):.2f} s; missed: '
          f'{len(reconnects) - len(finite)}; vision_pipeline alive: {alive}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
