"""The original TVSum ``ydata-tvsum50-anno.tsv`` with ``ydata-tvsum50-info.tsv`` (format ``tvsum_tsv``):
per-frame scores -> 2-second shot scores."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from .common import (
    TVSUM_ANNOTATORS, TVSUM_INFO_NAME, TVSUM_SHOT_SECONDS, AnnotationError, ReadResult, _safe_vid, _tvsum_video,
    _where,
)


def _parse_length(text: str, where: str) -> int:
    """``"4:19"`` / ``"1:02:03"`` -> seconds."""
    parts = text.strip().split(":")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise AnnotationError(f"{where}: length {text!r} is not m:ss or h:mm:ss")
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p)
    if seconds <= 0:
        raise AnnotationError(f"{where}: length {text!r} is not positive")
    return seconds


def _read_tvsum_info(path: Path) -> dict[str, tuple[str, int]]:
    """``ydata-tvsum50-info.tsv`` -> {vid: (category, length in seconds)}."""
    try:
        f = open(path, encoding="utf-8", newline="")
    except FileNotFoundError:
        raise AnnotationError(f"{path}: file not found (TVSum info table with the video lengths)") from None
    info: dict[str, tuple[str, int]] = {}
    with f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        need = ("category", "video_id", "length")
        if header is None or not all(c in header for c in need):
            raise AnnotationError(f"{path}: header must name {', '.join(need)}; got {header!r}")
        col = {c: header.index(c) for c in need}
        for lineno, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise AnnotationError(f"{path}:{lineno}: {len(row)} fields, the header has {len(header)}")
            vid = _safe_vid(row[col["video_id"]], f"{path}:{lineno}")
            where = _where(path, vid, lineno)
            if vid in info:
                raise AnnotationError(f"{where}: duplicated id")
            info[vid] = (row[col["category"]], _parse_length(row[col["length"]], where))
    return info


def _read_tvsum_anno(path: Path) -> dict[str, tuple[str, list[np.ndarray], int]]:
    """``ydata-tvsum50-anno.tsv`` -> {vid: (category, [frame scores [N] per annotator], first line)}."""
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise AnnotationError(f"{path}: file not found") from None
    rows: dict[str, tuple[str, list[np.ndarray], int]] = {}
    with f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            cells = line.rstrip("\r\n").split("\t")
            if len(cells) != 3:
                raise AnnotationError(f"{path}:{lineno}: expected video_id<TAB>category<TAB>scores, "
                                      f"got {len(cells)} fields")
            vid = _safe_vid(cells[0], f"{path}:{lineno}")
            where = _where(path, vid, lineno)
            try:
                frame_scores = np.array([float(x) for x in cells[2].split(",")])  # [N]
            except ValueError:
                bad = next(x for x in cells[2].split(",") if not _parses_as_float(x))
                raise AnnotationError(f"{where}: frame score {bad!r} is not a number") from None
            if not np.isfinite(frame_scores).all():
                raise AnnotationError(f"{where}: frame scores must be finite")
            bad = (frame_scores < 1) | (frame_scores > 5)
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                raise AnnotationError(f"{where}: frame {j}: score {float(frame_scores[j])!r} is outside 1..5")
            category, scores, first = rows.setdefault(vid, (cells[1], [], lineno))
            if cells[1] != category:
                raise AnnotationError(f"{where}: category {cells[1]!r} differs from {category!r} on line {first}")
            if scores and len(frame_scores) != len(scores[0]):
                raise AnnotationError(f"{where}: {len(frame_scores)} frame scores, line {first} has {len(scores[0])}")
            scores.append(frame_scores)
    if not rows:
        raise AnnotationError(f"{path}: no annotation rows")
    return rows


def _parses_as_float(x: str) -> bool:
    try:
        float(x)
    except ValueError:
        return False
    return True


def frames_to_shots(frame_scores: np.ndarray, length_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame scores [K, N] of a ``length_s``-second video -> (shot scores [T, K], shot start frames [T]).

    Frame ``j`` belongs to shot ``(j * length_s) // (2 N)``; a shot's score is the mean of its frames'
    scores rounded half up (see the module docstring).
    """
    K, N = frame_scores.shape
    shot_of_frame = (np.arange(N, dtype=np.int64) * length_s) // (TVSUM_SHOT_SECONDS * N)  # [N]
    T = int(shot_of_frame[-1]) + 1
    starts = (TVSUM_SHOT_SECONDS * np.arange(T, dtype=np.int64) * N + length_s - 1) // length_s  # [T] first frames
    sums = np.add.reduceat(frame_scores, starts, axis=1)  # [K, T]
    counts = np.diff(np.append(starts, N))  # [T]
    shots = np.floor(sums / counts + 0.5).T  # [T, K]
    return shots, starts


def read_tvsum_tsv(anno: str | os.PathLike, info: str | os.PathLike | None = None) -> ReadResult:
    """TVSum's ``ydata-tvsum50-anno.tsv`` (+ ``ydata-tvsum50-info.tsv``, default beside it) -> videos."""
    anno = Path(anno)
    info_path = Path(info) if info is not None else anno.with_name(TVSUM_INFO_NAME)
    if info_path.resolve() == anno.resolve():
        raise AnnotationError(f"{anno}: this is the info table; pass ydata-tvsum50-anno.tsv as the annotations")
    lengths = _read_tvsum_info(info_path)
    result = ReadResult(videos=[])
    for vid, (category, frame_rows, lineno) in _read_tvsum_anno(anno).items():
        where = _where(anno, vid, lineno)
        if vid not in lengths:
            raise AnnotationError(f"{where}: not in the info table {info_path}")
        info_category, length_s = lengths[vid]
        if info_category != category:
            raise AnnotationError(f"{where}: category {category!r} but {info_path} says {info_category!r}")
        if len(frame_rows) != TVSUM_ANNOTATORS:
            raise AnnotationError(f"{where}: {len(frame_rows)} annotator rows, expected {TVSUM_ANNOTATORS}")
        frame_scores = np.stack(frame_rows)  # [20, N]
        N = frame_scores.shape[1]
        shots, starts = frames_to_shots(frame_scores, length_s)  # [T, 20], [T]
        T = len(starts)
        shot_start_s = np.arange(T, dtype=np.float64) * TVSUM_SHOT_SECONDS
        result.videos.append(_tvsum_video(
            vid, category, shots, str(anno), fps=N / length_s,
            start_frame=starts.astype(np.float64), end_frame=np.append(starts[1:], N).astype(np.float64),
            start_s=shot_start_s, end_s=np.minimum(shot_start_s + TVSUM_SHOT_SECONDS, length_s),
        ))
    annotated = {v.vid for v in result.videos}
    for vid, (category, _) in lengths.items():
        if vid not in annotated:
            result.skipped.append({"vid": vid, "domain": category, "reason": "no_annotation_rows",
                                   "detail": f"in {info_path} but not in {anno}"})
    return result
