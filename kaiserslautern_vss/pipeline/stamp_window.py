"""Frames stamped too far from the node's clock are refused, one by one.

Stamps come from the capture (the camera's own clock for cameras that send one, bag time in
a replay); tracking, motion gating, rules and recordings all order frames by them. One
frame stamped a day ahead must not make every later frame look old, so a stamp outside
``tolerance_s`` around the node's clock is refused before the frame reaches any state, and
the next good frame goes through as if the bad one never came.
"""

from __future__ import annotations

from dataclasses import dataclass

from kaiserslautern_vss.timekeeping import NS_PER_S

FUTURE = 'stamped in the future'
PAST = 'stamped in the past'


class StampWindowError(ValueError):
    """An invalid tolerance."""


@dataclass(frozen=True)
class StampWindow:
    tolerance_s: float

    def __post_init__(self) -> None:
        if not self.tolerance_s > 0:
            raise StampWindowError(f'stamp tolerance must be positive, got {self.tolerance_s}')

    def refusal(self, stamp_ns: int, now_ns: int) -> str | None:
        """Why a frame stamped ``stamp_ns`` is refused at ``now_ns``, or None when it is in time."""
        offset_s = (stamp_ns - now_ns) / NS_PER_S
        if offset_s > self.tolerance_s:
            return FUTURE
        if offset_s < -self.tolerance_s:
            return PAST
        return None
