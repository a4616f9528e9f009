"""Decoding side of extraction: per-video messages, batching across videos, decoder threads.

``visual_frames`` / ``audio_windows`` decode one video into messages; the local engine turns
them into model inputs (``visual_producer`` / ``audio_producer``) and batches them in threads
(:class:`Producers`); the Ray engine runs the same generators in its decoding tasks.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..decoding import NoAudioError, SegmentError, iter_audio_windows, iter_segment_frames, probe_video
from .jobs import VideoJob, frame_ranges, missing_file, sorted_order, time_windows

# What the generators yield per video: ("begin", vid, T), ("clip", vid, row, x) with x one
# segment's frames / waveform / model input, then ("end", vid, attrs); or ("zeros", vid, T, attrs)
# (no audio); or ("fail", vid, stage, exception) at any point. ``batched`` turns clips into
# ("batch", vids [B], rows [B], x [B, ...]); the threads add ("fatal", exception) and ("exit",).
Message = tuple


def batched(items: Iterator[Message], batch_size: int, pin: bool) -> Iterator[Message]:
    """Group consecutive clips of equal shape into batches of ``batch_size``, across videos.

    A video's "end" is held back until the batch holding its last clips has been emitted; a
    "fail" drops that video's clips still waiting.
    """
    buffer: list[tuple[str, int, torch.Tensor]] = []
    deferred: list[Message] = []

    def flush() -> Iterator[Message]:
        if buffer:
            x = torch.stack([clip for _, _, clip in buffer])  # [B, ...]
            if pin and x.device.type == "cpu":
                x = x.pin_memory()
            yield ("batch", [vid for vid, _, _ in buffer], np.array([row for _, row, _ in buffer]), x)
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


class Producers:
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
            for message in batched(self._job_items(), self._batch_size, self._pin):
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


def visual_frames(
    job: VideoJob,
    videos_dir: Path,
    frames_per_segment: int,
    short_side: int | None,
    chunk_segments: int = 8,
    decode_threads: int = 1,
    decoder: str = "cpu",
    device: torch.device | None = None,
) -> Iterator[Message]:
    """Decode one video: ("begin"), ("clip", vid, row, frames [F, H, W, 3] uint8), ("end", vid,
    {"fps", "num_frames"}), or ("fail", vid, stage, exc). ``decoder``: "cpu" (decord, numpy frames
    scaled to ``short_side`` while decoding) or "nvdec" (torch frames on ``device``, display size)."""
    missing = missing_file(job, videos_dir)
    if missing is not None:
        yield ("fail", job.vid, "locate", missing)
        return
    stage = "probe"
    try:
        info = probe_video(job.path)
        stage = "segments"
        ranges = frame_ranges(job, info.frame_starts_s)
        order = sorted_order([s for s, _ in ranges])
        wanted = [ranges[k] for k in order]
        if decoder == "nvdec":
            from ..gpu_decoding import iter_segment_frames_nvdec

            frames_iter = iter_segment_frames_nvdec(job.path, wanted, frames_per_segment, device, chunk_segments, info)
        else:
            frames_iter = iter_segment_frames(  # validates every segment against the video
                job.path, wanted, frames_per_segment, chunk_segments, short_side, info, decode_threads
            )
        stage = "decode"
        yield ("begin", job.vid, job.num_segments)
        for k, frames in frames_iter:  # frames [F, H, W, 3]
            yield ("clip", job.vid, int(order[k]), frames)
        yield ("end", job.vid, {"fps": info.fps, "num_frames": info.num_frames})
    except Exception as exc:
        yield ("fail", job.vid, "segments" if isinstance(exc, SegmentError) else stage, exc)


def audio_windows(job: VideoJob, videos_dir: Path, sample_rate: int, min_window_s: float) -> Iterator[Message]:
    """Decode one video's audio: ("begin"), ("clip", vid, row, waveform float32 [N]), ("end", vid,
    {"has_audio": True}); ("zeros", vid, T, {"has_audio": False}) without an audio track; or
    ("fail", vid, stage, exc)."""
    missing = missing_file(job, videos_dir)
    if missing is not None:
        yield ("fail", job.vid, "locate", missing)
        return
    stage = "probe"
    try:
        starts, fps = None, None
        if not (np.isfinite(job.start_s) & np.isfinite(job.end_s)).all():
            info = probe_video(job.path)  # frames -> seconds needs the frame times
            starts, fps = info.frame_starts_s, info.fps
        stage = "segments"
        windows = time_windows(job, starts, fps)
        order = sorted_order([s for s, _ in windows])
        stage = "decode"
        try:
            waves = iter_audio_windows(job.path, [windows[k] for k in order], sample_rate, min_window_s)
        except NoAudioError:
            yield ("zeros", job.vid, job.num_segments, {"has_audio": False})
            return
        yield ("begin", job.vid, job.num_segments)
        for k, wave in waves:  # wave [N]
            yield ("clip", job.vid, int(order[k]), wave)
        yield ("end", job.vid, {"has_audio": True})
    except Exception as exc:
        yield ("fail", job.vid, "segments" if isinstance(exc, SegmentError) else stage, exc)


def _to_inputs(messages: Iterator[Message], prepare: Callable) -> Iterator[Message]:
    """Clips -> model inputs through ``prepare``; a failure there fails the video (stage decode)."""
    for message in messages:
        if message[0] != "clip":
            yield message
            continue
        try:
            x = prepare(message[3])
        except Exception as exc:
            yield ("fail", message[1], "decode", exc)
            return
        yield ("clip", message[1], message[2], x)


def visual_producer(
    backbone, videos_dir: Path, frames_per_segment: int, short_side: int | None, chunk_segments: int,
    decode_threads: int, decoder: str = "cpu", device: torch.device | None = None,
) -> Callable[[VideoJob], Iterator[Message]]:
    """job -> messages whose clips are ``backbone.preprocess``ed [3, F, S, S] (on the GPU for nvdec)."""

    def produce(job: VideoJob) -> Iterator[Message]:
        frames = visual_frames(job, videos_dir, frames_per_segment, short_side, chunk_segments, decode_threads,
                               decoder, device)
        return _to_inputs(frames, backbone.preprocess)

    return produce


def audio_producer(videos_dir: Path, sample_rate: int, min_window_s: float) -> Callable[[VideoJob], Iterator[Message]]:
    """job -> messages whose clips are waveform tensors [N]."""

    def produce(job: VideoJob) -> Iterator[Message]:
        return _to_inputs(audio_windows(job, videos_dir, sample_rate, min_window_s), torch.from_numpy)

    return produce
