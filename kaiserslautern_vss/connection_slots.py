"""Connection slots of a server: a cap on all connections and one per client address.

The per-address cap is what keeps one client (a script opening a thousand half-finished
requests, or 32 slow senders from one machine) from taking the slots that a browser or a
camera on another address needs. Thread-safe: the IP Notify receiver takes slots in its
accept thread and gives them back from handler threads.
"""

from __future__ import annotations

import threading
from collections import Counter


class ConnectionSlots:
    def __init__(self, total: int, per_address: int) -> None:
        if total < 1 or per_address < 1:
            raise ValueError(f'connection caps must be at least 1, got total {total}, per address {per_address}')
        self.total = total
        self.per_address = per_address
        self._held: Counter[str] = Counter()
        self._total = 0
        self._lock = threading.Lock()

    def take(self, address: str) -> str:
        """Take a slot for a connection from ``address``; '' if taken, else why not."""
        with self._lock:
            if self._total >= self.total:
                return f'more than {self.total} connections at once (from {address})'
            if self._held[address] >= self.per_address:
                return f'more than {self.per_address} connections at once from {address}'
            self._held[address] += 1
            self._total += 1
            return ''

    def give_back(self, address: str) -> None:
        with self._lock:
            self._held[address] -= 1
            self._total -= 1
            if self._held[address] <= 0:
                del self._held[address]

    def held(self, address: str | None = None) -> int:
        """Slots held now, by ``address`` or by everyone."""
        with self._lock:
            return self._held.get(address, 0) if address is not None else self._total
