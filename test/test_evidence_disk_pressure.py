"""Recordings under disk pressure, through the event_manager process on a real 6 MB tmpfs.

Six alarm incidents of about 1.1 MB each (1 s pre-event, 2 s alarm, 1 s post-event of
28 kB anonymised frames at 10 fps) with ``min_free_mb`` 2 and 0: room is made before
writing by deleting the oldest closed incidents, never the newest; every incident on disk
is complete and verifies. Then with every incident marked as evidence (nothing may be
deleted) the disk runs out: the bag fails or is cut, and that is announced on
/vss/events, in diagnostics (ERROR) and as an alert; no empty or unsigned folder is left.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from conftest import wait_until
from kaiserslautern_vss.recordings.audit import AuditLog
from kaiserslautern_vss.recordings.integrity import load_public_key, read_manifest, verify_incident
from kaiserslautern_vss.recordings.retention import scan_incidents
from kaiserslautern_vss.tools import verify
from servers.alert_receivers import WebhookServer
from test_event_manager_node import Feeder, start_event_manager
from test_events_retention import tmpfs

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NOISE_JPEG = cv2.imencode('.jpg', np.random.default_rng(7).integers(0, 255, (150, 200, 3), np.uint8),
                          [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()  # ~28 kB: JPEG cannot shrink noise
SECRET = b'disk-pressure-webhook-secret'


@pytest.fixture
def small_disk(tmp_path):
    with tmpfs(tmp_path / 'disk', '6m') as disk:
        yield disk


@pytest.fixture
def noisy_feeder():
    context = rclpy.context.Context()
    rclpy.init(context=context)
    feeder = Feeder(context, NOISE_JPEG)
    yield feeder
    feeder.node.destroy_node()
    context.try_shutdown()


def _start(tmp_path: Path, disk: Path, min_free_mb: int, **overrides):
    return start_event_manager(tmp_path, record_root=str(disk / 'recordings'), min_free_mb=min_free_mb,
                               audit_log_file=str(tmp_path / 'audit.log'), **overrides)


def _incident(feeder: Feeder, number: int) -> dict:
    """Raise one alarm and feed until its bag is closed; returns its start event."""
    starts = len(feeder.in_phase('start'))
    feeder.alarm.publish(String(data=f'alarm {number}'))
    assert wait_until(lambda: len(feeder.in_phase('start')) > starts, 10, step=lambda: feeder.run(0.05))
    start = feeder.in_phase('start')[-1]
    assert wait_until(lambda: 'end' in feeder.phases(start['id']), 15, step=lambda: feeder.run(0.05))
    feeder.run(1.8)  # post-event second, then closed and sealed
    return start


def _events_of(feeder: Feeder, incident_id: str) -> list[dict]:
    return [e for e in feeder.events if e['id'] == incident_id]


def _call(feeder: Feeder, client, timeout_s: float = 10.0) -> Trigger.Response:
    future = client.call_async(Trigger.Request())
    assert wait_until(future.done, timeout_s, step=lambda: feeder.run(0.05))
    return future.result()


@pytest.mark.parametrize('min_free_mb', [2, 0])
def test_room_is_made_before_writing_and_the_newest_stays(tmp_path, small_disk, noisy_feeder, min_free_mb):
    feeder = noisy_feeder
    graph = _start(tmp_path, small_disk, min_free_mb)
    try:
        assert feeder.wait_for_subscriber()
        feeder.run(1.5)
        starts = [_incident(feeder, n) for n in range(6)]
    finally:
        codes = graph.stop()
    assert list(codes.values()) == [0]
    root = small_disk / 'recordings'
    kept = [i.path for i in scan_incidents(root)]
    bags = [Path(start['bag_path']) for start in starts]
    assert all(start['recording'] == 'recording' for start in starts)
    assert not [e for e in feeder.events if e['recording'] in ('failed', 'cut')]
    assert kept == bags[-len(kept):] and len(kept) >= 2  # the newest ones, the oldest went first
    public = tmp_path / 'keys' / 'signing_key.pem.pub'
    assert verify.main(['--key', str(public), '--all', str(root)]) == 0
    for folder in kept:
        manifest = read_manifest(folder)
        assert manifest['cut'] is None and manifest['recovered'] is False
        assert manifest['bag']['messages'] >= 60  # ~40 frames + detections: complete, not cut
    deleted = [e['target'] for e in AuditLog(tmp_path / 'audit.log', tmp_path / 'keys' / 'audit.key').entries()
               if e['action'] == 'delete']
    assert deleted == [bag.name for bag in bags[:-len(kept)]]
    sizes = [sum(p.stat().st_size for p in folder.iterdir()) for folder in kept]
    print(f'\nmin_free_mb={min_free_mb}: kept {len(kept)} of 6 ({sizes} bytes), deleted oldest {len(deleted)}, '
          f'free {shutil.disk_usage(small_disk).free} bytes')


def test_when_no_room_can_be_made_it_is_announced_everywhere(tmp_path, small_disk, noisy_feeder):
    feeder = noisy_feeder
    (tmp_path / 'secret').write_bytes(SECRET)
    server = WebhookServer(tmp_path)
    server.start()
    graph = _start(tmp_path, small_disk, 0, webhook_url=server.url, webhook_secret_file=str(tmp_path / 'secret'),
                   webhook_ca_file=str(server.cert))
    mark = feeder.node.create_client(Trigger, '/vss/cam01/mark_evidence')
    try:
        assert feeder.wait_for_subscriber() and mark.wait_for_service(timeout_sec=10)
        feeder.run(1.5)
        starts = []
        for number in range(8):  # 6 MB: fills up after about 4 of these, all marked as evidence
            starts.append(_incident(feeder, number))
            if any(e['recording'] in ('failed', 'cut') for e in _events_of(feeder, starts[-1]['id'])):
                break
            assert _call(feeder, mark).success
        problem = [e for e in _events_of(feeder, starts[-1]['id']) if e['recording'] in ('failed', 'cut')][0]
        assert wait_until(lambda: feeder.diagnostics.get('event_manager: recorder', (0, ''))[0] == 2, 10,
                          step=lambda: feeder.run(0.1))
        level, message = feeder.diagnostics['event_manager: recorder']
        assert f'bag {problem["recording"]}' in message
        assert wait_until(lambda: any(json.loads(body)['event']['recording'] == problem['recording']
                                      for _, body in server.received), 15, step=lambda: feeder.run(0.1))
    finally:
        codes = graph.stop()
        server.stop()
    assert list(codes.values()) == [0]
    assert problem['recording_problem']
    root = small_disk / 'recordings'
    public = load_public_key(tmp_path / 'keys' / 'signing_key.pem.pub')
    folders = [i.path for i in scan_incidents(root)]
    evidence = [Path(s['bag_path']) for s in starts[:-1]]
    assert folders[:len(evidence)] == evidence  # nothing marked as evidence was deleted
    for folder in folders:  # no empty, unsigned or half-written folder
        assert verify_incident(folder, public) == [], folder
    if problem['recording'] == 'failed':
        assert problem['bag_path'] is None and folders == evidence
    else:
        cut = read_manifest(Path(problem['bag_path']))
        assert cut['cut'] and cut['bag']['messages'] > 0
    kept = '' if problem['bag_path'] is None else (
        f' ({read_manifest(Path(problem["bag_path"]))["bag"]["messages"]} messages, '
        f'{sum(p.stat().st_size for p in Path(problem["bag_path"]).iterdir())} bytes kept, signed)')
    print(f'\nall evidence: {len(evidence)} incidents kept, incident {len(starts)} {problem["recording"]}{kept}: '
          f'{problem["recording_problem"]}; free {shutil.disk_usage(small_disk).free} bytes')
