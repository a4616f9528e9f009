"""DVC stage `prepare`: the dataset's labels -> data/prepared/<dataset>/segments.csv + report.json."""

from _common import ROOT, write_json

from pipeline.annotations import prepare_dataset, write_segment_table
from pipeline.params import raw_dir, read_params, section
from pipeline.paths import safe_join
from pipeline.skipped import print_reasons

params = read_params()
cfg = section("prepare", params)
raw = raw_dir(params).relative_to(ROOT)  # relative paths keep report.json the same in every clone
annotations_dir = raw / "annotations"


def inside(name: str):
    """``annotations/<name>``, refused if it leaves that folder, relative to the repository."""
    return safe_join(annotations_dir, name).relative_to(ROOT)


annotations = [inside(name) for name in cfg["annotations"]]
info = inside(cfg["tvsum_info"]) if cfg.get("tvsum_info") else None
table, report = prepare_dataset(
    params["dataset"],
    annotations,
    fmt=cfg["format"],
    split=cfg["split"],
    splits_file=inside(cfg["splits_file"]) if cfg["split"] == "umt" else None,
    videos_dir=raw / "videos",
    tvsum_info=info if info is not None and info.exists() else None,
    missing_split_videos=cfg["missing_split_videos"],
)
out = ROOT / "data" / "prepared" / params["dataset"]
write_segment_table(table, out / "segments.csv")
write_json(out / "report.json", report)
print(f"prepare: {report['videos']} videos ({report['videos_found']} video files found), "
      f"{len(table)} segments -> {out / 'segments.csv'}")
print_reasons("prepare", report["skipped"])
if report.get("videos_not_found"):
    print_reasons("prepare", [{"vid": v, "reason": "no video file (extraction will record it as failed)"}
                              for v in report["videos_not_found"]])
