"""DVC stage `evaluate`: trained models -> metrics/<dataset>.json, predictions jsonl, timeline and t-SNE plots."""

from _common import ROOT

from pipeline.align import load_aligned
from pipeline.annotations import read_segment_table
from pipeline.evaluation import evaluate_run, format_table, write_run_tsne
from pipeline.metrics import read_predictions
from pipeline.model import ModelConfig
from pipeline.params import read_params, section
from pipeline.plots import plot_timelines, write_timeline_data
from pipeline.skipped import SKIPPED_FILE, Skip, print_skips, read_skips, table_note

params = read_params()
dataset = params["dataset"]
cfg = section("evaluate", params)
train_cfg = section("train", params)
table = read_segment_table(ROOT / "data" / "prepared" / dataset / "segments.csv")
predictions = ROOT / "predictions" / f"{dataset}.jsonl"
items = load_aligned(ROOT / "data" / "aligned" / dataset / "aligned.h5")
model_cfg = ModelConfig.from_dict(section("model", params))
metrics = evaluate_run(
    items,
    ROOT / "data" / "models" / dataset,
    model_cfg,
    dataset,
    table,
    predictions,
    ROOT / "metrics" / f"{dataset}.json",
    device=train_cfg["device"],
    num_threads=train_cfg["num_threads"],
    skipped=read_skips(ROOT / "data" / "aligned" / dataset / SKIPPED_FILE),
)
scores = read_predictions(predictions)
plot_timelines(table, scores, ROOT / "plots" / dataset / "timelines", max_videos=cfg["timelines"])
write_timeline_data(table, scores, ROOT / "plots" / dataset / "timeline_data", max_videos=cfg["timelines"])
(ROOT / "plots" / dataset / "tsne").mkdir(parents=True, exist_ok=True)  # a declared output, even when off
if cfg["tsne"]:
    write_run_tsne(items, ROOT / "data" / "models" / dataset, model_cfg, ROOT / "plots" / dataset / "tsne",
                   device=train_cfg["device"], num_threads=train_cfg["num_threads"])
print(format_table(metrics))
print(table_note(metrics))
print_skips("evaluate", [Skip(split="test", **v) for v in metrics["skipped_videos"]["test"]], "of the test split not evaluated")
