"""Behaviour in the vision pipeline over real DDS: a real vision_pipeline process on a vtest.avi
clip publishes /vss/cam01/behaviour (vss.behaviour/1) and /vss/cam01/skeletons (keypoints and
limbs, no pixels) with the pose model, says loudly on /diagnostics and /vss/events when it runs
without one, and the site refuses to start without it (load_graph, vss-bringup --check, and the
detector itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from conftest import shared_file, wait_until
from graph_observer import GraphObserver, stamp_of, vtest_clip
from kaiserslautern_vss.behaviour.messages import decode_behaviour
from kaiserslautern_vss.behaviour.model_status import BEHAVIOUR_INFO_SCHEMA
from kaiserslautern_vss.behaviour.types import ASSAULT, FLEEING, PERSON_DOWN, VEHICLE_TAMPERING
from kaiserslautern_vss.bringup.graph import GraphConfigError, load_graph
from kaiserslautern_vss.bringup.processes import GraphProcesses, ros_environment
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.topics import SKELETON_PIXEL_SCALE

pytestmark = [pytest.mark.ros, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[1]
CLIP_FRAMES = range(440, 500)  # 6 s of people crossing the square
FRAME_PERIOD_S = 0.1
WIDTH, HEIGHT = 768, 576


class BehaviourObserver(GraphObserver):
    """A GraphObserver that also keeps cam01's behaviour and skeletons and the detector's status."""

    def __init__(self, context, name: str) -> None:
        super().__init__(context, name)
        self.behaviour: list[String] = []
        self.skeletons: list[MarkerArray] = []
        self.detector_status: dict[str, DiagnosticStatus] = {}
        self.node.create_subscription(String, '/vss/cam01/behaviour', self.behaviour.append, qos.RELIABLE)
        self.node.create_subscription(MarkerArray, '/vss/cam01/skeletons', self.skeletons.append, qos.RELIABLE)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_detector_status, 10)

    def _on_detector_status(self, msg: DiagnosticArray) -> None:
        self.detector_status.update({s.name: s for s in msg.status if s.name.startswith('detector: ')})


def _pipeline_config(tmp_path: Path, **detector_values) -> Path:
    """The demo config's vision pipeline alone (no event manager) on a vtest.avi clip."""
    demo = yaml.safe_load((REPO_ROOT / 'config' / 'vss.yaml').read_text())
    del demo['/vss/event_manager']
    demo['/vss/cam01/camera_driver']['ros__parameters']['url'] = str(
        vtest_clip(tmp_path / 'clip.avi', CLIP_FRAMES))
    demo['/vss/detector']['ros__parameters'].update(detector_values)
    path = tmp_path / 'graph.yaml'
    path.write_text(yaml.safe_dump(demo))
    return path


def _no_models_environment(tmp_path: Path) -> dict[str, str]:
    """A user's machine: no ../shared, nothing in ~/.local, no VSS_MODEL_DIR."""
    (tmp_path / 'no_shared').mkdir()
    env = ros_environment()
    env.pop('VSS_MODEL_DIR', None)
    return {**env, 'VSS_SHARED_DIR': str(tmp_path / 'no_shared'), 'HOME': str(tmp_path / 'home')}


def _run(tmp_path: Path, config: Path, env: dict[str, str] | None = None):
    context = rclpy.context.Context()
    rclpy.init(context=context)
    observer = BehaviourObserver(context, 'behaviour_observer')
    graph = GraphProcesses(load_graph(config), **({'env': env} if env else {}))
    graph.start()
    try:
        pipeline = graph.of_executable('vision_pipeline')[0]  # ends with the clip
        assert wait_until(lambda: pipeline.returncode is not None or bool(graph.failed_at_startup()),
                          len(CLIP_FRAMES) * FRAME_PERIOD_S + 90, step=observer.spin)
        assert not graph.failed_at_startup(), 'the vision pipeline refused to start'
        wait_until(lambda: False, 1.0, step=observer.spin)
    finally:
        codes = graph.stop()
    observer.close()
    context.try_shutdown()
    return observer, codes


