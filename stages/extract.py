"""DVC stages `extract_visual` / `extract_audio`: segment table + videos -> HDF5 segment features.

Writes data/features/<dataset>/<modality>/features.h5 (one [T, D] float32 dataset per video),
features_failures.csv and summary.json. In-progress parts live outside the DVC output
(data/features/.parts/...), so a killed run resumes where it stopped (with either engine: `engine:
local | ray`). With
`features.source: umt | lighthouse` the published features in data/raw/<dataset>/features are
imported into the same store instead.
"""

import argparse
import json
from pathlib import Path

from _common import ROOT, write_json

from pipeline.annotations import read_segment_table
from pipeline.backbones import build_audio_backbone, build_visual_backbone
from pipeline.device import resolve_device, set_cpu_threads
from pipeline.extract import extract_audio, extract_visual
from pipeline.params import backbone, raw_dir, read_params, section
from pipeline.published import import_published
from pipeline.skipped import failure_reasons, print_reasons

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("modality", choices=["visual", "audio"])
modality = parser.parse_args().modality

params = read_params()
dataset = params["dataset"]
cfg = section(f"extract_{modality}", params)
features = params["features"]
table = read_segment_table(ROOT / "data" / "prepared" / dataset / "segments.csv")
out_dir = Path("data") / "features" / dataset / modality  # relative: the summary reads the same in every clone
store = out_dir / "features.h5"
parts = Path("data") / "features" / ".parts" / dataset / modality

if features["source"] == "extract":
    set_cpu_threads(cfg["num_threads"])
    device = resolve_device(cfg["device"])
    manifest_file = ROOT / "data" / "weights" / modality / "weights.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    weights = ROOT / "data" / "weights" / modality / "weights.pt"
    weights_path = weights if weights.exists() else None
    common = dict(batch_size=cfg["batch_size"], device=device, autocast=cfg["autocast"],
                  max_failures=cfg["max_failures"], num_workers=cfg["num_workers"],
                  weights_sha256=manifest.get("sha256"), parts_dir=parts, engine=cfg["engine"],
                  ray_address=cfg["ray_address"])
    if modality == "visual":
        model = build_visual_backbone(backbone(modality, params), weights_path=weights_path, device=device,
                                      crop_size=cfg["crop_size"])
        summary = extract_visual(table, raw_dir(params) / "videos", model, store,
                                 frames_per_segment=cfg["frames_per_segment"], decoder=cfg["decoder"], **common)
    else:
        model = build_audio_backbone(backbone(modality, params), weights_path=weights_path, device=device)
        summary = extract_audio(table, raw_dir(params) / "videos", model, store,
                                min_window_s=cfg["min_window_s"], **common)
else:
    names = {"visual": features["lighthouse_visual"], "audio": features["lighthouse_audio"]}
    summary = import_published(table, features["source"], raw_dir(params) / "features", modality, store,
                               names=names, max_failures=cfg["max_failures"], progress=True)
write_json(out_dir / "summary.json", summary)
failed = failure_reasons(out_dir / "features_failures.csv", modality)
print_reasons(f"extract_{modality}", [{"vid": vid, "reason": why} for vid, why in failed.items()])
stale, torn = summary.get("discarded_stale_parts", 0), summary.get("discarded_torn_parts", 0)
if stale or torn:
    print(f"extract_{modality}: re-did {stale} stale part(s) (video, segment rows or settings changed) "
          f"and {torn} torn part(s) of an earlier run")
print(f"extract_{modality}: {store}")
