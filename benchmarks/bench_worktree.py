"""A git worktree of this repository with a benchmark-like dataset planted and aligned: what README's
rotation and draw tables ran in (then, in DIR, ``PYTHONPATH=DIR python -m pipeline.cli ablate ...
--dataset D --root DIR --params DIR/params.yaml``: the worktree's code and params, not the checkout's).

    python benchmarks/bench_worktree.py DIR tvsum [--rotation 0-4] [--seed S] [--commit C]
    python benchmarks/bench_worktree.py DIR youtube_highlights [--rotation 0|1] [--seed S]

Adds ``git worktree add --detach DIR C`` (default HEAD), points its ``params.yaml`` at the dataset
and at published-feature layouts, as a user with UMT's or lighthouse's features would
(``features.source: lighthouse`` for TVSum; ``umt`` with UMT's ``youtube_anno.json`` for YouTube),
plants the bench with README's settings (``hpcl make-bench``; TVSum: ``{"cue": 0.45}``; YouTube:
gymnastics and parkour) from the labels in the shared data folder (``../shared/data``,
``$HPCL_SHARED_DATA`` overrides) and runs ``dvc repro align`` there. About a minute on the 2-core
machine. ``git worktree remove --force DIR`` removes it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.paths import shared_data_dir  # noqa: E402

BENCH_CONFIG = {"tvsum": {"cue": 0.45}, "youtube_highlights": {}}
YOUTUBE_DOMAINS = ["gymnastics", "parkour"]

# (the line in params.yaml, what it becomes): each must occur exactly once
_EDITS = {
    "tvsum": [("dataset: demo\n", "dataset: tvsum\n"),
              ("  source: extract\n", "  source: lighthouse\n")],
    "youtube_highlights": [
        ("dataset: demo\n", "dataset: youtube_highlights\n"),
        ("  source: extract\n", "  source: umt\n"),
        ("    prepare: {format: authors, split: umt}\n",
         "    prepare: {format: umt, split: umt, annotations: [youtube_anno.json]}\n"),
    ],
}


def bench_params(text: str, dataset: str) -> str:
    """params.yaml's text pointed at ``dataset``'s bench: the dataset switch and the imported
    feature layout. Each edited line must occur exactly once (ValueError naming it otherwise), so a
    params.yaml that has drifted from what this script knows fails here, not as a silently
    different run."""
    if dataset not in _EDITS:
        raise ValueError(f"dataset {dataset!r}: expected one of {sorted(_EDITS)}")
    for old, new in _EDITS[dataset]:
        lines = text.splitlines(keepends=True)
        hits = [i for i, line in enumerate(lines) if line == old]
        if len(hits) != 1:
            raise ValueError(f"params.yaml: expected the line {old.strip()!r} exactly once, found {len(hits)}")
        lines[hits[0]] = new
        text = "".join(lines)
    return text


def make_bench_args(dataset: str, shared: Path, rotation: int, seed: int, out: str) -> list[str]:
    """The ``hpcl make-bench`` arguments README's tables used."""
    if dataset == "tvsum":
        labels = [str(shared / "tvsum" / f"lighthouse_tvsum_{s}_release.jsonl") for s in ("train", "val")]
        extra: list[str] = []
    else:
        labels, extra = [str(shared / "youtube_highlights")], ["--domains", *YOUTUBE_DOMAINS]
    return ["make-bench", dataset, "--labels", *labels, "--splits", str(shared / "splits" / "umt_splits.json"),
            *extra, "--config", json.dumps(BENCH_CONFIG[dataset]), "--rotation", str(rotation),
            "--seed", str(seed), "--out", out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path, help="the new worktree (must not exist)")
    ap.add_argument("dataset", choices=sorted(_EDITS))
    ap.add_argument("--rotation", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--commit", default="HEAD")
    args = ap.parse_args()
    shared = shared_data_dir()
    if not shared.is_dir():
        sys.exit(f"shared data folder {shared} not found (set HPCL_SHARED_DATA to its path)")
    wt = args.dir.resolve()
    if wt.exists():
        sys.exit(f"{wt} exists; choose a new folder (or git worktree remove --force {wt})")
    subprocess.run(["git", "worktree", "add", "--detach", str(wt), args.commit], cwd=REPO, check=True)
    params = wt / "params.yaml"
    params.write_text(bench_params(params.read_text(encoding="utf-8"), args.dataset), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(wt), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = dict(cwd=wt, env=env, check=True)
    try:
        subprocess.run([sys.executable, "-m", "pipeline.cli",
                        *make_bench_args(args.dataset, shared, args.rotation, args.seed, f"data/raw/{args.dataset}")],
                       **run)
        subprocess.run(["dvc", "repro", "align"], **run)
    except subprocess.CalledProcessError as e:
        sys.exit(f"{wt}: {' '.join(map(str, e.cmd[:4]))} ... failed (exit {e.returncode}, its message above); "
                 f"the worktree is left for a look: git worktree remove --force {wt}")
    print(f"{wt}: {args.dataset} bench, rotation {args.rotation}, seed {args.seed}, aligned. Then, in it:\n"
          f"  cd {wt} && PYTHONPATH={wt} python -m pipeline.cli ablate co_av linear --dataset {args.dataset} --root {wt} "
          f"--params {params} --out OUT")


if __name__ == "__main__":
    main()
