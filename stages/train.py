"""DVC stage `train`: aligned arrays -> HPCL models per domain (data/models/<dataset>/)."""

from _common import ROOT, write_json

from pipeline.align import load_aligned
from pipeline.model import ModelConfig
from pipeline.params import read_params, section
from pipeline.skipped import SKIPPED_FILE, print_skips, read_skips
from pipeline.train import TrainConfig, train_dataset

params = read_params()
dataset = params["dataset"]
model_cfg = ModelConfig.from_dict(section("model", params))
train_cfg = TrainConfig.from_sections(section("train", params), section("loss", params))
out_dir = ROOT / "data" / "models" / dataset
items = load_aligned(ROOT / "data" / "aligned" / dataset / "aligned.h5")
skips = read_skips(ROOT / "data" / "aligned" / dataset / SKIPPED_FILE)
print_skips("train", [s for s in skips if s.split == "train"], "of the training split left out of training")
summary = train_dataset(items, model_cfg, train_cfg, out_dir, dataset, progress=True)
write_json(out_dir / "summary.json", summary)
print(f"train: models in {out_dir}")
