"""What made a feature part: the key that decides whether a committed part may be reused.

A part in ``<store>.parts/`` is only valid for the exact inputs it was computed from. Its key is
a sha256 over (JSON, sorted keys):

- ``content``: a fingerprint of every input file (:func:`file_fingerprint`): the video for
  extraction, the published arrays (both modalities, which set the cut length) for an import;
- ``segments``: the segment rows the video was cut with (:func:`segments_digest`: start/end
  frame and start/end seconds of every row, in ``seg_idx`` order; for an import, the number of
  annotated segments);
- ``store``: the store's attributes (backbone, weights sha256, frames per segment, crop size,
  sample rate, ...), i.e. the backbone and the extraction params.

Video-content rule (:func:`file_fingerprint`): size in bytes + modification time in
nanoseconds + sha256 of the first MiB + sha256 of the last MiB. Any replaced, re-encoded,
truncated or appended file changes the size or the head/tail; an edit in place in the middle
changes the mtime. The rule reads 2 MiB per video whatever its length, so a resume over
hundreds of videos stays fast. The cost of the mtime: a file merely touched (or copied without
keeping its mtime) is re-extracted, which is safe. Parts only live between a failed or killed
run and its rerun, so this rarely matters.

A missing file has the fingerprint ``"missing"``, so the part of a video that has since gone
is discarded too. Every engine (the threaded extractor, the published importer, any other)
must key its parts with :func:`video_part_key` / :func:`part_key` so that parts are
interchangeable between engines.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .extract import VideoJob

EDGE_BYTES = 1 << 20  # 1 MiB hashed at each end of a file
KEY_VERSION = 1  # bump when the key's recipe changes (old parts are then discarded)


def file_fingerprint(path: str | os.PathLike | None) -> str:
    """``"<size>:<mtime_ns>:<sha256 of first MiB>:<sha256 of last MiB>"``, or ``"missing"``."""
    if path is None:
        return "missing"
    path = Path(path)
    try:
        st = path.stat()
        with open(path, "rb") as fh:
            head = hashlib.sha256(fh.read(EDGE_BYTES)).hexdigest()
            fh.seek(max(0, st.st_size - EDGE_BYTES))
            tail = hashlib.sha256(fh.read(EDGE_BYTES)).hexdigest()
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:  # unreadable: extraction then fails on it with its own message
        return f"unreadable:{type(exc).__name__}"
    return f"{st.st_size}:{st.st_mtime_ns}:{head}:{tail}"


def _number(value) -> float | None:
    """A JSON-stable number: NaN / inf / None -> None, else the float's shortest repr round-trips."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def segments_digest(rows: Iterable[Sequence]) -> str:
    """sha256 of the segment rows, each (start_frame, end_frame, start_s, end_s); NaN = unknown."""
    text = json.dumps([[_number(v) for v in row] for row in rows], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def part_key(content: Sequence[str] | str, segments: str, store_attrs: Mapping) -> str:
    """The key of one part: sha256 over the content fingerprint(s), segments and store attrs."""
    content = [content] if isinstance(content, str) else list(content)
    payload = {"version": KEY_VERSION, "content": content, "segments": segments, "store": dict(store_attrs)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def video_part_key(job: "VideoJob", store_attrs: Mapping) -> str:
    """The key of a decoded video's part: its file, its segment rows, the store's attributes."""
    rows = zip(job.start_frame, job.end_frame, job.start_s, job.end_s)
    return part_key(file_fingerprint(job.path), segments_digest(rows), store_attrs)
