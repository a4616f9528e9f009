"""What a TVSum-like model's top five shots hold, against the planted cue (a diagnosis, not a benchmark).

    python benchmarks/top5_composition.py --root BENCH --rotation R [--seed 0] [--cue 0.45] \\
        [--work /tmp/top5]

``BENCH`` is a worktree whose ``data/aligned/tvsum`` and ``data/prepared/tvsum`` were made from
``hpcl make-bench tvsum ... --config '{"cue": CUE}' --rotation R --seed SEED`` and ``dvc repro
align``, with its params file at ``BENCH/params_exp.yaml`` (else ``BENCH/params.yaml``). Trains,
on one seed (0), ``co_av`` at a fixed 20 epochs (the fusion weights fixed at ``model.w_*``) and
``linear`` at a fixed 60 (no cross-validation: a sketch of the two models, not their honest
figures), re-plants the bench in memory for its cue directions, and prints per scorer the mean
over the test videos of: the top-5 umt AP (the TVSum protocol), the share of annotators for
whom a top-5 shot is a positive, the share of binary-label positives, the top five's percentile
of the video's mean score, their visual cue projection (z-score within the video) and the share
of top-5 shots beside another top-5 shot. Two reference scorers: the mean annotator score (the
ceiling) and the per-shot visual cue projection (what reading the cue straight off the features
gives).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.metrics import annotator_labels, ap_topk_umt, read_predictions  # noqa: E402
from rotation_bench import MODELS, add_bench_args, load_bench, replant, train_sketch  # noqa: E402

COLUMNS = ("top-5 AP", "annotators +", "label +", "percentile", "cue z", "beside")


def _row(scores: np.ndarray, S: np.ndarray, label: np.ndarray, cue: np.ndarray) -> list[float]:
    """One test video: scores [T], annotator scores S [T, K], binary label [T], cue projection [T]."""
    per_annotator = annotator_labels(S)  # [K, T]
    mean = S.mean(axis=1)  # [T]
    percentile = np.argsort(np.argsort(mean, kind="mergesort"), kind="mergesort") / max(len(mean) - 1, 1)  # [T]
    top = np.argsort(-scores, kind="mergesort")[:5]
    chosen = set(top.tolist())
    return [float(np.mean([ap_topk_umt(scores, y) for y in per_annotator])),
            float(np.mean([y[top].mean() for y in per_annotator])), float(label[top].mean()),
            float(percentile[top].mean()), float((cue[top].mean() - cue.mean()) / cue.std()),
            float(np.mean([(t - 1 in chosen) or (t + 1 in chosen) for t in top]))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_args(ap, "/tmp/top5_composition")
    args = ap.parse_args()

    sections, items, table = load_bench(args.root)
    scorers = {}
    for name in MODELS:
        run = args.work / f"r{args.rotation}" / name
        train_sketch(items, sections, name, [0], table, run)
        scorers[name] = read_predictions(run / "predictions.jsonl")
    planted = replant(args)
    rows: dict[str, list[list[float]]] = {name: [] for name in [*scorers, "mean score", "visual cue"]}
    for it in sorted(items, key=lambda it: it.vid):
        if it.split != "test":
            continue
        cue = it.visual.astype(np.float64) @ planted.cue_dirs[(it.domain, "visual")]  # [T]
        scores = {name: np.asarray(p[it.vid], dtype=np.float64) for name, p in scorers.items()}
        scores["mean score"], scores["visual cue"] = it.scores.mean(axis=1), cue
        for name, s in scores.items():
            rows[name].append(_row(s, it.scores, it.labels, cue))
    print(f"rotation {args.rotation}, {len(rows['co_av'])} test videos (means over them)")
    print("| scorer | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, r in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in np.mean(r, axis=0)) + " |")


if __name__ == "__main__":
    main()
