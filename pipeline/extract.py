"""Segment table + videos + backbone -> per-segment features in a resumable HDF5 store.

Producer thread(s) take videos one by one, decode each video once (``decoding``), preprocess its
segments with the backbone and batch them (a batch may span videos) into a bounded queue; the
main thread runs the backbone under ``torch.inference_mode`` (and autocast when asked) and
commits each finished video to the :class:`~pipeline.store.FeatureStore`. Videos already
committed are skipped (resume).

Per-video problems (no file, unreadable, truncated or zero-length files, segments outside the
video) are recorded in the failures table and the run goes on; at the end the run raises
:class:`ExtractionError` only if there are more than ``max_failures`` of them, keeping every
committed part so that a rerun only does the rest. A video without an audio track is not a failure
for audio extraction: it gets zeros [T, D] and ``has_audio=False``.

Threads: the producer decodes with one FFmpeg thread by default and, with the default
``decode_short_side="auto"``, lets FFmpeg scale frames to the backbone's crop size while
decoding, so preprocessing is a crop and a normalisation; torch's intra-op threads
(``device.set_cpu_threads``) then have the cores to themselves for the model.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .decoding import (
    AUDIO_SAMPLE_RATE,
    NoAudioError,
    SegmentError,
    frames_to_seconds,
    iter_audio_windows,
    iter_segment_frames,
    probe_video,
    seconds_to_frames,
)
from .device import autocast_context, resolve_device
from .part_keys import video_part_key
from .paths import check_id, safe_join
from .store import FeatureStore, failures_path

AUDIO_DOWNMIX = "ffmpeg-swresample-default-mono"


class ExtractionError(RuntimeError):
    """More videos failed than ``max_failures`` allows (the message lists them)."""


# ----------------------------------------------------------------------------- the segment table


@dataclass(frozen=True)
class VideoJob:
    """One video of the segment table: its file and its segments in ``seg_idx`` order."""

    vid: str
    path: Path | None  # None: the table names no file
    start_frame: np.ndarray  # [T] float, NaN where unknown
    end_frame: np.ndarray  # [T]
    start_s: np.ndarray  # [T]
    end_s: np.ndarray  # [T]

    @property
    def num_segments(self) -> int:
        return len(self.start_frame)


def _column(rows: pd.DataFrame, name: str) -> np.ndarray:
    if name not in rows:
        return np.full(len(rows), np.nan)
    return pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=np.float64)


def video_jobs(table: pd.DataFrame, videos_dir: str | os.PathLike, source: str = "segment table") -> list[VideoJob]:
    """Group the canonical segment table by video (first-appearance order), validated.

    Every row needs (start_frame, end_frame) or (start_s, end_s); ``seg_idx`` must be 0..T-1.
    Video paths go through ``safe_join`` under ``videos_dir``.
    """
    for column in ("vid", "seg_idx"):
        if column not in table:
            raise ValueError(f"{source}: missing column {column!r}")
    jobs = []
    for vid, rows in table.groupby("vid", sort=False):
        vid = check_id(str(vid), source)
        rows = rows.sort_values("seg_idx", kind="stable")
        seg_idx = rows["seg_idx"].to_numpy()
        if not np.array_equal(seg_idx, np.arange(len(rows))):
            raise ValueError(f"{source}: video {vid!r} has seg_idx {seg_idx.tolist()[:10]}..., expected 0..{len(rows) - 1}")
        sf, ef, ss, es = (_column(rows, c) for c in ("start_frame", "end_frame", "start_s", "end_s"))
        known = (np.isfinite(sf) & np.isfinite(ef)) | (np.isfinite(ss) & np.isfinite(es))
        if not known.all():
            bad = int(seg_idx[~known][0])
            raise ValueError(f"{source}: video {vid!r} segment {bad} has neither start/end_frame nor start/end_s")
        video = rows["video"].iloc[0] if "video" in rows else ""
        video = "" if pd.isna(video) else str(video).strip()
        path = safe_join(videos_dir, video) if video else None
        jobs.append(VideoJob(vid, path, sf, ef, ss, es))
    return jobs


def frame_ranges(job: VideoJob, frame_starts_s: np.ndarray) -> list[tuple[float, float]]:
    """(start_frame, end_frame) per segment: the table's frames, else its seconds via frame times."""
    out = []
    for i in range(job.num_segments):
        if np.isfinite(job.start_frame[i]) and np.isfinite(job.end_frame[i]):
            out.append((float(job.start_frame[i]), float(job.end_frame[i])))
        else:
            out.append(seconds_to_frames(job.start_s[i], job.end_s[i], frame_starts_s, name=f"{job.vid} segment {i}"))
    return out


