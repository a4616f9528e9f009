"""DVC stage `align`: segment table + visual and audio features -> data/aligned/<dataset>/aligned.h5."""

from _common import ROOT, write_json

from pipeline.align import align_dataset
from pipeline.annotations import read_segment_table
from pipeline.params import read_params, section

params = read_params()
dataset = params["dataset"]
cfg = section("align", params)
features = ROOT / "data" / "features" / dataset
out_dir = ROOT / "data" / "aligned" / dataset
summary = align_dataset(
    read_segment_table(ROOT / "data" / "prepared" / dataset / "segments.csv"),
    features / "visual" / "features.h5",
    features / "audio" / "features.h5",
    out_dir / "aligned.h5",
    dataset,
    tvsum_label=cfg["tvsum_label"],
    progress=True,
)
write_json(out_dir / "summary.json", summary)
print(f"align: {out_dir / 'aligned.h5'}")
