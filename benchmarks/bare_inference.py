"""The yardstick of the benchmarks: vtest.avi frames through a bare ONNX Runtime loop.

Letterbox + ``InferenceSession.run`` and nothing else, so a benchmark can say how close a
node or the whole graph comes to the cost of inference itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from kaiserslautern_vss.detection.letterbox import letterbox
from kaiserslautern_vss.paths import sample_video


def read_frames(count: int | None = None, video: Path | None = None) -> list[np.ndarray]:
    """The first ``count`` frames (all when None) of ``video`` (default: vtest.avi)."""
    capture = cv2.VideoCapture(str(video or sample_video()))
    frames = []
    while count is None or len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def run_threads(sessions: int, seconds: float, step: Callable[[int, int], object]) -> int:
    """Frames done by ``sessions`` threads each calling ``step(thread, i)`` for ``seconds``."""
    done = [0] * sessions
    deadline = time.perf_counter() + seconds

    def loop(thread: int) -> None:
        while time.perf_counter() < deadline:
            step(thread, done[thread])
            done[thread] += 1

    threads = [threading.Thread(target=loop, args=(t,)) for t in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done)


def bare_loop_fps(model: str, frames: list[np.ndarray], sessions: int, threads: int,
                  seconds: float) -> tuple[float, float]:
    """Frames/s and CPU ms per frame of ``sessions`` threads, each with its own session of
    ``threads`` intra-op threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    runners = [ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])
               for _ in range(sessions)]
    name = runners[0].get_inputs()[0].name
    height, width = runners[0].get_inputs()[0].shape[2:]

    def step(thread: int, i: int) -> None:
        tensor, _ = letterbox(frames[(thread * 97 + i) % len(frames)], (width, height))
        runners[thread].run(None, {name: tensor})

    step(0, 0)  # the first run allocates; it is not what a frame costs
    start, cpu_start = time.perf_counter(), time.process_time()
    count = run_threads(sessions, seconds, step)
    return count / (time.perf_counter() - start), (time.process_time() - cpu_start) * 1e3 / count
