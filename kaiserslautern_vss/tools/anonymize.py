"""vss-anonymize: mask people in an image, an image folder or a video, like the privacy node does.

    vss-anonymize INPUT -o OUTPUT [--config config/vss.yaml] [--policy heads] [--method pixelate]

Runs the same person detector and privacy core as the graph, with the detector and privacy
parameters of the graph config (the catalogue defaults without one), for exporting footage
in a DSGVO-compliant way. Outputs keep the input's size (and a video its frame rate). A
frame that cannot be anonymised is written fully masked, never as it was.

Without a privacy-grade detection model (only the HOG fallback) the conservative policy masks,
as the graph does: everything that moved recently, detected persons and faces. A still image
has no motion history, so it is masked entirely then. The summary line names the masking used.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kaiserslautern_vss.bringup.graph import GraphConfigError, load_graph
from kaiserslautern_vss.detection.factory import Detector, create_detector
from kaiserslautern_vss.detection.onnx_detector import DetectorSettingsError, ModelLoadError
from kaiserslautern_vss.parameters import detector as detector_parameters
from kaiserslautern_vss.parameters import privacy as privacy_parameters
from kaiserslautern_vss.parameters.spec import ParamSpec, validate_parameters
from kaiserslautern_vss.privacy.anonymizer import PrivacyConfigError
from kaiserslautern_vss.privacy.conservative import FrameMasker, anonymizer_for, masking_mode
from kaiserslautern_vss.privacy.detection_validation import (RejectedDetections, ValidationSettings, detector_labels,
                                                             sanitize_detections)
from kaiserslautern_vss.privacy.face_detector import CenterFaceDetector, FaceModelError

IMAGE_SUFFIXES = frozenset({'.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp'})
# .mkv is lossless (FFV1), for footage that is cut or re-encoded afterwards.
VIDEO_CODECS = {'.avi': 'MJPG', '.mp4': 'mp4v', '.mkv': 'FFV1'}
EXIT_BAD_INPUT = 2


class AnonymizeError(Exception):
    """Input, output or configuration the tool cannot work with; the message says why."""


@dataclass
class Tally:
    frames: int = 0
    persons: int = 0
    faces: int = 0
    fully_masked: int = 0


class FrameAnonymizer:
    """Person detection + privacy masking of one stream of frames, failing closed per frame.

    No tracker: it drops weak detections that continue no track, and every person found
    must be masked. Masks are held across misses without track ids too (MaskMemory).
    """

    def __init__(self, detector: Detector, anonymizer: FrameMasker, masking: str,
                 validation: ValidationSettings = ValidationSettings()) -> None:
        self.detector = detector
        self.anonymizer = anonymizer
        self.validation = validation  # detections are checked as in the vision pipeline
        self.masking = masking  # which masking is in force, for the summary line
        self.tally = Tally()
        self.last_error: Exception | None = None

    def process(self, image_bgr: np.ndarray) -> np.ndarray:
        """The frame anonymised, or fully masked when detection or masking fails."""
        self.tally.frames += 1
        try:
            validated = sanitize_detections(self.detector.detect(image_bgr), image_bgr.shape, self.validation)
            if validated.detections is None:
                raise RejectedDetections(f'{validated.rejected} {validated.detail}'.strip())
            detections = validated.detections
            result = self.anonymizer.anonymize(image_bgr, detections)
        except Exception as error:  # noqa: BLE001 - whatever failed, the frame must not leave unmasked
            self.last_error = error
            self.tally.fully_masked += 1
            return self.anonymizer.fully_masked(image_bgr)
        self.tally.persons += len(detections.of_class(*self.anonymizer.settings.person_labels))
        self.tally.faces += result.faces_found
        return result.image


def node_parameters(config: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validated (detector, privacy) parameters: from the graph config, else catalogue defaults."""
    found: dict[str, dict[str, Any]] = {}
    if config is not None:
        try:
            found = {spec.executable: spec.parameters for spec in load_graph(config)}
        except GraphConfigError as error:
            raise AnonymizeError(str(error)) from error
    return tuple(found.get(executable) or validate_parameters(specs, {}, f'{executable} defaults')
                 for executable, specs in (('detector', detector_parameters.PARAMETERS),
                                           ('privacy', privacy_parameters.PARAMETERS)))


