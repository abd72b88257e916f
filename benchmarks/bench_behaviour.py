"""Behaviour benchmark: the assault cue on real fight footage, benign incidents on ordinary
pedestrians, and what the pose stage costs.

1. One ``vss-incidents --json`` call (the site's detector, tracker, behaviour stage and
   behaviour rules) over the fight and no-fight clips of ``../shared/data/fights`` and
   vtest.avi: per-clip AUC of the ``assault`` peak score (all clips, and the odd- and
   even-numbered halves apart, since several clips share a camera), precision and recall of
   assault incidents at the rules' thresholds, alert latency (incident start from clip
   start) on the fights it catches, and every behaviour incident on vtest.avi (there should
   be none). Per-clip results are printed as totals only, never stored.
2. CPU of the behaviour stage per frame on one thread (detector and tracker excluded): on
   vtest.avi and on the fight clips, with the pose estimation's share and crops per frame.

    python benchmarks/bench_behaviour.py [--rate FPS] [--rules FILE] [--cpu-clips N]

The fights clips are development data: never commit them or anything derived per clip.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import mannwhitneyu

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kaiserslautern_vss.behaviour.model_status import resolve_pose_model_path  # noqa: E402
from kaiserslautern_vss.behaviour.pose_estimator import PoseEstimator  # noqa: E402
from kaiserslautern_vss.behaviour.stage import BehaviourStage  # noqa: E402
from kaiserslautern_vss.behaviour.types import ASSAULT  # noqa: E402
from kaiserslautern_vss.detection.onnx_detector import DetectorSettings, OnnxDetector  # noqa: E402
from kaiserslautern_vss.detection.tracker import MultiObjectTracker  # noqa: E402
from kaiserslautern_vss.paths import resolve_model_path, sample_video, shared_dir  # noqa: E402

SITE_RATE = 10.0


def run_incidents(sources: list[Path], rate: float | None, rules: str | None) -> list[dict]:
    command = [sys.executable, '-m', 'kaiserslautern_vss.tools.incidents', '--json',
               *[str(source) for source in sources]]
    command += ['--rate', str(rate)] if rate else []
    command += ['--rules', rules] if rules else []
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f'vss-incidents failed ({done.returncode}):\n{done.stderr}')
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def auc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a fight clip's peak is above a no-fight clip's (ties count half)."""
    return float(mannwhitneyu(positives, negatives).statistic) / (len(positives) * len(negatives))


def clip_number(path: str) -> int:
    return int(''.join(ch for ch in Path(path).stem if ch.isdigit()))


def assault_figures(lines: list[dict], fights: set[str], ordinary: set[str]) -> dict[str, float]:
    peaks = {line['source']: line['peak'].get(ASSAULT, 0.0) for line in lines if line['type'] == 'summary'}
    first_alert: dict[str, float] = {}
    for line in lines:
        if line['type'] == 'incident' and line['kind'] == ASSAULT:
            first_alert[line['source']] = min(first_alert.get(line['source'], np.inf), line['start_s'])
    figures: dict[str, float] = {}
    for half, keep in (('all', lambda n: True), ('odd', lambda n: n % 2 == 1), ('even', lambda n: n % 2 == 0)):
        positives = [peaks[s] for s in fights if s in peaks and keep(clip_number(s))]
        negatives = [peaks[s] for s in ordinary if s in peaks and keep(clip_number(s))]
        figures[f'auc_{half}'] = auc(positives, negatives)
    caught = [s for s in fights if s in first_alert]
    false = [s for s in ordinary if s in first_alert]
    figures['precision'] = len(caught) / max(len(caught) + len(false), 1)
    figures['recall'] = len(caught) / len(fights)
    latencies = [first_alert[s] for s in caught]
    figures['latency_p50'] = float(np.median(latencies)) if latencies else float('nan')
    figures['latency_p90'] = float(np.percentile(latencies, 90)) if latencies else float('nan')
    figures['errors'] = sum(line['type'] == 'error' for line in lines)
    return figures


