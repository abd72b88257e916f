"""Camera frames -> detection -> masking -> outputs, in one process, frames handed on in memory.

The privacy stage takes its detections from here only: the configured detector ran on this
very frame a moment ago, in the same worker thread. Nothing another process publishes can
reach it, so no forged, empty or late message can make a frame less masked.

    submit(frame) --stamp window--> DetectionScheduler --worker--> validate detections
        -> anonymizer (policy masks, or conservative ones) --> output(PipelineOutput)

Overload is met before any work: each camera has a one-frame slot in the scheduler and a
newer frame replaces a waiting one (shed, counted). A frame is failed closed (fully masked,
or dropped with ``publish_failed`` off) only when it cannot be anonymised: inference failed,
its detections were rejected as invalid, or masking raised. Frames stamped outside the
stamp window are refused before they touch any state. Every refusal, repair and failure is
counted per camera and reason, and reported through ``report`` for logging.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kaiserslautern_vss.detection.factory import Detector
from kaiserslautern_vss.detection.scheduler import DetectionResult, DetectionScheduler, SchedulerSettings
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.pipeline.stamp_window import StampWindow
from kaiserslautern_vss.privacy.conservative import FrameMasker
from kaiserslautern_vss.privacy.detection_validation import ValidationSettings, sanitize_detections
from kaiserslautern_vss.timekeeping import NS_PER_S

INFERENCE_FAILED = 'inference failed'
MASKING_FAILED = 'masking failed'
MALFORMED = 'malformed image'
OUTPUT_FAILED = 'output failed'
LATENCY_WINDOW = 300

# Kinds of reported problems
REFUSED, REPAIRED, FAILED_CLOSED = 'refused', 'repaired', 'failed closed'


@dataclass(frozen=True)
class PipelineSettings:
    stamp_window: StampWindow
    validation: ValidationSettings
    publish_failed: bool = True  # frames failed closed leave fully masked; False: dropped


@dataclass(frozen=True)
class PipelineOutput:
    """One processed frame. ``image`` is masked by the policy, fully masked (``failure`` says
    why), or None (failed closed with ``publish_failed`` off). ``detections`` are the validated
    detections the masks were made from; None when the frame failed closed."""

    camera_id: str
    stamp_ns: int
    context: object
    image: np.ndarray | None
    detections: Detections | None
    failure: str | None = None


@dataclass(frozen=True)
class Problem:
    """Something a log line should say: ``kind`` is refused, repaired or failed closed."""

    camera_id: str
    kind: str
    reason: str
    detail: str = ''


@dataclass(frozen=True)
class CameraCounts:
    """Counters since start; latency from the frame's stamp to its output, on the node clock."""

    submitted: int
    refused: dict[str, int]
    masked: int
    failed_closed: dict[str, int]
    repaired: dict[str, int]
    latency_p50_s: float
    latency_p99_s: float


@dataclass(frozen=True)
class _Submitted:
    stamp_ns: int
    context: object


class _Camera:
    def __init__(self, anonymizer: FrameMasker) -> None:
        self.anonymizer = anonymizer
        self.submitted = 0
        self.masked = 0
        self.refused: Counter = Counter()
        self.failed_closed: Counter = Counter()
        self.repaired: Counter = Counter()
        self.latencies_s: deque[float] = deque(maxlen=LATENCY_WINDOW)


