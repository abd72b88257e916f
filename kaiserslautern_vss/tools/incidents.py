"""vss-incidents: which behaviour incidents recorded footage would raise, before going live.

    vss-incidents SOURCE... [--rules FILE] [--config FILE] [--rate FPS] [--max-seconds S] [--json]

Each SOURCE (a video file, or a rosbag2 folder of image topics as vss-replay reads them) runs
through the site's detector, tracker, behaviour stage and behaviour rules
(kaiserslautern_vss.tools.dry_run), as fast as the CPU allows; nothing is recorded or
published. Detector, tracking, pose and camera settings come from the graph config (default:
the site's, config/site_rathausvorplatz.yaml), frames are thinned to the rate its cameras
deliver (``--rate`` overrides), and the behaviour rules of its event manager's rules file
(``--rules`` for another) apply to every source, whatever their cameras and time windows:
footage has neither a site camera nor a time of day. Models are loaded once for all sources.

Without the pose model (the site requires it, the dry run does not) ``assault`` and
``vehicle_tampering`` are off, said on stderr. With ``--json`` stdout carries one JSON object
per line and nothing else (logs go to stderr):

    {"type": "incident", "source": PATH, "rule": NAME, "kind": KIND, "start_s": S, "end_s": S, "score": X}
    {"type": "summary", "source": PATH, "frames": N, "seconds": S, "peak": {KIND: X, ...}}
    {"type": "error", "source": PATH, "error": TEXT}

incidents of a source (seconds from its start; ``score`` the cue's peak), then its summary
(``peak``: the highest score each behaviour kind reached, 0.0 if never); a source that cannot
be run gets an error line instead and the others still run. Exit status: 0, 1 when a source
failed, 2 when the configuration or rules cannot be used.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kaiserslautern_vss.behaviour.model_status import model_less_warning, resolve_pose_model_path
from kaiserslautern_vss.behaviour.pose_estimator import PoseModelError
from kaiserslautern_vss.behaviour.stage import load_pose_estimator
from kaiserslautern_vss.behaviour.types import CUE_KINDS, BehaviourSettings
from kaiserslautern_vss.bringup.graph import GraphConfigError, NodeSpec, config_sections, load_graph
from kaiserslautern_vss.detection.factory import create_detector
from kaiserslautern_vss.detection.onnx_detector import DetectorSettingsError, ModelLoadError
from kaiserslautern_vss.events.rule_kinds import BehaviourRule
from kaiserslautern_vss.events.rule_schema import RuleConfigError, load_rules_file
from kaiserslautern_vss.parameters import detector as detector_parameters
from kaiserslautern_vss.parameters import privacy as privacy_parameters
from kaiserslautern_vss.parameters.spec import ParamSpec, validate_parameters
from kaiserslautern_vss.paths import share_dir
from kaiserslautern_vss.privacy.detection_validation import detector_labels
from kaiserslautern_vss.ros.exit_codes import EXIT_BAD_CONFIG
from kaiserslautern_vss.tools.dry_run import DryRun, DryRunError, DryRunSettings, SourceResult
from kaiserslautern_vss.tools.footage import VIDEO_CAMERA, FootageError

SITE_CONFIG = 'site_rathausvorplatz.yaml'
EXIT_SOURCE_FAILED = 1
LOG = logging.getLogger('kaiserslautern_vss.incidents')


class SetupError(Exception):
    """Configuration, rules or models the dry run cannot start with."""


def _node(nodes: Sequence[NodeSpec], executable: str) -> NodeSpec | None:
    return next((node for node in nodes if node.executable == executable), None)


def site_nodes(config: Path) -> list[NodeSpec]:
    """The config's validated nodes, with the pose model not required: without it the dry run
    still scores the box-and-track cues (and says so)."""
    try:
        detectors = [fqn for fqn in config_sections(config) if fqn.rpartition('/')[2] == 'detector']
        if not detectors:
            raise SetupError(f'{config}: no detector node configured')
        return load_graph(config, overrides={detectors[0]: {'require_pose_model': False}})
    except GraphConfigError as error:
        raise SetupError(str(error)) from error


def _loosest(limits: Sequence[float]) -> float:
    """Of the cameras' limits (0: none), the one letting most through."""
    return 0 if not limits or 0 in limits else max(limits)


def behaviour_rules(path: Path) -> list[BehaviourRule]:
    """The file's behaviour rules, on every camera at any time; other kinds are left out, said."""
    try:
        rules = load_rules_file(path)
    except RuleConfigError as error:
        raise SetupError(f'rules {path}:\n{error}') from error
    chosen = [rule.everywhere() for rule in rules if isinstance(rule, BehaviourRule)]
    others = [rule.name for rule in rules if not isinstance(rule, BehaviourRule)]
    if others:
        LOG.info('%d rule(s) of other kinds left out (the dry run applies behaviour rules): %s',
                 len(others), ', '.join(others))
    if not chosen:
        raise SetupError(f'rules {path}: no behaviour rule ({", ".join(CUE_KINDS)})')
    return chosen


