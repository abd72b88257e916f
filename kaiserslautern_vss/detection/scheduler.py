"""Inference for many cameras on a pool of detector sessions: fair, newest-frame-wins, in order.

ONNX Runtime scales better with several sessions of few threads than with one session of many
(it releases the GIL while it runs), so each worker thread owns one detector session, and all
cameras share the pool. Each camera has a one-frame slot: a new frame replaces one still
waiting (counted as dropped), so slow inference never builds latency. Of the cameras with a
waiting frame, the least recently served goes first, so under overload every camera gets the
same share whatever the phase of its frames, and a busy camera cannot starve a quiet one. A worker takes up to ``batch_size`` waiting cameras into one
inference when the model accepts a dynamic batch. A camera is never in two workers at once,
so its motion gate and tracker always see its frames in order.

Motion gating: a frame without motion, when no recently moving object is tracked, skips
inference and is published with the camera's last detections (nothing moved, so they still
hold); a forced refresh runs inference every ``forced_refresh_s`` regardless.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from kaiserslautern_vss.detection.cpu_budget import session_count_for
from kaiserslautern_vss.detection.factory import Detector
from kaiserslautern_vss.detection.motion import MotionGate, MotionGateSettings
from kaiserslautern_vss.detection.tracker import MultiObjectTracker, TrackerSettings
from kaiserslautern_vss.detection.types import Detections

#: what a failing inference may raise: bad images (ValueError, cv2.error), ONNX Runtime's own
#: errors (they derive from Exception only) and runtime failures
INFERENCE_ERRORS: tuple[type[Exception], ...] = (ValueError, RuntimeError, cv2.error)
try:
    from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state
    INFERENCE_ERRORS += (_ort_state.Fail, _ort_state.RuntimeException, _ort_state.InvalidArgument)
except ImportError:  # HOG-only installations
    pass


class SchedulerError(ValueError):
    """Invalid scheduler settings or a frame for a camera the scheduler does not serve."""


def default_session_count(intra_op_threads: int, cpu_count: int | None = None, cameras: int | None = None) -> int:
    """One session per ``intra_op_threads`` cores this process may use, at least one, at most one
    per camera (detection.cpu_budget)."""
    return session_count_for(intra_op_threads, cameras, cpu_count)


@dataclass(frozen=True)
class SchedulerSettings:
    """``batch_size``: most cameras in one inference (dynamic-batch models only).
    ``motion_hold_s``: how long after a camera's last motion its tracked objects keep
    inference running, so tracks follow people who stop."""

    batch_size: int = 4
    motion_gating: bool = True
    motion: MotionGateSettings = MotionGateSettings()
    motion_hold_s: float = 1.0
    tracking: bool = True
    tracker: TrackerSettings = TrackerSettings()
    latency_window: int = 1000

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise SchedulerError(f'batch_size must be >= 1, got {self.batch_size}')
        if self.motion_hold_s < 0:
            raise SchedulerError(f'motion_hold_s must be >= 0, got {self.motion_hold_s}')
        if self.latency_window < 1:
            raise SchedulerError(f'latency_window must be >= 1, got {self.latency_window}')


@dataclass(frozen=True)
class DetectionResult:
    """The outcome for one frame taken from a camera's slot, with the frame itself (so the
    caller can mask it in the same worker). ``inferred`` is False when the motion gate skipped
    inference and the camera's last detections were carried over. ``error`` is set when
    inference failed: ``detections`` are then empty and mean nothing (fail closed)."""

    camera_id: str
    detections: Detections
    stamp_s: float
    context: object
    inferred: bool
    latency_s: float
    image: np.ndarray
    error: Exception | None = None


@dataclass(frozen=True)
class DetectionStats:
    """Counters since start and latency percentiles (submit to publish) of recent frames."""

    received: int
    dropped: int
    inferred: int
    gated: int
    failed: int
    published: int
    latency_p50_s: float
    latency_p99_s: float
    seconds_since_frame: float | None


@dataclass(frozen=True)
class _Frame:
    image: np.ndarray
    stamp_s: float
    context: object
    arrival_s: float


@dataclass
class _Camera:
    camera_id: str
    settings: SchedulerSettings
    slot: _Frame | None = None
    busy: bool = False
    gate: MotionGate = field(init=False)
    tracker: MultiObjectTracker = field(init=False)
    held: Detections = field(default_factory=Detections.empty)
    last_stamp_s: float | None = None
    last_motion_s: float | None = None
    last_arrival_s: float | None = None
    last_turn: int = -1  # when a worker last took a frame of this camera (scheduler turns)
    received: int = 0
    dropped: int = 0
    inferred: int = 0
    gated: int = 0
    failed: int = 0
    published: int = 0
    latencies_s: deque = field(init=False)

    def __post_init__(self) -> None:
        self.latencies_s = deque(maxlen=self.settings.latency_window)
        self.restart()

    def restart(self) -> None:
        """Fresh gate and tracker: at start and when the camera's clock jumps back."""
        self.gate = MotionGate(self.settings.motion)
        self.tracker = MultiObjectTracker(self.settings.tracker)
        self.held = Detections.empty()
        self.last_motion_s = None

    def objects_present(self) -> bool:
        return (self.tracker.alive_track_count > 0 if self.settings.tracking
                else len(self.held) > 0)

    def needs_inference(self, frame: _Frame) -> bool:
        if not self.settings.motion_gating:
            return True
        recently_moving = (self.last_motion_s is not None
                           and frame.stamp_s - self.last_motion_s <= self.settings.motion_hold_s)
        needed = self.gate.needs_inference(frame.image, frame.stamp_s,
                                           recently_moving and self.objects_present())
        if self.gate.last_motion_fraction >= self.settings.motion.min_area_fraction:
            self.last_motion_s = frame.stamp_s
        return needed