@pytest.fixture(scope='module')
def with_pose_model(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('with_pose')
    return _run(tmp_path, _pipeline_config(tmp_path, pose_model_path=str(
        shared_file('models/pose/movenet_lightning.onnx'))))


@pytest.fixture(scope='module')
def without_pose_model(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('without_pose')
    config = _pipeline_config(tmp_path, model_path=str(shared_file('models/yolox_nano.onnx')))
    return _run(tmp_path, config, _no_models_environment(tmp_path))


def _behaviour_info(observer: BehaviourObserver) -> dict:
    return next(event for event in observer.events if event.get('schema') == BEHAVIOUR_INFO_SCHEMA)


def test_cues_of_every_frame_with_people_are_published_with_pose_cues(with_pose_model):
    observer, codes = with_pose_model
    assert all(code == 0 for code in codes.values()), codes
    messages = [decode_behaviour(msg.data) for msg in observer.behaviour]
    person_frames = {stamp for stamp, msg in observer.detections.items()
                     if any(d.results[0].hypothesis.class_id == 'person' for d in msg.detections)}
    assert len(person_frames) > 0.5 * len(CLIP_FRAMES)
    stamps = {(m.stamp_ns // 10**9, m.stamp_ns % 10**9) for m in messages}
    assert person_frames <= stamps <= set(observer.detections)  # each a processed frame's stamp
    for message in messages:
        assert message.camera_id == 'cam01' and message.pose_cues
        assert {cue.kind for cue in message.cues} == {ASSAULT, PERSON_DOWN, FLEEING, VEHICLE_TAMPERING}
    info = _behaviour_info(observer)
    assert info['pose_model'].endswith('movenet_lightning.onnx') and 'warning' not in info
    status = observer.detector_status['detector: behaviour']
    assert status.level == DiagnosticStatus.OK and 'pose cues on' in status.message
    camera = {kv.key: kv.value for kv in observer.detector_status['detector: cam01'].values}
    # reported once a second: the last second's frames may be missing from the last report
    assert int(camera['behaviour_analysed']) > 0.5 * len(CLIP_FRAMES) and camera['behaviour_failed'] == '0'


def test_skeletons_are_keypoints_and_limbs_in_image_coordinates_that_vanish(with_pose_model):
    observer, _ = with_pose_model
    assert observer.skeletons
    posed = 0
    for array in observer.skeletons:
        first, *markers = array.markers
        assert first.action == Marker.DELETEALL  # the previous frame's skeletons go
        assert stamp_of(first) in observer.detections
        for marker in markers:
            assert (marker.ns, marker.type) in {('keypoints', Marker.SPHERE_LIST), ('limbs', Marker.LINE_LIST)}
            assert marker.header.frame_id == 'cam01_optical_frame' and marker.lifetime.nanosec > 0
            assert marker.points and not marker.text and not marker.mesh_resource  # numbers only
            for point in marker.points:
                assert 0 <= point.x / SKELETON_PIXEL_SCALE <= WIDTH and 0 <= point.y / SKELETON_PIXEL_SCALE <= HEIGHT
            if marker.type == Marker.LINE_LIST:
                assert len(marker.points) % 2 == 0
        posed += bool(markers)
    assert posed >= 3


def test_without_the_pose_model_only_box_cues_run_and_it_is_said_loudly(without_pose_model):
    observer, codes = without_pose_model
    assert all(code == 0 for code in codes.values()), codes
    info = _behaviour_info(observer)
    assert info['pose_model'] is None and info['cues'] == [PERSON_DOWN, FLEEING]
    assert 'NO pose model' in info['warning'] and 'scripts/get_pose_model.sh' in info['warning']
    status = observer.detector_status['detector: behaviour']
    assert status.level == DiagnosticStatus.WARN
    assert 'only person_down and fleeing are scored, assault and vehicle_tampering are OFF' in status.message
    messages = [decode_behaviour(msg.data) for msg in observer.behaviour]
    assert messages and all(not m.pose_cues and {c.kind for c in m.cues} == {PERSON_DOWN, FLEEING}
                            for m in messages)
    assert not any(array.markers[1:] for array in observer.skeletons)  # no poses, no skeletons


@pytest.fixture
def no_models(tmp_path, monkeypatch) -> dict[str, str]:
    env = _no_models_environment(tmp_path)
    for name in ('VSS_SHARED_DIR', 'HOME'):
        monkeypatch.setenv(name, env[name])
    monkeypatch.delenv('VSS_MODEL_DIR', raising=False)
    models = tmp_path / 'no_shared' / 'models'
    models.mkdir()
    (models / 'yolox_nano.onnx').symlink_to(shared_file('models/yolox_nano.onnx'))  # the detector's is there
    return env


def test_the_site_refuses_to_start_without_the_pose_model_naming_what_to_install(no_models, tmp_path):
    site = REPO_ROOT / 'config' / 'site_rathausvorplatz.yaml'
    with pytest.raises(GraphConfigError) as refused:
        load_graph(site)
    expected = '/vss/detector: require_pose_model is set but no pose model was found'
    assert expected in str(refused.value) and 'scripts/get_pose_model.sh' in str(refused.value)
    assert str(tmp_path / 'no_shared' / 'models' / 'pose' / 'movenet_lightning.onnx') in str(refused.value)
    check = subprocess.run([sys.executable, '-m', 'kaiserslautern_vss.tools.bringup', '--check', '--config',
                            str(site)], env=no_models, capture_output=True, text=True, timeout=120)
    assert check.returncode == 2 and expected in check.stderr
    # The demo runs without it (box-and-track cues only) ...
    assert load_graph(REPO_ROOT / 'config' / 'vss.yaml')
    # ... and the site once it is where the message says.
    (tmp_path / 'no_shared' / 'models' / 'pose').mkdir()
    (tmp_path / 'no_shared' / 'models' / 'pose' / 'movenet_lightning.onnx').symlink_to(
        shared_file('models/pose/movenet_lightning.onnx'))
    assert load_graph(site)


def test_the_detector_itself_refuses_to_start_without_a_required_pose_model(no_models, tmp_path, capfd):
    config = _pipeline_config(tmp_path, require_pose_model=False)
    specs = load_graph(config)
    for spec in specs:  # past the bringup's check, as a hand-written launch would be
        if spec.executable == 'detector':
            spec.parameters['require_pose_model'] = True
    graph = GraphProcesses(specs, env=no_models)
    graph.start()
    try:
        assert wait_until(lambda: graph.nodes[0].returncode is not None, 90)
    finally:
        graph.stop()
    assert graph.nodes[0].returncode == 2
    assert 'require_pose_model is set but no pose model was found' in capfd.readouterr().err
