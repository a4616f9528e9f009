"""lighthouse / QD-DETR jsonl lines, YouTube Highlights or TVSum (format ``lighthouse``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .common import (
    AnnotationError, ReadResult, _domain_field, _field, _fps_field, _iter_jsonl, _numbers, _safe_vid,
    _tvsum_scores, _tvsum_video, _where, _youtube_video,
)


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
