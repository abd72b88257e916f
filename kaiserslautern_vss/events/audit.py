"""Hash-chained audit log of exports and evidence marks: who, when, what, why.

One JSON object per line; each carries ``prev`` (the previous line's ``hash``) and its
own ``hash`` = SHA-256 over ``prev`` and its canonical content, so changing, inserting
or deleting a line breaks the chain from that line on.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

GENESIS = '0' * 64


def _entry_hash(entry: dict[str, Any]) -> str:
    content = {k: v for k, v in entry.items() if k != 'hash'}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def append_audit(log_path: Path, *, who: str, what: str, target: str, why: str,
                 when: datetime) -> dict[str, Any]:
    """Append one entry (exclusive lock, so concurrent CLIs keep the chain intact)."""
    if not who.strip() or not why.strip():
        raise ValueError('an audit entry needs who and why')
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, 'a+', encoding='utf-8') as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        stream.seek(0)
        lines = [line for line in stream.read().splitlines() if line.strip()]
        prev = json.loads(lines[-1])['hash'] if lines else GENESIS
        entry = {'when': when.isoformat(), 'who': who, 'what': what, 'target': target, 'why': why,
                 'prev': prev}
        entry['hash'] = _entry_hash(entry)
        stream.write(json.dumps(entry, sort_keys=True) + '\n')
    return entry


def verify_audit(log_path: Path) -> list[str]:
    """Problems in the chain (line numbers from 1); empty means intact."""
    problems, prev = [], GENESIS
    for number, line in enumerate(Path(log_path).read_text(encoding='utf-8').splitlines(), start=1):
        try:
            entry = json.loads(line)
        except ValueError:
            problems.append(f'line {number}: not JSON')
            continue
        if entry.get('prev') != prev:
            problems.append(f'line {number}: chain broken (a line before it was changed, removed or inserted)')
        if entry.get('hash') != _entry_hash(entry):
            problems.append(f'line {number}: content changed')
        prev = entry.get('hash', '')
    return problems
