"""How many dataset-wide principal directions to remove before the input stage
(``model.input_remove_top``), chosen on the training videos of the TVSum-like bench: per
rotation and per ``k``, a per-shot probe (scikit-learn's logistic regression, C = 0.1, on a
whitened PCA-64 of ``[visual; audio]``: the calibration probe's recipe) after each modality's top
``k`` directions of the training segments of every category are removed
(``pipeline.inputs.InputStage.remove_shared``, the pipeline's own code). Prints the probe's
leave-one-out cross-validation over each category's training videos (top-5 umt mAP; the held-out
video is also left out of the removed directions, as in training) and, for reference only, its
test figure (the choice reads the cross-validation). A few minutes per rotation on 2 cores.

    python benchmarks/tvsum_remove_top.py [--rotations 0 1 2 3 4] [--ks 0 24 32 40 64]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import metrics  # noqa: E402
from pipeline.batching import items_table  # noqa: E402
from pipeline.inputs import InputStage  # noqa: E402
from rotation_bench import add_plant_args, replant  # noqa: E402


def removed(videos, background, k: int):
    """-> f(video) = its [T, Dv + Da] features with each modality's top ``k`` directions of the
    segments of ``videos`` and ``background`` removed (identity for k = 0)."""
    if k == 0:
        return lambda it: np.concatenate([it.visual, it.audio], 1)
    stages = {}
    for m in ("visual", "audio"):
        own = torch.from_numpy(np.concatenate([getattr(it, m) for it in videos]))
        bg = torch.from_numpy(np.concatenate([getattr(it, m) for it in background]))
        stages[m] = InputStage(own.shape[1], "pca", 1, remove_top=k).fit(own, bg)
    return lambda it: np.concatenate([stages[m].remove_shared(torch.from_numpy(getattr(it, m))).numpy()
                                      for m in ("visual", "audio")], 1)


def probe(videos, featurize):
    """-> score(video) [T]: the calibration probe fitted on ``videos``."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([featurize(it) for it in videos])
    pca = PCA(64, whiten=True, random_state=0).fit(x)
    clf = LogisticRegression(C=0.1, max_iter=5000).fit(pca.transform(x), np.concatenate([it.labels for it in videos]))
    return lambda it: clf.decision_function(pca.transform(featurize(it)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rotations", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--ks", type=int, nargs="+", default=[0, 24, 32, 40, 64])
    add_plant_args(ap)
    args = ap.parse_args()
    print("rotation    k  cross-val   test")
    for r in args.rotations:
        planted = replant(args, r)
        train = [it for it in planted.items if it.split == "train"]
        test = [it for it in planted.items if it.split == "test"]
        for k in args.ks:
            cv, scored = {}, {}
            for dom in sorted({it.domain for it in train}):
                own = [it for it in train if it.domain == dom]
                others = [it for it in train if it.domain != dom]
                for i, held in enumerate(own):  # leave one training video out
                    rest = own[:i] + own[i + 1:]
                    cv[held.vid] = probe(rest, removed(rest, others, k))(held).tolist()
                score = probe(own, removed(own, others, k))
                scored.update({it.vid: score(it).tolist() for it in test if it.domain == dom})
            cv_map = metrics.evaluate("tvsum", items_table(train), cv, protocol="umt")["mAP"]
            test_map = metrics.evaluate("tvsum", items_table(test), scored, protocol="umt")["mAP"]
            print(f"{r:>8} {k:>4} {cv_map:10.3f} {test_map:6.3f}", flush=True)


if __name__ == "__main__":
    main()
