"""Expected errors and how a stage reports them.

An expected error is a problem of the inputs or the machine, not of the code: bad annotations,
bad params, missing weights, an unreadable video, a disk that is full. Its class derives from
:class:`PipelineError` and its message names the file, the video and the key. A stage that
stops on one prints that message alone (``ERROR <stage>: ...``) and exits with status 1; the
traceback goes to ``logs/<stage>.log`` (or to the terminal with ``HPCL_DEBUG=1``). Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import traceback
from pathlib import Path

DEBUG_ENV = "HPCL_DEBUG"


class PipelineError(Exception):
    """An expected error (bad input, params, weights, file or disk); the message says it all."""


class DiskFullError(PipelineError, OSError):
    """No space left while writing a file; the message names the file and the free space."""


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC, also when a library (h5py, torch) only puts it in the message."""
    if isinstance(exc, DiskFullError):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "errno = 28" in text or "Disk quota exceeded" in text


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def free_space(path: str | os.PathLike) -> str:
    """Free space on the disk holding ``path`` (its nearest existing parent), in words."""
    folder = Path(path).resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return f"{_human(shutil.disk_usage(folder).free)} free on {folder}"
    except OSError:
        return "free space unknown"


def disk_full(path: str | os.PathLike, exc: BaseException, kept: str = "") -> DiskFullError:
    """The DiskFullError for writing ``path``: file, free space, what was kept, what to do."""
    text = f"{path}: disk full while writing it ({free_space(path)})"
    if kept:
        text += f"; {kept}"
    text += "; free some space and rerun: the work done is kept and the run resumes"
    return DiskFullError(errno.ENOSPC, text)


def is_expected(exc: BaseException) -> bool:
    """Expected errors end a stage with their message alone (see the module docstring)."""
    return isinstance(exc, (PipelineError, FileNotFoundError, PermissionError)) or is_disk_full(exc)


def message(exc: BaseException) -> str:
    if isinstance(exc, DiskFullError):
        return exc.strerror or str(exc)
    if is_disk_full(exc):
        where = getattr(exc, "filename", None) or os.getcwd()
        return f"disk full ({free_space(where)}): {exc}; free some space and rerun: the work done is kept"
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def install_stage_handler(stage: str, log_dir: str | os.PathLike) -> None:
    """Make an expected error end the process with ``ERROR <stage>: <message>`` and status 1,
    its traceback written to ``<log_dir>/<stage>.log``; other errors print their traceback."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0") or not is_expected(exc):
            previous(exc_type, exc, tb)
            return
        log = Path(log_dir) / f"{stage}.log"
        note = f"traceback in {log}; set {DEBUG_ENV}=1 to print it"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("".join(traceback.format_exception(exc_type, exc, tb)), encoding="utf-8")
        except OSError:  # the disk may be full: the message matters more than the log
            note = f"set {DEBUG_ENV}=1 to print the traceback"
        print(f"ERROR {stage}: {message(exc)}\n({note})", file=sys.stderr)

    sys.excepthook = hook
