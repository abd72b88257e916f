"""Judging published frames against the raw frames they came from, without raw frames on the bus.

The test clip carries each frame's index as a code of 24x24-pixel black and white blocks in its
top row (aligned to the 24-pixel blocks of a fully masked frame, so the code survives that too).
A published frame is matched to its raw frame by the code, then checked with the project's
"head visible" measure (privacy.coverage) against person boxes found by a reference detector
of our own, independent of what the pipeline published.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from conftest import shared_file
from kaiserslautern_vss.detection.onnx_detector import DetectorSettings, OnnxDetector
from kaiserslautern_vss.privacy.coverage import heads_masked
from kaiserslautern_vss.privacy.masking import MaskMethod, mask_everything

BLOCK = 24
INDEX_BITS, CHECK_BITS = 12, 4
#: persons the reference detector is sure of: each of their heads must be masked
REFERENCE_SCORE = 0.5


def _check(index: int) -> int:
    return (index * 7 + 3) % (1 << CHECK_BITS)


def stamp_code(image: np.ndarray, index: int) -> None:
    word = index | (_check(index) << INDEX_BITS)
    for bit in range(INDEX_BITS + CHECK_BITS):
        image[:BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = 255 if word >> bit & 1 else 0


def read_code(image: np.ndarray) -> int | None:
    """The frame index, or None where the code was masked over."""
    if image.shape[1] < (INDEX_BITS + CHECK_BITS) * BLOCK or image.shape[0] < BLOCK:
        return None
    word = 0
    for bit in range(INDEX_BITS + CHECK_BITS):
        block = image[4:BLOCK - 4, bit * BLOCK + 4:(bit + 1) * BLOCK - 4]
        mean = float(block.mean())
        if 64 < mean < 192:
            return None
        word |= (mean >= 128) << bit
    index = word & ((1 << INDEX_BITS) - 1)
    return index if word >> INDEX_BITS == _check(index) else None


def coded_clip(path: Path, first_frame: int, count: int) -> list[np.ndarray]:
    """``count`` vtest.avi frames with their index code as a 10 fps MJPG video at ``path``;
    returns the frames as a reader decodes them (the pixels the pipeline gets)."""
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    capture.set(cv2.CAP_PROP_POS_FRAMES, first_frame)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (768, 576))
    for index in range(count):
        ok, frame = capture.read()
        assert ok, f'vtest.avi has no frame {first_frame + index}'
        stamp_code(frame, index)
        writer.write(frame)
    writer.release()
    decoded = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = [decoded.read()[1] for _ in range(count)]
    assert all(frame is not None and read_code(frame) == index for index, frame in enumerate(frames))
    return frames


@dataclass(frozen=True)
class Verdict:
    identified: bool
    fully_masked: bool = False
    identical_to_raw: bool = False
    heads: int = 0
    unmasked_heads: int = 0


class FrameJudge:
    """``find_persons`` off: no reference detection (for tests that only count fully masked frames)."""

    def __init__(self, frames: list[np.ndarray], find_persons: bool = True) -> None:
        self.frames = frames
        self.persons = [np.zeros((0, 4), np.float32)] * len(frames)
        if find_persons:
            detector = OnnxDetector(DetectorSettings(model_path=str(shared_file('models/yolox_nano.onnx')),
                                                     score_threshold=REFERENCE_SCORE, class_allowlist=('person',)))
            self.persons = [detector.detect(frame).boxes for frame in frames]
        self.fully_masked = [mask_everything(frame, MaskMethod.PIXELATE) for frame in frames]

    def judge(self, image: np.ndarray) -> Verdict:
        index = read_code(image)
        if index is None or index >= len(self.frames) or image.shape != self.frames[index].shape:
            return Verdict(False)
        raw = self.frames[index]
        masked, heads = heads_masked(raw, image, self.persons[index])
        return Verdict(True, np.array_equal(image, self.fully_masked[index]), np.array_equal(image, raw),
                       heads, heads - masked)


@dataclass
class Tally:
    """Frames judged in a window: published, identified by code, fully masked, unmasked heads."""

    published: int = 0
    identified: int = 0
    fully_masked: int = 0
    identical_to_raw: int = 0
    heads: int = 0
    unmasked_heads: int = 0
    frames_with_unmasked_head: int = 0

    def add(self, verdict: Verdict) -> None:
        self.published += 1
        self.identified += verdict.identified
        self.fully_masked += verdict.fully_masked
        self.identical_to_raw += verdict.identical_to_raw
        self.heads += verdict.heads
        self.unmasked_heads += verdict.unmasked_heads
        self.frames_with_unmasked_head += verdict.unmasked_heads > 0

    def line(self, name: str) -> str:
        return (f'{name}: {self.published} published, {self.identified} identified, {self.fully_masked} fully '
                f'masked, {self.frames_with_unmasked_head} with an unmasked head ({self.heads} heads checked), '
                f'{self.identical_to_raw} identical to raw')
