"""Recorded footage frame by frame, with each frame's position in the recording: video files
(through the camera driver's file source) and rosbag2 bags of image topics (the topics
vss-replay would play, one camera each).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader, ReaderError
from sensor_msgs.msg import CompressedImage

from kaiserslautern_vss.bringup.playback import COMPRESSED, ReplayError, plan_replay
from kaiserslautern_vss.camera.file_source import VideoFileSource
from kaiserslautern_vss.camera.imaging import as_bgr, fit_to_max_size
from kaiserslautern_vss.camera.source_types import EndOfStream, SourceError
from kaiserslautern_vss.ros.image_conversion import ImageConversionError, compressed_to_bgr, image_from_cdr

#: the camera id of a video file's frames (a bag's topics name their own cameras)
VIDEO_CAMERA = 'footage'


class FootageError(RuntimeError):
    """Footage that cannot be read; the message names the file and why."""


@dataclass(frozen=True)
class FootageFrame:
    camera: str
    position_ns: int  # since the start of the recording
    image: np.ndarray


class Footage:
    """One recording; :meth:`frames` reads it once, ``seconds`` is how much of it was read."""

    def __init__(self, path: Path, max_width: int = 0, max_height: int = 0, max_seconds: float = 0.0) -> None:
        self.path = path
        self.max_width, self.max_height = max_width, max_height
        self._limit_ns = int(max_seconds * 1e9) if max_seconds > 0 else None
        self.seconds = 0.0
        self.undecodable = 0
        self._frame_s = 0.0  # how long a video frame lasts (a bag's messages are instants)
        self._bag = (path / 'metadata.yaml').is_file()
        if not self._bag and not path.is_file():
            raise FootageError(f'{path}: no such video file or rosbag2 folder')
        self.cameras = self._bag_cameras() if self._bag else [VIDEO_CAMERA]

    def frames(self) -> Iterator[FootageFrame]:
        frames = self._bag_frames() if self._bag else self._video_frames()
        for frame in frames:
            if self._limit_ns is not None and frame.position_ns >= self._limit_ns:
                return
            self.seconds = frame.position_ns / 1e9 + self._frame_s
            yield frame

    def _video_frames(self) -> Iterator[FootageFrame]:
        source = VideoFileSource(self.path, realtime=False, max_width=self.max_width, max_height=self.max_height)
        try:
            source.open()
            self._frame_s = 1.0 / source.fps
            while True:
                try:
                    frame = source.read(timeout_s=1.0)
                except EndOfStream:
                    return
                yield FootageFrame(VIDEO_CAMERA, round(frame.sequence * 1e9 / source.fps), frame.image)
        except SourceError as error:
            raise FootageError(str(error)) from error
        finally:
            source.close()

    def _bag_cameras(self) -> list[str]:
        try:
            with Reader(self.path) as reader:
                return self._plan(reader).cameras
        except (ReaderError, OSError) as error:
            raise FootageError(f'{self.path}: not a readable rosbag2: {error}') from error

    def _plan(self, reader: Reader):
        try:
            return plan_replay({c.topic: c.msgtype for c in reader.connections})
        except ReplayError as error:
            raise FootageError(f'{self.path}: {error}') from error

    def _bag_frames(self) -> Iterator[FootageFrame]:
        try:
            with Reader(self.path) as reader:
                images = {t.source: t for t in self._plan(reader).topics if t.target.endswith('image_raw')}
                connections = [c for c in reader.connections if c.topic in images]
                for connection, bag_ns, raw in reader.messages(connections=connections):
                    topic = images[connection.topic]
                    try:
                        image = (compressed_to_bgr(deserialize_message(raw, CompressedImage))
                                 if topic.msgtype == COMPRESSED else image_from_cdr(raw).image)
                    except ImageConversionError:
                        self.undecodable += 1
                        continue
                    yield FootageFrame(topic.camera, bag_ns - reader.start_time,
                                       fit_to_max_size(as_bgr(image), self.max_width, self.max_height))
        except (ReaderError, OSError) as error:
            raise FootageError(f'{self.path}: not a readable rosbag2: {error}') from error