def time_windows(job: VideoJob, frame_starts_s: np.ndarray | None, fps: float | None) -> list[tuple[float, float]]:
    """(start_s, end_s) per segment: the table's seconds, else its frames via the video's frame times."""
    out = []
    for i in range(job.num_segments):
        if np.isfinite(job.start_s[i]) and np.isfinite(job.end_s[i]):
            out.append((float(job.start_s[i]), float(job.end_s[i])))
        else:
            out.append(
                (
                    frames_to_seconds(job.start_frame[i], frame_starts_s, fps),
                    frames_to_seconds(job.end_frame[i], frame_starts_s, fps),
                )
            )
    return out


# ----------------------------------------------------------------------------- producer / consumer

# What ``produce(job)`` yields per video: ("begin", vid, T), ("clip", vid, row, x) with x one
# segment's model input, then ("end", vid, attrs); or ("zeros", vid, T, attrs) (no audio); or
# ("fail", vid, stage, exception) at any point. ``_batched`` turns clips into
# ("batch", vids [B], rows [B], x [B, ...]); the threads add ("fatal", exception) and ("exit",).
Message = tuple


def _batched(items: Iterator[Message], batch_size: int, pin: bool) -> Iterator[Message]:
    """Group consecutive clips of equal shape into batches of ``batch_size``, across videos.

    A video's "end" is held back until the batch holding its last clips has been emitted; a
    "fail" drops that video's clips still waiting.
    """
    buffer: list[tuple[str, int, torch.Tensor]] = []
    deferred: list[Message] = []

    def flush() -> Iterator[Message]:
        if buffer:
            x = torch.stack([clip for _, _, clip in buffer])  # [B, ...]
            yield ("batch", [vid for vid, _, _ in buffer], np.array([row for _, row, _ in buffer]), x.pin_memory() if pin else x)
            buffer.clear()
        yield from deferred
        deferred.clear()

    for item in items:
        kind = item[0]
        if kind == "clip":
            if buffer and item[3].shape != buffer[0][2].shape:
                yield from flush()
            buffer.append(item[1:])
            if len(buffer) == batch_size:
                yield from flush()
        elif kind == "end" and buffer:
            deferred.append(item)
        elif kind == "fail":
            buffer[:] = [clip for clip in buffer if clip[0] != item[1]]
            yield item
            if not buffer:
                yield from flush()
        else:
            yield item
    yield from flush()


class _Producers:
    """Worker threads turning jobs into batches on a bounded queue (decode || compute)."""

    def __init__(
        self, jobs: Sequence, produce: Callable[[object], Iterator[Message]], batch_size: int, pin: bool,
        num_workers: int, prefetch: int,
    ):
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self.stop = threading.Event()
        self._jobs = iter(jobs)
        self._lock = threading.Lock()
        self._produce, self._batch_size, self._pin = produce, batch_size, pin
        self.threads = [threading.Thread(target=self._work, daemon=True, name=f"decode-{i}") for i in range(max(1, num_workers))]
        for t in self.threads:
            t.start()

    def _put(self, message: Message) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _job_items(self) -> Iterator[Message]:
        while not self.stop.is_set():
            with self._lock:
                job = next(self._jobs, None)
            if job is None:
                return
            yield from self._produce(job)

    def _work(self) -> None:
        try:
            for message in _batched(self._job_items(), self._batch_size, self._pin):
                if not self._put(message):
                    return
        except BaseException as exc:  # a bug, not a bad video: stop the run
            self._put(("fatal", exc))
        finally:
            self._put(("exit",))

    def messages(self) -> Iterator[Message]:
        alive = len(self.threads)
        while alive:
            message = self.queue.get()
            if message[0] == "exit":
                alive -= 1
            elif message[0] == "fatal":
                raise message[1]
            else:
                yield message

    def close(self) -> None:
        self.stop.set()
        while any(t.is_alive() for t in self.threads):
            try:
                while True:
                    self.queue.get_nowait()
            except queue.Empty:
                pass
            for t in self.threads:
                t.join(timeout=0.05)


