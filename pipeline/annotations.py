"""Benchmark annotation readers -> the canonical segment table (docs/ARCHITECTURE.md).

Formats read (``fmt``):

- ``authors``: the YouTube Highlights release of Sun et al. (ECCV 2014): ``<root>/<domain>/vlist.json``
  (``[[vids, "TraiTightL"], ...]``), optional ``vlist_sel.json`` (same shape, a subset),
  ``<domain>/<vid>/clip.json`` (``[[f0, f1], ...]``) and ``match_label.json`` (``[clips, match]``).
  ``mturk_label.json`` and ``info.json`` are not needed and not read. ``missingVideos/<vid>`` files hold
  the id of a YouTube re-upload of a video that went missing; the labels of those videos are kept
  (they are valid labels) and their ids are counted in the report, and when a videos folder is given the
  re-upload id is tried as a file name too. A video listed in ``vlist.json`` whose folder is missing is
  skipped and counted; a folder listed in no ``vlist.json`` is not read and is counted.
- ``umt``: UMT's ``youtube_anno.json`` ``{vid: {"fps", "frames", "domain", "clip", "match", ...}}`` or
  ``tvsum_anno.json`` ``{vid: {"anno": [T][20], ...}}`` (domain from ``domain``/``category`` when present,
  else from the UMT split file, as UMT itself does).
- ``lighthouse``: lighthouse / QD-DETR jsonl. YouTube lines: ``vid, domain, fps, clip, match`` (``label``,
  when present, must equal ``match > 0``); TVSum lines: ``vid, domain, label [T][20]`` and
  ``duration`` (= T, checked).
- ``tvsum_tsv``: the original ``ydata-tvsum50-anno.tsv`` (one row per (video, annotator):
  ``video_id<TAB>category<TAB>comma-separated per-frame scores``) with ``ydata-tvsum50-info.tsv``
  (header ``category video_id title url length``, length ``m:ss`` or ``h:mm:ss``).
  Frame scores -> 2-second shots: with ``L`` the length in whole seconds and ``N`` the frame count,
  ``fps = N / L`` and frame ``j`` belongs to shot ``floor(j * L / (2 N))`` (exact integer arithmetic),
  so shot ``i`` holds the frames whose time ``j / fps`` lies in ``[2i, 2i + 2)``; every frame belongs
  to exactly one shot and a trailing partial shot is kept (``T = ceil(L / 2)`` for whole-second lengths;
  lighthouse may have one shot fewer for odd lengths). Each annotator's shot score is the mean of their
  frame scores over the shot, rounded half up to an integer: TVSum annotators scored 2-second shots and
  the frame scores repeat the shot score, so this recovers it even when the boundaries are a frame off,
  and gives the integer 1-5 scores the lighthouse ``label`` arrays hold.

Splits (``split``): ``umt`` (default; ``splits/umt_splits.json``, ``{"youtube_highlights" | "tvsum":
{domain: {"train": [...], "val": [...]}}}``; UMT's ``val`` is the test set -> our ``test``),
``authors`` (``vlist.json``: ``Trai*`` -> train, ``Test*`` -> test) and ``authors_sel``
(``vlist_sel.json``). A video in annotations but in no split list is excluded and counted as
``unsplit`` (the authors list 550 videos, UMT uses 419). A video in a split list but absent from the
annotations raises :class:`AnnotationError` naming the split file and the video, unless the reader
already skipped it for a recorded reason (a missing folder) or ``missing_split_videos="skip"`` asks to
count it instead (UMT's own loader drops such videos silently; we never do).

The table (one row per segment, rows grouped by video, ordered by ``seg_idx``) has exactly
:data:`SEGMENT_COLUMNS`. ``scores`` stays a JSON string in the DataFrame and in the CSV; use
:func:`scores_matrix` to get the ``[T, K]`` array. ``label`` is ``match > 0`` (YouTube) or "mean annotator
score > the video's lower median of those means" (TVSum, :func:`lower_median`).
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .paths import UnsafeIdError, check_id, safe_join

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


class AnnotationError(ValueError):
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
    """``[[f0, f1], ...]`` -> [T, 2] float64 with ``0 <= f0 <= f1``."""
    if not isinstance(values, list) or not values:
        raise AnnotationError(f"{where}: clip must be a non-empty list of [start, end] pairs")
    for i, pair in enumerate(values):
        if not isinstance(pair, list) or len(pair) != 2 or not all(_is_number(x) for x in pair):
            raise AnnotationError(f"{where}: clip[{i}] = {pair!r} is not a [start, end] pair of numbers")
        if not 0 <= pair[0] <= pair[1]:
            raise AnnotationError(f"{where}: clip[{i}] = {pair!r} is not 0 <= start <= end")
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


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------


@dataclass
class ReadResult:
    """What a reader found: the videos, what it skipped and format-specific facts for the report."""

    videos: list[VideoAnnotation]
    skipped: list[dict] = field(default_factory=list)  # {"vid", "domain", "reason", "detail"}
    lists: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=dict)  # authors' vlists
    facts: dict = field(default_factory=dict)


def _read_vlist(path: Path, domain: str) -> dict[str, list[str]]:
    """``[[vids, name], ...]`` -> {name: [vid, ...]}; names must start with Trai or Test."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a list of [video ids, list name] pairs")
    lists: dict[str, list[str]] = {}
    for i, entry in enumerate(data):
        if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], list)
                or not isinstance(entry[1], str)):
            raise AnnotationError(f"{path}: entry {i} is not a [video ids, list name] pair")
        vids, name = entry
        if not name.startswith(("Trai", "Test")):
            raise AnnotationError(f"{path}: list {name!r} is neither a Trai* nor a Test* list")
        if name in lists:
            raise AnnotationError(f"{path}: list {name!r} appears twice")
        lists[name] = [_safe_vid(v, f"{path} ({domain}/{name})") for v in vids]
    seen: dict[str, str] = {}
    for name, vids in lists.items():
        for v in vids:
            if v in seen:
                raise AnnotationError(f"{path}: video {v!r} is listed twice ({seen[v]} and {name})")
            seen[v] = name
    return lists


