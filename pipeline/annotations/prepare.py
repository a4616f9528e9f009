"""Entry points: format detection, reading several files, splits, the table and its report
(``prepare_dataset``), and ``load_annotations`` for evaluation."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .authors import read_authors
from .common import DATASETS, FORMATS, SPLIT_NAMES, SPLITS, AnnotationError, ReadResult, VideoAnnotation
from .lighthouse import read_lighthouse_jsonl
from .splits import _assign_splits, _fill_domains, authors_splits, read_umt_splits
from .table import _typed, build_table, read_segment_table, resolve_video
from .tvsum_tsv import read_tvsum_tsv
from .umt import read_umt_json


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


def _check_splits_not_empty(kept: Sequence[tuple[VideoAnnotation, str]], split_source: str, annotations: str) -> None:
    """Training needs train videos and evaluation test videos: an empty split is an error here,
    not an IndexError two stages later."""
    counts = Counter(split for _, split in kept)
    empty = [s for s in SPLIT_NAMES if counts[s] == 0]
    if empty:
        raise AnnotationError(
            f"{split_source}: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} empty "
            f"({dict((s, counts[s]) for s in SPLIT_NAMES)} annotated videos per split; annotations: {annotations}); "
            "check the split file and that its video ids match the annotations"
        )


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
    _check_splits_not_empty(kept, str(source), ", ".join(map(str, paths)))
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
