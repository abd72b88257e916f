"""Frame-difference motion gate: run the detector only when something moves.

As NVRs do it: a small, blurred greyscale copy of each frame is compared with a slowly updated
running-average background; changed pixels are grouped into contours and only contours covering
at least ``min_area_fraction`` of the frame count as motion, so sensor noise and compression
speckle are ignored. A change over most of the frame at once is a lighting change (lights
switched, cloud, camera gain): the background is re-learnt instead of reporting motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kaiserslautern_vss.camera.imaging import as_bgr


class MotionGateError(ValueError):
    """A motion gate setting is out of range."""


@dataclass(frozen=True)
class MotionGateSettings:
    min_area_fraction: float = 0.0005     # smallest moving contour, as a fraction of the frame
    forced_refresh_s: float = 5.0         # infer at least this often, motion or not
    analysis_height: int = 180            # rows of the downscaled copy motion is computed on
    blur_kernel: int = 5                  # odd Gaussian kernel size, in downscaled pixels
    pixel_threshold: int = 25             # grey-level difference that counts as changed
    background_alpha: float = 0.05        # running-average weight of each new frame
    lighting_change_fraction: float = 0.6  # changed fraction treated as lighting, not motion

    def __post_init__(self) -> None:
        if not 0.0 < self.min_area_fraction < 1.0:
            raise MotionGateError(f'min_area_fraction must be in (0, 1), got {self.min_area_fraction}')
        if self.forced_refresh_s <= 0:
            raise MotionGateError(f'forced_refresh_s must be > 0, got {self.forced_refresh_s}')
        if self.analysis_height < 16:
            raise MotionGateError(f'analysis_height must be >= 16 rows, got {self.analysis_height}')
        if self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            raise MotionGateError(f'blur_kernel must be an odd number >= 1, got {self.blur_kernel}')
        if not 0 < self.pixel_threshold < 255:
            raise MotionGateError(f'pixel_threshold must be in 1..254, got {self.pixel_threshold}')
        if not 0.0 < self.background_alpha <= 1.0:
            raise MotionGateError(f'background_alpha must be in (0, 1], got {self.background_alpha}')
        if not self.min_area_fraction < self.lighting_change_fraction <= 1.0:
            raise MotionGateError('lighting_change_fraction must be in (min_area_fraction, 1], got '
                                  f'{self.lighting_change_fraction}')


class MotionGate:
    """Decides per frame of one camera whether the detector must run. Not thread-safe."""

    def __init__(self, settings: MotionGateSettings = MotionGateSettings()) -> None:
        self._settings = settings
        self._background: np.ndarray | None = None
        self._last_inference_s: float | None = None
        self.frames = 0
        self.inferences = 0
        self.last_motion_fraction = 0.0

    def needs_inference(self, frame_bgr: np.ndarray, now_s: float, tracks_alive: bool) -> bool:
        """True on motion, when ``forced_refresh_s`` passed since the last inference (or the
        clock went backwards), and while the tracker still holds tracks."""
        self.frames += 1
        moving = self._detect_motion(frame_bgr)
        refresh_due = (self._last_inference_s is None or now_s < self._last_inference_s
                       or now_s - self._last_inference_s >= self._settings.forced_refresh_s)
        if moving or refresh_due or tracks_alive:
            self.inferences += 1
            self._last_inference_s = now_s
            return True
        return False

    def _detect_motion(self, frame_bgr: np.ndarray) -> bool:
        settings = self._settings
        grey = cv2.cvtColor(as_bgr(frame_bgr), cv2.COLOR_BGR2GRAY)
        height, width = grey.shape
        small_width = max(1, round(width * settings.analysis_height / height))
        small = cv2.resize(grey, (small_width, settings.analysis_height), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (settings.blur_kernel, settings.blur_kernel), 0).astype(np.float32)
        if self._background is None or self._background.shape != small.shape:
            self._background = small  # first frame, or the camera's resolution changed
            self.last_motion_fraction = 0.0
            return False
        changed = cv2.threshold(cv2.absdiff(small, self._background), settings.pixel_threshold, 255,
                                cv2.THRESH_BINARY)[1].astype(np.uint8)
        if cv2.countNonZero(changed) > settings.lighting_change_fraction * changed.size:
            self._background = small
            self.last_motion_fraction = 0.0
            return False
        cv2.accumulateWeighted(small, self._background, settings.background_alpha)
        # Dilation joins the fragments of one moving object into one contour.
        changed = cv2.dilate(changed, None, iterations=2)
        contours, _ = cv2.findContours(changed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        largest = max((cv2.contourArea(contour) for contour in contours), default=0.0)
        self.last_motion_fraction = largest / changed.size
        return self.last_motion_fraction >= settings.min_area_fraction