def _read_missing_videos(folder: Path, skipped: list[dict]) -> dict[str, str]:
    """``missingVideos/<vid>`` files -> {vid: id of the YouTube re-upload}.

    An entry whose name or content is not a safe id (the real release has ``'pvyy j51M64'`` for
    ``pvyy-j51M64``) is not used; it is recorded in ``skipped`` with reason ``bad_missing_entry``.
    """
    backups: dict[str, str] = {}
    if not folder.is_dir():
        return backups
    for p in sorted(folder.iterdir()):
        if not p.is_file():
            continue
        try:
            vid = check_id(p.name, folder)
            backups[vid] = check_id(p.read_text(encoding="utf-8").strip(), p)
        except (UnsafeIdError, UnicodeDecodeError) as e:
            skipped.append({"vid": p.name, "domain": None, "reason": "bad_missing_entry", "detail": str(e)})
    return backups


def _read_authors_video(domain_dir: Path, domain: str, vid: str) -> VideoAnnotation:
    folder = safe_join(domain_dir, vid)
    clip_path, match_path = folder / "clip.json", folder / "match_label.json"
    where = _where(match_path, vid)
    clips = _load_json(clip_path)
    ml = _load_json(match_path)
    if not isinstance(ml, list) or len(ml) != 2:
        raise AnnotationError(f"{where}: expected [clips, labels]")
    video = _youtube_video(vid, domain, clips, ml[1], where, str(match_path))
    if not isinstance(ml[0], list) or len(ml[0]) != video.num_segments:
        n = len(ml[0]) if isinstance(ml[0], list) else "no"
        raise AnnotationError(f"{where}: {n} clips here but {video.num_segments} in {clip_path}")
    if not np.array_equal(_clips(ml[0], where), np.stack([video.start_frame, video.end_frame], axis=1)):
        raise AnnotationError(f"{where}: its clips differ from those in {clip_path}")
    return video


