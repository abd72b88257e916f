"""Each behaviour cue on synthetic scenes: what must score (strikes, a fall, a person lying, a
sudden run after a fall, blows at a parked car) and the look-alikes that must stay low
(hugging, greeting, dancing, walking together, running for a bus, children playing)."""

import math

import pytest
from behaviour_scenes import Figure, peak, run, scene

from kaiserslautern_vss.behaviour.cues import LONE_RUN_SCORE
from kaiserslautern_vss.behaviour.types import (
    ASSAULT, CUE_KINDS, FLEEING, PERSON_DOWN, VEHICLE_TAMPERING, BehaviourSettings)

#: the recommended rule thresholds (docs/BEHAVIOUR.md)
THRESHOLD = {ASSAULT: 0.4, PERSON_DOWN: 0.7, FLEEING: 0.7, VEHICLE_TAMPERING: 0.6}
H = 120.0  # body height in pixels
CONTACT_X = 300 + 0.4 * H + 4  # second person's centre, boxes 4 px apart

DOWN, LEFT_DOWN = (0.05, 0.28), (-0.05, 0.28)


def fight(t, i):
    """Two people in contact trading blows every 0.2 s, flung wide and over their heads beyond
    their boxes, bodies lurching."""
    lurch = 6 * (-1) ** i
    swing = round(t / 0.2) % 2
    return [Figure(1, 300 + lurch, 300, H, reach=[(-0.6, -0.2) if swing else LEFT_DOWN,
                                                  DOWN if swing else (0.1, -0.45)]),
            Figure(2, CONTACT_X + lurch, 300, H, reach=[(-0.1, -0.45) if swing else LEFT_DOWN,
                                                        DOWN if swing else (0.6, -0.2)])]


@pytest.mark.parametrize('rate_hz', [5.0, 10.0])
def test_strikes_in_contact_score_assault_at_any_rate(rate_hz):
    results = run(scene(rate_hz, 3.0, fight))
    assault = max((c for r in results for c in r.cues if c.kind == ASSAULT), key=lambda c: c.score)
    assert assault.score >= THRESHOLD[ASSAULT]
    assert set(assault.track_ids) == {1, 2}
    assert assault.evidence['unexplained_motion_share'] > 0 and assault.evidence['people'] == 2
    assert assault.evidence['strikes'] >= 2


def test_every_frame_scores_every_kind_in_order_with_poses():
    results = run(scene(5.0, 1.0, fight))
    for result in results:
        assert tuple(cue.kind for cue in result.cues) == CUE_KINDS and result.pose_cues
        assert all(0.0 <= cue.score <= 1.0 for cue in result.cues)
    assert any(result.poses for result in results)


def hugging(t, i):
    return [Figure(1, 300, 300, H, reach=[LEFT_DOWN, (0.3, 0.1)]),
            Figure(2, 300 + 0.4 * H - 10, 300, H, reach=[(-0.3, 0.1), DOWN])]


def greeting(t, i):
    """Two people walk up to each other, shake hands for half a second, walk on."""
    meet = 300 + 0.2 * H + 2
    step = 0.8 * H * abs(t - 1.5)
    hand = (0.2, 0.2 + 0.05 * (i % 2))
    return [Figure(1, meet - 0.2 * H - 2 - step, 300, H, reach=[LEFT_DOWN, hand]),
            Figure(2, meet + 0.2 * H + 2 + step, 300, H, reach=[(-hand[0], hand[1]), DOWN])]


def dancing(t, i):
    """Two dancers a body height and a half apart, arms swinging within their own boxes."""
    swing = 0.15 * math.sin(2 * math.pi * 1.5 * t)
    return [Figure(1, 250, 300, H, reach=[(-0.1 + swing, 0.1), (0.1 - swing, 0.1)]),
            Figure(2, 250 + 1.9 * H, 300, H, reach=[(-0.1 - swing, 0.1), (0.1 + swing, 0.1)])]


def walking_together(t, i):
    x = 100 + 0.8 * H * t
    return [Figure(1, x, 300, H), Figure(2, x + 0.4 * H + 6, 302, H)]


def children_playing(t, i):
    """Two small children chasing round each other, touching now and then."""
    h = 50.0
    return [Figure(1, 300 + 60 * math.sin(2.0 * t), 300, h), Figure(2, 300 + 60 * math.sin(2.0 * t + 0.6), 300, h)]


def running_for_the_bus(t, i):
    return [Figure(1, 100 + (0 if t < 1.0 else 3.0 * H * (t - 1.0)), 300, H)]


@pytest.mark.parametrize('look_alike', [hugging, greeting, dancing, walking_together, children_playing,
                                        running_for_the_bus])
