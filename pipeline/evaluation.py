"""Evaluation of a trained run: test-split predictions and the metrics JSON.

``evaluate_run`` loads the ``selected`` and ``last`` checkpoints that ``pipeline.train`` wrote,
predicts every test video (score = the fused highlight probability, sigmoid of the model's
``score``), writes the selected epoch's predictions as jsonl (the ``hpcl evaluate`` format: one
float per annotated segment of the segment table, in table order) and the metrics JSON.

Length rule: when alignment cut a video to fewer segments than the table has (features one
segment short, or deliberately truncated published features), the table's remaining segments
get the video's minimum predicted score, so they rank last; the metrics are computed on the
full table, so those segments still count.

``test_best_epoch_optimistic`` comes from the training history: per domain the epoch with the
best test mAP (``umt``; for a shared model the epoch best over all domains), computed on the
aligned segments. It is the figure published code reports and is labelled as such.

Videos that cannot be scored are reported, never silently dropped: test videos of the table
without aligned features (failed extraction) and test videos of a domain without a model (no
training videos) are counted under ``"unevaluated_videos"`` and left out of the mAP; their ids and
reasons, with those of every train/test video left out earlier, are under ``"skipped_videos"``
(per split, ``pipeline.skipped``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics
from .align import VideoItem
from .model import ModelConfig, build_model
from .device import resolve_device
from .skipped import Skip, evaluation_skips, skipped_by_split
from .train import DeterministicTorch, load_checkpoint, predict

OPTIMISTIC_NOTE = "epoch chosen on the test split, as published code does"


def _fill_to_table(preds: dict[str, np.ndarray], table: pd.DataFrame) -> dict[str, list[float]]:
    """Extend each video's scores to its number of table segments with its minimum score."""
    counts = table.groupby(table["vid"].astype(str), sort=False).size()
    out = {}
    for vid, p in preds.items():
        if vid not in counts.index:
            raise ValueError(f"video {vid!r} has predictions but is not in the segment table")
        n = int(counts[vid])
        if len(p) > n:
            raise ValueError(f"video {vid!r}: {len(p)} predicted segments but {n} in the segment table")
        out[vid] = [float(x) for x in p] + [float(np.min(p))] * (n - len(p))
    return out


def _protocols(dataset: str, table: pd.DataFrame, preds: dict[str, list[float]]) -> dict:
    res = {}
    for protocol in ("umt", "standard"):
        r = metrics.evaluate(dataset, table, preds, protocol=protocol)
        res[protocol] = {"mAP": float(r["mAP"]), "per_domain": {k: float(v) for k, v in r["per_domain"].items()}}
        if "num_videos_without_positives" in r:
            res[protocol]["num_videos_without_positives"] = int(r["num_videos_without_positives"])
    res["num_videos"] = len(preds)
    return res


def _optimistic(history: dict) -> dict:
    """Best test epoch per group (per domain: its own best epoch; shared: the best overall)."""
    per_domain: dict[str, float] = {}
    for group in history["groups"].values():
        opt = group.get("test_best_epoch_optimistic")
        if opt:
            per_domain.update({k: float(v) for k, v in opt["per_domain"].items()})
    m = float(np.mean(list(per_domain.values()))) if per_domain else None
    return {"mAP": m, "per_domain": per_domain, "note": OPTIMISTIC_NOTE}


