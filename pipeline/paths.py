"""Safe paths: ids from annotation files never become paths that leave their data folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import PipelineError

# YouTube ids are [A-Za-z0-9_-]{11}; TVSum ids are YouTube ids too. We accept a little more
# (dots for user datasets) but never a path separator, a leading dot or anything non-printable.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}$")

REPO_ROOT = Path(__file__).resolve().parent.parent


class UnsafeIdError(PipelineError, ValueError):
    """An id from an annotation file would escape its data folder."""


def check_id(vid: str, source: str | os.PathLike = "<annotations>") -> str:
    """Return ``vid`` if it is a safe file-name component, else raise naming ``source``."""
    if not isinstance(vid, str) or not _SAFE_ID.match(vid) or vid in {".", ".."}:
        raise UnsafeIdError(
            f"{source}: video id {vid!r} is not a safe name (letters, digits, '_', '-', '.'; "
            "no path separators, no leading dot)"
        )
    return vid


def safe_join(root: str | os.PathLike, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse any result that leaves ``root``."""
    root_path = Path(root).resolve()
    candidate = root_path.joinpath(*parts).resolve()
    if candidate != root_path and root_path not in candidate.parents:
        raise UnsafeIdError(f"path {'/'.join(parts)!r} leaves the data folder {root_path}")
    return candidate


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository, or ``$HPCL_SHARED_DATA``."""
    env = os.environ.get("HPCL_SHARED_DATA")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data"
