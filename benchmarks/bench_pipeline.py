"""Whole-graph throughput and latency on vtest.avi, next to a plain ONNX Runtime loop.

    source scripts/vss_env.sh && python benchmarks/bench_pipeline.py [--frames 300]

Measured in one run on the same frames:
  1. bare loop: letterbox + onnxruntime.InferenceSession.run, nothing else;
  2. the graph as vss-bringup starts it (the vision_pipeline process: camera driver,
     detector and privacy node with frames handed on in memory; the event manager in its
     own process) with the camera driver playing the frames in real time at 10, 20 and 30
     fps offered load: frames per second that left the privacy node masked by policy
     (failed-closed frames do not count), capture-to-anonymised latency p50/p99 and the
     frames the detector shed (replaced by a newer one before work started: overload is
     shed before any work, not failed closed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from kaiserslautern_vss.bringup.isolation import isolate_ros_domain  # noqa: E402

isolate_ros_domain()
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', str(REPO / 'config' / 'fastdds_localhost.xml'))

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402

from bare_inference import read_frames  # noqa: E402
from kaiserslautern_vss.bringup.graph import VISION_PIPELINE, load_graph  # noqa: E402
from kaiserslautern_vss.bringup.processes import GraphProcesses  # noqa: E402
from kaiserslautern_vss.detection.letterbox import letterbox  # noqa: E402
from kaiserslautern_vss.paths import resolve_model_path, sample_video  # noqa: E402
from kaiserslautern_vss.ros import qos  # noqa: E402


def bare_onnx_loop(frames: list[np.ndarray], model: str) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    height, width = session.get_inputs()[0].shape[2:]
    session.run(None, {name: letterbox(frames[0], (width, height))[0]})  # warm-up
    start = time.perf_counter()
    for frame in frames:
        session.run(None, {name: letterbox(frame, (width, height))[0]})
    return len(frames) / (time.perf_counter() - start)


OFFERED_FPS = (10.0, 20.0, 30.0)
PLAY_TIMEOUT_S = 180.0  # model load and the clip at 10 fps, with room on a loaded machine


def write_clip(frames: list[np.ndarray], path: Path, fps: float) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps,
                             (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()


def run_pipeline(clip: Path, tmp: Path) -> dict:
    config = yaml.safe_load((REPO / 'config' / 'vss.yaml').read_text())
    config['/vss/cam01/camera_driver']['ros__parameters'].update(url=str(clip), realtime=True)
    config['/vss/event_manager']['ros__parameters'].update(
        rules_file=str(REPO / 'config' / 'rules_demo.yaml'), record_root=str(tmp / 'recordings'))
    config_path = tmp / 'graph.yaml'
    config_path.write_text(yaml.safe_dump(config))

    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('bench_observer', context=context)
    arrivals: list[tuple[float, float]] = []  # (receive wall time, capture stamp)
    counters = {'fail_closed': 0, 'shed': 0}

    def on_image(msg: CompressedImage) -> None:
        arrivals.append((time.time(), msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.startswith('privacy'):
                counters['fail_closed'] = int(values.get('fail_closed', counters['fail_closed']))
            elif status.name.startswith('detector'):
                counters['shed'] = int(values.get('shed', counters['shed']))

    node.create_subscription(CompressedImage, '/vss/cam01/image_anonymized/compressed', on_image, qos.SENSOR)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    graph = GraphProcesses(load_graph(config_path), log_level='warn', respawn=False)
    graph.start()
    # The vision pipeline ends with status 0 once the clip has played and its frames are out.
    (pipeline,) = graph.of_executable(VISION_PIPELINE)
    deadline = time.monotonic() + PLAY_TIMEOUT_S
    while pipeline.returncode is None and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    drain_until = time.monotonic() + 3.0
    while time.monotonic() < drain_until:
        executor.spin_once(timeout_sec=0.05)
    graph.stop()
    node.destroy_node()
    context.try_shutdown()
    run = {'processes': len(graph.nodes), 'frames': len(arrivals), **counters}
    if len(arrivals) < 2:
        return {**run, 'fps': 0.0, 'p50': float('nan'), 'p99': float('nan')}
    receive = np.array([a[0] for a in arrivals])
    latency = receive - np.array([a[1] for a in arrivals])
    masked_by_policy = len(arrivals) - counters['fail_closed']
    return {**run, 'fps': masked_by_policy / (receive[-1] - receive[0]),
            'p50': float(np.percentile(latency, 50)), 'p99': float(np.percentile(latency, 99))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=300, help='frames of vtest.avi the camera plays')
    args = parser.parse_args()
    video, model = sample_video(), resolve_model_path('')
    if video is None or not model:
        print('needs vtest.avi and yolox_nano.onnx (../shared)', file=sys.stderr)
        return 2
    frames = read_frames(args.frames, video)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        bare_fps = bare_onnx_loop(frames, model)
        runs = {}
        for fps in OFFERED_FPS:
            clip = tmp / f'clip_{fps:.0f}.avi'
            write_clip(frames, clip, fps)
            runs[fps] = run_pipeline(clip, tmp)
    print(f'\nvtest.avi, {len(frames)} frames, {os.cpu_count()} cores')
    print(f'{"measurement":44s} {"frames/s":>9s} {"x bare":>7s} {"p50 ms":>8s} {"p99 ms":>8s} '
          f'{"failed closed":>14s} {"shed":>6s}')
    print(f'{"bare onnxruntime loop (letterbox + run)":44s} {bare_fps:9.1f} {1.0:7.2f}')
    for fps, run in runs.items():
        label = f'graph, camera at {fps:.0f} fps ({run["processes"]} processes)'
        print(f'{label:44s} {run["fps"]:9.1f} '
              f'{run["fps"] / bare_fps:7.2f} {run["p50"] * 1e3:8.0f} {run["p99"] * 1e3:8.0f} '
              f'{run["fail_closed"]:>7d}/{run["frames"]:<6d} {run["shed"]:6d}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
