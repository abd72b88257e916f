"""EventManager without ROS: inputs -> /vss/events JSON, sealed bags, evidence, retention, audit.

Message times are passed in; wall time comes from a clock the test moves.
"""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from kaiserslautern_vss.behaviour.messages import encode_behaviour
from kaiserslautern_vss.behaviour.types import BehaviourResult, Cue
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.events.manager import EventManager, EventManagerError
from kaiserslautern_vss.parameters.event_manager import PARAMETERS
from kaiserslautern_vss.recordings.audit import AuditLog
from kaiserslautern_vss.recordings.integrity import load_public_key, public_key_path, verify_incident
from kaiserslautern_vss.ros.typestore import vss_typestore
from test_events_recorder import image_cdr

SECOND = 10**9
T0 = 1_795_000_000 * SECOND
IMAGE = '/vss/cam01/image_anonymized/compressed'
DETECTIONS = '/vss/cam01/detections'
BEHAVIOUR = '/vss/cam01/behaviour'
RULES = """
rules:
  - {name: door, kind: zone_intrusion, camera: cam01, zone: [[0, 0], [100, 0], [100, 100], [0, 100]]}
  - {name: gate, kind: zone_intrusion, camera: cam09, zone: [[0, 0], [100, 0], [100, 100], [0, 100]]}
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime.fromtimestamp(T0 / SECOND, timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class Lines:
    """The log: (level, line) pairs."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, message: str) -> None:
        self.lines.append(('info', message))

    def warning(self, message: str) -> None:
        self.lines.append(('warning', message))

    def error(self, message: str) -> None:
        self.lines.append(('error', message))


@pytest.fixture
def clock():
    return Clock()


def make_manager(tmp_path: Path, clock: Clock, **overrides) -> EventManager:
    (tmp_path / 'rules.yaml').write_text(RULES)
    settings = {spec.name: spec.default for spec in PARAMETERS}
    settings.update(rules_file=str(tmp_path / 'rules.yaml'), record_root=str(tmp_path / 'recordings'),
                    signing_key_file=str(tmp_path / 'keys' / 'signing.pem'),
                    audit_key_file=str(tmp_path / 'keys' / 'audit.key'),
                    pre_event_s=1.0, post_event_s=1.0, end_hold_s=1.0, alarm_duration_s=2.0, min_free_mb=0)
    settings.update(overrides)
    return EventManager(settings, Lines(), clock)