def read_authors(root: str | os.PathLike) -> ReadResult:
    """The authors' YouTube Highlights release at ``root`` -> every video its ``vlist.json`` files list."""
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(f"{root}: not a directory")
    domain_dirs = sorted(d for d in root.iterdir() if d.is_dir() and (d / "vlist.json").is_file())
    if not domain_dirs:
        raise AnnotationError(f"{root}: no <domain>/vlist.json found (not the authors' release layout)")
    result = ReadResult(videos=[])
    backups = _read_missing_videos(root / "missingVideos", result.skipped)
    seen: dict[str, str] = {}
    for domain_dir in domain_dirs:
        domain = domain_dir.name
        vlist = _read_vlist(domain_dir / "vlist.json", domain)
        sel_path = domain_dir / "vlist_sel.json"
        sel = _read_vlist(sel_path, domain) if sel_path.is_file() else {}
        listed = [v for vids in vlist.values() for v in vids]
        stray = sorted({v for vids in sel.values() for v in vids} - set(listed))
        if stray:
            raise AnnotationError(f"{sel_path}: video {stray[0]!r} is not in {domain_dir / 'vlist.json'}")
        result.lists[domain] = {"vlist": vlist, "vlist_sel": sel}
        for vid in listed:
            if vid in seen:
                raise AnnotationError(f"{root}: video {vid!r} is listed in two domains ({seen[vid]} and {domain})")
            seen[vid] = domain
            if not (domain_dir / vid).is_dir():
                detail = f"listed in {domain_dir / 'vlist.json'} but {domain_dir / vid} does not exist"
                result.skipped.append({"vid": vid, "domain": domain, "reason": "folder_missing", "detail": detail})
                continue
            video = _read_authors_video(domain_dir, domain, vid)
            if vid in backups:
                video.aliases = (backups[vid],)
            result.videos.append(video)
        for d in sorted(p.name for p in domain_dir.iterdir() if p.is_dir()):
            if d not in seen:
                result.skipped.append({"vid": d, "domain": domain, "reason": "unlisted_folder",
                                       "detail": f"{domain_dir / d} is in no list of {domain_dir / 'vlist.json'}"})
    if (root / "missingVideos").is_dir():
        result.facts["missing_on_youtube"] = backups
    return result