def evaluate_run(
    items: list[VideoItem],
    model_dir: str | os.PathLike,
    model_cfg: ModelConfig,
    dataset: str,
    table: pd.DataFrame,
    predictions_path: str | os.PathLike,
    metrics_path: str | os.PathLike,
    device: str = "cpu",
    num_threads: int = 1,
    skipped: list[Skip] | None = None,
) -> dict:
    """Predict the test split with the selected and last checkpoints of ``model_dir``; write
    ``predictions_path`` (selected epoch) and ``metrics_path``; return the metrics dict:
    ``{"dataset", "umt": {"mAP", "per_domain"}, "standard": {...}, "last_epoch": {"umt", "standard"},
    "test_best_epoch_optimistic": {"mAP", "per_domain", "note"}, "selected_epoch": {group: epoch},
    "num_videos", "unevaluated_videos": {"no_features", "no_model"}, "skipped_videos": {"train": [...],
    "test": [...]}}``. ``skipped``: the videos left out before (``pipeline.skipped.read_skips``).
    """
    model_dir = Path(model_dir)
    with open(model_dir / "history.json", encoding="utf-8") as fh:
        history = json.load(fh)
    if history["model_config"] != asdict(model_cfg):
        raise ValueError(
            f"{model_dir / 'history.json'}: the checkpoints were trained with model config "
            f"{history['model_config']}, not {asdict(model_cfg)}"
        )
    dev = resolve_device(device)
    test_table = table[table["split"].astype(str) == "test"]
    test_vids = set(test_table["vid"].astype(str))
    test_items = [it for it in items if it.split == "test" and it.vid in test_vids]
    domain_group = {d: name for name, g in history["groups"].items() for d in g["domains"]}
    no_features = sorted(test_vids - {it.vid for it in test_items})
    no_model = sorted(it.vid for it in test_items if it.domain not in domain_group)
    preds: dict[str, dict[str, np.ndarray]] = {"selected": {}, "last": {}}
    with DeterministicTorch(num_threads):
        for name, g in history["groups"].items():
            group_items = [it for it in test_items if domain_group.get(it.domain) == name]
            if not group_items:
                continue
            for which in ("selected", "last"):
                model = build_model(model_cfg, g["visual_dim"], g["audio_dim"], g["num_domains"])
                load_checkpoint(model, model_dir / name / f"{which}.pt").to(dev)
                preds[which].update(predict(model, group_items, g["domain_index"], dev))
    if not preds["selected"]:
        raise ValueError(f"{model_dir}: no test video could be scored (no features or no model for any)")
    selected = _fill_to_table(preds["selected"], test_table)
    last = _fill_to_table(preds["last"], test_table)
    metrics.write_predictions(predictions_path, selected)
    sel = _protocols(dataset, test_table, selected)
    lst = _protocols(dataset, test_table, last)
    result = {
        "dataset": dataset,
        "umt": sel["umt"],
        "standard": sel["standard"],
        "last_epoch": {"umt": lst["umt"], "standard": lst["standard"]},
        "test_best_epoch_optimistic": _optimistic(history),
        "selected_epoch": {name: g["selected_epoch"] for name, g in history["groups"].items()},
        "num_videos": sel["num_videos"],
        "unevaluated_videos": {"no_features": len(no_features), "no_model": len(no_model)},
        "skipped_videos": skipped_by_split(evaluation_skips(table, skipped or [], no_features, no_model)),
    }
    metrics_path = Path(metrics_path)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    with open(metrics_path, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    return result


def format_table(result: dict) -> str:
    """The metrics JSON of ``evaluate_run`` as a paper-style table: one row per domain, then the mean.

    Columns: ``umt`` and ``standard`` mAP at the epoch selected on validation, ``umt`` at the last
    epoch, and ``umt`` at the epoch chosen on the test split (``test_best_epoch_optimistic``).
    """
    columns = [
        ("umt", result["umt"]),
        ("standard", result["standard"]),
        ("umt last epoch", result["last_epoch"]["umt"]),
        ("umt test-best (optimistic)", result["test_best_epoch_optimistic"]),
    ]
    domains = sorted(result["umt"]["per_domain"])
    width = max([len("mean"), *map(len, domains)])
    widths = [max(len(name), 5) for name, _ in columns]
    lines = [f"{result['dataset']}: test mAP per domain ({result['num_videos']} test videos)",
             " | ".join([" " * width, *(name.rjust(w) for (name, _), w in zip(columns, widths))])]

    def cell(block: dict, domain: str | None, w: int) -> str:
        value = block["mAP"] if domain is None else block["per_domain"].get(domain)
        return (f"{value:.3f}" if value is not None else "-").rjust(w)

    for domain in [*domains, None]:
        label = (domain or "mean").ljust(width)
        lines.append(" | ".join([label, *(cell(block, domain, w) for (_, block), w in zip(columns, widths))]))
    return "\n".join(lines)
