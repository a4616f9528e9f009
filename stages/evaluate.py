"""DVC stage `evaluate`: trained models -> metrics/<dataset>.json, predictions jsonl, timeline plots."""

from _common import ROOT

from pipeline.align import load_aligned
from pipeline.annotations import read_segment_table
from pipeline.evaluation import evaluate_run, format_table
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
metrics = evaluate_run(
    load_aligned(ROOT / "data" / "aligned" / dataset / "aligned.h5"),
    ROOT / "data" / "models" / dataset,
    ModelConfig.from_dict(section("model", params)),
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
print(format_table(metrics))
print(table_note(metrics))
print_skips("evaluate", [Skip(split="test", **v) for v in metrics["skipped_videos"]["test"]], "of the test split not evaluated")
