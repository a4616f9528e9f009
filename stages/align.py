"""DVC stage `align`: segment table + visual and audio features -> data/aligned/<dataset>/aligned.h5."""

from _common import ROOT, write_json

import json

from pipeline.align import align_dataset
from pipeline.annotations import read_segment_table
from pipeline.params import read_params, section
from pipeline.skipped import SKIPPED_FILE, collect_skips, print_skips, write_skips

params = read_params()
dataset = params["dataset"]
cfg = section("align", params)
features = ROOT / "data" / "features" / dataset
out_dir = ROOT / "data" / "aligned" / dataset
table = read_segment_table(ROOT / "data" / "prepared" / dataset / "segments.csv")
summary = align_dataset(
    table,
    features / "visual" / "features.h5",
    features / "audio" / "features.h5",
    out_dir / "aligned.h5",
    dataset,
    tvsum_label=cfg["tvsum_label"],
    progress=True,
)
write_json(out_dir / "summary.json", summary)
report = json.loads((ROOT / "data" / "prepared" / dataset / "report.json").read_text(encoding="utf-8"))
failures = {m: features / m / "features_failures.csv" for m in ("visual", "audio")}
skips = collect_skips(table, summary, failures, report)
write_skips(out_dir / SKIPPED_FILE, skips)
print_skips("align", skips, "of the train/test splits left out (listed in " + str(out_dir.relative_to(ROOT) / SKIPPED_FILE) + ")")
print(f"align: {out_dir / 'aligned.h5'}")
