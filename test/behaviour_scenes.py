"""Synthetic scenes for the behaviour cues: people as boxes with keypoints, drawn into frames.

A person is a dark body filling their detector box on a plain background; arms that reach out
of the box (strikes, shoves) are drawn as bright strokes beyond it, as on CCTV where blurred
flailing limbs fall outside the detector's box. Each scene is a list of frames at a given rate;
the stage gets the frames, the detections, and (through :class:`ScenePoses`) the scene's own
keypoints, which a real model could not find on drawn figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from kaiserslautern_vss.behaviour.stage import BehaviourStage
from kaiserslautern_vss.behaviour.types import BehaviourResult, BehaviourSettings
from kaiserslautern_vss.detection.types import Detections

SIZE = (640, 360)
BACKGROUND, BODY, LIMB = 120, 40, 230
#: upright skeleton in box units: x from the centre in widths, y from the top in heights
_UPRIGHT = np.array([
    (0, .07), (-.08, .05), (.08, .05), (-.15, .06), (.15, .06), (-.35, .2), (.35, .2), (-.42, .35),
    (.42, .35), (-.42, .48), (.42, .48), (-.2, .52), (.2, .52), (-.2, .72), (.2, .72), (-.2, .95), (.2, .95)])


@dataclass
class Figure:
    """One person on one frame: box bottom-centre, height, width/height, and optional wrist
    reach (wrist offsets in body heights from the shoulder, drawn as strokes)."""

    track_id: int
    x: float
    foot_y: float
    height: float = 120.0
    aspect: float = 0.4
    reach: Sequence[tuple[float, float]] = ()
    label: str = 'person'

    @property
    def box(self) -> np.ndarray:
        width = self.height * self.aspect
        return np.array([self.x - width / 2, self.foot_y - self.height, self.x + width / 2, self.foot_y],
                        np.float32)

    def keypoints(self) -> np.ndarray:
        x1, y1, x2, _ = self.box
        points = np.empty((17, 3), np.float32)
        points[:, 0] = (x1 + x2) / 2 + _UPRIGHT[:, 0] * (x2 - x1)
        points[:, 1] = y1 + _UPRIGHT[:, 1] * self.height
        points[:, 2] = 0.9
        for side, (dx, dy) in zip((0, 1), self.reach):
            shoulder = points[5 + side, :2]
            points[9 + side, :2] = shoulder + np.array([dx, dy]) * self.height
            points[7 + side, :2] = shoulder + np.array([dx, dy]) * self.height / 2
        return points


@dataclass
class Scene:
    rate_hz: float
    frames: list[list[Figure]] = field(default_factory=list)

    def add(self, *figures: Figure) -> None:
        self.frames.append(list(figures))

    def stamp(self, index: int) -> float:
        return index / self.rate_hz


def draw(figures: Sequence[Figure]) -> np.ndarray:
    image = np.full((SIZE[1], SIZE[0], 3), BACKGROUND, np.uint8)
    for figure in figures:
        x1, y1, x2, y2 = figure.box.astype(int)
        colour = (BODY,) * 3 if figure.label == 'person' else (200, 60, 60)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, -1)
        if figure.label == 'person':
            points = figure.keypoints()
            for shoulder, wrist in ((5, 9), (6, 10)):
                cv2.line(image, tuple(int(v) for v in points[shoulder, :2]),
                         tuple(int(v) for v in points[wrist, :2]), (LIMB,) * 3, max(2, int(figure.height / 6)))
    return image


def detections(figures: Sequence[Figure]) -> Detections:
    return Detections(np.array([f.box for f in figures], np.float32).reshape(-1, 4),
                      np.full(len(figures), 0.9, np.float32), tuple(f.label for f in figures),
                      np.array([f.track_id for f in figures], np.int64))


class ScenePoses:
    """The scene's own keypoints for the boxes the stage asks about (a real pose model cannot
    read drawn figures); counts the crops asked for."""

    path = Path('scene')

    def __init__(self) -> None:
        self.figures: list[Figure] = []
        self.crops = 0

    def estimate(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        self.crops += len(boxes)
        by_box = {tuple(np.round(f.box, 1)): f for f in self.figures}
        return np.stack([by_box[tuple(np.round(box, 1))].keypoints() for box in boxes])


def run(scene: Scene, settings: BehaviourSettings = BehaviourSettings(), poses: bool = True,
        camera: str = 'cam01') -> list[BehaviourResult]:
    """Every frame of ``scene`` through one :class:`BehaviourStage`."""
    model = ScenePoses() if poses else None
    stage = BehaviourStage(model, settings)  # type: ignore[arg-type]
    results = []
    for index, figures in enumerate(scene.frames):
        if model is not None:
            model.figures = figures
        results.append(stage.analyse(camera, draw(figures), detections(figures), scene.stamp(index)))
    return results


def peak(results: Sequence[BehaviourResult], kind: str) -> float:
    return max((cue.score for result in results for cue in result.cues if cue.kind == kind), default=0.0)


def scene(rate_hz: float, seconds: float, frame: Callable[[float, int], Sequence[Figure]]) -> Scene:
    """A scene whose figures at time t (frame i) ``frame(t, i)`` returns."""
    built = Scene(rate_hz)
    for index in range(int(seconds * rate_hz)):
        built.add(*frame(index / rate_hz, index))
    return built
