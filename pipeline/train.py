"""Training with honest, low-noise model selection, over several seeds.

``train_dataset`` trains one model group per domain (``per_domain: true``, as the literature
does) or one shared group with a learned domain embedding (``per_domain: false``). Per group and
per seed of ``seeds``, the number of training epochs is chosen without the test split:

- ``selection: kfold`` (default): the group's training videos are cut into ``folds`` folds per
  domain (seeded by the seed and the domain; leave-one-out when a domain has fewer videos than
  ``folds``). A model is trained on each fold's complement for ``epochs`` epochs and scored
  (``umt`` mAP) on the fold every epoch; the seed's fold curves are averaged and the epoch of
  the best mean (earliest on ties) is chosen. Then the seed's model is trained on all training
  videos and kept at that epoch. Every training video is used, the choice averages ``folds``
  validation curves instead of one curve on 4-8 videos, and each seed repeats the whole
  procedure with its own folds, so the std over seeds includes the noise of selection.
  With ``selection_scope: pooled`` the chosen epoch count is the best of the mean of all groups'
  curves (per seed), one count for every group: TVSum's ten categories each cross-validate on
  4 videos (the preset's ``folds: 4``: leave-one-out, 4 folds of 1 video), and a curve averaged
  over ten categories is far less noisy than each category's own.
- ``selection: holdout``: per seed, ``val_fraction`` of each domain's training videos are held
  out (``n_val = min(n - 1, max(1, round(val_fraction * n)))``, 0 for ``n < 2``); the model is
  kept at its best validation epoch;
- ``selection: fixed``: per seed, the model trained on all training videos for ``epochs``
  epochs.

With ``fusion_grid`` (kfold, and a model with several late-fused heads) cross-validation also
chooses the late-fusion weights: every fold run scores its validation videos under each
weighting (one forward; the heads train the same under any weighting), and the seed's
(weighting, epoch) is the best point of the weightings' mean curves. The final model scores
with the chosen weights, which its checkpoint carries (``HPCLModel.fusion_w``).

A domain with one training video cannot be cross-validated: its group falls back to ``fixed``,
and the history says so. Before training, every model fits its input stage (normalisation and
bottleneck, ``pipeline.inputs``) on its own training videos, without labels; with
``model.input_remove_top`` the removed directions are fitted on those and the other groups'
training videos (never on a validation or test video).

The final runs also score the test split every ``test_every`` epochs (0: never), for one figure
only: ``test_best_epoch_optimistic``, the epoch picked on the test split as published code does,
reported beside the honest figure and labelled as such. Nothing else reads the test split.

Outputs in ``out_dir``: ``<group>/seed<k>.pt`` (``torch.save(state_dict)``, one per seed, the
input-stage statistics included), ``curves/<group>.tsv`` (epoch, loss and mean validation and
test mAP over the seeds, for ``dvc plots show``) and ``history.json`` (everything, including
seconds per epoch and the padding ratio of the batches).

Deterministic given the seeds on CPU: every run seeds torch from (seed, group, fold), batches
are shuffled by a seeded generator, and deterministic algorithms are switched on while training.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import metrics
from .align import VideoItem
from .batching import collate, items_table, length_batches, padding_ratio, predict, predict_fusions
from .device import resolve_device, set_cpu_threads
from .objective import LOSS_TERMS, training_loss
from .model import FUSION_HEADS, ModelConfig, build_model
from .paths import check_id
from .weight_average import WeightAverage
from .selection import (best_of_curves, group_plan, kfold_splits, mean_curve, optimistic, pooled_curves,
                        split_validation)
from .train_config import SELECTION_SCOPES, SELECTIONS, TrainConfig  # noqa: F401 (re-exported)

SHARED_GROUP = "shared"
CURVE_COLUMNS = ("epoch", "loss", "val_mAP", "test_mAP")


# ------------------------------------------------------------------ splits


def _run_seed(seed: int, *names: object) -> int:
    text = "/".join(str(n) for n in names)
    return (seed * 1_000_003 + zlib.crc32(text.encode())) % (2**31)


def _umt(dataset: str, table, preds: dict) -> dict:
    """umt mAP of ``preds`` on the segment table of the scored videos -> {"mAP", "per_domain"}."""
    res = metrics.evaluate(dataset, table, {k: v.tolist() for k, v in preds.items()}, protocol="umt")
    return {"mAP": float(res["mAP"]), "per_domain": {k: float(v) for k, v in res["per_domain"].items()}}


def fusion_candidates(model_cfg: ModelConfig, cfg: TrainConfig) -> list[tuple[float, float, float]]:
    """The late-fusion weightings ``(w_co, w_v, w_a)`` that cross-validation chooses among: the
    model's own first, then ``cfg.fusion_grid`` without those that weigh the model's heads the
    same as an earlier one or give them all 0. [] when there is nothing to choose: no grid, a
    selection other than kfold, or a model with one head (single-stream variants, early fusion,
    the linear baselines)."""
    if not cfg.fusion_grid or cfg.selection != "kfold":
        return []
    if model_cfg.variant in ("cr_av", "co_av") and model_cfg.fusion == "late":
        heads = FUSION_HEADS
    elif model_cfg.variant == "late_av":
        heads = ("v", "a")
    else:
        return []

    def on_heads(weights) -> tuple:
        return tuple(w for h, w in zip(FUSION_HEADS, weights) if h in heads)

    out = [(model_cfg.w_co, model_cfg.w_v, model_cfg.w_a)]
    for weights in cfg.fusion_grid:
        if sum(on_heads(weights)) > 0 and on_heads(weights) not in {on_heads(o) for o in out}:
            out.append(tuple(float(w) for w in weights))
    return out if len(out) > 1 else []


# ------------------------------------------------------------------ one run


def _segments(videos: list[VideoItem], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> every segment of ``videos``: visual [N, Dv], audio [N, Da], audio_mask [N]."""
    visual = torch.from_numpy(np.concatenate([it.visual for it in videos])).to(device)  # [N, Dv]
    audio = torch.from_numpy(np.concatenate([it.audio for it in videos])).to(device)  # [N, Da]
    audio_mask = torch.from_numpy(np.concatenate([it.audio_mask for it in videos])).to(device)  # [N]
    return visual, audio, audio_mask