def read_umt_json(path: str | os.PathLike, dataset: str) -> ReadResult:
    """UMT's ``youtube_anno.json`` / ``tvsum_anno.json`` -> videos (TVSum domain may stay None)."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected a JSON object {{video id: annotation}}")
    result = ReadResult(videos=[])
    for vid, rec in data.items():
        where = _where(path, vid)
        vid = _safe_vid(vid, path)
        if not isinstance(rec, dict):
            raise AnnotationError(f"{where}: annotation must be an object")
        if dataset == "tvsum":
            scores = _tvsum_scores(_field(rec, "anno", where), where)
            result.videos.append(_tvsum_video(vid, _domain_field(rec, where, required=False), scores, str(path)))
        else:
            fps = _fps_field(rec, where, required=False)
            result.videos.append(_youtube_video(vid, _domain_field(rec, where, required=True),
                                                _field(rec, "clip", where), _field(rec, "match", where),
                                                where, str(path), fps=fps))
    return result


def read_lighthouse_jsonl(path: str | os.PathLike, dataset: str) -> ReadResult:
    """A lighthouse / QD-DETR jsonl file (YouTube Highlights or TVSum lines) -> videos."""
    path = Path(path)
    result = ReadResult(videos=[])
    first_line: dict[str, int] = {}
    for lineno, rec in _iter_jsonl(path):
        vid = _safe_vid(_field(rec, "vid", _where(path, line=lineno)), f"{path}:{lineno}")
        where = _where(path, vid, lineno)
        if vid in first_line:
            raise AnnotationError(f"{where}: duplicated id (first on line {first_line[vid]})")
        first_line[vid] = lineno
        domain = _domain_field(rec, where, required=True)
        if dataset == "tvsum":
            scores = _tvsum_scores(_field(rec, "label", where), where)
            duration = rec.get("duration")
            if duration is not None and duration != scores.shape[0]:
                raise AnnotationError(f"{where}: duration {duration!r} != {scores.shape[0]} labelled shots")
            video = _tvsum_video(vid, domain, scores, str(path))
        else:
            fps = _fps_field(rec, where, required=False)
            video = _youtube_video(vid, domain, _field(rec, "clip", where), _field(rec, "match", where),
                                   where, str(path), fps=fps)
            if "label" in rec:
                label = rec["label"]  # [[0 or 1], ...]
                if isinstance(label, list):
                    label = [x[0] if isinstance(x, list) and len(x) == 1 else x for x in label]
                lab = _numbers(label, "label", where)
                if len(lab) != video.num_segments or not np.array_equal(lab, video.label):
                    raise AnnotationError(f"{where}: label disagrees with match > 0 ({len(lab)} labels, "
                                          f"{video.num_segments} clips)")
        result.videos.append(video)
    if not result.videos:
        raise AnnotationError(f"{path}: no annotation lines")
    return result


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


# ---------------------------------------------------------------------------------------------
# Format detection and dispatch
# ---------------------------------------------------------------------------------------------


def detect_format(path: str | os.PathLike) -> str:
    """Annotation format from the path: authors dir, ``.jsonl``, ``.json``, ``.tsv`` or ``.csv`` (segments)."""
    p = Path(path)
    if p.is_dir():
        if any((d / "vlist.json").is_file() for d in p.iterdir() if d.is_dir()):
            return "authors"
        raise AnnotationError(f"{p}: a directory without <domain>/vlist.json folders (not the authors' layout)")
    fmt = {".jsonl": "lighthouse", ".json": "umt", ".tsv": "tvsum_tsv", ".csv": "segments"}.get(p.suffix.lower())
    if fmt is None:
        raise AnnotationError(f"{p}: cannot tell the annotation format from the name; pass fmt explicitly")
    return fmt


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")


def _read_one(dataset: str, path: Path, fmt: str, tvsum_info: str | os.PathLike | None) -> ReadResult:
    if not path.exists():
        raise AnnotationError(f"{path}: no such file or directory")
    if fmt == "auto":
        fmt = detect_format(path)
    kind = "tvsum" if dataset == "tvsum" else "youtube"
    if fmt in ("authors", "tvsum_tsv") and kind != {"authors": "youtube", "tvsum_tsv": "tvsum"}[fmt]:
        raise AnnotationError(f"{path}: format {fmt!r} does not hold {dataset} annotations")
    if fmt == "authors":
        return read_authors(path)
    if fmt == "umt":
        return read_umt_json(path, kind)
    if fmt == "lighthouse":
        return read_lighthouse_jsonl(path, kind)
    if fmt == "tvsum_tsv":
        return read_tvsum_tsv(path, tvsum_info)
    raise AnnotationError(f"{path}: format {fmt!r} is not a raw annotation format")


def _read_all(dataset: str, paths: Sequence[Path], fmt: str, tvsum_info) -> ReadResult:
    """Read and concatenate several annotation files; a vid in two files is an error naming both."""
    merged = ReadResult(videos=[])
    origin: dict[str, str] = {}
    for path in paths:
        part = _read_one(dataset, path, fmt, tvsum_info)
        for v in part.videos:
            if v.vid in origin:
                raise AnnotationError(f"video {v.vid!r} is annotated in both {origin[v.vid]} and {path}")
            origin[v.vid] = str(path)
        merged.videos += part.videos
        merged.skipped += part.skipped
        merged.lists.update(part.lists)
        for k, val in part.facts.items():
            merged.facts.setdefault(k, {}).update(val)
    return merged


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------


def read_umt_splits(path: str | os.PathLike, dataset: str) -> dict[str, tuple[str, str]]:
    """UMT split file -> {vid: (domain, "train" | "test")} for ``dataset`` (UMT's ``val`` -> ``test``)."""
    path = Path(path)
    key = UMT_SPLIT_KEYS.get(dataset)
    if key is None:
        raise AnnotationError(f"{path}: the UMT split has no {dataset!r} videos; use split='authors'")
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise AnnotationError(f"{path}: no {key!r} object of {{domain: {{'train': [...], 'val': [...]}}}}")
    out: dict[str, tuple[str, str]] = {}
    for domain, lists in data[key].items():
        if not isinstance(lists, dict) or set(lists) != {"train", "val"}:
            raise AnnotationError(f"{path}: {key}/{domain} must have exactly 'train' and 'val' lists")
        for umt_name, ours in (("train", "train"), ("val", "test")):
            for vid in lists[umt_name]:
                vid = _safe_vid(vid, f"{path} ({key}/{domain}/{umt_name})")
                if vid in out:
                    raise AnnotationError(f"{path}: video {vid!r} is listed twice ({out[vid][0]}/{out[vid][1]} "
                                          f"and {domain}/{ours})")
                out[vid] = (domain, ours)
    return out


def authors_splits(
    lists: Mapping[str, Mapping[str, Mapping[str, list[str]]]], which: str = "vlist",
) -> dict[str, tuple[str, str]]:
    """The authors' lists (``vlist`` or ``vlist_sel``) -> {vid: (domain, "train" | "test")}."""
    out: dict[str, tuple[str, str]] = {}
    for domain, files in lists.items():
        for name, vids in files[which].items():
            for vid in vids:
                out[vid] = (domain, "train" if name.startswith("Trai") else "test")
    return out


def _assign_splits(
    read: ReadResult, split_map: Mapping[str, tuple[str, str]], split_source: str, missing: str, annotations: str,
) -> list[tuple[VideoAnnotation, str]]:
    """Give each video its split (and its domain when the annotations lack it); record exclusions."""
    by_vid = {v.vid: v for v in read.videos}
    skipped_vids = {s["vid"] for s in read.skipped}
    for vid, (domain, split) in split_map.items():
        if vid in by_vid or vid in skipped_vids:
            continue
        if missing == "error":
            raise AnnotationError(f"{split_source}: video {vid!r} ({domain}, {split}) is in the split list but not "
                                  f"in the annotations ({annotations}); "
                                  "pass missing_split_videos='skip' to count and exclude it")
        read.skipped.append({"vid": vid, "domain": domain, "split": split, "reason": "not_in_annotations",
                             "detail": f"in {split_source} ({split}) but not annotated"})
    kept = []
    for v in read.videos:
        if v.vid not in split_map:
            read.skipped.append({"vid": v.vid, "domain": v.domain, "reason": "unsplit",
                                 "detail": f"in no list of {split_source}"})
            continue
        domain, split = split_map[v.vid]
        if v.domain is None:
            v.domain = domain
        elif v.domain != domain:
            raise AnnotationError(f"{_where(v.source, v.vid)}: domain {v.domain!r} but {split_source} "
                                  f"lists it under {domain!r}")
        kept.append((v, split))
    return kept


def _fill_domains(videos: Sequence[VideoAnnotation], dataset: str,
                  splits_file: str | os.PathLike | None) -> None:
    """Videos read without a domain (UMT tvsum json) take it from the UMT split file, as UMT does."""
    lacking = [v for v in videos if v.domain is None]
    if not lacking:
        return
    if splits_file is None:
        raise AnnotationError(f"{_where(lacking[0].source, lacking[0].vid)}: no domain/category field; give UMT's "
                              "umt_splits.json (splits_file, or `hpcl evaluate --splits-file`) to look it up")
    path = Path(splits_file)
    split_map = read_umt_splits(path, dataset)
    for v in lacking:
        if v.vid not in split_map:
            raise AnnotationError(f"{_where(v.source, v.vid)}: no domain/category field and the video is not "
                                  f"in the UMT split file {path}")
        v.domain = split_map[v.vid][0]


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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def _as_paths(annotations: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(annotations, (str, os.PathLike)):
        return [Path(annotations)]
    paths = [Path(p) for p in annotations]
    if not paths:
        raise ValueError("no annotation paths given")
    return paths


def _counts(df: pd.DataFrame) -> dict:
    return {"videos": int(df["vid"].nunique()), "segments": int(len(df)),
            "positive_fraction": float(df["label"].mean()) if len(df) else 0.0}


def _report(dataset: str, paths: Sequence[Path], fmt: str, split: str, split_source: str | None,
            table: pd.DataFrame, read: ReadResult, videos_dir) -> dict:
    report = {"dataset": dataset, "annotations": [str(p) for p in paths], "format": fmt, "split": split,
              "splits_file": split_source, **_counts(table)}
    report["per_split"] = {s: _counts(table[table["split"] == s]) for s in SPLIT_NAMES}
    report["per_domain"] = {
        d: {**_counts(g), **{f"{s}_videos": int(g.loc[g["split"] == s, "vid"].nunique()) for s in SPLIT_NAMES}}
        for d, g in table.groupby("domain", sort=True)
    }
    report["skipped_counts"] = dict(sorted(Counter(s["reason"] for s in read.skipped).items()))
    report["skipped"] = read.skipped
    backups = read.facts.get("missing_on_youtube")
    if backups is not None:
        kept = set(table["vid"]) & set(backups)
        report["missing_on_youtube"] = {
            "note": "videos the authors list in missingVideos/ (re-uploaded under a new id); labels kept",
            "count": len(backups), "in_table": len(kept), "reuploads": dict(sorted(backups.items())),
        }
    if videos_dir is not None:
        per_video = table.drop_duplicates("vid")
        report["videos_dir"] = str(videos_dir)
        report["videos_found"] = int((per_video["video"] != "").sum())
        report["videos_not_found"] = sorted(per_video.loc[per_video["video"] == "", "vid"])
    return report


def prepare_dataset(
    dataset: str,
    annotations: str | os.PathLike | Sequence[str | os.PathLike],
    fmt: str = "auto",
    split: str = "umt",
    splits_file: str | os.PathLike | None = None,
    videos_dir: str | os.PathLike | None = None,
    tvsum_info: str | os.PathLike | None = None,
    missing_split_videos: str = "error",
) -> tuple[pd.DataFrame, dict]:
    """Annotations (one path or several, concatenated) -> (canonical segment table, report dict).

    ``split``: ``umt`` (``splits_file`` = UMT's umt_splits.json, required), ``authors``
    or ``authors_sel`` (authors' layout only). ``missing_split_videos``: ``error`` or ``skip`` (count).
    The report holds counts (videos, segments, positive fraction) overall, per split and per domain,
    every skipped item with its reason, and for the authors' layout the re-uploaded (missing) videos.
    """
    _check_choice("dataset", dataset, DATASETS)
    _check_choice("format", fmt, FORMATS)
    _check_choice("split", split, SPLITS)
    _check_choice("missing_split_videos", missing_split_videos, ("error", "skip"))
    paths = _as_paths(annotations)
    read = _read_all(dataset, paths, fmt, tvsum_info)
    if split == "umt":
        if splits_file is None:
            raise AnnotationError("split 'umt' needs splits_file: UMT's umt_splits.json "
                                  '({"youtube_highlights": {domain: {"train": [...], "val": [...]}}, "tvsum": {...}})')
        source = Path(splits_file)
        split_map = read_umt_splits(source, dataset)
    else:
        if not read.lists:
            raise AnnotationError(f"split {split!r} needs the authors' layout (vlist.json files); "
                                  f"{', '.join(map(str, paths))} is not")
        which = "vlist" if split == "authors" else "vlist_sel"
        split_map = authors_splits(read.lists, which)
        source = Path(f"<{which}.json of {', '.join(map(str, paths))}>")
    kept = _assign_splits(read, split_map, str(source), missing_split_videos, ", ".join(map(str, paths)))
    rows = [(v, s, resolve_video(videos_dir, v.vid, v.aliases) if videos_dir is not None else "") for v, s in kept]
    table = build_table(rows)
    resolved_fmt = fmt if fmt != "auto" else ",".join(sorted({detect_format(p) for p in paths}))
    return table, _report(dataset, paths, resolved_fmt, split, str(source), table, read, videos_dir)


def load_annotations(dataset: str, paths: str | os.PathLike | Sequence[str | os.PathLike],
                     splits_file: str | os.PathLike | None = None) -> pd.DataFrame:
    """Any supported annotation files, or prepared ``segments.csv`` tables -> one segment table.

    Raw formats get split ``""`` (no split applied: every annotated video is kept) and ``video`` ``""``;
    prepared tables keep theirs. A video in two paths is an error naming both files. ``splits_file``
    (UMT's split lists) supplies the category of videos whose annotation has none (UMT's tvsum json).
    """
    _check_choice("dataset", dataset, DATASETS)
    tables, origin = [], {}
    for path in _as_paths(paths):
        if path.exists() and not path.is_dir() and detect_format(path) == "segments":
            table = read_segment_table(path)
        else:
            read = _read_one(dataset, path, "auto", None)
            _fill_domains(read.videos, dataset, splits_file)
            table = build_table([(v, "", "") for v in read.videos])
        for vid in table["vid"].unique():
            if vid in origin:
                raise AnnotationError(f"video {vid!r} is annotated in both {origin[vid]} and {path}")
            origin[vid] = str(path)
        tables.append(table)
    return _typed(pd.concat(tables, ignore_index=True)) if len(tables) > 1 else tables[0]
