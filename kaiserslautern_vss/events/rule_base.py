"""What every incident rule has: its name, cameras, classes, time windows and minimum
duration (:class:`RuleSettings`), and the :class:`Rule` interface each kind in
:mod:`~kaiserslautern_vss.events.rule_kinds` implements.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from typing import TYPE_CHECKING, ClassVar
from zoneinfo import ZoneInfo

from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.timekeeping import DEFAULT_TIMEZONE

if TYPE_CHECKING:  # for annotations only: the schema imports the kinds
    from kaiserslautern_vss.events.rule_schema import RuleFields

#: the rule name of manual triggers and alarms without camera_event rules
MANUAL_RULE = 'manual'
_WINDOW_PATTERN = re.compile(r'^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$')


@dataclass(frozen=True)
class TimeWindow:
    """Local time-of-day window ``[start, end)``; wraps past midnight when end < start."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> TimeWindow:
        """``'22:00-06:00'`` -> window; raises ValueError on bad syntax or empty window."""
        match = _WINDOW_PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"expected 'HH:MM-HH:MM', got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        try:
            window = cls(time(h1, m1), time(h2, m2))
        except ValueError:
            raise ValueError(f'not a valid time of day in {text!r}') from None
        if window.start == window.end:
            raise ValueError(f'window {text!r} is empty (start equals end)')
        return window

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True)
class RuleSettings:
    """Fields every rule has."""

    name: str
    camera: str
    classes: frozenset[str] = frozenset({'person'})
    time_windows: tuple[TimeWindow, ...] = ()
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    min_duration_s: float = 0.0

    def active_at(self, stamp_ns: int) -> bool:
        """Inside one of the time windows (local time), or always when none are set."""
        if not self.time_windows:
            return True
        local = datetime.fromtimestamp(stamp_ns / 1e9, tz=timezone.utc).astimezone(self.timezone)
        return any(window.contains(local.time()) for window in self.time_windows)


class Rule(ABC):
    """One configured condition on one camera's image."""

    kind: ClassVar[str]

    def __init__(self, settings: RuleSettings) -> None:
        self.settings = settings

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def camera(self) -> str:
        return self.settings.camera

    @property
    def cameras(self) -> tuple[str, ...]:
        """The cameras the rule watches; () for every camera (kinds with a camera list)."""
        return (self.settings.camera,)

    def applies_to(self, camera: str) -> bool:
        return not self.cameras or camera in self.cameras

    @abstractmethod
    def violating(self, stamp_ns: int, detections: Detections) -> Detections:
        """The objects that violate the rule in this frame; empty when the condition is false.

        Called for every frame of the rule's camera, also outside its time windows, so that
        rules with memory (tracks, dwell times) stay current.
        """

    @classmethod
    @abstractmethod
    def from_fields(cls, fields: RuleFields) -> Rule:
        """The rule from its config fields (:class:`~kaiserslautern_vss.events.rule_schema.RuleFields`
        collects every problem with them)."""
