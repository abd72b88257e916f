"""Where models, sample data and installed config live, for source checkouts and installs."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_NAME = 'kaiserslautern_vss'
DEFAULT_MODEL_FILE = 'yolox_nano.onnx'
#: the top-down pose model (MoveNet SinglePose Lightning), under each model folder
POSE_MODEL_FILE = 'pose/movenet_lightning.onnx'
SAMPLE_VIDEO_FILE = 'vtest.avi'
_SOURCE_ROOT = Path(__file__).resolve().parents[1]
#: Debian's opencv-doc ships the same sample video
_DEBIAN_SAMPLE_DIR = Path('/usr/share/doc/opencv-doc/examples/data')


def source_root() -> Path | None:
    """The repository root when running from a source checkout, else None."""
    return _SOURCE_ROOT if (_SOURCE_ROOT / 'package.xml').is_file() else None


def share_dir() -> Path:
    """Directory holding config/ and launch/: the source tree first, else the install share."""
    root = source_root()
    if root is not None:
        return root
    from ament_index_python.packages import get_package_share_directory
    return Path(get_package_share_directory(PACKAGE_NAME))


def fastdds_profile() -> Path:
    """Shared-memory transport sized for camera frames, UDP on loopback only."""
    return share_dir() / 'config' / 'fastdds_localhost.xml'


def shared_dir() -> Path | None:
    """The project's read-only ../shared folder (models, sample data) if present."""
    if os.environ.get('VSS_SHARED_DIR'):  # explicit: also lets a run pretend there is none
        candidate = Path(os.environ['VSS_SHARED_DIR'])
    else:
        root = source_root()
        candidate = root.parent / 'shared' if root is not None else None
    return candidate if candidate is not None and candidate.is_dir() else None


def model_search_dirs() -> list[Path]:
    """Where an empty model_path looks for yolox_nano.onnx (and pose_model_path for
    pose/movenet_lightning.onnx), in order."""
    directories = [Path(os.environ['VSS_MODEL_DIR'])] if os.environ.get('VSS_MODEL_DIR') else []
    shared = shared_dir()
    if shared is not None:
        directories.append(shared / 'models')
    directories.append(Path.home() / '.local' / 'share' / PACKAGE_NAME / 'models')
    return directories


def resolve_model_path(configured: str, default_file: str = DEFAULT_MODEL_FILE) -> str:
    """The configured model, else the first ``default_file`` (relative to each of
    :func:`model_search_dirs`) found; '' when there is none."""
    if configured:
        return configured
    found = next((d / default_file for d in model_search_dirs() if (d / default_file).is_file()), None)
    return str(found) if found else ''


SAMPLE_SCHEME = 'sample://'


def resolve_sample_url(url: str) -> str:
    """``sample://vtest.avi`` -> the sample video's path; other URLs unchanged."""
    if not url.startswith(SAMPLE_SCHEME):
        return url
    video = sample_video()
    if video is None or url[len(SAMPLE_SCHEME):] != SAMPLE_VIDEO_FILE:
        raise FileNotFoundError(
            f'{url}: sample video not found; put {SAMPLE_VIDEO_FILE} in ../shared/data or install '
            "Debian's opencv-doc (scripts/setup_env.sh does)")
    return str(video)


def sample_video() -> Path | None:
    """vtest.avi from ../shared, else from Debian's opencv-doc (gunzipped on demand)."""
    shared = shared_dir()
    if shared is not None and (shared / 'data' / SAMPLE_VIDEO_FILE).is_file():
        return shared / 'data' / SAMPLE_VIDEO_FILE
    plain = _DEBIAN_SAMPLE_DIR / SAMPLE_VIDEO_FILE
    if plain.is_file():
        return plain
    gzipped = _DEBIAN_SAMPLE_DIR / (SAMPLE_VIDEO_FILE + '.gz')
    if gzipped.is_file():
        import gzip
        import shutil
        target = Path.home() / '.cache' / PACKAGE_NAME / SAMPLE_VIDEO_FILE
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(gzipped, 'rb') as src, open(target, 'wb') as dst:
                shutil.copyfileobj(src, dst)
        return target
    return None