def _run_model(backbone: torch.nn.Module, x: torch.Tensor, device: torch.device, autocast: str) -> np.ndarray:
    """Batch [B, ...] -> float32 features [B, D] on the CPU."""
    with torch.inference_mode(), autocast_context(device, autocast):
        y = backbone(x.to(device, non_blocking=True))  # [B, D]
    return y.float().cpu().numpy()


@dataclass
class _Counts:
    segments: int = 0
    extracted: int = 0
    no_audio: int = 0


def _consume(
    producers: _Producers,
    backbone: torch.nn.Module,
    device: torch.device,
    autocast: str,
    store: FeatureStore,
    keys: dict[str, str],
    bar,
) -> _Counts:
    """Run the model on every batch and commit every finished video to ``store`` (keyed by ``keys``)."""
    counts = _Counts()
    pending: dict[str, np.ndarray] = {}  # vid -> features [T, D] being filled
    for message in producers.messages():
        kind = message[0]
        if kind == "begin":
            pending[message[1]] = np.full((message[2], backbone.feature_dim), np.nan, np.float32)  # [T, D]
        elif kind == "batch":
            _, vids, rows, x = message
            y = _run_model(backbone, x, device, autocast)  # [B, D]
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


def resolve_workers(num_workers: int, device: torch.device) -> int:
    """Decoder threads: ``num_workers`` if > 0; 0 = auto.

    Auto is 1 on CPU (the backbone needs the cores; one decoder keeps up, see README) and all
    cores but one on CUDA, where CPU decoding is the bottleneck (H100: I3D runs ~510 segments/s
    in bf16, one 720p decoder thread feeds ~8).
    """
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0 (0 = auto), got {num_workers}")
    if num_workers > 0:
        return num_workers
    return max(1, (os.cpu_count() or 2) - 1) if device.type == "cuda" else 1


def _run(
    jobs: list[VideoJob],
    produce: Callable[[VideoJob], Iterator[Message]],
    backbone: torch.nn.Module,
    store: FeatureStore,
    device: torch.device,
    autocast: str,
    max_failures: int,
    batch_size: int,
    num_workers: int,
    prefetch: int,
    progress: bool,
    desc: str,
) -> dict:
    started = time.perf_counter()
    keys = {job.vid: video_part_key(job, store.attrs) for job in jobs}
    done = store.resume(keys)  # stale or torn parts are discarded here and re-done
    todo = [job for job in jobs if job.vid not in done]
    total = sum(job.num_segments for job in todo)
    producers = _Producers(todo, produce, batch_size, device.type == "cuda", resolve_workers(num_workers, device),
                           prefetch)
    try:
        with tqdm(total=total, unit="seg", desc=desc, disable=not progress, dynamic_ncols=True) as bar:
            counts = _consume(producers, backbone, device, autocast, store, keys, bar)
    finally:
        producers.close()
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


def _missing(job: VideoJob, videos_dir: Path) -> Message | None:
    if job.path is None:
        error = FileNotFoundError(f"{job.vid}: the segment table names no video file (under {videos_dir})")
        return ("fail", job.vid, "locate", error)
    if not job.path.is_file():
        return ("fail", job.vid, "locate", FileNotFoundError(f"{job.path}: video file not found"))
    return None


def _sorted_order(starts: Sequence[float]) -> np.ndarray:
    """Segment order by start time (stable), so decoding only moves forward."""
    return np.argsort(np.asarray(starts, dtype=np.float64), kind="stable")


def _short_side(decode_short_side: int | str | None, backbone) -> int | None:
    if decode_short_side == "auto":
        return int(backbone.crop_size)
    return None if decode_short_side in (None, 0, "none") else int(decode_short_side)


