"""Random and adversarial payloads for any ROS message or service request type.

Raw kinds are bytes published as they are (a generic publisher sends them as the topic's CDR);
typed kinds are messages of the type, built from its introspection, with every field at an
extreme: NaN and infinities, integers (stamps too) at their limits, 10,000-element sequences,
100 kB strings. String topics get JSON kinds on top (/vss/events is JSON).
"""

from __future__ import annotations

import math
import os
import random
import re
import struct
from collections.abc import Callable
from typing import Any

from rosidl_runtime_py.utilities import get_message
from std_msgs.msg import String

CDR_LE = b'\x00\x01\x00\x00'  # encapsulation header: CDR, little endian
MANY = 10_000
LONG_TEXT = 100_000

_INT_RANGES = {'int8': (-2**7, 2**7 - 1), 'int16': (-2**15, 2**15 - 1), 'int32': (-2**31, 2**31 - 1),
               'int64': (-2**63, 2**63 - 1), 'uint8': (0, 2**8 - 1), 'uint16': (0, 2**16 - 1),
               'uint32': (0, 2**32 - 1), 'uint64': (0, 2**64 - 1), 'char': (0, 255), 'byte': (0, 255),
               'octet': (0, 255)}
_FLOATS = {'float', 'double', 'float32', 'float64', 'long double'}
_ARRAY = re.compile(r'^(?P<item>.+)\[(?P<size>\d+)\]$')
_SEQUENCE = re.compile(r'^sequence<(?P<item>[^,>]+)(?:, ?(?P<bound>\d+))?>$')
_BOUNDED_STRING = re.compile(r'^(?:w?string)<=(?P<bound>\d+)$')


def _random_bytes(size: int) -> Callable[[object], bytes]:
    return lambda _: os.urandom(size)


def _truncated(valid: bytes) -> bytes:
    return valid[:max(4, len(valid) // 2)]


#: kind -> (valid serialized message of the type) -> bytes
RAW_KINDS: dict[str, Callable[[bytes], bytes]] = {
    'random_64': _random_bytes(64),
    'random_4k': _random_bytes(4096),
    'empty_bytes': lambda _: b'',
    'header_only': lambda _: CDR_LE,
    'truncated': _truncated,
    'huge_length_prefix': lambda valid: CDR_LE + struct.pack('<I', 0x7FFFFFF0) + valid[8:24],
    'big_endian_flag_flipped': lambda valid: b'\x00\x00\x00\x00' + valid[4:],
}
#: kinds of String payloads on top: JSON that is hostile to its reader
STRING_KINDS: dict[str, bytes | str] = {
    'json_deep_nesting': '[' * 100_000 + ']' * 100_000,
    'json_deep_object': '{"a":' * 50_000 + '1' + '}' * 50_000,
    'json_nan_inf': '{"schema": "kaiserslautern_vss/event/v1", "id": NaN, "camera": Infinity, "rule": -Infinity}',
    'json_wrong_types': '{"incident": {"camera": ["cam01"], "id": {}, "rule": 5}, "phase": [], "state": null}',
    'json_huge_array': '[' + ','.join(['0'] * 100_000) + ']',
    'json_incident_flood': '{"camera": "cam01", "id": "%s", "rule": "%s", "phase": "start"}',
    'not_utf8': b'\xff\xfe\xfd{"camera": "\xc3\x28"}',
    'megabyte_text': 'x' * 1_000_000,
}


def _value(type_name: str, kind: str, depth: int) -> Any:
    array = _ARRAY.match(type_name)
    if array:
        return [_value(array['item'], kind, depth + 1) for _ in range(int(array['size']))]
    sequence = _SEQUENCE.match(type_name)
    if sequence:
        item = sequence['item']
        if kind == 'empty':
            return []
        if kind != 'huge' or depth > 0:  # one element, so nested fields carry the extremes too
            return [_value(item, 'max' if kind == 'huge' else kind, depth + 1)]
        count = min(MANY, int(sequence['bound'] or MANY))
        return [_value(item, 'max', depth + 1) for _ in range(count)]  # 10,000 of maximal elements
    if _BOUNDED_STRING.match(type_name):
        return 'x' * int(_BOUNDED_STRING.match(type_name)['bound'])
    if type_name in ('string', 'wstring'):
        return 'x' * LONG_TEXT if kind == 'huge' else ('' if kind == 'empty' else '\u202e../../x')
    if type_name == 'boolean':
        return kind != 'empty'
    if type_name in _FLOATS:
        return {'max': math.inf, 'min': -math.inf, 'nan': math.nan}.get(kind, 0.0)
    if type_name in _INT_RANGES:
        low, high = _INT_RANGES[type_name]
        value = {'max': high, 'min': low}.get(kind, 0)
        return bytes([value]) if type_name in ('byte', 'octet') else value
    return adversarial(get_message(type_name), kind, depth + 1)


#: typed kinds: every field at its maximum (stamps at the end of time), minimum, NaN, empty, huge
TYPED_KINDS = ('max', 'min', 'nan', 'empty', 'huge')


def adversarial(msg_class: type, kind: str, depth: int = 0) -> Any:
    """A ``msg_class`` message (or service request) with every field set by ``kind``."""
    message = msg_class()
    for name, type_name in msg_class.get_fields_and_field_types().items():
        try:
            setattr(message, name, _value(type_name, kind, depth))
        except (AssertionError, TypeError, ValueError):
            pass  # a value the Python type refuses (e.g. a bounded field) keeps its default
    return message


def string_payloads() -> dict[str, object]:
    """The STRING_KINDS as std_msgs/String messages; text that is not UTF-8 as its CDR (rclpy
    refuses to build such a message)."""
    payloads: dict[str, object] = {}
    for kind, text in STRING_KINDS.items():
        if kind == 'json_incident_flood':
            text = text % (random.getrandbits(64), 'r' * 5000)
        payloads[kind] = raw_string_cdr(text) if isinstance(text, bytes) else String(data=text)
    return payloads


def raw_string_cdr(data: bytes) -> bytes:
    """std_msgs/String CDR of arbitrary bytes, invalid UTF-8 included."""
    return CDR_LE + struct.pack('<I', len(data) + 1) + data + b'\x00'
