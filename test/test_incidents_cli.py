"""vss-incidents on real footage: a development fight clip, the sample video, a bag, a broken
source, bad rules and the model-less mode; stdout under --json is JSON lines and nothing else."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kaiserslautern_vss.behaviour.types import CUE_KINDS
from kaiserslautern_vss.paths import shared_dir

SHARED = shared_dir()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    SHARED is None or not (SHARED / 'data' / 'fights' / 'fight' / 'fi003.mp4').is_file()
    or not (SHARED / 'models' / 'yolox_nano.onnx').is_file(),
    reason='needs ../shared (fight clips, vtest.avi, yolox_nano.onnx): footage and models are not in the repository')]
INCIDENT_KEYS = {'type', 'source', 'rule', 'kind', 'start_s', 'end_s', 'score'}
SUMMARY_KEYS = {'type', 'source', 'frames', 'seconds', 'peak'}


def vss_incidents(*args, env=None):
    """Run the tool as its console script would (also from a source checkout, not installed)."""
    return subprocess.run([sys.executable, '-m', 'kaiserslautern_vss.tools.incidents', *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)


def json_lines(stdout):
    lines = [json.loads(line) for line in stdout.splitlines()]  # anything else on stdout fails here
    assert lines and all(isinstance(line, dict) for line in lines)
    return lines


def check_summary(summary, source, seconds, frames):
    assert set(summary) == SUMMARY_KEYS and summary['type'] == 'summary' and summary['source'] == str(source)
    assert summary['seconds'] == pytest.approx(seconds, abs=0.15)
    assert summary['frames'] == pytest.approx(frames, abs=2)
    assert set(summary['peak']) == set(CUE_KINDS) and all(0.0 <= x <= 1.0 for x in summary['peak'].values())


def rules_file(tmp_path, text):
    path = tmp_path / 'rules.yaml'
    path.write_text(text)
    return path


def test_fight_clip_bag_and_broken_source_in_one_call(tmp_path):
    """A very low assault threshold makes the fight clip raise an incident whatever the cues'
    tuning; a bag of the same clip runs as the replay tools read it; the unreadable source is an
    error line and exit status 1, and the sources after it still run."""
    clip = SHARED / 'data' / 'fights' / 'fight' / 'fi003.mp4'  # 2.4 s at 25 fps
    bag = tmp_path / 'bag'
    subprocess.run([sys.executable, '-m', 'kaiserslautern_vss.tools.bag_from_video', str(clip), str(bag),
                    '--camera', 'cam03', '--start', '2026-11-26T15:30:00+00:00'], check=True, capture_output=True)
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'not a video')
    rules = rules_file(tmp_path, 'rules:\n  - {name: any_assault, kind: assault, threshold: 0.01, cameras: [cam07]}\n'
                                 '  - {name: door, kind: zone_intrusion, camera: cam01, zone: [[0,0],[9,0],[9,9]]}\n')
    result = vss_incidents(clip, broken, bag, '--rules', rules, '--json')
    assert result.returncode == 1, result.stderr
    lines = json_lines(result.stdout)
    by_source = {str(source): [line for line in lines if line['source'] == str(source)]
                 for source in (clip, broken, bag)}
    assert lines == by_source[str(clip)] + by_source[str(broken)] + by_source[str(bag)]  # in order, one after another
    *incidents, summary = by_source[str(clip)]
    check_summary(summary, clip, 2.4, 24)  # 10 frames/s: the site cameras' max_rate_hz
    assert incidents and all(set(line) == INCIDENT_KEYS and line['type'] == 'incident' for line in incidents)
    for line in incidents:
        assert (line['rule'], line['kind']) == ('any_assault', 'assault')
        assert 0.0 <= line['start_s'] <= line['end_s'] <= summary['seconds']
        assert 0.01 <= line['score'] <= summary['peak']['assault']
    error, = by_source[str(broken)]
    assert set(error) == {'type', 'source', 'error'} and error['type'] == 'error'
    assert 'cannot decode' in error['error'] and 'broken.mp4' in result.stderr
    check_summary(by_source[str(bag)][-1], bag, 2.36, 24)
    assert 'left out' in result.stderr and 'door' in result.stderr  # other kinds: said, not applied


def test_sample_video_thinned_to_the_rate_with_the_site_rules():
    """Whether ordinary pedestrians raise behaviour incidents is measured by
    benchmarks/bench_behaviour.py; here: the contract, and --rate thinning the 10 fps video."""
    video = SHARED / 'data' / 'vtest.avi'
    result = vss_incidents(video, '--rate', '5', '--max-seconds', '15', '--json')
    assert result.returncode == 0, result.stderr
    *incidents, summary = json_lines(result.stdout)
    check_summary(summary, video, 15.0, 75)
    site_rules = {'assault', 'person_down', 'fleeing', 'vehicle_tampering'}
    assert all(set(line) == INCIDENT_KEYS and line['rule'] in site_rules for line in incidents)


def test_readable_table_without_json():
    clip = SHARED / 'data' / 'fights' / 'fight' / 'fi001.mp4'
    result = vss_incidents(clip, '--rate', '5')
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f'{clip}: ') and 'frames analysed' in result.stdout
    assert 'peak: assault ' in result.stdout and 'vehicle_tampering' in result.stdout


def test_bad_rules_stop_before_any_source_naming_rule_and_field(tmp_path):
    rules = rules_file(tmp_path, 'rules:\n  - {name: fight, kind: assault, threshold: 1.5, min_duration_s: -1}\n')
    result = vss_incidents(SHARED / 'data' / 'vtest.avi', '--rules', rules, '--json')
    assert result.returncode == 2 and result.stdout == ''
    assert "rule 'fight': field 'threshold'" in result.stderr and "field 'min_duration_s'" in result.stderr


def test_without_pose_model_box_and_track_cues_run_and_it_is_said(tmp_path):
    models = tmp_path / 'models'
    models.mkdir()
    (models / 'yolox_nano.onnx').symlink_to(SHARED / 'models' / 'yolox_nano.onnx')
    empty = tmp_path / 'no_shared'
    empty.mkdir()
    env = {**os.environ, 'VSS_MODEL_DIR': str(models), 'VSS_SHARED_DIR': str(empty), 'HOME': str(tmp_path)}
    clip = SHARED / 'data' / 'fights' / 'fight' / 'fi003.mp4'
    result = vss_incidents(clip, '--json', env=env)
    assert result.returncode == 0, result.stderr
    assert 'NO pose model' in result.stderr and 'assault and vehicle_tampering are OFF' in result.stderr
    summary = json_lines(result.stdout)[-1]
    assert summary['peak']['assault'] == 0.0 and summary['peak']['vehicle_tampering'] == 0.0
    assert summary['frames'] > 0
