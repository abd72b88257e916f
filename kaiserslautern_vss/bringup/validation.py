"""The whole site configuration, checked before any process starts.

:func:`~kaiserslautern_vss.bringup.graph.load_graph` calls :func:`site_problems` once every
node's parameters passed the catalogue, so ``ros2 launch`` and ``vss-bringup`` refuse a bad
site alike and list every problem at once, instead of one node dying FATAL while the rest
of the graph runs and nothing records. Checked here, what nodes would find only after start:

- the event manager's rules file: readable, schema, durations, simple polygons, classes the
  detector's model knows and publishes (a misspelt class gets a suggestion), cameras the
  config file drives; its alert channels (events.alerts.alert_problems: an https webhook
  with a secret file);
- camera drivers: ids usable in topic names and unique, privacy zones, login settings;
- the detector: a privacy-grade model present where ``require_privacy_grade_model`` is set, the
  pose model where ``require_pose_model`` is set (and a configured one present), tracking
  under behaviour;
- every node: no secret in any URL (cameras, calibration, MQTT broker, webhook), camera ids
  usable in topic names, key and password files outside the event manager's record_root.

Each problem names the config file, the node and the field; rule problems also the rules
file and the rule. Nothing is opened but the rules file and a class-name file; no password
is read (the driver does that when it starts).
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaiserslautern_vss.behaviour.model_status import pose_model_problem
from kaiserslautern_vss.bind_address import bind_address_problem
from kaiserslautern_vss.bringup.node_spec import NodeSpec
from kaiserslautern_vss.camera.credentials import inline_secret, mask_url
from kaiserslautern_vss.camera.driver_config import CameraConfigError, check_camera_id, config_problems
from kaiserslautern_vss.detection.class_names import COCO_CLASS_NAMES, ClassNamesError, class_names_for_model
from kaiserslautern_vss.detection.grade import required_model_problem
from kaiserslautern_vss.events.alerts import alert_problems
from kaiserslautern_vss.events.rule_schema import References, RuleConfigError, check_rules, read_rule_configs
from kaiserslautern_vss.paths import resolve_model_path


#: endings of the names of parameters naming files or folders that hold secrets (signing_key_file,
#: mqtt_password_file, webhook_secret_file, the console's users_file, camera_events' secrets_dir,
#: ...): whoever can alter or export the recordings must not get them
SECRET_PATH_SUFFIXES = ('key_file', 'password_file', 'secret_file', 'users_file', 'secrets_dir')
#: parameters holding a bare host name, by the URL scheme it is used with
HOST_PARAMETERS = {'mqtt_host': 'mqtt'}


@dataclass(frozen=True)
class _Site:
    """What the checks of one node need to know about the rest of the site."""

    config_name: str
    cameras: tuple[str, ...]           # camera_id of every driver in the config file
    model_classes: tuple[str, ...]     # what the detector's model can name
    published_classes: frozenset[str]  # the detector's class_allowlist (empty: every class)
    record_root: Path | None           # the event manager's, resolved as the node does

    def camera_problem(self, camera: str) -> str:
        """A rule's camera must be driven by the config file."""
        if camera in self.cameras:
            return ''
        return (f'no camera driver in {self.config_name} has camera_id {camera!r} (configured: '
                f'{", ".join(self.cameras)}){_did_you_mean(camera, self.cameras)}')

    def class_problem(self, name: str) -> str:
        """A rule's class must be one the detector names and publishes."""
        if name not in self.model_classes:
            return f"{name!r} is not a class of the detector's model{_did_you_mean(name, self.model_classes)}"
        if self.published_classes and name not in self.published_classes:
            return f"{name!r} is never published: the detector's class_allowlist lacks it"
        return ''


def site_problems(config_path: Path, nodes: Sequence[NodeSpec], configured_cameras: Collection[str]) -> list[str]:
    """Every problem of the site: ``nodes`` with catalogue-validated parameters (the selected
    ones), ``configured_cameras`` the camera ids of all camera drivers in ``config_path``."""
    problems = [f'{config_path}: camera_id {camera!r} is configured for {count} camera drivers'
                for camera, count in Counter(configured_cameras).items() if count > 1]
    detector = _node(nodes, 'detector')
    model_classes = COCO_CLASS_NAMES
    if detector is not None:
        try:
            model_classes = _model_classes(detector.parameters)
        except ClassNamesError as error:
            problems.append(f'{config_path}: {detector.fqn}: class_names_path: {error}')
    event_manager = _node(nodes, 'event_manager')
    site = _Site(config_name=Path(config_path).name, cameras=tuple(configured_cameras),
                 model_classes=model_classes,
                 published_classes=frozenset(detector.parameters['class_allowlist'] if detector else ()),
                 record_root=Path(event_manager.parameters['record_root']).resolve() if event_manager else None)
    for node in nodes:
        node_problems = [*_url_problems(node.parameters), *_secret_file_problems(node.parameters, site),
                         *_camera_list_problems(node.parameters, site),
                         *_NODE_CHECKS.get(node.name, _nothing)(node.parameters, site)]
        problems += [f'{config_path}: {node.fqn}: {problem}' for problem in node_problems]
    return problems


