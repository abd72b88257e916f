"""MJPEG over HTTP against a real local server: parsing, faults, auth, outages and stalls under supervision."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from servers.mjpeg_server import MjpegServer

from kaiserslautern_vss.camera.mjpeg import MjpegStreamParser
from kaiserslautern_vss.camera.source_types import AuthenticationError, SourceConfigError
from kaiserslautern_vss.camera.sources import (HttpMjpegSource, HttpSnapshotSource, SourceError, SourceSettings,
                                               open_source)
from kaiserslautern_vss.camera.supervisor import SupervisedCamera

SHARED = Path(__file__).resolve().parents[1] / '..' / 'shared'
VTEST = SHARED / 'data' / 'vtest.avi'


@pytest.fixture(scope='module')
def jpegs() -> list[bytes]:
    if not VTEST.is_file():
        pytest.skip(f'{VTEST} not found: the shared test data (../shared beside the repository) is absent')
    capture = cv2.VideoCapture(str(VTEST))
    encoded = []
    for _ in range(20):
        ok, image = capture.read()
        assert ok
        encoded.append(cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 75])[1].tobytes())
    capture.release()
    return encoded


@pytest.fixture
def server_factory():
    servers: list[MjpegServer] = []

    def make(jpegs: list[bytes], **options) -> MjpegServer:
        server = MjpegServer(jpegs, **options)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def read_until_error(source, limit_s: float = 10.0) -> list:
    frames = []
    deadline = time.monotonic() + limit_s
    with pytest.raises(SourceError, match='server closed the stream'):
        while time.monotonic() < deadline:
            frame = source.read(1.0)
            if frame is not None:
                frames.append(frame)
    return frames


def test_parser_handles_thumbnails_split_soi_and_byte_wise_feeding(jpegs: list[bytes]) -> None:
    # An EXIF-like APP1 segment holding a complete thumbnail JPEG: its EOI must not end the frame.
    thumbnail = cv2.imencode('.jpg', np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    app1 = b'\xff\xe1' + (len(thumbnail) + 2).to_bytes(2, 'big') + thumbnail
    with_thumbnail = jpegs[0][:2] + app1 + jpegs[0][2:]
    stream = b''.join(b'--b\r\nContent-Type: image/jpeg\r\n\r\n' + j + b'\r\n' for j in [with_thumbnail, jpegs[1]])
    parser = MjpegStreamParser(b'b')
    out = []
    for i in range(0, len(stream), 3):
        out += parser.feed(stream[i:i + 3])
    assert out == [with_thumbnail, jpegs[1]]
    assert parser.garbage_bytes == 0 and parser.corrupt_parts == 0
    assert cv2.imdecode(np.frombuffer(out[0], np.uint8), cv2.IMREAD_COLOR).shape == (576, 768, 3)


def test_stream_frames_arrive_in_order_with_native_size(jpegs: list[bytes], server_factory) -> None:
    server = server_factory(jpegs, fps=50, frame_limit=30)
    source = open_source(server.url, SourceSettings())
    assert isinstance(source, HttpMjpegSource)
    source.open()
    frames = read_until_error(source)
    counters = source.counters()
    source.close()
    assert all(f.image.shape == (576, 768, 3) for f in frames)
    stamps = [f.capture_time_ns for f in frames]
    assert stamps == sorted(stamps) and [f.sequence for f in frames] == list(range(len(frames)))
    assert counters.frames + counters.dropped_frames == 30
    assert counters.frames >= 25  # decoding keeps up with 50 fps; only the odd frame is replaced
    assert counters.garbage_bytes == 0 and counters.corrupt_frames == 0


def test_garbage_and_truncated_parts_are_skipped_and_counted(jpegs: list[bytes], server_factory) -> None:
    server = server_factory(jpegs, fps=50, frame_limit=40, garbage_every=3, truncate_every=7)
    source = HttpMjpegSource(server.url, SourceSettings())
    source.open()
    frames = read_until_error(source)
    counters = source.counters()
    source.close()
    assert server.truncated_sent == 5 and server.garbage_sent > 0
    assert counters.corrupt_frames == 5
    assert counters.garbage_bytes >= server.garbage_sent
    assert counters.frames + counters.dropped_frames == 35
    assert all(f.image.shape == (576, 768, 3) for f in frames)


def test_max_fps_skips_decoding_and_max_size_decodes_reduced(jpegs: list[bytes], server_factory) -> None:
    server = server_factory(jpegs, fps=50, frame_limit=50)
    source = HttpMjpegSource(server.url, SourceSettings(max_fps=10, max_width=384))
    source.open()
    frames = read_until_error(source)
    counters = source.counters()
    source.close()
    assert 7 <= counters.frames + counters.dropped_frames <= 12  # 1 s of stream at 10 fps
    assert counters.skipped_frames >= 38
    assert {f.image.shape for f in frames} == {(288, 384, 3)}


def test_digest_auth_with_password_from_env(jpegs: list[bytes], server_factory,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    server = server_factory(jpegs, fps=50, frame_limit=5, credentials=('viewer', 's3cret'), auth='digest')
    monkeypatch.setenv('VSS_TEST_MJPEG_PASSWORD', 's3cret')
    source = HttpMjpegSource(server.url, SourceSettings(username='viewer', password_env='VSS_TEST_MJPEG_PASSWORD'))
    source.open()
    assert len(read_until_error(source)) >= 1
    source.close()
    assert 'Digest login' in source.describe()
    monkeypatch.setenv('VSS_TEST_MJPEG_PASSWORD', 'wrong')
    with pytest.raises(AuthenticationError, match='rejected user .viewer.') as error:
        HttpMjpegSource(server.url.replace('//', '//viewer:inline@'),
                        SourceSettings(username='viewer', password_env='VSS_TEST_MJPEG_PASSWORD')).open()
    assert 'inline' not in str(error.value) and 'wrong' not in str(error.value)
    assert 'http://127.0.0.1' in str(error.value)


def test_mobotix_faststream_full_jpeg_and_current_jpg(jpegs: list[bytes], server_factory) -> None:
    server = server_factory(jpegs, fps=50, frame_limit=10)
    stream = open_source(server.url_for('/control/faststream.jpg?stream=full&needlength&fps=50'), SourceSettings())
    stream.open()
    assert len(read_until_error(stream)) >= 5
    stream.close()
    snapshot = open_source(server.url_for('/record/current.jpg'), SourceSettings(snapshot_rate_hz=10))
    assert isinstance(snapshot, HttpSnapshotSource)
    snapshot.open()
    assert snapshot.read(2.0).image.shape == (576, 768, 3)
    snapshot.close()


def test_mxpeg_is_recognised_with_the_fix_named(jpegs: list[bytes], server_factory) -> None:
    server = server_factory(jpegs)
    with pytest.raises(SourceConfigError, match=r'would deliver MxPEG.*stream=full&needlength'):
        open_source(server.url_for('/control/faststream.jpg?fps=10'), SourceSettings())
    with pytest.raises(SourceConfigError, match='is a snapshot: set snapshot_rate_hz'):
        open_source(server.url_for('/record/current.jpg'), SourceSettings())
    # A camera (or a proxy in front of it) answering MxPEG at run time: named, with the fix.
    source = HttpMjpegSource(server.url_for('/control/faststream.jpg?fps=10'), SourceSettings())
    with pytest.raises(SourceError, match=r'answers with MxPEG .*faststream.jpg\?stream=full&needlength&fps='):
        source.open()


def test_snapshot_polling_is_paced(jpegs: list[bytes], server_factory) -> None:
    server = server_factory(jpegs)
    source = open_source(server.url.replace('/mjpeg', '/snapshot.jpg'), SourceSettings(snapshot_rate_hz=20))
    assert isinstance(source, HttpSnapshotSource)
    source.open()
    start = time.monotonic()
    frames = [f for f in (source.read(1.0) for _ in range(11)) if f is not None]
    elapsed = time.monotonic() - start
    source.close()
    assert len(frames) == 11 and frames[-1].image.shape == (576, 768, 3)
    assert 0.4 < elapsed < 2.0


def test_connection_refused_and_not_mjpeg_raise_source_error(jpegs: list[bytes], server_factory) -> None:
    server = server_factory(jpegs)
    with pytest.raises(SourceError, match='not an MJPEG stream'):
        HttpMjpegSource(server.url.replace('/mjpeg', '/snapshot.jpg'), SourceSettings()).open()
    port = server.port
    server.stop()
    with pytest.raises(SourceError, match='cannot connect'):
        HttpMjpegSource(f'http://127.0.0.1:{port}/mjpeg', SourceSettings(open_timeout_s=1)).open()


def test_supervisor_survives_20_outages_and_reconnects_within_2_s(jpegs: list[bytes], server_factory,
                                                                  record_property) -> None:
    server = server_factory(jpegs, fps=25)
    camera = SupervisedCamera(lambda: HttpMjpegSource(server.url, SourceSettings(open_timeout_s=2)),
                              stall_timeout_s=2.0, backoff_initial_s=0.25, backoff_max_s=30.0, name='cam-test')
    detections, reconnects = [], []
    try:
        assert wait_until(lambda: camera.stats().state == 'streaming' and camera.stats().frames > 3, 5.0)
        for outage in range(20):
            camera.latest()
            stopped = time.monotonic()
            server.stop()
            assert wait_until(lambda: camera.stats().state != 'streaming', 2.0), f'outage {outage} not detected'
            detections.append(time.monotonic() - stopped)
            # The last outage outlasts several backoff doublings (0.25, 0.5, 1, 2 s, then a 4 s wait).
            down_s = 4.0 if outage == 19 else 0.2 + 0.05 * (outage % 5)
            wait_until(lambda: False, down_s, step_s=0.05)
            assert camera.stats().state in ('backoff', 'connecting')
            restarted_ns = time.time_ns()
            server.start()
            assert wait_until(lambda: (f := camera.latest()) is not None and f.capture_time_ns > restarted_ns, 2.0), \
                f'no frame within 2 s after the server came back (outage {outage})'
            reconnects.append((time.time_ns() - restarted_ns) / 1e9)
        stats = camera.stats()
    finally:
        camera.stop()
    assert stats.reconnects == 20 and stats.failures >= 20
    assert stats.state == 'streaming' and 'http://127.0.0.1' in stats.last_error
    record_property('reconnect_s_p50', statistics.median(reconnects))
    record_property('reconnect_s_max', max(reconnects))
    record_property('detect_s_max', max(detections))
    print(f'\nreconnect after outage: p50 {statistics.median(reconnects):.3f} s, max {max(reconnects):.3f} s, '
          f'last (long) outage {reconnects[-1]:.3f} s; outage detected within max {max(detections):.3f} s')


def test_supervisor_detects_a_stall_and_recovers(jpegs: list[bytes], server_factory) -> None:
    server = server_factory(jpegs, fps=25)
    camera = SupervisedCamera(lambda: HttpMjpegSource(server.url, SourceSettings(open_timeout_s=2)),
                              stall_timeout_s=0.8, backoff_initial_s=0.2, backoff_max_s=1.0)
    try:
        assert wait_until(lambda: camera.stats().frames > 3, 5.0)
        server.freeze()
        assert wait_until(lambda: camera.stats().state in ('stalled', 'backoff', 'connecting'), 2.0)
        assert wait_until(lambda: 'stalled: no frame for' in camera.stats().last_error, 2.0)
        server.freeze(False)
        frames_before = camera.stats().frames
        assert wait_until(lambda: camera.stats().frames > frames_before + 5, 5.0)
        assert camera.stats().reconnects >= 1 and camera.stats().state == 'streaming'
    finally:
        camera.stop()
    assert camera.stats().state == 'stopped'