@pytest.mark.parametrize('rate_hz', [5.0, 10.0])
def test_look_alikes_stay_below_the_assault_threshold(look_alike, rate_hz):
    results = run(scene(rate_hz, 3.0, look_alike))
    assert peak(results, ASSAULT) < THRESHOLD[ASSAULT]
    assert peak(results, PERSON_DOWN) < THRESHOLD[PERSON_DOWN]
    assert peak(results, VEHICLE_TAMPERING) == 0.0


def test_running_for_the_bus_alone_is_a_run_not_fleeing():
    results = run(scene(5.0, 3.0, running_for_the_bus), poses=False)
    assert 0.2 < peak(results, FLEEING) <= LONE_RUN_SCORE < THRESHOLD[FLEEING]


def fall(t, i):
    """Upright for a second, down within 0.4 s, then lying still."""
    lying = min(1.0, max(0.0, (t - 1.0) / 0.4))
    height = H - lying * (H - 0.35 * H)
    return [Figure(1, 300, 300, height, aspect=0.4 * H / height if lying < 1 else 2.6)]


@pytest.mark.parametrize('poses', [True, False])
def test_fall_scores_person_down_with_or_without_poses(poses):
    results = run(scene(5.0, 3.0, fall), poses=poses)
    assert peak(results[:5], PERSON_DOWN) == 0.0  # still upright
    down = [c for c in results[-1].cues if c.kind == PERSON_DOWN][0]
    assert down.score >= THRESHOLD[PERSON_DOWN] and down.track_ids == (1,)
    assert down.evidence['fall_seen'] == 1.0


def test_lying_still_rises_to_full_after_the_configured_time():
    settings = BehaviourSettings(lying_still_s=2.0)
    results = run(scene(5.0, 3.0, lambda t, i: [Figure(1, 300, 300, 0.35 * H, aspect=2.6)]),
                  settings, poses=False)
    scores = [c.score for r in results for c in r.cues if c.kind == PERSON_DOWN]
    assert scores[2] < 0.5 and scores[-1] == 1.0  # no fall seen: only lying time counts


def test_crouching_is_not_down():
    results = run(scene(5.0, 3.0, lambda t, i: [Figure(1, 300, 300, H if t < 1 else 0.6 * H,
                                                       aspect=0.4 if t < 1 else 0.7)]), poses=False)
    assert peak(results, PERSON_DOWN) == 0.0


def run_after_a_fall(t, i):
    """Someone falls; the person next to them runs off a second later."""
    runner = Figure(2, 300 + 0.5 * H + (0 if t < 2.0 else 3.0 * H * (t - 2.0)), 300, H)
    return fall(t, i) + [runner]


def test_sudden_run_near_a_fall_is_fleeing():
    results = run(scene(5.0, 3.0, run_after_a_fall), poses=False)
    fleeing = max((c for r in results for c in r.cues if c.kind == FLEEING), key=lambda c: c.score)
    assert fleeing.score >= THRESHOLD[FLEEING] and fleeing.track_ids == (2,)
    assert fleeing.evidence['near_other_cue'] == 1.0


def test_walking_is_no_fleeing():
    assert peak(run(scene(5.0, 4.0, walking_together), poses=False), FLEEING) < 0.1


PARKED = Figure(50, 420, 300, 90, aspect=2.0, label='car')
STRIKE, RETRACT = (0.75, 0.0), (0.05, 0.3)


def kicking_the_car(t, i):
    person = Figure(1, PARKED.box[0] - 0.2 * H - 2, 300, H,
                    reach=[LEFT_DOWN, STRIKE if (t > 2.0 and i % 2) else RETRACT])
    return [PARKED, person]


def standing_at_the_car(t, i):
    return [PARKED, Figure(1, PARKED.box[0] - 0.2 * H - 2, 300, H)]


def test_blows_at_a_parked_car_score_tampering():
    results = run(scene(5.0, 4.0, kicking_the_car), BehaviourSettings(stationary_vehicle_s=2.0))
    tampering = max((c for r in results for c in r.cues if c.kind == VEHICLE_TAMPERING), key=lambda c: c.score)
    assert tampering.score >= THRESHOLD[VEHICLE_TAMPERING] and tampering.track_ids == (1,)
    assert tampering.evidence['strikes'] >= 2


def test_standing_at_a_parked_car_or_blows_at_a_car_just_arrived_are_no_tampering():
    assert peak(run(scene(5.0, 4.0, standing_at_the_car), BehaviourSettings(stationary_vehicle_s=2.0)),
                VEHICLE_TAMPERING) == 0.0
    assert peak(run(scene(5.0, 4.0, kicking_the_car)), VEHICLE_TAMPERING) == 0.0  # parked 4 s < 30 s


def test_without_poses_only_box_and_track_cues_are_scored():
    results = run(scene(5.0, 2.0, fight), poses=False)
    for result in results:
        assert not result.pose_cues and result.poses == ()
        assert {cue.kind for cue in result.cues} == {PERSON_DOWN, FLEEING}
