"""vss-bag-from-video: a test bag from a video file, for vss-replay.

    vss-bag-from-video VIDEO OUTPUT_DIR [--camera cam01] [--first-frame 0] [--frames 0]
                       [--start 2026-11-26T15:30:00Z] [--jpeg-quality 90]

Writes /vss/<cam>/image_raw/compressed (JPEG) and /vss/<cam>/camera_info at the video's
frame rate, as rosbag2 MCAP. The images are the video as it is, NOT anonymised: use test
footage (e.g. vtest.avi) only; on site, replay incident bags instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from kaiserslautern_vss.camera.file_source import VideoFileSource
from kaiserslautern_vss.camera.source_types import EndOfStream, SourceError
from kaiserslautern_vss.recordings.bag_writer import BagWriterError, IncidentBagWriter
from kaiserslautern_vss.ros.image_conversion import bgr_to_compressed
from kaiserslautern_vss.ros.stamps import time_from_ns
from kaiserslautern_vss.ros.topics import camera_topic


def bag_from_video(video: Path, output: Path, camera: str, start_ns: int, first_frame: int = 0,
                   frame_count: int = 0, jpeg_quality: int = 90) -> int:
    """Write frames ``first_frame ..`` (``frame_count`` of them, 0 = to the end); returns how many."""
    if output.exists():
        raise FileExistsError(f'{output} exists; choose a new directory for the bag')
    source = VideoFileSource(video, realtime=False)
    source.open()
    image_topic, info_topic = camera_topic(camera, 'image_raw/compressed'), camera_topic(camera, 'camera_info')
    period_ns = round(1e9 / source.fps)
    written = 0
    try:
        for _ in range(first_frame):
            source.read(timeout_s=1.0)
        with IncidentBagWriter(output, {image_topic: 'sensor_msgs/msg/CompressedImage',
                                        info_topic: 'sensor_msgs/msg/CameraInfo'}) as writer:
            while not frame_count or written < frame_count:
                try:
                    frame = source.read(timeout_s=1.0)
                except EndOfStream:
                    break
                stamp_ns = start_ns + written * period_ns
                header = Header(stamp=time_from_ns(stamp_ns), frame_id=f'{camera}_optical_frame')
                if written == 0:
                    height, width = frame.image.shape[:2]
                    writer.write(info_topic, stamp_ns,
                                 serialize_message(CameraInfo(header=header, height=height, width=width)))
                writer.write(image_topic, stamp_ns,
                             serialize_message(bgr_to_compressed(frame.image, header, jpeg_quality)))
                written += 1
    finally:
        source.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-bag-from-video', description=__doc__.split('\n')[0])
    parser.add_argument('video', type=Path)
    parser.add_argument('output', type=Path, help='bag directory to create')
    parser.add_argument('--camera', default='cam01', help='camera id of the topics (default %(default)s)')
    parser.add_argument('--first-frame', type=int, default=0, help='skip this many frames')
    parser.add_argument('--frames', type=int, default=0, help='frames to write (0: to the end)')
    parser.add_argument('--start', default='', help='ISO time of the first frame (default: now)')
    parser.add_argument('--jpeg-quality', type=int, default=90, choices=range(10, 101), metavar='10..100')
    args = parser.parse_args(argv)
    try:
        start_ns = (int(datetime.fromisoformat(args.start).timestamp() * 1e9) if args.start
                    else time.time_ns())
        count = bag_from_video(args.video, args.output, args.camera, start_ns, max(0, args.first_frame),
                               max(0, args.frames), args.jpeg_quality)
    except (ValueError, OSError, SourceError, BagWriterError) as error:
        print(f'vss-bag-from-video: {error}', file=sys.stderr)
        return 2
    print(f'vss-bag-from-video: wrote {count} frames of {args.video} to {args.output}')
    return 0 if count else 1


if __name__ == '__main__':
    raise SystemExit(main())
