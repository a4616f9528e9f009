"""Shared by the annotation readers: the table constants, AnnotationError, one video's
annotation (VideoAnnotation), field parsing and JSON / jsonl access with errors naming the file,
line and video."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..paths import UnsafeIdError, check_id


SEGMENT_COLUMNS = (
    "vid", "domain", "split", "seg_idx", "start_frame", "end_frame", "start_s", "end_s",
    "fps", "label", "match", "scores", "video",
)
STR_COLUMNS = ("vid", "domain", "split", "scores", "video")
INT_COLUMNS = ("seg_idx", "label")
FLOAT_COLUMNS = ("start_frame", "end_frame", "start_s", "end_s", "fps", "match")

DATASETS = ("youtube_highlights", "tvsum", "demo")
FORMATS = ("auto", "authors", "umt", "lighthouse", "tvsum_tsv")
SPLITS = ("umt", "authors", "authors_sel")
SPLIT_NAMES = ("train", "test")
VIDEO_EXTENSIONS = ("mp4", "mkv", "webm", "avi", "mov", "flv")
TVSUM_ANNOTATORS = 20
TVSUM_SHOT_SECONDS = 2
TVSUM_INFO_NAME = "ydata-tvsum50-info.tsv"
UMT_SPLIT_KEYS = {"youtube_highlights": "youtube_highlights", "tvsum": "tvsum"}


class AnnotationError(PipelineError, ValueError):
    """Bad annotation input; the message names the file and the video (and line, for jsonl/csv)."""


def lower_median(x: np.ndarray) -> float:
    """Lower middle value of ``x`` [n] (``torch.median`` semantics): ``sort(x)[(n - 1) // 2]``."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.sort(x)[(len(x) - 1) // 2])


# ---------------------------------------------------------------------------------------------
# One video's annotation, whatever the format
# ---------------------------------------------------------------------------------------------


@dataclass
class VideoAnnotation:
    """Segments of one video. ``T`` segments; ``K`` raw scores per segment (YouTube 1, TVSum 20)."""

    vid: str
    domain: str | None  # None until a split file supplies it (UMT tvsum json without a domain)
    source: str  # the file the labels came from, for error messages
    scores: np.ndarray  # [T, K] float64 raw scores: YouTube [match], TVSum the annotator scores
    label: np.ndarray  # [T] int64 binary highlight label
    match: np.ndarray | None = None  # [T] YouTube match in {-1, 0, 1}
    start_frame: np.ndarray | None = None  # [T] float64
    end_frame: np.ndarray | None = None  # [T] float64, exclusive
    start_s: np.ndarray | None = None  # [T] float64
    end_s: np.ndarray | None = None  # [T] float64
    fps: float | None = None
    aliases: tuple[str, ...] = ()  # other file names of the video (authors' re-upload ids)

    @property
    def num_segments(self) -> int:
        return int(self.scores.shape[0])


def _where(source: str | os.PathLike, vid: str | None = None, line: int | None = None) -> str:
    loc = f"{source}:{line}" if line is not None else f"{source}"
    return f"{loc}: video {vid!r}" if vid is not None else loc


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _numbers(values: object, what: str, where: str) -> np.ndarray:
    """A JSON list of finite numbers -> [n] float64, else AnnotationError naming ``where``."""
    if not isinstance(values, list):
        raise AnnotationError(f"{where}: {what} must be a list, got {type(values).__name__}")
    for i, x in enumerate(values):
        if not _is_number(x):
            raise AnnotationError(f"{where}: {what}[{i}] = {x!r} is not a finite number")
    return np.asarray(values, dtype=np.float64)


def _clips(values: object, where: str) -> np.ndarray:
    """``[[f0, f1], ...]`` -> [T, 2] float64 with ``0 <= f0 < f1`` (a zero-length clip is an error)."""
    if not isinstance(values, list) or not values:
        raise AnnotationError(f"{where}: clip must be a non-empty list of [start, end] pairs")
    for i, pair in enumerate(values):
        if not isinstance(pair, list) or len(pair) != 2 or not all(_is_number(x) for x in pair):
            raise AnnotationError(f"{where}: clip[{i}] = {pair!r} is not a [start, end] pair of numbers")
        if not 0 <= pair[0] <= pair[1]:
            raise AnnotationError(f"{where}: clip[{i}] = {pair!r} is not 0 <= start <= end")
        if pair[0] == pair[1]:
            raise AnnotationError(f"{where}: clip[{i}] = {pair!r} has zero length (start == end): no frame to "
                                  "extract; fix or remove that clip and its label")
    return np.asarray(values, dtype=np.float64)


def _youtube_video(
    vid: str, domain: str | None, clips: object, match: object, where: str, source: str,
    fps: float | None = None,
) -> VideoAnnotation:
    """Clips [[f0, f1]] x T and match [T] in {-1, 0, 1} -> a YouTube-style VideoAnnotation."""
    clip = _clips(clips, where)  # [T, 2]
    m = _numbers(match, "match", where)  # [T]
    if len(m) != len(clip):
        raise AnnotationError(f"{where}: {len(clip)} clips but {len(m)} match labels")
    bad = ~np.isin(m, (-1.0, 0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AnnotationError(f"{where}: match[{i}] = {float(m[i])!r} is not one of -1, 0, 1")
    video = VideoAnnotation(
        vid=vid, domain=domain, source=source, scores=m[:, None].copy(), label=(m > 0).astype(np.int64),
        match=m, start_frame=clip[:, 0].copy(), end_frame=clip[:, 1].copy(), fps=fps,
    )
    if fps is not None:
        video.start_s = clip[:, 0] / fps
        video.end_s = clip[:, 1] / fps
    return video


def tvsum_labels(scores: np.ndarray) -> np.ndarray:
    """Annotator scores [T, K] -> [T] int64: mean score > the lower median of the T means."""
    mean = scores.mean(axis=1)  # [T]
    return (mean > lower_median(mean)).astype(np.int64)


def _tvsum_scores(values: object, where: str) -> np.ndarray:
    """``[[s_1 .. s_20], ...]`` -> [T, 20] float64 with every score in [1, 5]."""
    if not isinstance(values, list) or not values:
        raise AnnotationError(f"{where}: TVSum scores must be a non-empty list of shots")
    rows = []
    for t, row in enumerate(values):
        r = _numbers(row, f"scores of shot {t}", where)
        if len(r) != TVSUM_ANNOTATORS:
            raise AnnotationError(f"{where}: shot {t} has {len(r)} annotator scores, expected {TVSUM_ANNOTATORS}")
        rows.append(r)
    s = np.stack(rows)  # [T, 20]
    _check_tvsum_range(s, where)
    return s


def _check_tvsum_range(s: np.ndarray, where: str) -> None:
    bad = (s < 1) | (s > 5)
    if bad.any():
        t, a = (int(i) for i in np.argwhere(bad)[0])
        raise AnnotationError(f"{where}: shot {t}, annotator {a}: score {float(s[t, a])!r} is outside 1..5")


def _tvsum_video(vid: str, domain: str | None, scores: np.ndarray, source: str, **times) -> VideoAnnotation:
    """Shot scores [T, 20] -> a TVSum VideoAnnotation; 2-second shots unless ``times`` say otherwise."""
    T = scores.shape[0]
    starts = np.arange(T, dtype=np.float64) * TVSUM_SHOT_SECONDS  # [T]
    times.setdefault("start_s", starts)
    times.setdefault("end_s", starts + TVSUM_SHOT_SECONDS)
    return VideoAnnotation(vid=vid, domain=domain, source=source, scores=scores, label=tvsum_labels(scores), **times)


# ---------------------------------------------------------------------------------------------
# File access
# ---------------------------------------------------------------------------------------------


def _load_json(path: Path) -> object:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise AnnotationError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{path}: not UTF-8 text ({e})") from None


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, object)`` for each non-blank line of a jsonl file."""
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise AnnotationError(f"{path}: file not found") from None
    with f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise AnnotationError(f"{path}:{lineno}: malformed JSON (column {e.colno}: {e.msg})") from None
            if not isinstance(obj, dict):
                raise AnnotationError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def _safe_vid(vid: object, where: str) -> str:
    try:
        return check_id(vid, where)  # type: ignore[arg-type]
    except UnsafeIdError as e:
        raise AnnotationError(str(e)) from None


def _field(record: Mapping, key: str, where: str) -> object:
    if key not in record:
        raise AnnotationError(f"{where}: missing field {key!r}")
    return record[key]


def _domain_field(record: Mapping, where: str, required: bool) -> str | None:
    for key in ("domain", "category"):
        if key in record:
            d = record[key]
            if not isinstance(d, str) or not d:
                raise AnnotationError(f"{where}: {key} must be a non-empty string, got {d!r}")
            return d
    if required:
        raise AnnotationError(f"{where}: missing field 'domain'")
    return None


def _fps_field(record: Mapping, where: str, required: bool) -> float | None:
    if "fps" not in record:
        if required:
            raise AnnotationError(f"{where}: missing field 'fps'")
        return None
    fps = record["fps"]
    if not _is_number(fps) or fps <= 0:
        raise AnnotationError(f"{where}: fps = {fps!r} is not a positive number")
    return float(fps)


@dataclass
class ReadResult:
    """What a reader found: the videos, what it skipped and format-specific facts for the report."""

    videos: list[VideoAnnotation]
    skipped: list[dict] = field(default_factory=list)  # {"vid", "domain", "reason", "detail"}
    lists: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=dict)  # authors' vlists
    facts: dict = field(default_factory=dict)