class TimedPose:
    """The pose estimator, counting its CPU time and crops."""

    def __init__(self, estimator: PoseEstimator) -> None:
        self._estimator, self.path = estimator, estimator.path
        self.cpu_s, self.crops = 0.0, 0

    def estimate(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        start = time.process_time()
        keypoints = self._estimator.estimate(image, boxes)
        self.cpu_s += time.process_time() - start
        self.crops += len(keypoints)
        return keypoints


def stage_cpu(videos: list[Path], rate: float, detector: OnnxDetector, pose: PoseEstimator) -> dict[str, float]:
    """Behaviour stage CPU ms per frame (one thread), its pose share, crops per frame."""
    timed = TimedPose(pose)
    stage, frames, stage_s = BehaviourStage(timed), 0, 0.0  # type: ignore[arg-type]
    for camera, video in enumerate(videos):
        tracker = MultiObjectTracker()
        for stamp_s, image in frames_at_rate(video, rate):
            detections = tracker.update(detector.detect(image), stamp_s)
            start = time.process_time()
            stage.analyse(f'cam{camera}', image, detections, stamp_s)
            stage_s += time.process_time() - start
            frames += 1
    return {'stage_ms': stage_s * 1e3 / frames, 'pose_ms': timed.cpu_s * 1e3 / frames,
            'crops': timed.crops / frames, 'frames': frames}


def frames_at_rate(video: Path, rate: float) -> Iterator[tuple[float, np.ndarray]]:
    """``(stamp_s, image)`` of the video's frames thinned to ``rate`` by their timestamps."""
    capture = cv2.VideoCapture(str(video))
    fps, index, due_s = capture.get(cv2.CAP_PROP_FPS) or SITE_RATE, 0, 0.0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        stamp_s, index = index / fps, index + 1
        if stamp_s + 1e-6 >= due_s:
            due_s += 1.0 / rate
            yield stamp_s, image
    capture.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rate', type=float, default=None,
                        help='frames/s analysed (default: the site cameras\' rate)')
    parser.add_argument('--rules', default=None, help='behaviour rules file (default: the site\'s)')
    parser.add_argument('--cpu-clips', type=int, default=20, help='fight clips in the CPU pass')
    args = parser.parse_args()
    shared, vtest = shared_dir(), sample_video()
    if shared is None or not (shared / 'data' / 'fights').is_dir() or vtest is None:
        raise SystemExit('needs ../shared/data/fights and vtest.avi')
    fights = sorted((shared / 'data' / 'fights' / 'fight').glob('*.mp4'))
    ordinary = sorted((shared / 'data' / 'fights' / 'noFight').glob('*.mp4'))
    rate = args.rate or SITE_RATE

    start = time.perf_counter()
    lines = run_incidents([*fights, *ordinary, vtest], args.rate, args.rules)
    elapsed = time.perf_counter() - start
    figures = assault_figures(lines, {str(p) for p in fights}, {str(p) for p in ordinary})
    benign = [line for line in lines if line['type'] == 'incident' and line['source'] == str(vtest)]
    vtest_peak = next((line['peak'] for line in lines
                       if line['type'] == 'summary' and line['source'] == str(vtest)), {})
    print(f'vss-incidents over {len(fights)} fight + {len(ordinary)} no-fight clips + vtest.avi at '
          f'{rate:g} fps: {elapsed:.0f} s, {figures["errors"]:.0f} sources failed')
    print('| assault | AUC all | AUC odd | AUC even | precision | recall | latency p50 s | p90 s |')
    print('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    print(f'| fights dev half | {figures["auc_all"]:.3f} | {figures["auc_odd"]:.3f} | {figures["auc_even"]:.3f} '
          f'| {figures["precision"]:.2f} | {figures["recall"]:.2f} | {figures["latency_p50"]:.2f} '
          f'| {figures["latency_p90"]:.2f} |')
    for name, group in (('fight', fights), ('no-fight', ordinary)):
        sources = {str(p) for p in group}
        kinds = Counter(line['kind'] for line in lines if line['type'] == 'incident' and line['source'] in sources)
        print(f'{name} clips, incidents by kind: {dict(kinds) or "none"}')
    print(f'\nvtest.avi: {len(benign)} behaviour incidents '
          f'{[(i["kind"], round(i["start_s"], 1)) for i in benign]}; peaks '
          f'{ {kind: round(value, 3) for kind, value in vtest_peak.items()} }')

    detector = OnnxDetector(DetectorSettings(resolve_model_path('')))
    pose = PoseEstimator(resolve_pose_model_path(''))
    print('\n| behaviour stage, one thread | frames | stage ms/frame | pose ms/frame | crops/frame |')
    print('| --- | ---: | ---: | ---: | ---: |')
    for name, videos in (('vtest.avi', [vtest]), (f'{args.cpu_clips} fight clips', fights[:args.cpu_clips])):
        cost = stage_cpu(videos, rate, detector, pose)
        print(f'| {name} | {cost["frames"]:.0f} | {cost["stage_ms"]:.1f} | {cost["pose_ms"]:.1f} '
              f'| {cost["crops"]:.2f} |')


if __name__ == '__main__':
    main()
