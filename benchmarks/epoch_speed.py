"""Seconds per training epoch of one model per domain, with a repository's default settings.

    python benchmarks/epoch_speed.py --repo DIR --aligned data/aligned/<dataset>/aligned.h5 \
        --dataset youtube_highlights --epochs 3

Imports ``pipeline`` from ``--repo`` (so the same command times an older checkout, see
``benchmarks/epoch_speed.sh``), trains with the dataclass defaults of that checkout's
``ModelConfig`` and ``TrainConfig`` (which mirror its params.yaml) on the aligned file, one
thread, and prints JSON: wall seconds per epoch and per domain, everything the training loop
does in an epoch included (batches, validation and test prediction where that code does them).
The current code is timed as one model per domain on all training videos (``selection:
fixed``, one seed, the test split scored every epoch as the optimistic figure needs); the code
before issue 8 trained one model per domain on 80% of the videos and scored validation and test
every epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import fields


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--aligned", required=True)
    ap.add_argument("--dataset", default="youtube_highlights")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    sys.path.insert(0, args.repo)
    import torch

    from pipeline.align import load_aligned
    from pipeline.model import ModelConfig
    from pipeline.train import TrainConfig, train_dataset

    torch.set_num_threads(1)
    items = load_aligned(args.aligned)
    names = {f.name for f in fields(TrainConfig)}
    extra = {"selection": "fixed", "seeds": [0], "test_every": 1} if "selection" in names else {}
    cfg = TrainConfig(epochs=args.epochs, device="cpu", num_threads=1, **extra)
    domains = sorted({it.domain for it in items if it.split == "train"})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train_dataset(items, ModelConfig(), cfg, tmp, args.dataset, progress=False)
        wall = time.perf_counter() - t0
    print(json.dumps({"label": args.label, "repo": args.repo, "epochs": args.epochs, "domains": len(domains),
                      "seconds_per_epoch_per_domain": round(wall / args.epochs / len(domains), 3)}))


if __name__ == "__main__":
    main()
