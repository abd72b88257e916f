"""Incident recording: nothing without an incident, pre/post-event windows, disk errors."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.events.incident import Incident, IncidentUpdate
from kaiserslautern_vss.events.recorder import IncidentRecorder, RecorderConfigError
from kaiserslautern_vss.events.rule_engine import RuleEngine
from kaiserslautern_vss.events.rule_schema import parse_rules
from kaiserslautern_vss.recordings.integrity import load_or_create_signing_key, verify_incident
from kaiserslautern_vss.recordings.sealing import recover_incidents
from kaiserslautern_vss.ros.typestore import vss_typestore

REPO = Path(__file__).resolve().parents[1]
SECOND = 10**9
FRAME = SECOND // 10
T0 = 1_795_000_000 * SECOND
TOPICS = {'/cam01/image/compressed': 'sensor_msgs/msg/CompressedImage',
          '/cam01/camera_info': 'sensor_msgs/msg/CameraInfo',
          '/cam02/image/compressed': 'sensor_msgs/msg/CompressedImage'}
IMAGE = '/cam01/image/compressed'


def image_cdr(stamp_ns: int, data: np.ndarray | None = None) -> bytes:
    """A serialized CompressedImage stamped ``stamp_ns`` (payload: ``data`` or 2 kB of filler)."""
    store = vss_typestore()
    t = store.types
    msg = t['sensor_msgs/msg/CompressedImage'](
        header=t['std_msgs/msg/Header'](
            stamp=t['builtin_interfaces/msg/Time'](sec=stamp_ns // SECOND, nanosec=stamp_ns % SECOND),
            frame_id='cam01'),
        format='jpeg', data=np.full(2000, stamp_ns % 251, np.uint8) if data is None else data)
    return store.serialize_cdr(msg, 'sensor_msgs/msg/CompressedImage')


def camera_info_cdr():
    store = vss_typestore()
    t = store.types
    msg = t['sensor_msgs/msg/CameraInfo'](
        header=t['std_msgs/msg/Header'](stamp=t['builtin_interfaces/msg/Time'](sec=0, nanosec=0),
                                        frame_id='cam01'),
        height=576, width=768, distortion_model='plumb_bob', d=np.zeros(5), k=np.eye(3).ravel(),
        r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0, binning_y=0,
        roi=t['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0, width=0,
                                                 do_rectify=False))
    return store.serialize_cdr(msg, 'sensor_msgs/msg/CameraInfo')


def recorder(root, **kwargs):
    options = dict(pre_event_s=2.0, post_event_s=1.5, buffer_max_bytes=10_000_000, topics=TOPICS)
    options.update(kwargs)
    return IncidentRecorder(root, **options)


def feed(rec, start_ns, end_ns, camera='cam01', topic=IMAGE):
    for stamp in range(start_ns, end_ns, FRAME):
        rec.on_message(camera, topic, stamp, image_cdr(stamp))


def incident(camera='cam01', started_ns=T0 + 5 * SECOND, incident_id='a' * 32):
    return Incident(id=incident_id, rule='door', camera=camera, kind='zone_intrusion',
                    started_ns=started_ns, updated_ns=started_ns)


def bag_messages(path):
    with Reader(path) as reader:
        return [(c.topic, t) for c, t, _ in reader.messages()]


def test_nothing_touches_disk_without_incident(tmp_path):
    root = tmp_path / 'bags'
    rec = recorder(root)
    rec.on_message('cam01', '/cam01/camera_info', T0, camera_info_cdr())
    feed(rec, T0, T0 + 20 * SECOND)
    rec.poll(T0 + 20 * SECOND)
    rec.close_all()
    assert not root.exists()
    assert rec.last_error is None


def test_pre_and_post_event_windows(tmp_path):
    rec = recorder(tmp_path)
    rec.on_message('cam01', '/cam01/camera_info', T0, camera_info_cdr())
    feed(rec, T0, T0 + 5 * SECOND + 1)  # frames up to and including the start frame
    feed(rec, T0, T0 + 6 * SECOND, camera='cam02', topic='/cam02/image/compressed')
    current = incident()
    path = rec.on_incident(IncidentUpdate('start', current), now_ns=T0 + 5 * SECOND)
    assert path is not None and current.bag_path == str(path)
    assert path.parent == tmp_path
    assert path.name.startswith('20261118T') and path.name.endswith('cam01_door_aaaaaaaa')
    feed(rec, T0 + 5 * SECOND + FRAME, T0 + 8 * SECOND)
    current.ended_ns = T0 + 8 * SECOND
    assert rec.on_incident(IncidentUpdate('end', current), now_ns=T0 + 8 * SECOND) == path
    feed(rec, T0 + 8 * SECOND, T0 + 12 * SECOND)
    assert rec.open_bags == {}  # closed by the first frame past end + post_event_s

    messages = bag_messages(path)
    assert messages[0][0] == '/cam01/camera_info'  # latched sample first
    images = [t for topic, t in messages if topic == IMAGE]
    first_wanted = current.started_ns - 2 * SECOND
    assert first_wanted <= images[0] < first_wanted + FRAME  # pre-event within one frame
    last_wanted = current.ended_ns + int(1.5 * SECOND)
    assert last_wanted - FRAME < images[-1] <= last_wanted  # post-event within one frame
    assert images == list(range(images[0], images[-1] + 1, FRAME))  # no gap, no duplicate
    assert not any(topic.startswith('/cam02') for topic, _ in messages)


def test_poll_closes_bag_of_silent_camera_and_latched_go_into_every_bag(tmp_path):
    rec = recorder(tmp_path, post_event_s=1.0)
    rec.on_message('cam01', '/cam01/camera_info', T0, camera_info_cdr())
    paths = []
    for n in range(2):
        current = incident(started_ns=T0 + n * 10 * SECOND, incident_id=f'{n}' * 32)
        paths.append(rec.on_incident(IncidentUpdate('start', current), T0 + n * 10 * SECOND))
        current.ended_ns = current.started_ns + SECOND
        rec.on_incident(IncidentUpdate('end', current), current.ended_ns)
        rec.poll(current.ended_ns + SECOND - 1)
        assert rec.open_bags == {'cam01': paths[-1]}
        rec.poll(current.ended_ns + SECOND)
        assert rec.open_bags == {}
    assert paths[0] != paths[1]
    for path in paths:
        assert bag_messages(path) == [('/cam01/camera_info', bag_messages(path)[0][1])]
        assert (path / 'metadata.yaml').exists()


def test_new_incident_during_post_window_closes_previous_bag(tmp_path):
    rec = recorder(tmp_path, post_event_s=10.0)
    feed(rec, T0, T0 + 3 * SECOND)
    first = incident(started_ns=T0 + 2 * SECOND, incident_id='1' * 32)
    first_path = rec.on_incident(IncidentUpdate('start', first), T0 + 3 * SECOND)
    first.ended_ns = T0 + 3 * SECOND
    rec.on_incident(IncidentUpdate('end', first), T0 + 3 * SECOND)
    second = incident(started_ns=T0 + 4 * SECOND, incident_id='2' * 32)
    feed(rec, T0 + 3 * SECOND, T0 + 4 * SECOND + 1)
    second_path = rec.on_incident(IncidentUpdate('start', second), T0 + 4 * SECOND)
    assert (first_path / 'metadata.yaml').exists() and rec.open_bags == {'cam01': second_path}
    # A late 'end' of the first incident does not touch the second bag.
    assert rec.on_incident(IncidentUpdate('end', first), T0 + 5 * SECOND) is None
    rec.close_all()
    assert bag_messages(second_path)[0][1] == T0 + 2 * SECOND


def test_with_rule_engine_end_to_end(tmp_path):
    rules = RuleEngine(parse_rules([{'name': 'door', 'kind': 'zone_intrusion', 'camera': 'cam01',
                                     'zone': [[0, 0], [100, 0], [100, 100], [0, 100]]}]),
                       end_hold_s=1.0)
    rec = recorder(tmp_path, pre_event_s=1.0, post_event_s=1.0)
    inside = Detections(np.array([[40, 0, 60, 50]], np.float32), np.ones(1), ('person',), np.array([3]))
    paths = []
    for i in range(100):
        stamp = T0 + i * FRAME
        rec.on_message('cam01', IMAGE, stamp, image_cdr(stamp))
        people = inside if 30 <= i < 50 else Detections.empty()
        for update in rules.update('cam01', stamp, people) + rules.tick(stamp):
            paths.append(rec.on_incident(update, stamp))
        rec.poll(stamp)
    assert len(paths) == 2 and paths[0] == paths[1] and rec.open_bags == {}
    images = [t for _, t in bag_messages(paths[0])]
    # start 3.0 s - 1 s pre; last detection 4.9 s + 1 s hold = end 5.9 s, + 1 s post.
    assert images[0] == T0 + 20 * FRAME and images[-1] == T0 + 69 * FRAME


def test_unknown_topic_and_bad_config_are_rejected(tmp_path):
    rec = recorder(tmp_path)
    with pytest.raises(RecorderConfigError, match="topic '/cam09/image' is not configured"):
        rec.on_message('cam09', '/cam09/image', T0, b'')
    with pytest.raises(RecorderConfigError, match='pre_event_s and post_event_s must be >= 0'):
        recorder(tmp_path, pre_event_s=-1)


def test_unwritable_root_is_reported_not_raised(tmp_path):
    root = tmp_path / 'not_a_directory'
    root.write_text('occupied')
    rec = recorder(root)
    feed(rec, T0, T0 + 2 * SECOND)
    assert rec.on_incident(IncidentUpdate('start', incident(started_ns=T0 + SECOND)), T0 + SECOND) is None
    feed(rec, T0 + 2 * SECOND, T0 + 3 * SECOND)  # keeps running, no exception
    assert rec.error_count == 1 and "camera 'cam01': cannot open incident bag" in rec.last_error


# A real kernel write error, no mocks: the child process may only write files up to
# 200 kB (RLIMIT_FSIZE -> EFBIG "File too large", the same path as ENOSPC).
FULL_DISK_CHILD = textwrap.dedent('''
    import resource, signal, sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    sys.path.insert(0, {test_dir!r})
    from test_events_recorder import T0, SECOND, FRAME, IMAGE, feed, incident, recorder
    from kaiserslautern_vss.events.incident import IncidentUpdate
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    rec = recorder(Path(sys.argv[1]), flush_interval_s=0.2)
    feed(rec, T0, T0 + SECOND)
    path = rec.on_incident(IncidentUpdate('start', incident(started_ns=T0 + SECOND)), T0 + SECOND)
    feed(rec, T0 + SECOND, T0 + 200 * SECOND)  # 2 kB frames: far beyond 200 kB
    rec.poll(T0 + 200 * SECOND)
    print(path is not None, rec.error_count, rec.last_error, rec.open_bags,
          [(p.outcome, p.path == path) for p in rec.take_problems()], sep='|')
''')


def test_disk_full_during_recording_is_counted_and_recording_goes_on(tmp_path):
    child = subprocess.run(
        [sys.executable, '-c', FULL_DISK_CHILD.format(repo=str(REPO), test_dir=str(REPO / 'test')),
         str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    opened, count, last_error, open_bags, problems = child.stdout.strip().split('|')
    assert opened == 'True' and int(count) >= 1  # the write, then closing it, failed
    assert 'File too large' in last_error
    assert open_bags == '{}' and problems == "[('cut', True)]"
    # What reached the disk is recovered and sealed once there is room again.
    key, _ = load_or_create_signing_key(tmp_path.parent / f'{tmp_path.name}_key.pem')
    (result,) = recover_incidents(tmp_path, key)
    assert result.outcome == 'sealed' and verify_incident(result.path, key.public_key()) == []
    assert json.loads((result.path / 'manifest.json').read_text())['recovered'] is True
    assert len(bag_messages(result.path)) > 50