def _fit_inputs(model: torch.nn.Module, train: list[VideoItem], device: torch.device, model_cfg: ModelConfig,
                background: list[VideoItem] = ()) -> None:
    """Fit the input stages on the run's training videos; with ``input_remove_top``, the removed
    directions also see ``background`` (the other groups' training videos)."""
    bg = _segments(list(background), device) if model_cfg.input_remove_top and background else None
    model.fit_inputs(*_segments(train, device), background=bg)


def _train_epoch(model, opt, train: list[VideoItem], batches: list[list[int]], domain_index, cfg: TrainConfig,
                 device: torch.device, average: WeightAverage | None = None) -> dict[str, float]:
    """One pass over ``batches`` of ``train`` -> mean loss terms over the batches (``average``,
    if given, is updated after every optimiser step)."""
    model.train()
    sums = dict.fromkeys(LOSS_TERMS, 0.0)
    for idx in batches:
        b = collate([train[i] for i in idx], domain_index, device)
        out = model(b["visual"], b["audio"], b["mask"], b["audio_mask"], b["domain"])
        terms = training_loss(out, b, cfg)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        if average is not None:
            average.update(model)
        for key, value in terms.items():
            sums[key] += float(value.detach())
    return {k: v / max(len(batches), 1) for k, v in sums.items()}


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train_run(
    train: list[VideoItem],
    domain_index: dict[str, int],
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    dataset: str,
    device: torch.device,
    run_seed: int,
    epochs: int,
    val: list[VideoItem] = (),
    test: list[VideoItem] = (),
    keep_epochs: tuple[int, ...] = (),
    bar: tqdm | None = None,
    fusions: list = (),
    fusion: tuple | None = None,
    background: list[VideoItem] = (),
) -> dict:
    """Train one fresh model on ``train`` for ``epochs`` epochs.

    ``background``: more training videos (other groups', never validation or test videos) whose
    segments the input stage's ``input_remove_top`` directions are fitted on with ``train``'s.

    ``fusion``: the late-fusion weights ``(w_co, w_v, w_a)`` the model scores with (default: the
    config's); ``fusions``: weightings to score ``val`` under as well (``fusion_candidates``,
    the first the model's own), into the records' "val_mAP_by_fusion".

    Scores ``val`` every epoch and ``test`` every ``cfg.test_every`` epochs (umt mAP); keeps the
    state_dict after each epoch in ``keep_epochs`` and after the best validation epoch (earliest
    on ties). Returns ``{"records": [{"epoch", "loss", ..., "val_mAP", "test_mAP",
    "test_per_domain"}], "states": {epoch: state_dict}, "best_val_epoch", "seconds_per_epoch",
    "eval_seconds_per_epoch", "padding_ratio"}``."""
    torch.manual_seed(run_seed)
    gen = torch.Generator().manual_seed(run_seed)
    dv, da = train[0].visual.shape[1], train[0].audio.shape[1]
    num_domains = len(domain_index) if len(domain_index) > 1 else 0
    model = build_model(model_cfg, dv, da, num_domains).to(device)
    _fit_inputs(model, train, device, model_cfg, background)
    if fusion is not None:
        model.set_fusion_weights(fusion)
    opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    opt = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    lengths = [it.num_segments for it in train]
    average = None
    if cfg.average_epochs > 0:  # horizon in steps: about ceil(n / batch_size) batches per epoch
        average = WeightAverage(model, max(1.0, cfg.average_epochs * math.ceil(len(train) / cfg.batch_size)))
    scored = model if average is None else average.model  # what validation, test and checkpoints see
    records, states = [], {}
    best_val, best_epoch = -math.inf, None
    t_train = t_eval = 0.0
    slots = real = 0
    val, test = list(val), list(test)
    val_table = items_table(val) if val else None
    test_table = items_table(test) if test else None
    for epoch in range(1, epochs + 1):
        batches = length_batches(lengths, cfg.batch_size, gen)
        ratio = padding_ratio(lengths, batches)
        slots, real = slots + ratio * sum(lengths), real + sum(lengths)
        t0 = time.perf_counter()
        record: dict = {"epoch": epoch, **_train_epoch(model, opt, train, batches, domain_index, cfg, device, average)}
        t1 = time.perf_counter()
        record["val_mAP"] = None
        if val and fusions:  # one forward, every weighting; the first is the model's own
            by_fusion = predict_fusions(scored, val, domain_index, device, list(fusions))
            record["val_mAP_by_fusion"] = [_umt(dataset, val_table, p)["mAP"] for p in by_fusion]
            record["val_mAP"] = record["val_mAP_by_fusion"][0]
        elif val:
            record["val_mAP"] = _umt(dataset, val_table, predict(scored, val, domain_index, device))["mAP"]
        record["test_mAP"], record["test_per_domain"] = None, {}
        if test and cfg.test_every and epoch % cfg.test_every == 0:
            res = _umt(dataset, test_table, predict(scored, test, domain_index, device))
            record["test_mAP"], record["test_per_domain"] = res["mAP"], res["per_domain"]
        t_train, t_eval = t_train + t1 - t0, t_eval + time.perf_counter() - t1
        records.append(record)
        if record["val_mAP"] is not None and record["val_mAP"] > best_val:
            best_val, best_epoch = record["val_mAP"], epoch
            states["best_val"] = _state(scored)
        if epoch in keep_epochs:
            states[epoch] = _state(scored)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}")
    return {
        "records": records,
        "states": states,
        "best_val_epoch": best_epoch,
        "seconds_per_epoch": t_train / epochs,
        "eval_seconds_per_epoch": t_eval / epochs,
        "padding_ratio": slots / max(real, 1),
    }