def build_frame_anonymizer(detector_values: dict[str, Any], privacy_values: dict[str, Any]) -> FrameAnonymizer:
    try:
        settings = privacy_parameters.privacy_settings(privacy_values)
        detector, _ = create_detector(detector_parameters.detector_settings(detector_values),
                                      detector_values['allow_hog_fallback'],
                                      detector_values['require_privacy_grade_model'])
        face_detector = CenterFaceDetector() if settings.face_detection else None
        anonymizer = anonymizer_for(detector.grade, settings, face_detector,
                                    privacy_parameters.conservative_settings(privacy_values))
    except (PrivacyConfigError, FaceModelError, ModelLoadError, DetectorSettingsError) as error:
        raise AnonymizeError(str(error)) from error
    validation = privacy_parameters.validation_settings(
        privacy_values, detector_labels(detector, detector_values['class_allowlist']))
    return FrameAnonymizer(detector, anonymizer, masking_mode(detector.grade, settings), validation)


def anonymize_image(frames: FrameAnonymizer, source: Path, target: Path) -> None:
    """One still: no history from other images may shape (or be needed for) its mask."""
    image = cv2.imread(str(source), cv2.IMREAD_COLOR)
    if image is None:
        raise AnonymizeError(f'{source}: not a readable image')
    frames.anonymizer.reset()
    target.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(target), frames.process(image)):
        raise AnonymizeError(f'{target}: cannot write an image there (is the suffix an image format?)')


def anonymize_folder(frames: FrameAnonymizer, source: Path, target: Path) -> None:
    images = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise AnonymizeError(f'{source}: no images ({", ".join(sorted(IMAGE_SUFFIXES))}) in this folder')
    if target.exists() and not target.is_dir():
        raise AnonymizeError(f'{target}: the output of a folder must be a folder')
    for image in images:
        anonymize_image(frames, image, target / image.name)


def read_video(source: Path) -> tuple[Iterator[np.ndarray], float, tuple[int, int]]:
    """Frames, frame rate and (width, height) of a video file."""
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise AnonymizeError(f'{source}: not a readable image or video')
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield frame
        finally:
            capture.release()
    return frames(), fps, size


def anonymize_video(frames: FrameAnonymizer, source: Path, target: Path) -> None:
    codec = VIDEO_CODECS.get(target.suffix.lower())
    if codec is None:
        raise AnonymizeError(f'{target}: video output must end in {", ".join(sorted(VIDEO_CODECS))}')
    images, fps, size = read_video(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*codec), fps, size)
    if not writer.isOpened():
        raise AnonymizeError(f'{target}: cannot write a {codec} video there')
    try:
        for image in images:
            writer.write(frames.process(image))
    finally:
        writer.release()


def run(source: Path, target: Path, frames: FrameAnonymizer) -> None:
    if not source.exists():
        raise AnonymizeError(f'{source}: no such file or folder')
    if target.resolve() == source.resolve():
        raise AnonymizeError(f'{target}: refusing to overwrite the input')
    if source.is_dir():
        anonymize_folder(frames, source, target)
    elif source.suffix.lower() in IMAGE_SUFFIXES:
        anonymize_image(frames, source, target)
    else:
        anonymize_video(frames, source, target)


def _choices(spec_name: str) -> tuple[str, ...]:
    spec: ParamSpec = next(s for s in privacy_parameters.PARAMETERS if s.name == spec_name)
    return spec.choices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-anonymize', description=__doc__.split('\n')[0])
    parser.add_argument('input', type=Path, help='image, folder of images, or video')
    parser.add_argument('-o', '--output', type=Path, required=True,
                        help='output image, folder or video (.avi, .mp4, .mkv)')
    parser.add_argument('--config', type=Path, help='graph config whose detector and privacy parameters apply')
    parser.add_argument('--policy', choices=_choices('policy'), help='override the configured policy')
    parser.add_argument('--method', choices=_choices('method'), help='override the configured method')
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        detector_values, privacy_values = node_parameters(args.config)
        overrides = {name: value for name, value in (('policy', args.policy), ('method', args.method)) if value}
        frames = build_frame_anonymizer(detector_values, {**privacy_values, **overrides})
        run(args.input, args.output, frames)
    except AnonymizeError as error:
        print(f'vss-anonymize: {error}', file=sys.stderr)
        return EXIT_BAD_INPUT
    tally, elapsed = frames.tally, time.monotonic() - started
    print(f'vss-anonymize: {tally.frames} frame(s) -> {args.output} in {elapsed:.1f} s; '
          f'{tally.persons} person(s), {tally.faces} face(s) masked; masking {frames.masking}', flush=True)
    if tally.fully_masked:
        print(f'vss-anonymize: {tally.fully_masked} frame(s) written fully masked because anonymising '
              f'failed (last error: {frames.last_error!r})', file=sys.stderr)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
