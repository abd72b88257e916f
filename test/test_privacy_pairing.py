"""Pairing frames with their detections by stamp, and giving frames up (fail-closed input)."""

from __future__ import annotations

import pytest

from kaiserslautern_vss.privacy.frame_pairing import FramePairer, Unpaired

DEADLINE_S = 0.5


def outcomes(resolved) -> list[tuple[int, str | None, str | None]]:
    """(stamp, detections, reason) per resolved frame, for compact assertions."""
    return [(r.stamp_ns, r.detections, r.reason) for r in resolved]


@pytest.fixture
def pairer() -> FramePairer[str, str]:
    return FramePairer(DEADLINE_S, max_pending=3)


def test_frame_then_detections_pair(pairer):
    assert pairer.add_frame(10, 'f10', now_s=0.0) == []
    assert outcomes(pairer.add_detections(10, 'd10')) == [(10, 'd10', None)]
    assert pairer.waiting_frames == 0


def test_detections_then_frame_pair(pairer):
    assert pairer.add_detections(10, 'd10') == []
    assert outcomes(pairer.add_frame(10, 'f10', now_s=0.0)) == [(10, 'd10', None)]


def test_frames_the_detector_skipped_fail_when_a_later_answer_comes(pairer):
    for stamp in (10, 20, 30):
        pairer.add_frame(stamp, f'f{stamp}', now_s=0.0)
    assert outcomes(pairer.add_detections(30, 'd30')) == [
        (10, None, Unpaired.SKIPPED), (20, None, Unpaired.SKIPPED), (30, 'd30', None)]


def test_frame_older_than_waiting_detections_fails_at_once(pairer):
    pairer.add_detections(30, 'd30')
    assert outcomes(pairer.add_frame(20, 'f20', now_s=0.0)) == [(20, None, Unpaired.SKIPPED)]
    assert outcomes(pairer.add_frame(30, 'f30', now_s=0.0)) == [(30, 'd30', None)]


def test_frame_older_than_a_resolved_one_fails_at_once(pairer):
    pairer.add_frame(20, 'f20', now_s=0.0)
    pairer.add_detections(20, 'd20')
    assert outcomes(pairer.add_frame(10, 'f10', now_s=0.0)) == [(10, None, Unpaired.SKIPPED)]


def test_deadline_counts_from_arrival_and_keeps_younger_frames(pairer):
    pairer.add_frame(10, 'f10', now_s=1.0)
    pairer.add_frame(20, 'f20', now_s=1.3)
    assert pairer.expire(now_s=1.0 + DEADLINE_S - 0.01) == []
    assert outcomes(pairer.expire(now_s=1.0 + DEADLINE_S)) == [(10, None, Unpaired.DEADLINE)]
    assert pairer.waiting_frames == 1
    assert outcomes(pairer.expire(now_s=10.0)) == [(20, None, Unpaired.DEADLINE)]


def test_detections_after_the_deadline_are_counted_late_and_dropped(pairer):
    pairer.add_frame(10, 'f10', now_s=0.0)
    pairer.expire(now_s=DEADLINE_S)
    assert pairer.add_detections(10, 'd10') == []
    assert pairer.late_detections == 1
    # a late answer must not pair with a later frame of another stamp
    pairer.add_frame(20, 'f20', now_s=1.0)
    assert outcomes(pairer.expire(now_s=1.0 + DEADLINE_S)) == [(20, None, Unpaired.DEADLINE)]


def test_waiting_frames_are_bounded_oldest_given_up_first(pairer):
    resolved = []
    for stamp in range(1, 6):
        resolved += pairer.add_frame(stamp, f'f{stamp}', now_s=0.0)
    assert outcomes(resolved) == [(1, None, Unpaired.OVERFLOW), (2, None, Unpaired.OVERFLOW)]
    assert pairer.waiting_frames == 3


def test_waiting_detections_are_bounded_and_stale_ones_forgotten(pairer):
    for stamp in range(1, 6):
        pairer.add_detections(stamp, f'd{stamp}')
    # d1, d2 fell out of the bounded queue; their frames are older than d5 and fail anyway
    assert outcomes(pairer.add_frame(1, 'f1', now_s=0.0)) == [(1, None, Unpaired.SKIPPED)]
    assert outcomes(pairer.add_frame(5, 'f5', now_s=0.0)) == [(5, 'd5', None)]
    # d3, d4 were dropped when frame 5 paired: their frames can no longer come in order
    assert outcomes(pairer.add_frame(4, 'f4', now_s=0.0)) == [(4, None, Unpaired.SKIPPED)]


def test_every_frame_comes_out_exactly_once_in_a_random_interleaving():
    import random
    rng = random.Random(7)
    pairer: FramePairer[int, int] = FramePairer(DEADLINE_S, max_pending=5)
    seen: list[int] = []
    now = 0.0
    stamps = list(range(200))
    answered = [s for s in stamps if rng.random() > 0.2]  # the detector skips a fifth
    events = [('frame', s, s * 0.1 + rng.uniform(0, 0.05)) for s in stamps]
    events += [('det', s, s * 0.1 + rng.uniform(0.0, 0.7)) for s in answered]
    for kind, stamp, at in sorted(events, key=lambda e: e[2]):
        now = at
        seen += [r.stamp_ns for r in pairer.expire(now)]
        resolved = (pairer.add_frame(stamp, stamp, now) if kind == 'frame'
                    else pairer.add_detections(stamp, stamp))
        for r in resolved:
            assert r.detections is None or r.detections == r.frame  # never paired with another frame's
        seen += [r.stamp_ns for r in resolved]
    seen += [r.stamp_ns for r in pairer.expire(now + DEADLINE_S)]
    assert sorted(seen) == stamps


@pytest.mark.parametrize('deadline, pending, message', [
    (0.0, 3, 'deadline_s must be positive'), (0.5, 0, 'max_pending must be at least 1')])
def test_bad_pairer_settings_are_refused(deadline, pending, message):
    with pytest.raises(ValueError, match=message):
        FramePairer(deadline, pending)