def build_dry_run(config: Path, rules_path: Path | None, rate_hz: float | None) -> DryRun:
    nodes = site_nodes(config)
    detector_node, events = _node(nodes, 'detector'), _node(nodes, 'event_manager')
    drivers = [node.parameters for node in nodes if node.executable == 'camera_driver']
    if rules_path is None:
        if events is None:
            raise SetupError(f'{config}: no event manager (rules_file) configured; give --rules')
        rules_path = Path(events.parameters['rules_file'])
    rules = behaviour_rules(rules_path)
    values = detector_node.parameters  # load_graph refuses a config without one (site_nodes)
    privacy_values = _parameters(nodes, 'privacy', privacy_parameters.PARAMETERS)
    try:  # one stream at a time: the detector gets the cores a single camera would
        settings = detector_parameters.detector_settings({**values, 'cameras': [VIDEO_CAMERA]})
        detector, description = create_detector(settings, values['allow_hog_fallback'],
                                                values['require_privacy_grade_model'])
        pose_model = resolve_pose_model_path(values['pose_model_path'])
        pose = load_pose_estimator(pose_model, settings.intra_op_threads) if pose_model else None
    except (DetectorSettingsError, ModelLoadError, PoseModelError) as error:
        raise SetupError(str(error)) from error
    LOG.info('detector: %s; pose model: %s', description, pose_model or 'none')
    if pose is None:
        LOG.warning(model_less_warning())
    rate = _loosest([d['max_rate_hz'] for d in drivers]) if rate_hz is None else rate_hz
    LOG.info('%d behaviour rule(s) from %s; %s', len(rules), rules_path,
             f'{rate:g} frames/s of each source' if rate else 'every frame of each source')
    return DryRun(detector, pose, rules, DryRunSettings(
        rate_hz=rate, scheduler=detector_parameters.scheduler_settings(values),
        validation=privacy_parameters.validation_settings(
            privacy_values, detector_labels(detector, values['class_allowlist'])),
        behaviour=BehaviourSettings(pose_crops_per_frame=values['pose_crops_per_frame']),
        end_hold_s=events.parameters['end_hold_s'] if events else 3.0,
        max_width=int(_loosest([d['max_width'] for d in drivers])),
        max_height=int(_loosest([d['max_height'] for d in drivers]))))


def _parameters(nodes: Sequence[NodeSpec], executable: str, specs: Sequence[ParamSpec]) -> Mapping[str, Any]:
    node = _node(nodes, executable)
    return node.parameters if node else validate_parameters(specs, {}, f'{executable} defaults')


def json_lines(result: SourceResult) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = [
        {'type': 'incident', 'source': result.source, 'rule': part.rule, 'kind': part.kind,
         'start_s': round(part.start_s, 3), 'end_s': round(part.end_s, 3), 'score': round(part.score, 4)}
        for part in result.incidents]
    lines.append({'type': 'summary', 'source': result.source, 'frames': result.frames,
                  'seconds': round(result.seconds, 3),
                  'peak': {kind: round(score, 4) for kind, score in result.peak.items()}})
    return lines


def table(result: SourceResult) -> str:
    rows = [f'{result.source}: {len(result.incidents)} incident(s) in {result.seconds:.1f} s '
            f'({result.frames} frames analysed)']
    rows += [f'  {part.start_s:7.1f} s - {part.end_s:7.1f} s  {part.kind:<18} score {part.score:.2f}  '
             f'rule {part.rule}' for part in result.incidents]
    rows.append('  peak: ' + ', '.join(f'{kind} {score:.2f}' for kind, score in result.peak.items()))
    if result.failed_frames or result.undecodable:
        rows.append(f'  {result.failed_frames} frame(s) without detections (failed), '
                    f'{result.undecodable} undecodable')
    return '\n'.join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-incidents', description=__doc__.split('\n')[0])
    parser.add_argument('sources', nargs='+', type=Path, metavar='SOURCE', help='video file or rosbag2 folder')
    parser.add_argument('--rules', type=Path, help="rules file whose behaviour rules apply (default: the "
                                                   "config's event manager rules_file)")
    parser.add_argument('--config', type=Path, help=f'graph config (default: config/{SITE_CONFIG})')
    parser.add_argument('--rate', type=float, help="frames per second analysed (default: the config's "
                                                   'camera rate; 0: every frame)')
    parser.add_argument('--max-seconds', type=float, default=0.0,
                        help='only the first S seconds of each source (default: all)')
    parser.add_argument('--json', action='store_true', help='one JSON object per line on stdout')
    args = parser.parse_args(argv)
    if (args.rate is not None and not args.rate >= 0) or not args.max_seconds >= 0:
        parser.error('--rate and --max-seconds must be >= 0')
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format='vss-incidents: %(message)s')
    try:
        dry_run = build_dry_run(args.config or share_dir() / 'config' / SITE_CONFIG, args.rules, args.rate)
    except SetupError as error:
        print(f'vss-incidents: {error}', file=sys.stderr)
        return EXIT_BAD_CONFIG
    failed = 0
    for source in args.sources:
        started = time.monotonic()
        try:
            result = dry_run.run(source, args.max_seconds)
        except (FootageError, DryRunError) as error:
            failed += 1
            LOG.error('%s', error)
            if args.json:
                print(json.dumps({'type': 'error', 'source': str(source), 'error': str(error)}), flush=True)
            continue
        LOG.info('%s: %d frames in %.1f s', source, result.frames, time.monotonic() - started)
        if args.json:
            for line in json_lines(result):
                print(json.dumps(line), flush=True)
        else:
            print(table(result), flush=True)
    return EXIT_SOURCE_FAILED if failed else 0


if __name__ == '__main__':
    raise SystemExit(main())