def detections_cdr(stamp_ns: int) -> bytes:
    """A serialized, empty Detection2DArray (the manager is handed the decoded detections)."""
    store = vss_typestore()
    t = store.types
    msg = t['vision_msgs/msg/Detection2DArray'](header=t['std_msgs/msg/Header'](
        stamp=t['builtin_interfaces/msg/Time'](sec=stamp_ns // SECOND, nanosec=stamp_ns % SECOND),
        frame_id='cam01'), detections=[])
    return store.serialize_cdr(msg, 'vision_msgs/msg/Detection2DArray')


def person_at(x: float, y: float) -> Detections:
    return Detections(np.array([[x - 5, y - 20, x + 5, y]], np.float32), np.array([0.9], np.float32),
                      ('person',), np.array([1]))


def run(manager: EventManager, start_ns: int, end_ns: int, detections: Detections | None = None) -> list[dict]:
    """Frames every 100 ms (image + detections), ticks as the node would; the events published."""
    events = []
    for stamp in range(start_ns, end_ns, SECOND // 10):
        manager.on_recorded('cam01', IMAGE, stamp, image_cdr(stamp))
        events += manager.on_detections('cam01', DETECTIONS, stamp, detections_cdr(stamp),
                                        detections if detections is not None else Detections.empty(), stamp)
        events += manager.tick(stamp)
    return [json.loads(text) for text in events]


def test_a_detection_in_a_zone_is_an_incident_with_a_sealed_bag_holding_its_events(tmp_path, clock):
    manager = make_manager(tmp_path, clock)
    # a rule of a camera not served here is skipped, loudly
    assert ('warning', 'rules for cameras not served here are skipped: gate (cam09)') in manager.log.lines
    events = run(manager, T0, T0 + 2 * SECOND)
    events += run(manager, T0 + 2 * SECOND, T0 + 3 * SECOND, person_at(50, 50))
    events += run(manager, T0 + 3 * SECOND, T0 + 8 * SECOND)
    assert [(e['phase'], e['rule']) for e in events] == [('start', 'door'), ('end', 'door')]
    folder = Path(events[0]['bag_path'])
    key = load_public_key(public_key_path(tmp_path / 'keys' / 'signing.pem'))
    assert verify_incident(folder, key) == []
    with Reader(folder) as reader:
        topics = [connection.topic for connection, _, _ in reader.messages()]
    assert topics.count('/vss/events') == 2 and IMAGE in topics and DETECTIONS in topics
    assert manager.incidents_started == 1 and manager.recording_problem is None
    manager.close()


def test_alarms_and_triggers_merge_into_one_incident(tmp_path, clock):
    manager = make_manager(tmp_path, clock)
    started = [json.loads(text) for text in manager.alarm('cam01', T0, '  ')]
    assert [e['phase'] for e in started] == ['start'] and 'alarm input' in started[0]['reasons'][0]
    events, answer = manager.trigger('cam01', T0 + SECOND)
    assert answer == f'incident {started[0]["id"]} on cam01'
    assert [json.loads(text)['phase'] for text in events] == ['update']
    assert manager.trigger('cam01', T0 + SECOND)[1] == 'merged'
    manager.close()


def test_evidence_marks_are_signed_and_audited(tmp_path, clock):
    manager = make_manager(tmp_path, clock)
    assert manager.mark_evidence('cam01') == (False, 'no incident recorded on cam01 since start')
    run(manager, T0, T0 + SECOND)
    manager.alarm('cam01', T0 + SECOND, 'door contact')
    run(manager, T0 + SECOND, T0 + 6 * SECOND)
    marked, folder = manager.mark_evidence('cam01')
    assert marked and (Path(folder) / 'evidence.json').exists()
    entries = AuditLog(manager.audit.path, tmp_path / 'keys' / 'audit.key').entries()
    assert [(e['action'], e['target']) for e in entries] == [('evidence mark', Path(folder).name)]
    manager.close()


def test_retention_deletes_what_is_older_than_the_clock_allows_and_audits_it(tmp_path, clock):
    manager = make_manager(tmp_path, clock, retention_hours=1.0)
    run(manager, T0, T0 + SECOND)
    events = [json.loads(text) for text in manager.alarm('cam01', T0 + SECOND, 'door contact')]
    run(manager, T0 + SECOND, T0 + 6 * SECOND)
    folder = Path(events[0]['bag_path'])
    manager.enforce_retention()
    assert folder.exists() and manager.deleted_incidents == 0
    clock.now += timedelta(hours=2)
    manager.enforce_retention()
    assert not folder.exists() and manager.deleted_incidents == 1
    assert [e['action'] for e in manager.audit.entries()] == ['delete']
    manager.close()


def test_an_invalid_rules_file_refuses_to_start(tmp_path, clock):
    with pytest.raises(EventManagerError, match="unknown rule kind 'fight'"):
        make_manager(tmp_path, clock, rules_file=str(write(tmp_path / 'bad.yaml',
                                                           'rules: [{name: a, kind: fight, camera: cam01}]')))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def behaviour_cdr(stamp_ns: int, cues=(), camera: str = 'cam01', pose_cues: bool = True) -> bytes:
    """A serialized /vss/<cam>/behaviour String as the vision pipeline writes it."""
    text = encode_behaviour(camera, stamp_ns, BehaviourResult((), tuple(cues), pose_cues))
    return string_cdr(text)


def string_cdr(text: str) -> bytes:
    store = vss_typestore()
    return bytes(store.serialize_cdr(store.types['std_msgs/msg/String'](data=text), 'std_msgs/msg/String'))


def test_behaviour_cues_open_an_incident_naming_cue_score_and_evidence_and_are_recorded(tmp_path, clock):
    rules = RULES + '  - {name: fight, kind: assault, threshold: 0.6, min_duration_s: 0.2}\n'
    (tmp_path / 'site_rules.yaml').write_text(rules)
    manager = make_manager(tmp_path, clock, rules_file=str(tmp_path / 'site_rules.yaml'))
    assert 'fight' in [rule.name for rule in manager.rules]  # every camera: kept on a subset
    events = []
    for index in range(40):
        stamp = T0 + index * SECOND // 10
        strikes = Cue('assault', 0.7 + index / 100, (3, 7), {'limb_speed_heights_per_s': 3.0})
        events += manager.on_behaviour('cam01', BEHAVIOUR, behaviour_cdr(stamp, [strikes] if index < 10 else []),
                                       stamp)
        events += manager.tick(stamp)
    phases = [json.loads(text) for text in events]
    assert [(e['phase'], e['rule'], e['kind']) for e in phases] == [('start', 'fight', 'assault'),
                                                                    ('end', 'fight', 'assault')]
    assert phases[0]['cues'][0]['score'] == 0.72 and phases[-1]['cues'] == [{
        'rule': 'fight', 'kind': 'assault', 'score': 0.79, 'track_ids': [3, 7],
        'evidence': {'limb_speed_heights_per_s': 3.0}, 'first_ns': T0 + 2 * SECOND // 10,
        'peak_ns': T0 + 9 * SECOND // 10}]
    manager.close()
    with Reader(Path(phases[0]['bag_path'])) as reader:
        # from the first message (pre-event) to the end at 1.9 s plus 1 s post-event
        assert [connection.topic for connection, _, _ in reader.messages()].count(BEHAVIOUR) == 30


def test_malformed_behaviour_messages_are_counted_logged_once_and_dropped(tmp_path, clock):
    manager = make_manager(tmp_path, clock)
    bad = [b'\x00\x01\x00\x00\xff', string_cdr('{"schema": "vss.behaviour/1"'), string_cdr('[' * 100_000),
           behaviour_cdr(T0, camera='cam02'), string_cdr('{"schema": "other"}'), string_cdr('{"schema": "other"}')]
    assert all(manager.on_behaviour('cam01', BEHAVIOUR, payload, T0) == [] for payload in bad)
    assert sum(manager.behaviour_dropped.values()) == 6
    assert manager.behaviour_dropped['not a vss.behaviour/1 object'] == 2
    assert manager.behaviour_dropped['camera does not match the topic'] == 1
    warnings = [line for level, line in manager.log.lines if 'behaviour message dropped' in line]
    assert len(warnings) == 5  # the repeated reason is held back
    for index in range(40):  # ever new texts: the counters stay bounded
        unknown_kind = json.dumps({'schema': 'vss.behaviour/1', 'camera': 'cam01', 'stamp_ns': T0,
                                   'pose_cues': True, 'cues': [{'kind': f'punch{index}'}]})
        manager.on_behaviour('cam01', BEHAVIOUR, string_cdr(unknown_kind), T0)
    assert len(manager.behaviour_dropped) == 17 and manager.behaviour_dropped['other'] > 0
    manager.on_behaviour('cam01', BEHAVIOUR, behaviour_cdr(T0, pose_cues=False), T0)
    assert manager.pose_cues == {'cam01': False}
    manager.close()