class DetectionScheduler:
    """Runs ``detectors`` (one worker thread each) over frames submitted per camera and hands
    each frame's result to ``publish``, from a worker thread, in frame order per camera.

    Every frame a worker takes is handed out, also when its inference failed (``error`` set,
    so the caller fails it closed); only frames replaced in their slot before any work are
    not (shed, counted in ``dropped``). ``clock`` times latencies only; gating and tracking
    run on the frames' own stamps.
    """

    def __init__(self, detectors: Sequence[Detector], camera_ids: Iterable[str],
                 publish: Callable[[DetectionResult], None],
                 settings: SchedulerSettings = SchedulerSettings(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not detectors:
            raise SchedulerError('need at least one detector session')
        self._detectors = list(detectors)
        self._cameras = {camera_id: _Camera(camera_id, settings) for camera_id in camera_ids}
        if not self._cameras:
            raise SchedulerError('need at least one camera')
        self._publish = publish
        self._settings = settings
        self._clock = clock
        # Cameras with a waiting frame and no worker, in arrival order. Workers take the least
        # recently served first: in arrival order alone, a camera whose next frame comes soon
        # after it was served would rejoin the queue early and get more than its share.
        self._ready: deque[str] = deque()
        self._turns = 0
        self._condition = threading.Condition()
        self._stopping = False
        self._workers: list[threading.Thread] = []
        self.inference_runs = 0     # calls into a detector (a batch counts once)
        self.batched_images = 0     # images that shared an inference with another camera

    @property
    def sessions(self) -> int:
        return len(self._detectors)

    def start(self) -> None:
        for index, detector in enumerate(self._detectors):
            worker = threading.Thread(target=self._work, args=(detector,), daemon=True,
                                      name=f'inference-{index}')
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        """Workers finish the frames they hold and exit; waiting frames are discarded.

        Waits for them however long that takes: a worker still running when its node's
        publishers are destroyed would publish through freed handles (a crash on a loaded box,
        where a frame can take seconds). The service manager's stop timeout bounds the wait.
        """
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        for worker in self._workers:
            worker.join()
        self._workers.clear()

    def submit(self, camera_id: str, image: np.ndarray, stamp_s: float, context: object = None) -> None:
        """Queue a frame; it replaces the camera's frame still waiting, if any."""
        with self._condition:
            camera = self._cameras.get(camera_id)
            if camera is None:
                raise SchedulerError(f'camera {camera_id!r} is not served here; cameras: '
                                     f'{", ".join(self._cameras)}')
            now = self._clock()
            camera.received += 1
            camera.last_arrival_s = now
            if camera.slot is not None:
                camera.dropped += 1
            elif not camera.busy:
                self._ready.append(camera_id)
                self._condition.notify()
            camera.slot = _Frame(image, stamp_s, context, now)

    def stats(self) -> dict[str, DetectionStats]:
        with self._condition:
            now = self._clock()
            result = {}
            for camera_id, camera in self._cameras.items():
                latencies = np.array(camera.latencies_s) if camera.latencies_s else np.zeros(1)
                p50, p99 = np.percentile(latencies, [50, 99])
                result[camera_id] = DetectionStats(
                    camera.received, camera.dropped, camera.inferred, camera.gated, camera.failed,
                    camera.published, float(p50), float(p99),
                    None if camera.last_arrival_s is None else now - camera.last_arrival_s)
            return result

    def wait_idle(self, timeout_s: float) -> bool:
        """True once no frame waits and no worker holds one (draining at the end of a finite source)."""
        deadline = self._clock() + timeout_s
        with self._condition:
            while self._ready or any(camera.busy for camera in self._cameras.values()):
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return False
                self._condition.wait(timeout=min(remaining, 0.05))
            return True

    def _work(self, detector: Detector) -> None:
        batch_limit = self._settings.batch_size if detector.supports_dynamic_batch else 1
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._ready or self._stopping)
                if self._stopping:
                    return
                taken = []
                while self._ready and len(taken) < batch_limit:
                    camera = min((self._cameras[camera_id] for camera_id in self._ready),
                                 key=lambda waiting: waiting.last_turn)
                    self._ready.remove(camera.camera_id)
                    self._turns += 1
                    camera.last_turn = self._turns
                    camera.busy = True
                    taken.append((camera, camera.slot))
                    camera.slot = None
            try:
                self._process(detector, taken)
            finally:
                with self._condition:
                    for camera, _ in taken:
                        camera.busy = False
                        if camera.slot is not None:  # arrived meanwhile: back of the queue
                            self._ready.append(camera.camera_id)
                    self._condition.notify_all()

    def _process(self, detector: Detector, taken: list[tuple[_Camera, _Frame]]) -> None:
        for camera, frame in taken:
            if camera.last_stamp_s is not None and frame.stamp_s < camera.last_stamp_s:
                camera.restart()
            camera.last_stamp_s = frame.stamp_s
        to_infer = [(camera, frame) for camera, frame in taken if camera.needs_inference(frame)]
        outcomes = iter(self._detect(detector, [frame.image for _, frame in to_infer]))
        inferred = {id(camera): next(outcomes) for camera, _ in to_infer}
        for camera, frame in taken:
            outcome = inferred.get(id(camera))
            error = outcome if isinstance(outcome, Exception) else None
            if error is not None:
                camera.failed += 1
                detections = Detections.empty()
            elif outcome is None:
                camera.gated += 1
                detections = camera.held
            else:
                camera.inferred += 1
                detections = (camera.tracker.update(outcome, frame.stamp_s) if self._settings.tracking
                              else outcome)
                camera.held = detections
            latency_s = self._clock() - frame.arrival_s
            self._publish(DetectionResult(camera.camera_id, detections, frame.stamp_s, frame.context,
                                          outcome is not None and error is None, latency_s, frame.image,
                                          error))
            camera.published += 1
            camera.latencies_s.append(latency_s)

    def _detect(self, detector: Detector, images: list[np.ndarray]) -> list[Detections | Exception]:
        """One result per image; a failing batch is retried image by image, so one camera's bad
        frame costs no other camera its detections."""
        if not images:
            return []
        try:
            results: list[Detections | Exception] = list(detector.detect_batch(images))
            self._count_run(len(images))
            return results
        except INFERENCE_ERRORS as error:
            if len(images) == 1:
                return [error]
        results = []
        for image in images:
            try:
                results.append(detector.detect(image))
                self._count_run(1)
            except INFERENCE_ERRORS as error:
                results.append(error)
        return results

    def _count_run(self, images: int) -> None:
        with self._condition:
            self.inference_runs += 1
            if images > 1:
                self.batched_images += images
