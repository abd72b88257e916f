"""Zones (polygon containment, foot points) and the pre-event ring buffer."""

import numpy as np
import pytest

from kaiserslautern_vss.events.ring_buffer import BufferedMessage, RingBuffer, RingBufferConfigError
from kaiserslautern_vss.events.zones import Zone, ZoneConfigError, foot_points

SQUARE = [[100, 100], [300, 100], [300, 300], [100, 300]]
# A "U" shape: concave, the notch (x 150..250, y 100..250) is outside.
U_SHAPE = [[100, 100], [150, 100], [150, 250], [250, 250], [250, 100], [300, 100],
           [300, 300], [100, 300]]


def test_square_contains_inside_and_not_outside():
    zone = Zone('door', np.array(SQUARE))
    points = np.array([[200, 200], [101, 299], [50, 200], [200, 350], [301, 150]])
    assert zone.contains(points).tolist() == [True, True, False, False, False]


def test_concave_polygon_excludes_notch():
    zone = Zone('u', np.array(U_SHAPE))
    points = np.array([[200, 200], [200, 280], [120, 150], [280, 150]])
    assert zone.contains(points).tolist() == [False, True, True, True]


def test_contains_matches_opencv_on_random_points():
    cv2 = pytest.importorskip('cv2')
    zone = Zone('u', np.array(U_SHAPE))
    rng = np.random.default_rng(7)
    points = rng.uniform(0, 400, size=(500, 2))
    contour = np.array(U_SHAPE, np.float32).reshape(-1, 1, 2)
    expected = [cv2.pointPolygonTest(contour, (float(x), float(y)), False) > 0 for x, y in points]
    on_edge = [cv2.pointPolygonTest(contour, (float(x), float(y)), False) == 0 for x, y in points]
    got = zone.contains(points)
    assert [g for g, e in zip(got, on_edge) if not e] == [x for x, e in zip(expected, on_edge) if not e]


def test_contains_empty_points():
    assert Zone('door', np.array(SQUARE)).contains(np.zeros((0, 2))).shape == (0,)


@pytest.mark.parametrize('polygon, message', [
    ([[0, 0], [1, 1]], 'at least 3 points'),
    ([[0, 0], [1, 1], [2, 2]], 'degenerate'),
    ([[0, 0], [1, np.nan], [2, 0]], 'non-finite'),
    ([[0, 0, 0], [1, 1, 1], [2, 0, 0]], 'shape (K, 2)'),
    ([['a', 'b'], ['c', 'd'], ['e', 'f']], 'not numeric'),
])
def test_invalid_polygons_are_rejected(polygon, message):
    with pytest.raises(ZoneConfigError, match='zone .door.') as error:
        Zone('door', polygon)
    assert message in str(error.value)


def test_zone_polygon_is_read_only():
    zone = Zone('door', SQUARE)
    with pytest.raises(ValueError):
        zone.polygon[0, 0] = 5


def test_foot_points_are_bottom_centre():
    boxes = np.array([[10, 20, 30, 100], [0, 0, 4, 4]], np.float32)
    assert foot_points(boxes).tolist() == [[20, 100], [2, 4]]
    assert foot_points(np.zeros((0, 4))).shape == (0, 2)


def message(stamp_s: float, size: int = 10, topic: str = '/cam01/image') -> BufferedMessage:
    return BufferedMessage(topic, int(stamp_s * 1e9), bytes(size))


def test_buffer_evicts_by_age_of_newest_stamp():
    buffer = RingBuffer(max_seconds=2.0, max_bytes=10_000)
    for i in range(50):
        buffer.push(message(i * 0.1))
    stamps = [m.stamp_ns for m in buffer.since(0)]
    assert stamps[0] == int(2.9 * 1e9) and stamps[-1] == int(4.9 * 1e9)
    assert len(buffer) == 21 and buffer.nbytes == 210


def test_buffer_evicts_by_bytes():
    buffer = RingBuffer(max_seconds=100.0, max_bytes=55)
    for i in range(10):
        buffer.push(message(i, size=10))
    assert len(buffer) == 5 and buffer.nbytes == 50
    assert [m.stamp_ns for m in buffer.since(0)] == [int(i * 1e9) for i in range(5, 10)]
    buffer.push(message(11, size=60))  # larger than the whole bound: not kept
    assert len(buffer) == 0 and buffer.nbytes == 0


def test_since_returns_stamp_order_and_filters():
    buffer = RingBuffer(max_seconds=10.0, max_bytes=10_000)
    for stamp in (1.0, 1.2, 1.1, 1.5):
        buffer.push(message(stamp))
    assert [m.stamp_ns for m in buffer.since(int(1.1e9))] == [int(1.1e9), int(1.2e9), int(1.5e9)]


def test_clear():
    buffer = RingBuffer(max_seconds=1.0, max_bytes=100)
    buffer.push(message(1.0))
    buffer.clear()
    assert len(buffer) == 0 and buffer.nbytes == 0 and buffer.since(0) == []


@pytest.mark.parametrize('seconds, nbytes', [(0, 10), (-1, 10), (float('inf'), 10), (1, 0), (1, 1.5)])
def test_buffer_rejects_bad_bounds(seconds, nbytes):
    with pytest.raises(RingBufferConfigError):
        RingBuffer(seconds, nbytes)
