"""Incident rules from plain (YAML-loaded) configuration: reading and checking the fields.

Each kind (:data:`~kaiserslautern_vss.events.rule_kinds.RULE_KINDS`) reads its own fields
through :class:`RuleFields`, which collects every problem, so one look at a rules file
lists everything to fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import yaml

from kaiserslautern_vss.events.rule_base import MANUAL_RULE, Rule, RuleSettings, TimeWindow
from kaiserslautern_vss.events.rule_kinds import RULE_KINDS
from kaiserslautern_vss.events.zones import Zone, ZoneConfigError
from kaiserslautern_vss.timekeeping import DEFAULT_TIMEZONE

#: a rule's name goes into incident ids, folder names, topics' JSON and log lines: an identifier
RULE_NAME = re.compile(r'[A-Za-z][A-Za-z0-9_-]{0,63}')

_REQUIRED = object()


class RuleConfigError(ValueError):
    """A rule configuration is invalid; one line per problem, each naming the rule and the field."""

    def __init__(self, *problems: str) -> None:
        super().__init__('\n'.join(problems))
        self.problems = problems


@dataclass(frozen=True)
class References:
    """Checks of the names a rule refers to, supplied by whoever knows the site (the bringup
    knows the configured cameras and the detector's classes); each returns why a name cannot
    be used, or '' when it can."""

    camera: Callable[[str], str]
    class_name: Callable[[str], str]


_ANY_NAME = References(camera=lambda name: '', class_name=lambda name: '')


class RuleFields:
    """Reads one rule's config dict field by field, collecting exact, named problems.

    A field with a problem reads as a harmless stand-in value, so that the rest of the rule is
    still read and every problem of the rule is reported at once; :func:`parse_rule` then
    refuses the rule.
    """

    def __init__(self, config: Mapping[str, Any], index: int, references: References | None = None) -> None:
        if not isinstance(config, Mapping):
            raise RuleConfigError(f'rule #{index}: must be a mapping, got {type(config).__name__}')
        self._config = dict(config)
        self._used: set[str] = set()
        self._references = references or _ANY_NAME
        self.problems: list[str] = []
        name = self._config.get('name')
        self.rule = name if isinstance(name, str) and name else f'#{index}'

    def problem(self, key: str, problem: str, stand_in: Any = None) -> Any:
        self.problems.append(f'rule {self.rule!r}: field {key!r}: {problem}')
        return stand_in

    def given(self, key: str) -> bool:
        return key in self._config

    def raw(self, key: str, default: Any = _REQUIRED) -> Any:
        """The value, the default, or _REQUIRED when a required field is missing (a problem)."""
        self._used.add(key)
        if key not in self._config:
            return self.problem(key, 'is required', _REQUIRED) if default is _REQUIRED else default
        return self._config[key]

    def string(self, key: str, default: Any = _REQUIRED) -> str:
        value = self.raw(key, default)
        if value is _REQUIRED:
            return ''
        if not isinstance(value, str) or not value:
            return self.problem(key, f'must be a non-empty string, got {value!r}', '')
        return value

    def number(self, key: str, default: Any = _REQUIRED, minimum: float = 0.0) -> float:
        value = self.raw(key, default)
        if value is _REQUIRED:
            return minimum
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return self.problem(key, f'must be a number, got {value!r}', minimum)
        if value < minimum:
            return self.problem(key, f'must be >= {minimum:g}, got {value!r}', minimum)
        return float(value)

    def strings(self, key: str, default: Any = _REQUIRED) -> list[str] | None:
        """The list, or None after a problem."""
        value = self.raw(key, default)
        if value is _REQUIRED:
            return None
        if (not isinstance(value, (list, tuple))
                or not all(isinstance(v, str) and v for v in value)):
            return self.problem(key, f'must be a list of non-empty strings, got {value!r}')
        return list(value)

    def class_names(self, key: str, default: Sequence[str]) -> frozenset[str]:
        """A non-empty list of class names, each checked against the detector's when known."""
        names = self.strings(key, list(default))
        if names is None:
            return frozenset()
        if not names:
            return self.problem(key, 'must not be empty', frozenset())
        for name in names:
            self._refer(key, self._references.class_name, name)
        return frozenset(names)

    def _refer(self, key: str, check: Callable[[str], str], name: str) -> None:
        problem = check(name)
        if problem:
            self.problem(key, problem)

    def score(self, key: str) -> float:
        """A required cue score threshold in (0, 1]."""
        value = self.raw(key)
        if value is _REQUIRED:
            return 1.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:  # NaN fails
            return self.problem(key, f'must be a cue score in (0, 1], got {value!r}', 1.0)
        return float(value)

    def camera_list(self, key: str) -> tuple[str, ...]:
        """Camera ids, each checked against the site's; omitted: () = every camera."""
        cameras = self.strings(key, [])
        if cameras is None:
            return ()
        if not cameras and self.given(key):
            return self.problem(key, 'must not be empty (omit it for every camera)', ())
        for camera in sorted(set(cameras)):
            if cameras.count(camera) > 1:
                self.problem(key, f'lists {camera!r} twice')
            self._refer(key, self._references.camera, camera)
        return tuple(dict.fromkeys(cameras))

    def settings(self, default_classes: Sequence[str] = ('person',)) -> RuleSettings:
        """The fields of a rule on one camera: ``camera`` and ``classes`` besides the common ones."""
        name = self.string('name')
        if name and not RULE_NAME.fullmatch(name):
            name = self.problem('name', f'must be a letter, then up to 63 letters, digits, _ or -; got {name!r}', '')
        camera = self.string('camera')
        if camera:
            self._refer('camera', self._references.camera, camera)
        return self.common_settings(name, camera, self.class_names('classes', default_classes))

    def common_settings(self, name: str, camera: str, classes: frozenset[str]) -> RuleSettings:
        """Time windows, time zone and minimum duration, which every rule kind has."""
        windows = []
        for text in self.strings('time_windows', []) or []:
            try:
                windows.append(TimeWindow.parse(text))
            except ValueError as problem:
                self.problem('time_windows', str(problem))
        tz_name = self.string('timezone', DEFAULT_TIMEZONE)
        try:
            tz = ZoneInfo(tz_name or DEFAULT_TIMEZONE)
        except (ZoneInfoNotFoundError, ValueError):
            tz = self.problem('timezone', f'unknown time zone {tz_name!r}', ZoneInfo(DEFAULT_TIMEZONE))
        return RuleSettings(name=name, camera=camera, classes=classes, time_windows=tuple(windows), timezone=tz,
                            min_duration_s=self.number('min_duration_s', 0.0))

    def integer(self, key: str, default: Any = _REQUIRED, minimum: int = 0) -> int:
        value = self.raw(key, default)
        if value is _REQUIRED:
            return minimum
        if isinstance(value, bool) or not isinstance(value, int):
            return self.problem(key, f'must be an integer, got {value!r}', minimum)
        if value < minimum:
            return self.problem(key, f'must be >= {minimum}, got {value!r}', minimum)
        return value

    def choice(self, key: str, options: Sequence[str], default: Any = _REQUIRED) -> str:
        value = self.raw(key, default)
        if value is _REQUIRED:
            return options[0]
        if value not in options:
            return self.problem(key, f'must be one of {", ".join(options)}; got {value!r}', options[0])
        return value

    def zone(self, key: str, default: Any = _REQUIRED) -> Zone | None:
        value = self.raw(key, default)
        if value is _REQUIRED or (value is None and default is None):
            return None
        try:
            return Zone(self.rule, np.asarray(value, dtype=float))
        except (ZoneConfigError, TypeError, ValueError) as problem:
            return self.problem(key, str(problem))

    def segment(self, key: str) -> np.ndarray:
        value = self.raw(key)
        stand_in = np.array([[0.0, 0.0], [1.0, 0.0]])
        if value is _REQUIRED:
            return stand_in
        try:
            points = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            points = np.zeros(0)
        if points.shape != (2, 2) or not np.isfinite(points).all():
            return self.problem(key, 'must be two [x, y] points', stand_in)
        if np.allclose(points[0], points[1]):
            return self.problem(key, 'the two points must differ', stand_in)
        return points

    def finish(self) -> None:
        unknown = sorted(set(self._config) - self._used)
        if unknown:
            self.problems.append(f'rule {self.rule!r}: unknown field(s) {", ".join(map(repr, unknown))}')


def parse_rule(config: Mapping[str, Any], index: int = 0, references: References | None = None) -> Rule:
    """One rule from its config dict (``kind`` selects the rule type); raises RuleConfigError
    listing every problem of the rule."""
    fields = RuleFields(config, index, references)
    kind = fields.string('kind')
    rule_kind = RULE_KINDS.get(kind)
    if rule_kind is None:
        if kind:
            fields.problem('kind', f'unknown rule kind {kind!r}; known: {", ".join(sorted(RULE_KINDS))}')
        raise RuleConfigError(*fields.problems)  # the other fields depend on the kind
    rule = rule_kind.from_fields(fields)
    fields.finish()
    if fields.problems:
        raise RuleConfigError(*fields.problems)
    return rule


def check_rules(configs: Iterable[Mapping[str, Any]],
                references: References | None = None) -> tuple[list[Rule], list[str]]:
    """The rules that parse and every problem of the others, so that one look at a rules file
    lists everything to fix; names must be unique."""
    if isinstance(configs, (str, bytes, Mapping)) or not isinstance(configs, Iterable):
        raise RuleConfigError(f'rules must be a list of mappings, got {type(configs).__name__}')
    rules, problems = [], []
    for index, config in enumerate(configs):
        try:
            rules.append(parse_rule(config, index, references))
        except RuleConfigError as error:
            problems.extend(error.problems)
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen or rule.name == MANUAL_RULE:
            problems.append(f'rule {rule.name!r}: field \'name\': '
                            + ('is reserved' if rule.name == MANUAL_RULE else 'is used twice'))
        seen.add(rule.name)
    return rules, problems


def parse_rules(configs: Iterable[Mapping[str, Any]]) -> list[Rule]:
    """All rules of a config list; raises RuleConfigError listing every problem."""
    rules, problems = check_rules(configs)
    if problems:
        raise RuleConfigError(*problems)
    return rules


def read_rule_configs(path: Path) -> Any:
    """The ``rules`` entry of a YAML file holding ``rules: [...]``, unparsed."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise RuleConfigError(f'cannot read rules file {path}: {error.strerror}') from error
    except yaml.YAMLError as error:
        raise RuleConfigError(f'rules file {path} is not valid YAML: {error}') from error
    if not isinstance(document, dict) or 'rules' not in document:
        raise RuleConfigError(f'{path}: expected a mapping with a "rules" list')
    return document['rules']


def load_rules_file(path: Path) -> list[Rule]:
    """The rules of a YAML file holding ``rules: [...]``."""
    return parse_rules(read_rule_configs(path))
