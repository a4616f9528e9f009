"""Batches of whole videos: padding, length buckets, prediction without padding waste.

A batch holds whole videos padded to its longest one. Videos of a domain range from 4 to 400
segments, so random batches waste most of their slots (and attention cells grow with the
square of the length): ``length_batches`` shuffles, then groups videos of similar length
(seeded), and ``predict`` runs videos in length order.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from .align import VideoItem

BUCKET_FACTOR = 8  # videos sorted by length inside windows of BUCKET_FACTOR * batch_size


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


def length_batches(lengths: list[int], batch_size: int, gen: torch.Generator) -> list[list[int]]:
    """Indices of ``lengths`` in shuffled batches of videos of similar length.

    A seeded permutation is cut into windows of ``BUCKET_FACTOR * batch_size`` videos; each window
    is sorted by length and cut into batches; the batches are shuffled. Every index appears once.
    """
    order = torch.randperm(len(lengths), generator=gen).tolist()
    window = BUCKET_FACTOR * batch_size
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    perm = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[p] for p in perm]


def padding_ratio(lengths: list[int], batches: list[list[int]]) -> float:
    """Padded segment slots / real segments over ``batches`` (1.0 = no padding)."""
    real = sum(lengths[i] for b in batches for i in b)
    slots = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return slots / max(real, 1)


def _outputs(model: torch.nn.Module, items: list[VideoItem], domain_index: dict[str, int], device: torch.device,
             batch_size: int):
    """The model's forward over ``items`` in eval mode, videos in length order (a batch pads
    little) -> yields (chunk of items, collated batch, output dict)."""
    was_training = model.training
    model.eval()
    ordered = sorted(items, key=lambda it: it.num_segments)
    try:
        for start in range(0, len(ordered), batch_size):
            chunk = ordered[start : start + batch_size]
            b = collate(chunk, domain_index, device)
            yield chunk, b, model(b["visual"], b["audio"], b["mask"], b["audio_mask"], b["domain"])
    finally:
        model.train(was_training)


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    items: list[VideoItem],
    domain_index: dict[str, int],
    device: torch.device,
    batch_size: int = 8,
) -> dict[str, np.ndarray]:
    """Fused highlight probability per segment: vid -> [T] float64 (sigmoid of ``score``).

    Videos run in length order, so a batch pads little; the model is in eval mode (no dropout).
    """
    out: dict[str, np.ndarray] = {}
    for chunk, _, res in _outputs(model, items, domain_index, device, batch_size):
        prob = torch.sigmoid(res["score"].double()).cpu().numpy()  # [B, T]
        for i, it in enumerate(chunk):
            out[it.vid] = prob[i, : it.num_segments]
    return {it.vid: out[it.vid] for it in items}


@torch.no_grad()
def predict_fusions(
    model: torch.nn.Module,
    items: list[VideoItem],
    domain_index: dict[str, int],
    device: torch.device,
    candidates: list,
    batch_size: int = 8,
) -> list[dict[str, np.ndarray]]:
    """``predict`` under each late-fusion weighting ``(w_co, w_v, w_a)`` of ``candidates``, from
    one forward per batch (the heads' logits do not depend on the weights) -> one
    {vid: [T] float64} per candidate, in order."""
    outs: list[dict[str, np.ndarray]] = [{} for _ in candidates]
    for chunk, b, res in _outputs(model, items, domain_index, device, batch_size):
        for c, weights in enumerate(candidates):
            score = model.fuse(res["logits"], b["mask"], b["audio_mask"], weights)  # [B, T]
            prob = torch.sigmoid(score.double()).cpu().numpy()  # [B, T]
            for i, it in enumerate(chunk):
                outs[c][it.vid] = prob[i, : it.num_segments]
    return [{it.vid: o[it.vid] for it in items} for o in outs]
