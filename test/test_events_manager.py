"""EventManager without ROS: inputs -> /vss/events JSON, sealed bags, evidence, retention, audit.

Message times are passed in; wall time comes from a clock the test moves.
"""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

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