# ------------------------------------------------------------------ one group


class _GroupRunner:
    """The runs of one group: its cross-validation (per seed) and its final runs (per seed).

    The two phases are separate so that ``selection_scope: pooled`` can choose one epoch count
    from the cross-validation curves of all groups before any final run."""

    def __init__(self, name, train, test, domain_index, model_cfg, cfg: TrainConfig, out_dir: Path, dataset, device,
                 progress: bool, background: list[VideoItem] = ()) -> None:
        self.name, self.train, self.test, self.domain_index = name, train, test, domain_index
        self.background = list(background)  # the other groups' training videos (input_remove_top)
        self.model_cfg, self.cfg, self.out_dir, self.dataset, self.device = model_cfg, cfg, out_dir, dataset, device
        self.selection, self.note, self.n_folds = group_plan(train, cfg)
        self.fusions = fusion_candidates(model_cfg, cfg) if self.selection == "kfold" else []
        self.progress = progress
        self.bar: tqdm | None = None
        self.timing: dict[str, list[float]] = {"seconds_per_epoch": [], "eval_seconds_per_epoch": [], "padding_ratio": []}
        self.cv: dict[int, dict] = {}  # seed -> {"folds", "curve", "curves"}

    def _phase(self, what: str, runs: int) -> None:
        """A progress bar for the next ``runs`` runs of up to ``epochs`` epochs each (closed by
        ``_close`` at the end of the phase: in pooled scope the groups' phases interleave)."""
        self.bar = tqdm(total=runs * self.cfg.epochs, desc=f"{what} {self.name}", unit="epoch",
                        disable=not self.progress)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _run(self, train, run_seed: int, epochs: int, **kw) -> dict:
        run = train_run(train, self.domain_index, self.model_cfg, self.cfg, self.dataset, self.device, run_seed,
                        epochs, bar=self.bar, background=self.background, **kw)
        for key in self.timing:
            self.timing[key].append(run[key])
        return run

    def cross_validate(self) -> None:
        """kfold: per seed, train on each fold's complement and keep the mean validation curve."""
        if self.selection != "kfold":
            return
        self._phase("cross-validate", len(self.cfg.seeds) * self.n_folds)
        for seed in self.cfg.seeds:  # this seed's own folds and curve: the std over seeds includes selection
            curves, by_fusion = [], [[] for _ in self.fusions]
            for f, (tr, va) in enumerate(kfold_splits(self.train, self.cfg.folds, seed)):
                run = self._run(tr, _run_seed(seed, self.name, "fold", f), self.cfg.epochs, val=va,
                                fusions=self.fusions)
                curves.append([r["val_mAP"] for r in run["records"]])
                for c, fold_curves in enumerate(by_fusion):
                    fold_curves.append([r["val_mAP_by_fusion"][c] for r in run["records"]])
            self.cv[seed] = {"folds": len(curves), "curve": mean_curve(curves), "curves": curves}
            if self.fusions:  # per weighting, the mean over folds; the first is "curve"
                self.cv[seed]["fusion_curves"] = [mean_curve(fc) for fc in by_fusion]
        self._close()

    def finish(self, pooled: dict[int, dict] | None = None) -> dict:
        """The final run per seed (kfold: at the epoch of the best mean validation, the group's own
        curve or, with ``pooled`` (seed -> {"curve", "groups"}), the mean curve of the pooled
        groups); write the checkpoints and curves; return the group's history."""
        cfg, out_dir, name = self.cfg, self.out_dir, self.name
        (out_dir / name).mkdir(parents=True, exist_ok=True)
        self._phase("train", len(cfg.seeds))
        seeds_out, checkpoints, final_records, seed_curves = [], [], [], []
        for seed in cfg.seeds:
            extra: dict = {}
            chosen_epoch, fusion = cfg.epochs, None
            if self.selection == "kfold":
                cv = self.cv[seed]
                source = pooled[seed] if pooled is not None else cv
                # the best (weighting, epoch) of the mean curves; earliest epoch, then own weights, on ties
                curves = source.get("fusion_curves") or [source["curve"]]  # one per weighting
                c, chosen_epoch = best_of_curves(curves, cfg.cv_smooth)
                own = cv["fusion_curves"][c] if self.fusions else cv["curve"]
                seed_curves.append(own)
                extra["cv"] = {**cv, "mAP": own[chosen_epoch - 1]}
                if pooled is not None:
                    extra["cv"]["pooled"] = {"groups": pooled[seed]["groups"], "curve": curves[c],
                                             "mAP": curves[c][chosen_epoch - 1]}
                if self.fusions:
                    fusion = self.fusions[c]
                    extra["fusion"] = {"candidates": [list(f) for f in self.fusions], "chosen": list(fusion)}
            rs = _run_seed(seed, name, "final")
            if self.selection == "holdout":
                tr, va = split_validation(self.train, cfg.val_fraction, seed)
                run = self._run(tr, rs, cfg.epochs, val=va, test=self.test)
                epoch, state = run["best_val_epoch"], run["states"]["best_val"]
                extra.update(val_vids=[it.vid for it in va], best_val_mAP=run["records"][epoch - 1]["val_mAP"])
                seed_curves.append([r["val_mAP"] for r in run["records"]])
            else:
                budget = cfg.epochs if (self.test and cfg.test_every) else chosen_epoch
                run = self._run(self.train, rs, budget, test=self.test, keep_epochs=(chosen_epoch,), fusion=fusion)
                epoch, state = chosen_epoch, run["states"][chosen_epoch]
            ckpt = Path(name) / f"seed{seed}.pt"
            torch.save(state, out_dir / ckpt)
            checkpoints.append(ckpt.as_posix())
            final_records.append(run["records"])
            seeds_out.append({"seed": seed, "selected_epoch": epoch, "epochs": run["records"],
                              "test_best_epoch_optimistic": optimistic(run["records"]), **extra})
        cv_summary: dict = {}
        if self.selection == "kfold":
            cv_summary = {"folds": self.n_folds, "mAP": float(np.mean([r["cv"]["mAP"] for r in seeds_out])),
                          "mAP_std": float(np.std([r["cv"]["mAP"] for r in seeds_out])),
                          "curve": mean_curve(seed_curves), "scope": "pooled" if pooled is not None else "group"}
        self._close()
        _write_curves(out_dir / "curves" / f"{name}.tsv", final_records,
                      mean_curve(seed_curves) if seed_curves else None)
        dv, da = self.train[0].visual.shape[1], self.train[0].audio.shape[1]
        return {
            "domains": sorted(self.domain_index),
            "domain_index": self.domain_index,
            "num_domains": len(self.domain_index) if len(self.domain_index) > 1 else 0,
            "visual_dim": dv,
            "audio_dim": da,
            "train_vids": [it.vid for it in self.train],
            "test_vids": [it.vid for it in self.test],
            "selection": self.selection,
            "selection_note": self.note,
            "selected_epoch": [r["selected_epoch"] for r in seeds_out],  # per seed
            "fusion_weights": [r["fusion"]["chosen"] if "fusion" in r else None for r in seeds_out],  # per seed
            "cv": cv_summary,
            "seeds": list(cfg.seeds),
            "checkpoints": checkpoints,
            "runs": seeds_out,
            "seconds_per_epoch": float(np.mean(self.timing["seconds_per_epoch"])),
            "eval_seconds_per_epoch": float(np.mean(self.timing["eval_seconds_per_epoch"])),
            "padding_ratio": float(np.mean(self.timing["padding_ratio"])),
            "runs_trained": len(self.timing["seconds_per_epoch"]),
        }


