"""Ablation tables: the same training and evaluation as the `train` and `evaluate` stages, for a
list of named settings, on one aligned dataset.

Each setting is the params.yaml ``model``/``train``/``loss`` sections (the dataset's preset
merged in) with a few overrides, exactly what ``dvc exp run -S key=value`` would train. Results
go to ``out_dir/<name>/metrics.json`` (the evaluate stage's metrics format), so a long table
can be built by several processes and printed at the end with ``ablation_table``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .align import VideoItem
from .evaluation import evaluate_run
from .model import ModelConfig
from .train import TrainConfig, train_dataset

LINEAR_EPOCHS = 100

# name -> (overrides "section.key" -> value, what it is)
SETTINGS: dict[str, tuple[dict, str]] = {
    # The baselines train for LINEAR_EPOCHS: at the default 25 their cross-validation still picks
    # the last epoch (README), and a bar that has not converged is a bar set too low.
    "linear": ({"model.variant": "linear", "train.epochs": LINEAR_EPOCHS},
               "per-segment logistic regression on the normalised inputs"),
    "linear_ctx": ({"model.variant": "linear_ctx", "train.epochs": LINEAR_EPOCHS},
                   "the same with +-1 neighbour segments"),
    "v_only": ({"model.variant": "v_only"}, "visual stream only (Table 3)"),
    "a_only": ({"model.variant": "a_only"}, "audio stream only (Table 3)"),
    "av": ({"model.variant": "av"}, "concatenated features, one stream (Table 3)"),
    "cr_av": ({"model.variant": "cr_av"}, "plain cross-attention (Table 3)"),
    "late_av": ({"model.variant": "late_av"}, "v_only and a_only trained independently, logits summed (not in the paper)"),
    "co_av": ({}, "the paper's model, params.yaml as committed"),
    "co_av_fixed": ({"train.fusion_grid": []},
                    "co_av with the late-fusion weights fixed at model.w_* (the default until 2026-12-07)"),
    "co_av_joint": ({"model.stream_training": "joint", "model.fusion_score": "probability"},
                    "co_av trained end to end, heads' probabilities averaged (the default until 2026-12-02)"),
    "co_av_ce": ({"loss.lambda_hpcl": 0.0, "loss.lambda_rank": 0.0}, "co_av without the contrastive terms (Table 4)"),
    "co_av_list": ({"loss.lambda_list": 1.0},
                   "co_av with a top-heavy listwise ranking term within each video (not in the paper; README)"),
    "co_av_no_pos": ({"model.pos_encoding": "none"}, "co_av without a position code"),
    "co_av_zero_bias": ({"model.rel_pos_init": "zero"}, "co_av with the relative bias starting at zero"),
    "co_av_raw": ({"model.input_norm": "none"}, "co_av on raw features (paper-literal input layer)"),
    "co_av_min": ({"model.fusion_score": "min"},
                  "co_av fused as a conjunction: co-occurrence logit + the smaller stream logit (README 2026-12-07)"),
    "co_av_rm32": ({"model.input_remove_top": 32},
                   "co_av without the top 32 principal directions of all domains' training segments (README 2026-12-07)"),
    "linear_rm32": ({"model.variant": "linear", "train.epochs": LINEAR_EPOCHS, "model.input_remove_top": 32},
                    "linear on the same inputs as co_av_rm32"),
    "co_av_prenorm": ({"model.block_norm": "pre"}, "co_av with pre-norm attention blocks (README 2026-12-07)"),
    "co_av_whiten": ({"model.input_norm": "pca_whiten"}, "co_av with whitened PCA inputs (each component to unit variance)"),
    "co_av_random_g": ({"model.global_init": "random"}, "G_init started at random (Table 5)"),
    "co_av_no_g": ({"model.global_init": "none"}, "no global context (Table 5)"),
    "co_av_early": ({"model.fusion": "early"}, "early fusion (Table 6)"),
}


def configs(model: dict, train: dict, loss: dict, overrides: dict) -> tuple[ModelConfig, TrainConfig]:
    """The params sections with ``{"model.variant": ..., "train.lr": ...}`` overrides applied."""
    sections = {"model": dict(model), "train": dict(train), "loss": dict(loss)}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section not in sections or not name:
            raise ValueError(f"override {key!r}: expected model.<key>, train.<key> or loss.<key>")
        sections[section][name] = value
    return ModelConfig.from_dict(sections["model"]), TrainConfig.from_sections(sections["train"], sections["loss"])


def run_setting(name: str, overrides: dict, items: list[VideoItem], table: pd.DataFrame, dataset: str,
                sections: dict, out_dir: str | os.PathLike, progress: bool = False,
                keep_cv_curves: bool = False, keep_predictions: bool = False) -> dict:
    """Train and evaluate one setting; write ``out_dir/<name>/metrics.json`` (and, with
    ``keep_cv_curves``, ``cv_curves.json``: :func:`cv_curves` of the training's history; with
    ``keep_predictions``, ``predictions.jsonl``: the test scores of the seeds' ensemble); return
    the metrics with ``"setting": {"name", "overrides", "model_config", "train_config"}`` added."""
    mcfg, tcfg = configs(sections["model"], sections["train"], sections["loss"], overrides)
    run_dir = Path(out_dir) / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    train_dataset(items, mcfg, tcfg, run_dir / "models", dataset, progress=progress)
    result = evaluate_run(items, run_dir / "models", mcfg, dataset, table, run_dir / "predictions.jsonl",
                          run_dir / "metrics.json", device=tcfg.device, num_threads=tcfg.num_threads)
    result["setting"] = {"name": name, "overrides": overrides, "model_config": asdict(mcfg),
                         "train_config": asdict(tcfg)}
    with open(run_dir / "metrics.json", "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
    if keep_cv_curves:
        history = json.loads((run_dir / "models" / "history.json").read_text(encoding="utf-8"))
        with open(run_dir / "cv_curves.json", "w", encoding="utf-8") as fh:
            json.dump(cv_curves(history), fh)
    shutil.rmtree(run_dir / "models")  # checkpoints are not needed for the table
    if not keep_predictions:
        (run_dir / "predictions.jsonl").unlink()
    return result


def cv_curves(history: dict) -> dict:
    """The part of a training history that selection read, in the history's own layout (so what
    reads one reads the other): per group its selection, its cross-validation scope and seeds, and
    per seed the mean validation curve, one per fusion weighting where there were several, and the
    chosen epoch: about 60 kB for TVSum's ten categories, where the history (every record of every
    run) is half a MB."""
    groups = {}
    for name, g in history["groups"].items():
        runs = [{"selected_epoch": r["selected_epoch"],
                 "cv": {k: r["cv"][k] for k in ("curve", "fusion_curves") if k in r.get("cv", {})}}
                for r in g["runs"]]
        groups[name] = {"selection": g["selection"], "seeds": g["seeds"], "cv": {"scope": g["cv"].get("scope")},
                        "runs": runs}
    return {"dataset": history.get("dataset"), "groups": groups}


def _pm(block: dict | None) -> str:
    if not block or block.get("mAP") is None:
        return "-"
    return f"{block['mAP']:.3f} +- {block.get('std', 0.0):.3f}"


def ablation_table(out_dir: str | os.PathLike, names: list[str] | None = None) -> str:
    """A markdown table of the settings found in ``out_dir`` (in ``names`` order if given): honest
    umt mAP and textbook AP (mean +- std over seeds), the seeds' ensemble, cross-validation mAP,
    the optimistic test-selected figure, the chosen epochs and seconds per training epoch."""
    out_dir = Path(out_dir)
    found = {p.parent.name: p for p in sorted(out_dir.glob("*/metrics.json"))}
    order = [n for n in (names or list(SETTINGS)) if n in found] + sorted(set(found) - set(names or SETTINGS))
    lines = ["| setting | umt mAP (honest) | textbook AP | ensemble | cross-val | test-selected (optimistic) | epochs "
             "| s/epoch |",
             "|---|---|---|---|---|---|---|---|"]
    for name in order:
        m = json.loads(found[name].read_text(encoding="utf-8"))
        cv = m.get("cv", {}).get("mAP")
        epochs = sorted({e for per_seed in (m.get("selected_epoch") or {}).values() for e in per_seed or []})
        lines.append(f"| {name} | {_pm(m['umt'])} | {_pm(m.get('standard'))} | {m['ensemble']['umt']['mAP']:.3f} | "
                     f"{'-' if cv is None else f'{cv:.3f}'} | {_pm(m.get('test_best_epoch_optimistic'))} | "
                     f"{','.join(map(str, epochs)) or '-'} | {m['seconds_per_epoch']:.2f} |")
    return "\n".join(lines)


def _per_seed(run: Path) -> tuple[list[int], dict[str, list[float]]]:
    """A run folder's seeds and its per-seed figures {"umt": [...], "standard": [...]}."""
    path = Path(run) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics (expected OUT/<setting>/metrics.json from `hpcl ablate`)")
    m = json.loads(path.read_text(encoding="utf-8"))
    figures = {}
    for protocol in ("umt", "standard"):
        try:
            figures[protocol] = [float(v) for v in m[protocol]["per_seed"]]
        except (KeyError, TypeError):
            raise ValueError(f"{path}: no per-seed {protocol!r} figures (key {protocol}.per_seed)") from None
    if "seeds" not in m:
        raise ValueError(f"{path}: no 'seeds' key")
    return list(m["seeds"]), figures


