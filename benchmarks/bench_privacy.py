"""Privacy stage throughput and coverage on vtest.avi, next to the deface command line.

    python benchmarks/bench_privacy.py [--frames 200]

Measured in one run on the same frames:
- the privacy stage's work per frame as the vision_pipeline worker does it right after
  inference (the frame and its detections in memory: detection validation, CenterFace +
  masking, then Image and JPEG out as published to subscribers), one thread: throughput and
  latency p50/p99;
- the YOLOX person detector alone (the inference before it in the same worker);
- vss-anonymize and deface as command lines on the same clip (video in, video out), their
  start-up removed by also running a 10-frame clip: (frames - 10) / (time - time of 10 frames);
- share of detected persons' heads masked, share of pixels away from people left untouched.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from std_msgs.msg import Header

from kaiserslautern_vss.paths import sample_video
from kaiserslautern_vss.privacy.coverage import heads_masked, untouched_share
from kaiserslautern_vss.privacy.detection_validation import sanitize_detections
from kaiserslautern_vss.ros.image_conversion import bgr_to_compressed, bgr_to_image
from kaiserslautern_vss.tools.anonymize import build_frame_anonymizer, node_parameters

STARTUP_FRAMES = 10
DEFACE = [str(Path(sys.executable).with_name('deface'))] if Path(sys.executable).with_name('deface').exists() \
    else [sys.executable, '-m', 'deface.deface']
VSS_ANONYMIZE = [sys.executable, '-m', 'kaiserslautern_vss.tools.anonymize']


def read_frames(count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(sample_video()))
    frames = [capture.read()[1] for _ in range(count)]
    capture.release()
    return frames


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def command_fps(command: list[str], clip: Path, short_clip: Path, frames: int, output_suffix: str) -> float:
    """Frames per second of a video-in video-out command line, its start-up subtracted."""
    times = []
    for source in (short_clip, clip):
        started = time.perf_counter()
        subprocess.run([*command, str(source), '-o', str(source.with_suffix(f'.out{output_suffix}'))],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return (frames - STARTUP_FRAMES) / (times[1] - times[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--frames', type=int, default=200, help='vtest.avi frames (at least 11)')
    args = parser.parse_args()
    frames = read_frames(args.frames)
    detector_values, privacy_values = node_parameters(None)
    pipeline = build_frame_anonymizer(detector_values, privacy_values)

    started = time.perf_counter()
    detections = [pipeline.detector.detect(frame) for frame in frames]
    detector_fps = len(frames) / (time.perf_counter() - started)

    header = Header(frame_id='cam01')
    latencies, masked_heads, heads, untouched = [], 0, 0, []
    for frame, found in zip(frames, detections):
        started = time.perf_counter()
        validated = sanitize_detections(found, frame.shape, pipeline.validation)
        image = (pipeline.anonymizer.fully_masked(frame) if validated.detections is None  # fails closed
                 else pipeline.anonymizer.anonymize(frame, validated.detections).image)
        bgr_to_image(image, header)
        bgr_to_compressed(image, header, 85)
        latencies.append(time.perf_counter() - started)
        persons = found.of_class('person')
        frame_masked, frame_heads = heads_masked(frame, image, persons.boxes)
        masked_heads, heads = masked_heads + frame_masked, heads + frame_heads
        untouched.append(untouched_share(frame, image, persons.boxes))
    node_fps = len(frames) / sum(latencies)
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000

    with tempfile.TemporaryDirectory(prefix='bench-privacy-') as folder:
        clip = write_clip(Path(folder) / 'clip.avi', frames)
        short_clip = write_clip(Path(folder) / 'short.avi', frames[:STARTUP_FRAMES])
        deface_fps = command_fps(DEFACE, clip, short_clip, len(frames), '.mp4')
        cli_fps = command_fps(VSS_ANONYMIZE, clip, short_clip, len(frames), '.avi')

    height, width = frames[0].shape[:2]
    print(f'vtest.avi, {len(frames)} frames {width}x{height}; privacy policy {privacy_values["policy"]}, '
          f'method {privacy_values["method"]}, face_scale {privacy_values["face_scale"]}\n')
    print('| what | frames/s | p50 ms | p99 ms | vs deface |')
    print('| --- | ---: | ---: | ---: | ---: |')
    print(f'| privacy stage per frame (given detections, in memory) | {node_fps:.1f} | {p50:.1f} | {p99:.1f} | '
          f'{node_fps / deface_fps:.1f}x |')
    print(f'| YOLOX-Nano person detector (inference before it) | {detector_fps:.1f} | | | {detector_fps / deface_fps:.1f}x |')
    print(f'| vss-anonymize CLI (detector + privacy, video in/out) | {cli_fps:.1f} | | | {cli_fps / deface_fps:.1f}x |')
    print(f'| deface CLI, default options (CenterFace full frame) | {deface_fps:.1f} | | | 1.0x |')
    print(f'\nheads of detected persons masked: {masked_heads}/{heads} = {masked_heads / max(heads, 1):.1%}')
    print(f'pixels away from people left untouched: {np.mean(untouched):.1%} (worst frame {np.min(untouched):.1%})')


if __name__ == '__main__':
    main()
