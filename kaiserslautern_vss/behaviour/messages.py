"""The behaviour topic's payload (``/vss/<cam>/behaviour``, ``std_msgs/String``): versioned JSON.

    {"schema": "vss.behaviour/1", "camera": "cam01", "stamp_ns": 1700000000000000000,
     "pose_cues": true,
     "cues": [{"kind": "assault", "score": 0.83, "track_ids": [3, 7],
               "evidence": {"limb_speed_heights_per_s": 3.1}}]}

The vision pipeline writes it; the event manager (and anyone else on the host) reads it, so
decoding trusts nothing: size, depth, types and ranges are checked, and anything else is a
:class:`BehaviourMessageError` naming what is wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from kaiserslautern_vss.behaviour.types import CUE_KINDS, BehaviourResult, Cue
from kaiserslautern_vss.bounded_json import UntrustedJsonError, parse_untrusted_json

SCHEMA = 'vss.behaviour/1'
MAX_BYTES = 64 * 1024
MAX_CUES = 64
MAX_TRACKS_PER_CUE = 32
MAX_EVIDENCE = 16


class BehaviourMessageError(ValueError):
    """A behaviour message that is not valid ``vss.behaviour/1``."""


@dataclass(frozen=True)
class BehaviourMessage:
    camera_id: str
    stamp_ns: int
    pose_cues: bool
    cues: tuple[Cue, ...]


def encode_behaviour(camera_id: str, stamp_ns: int, result: BehaviourResult) -> str:
    return json.dumps({
        'schema': SCHEMA, 'camera': camera_id, 'stamp_ns': int(stamp_ns), 'pose_cues': result.pose_cues,
        'cues': [{'kind': cue.kind, 'score': round(float(cue.score), 4), 'track_ids': [int(t) for t in cue.track_ids],
                  'evidence': {name: round(float(value), 4) for name, value in cue.evidence.items()}}
                 for cue in result.cues]}, separators=(',', ':'))


def decode_behaviour(text: str) -> BehaviourMessage:
    try:
        document = parse_untrusted_json(text, max_bytes=MAX_BYTES, max_depth=4)
    except UntrustedJsonError as error:
        raise BehaviourMessageError(str(error)) from error
    if not isinstance(document, dict) or document.get('schema') != SCHEMA:
        raise BehaviourMessageError(f'not a {SCHEMA} object')
    camera, stamp_ns, pose_cues, cues = (document.get(key) for key in ('camera', 'stamp_ns', 'pose_cues', 'cues'))
    if not isinstance(camera, str) or not camera:
        raise BehaviourMessageError('camera must be a non-empty string')
    if not isinstance(stamp_ns, int) or isinstance(stamp_ns, bool) or stamp_ns < 0:
        raise BehaviourMessageError('stamp_ns must be a non-negative integer')
    if not isinstance(pose_cues, bool):
        raise BehaviourMessageError('pose_cues must be true or false')
    if not isinstance(cues, list) or len(cues) > MAX_CUES:
        raise BehaviourMessageError(f'cues must be a list of at most {MAX_CUES}')
    return BehaviourMessage(camera, stamp_ns, pose_cues, tuple(_cue(item) for item in cues))


def _cue(item: object) -> Cue:
    if not isinstance(item, dict):
        raise BehaviourMessageError('each cue must be an object')
    kind, score, track_ids, evidence = (item.get(key) for key in ('kind', 'score', 'track_ids', 'evidence'))
    if kind not in CUE_KINDS:
        raise BehaviourMessageError(f'unknown cue kind {str(kind)[:40]!r}')
    if not _is_number(score) or not 0.0 <= score <= 1.0:
        raise BehaviourMessageError(f'{kind}: score must be a number in [0, 1]')
    if (not isinstance(track_ids, list) or len(track_ids) > MAX_TRACKS_PER_CUE
            or not all(isinstance(t, int) and not isinstance(t, bool) for t in track_ids)):
        raise BehaviourMessageError(f'{kind}: track_ids must be a list of at most {MAX_TRACKS_PER_CUE} integers')
    if (not isinstance(evidence, dict) or len(evidence) > MAX_EVIDENCE
            or not all(isinstance(name, str) and len(name) <= 64 and _is_number(value)
                       for name, value in evidence.items())):
        raise BehaviourMessageError(f'{kind}: evidence must map at most {MAX_EVIDENCE} short names to numbers')
    return Cue(kind, float(score), tuple(track_ids), {name: float(value) for name, value in evidence.items()})


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
