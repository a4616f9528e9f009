"""Split lists (UMT's umt_splits.json, the authors' vlist / vlist_sel) -> each video's split."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .common import UMT_SPLIT_KEYS, AnnotationError, ReadResult, VideoAnnotation, _load_json, _safe_vid, _where


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
                                  "set prepare.missing_split_videos: skip in params.yaml to list and exclude such "
                                  "videos (e.g. for lighthouse's YouTube release, which lacks some)")
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
