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
_SEQUENCE_LENGTH = struct.calcsize('<I')


class CdrError(ValueError):
    """A payload that is not a CDR message starting with a std_msgs/Header."""


def header_stamp_ns_from_cdr(payload: bytes | memoryview) -> int:
    """The ``header.stamp`` of a message whose first field is a std_msgs/Header, in ns.

    Header's first member is builtin_interfaces/Time (int32 sec, uint32 nanosec), aligned
    at the start of the body, right after the 4-byte encapsulation header.
    """
    return _stamp_at(payload, 0)


def first_element_stamp_ns_from_cdr(payload: bytes | memoryview) -> int:
    """The ``header.stamp`` of the first element of a message that is one sequence of messages
    starting with a Header (visualization_msgs/MarkerArray), in ns; CdrError when it is empty.

    The sequence's uint32 length comes first; its first element's stamp follows, 4-aligned.
    """
    (count,) = struct.unpack_from(f'{_byte_order(payload, _SEQUENCE_LENGTH)}I', payload, _ENCAPSULATION)
    if count == 0:
        raise CdrError('an empty sequence has no stamp')
    return _stamp_at(payload, _SEQUENCE_LENGTH)


def _byte_order(payload: bytes | memoryview, body_bytes: int) -> str:
    byte_order = _BYTE_ORDERS.get(bytes(payload[:2]))
    if byte_order is None or len(payload) < _ENCAPSULATION + body_bytes:
        raise CdrError(f'not a CDR message with a header ({len(payload)} bytes, '
                       f'encapsulation {bytes(payload[:2]).hex() or "missing"})')
    return byte_order


def _stamp_at(payload: bytes | memoryview, body_offset: int) -> int:
    byte_order = _byte_order(payload, body_offset + _STAMP)
    sec, nanosec = struct.unpack_from(f'{byte_order}iI', payload, _ENCAPSULATION + body_offset)
    return sec * NS_PER_S + nanosec
