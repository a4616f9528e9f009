"""The ``highlight`` DVC stage's batch: a folder of videos with the exported models of a run.

``videos``: ``all`` = every video file in the folder; ``test`` = those whose name is a test
video of the run's segment table (the demo: its 8 test videos). ``model``: a group name of
``data/export/<dataset>/models.json`` for every video, or ``auto`` = each video's own domain's
model (its domain from the segment table; a video the table does not know is reported as failed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..paths import safe_join
from .page import write_page
from .run import highlight_videos

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".ts")


def list_videos(videos_dir: Path, table: pd.DataFrame | None, which: str) -> list[Path]:
    if which not in ("all", "test"):
        raise ValueError(f"highlight.videos must be all or test, got {which!r}")
    if not videos_dir.is_dir():
        raise FileNotFoundError(f"{videos_dir}: videos folder not found")
    files = sorted(p for p in videos_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if which == "test":
        if table is None:
            raise ValueError("highlight.videos: test needs the run's segment table")
        test = set(table.loc[table["split"].astype(str) == "test", "vid"].astype(str))
        files = [p for p in files if p.stem in test]
    return files


def highlight_folder(videos_dir: str | os.PathLike, export_dir: str | os.PathLike, out_dir: str | os.PathLike,
                     table: pd.DataFrame | None = None, videos: str = "all", model: str = "auto",
                     top_seconds: float | None = None, top_k: int | None = None, device: str = "auto",
                     progress: bool = True) -> dict:
    """Run ``highlight_videos`` over the folder, one model at a time, into one ``out_dir`` with one
    ``index.html`` and ``run.json``. Returns {"videos": [vid], "failures": [...], "index": path}."""
    videos_dir, export_dir, out_dir = Path(videos_dir), Path(export_dir), Path(out_dir)
    with open(export_dir / "models.json", encoding="utf-8") as fh:
        index = json.load(fh)
    files = list_videos(videos_dir, table, videos)
    plan: dict[tuple[str, str | None], list[Path]] = {}  # (model file, domain) -> videos
    failures = []
    if model == "auto":
        domain_of = {} if table is None else dict(zip(table["vid"].astype(str), table["domain"].astype(str)))
        for f in files:
            d = domain_of.get(f.stem)
            if d is None or d not in index["domains"]:
                failures.append({"video": str(f), "vid": f.stem,
                                 "error": f"no model for this video: its domain {d!r} has no model in {export_dir}"})
                continue
            plan.setdefault((index["domains"][d], d), []).append(f)
    else:
        if model not in index["models"]:
            raise ValueError(f"highlight.model {model!r} is not a model of {export_dir} ({sorted(index['models'])})")
        plan[(index["models"][model]["file"], None)] = files
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for (file_name, domain), group_files in sorted(plan.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        safe_join(export_dir, file_name)  # a name from models.json never leaves the folder
        r = highlight_videos(group_files, export_dir / file_name, out_dir, top_seconds, top_k,
                             device=device, domain=domain, labels=table, progress=progress, page=False)
        results += r["videos"]
        failures += r["failures"]
    results.sort(key=lambda r: r["vid"])
    page = write_page(out_dir, results, failures, f"Highlights: {videos_dir}") if results else None
    summary = {"videos": [r["vid"] for r in results], "failures": failures, "index": page.name if page else None}
    with open(out_dir / "run.json", "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
        fh.write("\n")
    return summary
