"""The site graph as it runs on site: ten cameras, the site config, vss-bringup.

    source scripts/vss_env.sh && python benchmarks/bench_site.py [--rates 5,10]
        [--warmup-s 10] [--measure-s 30] [--config config/site_rathausvorplatz.yaml]

For each camera rate, ``vss-bringup`` starts the site config's graph with every camera
replaced (``--set`` overrides) by vtest.avi looping in real time, ``max_rate_hz`` = the
rate; keys, bags and the alert queue go to a temp dir and no alert broker is contacted.
An observer in its own process subscribes every camera's ``image_anonymized/compressed``
(best effort, serialized: it reads only the header stamp) and ``/diagnostics``. Once every
camera has delivered a frame, the graph warms up, then one window is measured:

- anonymised frames per second, in all and per camera;
- capture -> anonymised latency p50/p99 (header stamp, taken at capture, vs. arrival);
- frames failed closed, shed or dropped, by reason (diagnostics counters over the window);
- CPU ms per anonymised frame per process kind and in total (psutil over vss-bringup and
  its processes), and its ratio to a bare ONNX Runtime YOLOX-Nano loop (letterbox + run,
  one thread) measured in this run before and after the graphs;
- peak RSS of the whole graph (sum over its processes, sampled) and PSS at the end;
- the event manager's pre-event buffers (its diagnostics) and what ten cameras x
  ``pre_event_s`` take at the JPEG sizes observed.

The machine is not idle in general: compare the ratios, which are measured side by side.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bare_inference import bare_loop_fps, read_frames  # noqa: E402
from kaiserslautern_vss.bringup.graph import load_graph  # noqa: E402
from kaiserslautern_vss.bringup.isolation import isolate_ros_domain  # noqa: E402
from kaiserslautern_vss.bringup.processes import ros_environment  # noqa: E402
from kaiserslautern_vss.paths import resolve_model_path, sample_video  # noqa: E402
from kaiserslautern_vss.ros.topics import camera_topic  # noqa: E402
from site_services import create_keys, local_service_values  # noqa: E402

STARTUP_TIMEOUT_S = 150.0
RSS_SAMPLE_PERIOD_S = 0.5
#: words of diagnostics counters of frames not delivered masked by policy (not rate_skipped:
#: that is max_rate_hz at work)
LOSS_WORDS = frozenset({'fail', 'failed', 'failures', 'shed', 'dropped', 'rejected', 'malformed', 'late'})
FAIL_CLOSED = 'fail_closed'
NS = 1_000_000_000


class SiteRunError(RuntimeError):
    """A graph run that could not be measured (the message says why)."""


@dataclass
class SiteRun:
    """What one graph run at one camera rate measured."""

    rate_hz: float
    cameras: list[str]
    seconds: float = 0.0
    frames: Counter = field(default_factory=Counter)  # camera -> anonymised frames received
    latencies_ms: list[float] = field(default_factory=list)
    jpeg_bytes: list[int] = field(default_factory=list)
    losses: Counter = field(default_factory=Counter)  # diagnostics key -> count over the window
    cpu_s: Counter = field(default_factory=Counter)  # process kind -> CPU seconds over the window
    processes: Counter = field(default_factory=Counter)  # process kind -> how many
    peak_rss: int = 0
    pss: int = 0
    buffer_bytes: int | None = None  # event manager diagnostics
    pre_event_s: float = 0.0

    @property
    def delivered(self) -> int:
        return sum(self.frames.values())

    @property
    def mean_jpeg_bytes(self) -> float:
        return float(np.mean(self.jpeg_bytes)) if self.jpeg_bytes else 0.0

    def cpu_ms_per_frame(self, kind: str | None = None) -> float:
        cpu = sum(self.cpu_s.values()) if kind is None else self.cpu_s[kind]
        return 1e3 * cpu / max(1, self.delivered)


# --- the observer (its own process: its CPU is not the graph's, nor the bench's) ------------

def observe(cameras: list[str], control, results) -> None:
    """Record (camera, stamp, arrival, size) of every anonymised JPEG and every diagnostics
    status until told to stop; put 'ready' on ``results`` once every camera delivered."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CompressedImage

    from kaiserslautern_vss.ros import qos
    from kaiserslautern_vss.ros.cdr import header_stamp_ns_from_cdr

    arrivals: list[tuple[str, int, int, int]] = []
    diagnostics: list[tuple[int, str, dict[str, str]]] = []

    def on_image(camera: str, payload: bytes) -> None:
        arrivals.append((camera, header_stamp_ns_from_cdr(payload), time.time_ns(), len(payload)))

    def on_diagnostics(msg: DiagnosticArray) -> None:
        now = time.time_ns()
        diagnostics.extend((now, status.name, {kv.key: kv.value for kv in status.values}) for status in msg.status)

    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('bench_site_observer', context=context)
    for camera in cameras:
        node.create_subscription(CompressedImage, camera_topic(camera, 'image_anonymized/compressed'),
                                 partial(on_image, camera), qos.SENSOR, raw=True)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 100)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    ready = False
    try:
        while not control.poll():
            executor.spin_once(timeout_sec=0.1)
            if not ready and {camera for camera, *_ in arrivals} >= set(cameras):
                results.put('ready')
                ready = True
    finally:
        node.destroy_node()
        context.try_shutdown()
    results.put((arrivals, diagnostics))


