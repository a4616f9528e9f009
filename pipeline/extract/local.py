"""The local engine: decoder threads feed the backbone in this process (decode || compute).

Producer thread(s) take videos one by one, decode each video once, preprocess its segments with
the backbone and batch them (a batch may span videos) into a bounded queue; the main thread runs
the backbone under ``torch.inference_mode`` (and autocast when asked) and commits each finished
video to the :class:`~pipeline.store.FeatureStore` under its part key.

Threads: the producer decodes with one FFmpeg thread by default and, with the default
``decode_short_side="auto"``, lets FFmpeg scale frames to the backbone's crop size while
decoding, so preprocessing is a crop and a normalisation; torch's intra-op threads
(``device.set_cpu_threads``) then have the cores to themselves for the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from ..device import autocast_context
from ..store import FeatureStore
from .jobs import VideoJob
from .producers import Message, Producers, resolve_workers


def run_model(backbone: torch.nn.Module, x: torch.Tensor, device: torch.device, autocast: str) -> np.ndarray:
    """Batch [B, ...] -> float32 features [B, D] on the CPU."""
    with torch.inference_mode(), autocast_context(device, autocast):
        y = backbone(x.to(device, non_blocking=True))  # [B, D]
    return y.float().cpu().numpy()


@dataclass
class Counts:
    segments: int = 0
    extracted: int = 0
    no_audio: int = 0


def _consume(
    producers: Producers,
    backbone: torch.nn.Module,
    device: torch.device,
    autocast: str,
    store: FeatureStore,
    keys: dict[str, str],
    bar,
) -> Counts:
    """Run the model on every batch and commit every finished video to ``store`` (keyed by ``keys``)."""
    counts = Counts()
    pending: dict[str, np.ndarray] = {}  # vid -> features [T, D] being filled
    for message in producers.messages():
        kind = message[0]
        if kind == "begin":
            pending[message[1]] = np.full((message[2], backbone.feature_dim), np.nan, np.float32)  # [T, D]
        elif kind == "batch":
            _, vids, rows, x = message
            y = run_model(backbone, x, device, autocast)  # [B, D]
            for vid, row, feat in zip(vids, rows, y):
                if vid in pending:  # else the video failed meanwhile
                    pending[vid][row] = feat
            counts.segments += len(rows)
            bar.update(len(rows))
        elif kind == "end":
            vid = message[1]
            try:
                store.put(vid, pending.pop(vid), key=keys[vid], **message[2])
                counts.extracted += 1
            except ValueError as exc:  # non-finite features (e.g. fp16 overflow)
                store.record_failure(vid, "model", exc)
        elif kind == "zeros":
            pending.pop(message[1], None)
            store.put(message[1], np.zeros((message[2], backbone.feature_dim), np.float32), key=keys[message[1]],
                      **message[3])
            counts.extracted += 1
            counts.no_audio += 1
            bar.update(message[2])
        elif kind == "fail":
            _, vid, stage, exc = message
            pending.pop(vid, None)
            store.record_failure(vid, stage, exc)
    return counts


def run_local(
    todo: list[VideoJob],
    produce: Callable[[VideoJob], Iterator[Message]],
    backbone: torch.nn.Module,
    store: FeatureStore,
    keys: dict[str, str],
    device: torch.device,
    autocast: str,
    batch_size: int,
    num_workers: int,
    prefetch: int,
    progress: bool,
    desc: str,
) -> Counts:
    """Extract ``todo`` into ``store`` with decoder threads in this process -> counts."""
    total = sum(job.num_segments for job in todo)
    producers = Producers(todo, produce, batch_size, device.type == "cuda", resolve_workers(num_workers, device),
                          prefetch)
    try:
        with tqdm(total=total, unit="seg", desc=desc, disable=not progress, dynamic_ncols=True) as bar:
            return _consume(producers, backbone, device, autocast, store, keys, bar)
    finally:
        producers.close()
