"""Training with honest model selection.

``train_dataset`` trains one model per domain (``per_domain: true``, as the literature does) or
one shared model with a learned domain embedding (``per_domain: false``). Per group:

- validation videos are carved from the group's training videos, per domain, seeded:
  ``n_val = min(n - 1, max(1, round(val_fraction * n)))`` for ``n >= 2`` training videos of a
  domain, 0 for ``n < 2`` or ``val_fraction == 0`` (TVSum's 4 training videos per category give
  3 train + 1 validation);
- every epoch logs the loss terms, the validation mAP and the test mAP (``umt`` protocol through
  ``pipeline.metrics.evaluate``). The epoch is selected by validation mAP (ties -> the earliest;
  no validation videos -> the last epoch). The test mAP is recorded only to report
  ``test_best_epoch_optimistic``: the figure published code reports by picking the epoch on
  the test split;
- ``out_dir/<group>/selected.pt`` and ``last.pt`` hold ``torch.save(state_dict)``;
  ``out_dir/curves/<group>.tsv`` the curves (epoch, loss, loss_ce, loss_hpcl, loss_rank,
  val_mAP, test_mAP) for ``dvc plots show``; ``out_dir/history.json`` everything else.

Deterministic given the seed on CPU: every group seeds torch from (seed, group name), batches
are shuffled by a seeded generator, and deterministic algorithms are switched on while training.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from . import metrics
from .align import VideoItem
from .device import resolve_device, set_cpu_threads
from .losses import ce_loss, hard_pair_rank_loss, hpcl_loss
from .model import ModelConfig, build_model
from .paths import check_id

SHARED_GROUP = "shared"
CURVE_COLUMNS = ("epoch", "loss", "loss_ce", "loss_hpcl", "loss_rank", "val_mAP", "test_mAP")


@dataclass
class TrainConfig:
    """The ``train:`` and ``loss:`` sections of params.yaml, flat.

    train: optimizer (adam | adamw), lr, weight_decay, epochs, batch_size (videos per batch),
    val_fraction (share of each domain's training videos held out for model selection),
    seed, per_domain (true: one model per domain; false: one shared model with a domain
    embedding), device (auto | cpu | cuda | cuda:N), num_threads (CPU threads, 0 = all cores;
    default 1: measured on the shared 2-core machine, d = 256, 48 videos: 3.6 s per epoch with
    one thread, 10.7 s with two).
    loss: lambda_ce, lambda_hpcl, lambda_rank (eq. 6 weights), tau (HPCL temperature, not
    stated in the paper), margin and region (hard-pair hinge margin and L), ce_target
    (binary: the labels; regression: the TVSum targets (sum - 20) / 80 as soft CE targets).
    Defaults: UMT's published optimiser settings (Adam, lr 1e-3, wd 1e-4; YouTube Highlights
    100 epochs batch 4, TVSum 500 epochs batch 1) and the paper's loss weights 1 / 0.3 / 0.1.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 100
    batch_size: int = 4
    val_fraction: float = 0.2
    seed: int = 0
    per_domain: bool = True
    device: str = "auto"
    num_threads: int = 1
    lambda_ce: float = 1.0
    lambda_hpcl: float = 0.3
    lambda_rank: float = 0.1
    tau: float = 0.1
    margin: float = 0.7
    region: int = 3
    ce_target: str = "binary"

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"train.optimizer must be adam or adamw, got {self.optimizer!r}")
        if self.ce_target not in ("binary", "regression"):
            raise ValueError(f"loss.ce_target must be binary or regression, got {self.ce_target!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("train.epochs and train.batch_size must be >= 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"train.val_fraction must be in [0, 1), got {self.val_fraction}")

    @classmethod
    def from_sections(cls, train: dict, loss: dict) -> "TrainConfig":
        """Build from the params.yaml ``train:`` and ``loss:`` sections; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        merged = {**(train or {}), **(loss or {})}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ValueError(f"unknown train/loss params {unknown}; known: {sorted(known)}")
        return cls(**merged)


def items_table(items: list[VideoItem]) -> pd.DataFrame:
    """VideoItems -> the segment-table columns ``pipeline.metrics.evaluate`` reads (vid, domain,
    split, seg_idx, label, match, scores), one row per aligned segment."""
    rows = []
    for it in items:
        for t in range(it.num_segments):
            raw = it.scores[t].tolist()
            rows.append(
                {
                    "vid": it.vid,
                    "domain": it.domain,
                    "split": it.split,
                    "seg_idx": t,
                    "label": int(it.labels[t]),
                    "match": float(raw[0]) if len(raw) == 1 else float("nan"),
                    "scores": json.dumps(raw),
                }
            )
    return pd.DataFrame(rows, columns=["vid", "domain", "split", "seg_idx", "label", "match", "scores"])


def collate(items: list[VideoItem], domain_index: dict[str, int], device: torch.device) -> dict:
    """Pad a list of videos to the longest: visual [B, T, Dv], audio [B, T, Da], mask [B, T],
    audio_mask [B, T], labels [B, T] long, targets [B, T] float, domain [B] long."""
    B, T = len(items), max(it.num_segments for it in items)
    dv, da = items[0].visual.shape[1], items[0].audio.shape[1]
    visual = np.zeros((B, T, dv), np.float32)
    audio = np.zeros((B, T, da), np.float32)
    mask = np.zeros((B, T), bool)
    audio_mask = np.zeros((B, T), bool)
    labels = np.zeros((B, T), np.int64)
    targets = np.zeros((B, T), np.float32)
    for i, it in enumerate(items):
        n = it.num_segments
        visual[i, :n], audio[i, :n], mask[i, :n] = it.visual, it.audio, True
        audio_mask[i, :n], labels[i, :n], targets[i, :n] = it.audio_mask, it.labels, it.targets
    batch = {"visual": visual, "audio": audio, "mask": mask, "audio_mask": audio_mask, "labels": labels, "targets": targets}
    out = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
    out["domain"] = torch.tensor([domain_index.get(it.domain, 0) for it in items], dtype=torch.long, device=device)
    return out


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    items: list[VideoItem],
    domain_index: dict[str, int],
    device: torch.device,
    batch_size: int = 8,
) -> dict[str, np.ndarray]:
    """Fused highlight probability per segment: vid -> [T] float64 (sigmoid of ``score``)."""
    was_training = model.training
    model.eval()
    out: dict[str, np.ndarray] = {}
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        b = collate(chunk, domain_index, device)
        score = model(b["visual"], b["audio"], b["mask"], b["audio_mask"], b["domain"])["score"]  # [B, T]
        prob = torch.sigmoid(score.double()).cpu().numpy()  # [B, T]
        for i, it in enumerate(chunk):
            out[it.vid] = prob[i, : it.num_segments]
    model.train(was_training)
    return out


def split_validation(train_items: list[VideoItem], val_fraction: float, seed: int) -> tuple[list, list]:
    """Carve validation videos from each domain's training videos (rule in the module docstring).
    Returns (train, val), each sorted by vid."""
    by_domain: dict[str, list[VideoItem]] = {}
    for it in sorted(train_items, key=lambda it: it.vid):
        by_domain.setdefault(it.domain, []).append(it)
    train, val = [], []
    for domain in sorted(by_domain):
        vids = by_domain[domain]
        n = len(vids)
        n_val = 0 if n < 2 or val_fraction == 0 else min(n - 1, max(1, math.floor(val_fraction * n + 0.5)))
        rng = np.random.default_rng([seed, zlib.crc32(domain.encode())])
        perm = rng.permutation(n)
        held = set(perm[:n_val].tolist())
        for i, it in enumerate(vids):
            (val if i in held else train).append(it)
    return sorted(train, key=lambda it: it.vid), sorted(val, key=lambda it: it.vid)


def _group_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2**31)


def _evaluate(dataset: str, table: pd.DataFrame, preds: dict) -> dict | None:
    if not preds:
        return None
    res = metrics.evaluate(dataset, table, {k: v.tolist() for k, v in preds.items()}, protocol="umt")
    return {"mAP": float(res["mAP"]), "per_domain": {k: float(v) for k, v in res["per_domain"].items()}}


def _train_epoch(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    train: list[VideoItem],
    domain_index: dict[str, int],
    cfg: TrainConfig,
    device: torch.device,
    gen: torch.Generator,
) -> dict[str, float]:
    """One pass over ``train`` in seeded random order -> mean loss terms over the batches."""
    model.train()
    sums = {"loss": 0.0, "loss_ce": 0.0, "loss_hpcl": 0.0, "loss_rank": 0.0}
    order = torch.randperm(len(train), generator=gen).tolist()
    n_batches = 0
    for start in range(0, len(order), cfg.batch_size):
        b = collate([train[i] for i in order[start : start + cfg.batch_size]], domain_index, device)
        out = model(b["visual"], b["audio"], b["mask"], b["audio_mask"], b["domain"])
        target = b["targets"] if cfg.ce_target == "regression" else b["labels"].float()  # [B, T]
        l_ce = ce_loss(out["logits"], target, b["mask"], out["head_masks"])
        l_hpcl = hpcl_loss(out["emb"], b["labels"], b["mask"], tau=cfg.tau)
        l_rank = hard_pair_rank_loss(out["emb"], b["labels"], b["mask"], margin=cfg.margin, region=cfg.region)
        loss = cfg.lambda_ce * l_ce + cfg.lambda_hpcl * l_hpcl + cfg.lambda_rank * l_rank
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for key, value in (("loss", loss), ("loss_ce", l_ce), ("loss_hpcl", l_hpcl), ("loss_rank", l_rank)):
            sums[key] += float(value.detach())
        n_batches += 1
    return {k: v / n_batches for k, v in sums.items()}


def _train_group(
    name: str,
    train: list[VideoItem],
    val: list[VideoItem],
    test: list[VideoItem],
    domain_index: dict[str, int],
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    out_dir: Path,
    dataset: str,
    device: torch.device,
    progress: bool,
) -> dict:
    """Train one model (one domain, or the shared model); write checkpoints and curves."""
    seed = _group_seed(cfg.seed, name)
    torch.manual_seed(seed)
    dv, da = train[0].visual.shape[1], train[0].audio.shape[1]
    num_domains = len(domain_index) if len(domain_index) > 1 else 0
    model = build_model(model_cfg, dv, da, num_domains).to(device)
    opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    opt = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    val_table, test_table = items_table(val), items_table(test)
    history: list[dict] = []
    best_val, best_state, best_epoch = -math.inf, None, None
    bar = tqdm(range(1, cfg.epochs + 1), desc=f"train {name}", unit="epoch", disable=not progress)
    for epoch in bar:
        record: dict = {"epoch": epoch, **_train_epoch(model, opt, train, domain_index, cfg, device, gen)}
        val_res = _evaluate(dataset, val_table, predict(model, val, domain_index, device))
        test_res = _evaluate(dataset, test_table, predict(model, test, domain_index, device))
        record["val_mAP"] = val_res["mAP"] if val_res else None
        record["test_mAP"] = test_res["mAP"] if test_res else None
        record["val_per_domain"] = val_res["per_domain"] if val_res else {}
        record["test_per_domain"] = test_res["per_domain"] if test_res else {}
        history.append(record)
        if val_res is not None and val_res["mAP"] > best_val:
            best_val, best_epoch = val_res["mAP"], epoch
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        val_text = "-" if record["val_mAP"] is None else f"{record['val_mAP']:.3f}"
        bar.set_postfix(loss=f"{record['loss']:.3f}", val_mAP=val_text)
    last_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if best_state is None:  # no validation videos: the last epoch is the only honest choice
        best_state, best_epoch, selection = last_state, cfg.epochs, "last epoch (no validation videos)"
    else:
        selection = "best validation mAP (umt), earliest on ties"
    group_dir = out_dir / name
    group_dir.mkdir(parents=True, exist_ok=True)
    torch.save(best_state, group_dir / "selected.pt")
    torch.save(last_state, group_dir / "last.pt")
    _write_curves(out_dir / "curves" / f"{name}.tsv", history)
    optimistic = None
    tested = [r for r in history if r["test_mAP"] is not None]
    if tested:
        top = max(tested, key=lambda r: (r["test_mAP"], -r["epoch"]))  # earliest on ties
        optimistic = {"epoch": top["epoch"], "mAP": top["test_mAP"], "per_domain": top["test_per_domain"]}
    return {
        "domains": sorted(domain_index),
        "domain_index": domain_index,
        "num_domains": num_domains,
        "visual_dim": dv,
        "audio_dim": da,
        "train_vids": [it.vid for it in train],
        "val_vids": [it.vid for it in val],
        "test_vids": [it.vid for it in test],
        "selected_epoch": best_epoch,
        "selection": selection,
        "best_val_mAP": None if best_val == -math.inf else best_val,
        "last_epoch": cfg.epochs,
        "test_best_epoch_optimistic": optimistic,
        "epochs": history,
    }


def _write_curves(path: Path, history: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(CURVE_COLUMNS)
        for r in history:
            writer.writerow(["" if r[c] is None else r[c] for c in CURVE_COLUMNS])


class DeterministicTorch:
    """Context: deterministic algorithms on and ``num_threads`` CPU threads (0 = all cores);
    the previous settings are restored on exit. On a shared 2-core machine one thread is much
    faster for these small matrices than two contending ones."""

    def __init__(self, num_threads: int) -> None:
        self.num_threads = num_threads

    def __enter__(self) -> None:
        self.prev = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
        self.prev_threads = torch.get_num_threads()
        torch.use_deterministic_algorithms(True, warn_only=True)
        set_cpu_threads(self.num_threads)

    def __exit__(self, *exc) -> None:
        torch.use_deterministic_algorithms(self.prev[0], warn_only=self.prev[1])
        torch.set_num_threads(self.prev_threads)


def train_dataset(
    items: list[VideoItem],
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    out_dir: str | os.PathLike,
    dataset: str,
    progress: bool = True,
) -> dict:
    """Train on the ``train`` videos of ``items``; write checkpoints, curves and history.

    ``dataset`` names the evaluation protocol of ``pipeline.metrics.evaluate`` (youtube_highlights,
    tvsum, demo). Returns the history: ``{"dataset", "model_config", "train_config", "groups":
    {group: {"domains", "selected_epoch", "best_val_mAP", "test_best_epoch_optimistic",
    "epochs": [per-epoch records], ...}}}``, also written to ``out_dir/history.json``.
    A domain without training videos gets no model (listed under ``"untrained_domains"``).
    """
    out_dir = Path(out_dir)
    device = resolve_device(train_cfg.device)
    train_all = [it for it in items if it.split == "train"]
    test_all = [it for it in items if it.split == "test"]
    if not train_all:
        raise ValueError("no training videos (split == 'train') among the aligned items")
    first = items[0]
    for it in items:
        if (it.visual.shape[1], it.audio.shape[1]) != (first.visual.shape[1], first.audio.shape[1]):
            raise ValueError(
                f"video {it.vid!r} has features of sizes (Dv, Da) = {(it.visual.shape[1], it.audio.shape[1])}, "
                f"video {first.vid!r} {(first.visual.shape[1], first.audio.shape[1])}"
            )
    domains = sorted({it.domain for it in train_all})
    for d in domains:
        check_id(d, "segment table (domain)")
    untrained = sorted({it.domain for it in test_all} - set(domains))
    if train_cfg.per_domain:
        plan = [(d, [d]) for d in domains]
    else:
        plan = [(SHARED_GROUP, domains)]
    result: dict = {
        "dataset": dataset,
        "model_config": asdict(model_cfg),
        "train_config": asdict(train_cfg),
        "untrained_domains": untrained,
        "groups": {},
    }
    with DeterministicTorch(train_cfg.num_threads):
        for name, group_domains in plan:
            train_g, val_g = split_validation(
                [it for it in train_all if it.domain in group_domains], train_cfg.val_fraction, train_cfg.seed
            )
            test_g = sorted((it for it in test_all if it.domain in group_domains), key=lambda it: it.vid)
            domain_index = {d: i for i, d in enumerate(group_domains)}
            result["groups"][name] = _train_group(
                name, train_g, val_g, test_g, domain_index, model_cfg, train_cfg, out_dir, dataset, device, progress
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "history.json", "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1)
    return result


def load_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> torch.nn.Module:
    """Load a ``torch.save(state_dict)`` checkpoint with ``weights_only=True`` (no pickle code)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model