def _mean_std(values: list[float]) -> str:
    arr = np.asarray(values, dtype=float)
    return f"{arr.mean():+.3f} +- {arr.std():.3f}" if arr.size else "-"


def paired_comparison(pairs: list[tuple[str | os.PathLike, str | os.PathLike]]) -> str:
    """Setting A against setting B over several datasets (bench draws, split rotations), seed by
    seed: ``pairs`` = [(A's run folder, B's run folder)], each ``OUT/<setting>`` of ``hpcl ablate``
    on the same data. A markdown table: one row per pair (honest umt mAP of A and B, mean +- std
    over seeds, and A - B), then all runs pooled (A and B, A - B per run: mean +- std, how often A is ahead,
    the range) and the pairs' own differences (their mean +- std: the spread between datasets);
    the same for textbook AP. std is the population std (ddof 0), as in the metrics files.
    Raises ValueError where a pair's runs used different seeds."""
    if not pairs:
        raise ValueError("paired_comparison: no pairs")
    rows = ["| A | B | A umt | B umt | A - B umt | A textbook | B textbook | A - B textbook |",
            "|---|---|---|---|---|---|---|---|"]
    diffs = {"umt": [], "standard": []}  # per run
    values = {("umt", "A"): [], ("umt", "B"): [], ("standard", "A"): [], ("standard", "B"): []}  # per run
    pair_diffs = {"umt": [], "standard": []}  # per pair
    for a, b in pairs:
        (seeds_a, fig_a), (seeds_b, fig_b) = _per_seed(Path(a)), _per_seed(Path(b))
        if seeds_a != seeds_b:
            raise ValueError(f"{a} (seeds {seeds_a}) and {b} (seeds {seeds_b}): different seeds, not paired")
        cells = []
        for protocol in ("umt", "standard"):
            va, vb = fig_a[protocol], fig_b[protocol]
            d = [x - y for x, y in zip(va, vb)]
            diffs[protocol] += d
            values[protocol, "A"] += va
            values[protocol, "B"] += vb
            pair_diffs[protocol].append(float(np.mean(d)))
            cells += [f"{np.mean(va):.3f} +- {np.std(va):.3f}", f"{np.mean(vb):.3f} +- {np.std(vb):.3f}", _mean_std(d)]
        rows.append(f"| {a} | {b} | " + " | ".join(cells) + " |")
    lines = ["\n".join(rows), ""]
    for protocol, label in (("umt", "umt mAP"), ("standard", "textbook AP")):
        d = np.asarray(diffs[protocol])
        va, vb = np.asarray(values[protocol, "A"]), np.asarray(values[protocol, "B"])
        lines.append(f"{label}, {len(d)} runs: A {va.mean():.3f} +- {va.std():.3f}, B {vb.mean():.3f} +- {vb.std():.3f}; "
                     f"A - B {_mean_std(list(d))} (A ahead in {int((d > 0).sum())}, "
                     f"equal in {int((d == 0).sum())}, range {d.min():+.3f} to {d.max():+.3f}); "
                     f"per pair ({len(pairs)}): {_mean_std(pair_diffs[protocol])}")
    return "\n".join(lines)
