"""JSON from anyone on the bus, parsed within limits of size and nesting depth.

Python's parser recurses per nesting level, so a message of 100,000 nested brackets raises
RecursionError deep inside a callback. The depth is measured first, by one linear scan that
skips string contents, and too-large or too-deep input is refused before it is parsed.
"""

from __future__ import annotations

import json
from typing import Any

MAX_BYTES = 256 * 1024
MAX_DEPTH = 16


class UntrustedJsonError(ValueError):
    """The text is not JSON within the limits; the message says which limit or what is wrong."""


def parse_untrusted_json(text: str | bytes, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """``text`` parsed, or :class:`UntrustedJsonError` (too large, too deep, invalid)."""
    if len(text) > max_bytes:
        raise UntrustedJsonError(f'too large: {len(text)} bytes (limit {max_bytes})')
    if isinstance(text, bytes):
        try:
            text = text.decode('utf-8')
        except UnicodeDecodeError as error:
            raise UntrustedJsonError(f'not UTF-8: {error.reason}') from error
    depth = _nesting_depth(text, max_depth)
    if depth > max_depth:
        raise UntrustedJsonError(f'nested deeper than {max_depth} levels')
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise UntrustedJsonError(f'invalid JSON: {error}') from error


def _nesting_depth(text: str, stop_above: int) -> int:
    """Deepest bracket nesting outside strings; stops counting once above ``stop_above``."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == '\\':
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in '[{':
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_above:
                    break
        elif char in ']}':
            depth -= 1
    return deepest
