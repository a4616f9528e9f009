"""UMT's ``youtube_anno.json`` / ``tvsum_anno.json`` (format ``umt``)."""

from __future__ import annotations

import os
from pathlib import Path

from .common import (
    AnnotationError, ReadResult, _domain_field, _field, _fps_field, _load_json, _safe_vid, _tvsum_scores,
    _tvsum_video, _where, _youtube_video,
)


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
