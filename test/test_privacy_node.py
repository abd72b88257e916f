"""The privacy node in the real vision_pipeline process over DDS: a detector whose inference
fails (a real ONNX model that fails in ONNX Runtime on every frame) leaves only fully masked
frames, counted by reason in /diagnostics and never with detections; with ``on_deadline: drop``
those frames are not published at all."""

from __future__ import annotations

import pytest
import rclpy
import yaml
from vision_msgs.msg import Detection2DArray

from conftest import REPO_ROOT, wait_until
from failing_model import failing_yolox_model
from frame_judge import FrameJudge, coded_clip
from kaiserslautern_vss.bringup.arguments import derive_graph
from kaiserslautern_vss.bringup.processes import GraphProcesses
from kaiserslautern_vss.ros import qos
from pipeline_watch import Observed, Observer, Replayer

pytestmark = [pytest.mark.ros, pytest.mark.slow]

FAILED = 'fail_closed: inference failed'


def _run_failing_pipeline(tmp_path, on_deadline: str, frames: int) -> tuple[Observed, list, dict]:
    model, names = failing_yolox_model(tmp_path)
    clip = coded_clip(tmp_path / 'clip.avi', 300, 30)
    config = yaml.safe_load((REPO_ROOT / 'config' / 'vss.yaml').read_text())
    del config['/vss/event_manager']
    config['/vss/detector']['ros__parameters'].update(model_path=model, class_names_path=names, layout='yolox',
                                                      class_allowlist=['person'], motion_gating=False)
    config['/vss/privacy']['ros__parameters'].update(face_detection=False, on_deadline=on_deadline)
    path = tmp_path / 'graph.yaml'
    path.write_text(yaml.safe_dump(config))
    graph = GraphProcesses(derive_graph(path, camera_drivers=False), respawn=False)  # frames from image_raw
    observed = Observed(FrameJudge(clip, find_persons=False))
    observer = Observer(observed)
    detections: list[Detection2DArray] = []
    observer.node.create_subscription(Detection2DArray, '/vss/cam01/detections', detections.append, qos.RELIABLE)
    replayer = Replayer(observer.node, clip)
    graph.start()
    try:
        assert wait_until(lambda: observer.node.count_subscribers('/vss/cam01/image_raw') > 0
                          or bool(graph.failed_at_startup()), 60)
        assert not graph.failed_at_startup()
        replayer.thread.start()
        assert wait_until(lambda: observed.value('privacy: cam01', FAILED) >= frames, 60)
    finally:
        replayer.stopping.set()
        codes = graph.stop()
        observer.close()
    assert codes == {'vision_pipeline': 0}
    return observed, detections, observed.diagnostics['privacy: cam01']


def test_failed_inference_leaves_only_fully_masked_frames(tmp_path):
    observed, detections, status = _run_failing_pipeline(tmp_path, 'mask_all', 20)
    tally = observed.tally(0.0, float('inf'))
    print(f'{tally.line("inference failing")}; diagnostics {status}')
    # What the pipeline published (its own count) and what reached this best-effort observer:
    assert int(status['published']) >= 15 and tally.published >= 1 and tally.identified == tally.published
    assert tally.fully_masked == tally.published
    assert detections == []  # a frame without detections publishes none
    assert int(status['masked']) == 0 and status['message'].startswith(f'{status["fail_closed"]} frames failed')


def test_failed_frames_are_dropped_with_on_deadline_drop(tmp_path):
    observed, _, status = _run_failing_pipeline(tmp_path, 'drop', 10)
    assert observed.count() == 0 and int(status['published']) == 0
