"""The one check of where a server may listen, applied where its socket is opened.

Servers of this package listen on one configured address, never on all interfaces. Every
spelling of "any" is refused: ``0.0.0.0``, ``::``, zero-compressed and expanded forms, the
IPv4-mapped ``::ffff:0.0.0.0``, bracketed ``[::]`` and the numeric shorthands the C resolver
turns into 0.0.0.0 (``0``, ``0x0``). Host names are refused too (one could resolve to "any",
or to another interface tomorrow): the address must be given as an address.
"""

from __future__ import annotations

import ipaddress
import socket

#: listening sockets' queue of connections not yet accepted
BACKLOG = 128


class BindAddressError(ValueError):
    """The address would listen where it must not; the message says why."""


def _any_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, 'ipv4_mapped', None)
    return address.is_unspecified or (mapped is not None and mapped.is_unspecified)


def _numeric_any(text: str) -> bool:
    """``0``, ``0x0``, ``00``: not addresses to ``ipaddress``, but 0.0.0.0 to bind()."""
    try:
        infos = socket.getaddrinfo(text, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return False
    return any(_any_address(ipaddress.ip_address(info[4][0].split('%')[0])) for info in infos)


def bind_address_problem(bind_address: str, interface: str = 'the camera network interface') -> str:
    """Why a server must not listen on ``bind_address``, or '' (``interface``: where it belongs)."""
    text = bind_address.strip()
    try:
        address = ipaddress.ip_address(text[1:-1] if text.startswith('[') and text.endswith(']') else text)
    except ValueError:
        if _numeric_any(text):
            return f'{bind_address!r} would listen on every interface; give the address of {interface}'
        return f'must be an IP address of {interface}, got {bind_address!r}'
    if _any_address(address):
        return f'{bind_address} would listen on every interface; give the address of {interface}'
    if text != bind_address or text.startswith('['):
        return f'give the address of {interface} without brackets or spaces, got {bind_address!r}'
    return ''


def check_bound(sock: socket.socket, interface: str) -> None:
    """Refuse a socket that ended up bound to "any" (checked after bind, before listen)."""
    host = str(sock.getsockname()[0]).split('%')[0]
    if _any_address(ipaddress.ip_address(host)):
        raise BindAddressError(f'bound to {host}, which listens on every interface; give the address of {interface}')


def listening_socket(bind_address: str, port: int, interface: str) -> socket.socket:
    """A TCP socket listening on ``bind_address`` only; BindAddressError for "any", OSError
    when the address is not this host's or the port is taken."""
    problem = bind_address_problem(bind_address, interface)
    if problem:
        raise BindAddressError(f'bind_address {problem}')
    family = socket.AF_INET6 if ':' in bind_address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind_address, port))
        check_bound(sock, interface)
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock
