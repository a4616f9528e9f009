"""The canonical segment table: build it from annotations, write it, read and validate ``segments.csv``."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import disk_full, is_disk_full
from ..paths import safe_join
from .common import (
    FLOAT_COLUMNS, INT_COLUMNS, SEGMENT_COLUMNS, STR_COLUMNS, VIDEO_EXTENSIONS, AnnotationError, VideoAnnotation,
    _is_number, _safe_vid, _where,
)


# ---------------------------------------------------------------------------------------------
# The canonical table
# ---------------------------------------------------------------------------------------------


def resolve_video(videos_dir: str | os.PathLike, vid: str, aliases: Sequence[str] = ()) -> str:
    """``<videos_dir>/<vid>.<ext>`` (or an alias) relative to ``videos_dir``; ``""`` when none exists."""
    root = Path(videos_dir).resolve()
    for name in (vid, *aliases):
        for ext in VIDEO_EXTENSIONS:
            p = safe_join(root, f"{name}.{ext}")
            if p.is_file():
                return p.relative_to(root).as_posix()
    return ""


def _scores_json(row: np.ndarray) -> str:
    return json.dumps([int(x) if float(x).is_integer() else float(x) for x in row])


def _nan_or(values: np.ndarray | None, T: int) -> np.ndarray:
    return np.full(T, np.nan) if values is None else np.asarray(values, dtype=np.float64)


def build_table(videos: Sequence[tuple[VideoAnnotation, str, str]]) -> pd.DataFrame:
    """[(video, split, video path)] -> the canonical segment table (columns :data:`SEGMENT_COLUMNS`)."""
    cols: dict[str, list] = {c: [] for c in SEGMENT_COLUMNS}
    for v, split, video_file in videos:
        T = v.num_segments
        if v.domain is None:
            raise AnnotationError(f"{_where(v.source, v.vid)}: no domain")
        cols["vid"].append(np.full(T, v.vid, dtype=object))
        cols["domain"].append(np.full(T, v.domain, dtype=object))
        cols["split"].append(np.full(T, split, dtype=object))
        cols["seg_idx"].append(np.arange(T, dtype=np.int64))
        for c in ("start_frame", "end_frame", "start_s", "end_s", "match"):
            cols[c].append(_nan_or(getattr(v, c), T))
        cols["fps"].append(np.full(T, np.nan if v.fps is None else v.fps))
        cols["label"].append(v.label.astype(np.int64))
        cols["scores"].append(np.array([_scores_json(r) for r in v.scores], dtype=object))
        cols["video"].append(np.full(T, video_file, dtype=object))
    if not videos:
        return _typed(pd.DataFrame({c: [] for c in SEGMENT_COLUMNS}))
    return _typed(pd.DataFrame({c: np.concatenate(parts) for c, parts in cols.items()}))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df[list(SEGMENT_COLUMNS)].copy()
    for c in STR_COLUMNS:
        df[c] = df[c].astype(str)
    for c in INT_COLUMNS:
        df[c] = df[c].astype(np.int64)
    for c in FLOAT_COLUMNS:
        df[c] = df[c].astype(np.float64)
    return df.reset_index(drop=True)


def scores_matrix(scores: Sequence[str]) -> np.ndarray:
    """A video's ``scores`` JSON strings (T rows) -> [T, K] float64."""
    return np.asarray([json.loads(s) for s in scores], dtype=np.float64)


def write_segment_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the table as CSV (atomic: a temp file renamed into place). Floats keep full precision."""
    path = Path(path)
    if tuple(df.columns) != SEGMENT_COLUMNS:
        raise ValueError(f"{path}: table columns {list(df.columns)} are not {list(SEGMENT_COLUMNS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            df.to_csv(f, index=False, float_format=None, lineterminator="\n")
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise disk_full(path, exc) from exc
        raise


def read_segment_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``segments.csv``: ints as int64, floats as float64 (empty -> NaN), ``scores`` a JSON str.

    Validates the header, every number, ids, splits, labels, that each video's rows are contiguous
    with ``seg_idx`` 0..T-1, and that every ``scores`` cell is a JSON list of numbers of one length per
    video; errors name the file, the line and the video.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except FileNotFoundError:
        raise AnnotationError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise AnnotationError(f"{path}: not a readable CSV table ({e})") from None
    if tuple(raw.columns) != SEGMENT_COLUMNS:
        raise AnnotationError(f"{path}: columns {list(raw.columns)} are not the segment table's "
                              f"{list(SEGMENT_COLUMNS)}")
    out = {c: raw[c].to_numpy(dtype=object) for c in STR_COLUMNS}
    for c in FLOAT_COLUMNS + INT_COLUMNS:
        col = raw[c]
        num = pd.to_numeric(col.where(col != "", None), errors="coerce").to_numpy(dtype=np.float64)
        bad = (np.isnan(num) & (col != "").to_numpy()) | (~np.isfinite(num) & ~np.isnan(num))
        if c in INT_COLUMNS:
            bad |= np.isnan(num) | (np.mod(num, 1) != 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AnnotationError(f"{path}:{i + 2}: video {raw['vid'][i]!r}: {c} = {col[i]!r} is not "
                                  f"{'an integer' if c in INT_COLUMNS else 'a number or empty'}")
        out[c] = num.astype(np.int64) if c in INT_COLUMNS else num
    df = _typed(pd.DataFrame(out))
    _validate_table(df, path)
    return df


def _validate_table(df: pd.DataFrame, path: Path) -> None:
    """Structure checks of a segment table; line numbers count the CSV header as line 1."""
    line = lambda i: f"{path}:{i + 2}"  # noqa: E731
    vids = df["vid"].to_numpy()
    for i in np.flatnonzero(~np.isin(df["split"].to_numpy(), ("train", "test", ""))):
        raise AnnotationError(f"{line(i)}: video {vids[i]!r}: split {df['split'][i]!r} is not train/test")
    for i in np.flatnonzero(~np.isin(df["label"].to_numpy(), (0, 1))):
        raise AnnotationError(f"{line(i)}: video {vids[i]!r}: label {df['label'][i]} is not 0/1")
    starts = np.flatnonzero(np.r_[True, vids[1:] != vids[:-1]])  # first row of each run of a vid
    ends = np.r_[starts[1:], len(vids)]
    seen: dict[str, int] = {}
    seg = df["seg_idx"].to_numpy()
    scores = df["scores"].to_numpy()
    for s, e in zip(starts, ends):
        vid = vids[s]
        _safe_vid(vid, line(s))
        if vid in seen:
            raise AnnotationError(f"{line(s)}: video {vid!r}: rows are not contiguous (also from line {seen[vid] + 2})")
        seen[vid] = s
        if not np.array_equal(seg[s:e], np.arange(e - s)):
            i = s + int(np.flatnonzero(seg[s:e] != np.arange(e - s))[0])
            raise AnnotationError(f"{line(i)}: video {vid!r}: seg_idx {seg[i]} where {i - s} was expected")
        width = None
        for i in range(s, e):
            try:
                vals = json.loads(scores[i])
            except json.JSONDecodeError:
                vals = None
            if not isinstance(vals, list) or not vals or not all(_is_number(x) for x in vals):
                raise AnnotationError(f"{line(i)}: video {vid!r}: scores {scores[i]!r} is not a JSON list of numbers")
            if width is not None and len(vals) != width:
                raise AnnotationError(f"{line(i)}: video {vid!r}: {len(vals)} scores, earlier rows have {width}")
            width = len(vals)
