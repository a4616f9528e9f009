"""The YouTube Highlights release of Sun et al. (ECCV 2014): ``<root>/<domain>/vlist.json``, clip and
match files per video, ``missingVideos/`` re-upload ids (format ``authors``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..paths import UnsafeIdError, check_id, safe_join
from .common import AnnotationError, ReadResult, VideoAnnotation, _clips, _load_json, _safe_vid, _where, _youtube_video


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