class VisionPipeline:
    """``anonymizers`` holds one per camera (they remember recent masks, so one camera each);
    ``clock_ns`` is the node's clock (simulated time in a replay); ``output`` and ``report``
    are called from worker threads, for one camera at a time and in frame order."""

    def __init__(self, detectors: Sequence[Detector], anonymizers: Mapping[str, FrameMasker],
                 scheduler_settings: SchedulerSettings, settings: PipelineSettings,
                 output: Callable[[PipelineOutput], None], clock_ns: Callable[[], int],
                 report: Callable[[Problem], None] = lambda problem: None) -> None:
        self.settings = settings
        self._cameras = {camera_id: _Camera(anonymizer) for camera_id, anonymizer in anonymizers.items()}
        self._output = output
        self._clock_ns = clock_ns
        self._report = report
        self._lock = threading.Lock()
        self.scheduler = DetectionScheduler(detectors, list(self._cameras), self._on_result, scheduler_settings)

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()

    def submit(self, camera_id: str, image: np.ndarray, stamp_ns: int, context: object = None) -> bool:
        """Queue a frame (it replaces the camera's frame still waiting); False when refused."""
        camera = self._cameras[camera_id]
        refusal = self.settings.stamp_window.refusal(stamp_ns, self._clock_ns())
        with self._lock:
            camera.submitted += 1
        if refusal is not None:
            self.refuse(camera_id, refusal, f'stamp {stamp_ns / NS_PER_S:.3f} s')
            return False
        self.scheduler.submit(camera_id, image, stamp_ns / NS_PER_S, _Submitted(stamp_ns, context))
        return True

    def refuse(self, camera_id: str, reason: str, detail: str = '') -> None:
        """Count a frame refused at the door (also by callers: undecodable input)."""
        with self._lock:
            self._cameras[camera_id].refused[reason] += 1
        self._report(Problem(camera_id, REFUSED, reason, detail))

    def counts(self) -> dict[str, CameraCounts]:
        with self._lock:
            return {camera_id: CameraCounts(
                camera.submitted, dict(camera.refused), camera.masked, dict(camera.failed_closed),
                dict(camera.repaired), *_percentiles(camera.latencies_s))
                for camera_id, camera in self._cameras.items()}

    def _on_result(self, result: DetectionResult) -> None:
        camera = self._cameras[result.camera_id]
        submitted: _Submitted = result.context
        if result.error is not None:
            self._fail_closed(result, INFERENCE_FAILED, repr(result.error))
            return
        validated = sanitize_detections(result.detections, result.image.shape, self.settings.validation)
        if validated.repairs:
            with self._lock:
                camera.repaired.update(validated.repairs)
            for reason, count in validated.repairs.items():
                self._report(Problem(result.camera_id, REPAIRED, reason, f'{count} detection(s)'))
        if validated.detections is None:
            self._fail_closed(result, f'invalid detections: {validated.rejected}', validated.detail)
            return
        try:
            masked = camera.anonymizer.anonymize(result.image, validated.detections).image
        except Exception as error:  # noqa: BLE001 - any masking failure must fail closed
            self._fail_closed(result, MASKING_FAILED, repr(error))
            return
        self._emit(camera, PipelineOutput(result.camera_id, submitted.stamp_ns, submitted.context, masked,
                                          validated.detections))
        with self._lock:
            camera.masked += 1

    def _fail_closed(self, result: DetectionResult, reason: str, detail: str) -> None:
        camera = self._cameras[result.camera_id]
        submitted: _Submitted = result.context
        with self._lock:
            camera.failed_closed[reason] += 1
        self._report(Problem(result.camera_id, FAILED_CLOSED, reason, detail))
        image = None
        if self.settings.publish_failed:
            try:
                image = camera.anonymizer.fully_masked(result.image)
            except Exception as error:  # noqa: BLE001 - what cannot be masked at all is not published
                self._report(Problem(result.camera_id, FAILED_CLOSED, 'not maskable, dropped', repr(error)))
        self._emit(camera, PipelineOutput(result.camera_id, submitted.stamp_ns, submitted.context, image,
                                          None, reason))

    def _emit(self, camera: _Camera, output: PipelineOutput) -> None:
        try:
            self._output(output)
        except Exception as error:  # noqa: BLE001 - a worker thread must outlive a failing publisher
            self._report(Problem(output.camera_id, FAILED_CLOSED, OUTPUT_FAILED, repr(error)))
            return
        with self._lock:
            camera.latencies_s.append((self._clock_ns() - output.stamp_ns) / NS_PER_S)


def _percentiles(values: deque[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    p50, p99 = np.percentile(np.array(values), [50, 99])
    return float(p50), float(p99)
