"""The node graph derived from one config file: what launch_ros and vss-bringup both start.

A config file is standard ``ros__parameters`` YAML keyed by fully qualified node name.
The last name segment is the executable (``/vss/cam01/camera_driver`` runs
``camera_driver`` in namespace ``/vss/cam01``). Parameters are validated against the
catalogue here, so a bad config fails before any process starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.bringup.validation import site_problems
from kaiserslautern_vss.parameters.catalogue import NODE_PARAMETERS
from kaiserslautern_vss.parameters.spec import ParameterError, validate_parameters

#: parameters naming files; relative values are resolved against the config file's folder
PATH_PARAMETERS = frozenset({'rules_file', 'camera_info_url', 'model_path', 'class_names_path',
                             'password_file', 'signing_key_file', 'encryption_key_file', 'outbox_path',
                             'mqtt_ca_file', 'mqtt_password_file', 'webhook_secret_file', 'webhook_ca_file',
                             'audit_key_file', 'audit_log_file', 'tls_ca_file', 'secrets_dir', 'users_file',
                             'tls_cert_file', 'tls_key_file', 'export_root'})
#: parameters whose default is derived from the configured camera drivers
CAMERA_LIST = 'cameras'


class GraphConfigError(ValueError):
    """A config file that cannot describe a valid graph."""


def load_graph(config_path: Path, cameras: Iterable[str] | None = None,
               overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[NodeSpec]:
    """Nodes and validated parameters; ``cameras`` restricts to a subset of camera ids,
    ``overrides`` maps node fqn -> parameter values applied on top of the file."""
    config_path = Path(config_path).resolve()
    sections = config_sections(config_path)
    for fqn, values in (overrides or {}).items():
        if fqn not in sections:
            raise GraphConfigError(f'override for {fqn}, which {config_path} does not define')
        sections[fqn] = {**sections[fqn], **values}

    drivers = {fqn: values for fqn, values in sections.items() if fqn.rsplit('/', 1)[-1] == 'camera_driver'}
    configured_cameras = [values.get('camera_id', '') for values in drivers.values()]
    selected = list(configured_cameras) if cameras is None else list(cameras)
    unknown = sorted(set(selected) - set(configured_cameras))
    if unknown:
        raise GraphConfigError(f'{config_path}: no camera driver configured for {", ".join(unknown)}; '
                               f'configured: {", ".join(configured_cameras)}')
    if not selected:
        raise GraphConfigError(f'{config_path}: no camera selected')

    nodes, problems = [], []
    for fqn, values in sections.items():
        namespace, _, executable = fqn.rpartition('/')
        if executable not in NODE_PARAMETERS:
            raise GraphConfigError(f'{config_path}: {fqn}: unknown executable {executable!r}; '
                                   f'known: {", ".join(NODE_PARAMETERS)}')
        if executable == 'camera_driver' and values.get('camera_id') not in selected:
            continue
        if executable != 'camera_driver':
            values = _restrict_cameras(fqn, values, selected)
        values = {name: _resolve_path(config_path, name, value) for name, value in values.items()}
        try:
            parameters = validate_parameters(NODE_PARAMETERS[executable], values, f'{config_path}: {fqn}')
        except ParameterError as error:
            problems.append(str(error))  # reported together with the other nodes' and the site's problems
            continue
        nodes.append(NodeSpec(executable, executable, namespace or '/', parameters))
    problems += site_problems(config_path, nodes, configured_cameras)  # rules, keys, URLs, zones, ids
    if problems:
        raise GraphConfigError('\n'.join(problems))
    return nodes


def config_sections(config_path: Path) -> dict[str, dict[str, Any]]:
    """The file's ros__parameters by node fqn, as written (not yet validated)."""
    try:
        document = yaml.safe_load(Path(config_path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise GraphConfigError(f'cannot read graph config {config_path}: {error}') from error
    if not isinstance(document, dict) or not document:
        raise GraphConfigError(f'{config_path}: expected a mapping of node names to ros__parameters')
    return {fqn: _parameters_of(config_path, fqn, section) for fqn, section in document.items()}


def _parameters_of(config_path: Path, fqn: Any, section: Any) -> dict[str, Any]:
    if not isinstance(fqn, str) or not fqn.startswith('/') or fqn.endswith('/'):
        raise GraphConfigError(f'{config_path}: {fqn!r} is not a fully qualified node name like /vss/detector')
    if not isinstance(section, dict) or set(section) != {'ros__parameters'} \
            or not isinstance(section['ros__parameters'], dict):
        raise GraphConfigError(f'{config_path}: {fqn} must hold exactly one ros__parameters mapping')
    return dict(section['ros__parameters'])


def _restrict_cameras(fqn: str, values: dict[str, Any], selected: list[str]) -> dict[str, Any]:
    configured = values.get(CAMERA_LIST)
    if configured is None:
        return {**values, CAMERA_LIST: list(selected)}
    missing = sorted(set(selected) - set(configured))
    if missing:
        raise GraphConfigError(f'{fqn}: cameras {", ".join(missing)} are driven but not served here')
    return {**values, CAMERA_LIST: [c for c in configured if c in selected]}


def _resolve_path(config_path: Path, name: str, value: Any) -> Any:
    if name in PATH_PARAMETERS and isinstance(value, str) and value and '://' not in value \
            and not Path(value).expanduser().is_absolute():
        return str((config_path.parent / value).resolve())
    return value


def parameters_yaml(*nodes: NodeSpec) -> str:
    """The nodes' parameters as one ros__parameters file (for --params-file)."""
    return yaml.safe_dump({node.fqn: {'ros__parameters': node.parameters} for node in nodes}, sort_keys=False)


#: the one process hosting every camera driver, the detector and the privacy node: frames and
#: detections change hands in memory, so no other process can feed the privacy stage
VISION_PIPELINE = 'vision_pipeline'
PIPELINE_NODES = frozenset({'camera_driver', 'detector', 'privacy'})


def process_groups(specs: list[NodeSpec]) -> list[list[NodeSpec]]:
    """Which nodes share a process: camera drivers, detector and privacy node all in the vision
    pipeline process (see :data:`VISION_PIPELINE`), every other node in its own."""
    pipeline = [spec for spec in specs if spec.executable in PIPELINE_NODES]
    others = [[spec] for spec in specs if spec.executable not in PIPELINE_NODES]
    return ([pipeline] if pipeline else []) + others


def group_executable(group: list[NodeSpec]) -> str:
    """The executable that hosts ``group`` (one of :func:`process_groups`)."""
    return VISION_PIPELINE if group[0].executable in PIPELINE_NODES else group[0].executable


def group_command_arguments(group: list[NodeSpec]) -> list[str]:
    """Arguments before --ros-args that make the group's executable host it: the vision pipeline
    is given its nodes' fully qualified names; a single node is renamed by remapping."""
    if group_executable(group) == VISION_PIPELINE:
        return [spec.fqn for spec in group] + ['--ros-args']
    return ['--ros-args', '-r', f'__node:={group[0].name}', '-r', f'__ns:={group[0].namespace}']
