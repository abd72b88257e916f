"""Behaviour rule kinds: ``assault``, ``person_down``, ``fleeing``, ``vehicle_tampering``.

They fire on the behaviour stage's cues (``/vss/<cam>/behaviour``), not on detections: the
condition holds while a cue of the rule's kind scores at least ``threshold``. Fields::

    - name: assault_anywhere
      kind: assault
      threshold: 0.6            # cue score in (0, 1] that counts
      min_duration_s: 0.5       # debounced like every rule
      cameras: [cam01, cam04]   # omitted: every camera
      zone: [[x, y], ...]       # optional: one of the cue's tracks stands (box bottom-centre) inside
      time_windows: ['22:00-06:00']
      timezone: Europe/Berlin

A single ``camera:`` is refused with a hint: these kinds watch a list of cameras.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial
import numpy as np

from kaiserslautern_vss.behaviour.types import CUE_KINDS, Cue
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.events.rules import RULE_PARSERS, Rule, RuleSettings, _Fields
from kaiserslautern_vss.events.zones import Zone, foot_points


class BehaviourRule(Rule):
    """A cue of ``kind`` at or above ``threshold`` on one of ``cameras`` (empty: every camera),
    with one of its tracks in ``zone`` when one is set."""

    def __init__(self, settings: RuleSettings, kind: str, cameras: tuple[str, ...], threshold: float,
                 zone: Zone | None) -> None:
        super().__init__(settings)
        self.kind = kind  # one class serves the four cue kinds
        self._cameras, self.threshold, self.zone = cameras, threshold, zone

    @property
    def cameras(self) -> tuple[str, ...]:
        return self._cameras

    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        return Detections.empty()  # fires on cues only (RuleEngine.behaviour)

    def match(self, cues: Sequence[Cue], placed: Detections) -> tuple[Cue, Detections] | None:
        """The strongest cue of this kind that counts, and its tracks among ``placed`` (the
        camera's latest detections); None when none does."""
        for cue in sorted((c for c in cues if c.kind == self.kind and c.score >= self.threshold),
                          key=lambda c: c.score, reverse=True):
            tracks = placed.select(np.isin(placed.track_ids, cue.track_ids)) if len(placed) else placed
            if self.zone is None:
                return cue, tracks
            inside = tracks.select(self.zone.contains(foot_points(tracks.boxes)))
            if len(inside):
                return cue, inside
        return None

    def everywhere(self) -> BehaviourRule:
        """This rule on every camera at any time of day: footage in a dry run has neither a site
        camera nor a time of day."""
        return BehaviourRule(dataclasses.replace(self.settings, time_windows=()), self.kind, (), self.threshold,
                             self.zone)


def _threshold(fields: _Fields, key: str) -> float:
    if not fields.given(key):
        return fields.problem(key, 'is required', 1.0)
    value = fields.raw(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:  # NaN fails too
        return fields.problem(key, f'must be a cue score in (0, 1], got {value!r}', 1.0)
    return float(value)


def _behaviour(kind: str, fields: _Fields) -> Rule:
    name = fields.string('name')
    if fields.given('camera'):
        fields.raw('camera')
        fields.problem('camera', f'{kind} rules watch a list of cameras: write cameras: [...] '
                                 '(omit it for every camera)')
    cameras = fields.camera_list('cameras')
    settings = fields.common_settings(name, '', frozenset({'person'}))
    return BehaviourRule(settings, kind, cameras, _threshold(fields, 'threshold'), fields.zone('zone', None))


RULE_PARSERS.update({kind: partial(_behaviour, kind) for kind in CUE_KINDS})
