"""One writer per feature store: a lock file beside its parts, held for the whole run.

``exclusive_run(parts)`` takes an exclusive ``flock`` on ``<parts>.lock`` (created if absent) and
writes who holds it (host, pid, start time, engine). A second run on the same output, from this
machine or another one on the same shared file system, is refused at once with
:class:`StoreLockedError` naming the holder, instead of two writers committing parts into one
folder. The kernel drops the lock when the holder exits, even on ``kill -9``, so a crashed run
never leaves a stale lock behind (the file stays; only the lock matters). On network file
systems ``flock`` is as reliable as the server's lock support (NFSv4: yes).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import Iterator

from .errors import PipelineError


class StoreLockedError(PipelineError, RuntimeError):
    """Another extraction run is writing the same feature store."""


def lock_path(parts: str | os.PathLike) -> Path:
    parts = Path(parts)
    return parts.with_name(parts.name + ".lock")


@contextlib.contextmanager
def exclusive_run(parts: str | os.PathLike, what: str = "extraction") -> Iterator[Path]:
    """Hold the store's lock for the ``with`` block, or raise :class:`StoreLockedError`."""
    path = lock_path(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            raise StoreLockedError(
                f"{path}: another run is already writing this feature store ({holder}); wait for it to finish "
                "or stop it, then run again (the lock is released when that process exits)"
            ) from None
        info = json.dumps({
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "what": what,
        }, sort_keys=True).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