def _node(nodes: Sequence[NodeSpec], name: str) -> NodeSpec | None:
    return next((node for node in nodes if node.name == name), None)


def _model_classes(values: Mapping[str, Any]) -> tuple[str, ...]:
    """The classes the detector will name: its class-name file, the one beside its model, else
    COCO (the model that setup installs; the HOG fallback, people only, is logged loudly)."""
    model = resolve_model_path(values['model_path'])
    if values['class_names_path'] or model:
        return class_names_for_model(model, values['class_names_path'])
    return COCO_CLASS_NAMES


def _did_you_mean(value: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(value, list(candidates), n=1)
    return f'; did you mean {close[0]!r}?' if close else ''


def _url_problems(values: Mapping[str, Any]) -> list[str]:
    """A secret in a URL shows in every parameter dump and log line."""
    problems = []
    for name, value in values.items():
        for text in value if isinstance(value, list) else [value]:
            if not isinstance(text, str) or not text:
                continue
            url = f'{HOST_PARAMETERS[name]}://{text}' if name in HOST_PARAMETERS and '://' not in text else text
            if '://' not in url:
                continue
            try:
                where = inline_secret(url)
            except ValueError as error:
                problems.append(f'{name}: {mask_url(url)} is not a valid URL: {error}')
                continue
            if where:
                problems.append(f'{name} {mask_url(url)} contains {where}; parameter dumps and logs would show '
                                'it: remove it and give the secret in the password file or environment variable '
                                'parameter of the node')
    return problems


def _secret_file_problems(values: Mapping[str, Any], site: _Site) -> list[str]:
    if site.record_root is None:
        return []
    problems = []
    for name, value in values.items():
        if not name.endswith(SECRET_PATH_SUFFIXES) or not value or not isinstance(value, str) \
                or (name == 'encryption_key_file' and values.get('encryption') is False):  # switched off: unused
            continue
        path = Path(value).expanduser().resolve()
        if path.is_relative_to(site.record_root):
            problems.append(f'{name} {path} lies inside the recordings (/vss/event_manager record_root '
                            f'{site.record_root}); whoever can alter or export them would get it: keep it outside')
    return problems


def _camera_list_problems(values: Mapping[str, Any], site: _Site) -> list[str]:
    """Ids served without a driver here (replay); drivers' own ids are checked with the driver."""
    problems = []
    for camera in values.get('cameras', ()):
        if camera in site.cameras:
            continue
        try:
            check_camera_id(camera)
        except CameraConfigError as error:
            problems.append(f'cameras: {error}')
    return problems


def _camera_driver_problems(values: Mapping[str, Any], site: _Site) -> list[str]:
    return config_problems(values)


def _detector_problems(values: Mapping[str, Any], site: _Site) -> list[str]:
    missing_model = required_model_problem(values['model_path'], values['require_privacy_grade_model'])
    return [f'class_allowlist: {name!r} is not a class of the model{_did_you_mean(name, site.model_classes)}'
            for name in values['class_allowlist'] if name not in site.model_classes] + \
        ([missing_model] if missing_model else []) + _behaviour_problems(values)


def _behaviour_problems(values: Mapping[str, Any]) -> list[str]:
    if not values['behaviour']:
        return ['require_pose_model is set but behaviour is off'] if values['require_pose_model'] else []
    missing_pose_model = pose_model_problem(values['pose_model_path'], values['require_pose_model'])
    return ([missing_pose_model] if missing_pose_model else []) + \
        ([] if values['tracking'] else ['behaviour needs tracking: the cues follow tracked persons over frames'])


def _event_manager_problems(values: Mapping[str, Any], site: _Site) -> list[str]:
    rules_file = values['rules_file']
    try:
        _, problems = check_rules(read_rule_configs(Path(rules_file)), References(site.camera_problem,
                                                                                 site.class_problem))
    except RuleConfigError as error:
        return [f'rules_file: {problem}' for problem in error.problems] + alert_problems(values)
    return [f'rules_file {rules_file}: {problem}' for problem in problems] + alert_problems(values)


def _camera_events_problems(values: Mapping[str, Any], site: _Site) -> list[str]:
    problem = bind_address_problem(values['bind_address'])
    return [f'bind_address {problem}'] if problem else []


def _operator_console_problems(values: Mapping[str, Any], site: _Site) -> list[str]:
    problem = bind_address_problem(values['bind_address'], 'the operator network interface')
    return [f'bind_address {problem}'] if problem else []


def _nothing(values: Mapping[str, Any], site: _Site) -> list[str]:
    return []


_NODE_CHECKS: dict[str, Callable[[Mapping[str, Any], _Site], list[str]]] = {
    'camera_driver': _camera_driver_problems,
    'detector': _detector_problems,
    'event_manager': _event_manager_problems,
    'camera_events': _camera_events_problems,
    'operator_console': _operator_console_problems,
}