def _visual_producer(
    backbone, videos_dir: Path, frames_per_segment: int, short_side: int | None, chunk_segments: int, decode_threads: int
) -> Callable[[VideoJob], Iterator[Message]]:
    def produce(job: VideoJob) -> Iterator[Message]:
        missing = _missing(job, videos_dir)
        if missing is not None:
            yield missing
            return
        stage = "probe"
        try:
            info = probe_video(job.path)
            stage = "segments"
            ranges = frame_ranges(job, info.frame_starts_s)
            order = _sorted_order([s for s, _ in ranges])
            frames_iter = iter_segment_frames(  # validates every segment against the video
                job.path, [ranges[k] for k in order], frames_per_segment, chunk_segments, short_side, info, decode_threads
            )
            stage = "decode"
            yield ("begin", job.vid, job.num_segments)
            for k, frames in frames_iter:  # frames [F, H, W, 3]
                yield ("clip", job.vid, int(order[k]), backbone.preprocess(frames))  # [3, F, S, S]
            yield ("end", job.vid, {"fps": info.fps, "num_frames": info.num_frames})
        except Exception as exc:
            yield ("fail", job.vid, "segments" if isinstance(exc, SegmentError) else stage, exc)

    return produce


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
) -> dict:
    """Visual features [T, D] for every video of ``table`` into the HDF5 store at ``store_path``.

    Each segment gives ``frames_per_segment`` frames sampled uniformly inside it (its frames, or
    its seconds mapped through the video's frame times), ``backbone.preprocess`` -> [3, F, S, S],
    batches of ``batch_size`` -> ``backbone`` -> [B, D]. ``decode_short_side``: "auto" = the
    backbone's crop size (FFmpeg scales while decoding), an int, or None for native frames.
    weights_sha256: recorded in the store (default: ``backbone.weights_sha256`` when present).
    parts_dir: where committed videos wait for the final merge (see ``FeatureStore``).
    Autocast ("none" | "bf16" | "fp16") applies on CUDA only. ``num_workers`` decoder threads.
    Returns a summary dict (videos, resumed, extracted, failed, segments, segments_per_s, ...).
    """
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    backbone = backbone.eval().to(device)
    videos_dir = Path(videos_dir)
    jobs = video_jobs(table, videos_dir)
    short_side = _short_side(decode_short_side, backbone)
    sha = weights_sha256 if weights_sha256 is not None else getattr(backbone, "weights_sha256", None)
    store = FeatureStore(
        store_path,
        {
            "modality": "visual",
            "backbone": backbone.name,
            "weights_sha256": sha,
            "feature_dim": int(backbone.feature_dim),
            "frames_per_segment": int(frames_per_segment),
            "crop_size": int(backbone.crop_size),
            "decode_short_side": short_side or 0,
        },
        parts=parts_dir,
    )
    produce = _visual_producer(backbone, videos_dir, frames_per_segment, short_side, chunk_segments, decode_threads)
    return _run(
        jobs, produce, backbone, store, device, autocast, max_failures, batch_size, num_workers, prefetch, progress, "visual"
    )


def _audio_producer(
    videos_dir: Path, sample_rate: int, min_window_s: float
) -> Callable[[VideoJob], Iterator[Message]]:
    def produce(job: VideoJob) -> Iterator[Message]:
        missing = _missing(job, videos_dir)
        if missing is not None:
            yield missing
            return
        stage = "probe"
        try:
            starts, fps = None, None
            if not (np.isfinite(job.start_s) & np.isfinite(job.end_s)).all():
                info = probe_video(job.path)  # frames -> seconds needs the frame times
                starts, fps = info.frame_starts_s, info.fps
            stage = "segments"
            windows = time_windows(job, starts, fps)
            order = _sorted_order([s for s, _ in windows])
            stage = "decode"
            try:
                waves = iter_audio_windows(job.path, [windows[k] for k in order], sample_rate, min_window_s)
            except NoAudioError:
                yield ("zeros", job.vid, job.num_segments, {"has_audio": False})
                return
            yield ("begin", job.vid, job.num_segments)
            for k, wave in waves:  # wave [N]
                yield ("clip", job.vid, int(order[k]), torch.from_numpy(wave))
            yield ("end", job.vid, {"has_audio": True})
        except Exception as exc:
            yield ("fail", job.vid, "segments" if isinstance(exc, SegmentError) else stage, exc)

    return produce


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
) -> dict:
    """Audio features [T, D] for every video of ``table`` into the HDF5 store at ``store_path``.

    Each segment's window is its time span (its seconds, or its frames through the video's frame
    times), decoded at ``backbone.sample_rate`` mono and padded symmetrically to at least
    ``max(min_window_s, backbone.min_samples / sr)``. Consecutive windows of equal length are
    batched (``batch_size``) -> ``backbone`` [B, N] -> [B, D]. Videos without audio get zeros and
    ``has_audio=False``. Returns the same summary as :func:`extract_visual` (+ ``no_audio``).
    """
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    backbone = backbone.eval().to(device)
    videos_dir = Path(videos_dir)
    jobs = video_jobs(table, videos_dir)
    sample_rate = int(getattr(backbone, "sample_rate", AUDIO_SAMPLE_RATE))
    min_window = max(float(min_window_s), int(getattr(backbone, "min_samples", 0)) / sample_rate)
    sha = weights_sha256 if weights_sha256 is not None else getattr(backbone, "weights_sha256", None)
    store = FeatureStore(
        store_path,
        {
            "modality": "audio",
            "backbone": backbone.name,
            "weights_sha256": sha,
            "feature_dim": int(backbone.feature_dim),
            "sample_rate": sample_rate,
            "min_window_s": min_window,
            "downmix": AUDIO_DOWNMIX,
        },
        parts=parts_dir,
    )
    produce = _audio_producer(videos_dir, sample_rate, min_window)
    return _run(
        jobs, produce, backbone, store, device, autocast, max_failures, batch_size, num_workers, prefetch, progress, "audio"
    )


