"""What the TVSum-like diagnosis scripts share (``top5_composition.py``, ``tvsum_known_cue.py``;
the planting arguments also ``tvsum_oracle_fusion.py`` and ``tvsum_remove_top.py``): their
command-line arguments for one rotation worktree, reading it, and the two sketch models trained at
fixed epoch counts (not the honest selection).

A rotation worktree ``BENCH`` holds ``data/aligned/tvsum`` and ``data/prepared/tvsum`` made from
``hpcl make-bench tvsum ... --config '{"cue": CUE}' --rotation R --seed SEED`` and ``dvc repro
align`` (what ``python benchmarks/bench_worktree.py BENCH tvsum --rotation R --seed SEED`` makes,
CUE its 0.45), with its params file at ``BENCH/params_exp.yaml`` (else ``BENCH/params.yaml``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.ablation import configs  # noqa: E402
from pipeline.align import VideoItem, load_aligned  # noqa: E402
from pipeline.annotations import read_segment_table  # noqa: E402
from pipeline.evaluation import evaluate_run  # noqa: E402
from pipeline.params import read_params, section  # noqa: E402
from pipeline.synthbench import Planted, SynthConfig, plant_tvsum  # noqa: E402
from pipeline.train import train_dataset  # noqa: E402

from bench_worktree import BENCH_CONFIG  # noqa: E402

# the sketch models: co_av at 20 epochs with the fusion weights model.w_* (no grid), linear at 60;
# on the inputs they were first run on (no dataset-wide removal: the TVSum preset's
# input_remove_top came later, and the known-cue inputs have 16 dimensions)
MODELS = {"co_av": {"train.epochs": 20, "train.fusion_grid": [], "model.input_remove_top": 0},
          "linear": {"model.variant": "linear", "train.epochs": 60, "model.input_remove_top": 0}}


def add_plant_args(ap: argparse.ArgumentParser) -> None:
    """--seed, --cue, --labels, --splits: how the bench was planted (``hpcl make-bench tvsum``)."""
    ap.add_argument("--seed", type=int, default=0, help="the bench's seed (make-bench --seed)")
    ap.add_argument("--cue", type=float, default=BENCH_CONFIG["tvsum"]["cue"])
    ap.add_argument("--labels", nargs="+", default=["../shared/data/tvsum/lighthouse_tvsum_train_release.jsonl",
                                                    "../shared/data/tvsum/lighthouse_tvsum_val_release.jsonl"])
    ap.add_argument("--splits", default="../shared/data/splits/umt_splits.json")


def add_bench_args(ap: argparse.ArgumentParser, work: str) -> None:
    """--root, --rotation, the planting arguments (:func:`add_plant_args`), --work (default ``work``)."""
    ap.add_argument("--root", required=True, type=Path)
    ap.add_argument("--rotation", type=int, required=True)
    add_plant_args(ap)
    ap.add_argument("--work", type=Path, default=Path(work))


def load_bench(root: Path):
    """-> (params sections {model, train, loss} for tvsum, aligned items, segment table)."""
    params_file = root / "params_exp.yaml"
    params = read_params(params_file if params_file.is_file() else root / "params.yaml")
    params["dataset"] = "tvsum"
    sections = {n: section(n, params) for n in ("model", "train", "loss")}
    items = load_aligned(root / "data" / "aligned" / "tvsum" / "aligned.h5")
    table = read_segment_table(root / "data" / "prepared" / "tvsum" / "segments.csv")
    return sections, items, table


def replant(args: argparse.Namespace, rotation: int | None = None) -> Planted:
    """The bench planted again in memory (for its cue directions), at ``rotation`` (default
    ``args.rotation``)."""
    rotation = args.rotation if rotation is None else rotation
    return plant_tvsum(args.labels, args.splits, seed=args.seed, cfg=SynthConfig(cue=args.cue), rotation=rotation)


def train_sketch(items: list[VideoItem], sections: dict, name: str, seeds: list[int], table, run: Path) -> dict:
    """Train ``MODELS[name]`` at its fixed epoch count, one model per seed, under ``run``; evaluate
    the test videos (``run/predictions.jsonl``, the seeds' ensemble); return the metrics dict."""
    mcfg, tcfg = configs(sections["model"], sections["train"], sections["loss"],
                         {**MODELS[name], "train.selection": "fixed", "train.seeds": seeds})
    train_dataset(items, mcfg, tcfg, run / "models", "tvsum", progress=False)
    return evaluate_run(items, run / "models", mcfg, "tvsum", table, run / "predictions.jsonl", run / "metrics.json",
                        device="cpu", num_threads=1)
