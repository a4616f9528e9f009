"""``extract_visual`` / ``extract_audio``: segment table + videos + backbone -> resumable HDF5 store.

One front for every engine: the run takes the store's lock (one writer per output), opens the
store, keys every video's part (``pipeline.part_keys``), reuses the valid parts of an earlier run
(whichever engine wrote them), extracts the rest with the chosen engine, then applies the failure
budget and merges the parts into the final file.

- ``engine="local"``: decoder threads + the backbone in this process (``local``).
- ``engine="ray"``: Ray Data over a local instance or a cluster (``ray_engine``).

Per-video problems (no file, unreadable, truncated or zero-length files, segments outside the
video) are recorded in the failures table and the run goes on; at the end the run raises
:class:`ExtractionError` only if there are more than ``max_failures`` of them, keeping every
committed part so that a rerun only does the rest. A video without an audio track is not a failure
for audio extraction: it gets zeros [T, D] and ``has_audio=False``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import torch

from ..decoding import AUDIO_SAMPLE_RATE
from ..device import resolve_device
from ..errors import PipelineError
from ..gpu_decoding import resolve_decoder
from ..part_keys import video_part_key
from ..run_lock import exclusive_run
from ..store import FeatureStore, failures_path, parts_dir as default_parts_dir
from .jobs import ExtractionError, VideoJob, audio_store_attrs, short_side, video_jobs, visual_store_attrs
from .local import Counts, run_local
from .producers import audio_producer, visual_producer

ENGINES = ("local", "ray")


class EngineError(PipelineError, ValueError):
    """An engine that does not exist, or a combination it does not support."""


def _check_engine(engine: str, decoder: str = "cpu") -> None:
    if engine not in ENGINES:
        raise EngineError(f"engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine == "ray" and decoder == "nvdec":
        raise EngineError("decoder 'nvdec' runs with engine 'local' only for now (Ray decodes in CPU tasks); "
                         "use decoder: cpu with engine: ray")


def _run(
    jobs: list[VideoJob],
    store_path: str | os.PathLike,
    attrs: dict,
    parts: str | os.PathLike | None,
    max_failures: int,
    extract,
) -> dict:
    """Lock, open, resume, ``extract(todo, store, keys) -> Counts``, failure budget, merge."""
    started = time.perf_counter()
    parts = Path(parts) if parts is not None else default_parts_dir(store_path)
    with exclusive_run(parts):
        store = FeatureStore(store_path, attrs, parts=parts)
        keys = {job.vid: video_part_key(job, store.attrs) for job in jobs}
        done = store.resume(keys)  # stale or torn parts are discarded here and re-done
        todo = [job for job in jobs if job.vid not in done]
        counts: Counts = extract(todo, store, keys)
        seconds = time.perf_counter() - started
        summary = {
            "store": str(store.path),
            "failures_csv": str(failures_path(store.path)),
            "videos": len(jobs),
            "resumed": len(jobs) - len(todo),
            "discarded_stale_parts": store.discarded["stale"],
            "discarded_torn_parts": store.discarded["torn"],
            "extracted": counts.extracted,
            "failed": len(store.failures),
            "no_audio": counts.no_audio,
            "segments": counts.segments,
            "seconds": round(seconds, 3),
            "segments_per_s": round(counts.segments / seconds, 3) if seconds > 0 else 0.0,
        }
        if len(store.failures) > max_failures:
            store.write_failures()
            listing = "\n".join(f"  {f.vid} [{f.stage}] {f.error_type}: {f.message}" for f in store.failures)
            raise ExtractionError(
                f"{len(store.failures)} video(s) failed, more than max_failures={max_failures} "
                f"(table: {failures_path(store.path)}; the {len(store.done())} extracted videos are kept in "
                f"{store.parts} and a rerun continues from them):\n{listing}"
            )
        store.finalize(vids=[job.vid for job in jobs])
    return summary


def extract_visual(
    table: pd.DataFrame,
    videos_dir: str | os.PathLike,
    backbone: torch.nn.Module,
    store_path: str | os.PathLike,
    frames_per_segment: int = 16,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    autocast: str = "none",
    max_failures: int = 0,
    num_workers: int = 1,
    progress: bool = True,
    weights_sha256: str | None = None,
    decode_short_side: int | str | None = "auto",
    chunk_segments: int = 8,
    decode_threads: int = 1,
    prefetch: int = 2,
    parts_dir: str | os.PathLike | None = None,
    decoder: str = "auto",
    engine: str = "local",
    ray_address: str = "",
    desc: str = "visual",
) -> dict:
    """Visual features [T, D] for every video of ``table`` into the HDF5 store at ``store_path``.

    Each segment gives ``frames_per_segment`` frames sampled uniformly inside it (its frames, or
    its seconds mapped through the video's frame times), ``backbone.preprocess`` -> [3, F, S, S],
    batches of ``batch_size`` -> ``backbone`` -> [B, D]. ``decode_short_side``: "auto" = the
    backbone's crop size (FFmpeg scales while decoding), an int, or None for native frames.
    decoder: "cpu" (decord), "nvdec" (GPU, frames stay on the device; ``pipeline.gpu_decoding``)
    or "auto" (nvdec when the device is CUDA and NVDEC loads, else cpu).
    engine: "local" (threads in this process) or "ray" (``ray_address``: "" = a local instance,
    "auto" or "host:port" = join a cluster).
    weights_sha256: recorded in the store (default: ``backbone.weights_sha256`` when present).
    parts_dir: where committed videos wait for the final merge (see ``FeatureStore``).
    desc: the progress bar's label.
    Autocast ("none" | "bf16" | "fp16") applies on CUDA only. ``num_workers`` decoder threads.
    Returns a summary dict (videos, resumed, extracted, failed, segments, segments_per_s, ...).
    """
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    decoder = resolve_decoder(decoder, device)
    _check_engine(engine, decoder)
    backbone = backbone.eval().to(device)
    videos_dir = Path(videos_dir)
    jobs = video_jobs(table, videos_dir)
    short = short_side(decode_short_side, backbone)
    sha = weights_sha256 if weights_sha256 is not None else getattr(backbone, "weights_sha256", None)
    attrs = visual_store_attrs(backbone, sha, frames_per_segment, short, decoder)

    def extract(todo: list[VideoJob], store: FeatureStore, keys: dict[str, str]) -> Counts:
        if engine == "ray":
            from .ray_engine import run_ray

            decode = {"videos_dir": videos_dir, "frames_per_segment": frames_per_segment, "short_side": short,
                      "chunk_segments": chunk_segments, "decode_threads": decode_threads}
            return run_ray(todo, "visual", decode, backbone, store, keys, device, autocast, batch_size, ray_address,
                           progress)
        produce = visual_producer(backbone, videos_dir, frames_per_segment, short, chunk_segments, decode_threads,
                                  decoder, device)
        return run_local(todo, produce, backbone, store, keys, device, autocast, batch_size, num_workers, prefetch,
                         progress, desc)

    return _run(jobs, store_path, attrs, parts_dir, max_failures, extract)


def extract_audio(
    table: pd.DataFrame,
    videos_dir: str | os.PathLike,
    backbone: torch.nn.Module,
    store_path: str | os.PathLike,
    min_window_s: float = 1.0,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    autocast: str = "none",
    max_failures: int = 0,
    num_workers: int = 1,
    progress: bool = True,
    weights_sha256: str | None = None,
    prefetch: int = 4,
    parts_dir: str | os.PathLike | None = None,
    engine: str = "local",
    ray_address: str = "",
    desc: str = "audio",
) -> dict:
    """Audio features [T, D] for every video of ``table`` into the HDF5 store at ``store_path``.

    Each segment's window is its time span (its seconds, or its frames through the video's frame
    times), decoded at ``backbone.sample_rate`` mono and padded symmetrically to at least
    ``max(min_window_s, backbone.min_samples / sr)``. Consecutive windows of equal length are
    batched (``batch_size``) -> ``backbone`` [B, N] -> [B, D]. Videos without audio get zeros and
    ``has_audio=False``. ``engine``, ``ray_address``, ``desc`` as for :func:`extract_visual`. Returns the
    same summary as :func:`extract_visual` (+ ``no_audio``).
    """
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    _check_engine(engine)
    backbone = backbone.eval().to(device)
    videos_dir = Path(videos_dir)
    jobs = video_jobs(table, videos_dir)
    sample_rate = int(getattr(backbone, "sample_rate", AUDIO_SAMPLE_RATE))
    min_window = max(float(min_window_s), int(getattr(backbone, "min_samples", 0)) / sample_rate)
    sha = weights_sha256 if weights_sha256 is not None else getattr(backbone, "weights_sha256", None)
    attrs = audio_store_attrs(backbone, sha, sample_rate, min_window)

    def extract(todo: list[VideoJob], store: FeatureStore, keys: dict[str, str]) -> Counts:
        if engine == "ray":
            from .ray_engine import run_ray

            decode = {"videos_dir": videos_dir, "sample_rate": sample_rate, "min_window_s": min_window}
            return run_ray(todo, "audio", decode, backbone, store, keys, device, autocast, batch_size, ray_address,
                           progress)
        produce = audio_producer(videos_dir, sample_rate, min_window)
        return run_local(todo, produce, backbone, store, keys, device, autocast, batch_size, num_workers, prefetch,
                         progress, desc)

    return _run(jobs, store_path, attrs, parts_dir, max_failures, extract)
