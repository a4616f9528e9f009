"""How much a conjunction of the two modalities is worth at the top of the TVSum-like ranking, for
scores that know the planted cues (``pipeline.synthbench.cue_oracle_scores``): per rotation, the
test videos' top-5 umt mAP of each shot's visual cue projection alone, of the visual and audio
projections added (what a linear model can do), of the smaller of the two (a conjunction: what
``model.fusion_score: min`` lets the model do), and of the README calibration's oracles (the same
summed over +-1 shot). No training; a few seconds per rotation.

    python benchmarks/tvsum_oracle_fusion.py [--rotations 0 1 2 3 4] [--cue 0.45] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import metrics  # noqa: E402
from pipeline.batching import items_table  # noqa: E402
from pipeline.synthbench import cue_oracle_scores  # noqa: E402
from rotation_bench import add_plant_args, replant  # noqa: E402

KINDS = ("shot_visual", "shot_sum", "shot_min", "visual", "audio_visual")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rotations", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    add_plant_args(ap)
    args = ap.parse_args()
    rows = []
    print("rotation " + " ".join(f"{k:>12}" for k in KINDS) + "  min - sum")
    for r in args.rotations:
        planted = replant(args, r)
        test = [it for it in planted.items if it.split == "test"]
        scores = {it.vid: cue_oracle_scores(planted, it) for it in test}
        row = {k: metrics.evaluate("tvsum", items_table(test), {v: s[k].tolist() for v, s in scores.items()},
                                   protocol="umt")["mAP"] for k in KINDS}
        rows.append(row)
        print(f"{r:>8} " + " ".join(f"{row[k]:12.3f}" for k in KINDS) + f"  {row['shot_min'] - row['shot_sum']:+.3f}")
    diff = np.array([row["shot_min"] - row["shot_sum"] for row in rows])
    print("    mean " + " ".join(f"{np.mean([row[k] for row in rows]):12.3f}" for k in KINDS)
          + f"  {diff.mean():+.3f} +- {diff.std(ddof=1) if len(diff) > 1 else 0.0:.3f}")


if __name__ == "__main__":
    main()
