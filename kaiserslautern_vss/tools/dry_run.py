"""Recorded footage through the site's detection, tracking, behaviour stage and behaviour rules,
as fast as the CPU allows, recording nothing: what vss-incidents runs on each source.

The code is the site graph's: frames are thinned to the cameras' rate (``RateDecimator``),
detected, gated and tracked by a :class:`DetectionScheduler`, their detections validated as the
privacy stage does, analysed by a :class:`BehaviourStage` and judged by a :class:`RuleEngine`.
Only the hand-over differs: each camera's next frame is submitted once its previous one is
done, so a file is never shed like an overloaded live camera, and decoding the next frame
overlaps inference of the current one. The models are loaded once by the caller; each source
gets fresh tracks, cue state and rule state.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kaiserslautern_vss.behaviour.pose_estimator import PoseEstimator
from kaiserslautern_vss.behaviour.stage import BehaviourStage
from kaiserslautern_vss.behaviour.types import CUE_KINDS, BehaviourSettings
from kaiserslautern_vss.camera.pacing import RateDecimator
from kaiserslautern_vss.detection.factory import Detector
from kaiserslautern_vss.detection.scheduler import DetectionResult, DetectionScheduler, SchedulerSettings
from kaiserslautern_vss.events.incident import Incident
from kaiserslautern_vss.events.rule_engine import RuleEngine
from kaiserslautern_vss.events.rule_kinds import BehaviourRule
from kaiserslautern_vss.privacy.detection_validation import ValidationSettings, sanitize_detections
from kaiserslautern_vss.tools.footage import Footage

#: a stamp after every incident's end: closes what is open when a source ends
_END_OF_TIME_NS = 2**63 - 1
#: longer than any frame's detection and behaviour analysis takes
RESULT_TIMEOUT_S = 60.0


class DryRunError(RuntimeError):
    """A source that could not be run to its end; the message says why."""


@dataclass(frozen=True)
class DryRunSettings:
    """``rate_hz``: frames per second kept of each source (0: all); ``max_width``/``max_height``:
    the cameras' size limits; the rest as the vision pipeline and event manager are configured."""

    rate_hz: float
    scheduler: SchedulerSettings
    validation: ValidationSettings
    behaviour: BehaviourSettings
    end_hold_s: float
    max_width: int = 0
    max_height: int = 0


@dataclass(frozen=True)
class DryRunIncident:
    """One behaviour rule's part in an incident, in seconds from the start of the source;
    ``score`` is its cue's peak."""

    rule: str
    kind: str
    start_s: float
    end_s: float
    score: float


@dataclass(frozen=True)
class SourceResult:
    """``frames``: frames analysed (after thinning to the rate); ``seconds``: footage read;
    ``peak``: the highest score each cue kind reached (0.0 if never); ``failed_frames``: frames
    whose detection failed or was rejected (no cues); ``undecodable``: bag frames skipped."""

    source: str
    frames: int
    seconds: float
    peak: dict[str, float]
    incidents: tuple[DryRunIncident, ...]
    failed_frames: int = 0
    undecodable: int = 0


@dataclass
class _Pass:
    """One source's state, fed from the inference worker in frame order."""

    stage: BehaviourStage
    engine: RuleEngine
    validation: ValidationSettings
    cameras: Sequence[str]
    peak: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CUE_KINDS, 0.0))
    ended: list[Incident] = field(default_factory=list)
    failed_frames: int = 0
    error: Exception | None = None
    idle: dict[str, threading.Semaphore] = field(init=False)

    def __post_init__(self) -> None:
        self.idle = {camera: threading.Semaphore(1) for camera in self.cameras}

    def on_result(self, result: DetectionResult) -> None:
        try:
            self._judge(result)
        except Exception as error:  # noqa: BLE001 - raised again in the caller's thread
            self.error = self.error or error
        finally:
            self.idle[result.camera_id].release()

    def _judge(self, result: DetectionResult) -> None:
        validated = None if result.error is not None else \
            sanitize_detections(result.detections, result.image.shape, self.validation).detections
        if validated is None:  # failed closed on site: no cues, the rules see nothing
            self.failed_frames += 1
            return
        stamp_ns: int = result.context
        behaviour = self.stage.analyse(result.camera_id, result.image, validated, result.stamp_s)
        for cue in behaviour.cues:
            self.peak[cue.kind] = max(self.peak[cue.kind], cue.score)
        updates = (self.engine.update(result.camera_id, stamp_ns, validated)
                   + self.engine.behaviour(result.camera_id, stamp_ns, behaviour.cues))
        self.ended += [update.incident for update in updates if update.phase == 'end']


class DryRun:
    """``rules`` apply to every camera of every source (see :meth:`BehaviourRule.everywhere`)."""

    def __init__(self, detector: Detector, pose_estimator: PoseEstimator | None,
                 rules: Sequence[BehaviourRule], settings: DryRunSettings) -> None:
        self.detector, self.pose_estimator = detector, pose_estimator
        self.rules, self.settings = list(rules), settings

    def run(self, path: Path, max_seconds: float = 0.0) -> SourceResult:
        """One source to its end (or ``max_seconds`` of it); raises FootageError or DryRunError."""
        settings = self.settings
        footage = Footage(path, settings.max_width, settings.max_height, max_seconds)
        state = _Pass(BehaviourStage(self.pose_estimator, settings.behaviour),
                      RuleEngine(self.rules, end_hold_s=settings.end_hold_s), settings.validation, footage.cameras)
        scheduler = DetectionScheduler([self.detector], footage.cameras, state.on_result, settings.scheduler)
        rates = {camera: RateDecimator(settings.rate_hz) for camera in footage.cameras}
        frames = 0
        scheduler.start()
        try:
            for frame in footage.frames():
                if not rates[frame.camera].keep(frame.position_ns):
                    continue
                _wait(state.idle[frame.camera], path)  # its previous frame is judged: nothing is shed
                if state.error is not None:
                    break
                scheduler.submit(frame.camera, frame.image, frame.position_ns / 1e9, frame.position_ns)
                frames += 1
            for idle in state.idle.values():
                _wait(idle, path)
        finally:
            scheduler.stop()
        if state.error is not None:
            raise DryRunError(f'{path}: {state.error!r}') from state.error
        state.ended += [update.incident for update in state.engine.tick(_END_OF_TIME_NS)]
        return SourceResult(str(path), frames, footage.seconds, state.peak,
                            _incidents(state.ended, footage.seconds), state.failed_frames, footage.undecodable)


def _wait(idle: threading.Semaphore, path: Path) -> None:
    if not idle.acquire(timeout=RESULT_TIMEOUT_S):  # the inference worker died
        raise DryRunError(f'{path}: no detection result within {RESULT_TIMEOUT_S:g} s')


def _incidents(ended: Sequence[Incident], seconds: float) -> tuple[DryRunIncident, ...]:
    """Each behaviour rule's part in each incident (rules merge into one incident per camera);
    an incident still open when the footage ended ends with it."""
    parts = [DryRunIncident(rule, record.kind, record.first_ns / 1e9, min(incident.ended_ns / 1e9, seconds),
                            record.score)
             for incident in ended for rule, record in incident.cues.items()]
    return tuple(sorted(parts, key=lambda part: (part.start_s, part.rule)))
