"""Checks and speed: top classes of a video under the loaded weights; decode-only, model-only
and end-to-end visual extraction rates for CPU and GPU decoding side by side."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..decoding import iter_audio_windows, iter_segment_frames, probe_video, NoAudioError
from ..device import resolve_device
from ..gpu_decoding import nvdec_unavailable_reason
from .jobs import VideoJob, short_side as resolve_short_side
from .local import run_model
from .producers import Producers, batched, visual_producer


def _topk(probs: torch.Tensor, labels: Sequence[str], k: int) -> list[dict]:
    """probs [C] -> [{"label", "prob"}] of the ``k`` most probable classes."""
    values, indices = torch.topk(probs.float(), min(k, probs.numel()))
    return [{"label": labels[int(i)], "prob": round(float(v), 6)} for v, i in zip(values, indices)]


def check_backbones(
    video_path: str | os.PathLike,
    visual_backbone: torch.nn.Module,
    audio_backbone: torch.nn.Module | None = None,
    topk: int = 5,
    visual_frames: int = 64,
    audio_seconds: float = 10.0,
    device: str | torch.device = "cpu",
) -> dict:
    """Top-k classes of the middle of a video, to see that real weights are loaded.

    visual: ``visual_frames`` consecutive frames around the centre, at the backbone's crop size ->
    softmax of ``classify`` logits. audio: ``audio_seconds`` around the centre -> ``classify``
    probabilities. Returns {"visual": [{"label", "prob"}, ...] | None, "audio": [...] | None};
    None for a backbone without labels or (audio) a video without sound.
    """
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    info = probe_video(video_path)
    result: dict = {"visual": None, "audio": None}
    if visual_backbone.labels is not None:
        start = max(0.0, info.num_frames / 2 - visual_frames / 2)
        segment = (start, min(float(info.num_frames), start + visual_frames))
        (_, frames), = iter_segment_frames(video_path, [segment], visual_frames, short_side=int(visual_backbone.crop_size), info=info)
        x = visual_backbone.preprocess(frames)[None].to(device)  # [1, 3, F, S, S]
        with torch.inference_mode():
            logits = visual_backbone.classify(x)[0]  # [C]
        result["visual"] = _topk(torch.softmax(logits.float(), dim=0), visual_backbone.labels, topk)
    if audio_backbone is not None and audio_backbone.labels is not None and info.has_audio:
        centre = info.duration_s / 2
        start = max(0.0, centre - audio_seconds / 2)
        window = (start, max(min(info.duration_s, centre + audio_seconds / 2), start + 1e-3))
        try:
            (_, wave), = iter_audio_windows(video_path, [window], int(audio_backbone.sample_rate), min_window_s=0.0)
        except NoAudioError:  # an audio track without samples
            return result
        with torch.inference_mode():
            probs = audio_backbone.classify(torch.from_numpy(wave)[None].to(device))[0]  # [C]
        result["audio"] = _topk(probs, audio_backbone.labels, topk)
    return result


def _bench_jobs(path: Path, segments: int, segment_s: float) -> list[VideoJob]:
    """The video cut into consecutive ``segment_s`` shots, cycled until ``segments`` (one job per cycle)."""
    info = probe_video(path)
    shot = max(1, int(round(segment_s * info.fps)))
    shots = np.array([(s, min(s + shot, info.num_frames)) for s in range(0, info.num_frames, shot)], np.float64)  # [K, 2]
    cycles = []
    for c in range(math.ceil(segments / len(shots))):
        take = shots[: min(len(shots), segments - c * len(shots))]  # [k, 2] frames
        unknown = np.full(len(take), np.nan)
        cycles.append(VideoJob(f"cycle{c}", path, take[:, 0], take[:, 1], unknown, unknown))
    return cycles


def _bench_one_decoder(cycles, produce, backbone, device, autocast, batch_size, num_workers, prefetch, rounds) -> dict:
    """decode-only, model-only and end-to-end segments/s of one decoder on the same segments."""
    pin = device.type == "cuda"

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # the same batches, decoded beforehand (this also warms the page cache for the other runs)
    batches = []
    for message in batched((m for job in cycles for m in produce(job)), batch_size, pin):
        if message[0] == "fail":
            raise message[3]
        if message[0] == "batch":
            batches.append(message[3])  # [B, 3, F, S, S]
    run_model(backbone, batches[0], device, autocast)  # warm-up (kernel selection, allocations)
    sync()

    def threaded(with_model: bool) -> float:
        started = time.perf_counter()
        producers = Producers(cycles, produce, batch_size, pin, num_workers, prefetch)
        try:
            for message in producers.messages():
                if message[0] == "batch" and with_model:
                    run_model(backbone, message[3], device, autocast)
                elif message[0] == "fail":
                    raise message[3]
            sync()
        finally:
            producers.close()
        return time.perf_counter() - started

    def model_only() -> float:
        started = time.perf_counter()
        for x in batches:
            run_model(backbone, x, device, autocast)
        sync()
        return time.perf_counter() - started

    e2e_s = model_s = decode_s = 0.0
    for r in range(max(1, rounds)):
        steps = [("e2e", lambda: threaded(True)), ("model", model_only), ("decode", lambda: threaded(False))]
        if r % 2:
            steps.reverse()  # alternate the order: evens out a machine whose load drifts
        for name, step in steps:
            seconds = step()
            if name == "e2e":
                e2e_s += seconds
            elif name == "model":
                model_s += seconds
            else:
                decode_s += seconds
    done = sum(len(x) for x in batches) * max(1, rounds)
    e2e, model, decode = done / e2e_s, done / model_s, done / decode_s
    return {
        "segments_per_s": round(e2e, 4),
        "model_only_segments_per_s": round(model, 4),
        "decode_only_segments_per_s": round(decode, 4),
        "overlap_efficiency": round(e2e / model, 4),
        "efficiency_vs_bottleneck": round(e2e / min(model, decode), 4),
        "bottleneck": "decode" if decode < model else "model",
        "segments": sum(len(x) for x in batches),
    }


def bench_extract(
    video_path: str | os.PathLike,
    backbone: torch.nn.Module,
    segments: int = 32,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    autocast: str = "none",
    frames_per_segment: int = 16,
    segment_s: float = 2.0,
    decode_short_side: int | str | None = "auto",
    num_workers: int = 1,
    decode_threads: int = 1,
    prefetch: int = 2,
    rounds: int = 1,
    decoders: Sequence[str] = ("cpu", "nvdec"),
) -> dict:
    """Visual extraction speed for each decoder of ``decoders`` on the same segments, side by side.

    The video is cut into consecutive ``segment_s`` shots, cycled (one decoding pass per cycle,
    as for separate videos) until ``segments`` are processed. Per decoder: end-to-end (the local
    engine's producer threads + model), model-only (the same batches, decoded beforehand, through
    the model alone) and decode-only (the producer threads, no model). With ``rounds`` > 1 all
    three are repeated in alternating order and their times summed. A decoder that cannot run
    here (nvdec without CUDA / PyNvVideoCodec) is reported as {"unavailable": reason}.
    Returns {"cpu": {...}, "nvdec": {...}, "batch_size", "device", "threads", ...}; per decoder
    "segments_per_s" (end to end), "model_only_segments_per_s", "decode_only_segments_per_s",
    "overlap_efficiency" (e2e / model-only), "efficiency_vs_bottleneck" (e2e / min(decode, model)).
    """
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    backbone = backbone.eval().to(device)
    path = Path(video_path)
    cycles = _bench_jobs(path, segments, segment_s)
    short = resolve_short_side(decode_short_side, backbone)
    result: dict = {
        "rounds": max(1, rounds),
        "batch_size": batch_size,
        "frames_per_segment": frames_per_segment,
        "crop_size": int(backbone.crop_size),
        "decode_short_side": short or 0,
        "num_workers": num_workers,
        "device": str(device),
        "autocast": autocast if device.type == "cuda" else "none",
        "threads": torch.get_num_threads(),
        "video": path.name,
    }
    for decoder in decoders:
        if decoder not in ("cpu", "nvdec"):
            raise ValueError(f"decoder {decoder!r}: use cpu or nvdec")
        reason = nvdec_unavailable_reason(device) if decoder == "nvdec" else None
        if reason is not None:
            result[decoder] = {"unavailable": reason}
            continue
        produce = visual_producer(backbone, path.parent, frames_per_segment, short, 8, decode_threads, decoder, device)
        result[decoder] = _bench_one_decoder(cycles, produce, backbone, device, autocast, batch_size, num_workers,
                                             prefetch, rounds)
    return result
