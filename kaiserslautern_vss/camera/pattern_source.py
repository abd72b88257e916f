"""A synthetic camera for commissioning: a static scene with a person-like figure walking across.

The figure (head, torso, arms, legs, in proportions a person detector recognises only loosely)
lets the privacy masking and the rule engine be checked end to end without any camera or any
real person in the picture. A frame counter in the corner makes freezes visible.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from kaiserslautern_vss.camera.frame import Frame
from kaiserslautern_vss.camera.pacing import FramePacer
from kaiserslautern_vss.camera.source_types import SourceCounters, SourceError

WALK_SECONDS = 8.0  # time the figure needs to cross the image


class TestPatternSource:
    """Synthetic ``width x height`` frames at ``fps`` (``realtime``) or as fast as possible; endless."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, width: int = 768, height: int = 576, fps: float = 10.0, realtime: bool = True) -> None:
        if width < 64 or height < 64 or fps <= 0:
            raise ValueError(f'test pattern needs width, height >= 64 and fps > 0, got {width}x{height} @ {fps}')
        self.width, self.height, self.fps, self.realtime = width, height, fps, realtime
        self._background = self._scene()
        self._pacer: FramePacer | None = None
        self._counters = SourceCounters()
        self._open = False

    def _scene(self) -> np.ndarray:
        rows = np.linspace(170, 90, self.height, dtype=np.float32)[:, None, None]
        scene = np.broadcast_to(rows * np.array([1.0, 0.95, 0.9], np.float32), (self.height, self.width, 3))
        scene = scene.astype(np.uint8).copy()
        horizon = self.height // 3
        scene[:horizon] = (200, 170, 140)  # facade
        for x in range(self.width // 16, self.width, self.width // 6):  # windows
            cv2.rectangle(scene, (x, horizon // 4), (x + self.width // 12, horizon * 3 // 4), (90, 80, 70), -1)
        for y in range(horizon, self.height, max(8, self.height // 24)):  # paving
            cv2.line(scene, (0, y), (self.width - 1, y), (120, 120, 125), 1)
        return scene

    def _draw_figure(self, image: np.ndarray, t: float) -> None:
        scale = self.height / 576
        body = int(220 * scale)  # figure height in pixels
        phase = (t / WALK_SECONDS) % 1.0
        x = int(-0.1 * self.width + phase * 1.2 * self.width)
        feet = int(self.height * 0.85)
        head_r = max(3, body // 16)
        neck = feet - body + 2 * head_r
        hip = feet - body * 45 // 100
        swing = int(np.sin(t * 2 * np.pi * 1.6) * body * 0.12)
        skin, cloth, trousers = (140, 170, 210), (60, 40, 160), (70, 50, 40)
        cv2.ellipse(image, (x, neck - head_r), (head_r, int(head_r * 1.25)), 0, 0, 360, skin, -1)
        cv2.rectangle(image, (x - body // 9, neck), (x + body // 9, hip), cloth, -1)
        limb = max(2, body // 20)
        shoulder = neck + limb
        cv2.line(image, (x - body // 9, shoulder), (x - body // 9 - swing // 2, hip), cloth, limb)
        cv2.line(image, (x + body // 9, shoulder), (x + body // 9 + swing // 2, hip), cloth, limb)
        cv2.line(image, (x - body // 18, hip), (x - swing, feet), trousers, limb + 2)
        cv2.line(image, (x + body // 18, hip), (x + swing, feet), trousers, limb + 2)

    def open(self) -> None:
        self._pacer = FramePacer(self.fps) if self.realtime else None
        self._open = True

    def read(self, timeout_s: float) -> Frame | None:
        if not self._open:
            raise SourceError(f'{self.describe()} is not open')
        if self._pacer is not None and not self._pacer.wait_next(timeout_s):
            return None
        sequence = self._counters.frames
        image = self._background.copy()
        self._draw_figure(image, sequence / self.fps)
        cv2.putText(image, f'{sequence}', (8, self.height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        self._counters.frames += 1
        return Frame(image, time.time_ns(), sequence)

    def close(self) -> None:
        self._open = False

    def counters(self) -> SourceCounters:
        return SourceCounters(**vars(self._counters))

    def describe(self) -> str:
        pace = f'{self.fps:g} fps' if self.realtime else 'as fast as possible'
        return f'test pattern {self.width}x{self.height} ({pace})'
