"""Recorded footage for the dry run: video files and image bags, frame positions, limits, errors."""

import cv2
import numpy as np
import pytest

from kaiserslautern_vss.tools.bag_from_video import bag_from_video
from kaiserslautern_vss.tools.footage import VIDEO_CAMERA, Footage, FootageError

FPS = 10.0


@pytest.fixture
def video(tmp_path):
    path = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), FPS, (160, 120))
    for index in range(20):
        writer.write(np.full((120, 160, 3), index * 10, np.uint8))
    writer.release()
    return path


def test_video_frames_carry_their_position_and_stop_at_the_limit(video):
    footage = Footage(video, max_width=80, max_seconds=1.0)
    frames = list(footage.frames())
    assert footage.cameras == [VIDEO_CAMERA] and {f.camera for f in frames} == {VIDEO_CAMERA}
    assert [f.position_ns for f in frames] == [i * 100_000_000 for i in range(10)]
    assert frames[0].image.shape == (60, 80, 3)  # the camera's size limit applies
    assert footage.seconds == pytest.approx(1.0)
    whole = Footage(video)
    assert len(list(whole.frames())) == 20 and whole.seconds == pytest.approx(2.0)


def test_bag_frames_come_per_camera_from_the_bag_start(video, tmp_path):
    bag = tmp_path / 'bag'
    assert bag_from_video(video, bag, 'cam05', start_ns=1_700_000_000 * 10**9, frame_count=5) == 5
    footage = Footage(bag)
    frames = list(footage.frames())
    assert footage.cameras == ['cam05'] and [f.camera for f in frames] == ['cam05'] * 5
    assert [f.position_ns for f in frames] == [i * 100_000_000 for i in range(5)]
    assert frames[2].image.shape == (120, 160, 3) and footage.undecodable == 0


def test_unreadable_sources_are_named(tmp_path):
    with pytest.raises(FootageError, match='no such video file or rosbag2 folder'):
        Footage(tmp_path / 'missing.mp4')
    (tmp_path / 'text.mp4').write_text('not a video')
    with pytest.raises(FootageError, match='text.mp4'):
        list(Footage(tmp_path / 'text.mp4').frames())
    (tmp_path / 'bag').mkdir()
    (tmp_path / 'bag' / 'metadata.yaml').write_text('nonsense: [')
    with pytest.raises(FootageError, match='not a readable rosbag2'):
        Footage(tmp_path / 'bag')
