"""VideoFileSource and FramePacer on the real vtest.avi and on small clips written here."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from kaiserslautern_vss.camera.pacing import FramePacer
from kaiserslautern_vss.camera.sources import (EndOfStream, SourceConfigError, SourceError, SourceSettings,
                                               VideoFileSource, open_source)

SHARED = Path(__file__).resolve().parents[1] / '..' / 'shared'
VTEST = SHARED / 'data' / 'vtest.avi'


@pytest.fixture(scope='module')
def vtest() -> Path:
    if not VTEST.is_file():
        pytest.skip(f'{VTEST} not found: the shared test data (../shared beside the repository) is absent')
    return VTEST


@pytest.fixture
def short_clip(tmp_path: Path) -> Path:
    """A 5-frame 64x48 MJPG clip whose frame i is filled with grey level 40 * i."""
    path = tmp_path / 'short.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25.0, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


def read_frames(source, count: int, timeout_s: float = 2.0) -> list:
    frames = []
    deadline = time.monotonic() + 30.0
    while len(frames) < count and time.monotonic() < deadline:
        frame = source.read(timeout_s)
        if frame is not None:
            frames.append(frame)
    return frames


def test_frames_have_native_size_and_increasing_stamps(vtest: Path) -> None:
    source = VideoFileSource(vtest, realtime=False)
    source.open()
    frames = read_frames(source, 10)
    source.close()
    assert source.fps == pytest.approx(10.0)
    assert [f.image.shape for f in frames] == [(576, 768, 3)] * 10
    assert all(f.image.dtype == np.uint8 for f in frames)
    assert [f.sequence for f in frames] == list(range(10))
    stamps = [f.capture_time_ns for f in frames]
    assert stamps == sorted(stamps) and len(set(stamps)) == 10
    assert abs(stamps[0] - time.time_ns()) < 5e9


def test_realtime_pacing_is_about_file_rate(vtest: Path) -> None:
    source = open_source(str(vtest), SourceSettings(realtime=True))
    source.open()
    start = time.monotonic()
    frames = read_frames(source, 16)
    elapsed = time.monotonic() - start
    source.close()
    # 16 frames at 10 fps: the first at once, the last 1.5 s later.
    assert len(frames) == 16
    assert 1.35 < elapsed < 2.5


def test_realtime_read_returns_none_when_next_frame_not_due_within_timeout(vtest: Path) -> None:
    source = VideoFileSource(vtest, realtime=True)
    source.open()
    assert source.read(1.0) is not None
    start = time.monotonic()
    assert source.read(0.02) is None
    assert time.monotonic() - start < 0.09
    assert source.read(0.2) is not None  # due 0.1 s after the first
    source.close()


def test_fast_mode_is_much_faster_than_realtime_and_ends(vtest: Path) -> None:
    source = open_source(f'file://{vtest.resolve()}', SourceSettings(realtime=False))
    source.open()
    start = time.monotonic()
    count = 0
    with pytest.raises(EndOfStream, match='after 795 frames'):
        while True:
            if source.read(1.0) is not None:
                count += 1
    elapsed = time.monotonic() - start
    source.close()
    assert count == 795
    assert count / elapsed > 40, f'only {count / elapsed:.0f} frames/s decoding as fast as possible'


def test_loop_rewinds_and_end_raises(short_clip: Path) -> None:
    looping = VideoFileSource(short_clip, realtime=False, loop=True)
    looping.open()
    levels = [round(f.image.mean() / 40) for f in read_frames(looping, 12)]
    looping.close()
    assert levels[:5] == levels[5:10] == [0, 1, 2, 3, 4]
    assert levels[10:] == [0, 1]

    finite = VideoFileSource(short_clip, realtime=False)
    finite.open()
    assert len(read_frames(finite, 5)) == 5
    with pytest.raises(EndOfStream):
        finite.read(1.0)
    finite.close()
    finite.close()


def test_max_size_scales_down_keeping_aspect(vtest: Path) -> None:
    source = open_source(str(vtest), SourceSettings(realtime=False, max_width=384, max_height=1000))
    source.open()
    assert source.read(1.0).image.shape == (288, 384, 3)
    source.close()


def test_missing_and_broken_files_raise_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match='video file not found: .*nothing.mp4'):
        VideoFileSource(tmp_path / 'nothing.mp4').open()
    garbage = tmp_path / 'garbage.mp4'
    garbage.write_bytes(b'not a video' * 100)
    with pytest.raises(SourceError, match='cannot decode video file'):
        VideoFileSource(garbage).open()
    with pytest.raises(SourceError, match='is not open'):
        VideoFileSource(garbage).read(0.1)


def test_open_source_rejects_unknown_schemes() -> None:
    with pytest.raises(SourceConfigError, match=r'unsupported source URL ftp://user:\*\*\*@host/x'):
        open_source('ftp://user:secret@host/x', SourceSettings())
    with pytest.raises(SourceConfigError, match='empty source URL'):
        open_source('', SourceSettings())
    with pytest.raises(SourceConfigError, match="rtsp_transport must be one of"):
        SourceSettings(rtsp_transport='http')


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_pacer_does_not_drift_and_does_not_sleep_when_behind() -> None:
    clock = FakeClock()
    pacer = FramePacer(10.0, clock=clock, sleep=clock.sleep)
    assert pacer.wait_next(1.0)  # frame 0 at once
    clock.now += 0.03  # work after frame 0
    assert pacer.wait_next(1.0)
    assert clock.sleeps == [0.07]  # due at start + 0.1, not 0.1 after the work
    clock.now += 0.35  # consumer stalls for 3.5 periods
    for _ in range(3):
        assert pacer.wait_next(1.0)  # frames 2, 3, 4 overdue: no sleep
    assert clock.sleeps == [0.07]
    assert not pacer.wait_next(0.01)  # frame 5 due at +0.5, now +0.45
    assert clock.sleeps == [0.07, 0.01]
    assert pacer.wait_next(1.0)
    assert clock.now == pytest.approx(100.5)
