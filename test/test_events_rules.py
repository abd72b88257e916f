"""Rule configuration and the incident lifecycle on synthetic tracks with injected stamps."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.events.incident import EVENT_SCHEMA
from kaiserslautern_vss.events.rule_engine import RuleEngine
from kaiserslautern_vss.events.rule_base import TimeWindow
from kaiserslautern_vss.events.rule_kinds import ZoneIntrusionRule
from kaiserslautern_vss.events.rule_schema import RuleConfigError, parse_rule, parse_rules

BERLIN = ZoneInfo('Europe/Berlin')
# 2026-11-26 23:00 local (winter time, UTC+1): inside '22:00-06:00'.
NIGHT_NS = int(datetime(2026, 11, 26, 23, 0, tzinfo=BERLIN).timestamp()) * 10**9
NOON_NS = int(datetime(2026, 11, 26, 12, 0, tzinfo=BERLIN).timestamp()) * 10**9
SECOND = 10**9
DOOR = [[100, 100], [300, 100], [300, 300], [100, 300]]


def rule_config(**overrides):
    config = {'name': 'door', 'kind': 'zone_intrusion', 'camera': 'cam01', 'zone': DOOR}
    config.update(overrides)
    return config


def person(track_id, foot_x, foot_y, label='person'):
    return [foot_x - 20, foot_y - 100, foot_x + 20, foot_y], label, track_id


def detections(*objects):
    if not objects:
        return Detections.empty()
    boxes, labels, ids = zip(*objects)
    return Detections(np.array(boxes, np.float32), np.full(len(objects), 0.9), labels, np.array(ids))


INSIDE = detections(person(7, 200, 200))
OUTSIDE = detections(person(7, 500, 200))


def engine(*configs, **kwargs):
    ids = iter(f'id{i}' for i in range(100))
    return RuleEngine(parse_rules(configs or [rule_config()]), new_id=lambda: next(ids), **kwargs)


def run(rule_engine, camera, frames, start_ns=NOON_NS, period_s=0.1):
    """Feed frames at 10 Hz; returns [(frame index, phase, incident id)]."""
    events = []
    for index, frame in enumerate(frames):
        for update in rule_engine.update(camera, start_ns + int(index * period_s * SECOND), frame):
            events.append((index, update.phase, update.incident.id))
    return events


def test_person_entering_zone_fires_once_and_ends_after_hold():
    rules = engine(end_hold_s=1.0)
    frames = [OUTSIDE] * 5 + [INSIDE] * 10 + [OUTSIDE] * 20
    # Last inside at frame 14 (1.4 s) + 1 s hold: ends at frame 24.
    assert run(rules, 'cam01', frames) == [(5, 'start', 'id0'), (24, 'end', 'id0')]


def test_short_gap_does_not_end_incident():
    rules = engine(end_hold_s=1.0)
    frames = [INSIDE] * 5 + [Detections.empty()] * 8 + [INSIDE] * 5 + [OUTSIDE] * 11
    assert run(rules, 'cam01', frames) == [(0, 'start', 'id0'), (27, 'end', 'id0')]


def test_gap_as_long_as_hold_ends_and_restarts():
    rules = engine(end_hold_s=1.0)
    frames = [INSIDE] * 5 + [Detections.empty()] * 9 + [INSIDE] * 2
    assert run(rules, 'cam01', frames) == [(0, 'start', 'id0'), (14, 'end', 'id0'),
                                           (14, 'start', 'id1')]


def test_outside_zone_other_class_or_other_camera_does_not_fire():
    rules = engine()
    assert run(rules, 'cam01', [OUTSIDE] * 20) == []
    assert run(rules, 'cam01', [detections(person(3, 200, 200, label='dog'))] * 20) == []
    assert run(rules, 'cam02', [INSIDE] * 20) == []
    assert rules.open_incidents == []


def test_foot_point_decides_not_box_overlap():
    rules = engine()
    # Box overlaps the zone but the feet (bottom centre) are below it.
    assert run(rules, 'cam01', [detections(person(1, 200, 350))] * 5) == []


def test_min_duration():
    rules = engine(rule_config(min_duration_s=2.0), end_hold_s=0.5)
    assert run(rules, 'cam01', [INSIDE] * 15 + [OUTSIDE] * 10) == []
    events = run(rules, 'cam01', [INSIDE] * 30, start_ns=NOON_NS + 100 * SECOND)
    assert events == [(20, 'start', 'id0')]


def test_time_window_in_local_time():
    night = engine(rule_config(time_windows=['22:00-06:00']))
    assert run(night, 'cam01', [INSIDE] * 5, start_ns=NOON_NS) == []
    assert run(night, 'cam01', [INSIDE] * 5, start_ns=NIGHT_NS)[0][1] == 'start'


def test_time_window_parsing():
    window = TimeWindow.parse('22:00-06:00')
    assert window.contains(datetime(2026, 1, 1, 23, 59).time())
    assert window.contains(datetime(2026, 1, 1, 5, 59).time())
    assert not window.contains(datetime(2026, 1, 1, 6, 0).time())
    assert TimeWindow.parse('08:00-18:30').contains(datetime(2026, 1, 1, 18, 29).time())


def test_new_object_and_second_rule_merge_as_updates():
    rules = engine(rule_config(), rule_config(name='square', zone=[[0, 0], [600, 0], [600, 600]]),
                   end_hold_s=1.0)
    two = detections(person(7, 200, 200), person(8, 250, 250))
    events = run(rules, 'cam01', [INSIDE] * 3 + [two] * 3 + [Detections.empty()] * 15)
    # Frame 0: 'door' opens it, 'square' merges in the same frame; frame 3: track 8 joins.
    assert events == [(0, 'start', 'id0'), (0, 'update', 'id0'), (3, 'update', 'id0'),
                      (15, 'end', 'id0')]


def test_merged_incident_content_and_json():
    rules = engine(rule_config(), rule_config(name='square', zone=[[0, 0], [600, 0], [600, 600]]),
                   end_hold_s=1.0)
    updates = rules.update('cam01', NOON_NS, INSIDE)
    updates += rules.update('cam01', NOON_NS + SECOND // 2,
                            detections(person(7, 210, 200), person(8, 500, 100)))
    incident = updates[0].incident
    assert incident.rules == ['door', 'square'] and incident.rule == 'door'
    assert sorted(incident.objects) == [(7, 'person'), (8, 'person')]
    assert incident.objects[(7, 'person')].box == (190.0, 100.0, 230.0, 200.0)
    end = rules.tick(NOON_NS + 2 * SECOND)
    assert [u.phase for u in end] == ['end']
    incident.bag_path = '/var/vss/bags/x'
    event = json.loads(end[0].to_json())
    assert event['schema'] == EVENT_SCHEMA == 'kaiserslautern_vss/event/v1'
    assert event['phase'] == 'end' and event['state'] == 'ended'
    assert event['camera'] == 'cam01' and event['rule'] == 'door' and event['kind'] == 'zone_intrusion'
    assert event['started_ns'] == NOON_NS and event['started'] == '2026-11-26T11:00:00.000000Z'
    assert event['ended_ns'] == NOON_NS + SECOND // 2 + SECOND
    assert event['ended'] == '2026-11-26T11:00:01.500000Z'
    assert {o['track_id'] for o in event['objects']} == {7, 8}
    assert event['bag_path'] == '/var/vss/bags/x'


def test_tick_ends_incident_without_new_frames():
    rules = engine(end_hold_s=2.0)
    assert [u.phase for u in rules.update('cam01', NOON_NS, INSIDE)] == ['start']
    assert rules.tick(NOON_NS + SECOND) == []
    assert [u.phase for u in rules.tick(NOON_NS + 2 * SECOND)] == ['end']
    assert rules.open_incidents == []


def test_cooldown_suppresses_restart_of_same_rule():
    rules = engine(end_hold_s=0.5, cooldown_s=5.0)
    frames = [INSIDE] * 2 + [OUTSIDE] * 10 + [INSIDE] * 20 + [OUTSIDE] * 30 + [INSIDE] * 2
    # ends at 0.1+0.5 s; cooldown until 5.6 s: frames 12-31 are suppressed; 62 restarts.
    assert run(rules, 'cam01', frames) == [(0, 'start', 'id0'), (6, 'end', 'id0'),
                                           (62, 'start', 'id1')]


def test_manual_trigger_fixed_duration_and_merge():
    rules = engine(end_hold_s=1.0, manual_duration_s=10.0)
    started = rules.trigger('cam03', NOON_NS, source='operator', reason='button')
    assert [u.phase for u in started] == ['start']
    incident = started[0].incident
    assert incident.kind == 'manual' and incident.reasons == ['operator: button']
    assert rules.tick(NOON_NS + 9 * SECOND) == []
    assert [u.phase for u in rules.tick(NOON_NS + 10 * SECOND)] == ['end']
    assert incident.ended_ns == NOON_NS + 10 * SECOND

    # A trigger during a rule incident extends it (update), no second incident.
    assert [u.phase for u in rules.update('cam01', NOON_NS, INSIDE)] == ['start']
    merged = rules.trigger('cam01', NOON_NS + SECOND // 2, 'alarm_box', 'panic', duration_s=5.0)
    assert [u.phase for u in merged] == ['update'] and len(rules.open_incidents) == 1
    assert merged[0].incident.rules == ['door', 'manual']
    assert rules.tick(NOON_NS + 5 * SECOND) == []
    assert [u.phase for u in rules.tick(NOON_NS + 5 * SECOND + SECOND // 2)] == ['end']


def test_parse_rule_builds_zone_intrusion():
    rule = parse_rule(rule_config(classes=['person', 'bicycle'], time_windows=['22:00-06:00'],
                                  timezone='UTC', min_duration_s=3))
    assert isinstance(rule, ZoneIntrusionRule)
    assert rule.settings.classes == {'person', 'bicycle'} and rule.settings.min_duration_s == 3.0
    assert rule.zone.polygon.shape == (4, 2) and rule.zone.name == 'door'


@pytest.mark.parametrize('override, message', [
    ({'kind': 'teleport'}, "rule 'door': field 'kind': unknown rule kind 'teleport'"),
    ({'camera': None}, "rule 'door': field 'camera': must be a non-empty string"),
    ({'zone': [[0, 0], [1, 1]]}, "rule 'door': field 'zone': zone 'door': polygon needs at least 3"),
    ({'zone': 'left half'}, "rule 'door': field 'zone':"),
    ({'classes': []}, "rule 'door': field 'classes': must not be empty"),
    ({'classes': 'person'}, "rule 'door': field 'classes': must be a list"),
    ({'time_windows': ['22-6']}, "rule 'door': field 'time_windows': expected 'HH:MM-HH:MM'"),
    ({'time_windows': ['25:00-06:00']}, "rule 'door': field 'time_windows': not a valid time"),
    ({'time_windows': ['06:00-06:00']}, "rule 'door': field 'time_windows': window '06:00-06:00' is empty"),
    ({'timezone': 'Mars/Olympus'}, "rule 'door': field 'timezone': unknown time zone"),
    ({'min_duration_s': -1}, "rule 'door': field 'min_duration_s': must be >= 0"),
    ({'min_duration_s': 'long'}, "rule 'door': field 'min_duration_s': must be a number"),
    ({'colour': 'red'}, "rule 'door': unknown field(s) 'colour'"),
])
def test_invalid_rule_configs_name_rule_and_field(override, message):
    with pytest.raises(RuleConfigError) as error:
        parse_rule(rule_config(**override))
    assert str(error.value).startswith(message)


@pytest.mark.parametrize('name', ['../../x', 'a/b', '1st', 'door name', 'x' * 65, 'tür', '-x', 'a\nb'])
def test_rule_names_are_identifiers(name):
    with pytest.raises(RuleConfigError, match="field 'name': must be a letter, then up to 63 letters"):
        parse_rule(rule_config(name=name))
    assert parse_rule(rule_config(name='Cam-01_door' + 'x' * 52)).name == 'Cam-01_door' + 'x' * 52


def test_missing_fields_and_duplicates():
    with pytest.raises(RuleConfigError, match="rule '#2': field 'name': is required"):
        parse_rules([rule_config(), rule_config(name='b'), {'kind': 'zone_intrusion'}])
    with pytest.raises(RuleConfigError, match="rule 'door': field 'zone': is required"):
        parse_rule({'name': 'door', 'kind': 'zone_intrusion', 'camera': 'cam01'})
    with pytest.raises(RuleConfigError, match="rule 'door': field 'name': is used twice"):
        parse_rules([rule_config(), rule_config()])
    with pytest.raises(RuleConfigError, match="rule 'manual': field 'name': is reserved"):
        parse_rules([rule_config(name='manual')])
    with pytest.raises(RuleConfigError, match='rules must be a list'):
        parse_rules({'name': 'door'})
    with pytest.raises(RuleConfigError, match="rule #0: must be a mapping"):
        parse_rules(['door'])
    with pytest.raises(RuleConfigError, match='end_hold_s must be'):
        RuleEngine([], end_hold_s=-1)


def test_trigger_rejects_negative_duration():
    with pytest.raises(ValueError, match="trigger on 'cam01': duration_s must be"):
        engine().trigger('cam01', NOON_NS, 'operator', 'x', duration_s=-1)


def violations(rule, frames, start_ns=NOON_NS, period_s=0.1):
    """Per frame, the sorted track ids the rule reports."""
    return [sorted(rule.violating(start_ns + int(i * period_s * SECOND), frame).track_ids.tolist())
            for i, frame in enumerate(frames)]


def test_crowding_needs_min_count_for_min_duration():
    rules = engine(rule_config(name='crowd', kind='crowding', min_count=3, min_duration_s=1.0),
                   end_hold_s=0.5)
    two = detections(person(1, 150, 150), person(2, 200, 200), person(3, 500, 200))
    three = detections(person(1, 150, 150), person(2, 200, 200), person(3, 250, 250))
    assert run(rules, 'cam01', [two] * 30) == []
    events = run(rules, 'cam01', [three] * 15 + [two] * 10, start_ns=NOON_NS + 10 * SECOND)
    assert events == [(10, 'start', 'id0'), (19, 'end', 'id0')]


def test_loitering_per_track_with_gap_tolerance():
    rule = parse_rule(rule_config(kind='loitering', dwell_s=2.0, max_gap_s=0.5))
    walker = [detections(person(5, 200, 200), person(6, 120, 120))] * 15  # both 1.5 s
    staying = [detections(person(5, 200, 200))] * 10  # 5 stays to 2.5 s
    result = violations(rule, walker + staying)
    assert result[19] == [] and result[20] == [5] and result[-1] == [5]
    # Track 5 gone 1 s (> max_gap_s) and back: its dwell time starts over.
    later = [Detections.empty()] * 10 + [detections(person(5, 200, 200))] * 5
    assert violations(rule, later, start_ns=NOON_NS + 3 * SECOND) == [[]] * 15
    # Untracked people cannot loiter.
    untracked = [detections(person(-1, 200, 200))] * 40
    assert violations(rule, untracked, start_ns=NOON_NS + 100 * SECOND) == [[]] * 40


def walk(track_id, points):
    return [detections(person(track_id, x, y)) for x, y in points]


def test_line_crossing_direction_and_segment_extent():
    # Vertical line x=300 from (300,100) down to (300,400): looking "down" the image,
    # the left side (as seen from the first point) is larger x.
    config = rule_config(kind='line_crossing', line=[[300, 100], [300, 400]])
    config.pop('zone')
    east = walk(1, [(250, 200), (290, 200), (310, 200), (350, 200)])
    west = walk(2, [(350, 200), (310, 200), (290, 200)])
    beside = walk(3, [(250, 450), (350, 450)])  # passes below the segment
    both = parse_rule(config)
    assert violations(both, east) == [[], [], [1], []]
    assert violations(both, west, start_ns=NOON_NS + SECOND) == [[], [], [2]]
    assert violations(both, beside, start_ns=NOON_NS + 2 * SECOND) == [[], []]
    one_way = parse_rule({**config, 'direction': 'left_to_right'})
    assert violations(one_way, west) == [[], [], [2]]
    assert violations(one_way, walk(1, [(290, 200), (310, 200)]), start_ns=NOON_NS + SECOND) == [[], []]
    other_way = parse_rule({**config, 'direction': 'right_to_left'})
    assert violations(other_way, walk(1, [(290, 200), (310, 200)])) == [[], [1]]


def test_line_crossing_forgets_stale_tracks():
    config = rule_config(kind='line_crossing', line=[[300, 100], [300, 400]], max_gap_s=1.0)
    config.pop('zone')
    rule = parse_rule(config)
    assert violations(rule, walk(1, [(290, 200), (310, 200)]), period_s=5.0) == [[], []]


def bag(x, y, track_id=-1):
    return [x - 15, y - 30, x + 15, y], 'suitcase', track_id


def test_object_left_behind():
    config = {'name': 'bag', 'kind': 'object_left_behind', 'camera': 'cam01',
              'stationary_s': 3.0, 'person_distance_px': 100}
    rule = parse_rule(config)
    owner_near = [detections(bag(400, 300), person(1, 450, 300))] * 20       # 2 s attended
    alone = [detections(bag(402, 301), person(1, 700, 300))] * 35            # owner walked off
    result = violations(rule, owner_near + alone)
    first_alarm = next(i for i, ids in enumerate(result) if ids)
    assert first_alarm == 19 + 30  # 3 s after the person was last near it
    assert parse_rule(config).violating(NOON_NS, detections(bag(400, 300))).labels == ()
    # Two alike bags side by side are followed separately; only the unattended one alarms.
    pair = [detections(bag(400, 300, 1), bag(600, 300, 2), person(9, 620, 300))] * 31
    assert violations(parse_rule(config), pair)[-1] == [1]
    # A moving bag (carried) never alarms.
    carried = [detections(bag(100 + 20 * i, 300)) for i in range(50)]
    assert all(ids == [] for ids in violations(parse_rule(config), carried))


@pytest.mark.parametrize('config, message', [
    ({'kind': 'crowding'}, "field 'min_count': is required"),
    ({'kind': 'crowding', 'min_count': 2.5}, "field 'min_count': must be an integer"),
    ({'kind': 'loitering'}, "field 'dwell_s': is required"),
    ({'kind': 'line_crossing', 'line': [[0, 0]]}, "field 'line': must be two [x, y] points"),
    ({'kind': 'line_crossing', 'line': [[1, 1], [1, 1]]}, "field 'line': the two points must differ"),
    ({'kind': 'line_crossing', 'line': [[0, 0], [1, 1]], 'direction': 'up'},
     "field 'direction': must be one of both, left_to_right, right_to_left"),
    ({'kind': 'object_left_behind', 'stationary_s': 5, 'zone': [[0, 0]]}, "field 'zone': zone"),
])
def test_invalid_configs_of_other_rules(config, message):
    base = {'name': 'r', 'camera': 'cam01'}
    if config['kind'] in ('crowding', 'loitering'):
        base['zone'] = DOOR
    with pytest.raises(RuleConfigError) as error:
        parse_rule({**base, **config})
    assert str(error.value).startswith(f"rule 'r': {message}")
