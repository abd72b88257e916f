"""Camera calibration files in the camera_calibration / camera_info_manager YAML format.

The file ``cameracalibrator`` writes (and camera_info_manager reads)::

    image_width: 768
    image_height: 576
    camera_name: cam01
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, t1, t2, k3]}
    rectification_matrix: {rows: 3, cols: 3, data: [...]}      # optional, identity
    projection_matrix: {rows: 3, cols: 4, data: [...]}         # optional, [K | 0]

A driver that publishes scaled-down frames publishes the calibration scaled to match
(:meth:`CameraCalibration.scaled_to`), as image_proc's resize does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

IDENTITY_3X3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


class CalibrationError(ValueError):
    """A calibration file that cannot be read or does not describe a camera; the message names the file."""


@dataclass(frozen=True)
class CameraCalibration:
    width: int
    height: int
    distortion_model: str
    d: tuple[float, ...]
    k: tuple[float, ...]  # 3x3 row-major
    r: tuple[float, ...]  # 3x3 row-major
    p: tuple[float, ...]  # 3x4 row-major

    def scaled_to(self, width: int, height: int) -> CameraCalibration:
        """The calibration for images resized to ``width x height`` (focal lengths and centres scaled)."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        k = list(self.k)
        p = list(self.p)
        for matrix, cols in ((k, 3), (p, 4)):
            matrix[0:3] = [v * sx for v in matrix[0:3]]  # fx, skew, cx (and P's first row up to cx)
            matrix[cols:cols + 3] = [v * sy for v in matrix[cols:cols + 3]]  # 0, fy, cy
        p[3] *= sx  # Tx of a stereo pair scales with fx
        return CameraCalibration(width, height, self.distortion_model, self.d, tuple(k), self.r, tuple(p))


def calibration_path(url: str) -> Path:
    """A file path from a camera_info_url: ``file:///path``, or a plain path."""
    parts = urlsplit(url)
    if parts.scheme == 'file':
        return Path(unquote(parts.path))
    if parts.scheme:
        raise CalibrationError(f'camera_info_url {url!r}: only file:// URLs and plain paths are supported')
    return Path(url)


def _matrix(document: dict[str, Any], key: str, shape: tuple[int, int] | None, where: str) -> tuple[float, ...]:
    entry = document.get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get('data'), list):
        raise CalibrationError(f'{where}: {key} must be a mapping with rows, cols and a data list')
    rows, cols, data = entry.get('rows'), entry.get('cols'), entry['data']
    if not isinstance(rows, int) or not isinstance(cols, int) or rows * cols != len(data):
        raise CalibrationError(f'{where}: {key} has rows={rows!r}, cols={cols!r} but {len(data)} values')
    if shape is not None and (rows, cols) != shape:
        raise CalibrationError(f'{where}: {key} must be {shape[0]}x{shape[1]}, got {rows}x{cols}')
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data):
        raise CalibrationError(f'{where}: {key} values must be numbers')
    return tuple(float(v) for v in data)


def load_calibration(url: str) -> CameraCalibration:
    """Read and validate a calibration file; raises :class:`CalibrationError` with the exact problem."""
    path = calibration_path(url)
    try:
        document = yaml.safe_load(path.read_text(encoding='utf-8'))
    except OSError as error:
        raise CalibrationError(f'calibration file {path} cannot be read: {error.strerror}') from None
    except yaml.YAMLError as error:
        raise CalibrationError(f'calibration file {path} is not valid YAML: {error}') from None
    where = f'calibration file {path}'
    if not isinstance(document, dict):
        raise CalibrationError(f'{where}: expected a mapping with image_width, image_height, camera_matrix, ...')
    width, height = document.get('image_width'), document.get('image_height')
    if not isinstance(width, int) or not isinstance(height, int) or width <= 0 or height <= 0:
        raise CalibrationError(f'{where}: image_width and image_height must be positive integers, '
                               f'got {width!r} x {height!r}')
    k = _matrix(document, 'camera_matrix', (3, 3), where)
    d = _matrix(document, 'distortion_coefficients', None, where) if 'distortion_coefficients' in document else ()
    r = _matrix(document, 'rectification_matrix', (3, 3), where) if 'rectification_matrix' in document \
        else IDENTITY_3X3
    p = _matrix(document, 'projection_matrix', (3, 4), where) if 'projection_matrix' in document \
        else k[0:3] + (0.0,) + k[3:6] + (0.0,) + k[6:9] + (0.0,)
    model = document.get('distortion_model', 'plumb_bob')
    if not isinstance(model, str) or not model:
        raise CalibrationError(f'{where}: distortion_model must be a name like plumb_bob, got {model!r}')
    return CameraCalibration(width, height, model, d, k, r, p)
