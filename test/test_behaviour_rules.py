"""Behaviour rule kinds (assault, person_down, fleeing, vehicle_tampering): validation, and incidents
from cue sequences with injected stamps, naming the cue, its peak score and evidence."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from kaiserslautern_vss.behaviour.types import ASSAULT, CUE_KINDS, FLEEING, PERSON_DOWN, Cue
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.events.rule_engine import RuleEngine
from kaiserslautern_vss.events.rule_schema import References, RuleConfigError, check_rules, parse_rules

BERLIN = ZoneInfo('Europe/Berlin')
NOON_NS = int(datetime(2026, 11, 26, 12, 0, tzinfo=BERLIN).timestamp()) * 10**9
SECOND = 10**9
SQUARE = [[100, 100], [300, 100], [300, 300], [100, 300]]


def behaviour_rule(**overrides):
    config = {'name': 'assault_square', 'kind': 'assault', 'threshold': 0.6}
    config.update(overrides)
    return config


def engine(*configs, **kwargs):
    ids = iter(f'id{i}' for i in range(100))
    return RuleEngine(parse_rules(configs or [behaviour_rule()]), new_id=lambda: next(ids), **kwargs)


def assault(score, tracks=(3, 7), speed=3.0):
    return Cue(ASSAULT, score, tracks, {'limb_speed_heights_per_s': speed})


def people(*placed):
    """Detections of tracked people standing (box bottom-centre) at (x, y)."""
    boxes = [[x - 20, y - 100, x + 20, y] for _, x, y in placed]
    return Detections(np.array(boxes, np.float32), np.full(len(placed), 0.9), ('person',) * len(placed),
                      np.array([track for track, _, _ in placed]))


def run(rule_engine, camera, frames, start_ns=NOON_NS, period_s=0.2):
    """Feed (detections, cues) frames at 5 Hz; returns [(frame index, phase, incident)]."""
    events = []
    for index, (detections, cues) in enumerate(frames):
        stamp = start_ns + int(index * period_s * SECOND)
        for update in rule_engine.update(camera, stamp, detections) + rule_engine.behaviour(camera, stamp, cues):
            events.append((index, update.phase, update.incident))
    return events


@pytest.mark.parametrize('kind', CUE_KINDS)
def test_every_cue_kind_is_a_rule_kind(kind):
    rule, = parse_rules([behaviour_rule(name=f'{kind}_all', kind=kind)])
    assert rule.kind == kind and rule.cameras == () and rule.applies_to('cam07')


def test_validation_names_rule_and_field_for_every_problem():
    config = behaviour_rule(threshold=0.0, min_duration_s=-1, cameras=['cam01', 'cam01', 'cam99'],
                            zone=[[0, 0], [1, 1]], time_windows=['25:00-06:00'], classes=['person'],
                            camera='cam01', speed=3)
    sites = References(camera=lambda name: '' if name == 'cam01' else f'no camera {name!r}',
                       class_name=lambda name: '')
    _, problems = check_rules([config], sites)
    text = '\n'.join(problems)
    for field in ('threshold', 'min_duration_s', 'cameras', 'zone', 'time_windows', 'camera'):
        assert f"rule 'assault_square': field {field!r}" in text, field
    assert "lists 'cam01' twice" in text and "no camera 'cam99'" in text
    assert "unknown field(s) 'classes', 'speed'" in text
    assert 'cameras: [...]' in text  # the hint for a single camera


@pytest.mark.parametrize('threshold', [0, -0.1, 1.01, float('nan'), True, '0.5', None])
def test_threshold_must_be_a_score_in_the_unit_interval(threshold):
    with pytest.raises(RuleConfigError, match=r"field 'threshold': must be a cue score in \(0, 1\]"):
        parse_rules([behaviour_rule(threshold=threshold)])


def test_threshold_is_required_and_cameras_may_not_be_an_empty_list():
    config = behaviour_rule(cameras=[])
    del config['threshold']
    with pytest.raises(RuleConfigError) as raised:
        parse_rules([config])
    assert raised.value.problems == ("rule 'assault_square': field 'cameras': must not be empty (omit it for "
                                     "every camera)", "rule 'assault_square': field 'threshold': is required")


def test_cue_at_threshold_after_min_duration_opens_incident_naming_cue_score_and_evidence():
    rules = engine(behaviour_rule(min_duration_s=0.4), end_hold_s=1.0)
    crowd = people((3, 200, 200), (7, 240, 210), (9, 600, 400))
    frames = [(crowd, [assault(0.3)])] * 3 + [(crowd, [assault(0.7)])] * 2 + [(crowd, [assault(0.9, speed=4.5)])] \
        + [(crowd, [assault(0.65)])] + [(crowd, [])] * 8
    events = run(rules, 'cam01', frames)
    assert [(index, phase) for index, phase, _ in events] == [(5, 'start'), (11, 'end')]
    incident = events[0][2]
    assert incident.kind == ASSAULT and incident.rule == 'assault_square'
    assert sorted(incident.objects) == [(3, 'person'), (7, 'person')]  # the cue's tracks, not the bystander
    event = json.loads(events[-1][2].to_json())
    assert event['cues'] == [{'rule': 'assault_square', 'kind': ASSAULT, 'score': 0.9, 'track_ids': [3, 7],
                              'evidence': {'limb_speed_heights_per_s': 4.5}, 'first_ns': NOON_NS + SECOND,
                              'peak_ns': NOON_NS + SECOND}]
    assert event['reasons'] == ['assault assault_square']


def test_scores_below_threshold_and_other_kinds_do_not_fire():
    rules = engine()
    crowd = people((3, 200, 200))
    frames = [(crowd, [assault(0.59), Cue(FLEEING, 0.99, (3,)), Cue(PERSON_DOWN, 1.0, (3,))])] * 20
    assert run(rules, 'cam01', frames) == []


def test_zone_needs_one_of_the_cues_tracks_standing_inside():
    rules = engine(behaviour_rule(zone=SQUARE))
    outside = people((3, 500, 200), (7, 520, 200))
    one_inside = people((3, 500, 200), (7, 200, 200))
    assert run(rules, 'cam01', [(outside, [assault(0.9)])] * 5) == []
    assert run(rules, 'cam01', [(Detections.empty(), [assault(0.9)])] * 5) == []  # nowhere placed: not inside
    events = run(rules, 'cam01', [(one_inside, [assault(0.9)])])
    assert [phase for _, phase, _ in events] == ['start']
    assert list(events[0][2].objects) == [(7, 'person')]


def test_camera_list_and_time_windows_limit_where_and_when():
    rules = engine(behaviour_rule(cameras=['cam02', 'cam05'], time_windows=['22:00-06:00']))
    frame = [(people((3, 200, 200)), [assault(0.9)])]
    assert run(rules, 'cam01', frame * 3, start_ns=NOON_NS - 13 * 3600 * SECOND) == []  # 23:00, other camera
    assert run(rules, 'cam02', frame * 3) == []                                          # noon
    night = run(rules, 'cam05', frame, start_ns=NOON_NS - 13 * 3600 * SECOND)
    assert [(phase, incident.camera) for _, phase, incident in night] == [('start', 'cam05')]


def test_one_rule_on_every_camera_keeps_each_cameras_debounce_apart():
    rules = engine(behaviour_rule(min_duration_s=0.4))
    frame = (people((3, 200, 200)), [assault(0.9)])
    events = []
    for index in range(3):  # cam01 and cam02 alternate: each needs its own 0.4 s of cue
        stamp = NOON_NS + index * SECOND // 5
        events += [(index, u.phase, u.incident.camera) for camera in ('cam01', 'cam02')
                   for u in rules.update(camera, stamp, frame[0]) + rules.behaviour(camera, stamp, frame[1])]
    assert events == [(2, 'start', 'cam01'), (2, 'start', 'cam02')]


def test_second_behaviour_rule_joins_the_open_incident_with_its_cue():
    rules = engine(behaviour_rule(), behaviour_rule(name='person_down_all', kind=PERSON_DOWN, threshold=0.5))
    crowd = people((3, 200, 200), (7, 240, 210))
    frames = [(crowd, [assault(0.8)])] * 2 + [(crowd, [assault(0.8), Cue(PERSON_DOWN, 0.6, (7,), {'lying_s': 2})])]
    events = run(rules, 'cam01', frames)
    assert [(index, phase) for index, phase, _ in events] == [(0, 'start'), (2, 'update')]
    incident = events[-1][2]
    assert incident.rules == ['assault_square', 'person_down_all']
    assert [(c['rule'], c['kind'], c['score']) for c in incident.to_dict()['cues']] == [
        ('assault_square', ASSAULT, 0.8), ('person_down_all', PERSON_DOWN, 0.6)]


def test_dry_run_copy_watches_every_camera_at_any_time():
    rule, = parse_rules([behaviour_rule(cameras=['cam02'], time_windows=['22:00-06:00'])])
    anywhere = rule.everywhere()
    assert anywhere.applies_to('clip') and anywhere.settings.active_at(NOON_NS)
    assert (anywhere.name, anywhere.kind, anywhere.threshold) == (rule.name, rule.kind, rule.threshold)
