"""Benchmark annotation readers -> the canonical segment table (docs/ARCHITECTURE.md).

One module per format (``authors``, ``umt``, ``lighthouse``, ``tvsum_tsv``), ``splits`` (split
lists), ``table`` (the segment table and ``segments.csv``), ``prepare`` (the entry points) and
``common`` (what the readers share). Import from ``pipeline.annotations``.

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

from .authors import read_authors
from .common import (
    DATASETS,
    FLOAT_COLUMNS,
    FORMATS,
    INT_COLUMNS,
    SEGMENT_COLUMNS,
    SPLIT_NAMES,
    SPLITS,
    STR_COLUMNS,
    TVSUM_ANNOTATORS,
    TVSUM_INFO_NAME,
    TVSUM_SHOT_SECONDS,
    UMT_SPLIT_KEYS,
    VIDEO_EXTENSIONS,
    AnnotationError,
    ReadResult,
    VideoAnnotation,
    lower_median,
    tvsum_labels,
)
from .lighthouse import read_lighthouse_jsonl
from .prepare import detect_format, load_annotations, prepare_dataset
from .splits import authors_splits, read_umt_splits
from .table import build_table, read_segment_table, resolve_video, scores_matrix, write_segment_table
from .tvsum_tsv import frames_to_shots, read_tvsum_tsv
from .umt import read_umt_json

__all__ = [
    "DATASETS", "FLOAT_COLUMNS", "FORMATS", "INT_COLUMNS", "SEGMENT_COLUMNS", "SPLIT_NAMES", "SPLITS", "STR_COLUMNS",
    "TVSUM_ANNOTATORS", "TVSUM_INFO_NAME", "TVSUM_SHOT_SECONDS", "UMT_SPLIT_KEYS", "VIDEO_EXTENSIONS",
    "AnnotationError", "ReadResult", "VideoAnnotation", "authors_splits", "build_table", "detect_format",
    "frames_to_shots", "load_annotations", "lower_median", "prepare_dataset", "read_authors", "read_lighthouse_jsonl",
    "read_segment_table", "read_tvsum_tsv", "read_umt_json", "read_umt_splits", "resolve_video", "scores_matrix",
    "tvsum_labels", "write_segment_table",
]