# ----------------------------------------------------------------------------- checks and benchmark


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
) -> dict:
    """End-to-end vs model-only visual throughput on the same segments.

    The video is cut into consecutive ``segment_s`` shots, cycled (one decoding pass per cycle,
    as for separate videos) until ``segments`` are processed. End-to-end: the extraction
    producer/consumer (decode, preprocess, batching, model). Model-only: the same batches,
    decoded beforehand, through the model alone. With ``rounds`` > 1 both are repeated in
    alternating order (e2e first, then model first, ...) and their times summed, which evens
    out a machine whose load drifts. Returns {"segments_per_s", "model_only_segments_per_s",
    "overlap_efficiency" (their ratio), "segments", "batch_size", "device", "threads", ...}.
    """
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    backbone = backbone.eval().to(device)
    path = Path(video_path)
    info = probe_video(path)
    shot = max(1, int(round(segment_s * info.fps)))
    shots = np.array([(s, min(s + shot, info.num_frames)) for s in range(0, info.num_frames, shot)], np.float64)  # [K, 2]
    cycles = []
    for c in range(math.ceil(segments / len(shots))):
        take = shots[: min(len(shots), segments - c * len(shots))]  # [k, 2] frames
        unknown = np.full(len(take), np.nan)
        cycles.append(VideoJob(f"cycle{c}", path, take[:, 0], take[:, 1], unknown, unknown))
    short_side = _short_side(decode_short_side, backbone)
    produce = _visual_producer(backbone, path.parent, frames_per_segment, short_side, 8, decode_threads)
    pin = device.type == "cuda"

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # the same batches, decoded beforehand (this also warms the page cache for the e2e runs)
    batches = []
    for message in _batched((m for job in cycles for m in produce(job)), batch_size, pin):
        if message[0] == "fail":
            raise message[3]
        if message[0] == "batch":
            batches.append(message[3])  # [B, 3, F, S, S]
    _run_model(backbone, batches[0], device, autocast)  # warm-up (kernel selection, allocations)
    sync()

    def end_to_end() -> float:
        started = time.perf_counter()
        producers = _Producers(cycles, produce, batch_size, pin, num_workers, prefetch)
        try:
            for message in producers.messages():
                if message[0] == "batch":
                    _run_model(backbone, message[3], device, autocast)
                elif message[0] == "fail":
                    raise message[3]
            sync()
        finally:
            producers.close()
        return time.perf_counter() - started

    def model_only() -> float:
        started = time.perf_counter()
        for x in batches:
            _run_model(backbone, x, device, autocast)
        sync()
        return time.perf_counter() - started

    e2e_s = model_s = 0.0
    for r in range(max(1, rounds)):
        if r % 2 == 0:
            e2e_s += end_to_end()
            model_s += model_only()
        else:
            model_s += model_only()
            e2e_s += end_to_end()
    done = sum(len(x) for x in batches) * max(1, rounds)
    e2e_rate, model_rate = done / e2e_s, done / model_s
    return {
        "segments_per_s": round(e2e_rate, 4),
        "model_only_segments_per_s": round(model_rate, 4),
        "overlap_efficiency": round(e2e_rate / model_rate, 4),
        "segments": sum(len(x) for x in batches),
        "rounds": max(1, rounds),
        "batch_size": batch_size,
        "frames_per_segment": frames_per_segment,
        "crop_size": int(backbone.crop_size),
        "decode_short_side": short_side or 0,
        "num_workers": num_workers,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
