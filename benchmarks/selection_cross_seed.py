"""Does a selection rule's choice carry over between seeds? (training videos only)

    python benchmarks/selection_cross_seed.py RUN/cv_curves.json [...] [--smooth 2]

Each file is a kfold run's ``cv_curves.json`` (``hpcl ablate ... --keep-cv-curves`` writes one
beside its ``metrics.json``) or a training history (``dvc repro`` writes
``data/models/<dataset>/history.json``): the same layout. Per run it prints,
for the raw rule (``train.cv_smooth: 0``) and the smoothed one (``--smooth k``), the chosen
(weighting, epoch) per seed and :func:`pipeline.selection.cross_seed_score`: each seed's choice
scored on the other seeds' curves at that point, averaged. The curves are the ones selection
used: with ``selection_scope: pooled`` the mean over the groups of each group's mean fold curve,
per fusion weighting; otherwise each group's own. Nothing here reads a test figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.selection import best_of_curves, cross_seed_score, pool_candidate_curves  # noqa: E402


def _seed_curves(group: dict, i: int) -> list[list]:
    """Seed i's validation curves of one group, one per fusion weighting (or the one curve)."""
    cv = group["runs"][i]["cv"]
    return cv.get("fusion_curves") or [cv["curve"]]


def curves_by_seed(history: dict) -> dict[str, list[list[list]]]:
    """{"pooled" or group name: [per seed: [per weighting: curve]]} as selection saw them."""
    groups = {name: g for name, g in history["groups"].items() if g.get("selection") == "kfold"}
    if not groups:
        raise ValueError("no kfold group in this history: nothing was cross-validated")
    first = next(iter(groups.values()))
    n = len(first["runs"])
    if first["cv"].get("scope") == "pooled":
        return {"pooled": [pool_candidate_curves([_seed_curves(g, i) for g in groups.values()]) for i in range(n)]}
    return {name: [_seed_curves(g, i) for i in range(n)] for name, g in groups.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("histories", nargs="+", type=Path, help="cv_curves.json or history.json files")
    ap.add_argument("--smooth", type=int, default=2, help="the smoothed rule's half-width (train.cv_smooth)")
    args = ap.parse_args()
    ahead = total = 0
    for path in args.histories:
        for name, curves in curves_by_seed(json.loads(path.read_text(encoding="utf-8"))).items():
            raw, smooth = cross_seed_score(curves), cross_seed_score(curves, args.smooth)
            picks = {k: [best_of_curves(c, k) for c in curves] for k in (0, args.smooth)}
            ahead, total = ahead + (smooth > raw), total + 1
            print(f"{path} [{name}]: raw {raw:.4f} (weighting, epoch) {picks[0]} | cv_smooth {args.smooth} "
                  f"{smooth:.4f} {picks[args.smooth]} | {smooth - raw:+.4f}")
    print(f"smoothed ahead on {ahead} of {total}")


if __name__ == "__main__":
    main()
