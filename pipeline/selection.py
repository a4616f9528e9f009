"""Model selection without the test split: the validation splits (``kfold``, ``holdout``), the
choice of each model group's selection rule, and the validation curves the epoch count is
chosen from (see ``pipeline.train``'s module docstring for the procedure).

Pure functions over the aligned items and the runs' records; ``pipeline.train`` runs the models.
"""

from __future__ import annotations

import math
import zlib
from typing import TYPE_CHECKING

import numpy as np

from .align import VideoItem

if TYPE_CHECKING:
    from .train_config import TrainConfig


def by_domain(items: list[VideoItem]) -> dict[str, list[VideoItem]]:
    out: dict[str, list[VideoItem]] = {}
    for it in sorted(items, key=lambda it: it.vid):
        out.setdefault(it.domain, []).append(it)
    return out


def split_validation(train_items: list[VideoItem], val_fraction: float, seed: int) -> tuple[list, list]:
    """Carve validation videos from each domain's training videos (``holdout``; the rule is in
    ``pipeline.train``'s module docstring). Returns (train, val), each sorted by vid."""
    train, val = [], []
    for domain, vids in sorted(by_domain(train_items).items()):
        n = len(vids)
        n_val = 0 if n < 2 or val_fraction == 0 else min(n - 1, max(1, math.floor(val_fraction * n + 0.5)))
        rng = np.random.default_rng([seed, zlib.crc32(domain.encode())])
        held = set(rng.permutation(n)[:n_val].tolist())
        for i, it in enumerate(vids):
            (val if i in held else train).append(it)
    return sorted(train, key=lambda it: it.vid), sorted(val, key=lambda it: it.vid)


def kfold_splits(train_items: list[VideoItem], folds: int, seed: int) -> list[tuple[list, list]]:
    """K folds of the training videos, per domain: each domain's videos (sorted by vid, then a
    permutation seeded by (seed, domain)) are dealt to ``min(folds, n)`` folds in turn; the number
    of folds is ``min(folds, smallest n)`` so every fold holds every domain (leave-one-out when a
    domain has fewer videos than ``folds``). Returns [(train, val)] per fold, sorted by vid.
    Raises if a domain has fewer than 2 videos."""
    domains = by_domain(train_items)
    k = min([folds, *(len(v) for v in domains.values())])
    if k < 2:
        small = min(domains, key=lambda d: len(domains[d]))
        raise ValueError(f"domain {small!r} has {len(domains[small])} training video(s): k-fold needs 2 or more")
    assignment: dict[str, int] = {}
    for domain, vids in sorted(domains.items()):
        rng = np.random.default_rng([seed, zlib.crc32(domain.encode())])
        for rank, i in enumerate(rng.permutation(len(vids)).tolist()):
            assignment[vids[i].vid] = rank % k
    ordered = sorted(train_items, key=lambda it: it.vid)
    return [
        ([it for it in ordered if assignment[it.vid] != f], [it for it in ordered if assignment[it.vid] == f])
        for f in range(k)
    ]




def mean_curve(curves: list[list[float | None]]) -> list[float | None]:
    out = []
    for values in zip(*curves):
        vals = [v for v in values if v is not None]
        out.append(float(np.mean(vals)) if vals else None)
    return out


def optimistic(records: list[dict]) -> dict | None:
    tested = [r for r in records if r["test_mAP"] is not None]
    if not tested:
        return None
    top = max(tested, key=lambda r: (r["test_mAP"], -r["epoch"]))  # earliest on ties
    return {"epoch": top["epoch"], "mAP": top["test_mAP"], "per_domain": top["test_per_domain"]}


def group_plan(train: list[VideoItem], cfg: TrainConfig) -> tuple[str, str | None, int]:
    """(selection, note, folds) of one group: kfold / holdout fall back to fixed where a domain
    has one training video (or holdout holds out nothing)."""
    per_domain_n = {d: len(v) for d, v in by_domain(train).items()}
    if cfg.selection in ("kfold", "holdout") and min(per_domain_n.values()) < 2:
        return "fixed", "a domain has 1 training video: no validation possible, fixed epoch budget", 0
    if cfg.selection == "holdout" and cfg.val_fraction == 0:
        return "fixed", "holdout with val_fraction 0: no validation videos, fixed epoch budget", 0
    if cfg.selection == "kfold":
        return "kfold", None, min([cfg.folds, *per_domain_n.values()])
    return cfg.selection, None, 0




