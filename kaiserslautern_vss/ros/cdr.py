"""Fields read straight from serialized (CDR) messages, without building the message.

A subscriber that only forwards or stores a message (the event manager's recorder, a
benchmark timing arrivals) needs its header stamp, not a Python object with a copy of a
50 kB JPEG: ``raw=True`` subscriptions plus :func:`header_stamp_ns_from_cdr`.
"""

from __future__ import annotations

import struct

from kaiserslautern_vss.timekeeping import NS_PER_S

#: CDR encapsulation identifiers (what ROS 2 middlewares write) -> struct byte order
_BYTE_ORDERS = {b'\x00\x00': '>', b'\x00\x01': '<'}
_ENCAPSULATION = 4
_STAMP = struct.calcsize('<iI')


class CdrError(ValueError):
    """A payload that is not a CDR message starting with a std_msgs/Header."""


def header_stamp_ns_from_cdr(payload: bytes | memoryview) -> int:
    """The ``header.stamp`` of a message whose first field is a std_msgs/Header, in ns.

    Header's first member is builtin_interfaces/Time (int32 sec, uint32 nanosec), aligned
    at the start of the body, right after the 4-byte encapsulation header.
    """
    byte_order = _BYTE_ORDERS.get(bytes(payload[:2]))
    if byte_order is None or len(payload) < _ENCAPSULATION + _STAMP:
        raise CdrError(f'not a CDR message with a header ({len(payload)} bytes, '
                       f'encapsulation {bytes(payload[:2]).hex() or "missing"})')
    sec, nanosec = struct.unpack_from(f'{byte_order}iI', payload, _ENCAPSULATION)
    return sec * NS_PER_S + nanosec
