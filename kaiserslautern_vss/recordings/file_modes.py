"""Who may read what the system stores: the service user only, or a configured group too.

Recordings, keys, the alert outbox and the audit log hold personal data or secrets. Their
modes are set explicitly after creation (never left to the caller's umask): folders 0700,
files 0600; with a group, 0750 and 0640 and that group as owner group. Symbolic links are
never followed (a planted link must not make anything outside readable).
"""

from __future__ import annotations

import grp
import os
import stat
from dataclasses import dataclass
from pathlib import Path


class FileModeError(ValueError):
    """A group that does not exist, or modes that cannot be set."""


@dataclass(frozen=True)
class FileModes:
    group: int | None = None  # gid allowed to read; None: the owner only

    @classmethod
    def for_group(cls, name: str) -> FileModes:
        """Owner only for ``''``, else owner + the named group (read-only)."""
        if not name:
            return cls()
        try:
            return cls(grp.getgrnam(name).gr_gid)
        except KeyError:
            raise FileModeError(f'file_group {name!r} is not a group on this host') from None

    @classmethod
    def like(cls, folder: Path) -> FileModes:
        """The policy an existing folder was created with (its group if the group may read it)."""
        info = Path(folder).stat()
        return cls(info.st_gid if info.st_mode & stat.S_IRGRP else None)

    @property
    def dir_mode(self) -> int:
        return 0o700 if self.group is None else 0o750

    @property
    def file_mode(self) -> int:
        return 0o600 if self.group is None else 0o640

    def folder(self, path: Path) -> Path:
        """Create ``path`` (and parents) if needed and give it the folder mode."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._apply(path, self.dir_mode)
        return path

    def file(self, path: Path) -> Path:
        self._apply(Path(path), self.file_mode)
        return Path(path)

    def tree(self, root: Path) -> None:
        """Modes on ``root`` and everything below it; links are left alone, not followed."""
        self._apply(Path(root), self.dir_mode)
        for folder, dirs, files in os.walk(root, followlinks=False):
            for name in dirs:
                self._apply(Path(folder, name), self.dir_mode)
            for name in files:
                self._apply(Path(folder, name), self.file_mode)

    def write(self, path: Path, data: bytes, *, exclusive: bool = False) -> Path:
        """Write ``data`` atomically (temporary file, fsync, rename) with the file mode;
        ``exclusive``: raise FileExistsError rather than replace an existing file."""
        path = Path(path)
        temporary = path.with_name(f'.{path.name}.tmp')
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        try:
            with os.fdopen(os.open(temporary, flags, self.file_mode), 'wb') as stream:
                self._apply_fd(stream.fileno(), self.file_mode)
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            if exclusive:
                os.link(temporary, path)
            else:
                os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return path

    def secret(self, path: Path, what: str, size: int = 32) -> tuple[bytes, bool]:
        """The ``size``-byte secret in ``path``, created from ``os.urandom`` if absent:
        ``(secret, created)``. Raises FileModeError if it has another size."""
        path = Path(path)
        if not path.exists():
            if not path.parent.exists():  # an existing folder (maybe /etc/...) keeps its mode
                self.folder(path.parent)
            try:
                self.write(path, os.urandom(size), exclusive=True)
                return path.read_bytes(), True
            except FileExistsError:
                pass  # another process created it just now: use theirs
        secret = path.read_bytes()
        if len(secret) != size:
            raise FileModeError(f'{what} {path} has {len(secret)} bytes, expected {size}')
        return secret, False

    def _apply(self, path: Path, mode: int) -> None:
        if path.is_symlink():
            return
        os.chmod(path, mode)
        if self.group is not None:
            os.chown(path, -1, self.group)

    def _apply_fd(self, fd: int, mode: int) -> None:
        os.fchmod(fd, mode)
        if self.group is not None:
            os.fchown(fd, -1, self.group)


def read_regular(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file, never through a symbolic link (checked
    on the opened file, so a link swapped in meanwhile is refused too)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, 'rb') as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileModeError(f'{path} is not a regular file')
        return stream.read()


#: the default: the service user only
PRIVATE = FileModes()
