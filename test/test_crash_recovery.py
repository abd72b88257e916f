"""Crash recovery through the event_manager process: SIGKILL just after the trigger, in the
middle of a recording and during the post-event window; the restarted node rebuilds the
bag (readable by rosbags and by the mcap reader), seals it as recovered, encrypts it when
configured, and vss-verify accepts it."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from mcap.reader import make_reader
from rosbags.rosbag2 import Reader
from std_msgs.msg import String

from conftest import wait_until
from kaiserslautern_vss.recordings.audit import AuditLog
from kaiserslautern_vss.recordings.encryption import decrypt_folder
from kaiserslautern_vss.recordings.file_modes import read_regular
from kaiserslautern_vss.tools import verify
from test_event_manager_node import IMAGE_TOPIC, feeder, start_event_manager  # noqa: F401  (fixture)

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _kill(graph) -> None:
    process = graph.of_executable('event_manager')[0].process
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def _image_stamps(bag: Path) -> list[int]:
    with Reader(bag) as reader:
        stamps = [t for c, t, _ in reader.messages() if c.topic == IMAGE_TOPIC]
    with open(bag / f'{bag.name}.mcap', 'rb') as stream:  # the independent reader, via the summary
        assert len([m for _, c, m in make_reader(stream).iter_messages() if c.topic == IMAGE_TOPIC]) == len(stamps)
    return stamps


@pytest.mark.parametrize('point, encryption', [('after_trigger', False), ('mid_recording', True),
                                               ('post_event', False)])
def test_killed_recording_is_recovered_and_sealed_at_start(tmp_path, feeder, point, encryption):  # noqa: F811
    settings = dict(alarm_duration_s=1.0 if point == 'post_event' else 60.0, post_event_s=5.0,
                    encryption=encryption, encryption_key_file=str(tmp_path / 'keys' / 'recordings.key'))
    graph = start_event_manager(tmp_path, **settings)
    try:
        assert feeder.wait_for_subscriber()
        feeder.run(1.5)
        feeder.alarm.publish(String(data='panic button'))
        assert wait_until(lambda: 'start' in feeder.phases(), 10, step=lambda: feeder.run(0.05))
        if point == 'mid_recording':
            feeder.run(3.0)
        elif point == 'post_event':
            assert wait_until(lambda: 'end' in feeder.phases(), 10, step=lambda: feeder.run(0.05))
            feeder.run(1.5)
        killed_after_ns = feeder.published_ns[-1]
        _kill(graph)
    finally:
        graph.stop()
    (bag,) = (tmp_path / 'recordings').iterdir()
    assert not (bag / 'manifest.json').exists() and not (bag / 'metadata.yaml').exists()

    audit = AuditLog(tmp_path / 'audit.log', tmp_path / 'keys' / 'audit.key')
    graph = start_event_manager(tmp_path, **settings)  # recovery runs before the node is up
    try:
        assert wait_until(lambda: audit.entries(), 30, step=lambda: feeder.run(0.1))
    finally:
        codes = graph.stop()
    assert list(codes.values()) == [0]
    public = tmp_path / 'keys' / 'signing_key.pem.pub'
    assert verify.main(['--key', str(public), str(bag)]) == 0
    manifest = json.loads((bag / 'manifest.json').read_text())
    assert manifest['recovered'] is True and manifest['incident'] == bag.name
    if encryption:
        assert not list(bag.glob('*.mcap')) and list(bag.glob('*.mcap.enc'))  # nothing plain at rest
        plain = tmp_path / 'decrypted' / bag.name
        decrypt_folder(bag, read_regular(tmp_path / 'keys' / 'recordings.key'), plain)
        stamps = _image_stamps(plain)
    else:
        stamps = _image_stamps(bag)
    assert manifest['bag']['messages'] >= len(stamps) >= 5  # at least the pre-event second
    if point != 'after_trigger':
        assert killed_after_ns - stamps[-1] < 1.6e9  # all but the last flush interval
    assert [(e['action'], e['target']) for e in audit.entries()] == [('recover (sealed)', bag.name)]
    assert audit.verify() == []