def _write_curves(path: Path, final_records: list[list[dict]], val_curve: list | None) -> None:
    """curves/<group>.tsv: per epoch the mean over seeds of the final runs' loss and test mAP, and
    the validation curve (kfold: mean over folds, then seeds; holdout: mean over seeds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = max(len(r) for r in final_records)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(CURVE_COLUMNS)
        for i in range(n):
            rows = [r[i] for r in final_records if i < len(r)]
            loss = float(np.mean([r["loss"] for r in rows]))
            tests = [r["test_mAP"] for r in rows if r["test_mAP"] is not None]
            v = val_curve[i] if val_curve is not None and i < len(val_curve) else None
            writer.writerow([i + 1, loss, "" if v is None else v, float(np.mean(tests)) if tests else ""])


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
    tvsum, demo). Returns the history: ``{"dataset", "model_config", "train_config",
    "untrained_domains", "groups": {group: {"domains", "domain_index", "num_domains", "visual_dim",
    "audio_dim", "selection", "selected_epoch", "cv", "seeds", "checkpoints", "runs", ...}}}``,
    also written to ``out_dir/history.json``. A domain without training videos gets no model.
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
    plan = [(d, [d]) for d in domains] if train_cfg.per_domain else [(SHARED_GROUP, domains)]
    result: dict = {
        "dataset": dataset,
        "model_config": asdict(model_cfg),
        "train_config": asdict(train_cfg),
        "untrained_domains": untrained,
        "groups": {},
    }
    runners: list[_GroupRunner] = []
    with DeterministicTorch(train_cfg.num_threads):
        for name, group_domains in plan:
            train_g = sorted((it for it in train_all if it.domain in group_domains), key=lambda it: it.vid)
            test_g = sorted((it for it in test_all if it.domain in group_domains), key=lambda it: it.vid)
            domain_index = {d: i for i, d in enumerate(group_domains)}
            others = sorted((it for it in train_all if it.domain not in group_domains), key=lambda it: it.vid)
            runners.append(_GroupRunner(name, train_g, test_g, domain_index, model_cfg, train_cfg, out_dir, dataset,
                                        device, progress, others))
            if train_cfg.selection_scope == "group":  # each group finished before the next starts
                runners[-1].cross_validate()
                result["groups"][name] = runners[-1].finish()
        if train_cfg.selection_scope == "pooled":
            for runner in runners:
                runner.cross_validate()
            pooled = pooled_curves(runners, train_cfg.seeds) or None
            for runner in runners:
                result["groups"][runner.name] = runner.finish(pooled if runner.selection == "kfold" else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "history.json", "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1)
    return result


def load_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> torch.nn.Module:
    """Load a ``torch.save(state_dict)`` checkpoint with ``weights_only=True`` (no pickle code)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model


def load_group_models(model_dir: str | os.PathLike, history: dict, group: str, model_cfg: ModelConfig,
                      device: torch.device | str = "cpu") -> list[torch.nn.Module]:
    """The trained models of ``group`` (one per seed, in ``history["groups"][group]["seeds"]``
    order), in eval mode on ``device``."""
    g = history["groups"][group]
    models = []
    for ckpt in g["checkpoints"]:
        model = build_model(model_cfg, g["visual_dim"], g["audio_dim"], g["num_domains"])
        load_checkpoint(model, Path(model_dir) / ckpt)
        models.append(model.to(device).eval())
    return models
