"""The police export's video: the bag's anonymised JPEGs, unchanged, as an MJPEG AVI, and the
check that a given video is exactly that (``vss-verify --export``).

MJPEG in AVI stores each JPEG as one packet, byte for byte, so a video is provably made
from a bag when its packets' SHA-256 equal the bag's JPEGs' in order, and its frame rate
is the one derived from the bag's frame times.
"""

from __future__ import annotations

import hashlib
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg

from kaiserslautern_vss.recordings.file_modes import PRIVATE


class VideoError(RuntimeError):
    """ffmpeg could not write or read the video."""


def frame_rate(stamps_ns: Sequence[int]) -> float:
    """Frames per second of a recording: from its median frame interval, 1..60."""
    intervals = [b - a for a, b in zip(stamps_ns, stamps_ns[1:]) if b > a]
    return round(min(60.0, max(1.0, 1e9 / statistics.median(intervals))), 3) if intervals else 1.0


def write_video(jpegs: Sequence[bytes], stamps_ns: Sequence[int], path: Path) -> float:
    """``jpegs`` as an MJPEG AVI (0600) at the recording's frame rate; returns that rate."""
    fps = frame_rate(stamps_ns)
    command = [imageio_ffmpeg.get_ffmpeg_exe(), '-nostdin', '-loglevel', 'error', '-f', 'mjpeg', '-r', f'{fps:.3f}',
               '-i', '-', '-c:v', 'copy', '-y', str(path)]
    result = subprocess.run(command, input=b''.join(jpegs), capture_output=True, timeout=300, check=False)
    if result.returncode != 0:
        raise VideoError(f'video not written: {result.stderr.decode(errors="replace").strip()}')
    PRIVATE.file(path)
    return fps


def video_packets(path: Path) -> tuple[list[str], float]:
    """``(SHA-256 of each video packet in order, frames per second)`` of an AVI."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), '-nostdin', '-loglevel', 'error', '-i', str(path), '-map', '0:v:0',
               '-c', 'copy', '-f', 'framehash', '-hash', 'sha256', '-']
    result = subprocess.run(command, capture_output=True, timeout=300, check=False)
    if result.returncode != 0:
        raise VideoError(f'{path.name} is not a readable video: {result.stderr.decode(errors="replace").strip()}')
    lines = result.stdout.decode().splitlines()
    base = next((line.split(':', 1)[1].strip() for line in lines if line.startswith('#tb 0:')), '1/1')
    numerator, denominator = (int(part) for part in base.split('/'))
    fps = round(denominator / numerator, 3)
    return [line.rsplit(',', 1)[1].strip() for line in lines if line and not line.startswith('#')], fps


def video_problems(path: Path, jpegs: Sequence[bytes], stamps_ns: Sequence[int]) -> list[str]:
    """How the video at ``path`` differs from the recording's frames (empty: made from them)."""
    try:
        packets, fps = video_packets(path)
    except (VideoError, OSError, ValueError) as error:
        return [str(error)]
    problems = []
    if len(packets) != len(jpegs):
        problems.append(f'the video has {len(packets)} frames, the bag {len(jpegs)}')
    elif packets != [hashlib.sha256(jpeg).hexdigest() for jpeg in jpegs]:
        problems.append('the video frames are not the bag\'s frames in order')
    if abs(fps - frame_rate(stamps_ns)) > 0.01:
        problems.append(f'the video runs at {fps:g} fps, the bag\'s frame times give {frame_rate(stamps_ns):g}')
    return problems
