"""SupervisedCamera with local sources (test pattern, image directory, failing factories); dir/testpattern URLs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from kaiserslautern_vss.camera.privacy_zones import PrivacyZones
from kaiserslautern_vss.camera.sources import (EndOfStream, ImageDirectorySource, SourceConfigError, SourceError,
                                               SourceSettings, TestPatternSource, open_source)
from kaiserslautern_vss.camera.supervisor import SupervisedCamera


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_test_pattern_url_and_moving_figure() -> None:
    source = open_source('testpattern://?width=320&height=240&fps=50', SourceSettings(realtime=False))
    assert isinstance(source, TestPatternSource)
    source.open()
    frames = [source.read(1.0) for _ in range(121)]
    source.close()
    first, later = frames[100], frames[120]  # 2.0 s and 2.4 s into the walk: the figure is in the picture
    assert first.image.shape == (240, 320, 3) and later.sequence == 120
    assert (cv2.absdiff(first.image, later.image) > 30).any(axis=2).sum() > 200  # the figure moved
    with pytest.raises(SourceConfigError, match="unknown parameter 'depth'"):
        open_source('testpattern://?depth=3', SourceSettings())
    with pytest.raises(SourceConfigError, match='needs width, height >= 64'):
        open_source('testpattern://?width=10', SourceSettings())


def test_image_directory_in_name_order_skipping_unreadable(tmp_path: Path) -> None:
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f'img{i}.png'), np.full((20, 30, 3), 50 * i, np.uint8))
    (tmp_path / 'img1b.jpg').write_bytes(b'not an image')
    (tmp_path / 'notes.txt').write_text('ignored')
    source = open_source(f'dir://{tmp_path}?fps=100', SourceSettings(loop=False))
    assert isinstance(source, ImageDirectorySource)
    source.open()
    levels = [int(source.read(1.0).image[0, 0, 0]) for _ in range(3)]
    with pytest.raises(EndOfStream):
        source.read(1.0)
    assert levels == [0, 50, 100] and source.counters().corrupt_frames == 1
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SourceError, match='no images'):
        ImageDirectorySource(tmp_path / 'empty').open()


def test_supervisor_masks_renumbers_and_counts_fps() -> None:
    zones = PrivacyZones([np.array([[0, 0], [100, 0], [100, 100], [0, 100]])], (320, 240), fill=(0, 255, 0))
    camera = SupervisedCamera(lambda: TestPatternSource(320, 240, fps=40), privacy_zones=zones)
    try:
        assert wait_until(lambda: camera.stats().frames >= 60, 5.0)
        frame = camera.wait_latest(1.0)
        stats = camera.stats()
    finally:
        camera.stop()
    assert (frame.image[:100, :100] == (0, 255, 0)).all()
    assert 30 < stats.fps < 50 and stats.state == 'streaming'
    assert stats.dropped >= 50  # nobody took the frames: each was replaced by a newer one
    assert camera.stats().state == 'stopped'
    frames_at_stop = camera.stats().frames
    assert not wait_until(lambda: camera.stats().frames > frames_at_stop, 0.3)


class ExplodingSource(TestPatternSource):
    """A source with a bug: fails with an unexpected exception type after a few frames."""

    def read(self, timeout_s: float):
        frame = super().read(timeout_s)
        if frame is not None and frame.sequence == 5:
            raise KeyError('decoder bug')
        return frame


def test_supervisor_survives_any_error_and_ends_with_finite_sources(tmp_path: Path) -> None:
    attempts = []

    def flaky_factory():
        attempts.append(1)
        if len(attempts) % 2:
            raise OSError('factory failed')
        return ExplodingSource(64, 64, fps=100)

    camera = SupervisedCamera(flaky_factory, stall_timeout_s=1.0, backoff_initial_s=0.01, backoff_max_s=0.05)
    try:
        assert wait_until(lambda: camera.stats().reconnects >= 3, 5.0)
    finally:
        camera.stop()
    assert camera.stats().failures >= 6 and camera.stats().frames >= 15
    assert camera.stats().last_error in ("'decoder bug'", 'factory failed')

    cv2.imwrite(str(tmp_path / 'only.png'), np.zeros((8, 8, 3), np.uint8))
    finite = SupervisedCamera(lambda: ImageDirectorySource(tmp_path, realtime=False))
    assert wait_until(lambda: finite.stats().state == 'ended', 5.0)
    assert finite.latest() is not None and finite.stats().frames == 1
    finite.stop()
