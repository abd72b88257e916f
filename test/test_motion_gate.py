"""Motion gate on synthetic scenes: static with noise and flicker, moving objects, lights."""

from __future__ import annotations

import numpy as np
import pytest

from kaiserslautern_vss.detection.motion import MotionGate, MotionGateError, MotionGateSettings

FRAME_S = 0.1
HEIGHT, WIDTH = 360, 480


def _scene(seed: int = 1) -> np.ndarray:
    """A textured, static background: smooth blobs, like pavement and walls."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, size=(HEIGHT // 20, WIDTH // 20, 3), dtype=np.uint8)
    return np.kron(coarse, np.ones((20, 20, 1), np.uint8))


def _camera_noise(frame: np.ndarray, rng: np.random.Generator, flicker: float) -> np.ndarray:
    """Sensor noise (sigma 4 grey levels) and a global brightness flicker."""
    noisy = frame.astype(np.float32) + rng.normal(0, 4, frame.shape) + flicker
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _with_box(frame: np.ndarray, x: int, y: int, size: int = 40) -> np.ndarray:
    moved = frame.copy()
    moved[y:y + size, x:x + size // 2] = 15  # a dark, person-sized object
    return moved


def test_static_scene_only_gets_forced_refreshes():
    gate = MotionGate(MotionGateSettings(forced_refresh_s=5.0))
    rng = np.random.default_rng(2)
    scene = _scene()
    decisions = [gate.needs_inference(_camera_noise(scene, rng, flicker=3 * np.sin(i / 3)), i * FRAME_S,
                                      tracks_alive=False)
                 for i in range(300)]
    assert np.flatnonzero(decisions).tolist() == [0, 50, 100, 150, 200, 250]
    assert (gate.frames, gate.inferences) == (300, 6)


def test_moving_object_keeps_inference_on_until_it_has_stopped():
    gate = MotionGate(MotionGateSettings(forced_refresh_s=60.0))
    rng = np.random.default_rng(3)
    scene = _scene()
    moving = [gate.needs_inference(_camera_noise(_with_box(scene, 10 + 8 * i, 150), rng, 0), i * FRAME_S,
                                   tracks_alive=False)
              for i in range(50)]
    assert all(moving[1:])
    # It stops: the background absorbs it and inference stops within a few seconds.
    stopped = [gate.needs_inference(_camera_noise(_with_box(scene, 10 + 8 * 49, 150), rng, 0),
                                    (50 + i) * FRAME_S, tracks_alive=False)
               for i in range(60)]
    assert not any(stopped[-20:])
    assert gate.inferences < gate.frames


def test_tiny_speckle_is_not_motion_but_alive_tracks_keep_inference_on():
    gate = MotionGate(MotionGateSettings(forced_refresh_s=60.0))
    scene = _scene()
    gate.needs_inference(scene, 0.0, tracks_alive=False)
    for i in range(1, 20):
        speckled = scene.copy()
        speckled[100 + i, 100:102] = 255  # two hot pixels moving: compression speckle
        assert not gate.needs_inference(speckled, i * FRAME_S, tracks_alive=False)
    assert gate.needs_inference(scene, 2.0, tracks_alive=True)


def test_lights_switching_on_is_not_motion():
    gate = MotionGate(MotionGateSettings(forced_refresh_s=60.0))
    scene = _scene()
    gate.needs_inference(scene, 0.0, tracks_alive=False)
    brighter = np.clip(scene.astype(np.int16) + 60, 0, 255).astype(np.uint8)
    assert not any(gate.needs_inference(brighter, i * FRAME_S, tracks_alive=False) for i in range(1, 10))
    # After re-learning the lit background, a real object is seen again.
    assert gate.needs_inference(_with_box(brighter, 200, 150), 1.0, tracks_alive=False)


def test_clock_going_backwards_forces_a_refresh():
    gate = MotionGate(MotionGateSettings(forced_refresh_s=5.0))
    scene = _scene()
    assert gate.needs_inference(scene, 100.0, tracks_alive=False)
    assert not gate.needs_inference(scene, 101.0, tracks_alive=False)
    assert gate.needs_inference(scene, 3.0, tracks_alive=False)


@pytest.mark.parametrize(('kwargs', 'message'), [
    (dict(min_area_fraction=0.0), r'min_area_fraction must be in \(0, 1\), got 0.0'),
    (dict(forced_refresh_s=0.0), 'forced_refresh_s must be > 0, got 0.0'),
    (dict(blur_kernel=4), 'blur_kernel must be an odd number >= 1, got 4'),
    (dict(background_alpha=0.0), r'background_alpha must be in \(0, 1\], got 0.0'),
    (dict(lighting_change_fraction=0.0001), r'lighting_change_fraction must be in \(min_area_fraction, 1\]'),
])
def test_invalid_settings_are_rejected(kwargs, message):
    with pytest.raises(MotionGateError, match=message):
        MotionGateSettings(**kwargs)
