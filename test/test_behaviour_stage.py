"""The behaviour stage around the cues: the pose budget and who gets it, MoveNet on a real person
crop, model errors, cameras kept apart, model-less mode."""

import threading

import numpy as np
import pytest
from behaviour_scenes import Figure, ScenePoses, detections, draw, run, scene
from conftest import shared_file

from kaiserslautern_vss.behaviour.pose_estimator import PoseModelError, load_pose_estimator, square_crop
from kaiserslautern_vss.behaviour.stage import BehaviourStage
from kaiserslautern_vss.behaviour.types import ASSAULT, CUE_KINDS, PERSON_DOWN, BehaviourSettings, Pose

H = 120.0


def brawl(t, i):
    """Three pairs fighting side by side (six agitated people) and a lone walker far off."""
    swing = round(t / 0.2) % 2
    people = []
    for pair in range(3):
        x = 60 + pair * 180
        people += [Figure(2 * pair + 1, x, 300, H, reach=[(-0.6, -0.2) if swing else (-0.05, 0.28), (0.05, 0.28)]),
                   Figure(2 * pair + 2, x + 0.4 * H + 4, 300, H,
                          reach=[(-0.05, 0.28), (0.6, -0.2) if not swing else (0.05, 0.28)])]
    return people + [Figure(99, 600, 340, 60)]


def test_pose_budget_per_frame_round_robin_and_no_crop_for_a_lone_walker():
    settings = BehaviourSettings(pose_crops_per_frame=2)
    results = run(scene(5.0, 3.0, brawl), settings)
    assert max(len(r.poses) for r in results) == 2
    posed = {pose.track_id for r in results for pose in r.poses}
    assert posed == {1, 2, 3, 4, 5, 6}  # everyone agitated gets turns
    assert all(isinstance(pose, Pose) for r in results for pose in r.poses)


def test_zero_budget_spends_nothing_and_still_scores():
    model = ScenePoses()
    stage = BehaviourStage(model, BehaviourSettings(pose_crops_per_frame=0))  # type: ignore[arg-type]
    built = scene(5.0, 2.0, brawl)
    for index, figures in enumerate(built.frames):
        result = stage.analyse('cam01', draw(figures), detections(figures), built.stamp(index))
    assert model.crops == 0 and result.poses == () and result.pose_cues
    assert [c.kind for c in result.cues] == list(CUE_KINDS)


def test_cameras_are_kept_apart_and_analysed_in_parallel():
    model = ScenePoses()
    stage = BehaviourStage(model)  # type: ignore[arg-type]
    fall = scene(5.0, 3.0, lambda t, i: [Figure(1, 300, 300, H if t < 1 else 0.35 * H,
                                                aspect=0.4 if t < 1 else 2.6)])
    quiet = scene(5.0, 3.0, lambda t, i: [Figure(1, 300, 300, H)])
    finals = {}

    def feed(camera, built):
        for index, figures in enumerate(built.frames):
            finals[camera] = stage.analyse(camera, draw(figures), detections(figures), built.stamp(index))

    model.figures = []  # no pose cue reaches the estimator on these scenes
    threads = [threading.Thread(target=feed, args=args) for args in (('cam01', fall), ('cam02', quiet))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    score = {camera: {c.kind: c.score for c in result.cues} for camera, result in finals.items()}
    assert score['cam01'][PERSON_DOWN] >= 0.7 and score['cam02'][PERSON_DOWN] == 0.0


def test_clock_going_back_starts_the_camera_afresh():
    stage = BehaviourStage(None)
    figures = [Figure(1, 300, 300, 0.35 * H, aspect=2.6)]
    for stamp in np.arange(0.0, 12.0, 0.5):
        result = stage.analyse('cam01', draw(figures), detections(figures), float(stamp))
    assert {c.kind: c.score for c in result.cues}[PERSON_DOWN] == 1.0
    result = stage.analyse('cam01', draw(figures), detections(figures), 0.0)
    assert {c.kind: c.score for c in result.cues}[PERSON_DOWN] == 0.0


def test_model_less_stage_says_so_and_scores_box_cues():
    results = run(scene(5.0, 1.0, brawl), poses=False)
    assert all(not r.pose_cues and r.poses == () for r in results)
    assert all(ASSAULT not in {c.kind for c in r.cues} for r in results)


def test_missing_or_invalid_pose_model_is_a_clear_error(tmp_path):
    with pytest.raises(PoseModelError, match='does not exist'):
        load_pose_estimator(tmp_path / 'movenet_lightning.onnx')
    broken = tmp_path / 'broken.onnx'
    broken.write_bytes(b'not a model')
    with pytest.raises(PoseModelError, match='not a loadable ONNX model'):
        load_pose_estimator(broken)
    with pytest.raises(PoseModelError, match='not MoveNet SinglePose'):
        load_pose_estimator(shared_file('models/yolox_nano.onnx'))


def test_square_crop_is_centred_with_margin():
    x0, y0, side = square_crop(np.array([100, 50, 140, 150]))
    assert side == pytest.approx(125.0) and (x0 + side / 2, y0 + side / 2) == (120.0, 100.0)


def test_movenet_on_a_real_person_of_the_sample_video():
    import cv2

    from kaiserslautern_vss.detection.onnx_detector import DetectorSettings, OnnxDetector
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    for _ in range(60):
        ok, frame = capture.read()
    capture.release()
    assert ok
    found = OnnxDetector(DetectorSettings(str(shared_file('models/yolox_nano.onnx')))).detect(frame).of_class('person')
    box = found.boxes[np.argmax(found.boxes[:, 3] - found.boxes[:, 1])]  # the nearest person
    keypoints = load_pose_estimator(shared_file('models/pose/movenet_lightning.onnx')).estimate(frame, box[None])
    assert keypoints.shape == (1, 17, 3)
    points = keypoints[0]
    confident = points[points[:, 2] >= 0.3]
    assert len(confident) >= 8
    height = box[3] - box[1]
    assert np.all((confident[:, 0] > box[0] - 0.2 * height) & (confident[:, 0] < box[2] + 0.2 * height))
    assert np.all((confident[:, 1] > box[1] - 0.1 * height) & (confident[:, 1] < box[3] + 0.1 * height))
    nose, ankles = points[0], points[[15, 16]]
    if nose[2] >= 0.3 and ankles[:, 2].max() >= 0.3:
        assert nose[1] < ankles[ankles[:, 2] >= 0.3, 1].min()  # head above feet: not mirrored


def test_light_switched_on_around_a_group_is_no_assault():
    model = ScenePoses()
    stage = BehaviourStage(model)  # type: ignore[arg-type]
    pair = model.figures = [Figure(1, 300, 300, H), Figure(2, 300 + 0.4 * H + 4, 300, H)]
    for index in range(10):
        image = draw(pair)
        if index >= 5:
            image = np.clip(image.astype(np.int16) + 80, 0, 255).astype(np.uint8)
        result = stage.analyse('cam01', image, detections(pair), index / 5.0)
        assert {c.kind: c.score for c in result.cues}[ASSAULT] == 0.0