def smooth_curve(curve: list[float | None], half_width: int) -> list[float | None]:
    """A validation curve averaged over a centred window of ``2 * half_width + 1`` epochs (cut at
    the ends; epochs not scored are left out of each mean and stay ``None``). ``half_width`` 0
    returns the curve as it is. One epoch's mean validation score carries the noise of a handful
    of validation videos: the window trades a little resolution in the epoch count for a choice
    that follows the curve's level rather than its luckiest epoch."""
    if half_width < 0:
        raise ValueError(f"the smoothing half-width must be >= 0, got {half_width}")
    if half_width == 0:
        return list(curve)
    out: list[float | None] = []
    for e, v in enumerate(curve):
        window = [w for w in curve[max(0, e - half_width): e + half_width + 1] if w is not None]
        out.append(None if v is None else float(np.mean(window)))
    return out


def best_of_curves(curves: list[list[float | None]], smooth: int = 0) -> tuple[int, int]:
    """The best point of several validation curves (one per candidate, e.g. a fusion weighting)
    -> (candidate index, epoch counted from 1): the highest value, then the earliest epoch, then
    the first candidate. ``None`` (an epoch not scored) never wins. ``smooth`` > 0: each curve is
    first averaged over +-``smooth`` epochs (:func:`smooth_curve`, ``train.cv_smooth``)."""
    curves = [smooth_curve(curve, smooth) for curve in curves]
    points = [(v, -e, -c) for c, curve in enumerate(curves) for e, v in enumerate(curve) if v is not None]
    if not points:
        raise ValueError("no scored epoch in the validation curves")
    _, neg_e, neg_c = max(points)
    return -neg_c, 1 - neg_e


def cross_seed_score(curves_by_seed: list[list[list[float | None]]], smooth: int = 0) -> float:
    """How well a selection rule's choice carries over between seeds, on training videos only.

    ``curves_by_seed[s]``: seed s's validation curves, one per candidate (e.g. fusion weighting).
    For each seed, the best (candidate, epoch) of its curves (:func:`best_of_curves` with
    ``smooth``) is scored on every other seed's raw curve of that candidate at that epoch; the
    result is the mean over all (choosing seed, other seed) pairs. The seeds' curves share the
    videos and differ in training noise, so a rule that chases one seed's lucky epoch scores
    lower. Needs at least two seeds."""
    n = len(curves_by_seed)
    if n < 2:
        raise ValueError(f"cross_seed_score needs the curves of at least 2 seeds, got {n}")
    scores = []
    for s, curves in enumerate(curves_by_seed):
        c, e = best_of_curves(curves, smooth)
        others = [curves_by_seed[t][c][e - 1] for t in range(n) if t != s]
        scores.append(float(np.mean([v for v in others if v is not None])))
    return float(np.mean(scores))


def pooled_curves(runners: list, seeds: list[int]) -> dict[int, dict]:
    """``selection_scope: pooled``: per seed, the mean over the cross-validated groups of their
    mean validation curves -> {seed: {"curve", "groups"}} (empty when no group cross-validates),
    with "fusion_curves" (the same per fusion weighting) where the groups have them."""
    cv = [r for r in runners if r.selection == "kfold"]
    if not cv:
        return {}
    out = {seed: {"curve": mean_curve([r.cv[seed]["curve"] for r in cv]), "groups": [r.name for r in cv]}
           for seed in seeds}
    if all("fusion_curves" in r.cv[seeds[0]] for r in cv):
        for seed in seeds:
            out[seed]["fusion_curves"] = pool_candidate_curves([r.cv[seed]["fusion_curves"] for r in cv])
    return out


def pool_candidate_curves(per_group: list[list[list[float | None]]]) -> list[list[float | None]]:
    """Several groups' curves, each group one per candidate (fusion weighting) -> per candidate the
    mean curve over the groups (:func:`mean_curve`)."""
    return [mean_curve([g[c] for g in per_group]) for c in range(len(per_group[0]))]
