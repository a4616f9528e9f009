"""DVC stage `highlight`: a folder of videos + the exported models -> highlights/<set>/
(per video: <vid>.json, <vid>_timeline.png, <vid>_reel.mp4; index.html for all)."""

import json
import sys
from pathlib import Path

from _common import ROOT  # also makes the repository the working directory: paths below stay relative

from pipeline.annotations import read_segment_table
from pipeline.highlight.batch import highlight_folder
from pipeline.params import read_params

params = read_params()
cfg = params["highlight"]
dataset = params["dataset"]
table = read_segment_table(ROOT / "data" / "prepared" / dataset / "segments.csv")
summary = highlight_folder(
    videos_dir=Path("data") / "raw" / cfg["set"] / "videos",
    export_dir=Path("data") / "export" / dataset,
    out_dir=Path("highlights") / cfg["set"],
    table=table,
    videos=cfg["videos"],
    model=cfg["model"],
    top_seconds=cfg["top_seconds"] or None,
    top_k=cfg["top_k"] or None,
    device=cfg["device"],
)
print(json.dumps({"videos": summary["videos"], "failures": summary["failures"]}, indent=1))
if summary["failures"] and len(summary["failures"]) > cfg["max_failures"]:
    sys.exit(f"highlight: {len(summary['failures'])} video(s) failed (max_failures={cfg['max_failures']})")
