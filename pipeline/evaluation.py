"""Evaluation of a trained run: test-split predictions and the metrics JSON.

``evaluate_run`` loads every seed's model that ``pipeline.train`` wrote, predicts every test
video (score = the fused highlight probability, sigmoid of the model's ``score``), reports each
seed's mAP and their mean +- std (the honest figure), and the mAP of the seeds' ensemble (mean
probability), whose predictions it writes as jsonl (the ``hpcl evaluate`` format: one float per
annotated segment of the segment table, in table order), plus the metrics JSON.

Length rule: when alignment cut a video to fewer segments than the table has (features one
segment short, or deliberately truncated published features), the table's remaining segments
get the video's minimum predicted score, so they rank last; the metrics are computed on the
full table, so those segments still count.

``test_best_epoch_optimistic`` comes from the training history: per seed and domain the epoch
of the final run with the best test mAP (``umt``; for a shared model the epoch best over all domains), computed on the
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
from .model import ModelConfig
from .device import resolve_device
from .batching import predict
from .skipped import Skip, evaluation_skips, skipped_by_split
from .train import DeterministicTorch, load_group_models

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


def _mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def _seed_summary(per_seed: list[dict]) -> dict:
    """[{"mAP", "per_domain"}] per seed -> {"mAP": mean, "std", "per_seed": [...], "per_domain": means,
    "per_domain_std"}; std is the population std over the seeds (0 for one seed)."""
    m, s = _mean_std([r["mAP"] for r in per_seed])
    domains = sorted({d for r in per_seed for d in r["per_domain"]})
    per_domain, per_domain_std = {}, {}
    for d in domains:
        per_domain[d], per_domain_std[d] = _mean_std([r["per_domain"][d] for r in per_seed if d in r["per_domain"]])
    return {"mAP": m, "std": s, "per_seed": [r["mAP"] for r in per_seed], "per_domain": per_domain,
            "per_domain_std": per_domain_std}


def _optimistic(history: dict) -> dict | None:
    """Per seed, per domain the best test epoch of the final run (a shared model: its best epoch
    over all domains); then mean and std over the seeds."""
    per_seed: dict[int, dict[str, float]] = {}
    for group in history["groups"].values():
        for run in group["runs"]:
            opt = run.get("test_best_epoch_optimistic")
            if opt:
                per_seed.setdefault(run["seed"], {}).update({k: float(v) for k, v in opt["per_domain"].items()})
    if not per_seed:
        return None
    rows = [{"mAP": float(np.mean(list(pd_.values()))), "per_domain": pd_} for _, pd_ in sorted(per_seed.items())]
    return {**_seed_summary(rows), "note": OPTIMISTIC_NOTE}


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
    """Predict the test split with every seed's model of ``model_dir``; write ``predictions_path``
    (the seeds' ensemble: mean probability) and ``metrics_path``; return the metrics dict:
    ``{"dataset", "umt": {"mAP", "std", "per_seed", "per_domain", "per_domain_std"},
    "standard": {...}, "ensemble": {"umt": {"mAP", "per_domain"}, "standard": {...}},
    "test_best_epoch_optimistic": {..., "note"}, "cv": {"mAP", "per_group"}, "selected_epoch":
    {group: [epoch per seed]}, "fusion_weights": {group: [[w_co, w_v, w_a] or None per seed]}, "seeds",
    "selection", "seconds_per_epoch", "padding_ratio", "num_videos",
    "unevaluated_videos": {"no_features", "no_model"}, "skipped_videos": {"train": [...], "test": [...]}}``.
    ``skipped``: the videos left out before (``pipeline.skipped.read_skips``). The honest figure is ``umt``: mean and
    std over the seeds of each seed's model, the epoch chosen without the test split.
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
    seeds = history["train_config"]["seeds"]
    per_seed: list[dict[str, np.ndarray]] = [{} for _ in seeds]
    with DeterministicTorch(num_threads):
        for name, g in history["groups"].items():
            group_items = [it for it in test_items if domain_group.get(it.domain) == name]
            if not group_items:
                continue
            for i, model in enumerate(load_group_models(model_dir, history, name, model_cfg, dev)):
                per_seed[i].update(predict(model, group_items, g["domain_index"], dev))
    if not per_seed[0]:
        raise ValueError(f"{model_dir}: no test video could be scored (no features or no model for any)")
    ensemble = {vid: np.mean([p[vid] for p in per_seed], axis=0) for vid in per_seed[0]}
    filled = [_fill_to_table(p, test_table) for p in per_seed]
    ens = _fill_to_table(ensemble, test_table)
    metrics.write_predictions(predictions_path, ens)
    seed_results = [_protocols(dataset, test_table, f) for f in filled]
    ens_result = _protocols(dataset, test_table, ens)
    groups = history["groups"]
    result = {
        "dataset": dataset,
        "umt": _seed_summary([r["umt"] for r in seed_results]),
        "standard": _seed_summary([r["standard"] for r in seed_results]),
        "ensemble": {"umt": ens_result["umt"], "standard": ens_result["standard"]},
        "test_best_epoch_optimistic": _optimistic(history),
        "cv": {"mAP": _mean_or_none([g["cv"]["mAP"] for g in groups.values() if g["cv"]]),
               "per_group": {n: g["cv"]["mAP"] for n, g in groups.items() if g["cv"]}},
        "selected_epoch": {n: g["selected_epoch"] for n, g in groups.items()},
        # late-fusion weights chosen by cross-validation (train.fusion_grid), per seed; None: model.w_*
        "fusion_weights": {n: g.get("fusion_weights", [None] * len(seeds)) for n, g in groups.items()},
        "seeds": seeds,
        "selection": sorted({g["selection"] for g in groups.values()}),
        "seconds_per_epoch": float(np.mean([g["seconds_per_epoch"] for g in groups.values()])),
        "padding_ratio": float(np.mean([g["padding_ratio"] for g in groups.values()])),
        "num_videos": ens_result["num_videos"],
        "unevaluated_videos": {"no_features": len(no_features), "no_model": len(no_model)},
        "skipped_videos": skipped_by_split(evaluation_skips(table, skipped or [], no_features, no_model)),
    }
    metrics_path = Path(metrics_path)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    with open(metrics_path, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    return result


def _mean_or_none(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def format_table(result: dict) -> str:
    """The metrics JSON of ``evaluate_run`` as a paper-style table: one row per domain, then the mean.

    Columns: ``umt`` and ``standard`` mAP (mean +- std over the seeds, epoch chosen without the
    test split), ``umt`` of the seeds' ensemble, and ``umt`` at the epoch chosen on the test split
    (``test_best_epoch_optimistic``, mean +- std over the seeds).
    """
    opt = result.get("test_best_epoch_optimistic") or {"mAP": None, "per_domain": {}}
    columns = [
        ("umt", result["umt"], True),
        ("standard", result["standard"], True),
        ("umt ensemble", result["ensemble"]["umt"], False),
        ("umt test-best (optimistic)", opt, True),
    ]
    domains = sorted(result["umt"]["per_domain"])
    width = max([len("mean"), *map(len, domains)])
    widths = [max(len(name), 13 if with_std else 5) for name, _, with_std in columns]
    n_seeds = len(result.get("seeds", [])) or 1
    lines = [f"{result['dataset']}: test mAP per domain ({result['num_videos']} test videos, "
             f"mean +- std over {n_seeds} seed{'s' if n_seeds > 1 else ''})",
             " | ".join([" " * width, *(name.rjust(w) for (name, _, _), w in zip(columns, widths))])]

    def cell(block: dict, domain: str | None, with_std: bool, w: int) -> str:
        value = block.get("mAP") if domain is None else block.get("per_domain", {}).get(domain)
        if value is None:
            return "-".rjust(w)
        std = block.get("std") if domain is None else block.get("per_domain_std", {}).get(domain)
        text = f"{value:.3f} +- {std:.3f}" if with_std and std is not None else f"{value:.3f}"
        return text.rjust(w)

    for domain in [*domains, None]:
        label = (domain or "mean").ljust(width)
        lines.append(" | ".join([label, *(cell(b, domain, s, w) for (_, b, s), w in zip(columns, widths))]))
    extra = []
    if result.get("cv", {}).get("mAP") is not None:
        extra.append(f"cross-validation mAP {result['cv']['mAP']:.3f}")
    if result.get("selected_epoch"):
        extra.append("epochs " + ", ".join(f"{k}: {'/'.join(map(str, v))}" for k, v in
                                           sorted(result["selected_epoch"].items()) if v))
    if result.get("seconds_per_epoch") is not None:
        extra.append(f"{result['seconds_per_epoch']:.3f} s/epoch")
    if extra:
        lines.append("(" + "; ".join(extra) + ")")
    return "\n".join(lines)


def write_run_tsne(items: list[VideoItem], model_dir: str | os.PathLike, model_cfg: ModelConfig,
                   out_dir: str | os.PathLike, device: str = "cpu", num_threads: int = 1) -> list[Path]:
    """The paper's Figure 3 for a trained run: ``out_dir/tsne_<domain>.png`` from the test
    segments' embeddings of each group's first-seed model (``pipeline.tsne``)."""
    from .tsne import write_tsne_plots

    model_dir = Path(model_dir)
    with open(model_dir / "history.json", encoding="utf-8") as fh:
        history = json.load(fh)
    dev = resolve_device(device)
    by_domain = {}
    with DeterministicTorch(num_threads):
        for name, g in history["groups"].items():
            model = load_group_models(model_dir, {"groups": {name: {**g, "checkpoints": g["checkpoints"][:1]}}},
                                      name, model_cfg, dev)[0]
            by_domain.update({d: (model, g["domain_index"]) for d in g["domains"]})
        test = [it for it in items if it.split == "test"]
        return write_tsne_plots(by_domain, test, out_dir, model_cfg.variant, dev)
