"""Whether behaviour runs with the pose model, said before start and on the bus, like the
detector's grade (kaiserslautern_vss.detection.grade).

Kept free of onnxruntime so that the bringup can check a configuration before any process starts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from kaiserslautern_vss.behaviour.types import CUE_KINDS, POSE_CUES
from kaiserslautern_vss.paths import POSE_MODEL_FILE, model_search_dirs, resolve_model_path

#: schema of the behaviour stage's start-up message on /vss/events
BEHAVIOUR_INFO_SCHEMA = 'kaiserslautern_vss/behaviour_info/v1'
GET_POSE_MODEL = 'scripts/get_pose_model.sh'


def resolve_pose_model_path(configured: str) -> str:
    """The configured pose model, else the first pose/movenet_lightning.onnx found; '' when none."""
    return resolve_model_path(configured, POSE_MODEL_FILE)


def pose_model_problem(configured: str, required: bool) -> str | None:
    """Why a configuration would be refused, or None: a configured pose model that does not
    exist, or none found where one is required (searched as the node will, not loaded)."""
    if configured and not Path(configured).is_file():
        return f"pose_model_path '{configured}' does not exist; {_install_hint()}"
    if required and not resolve_pose_model_path(configured):
        return (f'require_pose_model is set but no pose model was found ({POSE_MODEL_FILE} in none of the '
                f'model folders): assault and vehicle_tampering need it. {_install_hint()}')
    return None


def active_cues(pose_model: bool) -> tuple[str, ...]:
    """The cue kinds scored with or without the pose model."""
    return tuple(kind for kind in CUE_KINDS if pose_model or kind not in POSE_CUES)


def model_less_warning() -> str:
    """What /diagnostics and the log say while no pose model is loaded."""
    return (f'NO pose model: only {" and ".join(active_cues(False))} are scored, '
            f'{" and ".join(sorted(POSE_CUES))} are OFF; {_install_hint()}')


def _install_hint() -> str:
    places = ', '.join(str(directory / POSE_MODEL_FILE) for directory in model_search_dirs())
    return (f'install MoveNet SinglePose Lightning ({GET_POSE_MODEL}) as one of: {places} '
            "(or point VSS_MODEL_DIR or the detector's pose_model_path at it)")


def behaviour_info_json(node: str, pose_model: str, cameras: Sequence[str]) -> str:
    """The behaviour stage's start-up information for /vss/events: which cues run, on which model."""
    return json.dumps({'schema': BEHAVIOUR_INFO_SCHEMA, 'node': node, 'pose_model': pose_model or None,
                       'cues': list(active_cues(bool(pose_model))), 'cameras': list(cameras),
                       **({} if pose_model else {'warning': model_less_warning()})}, sort_keys=True)
