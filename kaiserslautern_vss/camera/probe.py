"""Cheap reachability check used while a network camera is down."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

DEFAULT_PORTS = {'http': 80, 'https': 443, 'rtsp': 554, 'rtsps': 322}


def tcp_probe(url: str, timeout_s: float) -> bool:
    """True when a TCP connection to the URL's host and port succeeds within ``timeout_s``."""
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return False
    if not parts.hostname or port is None:
        return False
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False