# --- the graph --------------------------------------------------------------------------------

def site_overrides(config: Path, video: Path, rate_hz: float, tmp: Path) -> list[str]:
    """``vss-bringup --set`` arguments: cameras -> ``video`` looping at ``rate_hz``; keys and
    the alert queue in ``tmp``, no alert broker."""
    assignments = []
    for spec in load_graph(config):
        if spec.executable == 'camera_driver':
            values = dict(url=str(video), loop=True, realtime=True, max_rate_hz=rate_hz,
                          username="''", password_env="''", password_file="''")
        else:  # empty strings quoted, as on a command line
            values = {name: "''" if value == '' else value for name, value in local_service_values(spec, tmp).items()}
        assignments += [f'--set={spec.fqn}.{name}={value}' for name, value in values.items()
                        if name in spec.parameters]
    return assignments


def process_kind(process: psutil.Process) -> str:
    """vss-bringup, or the node module a process runs (camera_driver, detector, ...)."""
    try:
        command = process.cmdline()
    except psutil.Error:
        return 'gone'
    module = next((arg for arg in command if arg.startswith('kaiserslautern_vss.')), 'other')
    return module.rsplit('.', 1)[-1].replace('bringup', 'vss-bringup')


def graph_processes(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def cpu_seconds(processes: Iterable[psutil.Process]) -> dict[int, float]:
    totals = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        totals[process.pid] = times.user + times.system
    return totals


def total_memory(processes: Iterable[psutil.Process], kind: str) -> int:
    """Bytes of ``kind`` summed over the processes still there: 'rss' (cheap) or 'pss' (shared
    pages split between their users; reads smaps, slow)."""
    total = 0
    for process in processes:
        try:
            info = process.memory_full_info() if kind == 'pss' else process.memory_info()
        except psutil.Error:
            continue
        total += getattr(info, kind)
    return total


def counter_deltas(diagnostics: list[tuple[int, str, dict[str, str]]], start_ns: int,
                   end_ns: int) -> tuple[Counter, int | None]:
    """Loss counters (``LOSS_WORDS``) summed over statuses, as they grew during the window;
    and the latest pre-event buffer bytes the event manager reported."""
    before: dict[tuple[str, str], float] = {}
    after: dict[tuple[str, str], float] = {}
    buffer_bytes = None
    for received, name, values in diagnostics:
        if received > end_ns:
            break
        for key, text in values.items():
            try:
                value = float(text)
            except ValueError:
                continue
            if 'buffer' in key and 'bytes' in key and received >= start_ns:
                buffer_bytes = int(value)
            if not LOSS_WORDS.intersection(re.split(r'[^a-z]+', key.lower())):
                continue
            after[(name, key)] = value
            if received <= start_ns or (name, key) not in before:
                before[(name, key)] = value if received <= start_ns else 0.0
    losses = Counter()
    for (name, key), value in after.items():
        grown = value - before.get((name, key), 0.0)
        if grown > 0:
            losses[f'{name.split(":")[0]}: {key}'] += int(grown)
    return losses, buffer_bytes


def run_site(config: Path, video: Path, rate_hz: float, warmup_s: float, measure_s: float,
             log: Path) -> SiteRun:
    cameras = [s.parameters['camera_id'] for s in load_graph(config) if s.executable == 'camera_driver']
    pre_event_s = next(s.parameters['pre_event_s'] for s in load_graph(config) if s.executable == 'event_manager')
    run = SiteRun(rate_hz, cameras, pre_event_s=pre_event_s)
    spawn = multiprocessing.get_context('spawn')
    control, control_child = spawn.Pipe()
    results = spawn.Queue()
    observer = spawn.Process(target=observe, args=(cameras, control_child, results), daemon=True)
    observer.start()
    with tempfile.TemporaryDirectory(prefix='vss-bench-site-') as tmp, log.open('w') as log_file:
        create_keys(Path(tmp))
        command = [sys.executable, '-m', 'kaiserslautern_vss.tools.bringup', '--config', str(config),
                   '--record-root', str(Path(tmp) / 'bags'), '--log-level', 'warn',
                   *site_overrides(config, video, rate_hz, Path(tmp))]
        bringup = subprocess.Popen(command, env=ros_environment(), stdout=log_file, stderr=subprocess.STDOUT)
        root = psutil.Process(bringup.pid)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while results.empty():
                if time.monotonic() > deadline or bringup.poll() is not None:
                    raise SiteRunError(f'{rate_hz:g} fps: not every camera delivered an anonymised frame '
                                     f'within {STARTUP_TIMEOUT_S:.0f} s; see {log}')
                time.sleep(0.2)
            results.get()
            peak_rss = 0
            for phase_s in (warmup_s, measure_s):
                processes = graph_processes(root)
                cpu_start, start_ns = cpu_seconds(processes), time.time_ns()
                phase_end = time.monotonic() + phase_s
                while time.monotonic() < phase_end:
                    peak_rss = max(peak_rss, total_memory(processes, 'rss'))
                    time.sleep(RSS_SAMPLE_PERIOD_S)
                cpu_end, end_ns = cpu_seconds(processes), time.time_ns()
            run.pss = total_memory(processes, 'pss')
            run.peak_rss = peak_rss
            run.seconds = (end_ns - start_ns) / NS
            for process in processes:
                kind = process_kind(process)
                run.processes[kind] += 1
                if process.pid in cpu_start and process.pid in cpu_end:
                    run.cpu_s[kind] += cpu_end[process.pid] - cpu_start[process.pid]
            control.send('stop')
            arrivals, diagnostics = results.get(timeout=60)
        finally:
            bringup.send_signal(signal.SIGINT)
            try:
                bringup.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for process in graph_processes(root):
                    process.kill()
            observer.join(timeout=10)
    for camera, stamp_ns, received_ns, size in arrivals:
        if start_ns <= received_ns <= end_ns:
            run.frames[camera] += 1
            run.latencies_ms.append((received_ns - stamp_ns) / 1e6)
            run.jpeg_bytes.append(size)
    run.losses, run.buffer_bytes = counter_deltas(diagnostics, start_ns, end_ns)
    return run


# --- report -----------------------------------------------------------------------------------

def table(runs: list[SiteRun], bare_ms: float) -> str:
    header = ['measure', *(f'{len(r.cameras)} cameras x {r.rate_hz:g} fps' for r in runs)]
    rows: list[list[str]] = []

    def row(label: str, cell) -> None:
        rows.append([label, *(cell(r) for r in runs)])

    row('anonymised frames/s (offered)',
        lambda r: f'{r.delivered / r.seconds:.1f} ({len(r.cameras) * r.rate_hz:g})')
    row('per camera frames/s, min / max', lambda r: '{:.1f} / {:.1f}'.format(
        min(r.frames[c] for c in r.cameras) / r.seconds, max(r.frames[c] for c in r.cameras) / r.seconds))
    row('capture -> anonymised p50 / p99 ms', lambda r: '{:.0f} / {:.0f}'.format(
        *np.percentile(r.latencies_ms or [np.nan], [50, 99])))
    row('of which fully masked (failed closed)', lambda r: '{:.0%}'.format(
        sum(n for key, n in r.losses.items() if key.endswith(': ' + FAIL_CLOSED)) / max(1, r.delivered)))
    for reason in sorted({reason for r in runs for reason in r.losses}):
        row(f'frames {reason}', lambda r, reason=reason: str(r.losses.get(reason, 0)))
    if not any(r.losses for r in runs):
        row('frames failed closed / shed / dropped', lambda r: '0')
    row('CPU ms per anonymised frame, whole graph', lambda r: f'{r.cpu_ms_per_frame():.1f}')
    row('ratio to bare ONNX Runtime', lambda r: f'**{r.cpu_ms_per_frame() / bare_ms:.2f}x**')
    for kind in sorted({kind for r in runs for kind in r.cpu_s}, key=lambda k: -runs[0].cpu_s[k]):
        row(f'  {kind} ({runs[0].processes[kind]} process{"es" if runs[0].processes[kind] > 1 else ""})',
            lambda r, kind=kind: f'{r.cpu_ms_per_frame(kind):.1f}')
    row('peak RSS whole graph (PSS at end)', lambda r: f'{r.peak_rss / 2**20:.0f} MB ({r.pss / 2**20:.0f} MB)')
    row('pre-event buffers, event manager diagnostics',
        lambda r: 'not reported' if r.buffer_bytes is None else f'{r.buffer_bytes / 2**20:.1f} MB')
    cameras, pre_event_s = len(runs[0].cameras), runs[0].pre_event_s
    row(f'pre-event buffers, {cameras} cameras x {pre_event_s:g} s at the observed JPEG size',
        lambda r: f'{cameras * pre_event_s * r.rate_hz * r.mean_jpeg_bytes / 2**20:.1f} MB '
                  f'({r.mean_jpeg_bytes / 1e3:.0f} kB/frame)')
    return '\n'.join(['| ' + ' | '.join(header) + ' |', '| --- |' + ' ---: |' * len(runs),
                      *('| ' + ' | '.join(cells) + ' |' for cells in rows)])


def per_camera_table(runs: list[SiteRun]) -> str:
    lines = ['| camera |' + ''.join(f' fps @ {r.rate_hz:g} |' for r in runs), '| --- |' + ' ---: |' * len(runs)]
    for camera in runs[0].cameras:
        lines.append(f'| {camera} |' + ''.join(f' {r.frames[camera] / r.seconds:.1f} |' for r in runs))
    return '\n'.join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', type=Path, default=REPO / 'config' / 'site_rathausvorplatz.yaml',
                        help='site graph config (default: %(default)s)')
    parser.add_argument('--video', type=Path, default=None, help='what every camera plays (default: vtest.avi)')
    parser.add_argument('--rates', default='5,10',
                        help='camera rates in fps, one graph run each (default: %(default)s)')
    parser.add_argument('--warmup-s', type=float, default=10.0, help='seconds after every camera delivered, '
                        'before measuring (default: %(default)s)')
    parser.add_argument('--measure-s', type=float, default=30.0,
                        help='measured seconds per rate (default: %(default)s)')
    parser.add_argument('--bare-s', type=float, default=6.0, help='seconds of the bare ONNX Runtime loop, '
                        'run before and after the graphs (default: %(default)s)')
    parser.add_argument('--log', type=Path, default=Path(tempfile.gettempdir()) / 'bench_site.log',
                        help='vss-bringup output of the last run (default: %(default)s)')
    args = parser.parse_args()
    isolate_ros_domain()
    video = args.video or sample_video()
    if video is None or not video.is_file():
        parser.error(f'no video to play: {video or "vtest.avi not found (../shared or VSS_SHARED_DIR)"}')
    video = video.resolve()
    model = resolve_model_path('')
    frames = read_frames(60, video)
    bare = [bare_loop_fps(model, frames, 1, 1, args.bare_s)[1]]
    runs = []
    for rate in args.rates.split(','):
        try:
            runs.append(run_site(args.config, video, float(rate), args.warmup_s, args.measure_s, args.log))
        except SiteRunError as error:
            print(f'bench_site: {error}', file=sys.stderr)
    if not runs:
        return 1
    bare.append(bare_loop_fps(model, frames, 1, 1, args.bare_s)[1])
    bare_ms = float(np.mean(bare))
    print(f'\n{args.config.name}: {len(runs[0].cameras)} cameras playing {video.name} in a loop; '
          f'{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {args.warmup_s:g} s warm-up, '
          f'{args.measure_s:g} s measured per rate')
    print(f'bare ONNX Runtime {Path(model).name} (letterbox + run, 1 thread): '
          f'{bare_ms:.1f} CPU ms per frame (before {bare[0]:.1f}, after {bare[1]:.1f})\n')
    print(table(runs, bare_ms))
    print()
    print(per_camera_table(runs))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
