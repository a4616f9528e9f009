"""Decoding: video frames per segment with decord, audio windows at 32 kHz mono with PyAV.

Both readers stream: memory is bounded by one chunk of segments (video) or by the audio windows
in progress (audio), never by the length of the video, so an hour-long file works.

Conventions
- Frame indices count frames in presentation order from 0 (decord's indexing).
- Times are seconds from the first video frame (decord's frame timestamps), so a segment in
  seconds maps to frames correctly on variable-frame-rate videos too.
- Rotated videos (a display matrix, as phones write) are returned upright. decord mis-sizes the
  frames of such files (it rotates but keeps the coded shape), so they are decoded with PyAV.
- Audio downmix: PyAV's ``AudioResampler(format="flt", layout="mono", rate=32000)``, i.e.
  FFmpeg libswresample's default matrix without normalisation: mono -> itself; stereo ->
  (L + R) / sqrt(2); 5.1 -> FC + (FL + FR) / sqrt(2) + (BL + BR) / 2, LFE dropped (measured, see
  tests). Stereo content is therefore about 3 dB louder than librosa's channel mean.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import av
import decord
import numpy as np

from .decode_errors import describe
from .errors import PipelineError

AUDIO_SAMPLE_RATE = 32000


class DecodeError(PipelineError, RuntimeError):
    """A video or audio file cannot be decoded (zero-length, truncated, not a video...)."""


class SegmentError(PipelineError, ValueError):
    """A segment is empty or lies outside its video."""


class NoAudioError(DecodeError):
    """The file has no audio track (or an audio track without any decodable sample)."""


@dataclass(frozen=True)
class VideoInfo:
    """What extraction needs to know about a video file.

    ``width``/``height`` are the display size (after rotation). ``rotation`` is the
    counter-clockwise angle in {0, 90, 180, 270} that turns decoded pictures upright.
    ``frame_starts_s`` [num_frames] holds each frame's start time relative to the first frame.
    """

    fps: float
    num_frames: int
    width: int
    height: int
    duration_s: float
    has_audio: bool
    rotation: int = 0
    frame_starts_s: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)


def _open_decord(path: Path, width: int = -1, height: int = -1, num_threads: int = 1) -> decord.VideoReader:
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), width=width, height=height, num_threads=num_threads)
    except Exception as exc:  # decord raises RuntimeError or DECORDError with a C++ trace
        raise DecodeError(f"{path}: cannot open video with decord: {describe(path, exc)}") from exc


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video file not found")
    if os.path.getsize(path) == 0:
        raise DecodeError(f"{path}: file is empty (0 bytes)")


def _probe_av(path: Path) -> tuple[bool, int, int, int]:
    """PyAV: (has_audio, rotation, coded_width, coded_height) from the first decoded frame."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DecodeError(f"{path}: no video stream")
            has_audio = len(container.streams.audio) > 0
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                rotation = int(round(float(frame.rotation or 0) / 90.0)) * 90 % 360
                return has_audio, rotation, frame.width, frame.height
    except DecodeError:
        raise
    except Exception as exc:  # av.error.* for unreadable containers
        raise DecodeError(f"{path}: cannot read with PyAV: {describe(path, exc)}") from exc
    raise DecodeError(f"{path}: the video stream has no decodable frame")


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame rate, frame count, display size, duration, audio presence and frame times of ``path``."""
    path = Path(path)
    _check_file(path)
    has_audio, rotation, coded_w, coded_h = _probe_av(path)
    reader = _open_decord(path)
    num_frames = len(reader)
    if num_frames == 0:
        raise DecodeError(f"{path}: the video stream has no frames")
    try:
        stamps = np.asarray(reader.get_frame_timestamp(range(num_frames)), dtype=np.float64)  # [N, 2]
    except Exception as exc:
        raise DecodeError(f"{path}: cannot read frame timestamps: {describe(path, exc)}") from exc
    fps = float(reader.get_avg_fps())
    starts = stamps[:, 0] - stamps[0, 0]  # [N] seconds from the first frame
    duration = float(stamps[-1, 1] - stamps[0, 0])
    if not (math.isfinite(fps) and fps > 0):
        fps = (num_frames / duration) if duration > 0 else 0.0
        if fps <= 0:
            raise DecodeError(f"{path}: cannot determine the frame rate")
    if duration <= 0:
        duration = num_frames / fps
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    return VideoInfo(fps, num_frames, width, height, duration, has_audio, rotation, starts)


def segment_frame_indices(
    start_frame: float, end_frame: float, n: int, num_frames: int, name: str = "segment"
) -> np.ndarray:
    """``n`` frame indices [n] at the centres of ``n`` equal bins of [start_frame, end_frame).

    The end is clipped to the video (annotations often end a few frames past it); a segment that
    is empty or starts outside the video raises :class:`SegmentError` naming ``name``.
    """
    if n < 1:
        raise ValueError(f"{name}: frames per segment must be >= 1, got {n}")
    if not (math.isfinite(start_frame) and math.isfinite(end_frame)):
        raise SegmentError(f"{name}: segment [{start_frame}, {end_frame}) is not finite")
    if end_frame <= start_frame:
        raise SegmentError(f"{name}: segment [{start_frame}, {end_frame}) is empty")
    if start_frame < 0 or start_frame >= num_frames:
        raise SegmentError(
            f"{name}: segment [{start_frame}, {end_frame}) starts outside the video's {num_frames} frames"
        )
    centres = start_frame + (np.arange(n) + 0.5) * (end_frame - start_frame) / n  # [n]
    return np.clip(np.floor(centres).astype(np.int64), 0, num_frames - 1)


def seconds_to_frames(start_s: float, end_s: float, frame_starts_s: np.ndarray, name: str = "segment") -> tuple[int, int]:
    """[start_s, end_s) -> (start_frame, end_frame): the frames whose start time lies inside.

    Uses the video's frame times, so variable frame rates map correctly; on a constant rate this
    is ceil(t * fps). A span shorter than one frame gets the frame showing at ``start_s``.
    """
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or end_s <= start_s or start_s < 0:
        raise SegmentError(f"{name}: segment [{start_s}, {end_s}) s is empty or negative")
    eps = 1e-4  # timestamps are rounded to the stream's time base
    first = int(np.searchsorted(frame_starts_s, start_s - eps, side="left"))
    last = int(np.searchsorted(frame_starts_s, end_s - eps, side="left"))
    if last <= first:
        first = max(int(np.searchsorted(frame_starts_s, start_s + eps, side="right")) - 1, 0)
        last = first + 1
    return first, last


def frames_to_seconds(frames: float, frame_starts_s: np.ndarray, fps: float) -> float:
    """Frame position (may be fractional or past the end) -> seconds from the first frame."""
    n = len(frame_starts_s)
    if n == 0 or frames <= 0:
        return float(frames) / fps
    if frames <= n - 1:
        return float(np.interp(frames, np.arange(n), frame_starts_s))
    return float(frame_starts_s[-1] + (frames - (n - 1)) / fps)


def _scaled_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """Display size with its short side scaled to ``short_side`` (None: unchanged)."""
    if short_side is None:
        return width, height
    scale = short_side / min(width, height)  # rounding as pipeline.transforms.resized_short_side
    return max(1, math.floor(width * scale + 0.5)), max(1, math.floor(height * scale + 0.5))


class _AVFrameReader:
    """Sequential PyAV decoder with decord's ``get_batch`` contract (sorted unique indices).

    Used where decord gets the frame size wrong (rotated videos, some scaled sizes); restarts
    from the beginning if asked for a frame it has passed.
    """

    def __init__(self, path: Path, out_w: int, out_h: int, rotation: int, num_threads: int = 1):
        self.path, self.rotation, self.num_threads = path, rotation, num_threads
        # PyAV scales the coded picture, so swap the display size for quarter turns.
        self.coded_size = (out_h, out_w) if rotation in (90, 270) else (out_w, out_h)
        self._container = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self._next = 0  # index of the next frame the decoder will produce

    def _restart(self) -> None:
        self.close()
        self._container = av.open(str(self.path))
        stream = self._container.streams.video[0]
        stream.codec_context.thread_count = self.num_threads
        self._frames = self._container.decode(stream)
        self._next = 0

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at sorted unique ``indices`` -> uint8 [len(indices), H, W, 3], upright."""
        if self._frames is None or indices[0] < self._next:
            self._restart()
        out: list[np.ndarray] = []
        wanted = iter(indices)
        target = next(wanted)
        w, h = self.coded_size
        try:
            for frame in self._frames:
                index = self._next
                self._next += 1
                if index != target:
                    continue
                rgb = frame.to_ndarray(format="rgb24", width=w, height=h)  # [h, w, 3]
                out.append(np.rot90(rgb, k=self.rotation // 90))
                target = next(wanted, None)
                if target is None:
                    return np.ascontiguousarray(np.stack(out))
        except Exception as exc:  # av.error.* on corrupt data
            raise DecodeError(f"{self.path}: decoding frame {self._next - 1} failed: {describe(self.path, exc)}") from exc
        raise DecodeError(f"{self.path}: truncated file: frame {target} could not be decoded, the stream ends after "
                          f"{self._next} frames")

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._frames = None


def iter_segment_frames(
    path: str | os.PathLike,
    segments: Sequence[tuple[float, float]],
    frames_per_segment: int,
    chunk_segments: int = 8,
    short_side: int | None = None,
    info: VideoInfo | None = None,
    num_threads: int = 1,
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode the frames of every segment of one video, decoding the video once.

    segments: (start_frame, end_frame) per segment, end exclusive.
    Yields (seg_idx, frames uint8 [F, H, W, 3]) in segment order, F = frames_per_segment; H, W
    are the display size, or scaled so that the short side is ``short_side``.
    Segments are decoded ``chunk_segments`` at a time (the union of their frames in one decord
    ``get_batch``), so memory is bounded by a chunk. The file is probed and every segment is
    validated when this is called, before anything is decoded.
    """
    path = Path(path)
    info = info if info is not None else probe_video(path)
    indices = np.zeros((len(segments), frames_per_segment), np.int64)  # [S, F]
    for i, (s, e) in enumerate(segments):
        indices[i] = segment_frame_indices(s, e, frames_per_segment, info.num_frames, name=f"{path.name} segment {i}")
    return _iter_chunks(path, info, indices, max(1, chunk_segments), short_side, num_threads)


def iter_frames(
    path: str | os.PathLike,
    indices: Sequence[int],
    short_side: int | None = None,
    info: VideoInfo | None = None,
    chunk_frames: int = 32,
    num_threads: int = 1,
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode the frames at strictly increasing ``indices`` of one video, once, in chunks.

    Yields (position in ``indices``, frame uint8 [H, W, 3]) upright, display size or scaled to
    ``short_side``; memory is bounded by ``chunk_frames`` frames. The highlight reel uses it.
    """
    path = Path(path)
    info = info if info is not None else probe_video(path)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1, 1)  # [N, 1]
    if len(idx) and (idx.min() < 0 or idx.max() >= info.num_frames or np.any(np.diff(idx[:, 0]) <= 0)):
        raise SegmentError(f"{path.name}: frame indices must be strictly increasing within 0..{info.num_frames - 1}")
    for i, frames in _iter_chunks(path, info, idx, max(1, chunk_frames), short_side, num_threads):
        yield i, frames[0]


def _iter_chunks(
    path: Path, info: VideoInfo, indices: np.ndarray, chunk_segments: int, short_side: int | None, num_threads: int
) -> Iterator[tuple[int, np.ndarray]]:
    reader = _open_frame_reader(path, info, short_side, num_threads)
    try:
        for c0 in range(0, len(indices), chunk_segments):
            chunk = indices[c0 : c0 + chunk_segments]  # [c, F]
            unique, inverse = np.unique(chunk, return_inverse=True)  # [U], [c*F]
            frames = _get_batch(reader, path, unique)  # [U, H, W, 3]
            inverse = inverse.reshape(chunk.shape)  # [c, F]
            for j in range(len(chunk)):
                yield c0 + j, frames[inverse[j]]  # [F, H, W, 3] (a copy)
            del frames
    finally:
        if isinstance(reader, _AVFrameReader):
            reader.close()


def _open_frame_reader(path: Path, info: VideoInfo, short_side: int | None, num_threads: int):
    """decord, or the sequential PyAV reader where decord gets the frame size wrong.

    decord mis-sizes frames of rotated videos, and with some requested output sizes (seen: widths
    8, 12, 16, 24, 48 or 72 from a 32-pixel-wide source) it keeps the source width; a scaled
    reader is therefore checked on frame 0 before it is used.
    """
    out_w, out_h = _scaled_size(info.width, info.height, short_side)
    if info.rotation:
        return _AVFrameReader(path, out_w, out_h, info.rotation, num_threads)
    if short_side is None:
        return _open_decord(path, num_threads=num_threads)
    reader = _open_decord(path, width=out_w, height=out_h, num_threads=num_threads)
    try:
        ok = tuple(reader.get_batch([0]).shape) == (1, out_h, out_w, 3)
    except Exception:  # DECORDError: "The size must exactly match"
        ok = False
    return reader if ok else _AVFrameReader(path, out_w, out_h, 0, num_threads)


def _get_batch(reader, path: Path, unique: np.ndarray) -> np.ndarray:
    if isinstance(reader, _AVFrameReader):
        return reader.get_batch(unique.tolist())
    try:
        return reader.get_batch(unique.tolist()).asnumpy()
    except Exception as exc:  # DECORDError on truncated/corrupt data
        raise DecodeError(
            f"{path}: decoding frames {int(unique[0])}..{int(unique[-1])} failed: {describe(path, exc)}"
        ) from exc


def _padded_windows(
    windows_s: Sequence[tuple[float, float]], sample_rate: int, min_window_s: float, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validate windows; pad short ones around their centre -> (first, end) sample positions [W]."""
    first = np.zeros(len(windows_s), np.int64)
    end = np.zeros(len(windows_s), np.int64)
    previous = -math.inf
    for i, (s, e) in enumerate(windows_s):
        if not (math.isfinite(s) and math.isfinite(e)) or e <= s or s < 0:
            raise SegmentError(f"{name} window {i}: [{s}, {e}) s is empty, negative or not finite")
        if s < previous:
            raise SegmentError(f"{name} window {i}: windows must be sorted by start ({s} s < {previous} s)")
        previous = s
        if e - s < min_window_s:
            centre = 0.5 * (s + e)
            s, e = centre - 0.5 * min_window_s, centre + 0.5 * min_window_s
        first[i], end[i] = int(round(s * sample_rate)), int(round(e * sample_rate))
    return first, end


def iter_audio_windows(
    path: str | os.PathLike,
    windows_s: Sequence[tuple[float, float]],
    sample_rate: int = AUDIO_SAMPLE_RATE,
    min_window_s: float = 1.0,
) -> Iterator[tuple[int, np.ndarray]]:
    """Stream-decode the audio of ``path`` and yield (window index, waveform float32 [N]).

    windows_s: (start_s, end_s) per window, in seconds from the first video frame, sorted by
    start (they may overlap). Windows shorter than ``min_window_s`` are padded symmetrically
    around their centre; parts before the start or after the end of the audio are zeros.
    N = round(end * sr) - round(start * sr) of the (padded) window. Downmix: see module docstring.
    Memory holds only the samples of the windows in progress. The file and the windows are checked
    when this is called: :class:`NoAudioError` for a file without an audio track, before any decoding.
    """
    path = Path(path)
    _check_file(path)
    first, end = _padded_windows(windows_s, sample_rate, min_window_s, str(path))
    with _open_av(path) as container:
        if not container.streams.audio:
            raise NoAudioError(f"{path}: no audio track")
    return _iter_windows(path, first, end, sample_rate)


def _open_av(path: Path):
    try:
        return av.open(str(path))
    except Exception as exc:
        raise DecodeError(f"{path}: cannot read with PyAV: {describe(path, exc)}") from exc


def _iter_windows(path: Path, first: np.ndarray, end: np.ndarray, sample_rate: int) -> Iterator[tuple[int, np.ndarray]]:
    """Stream decoding behind :func:`iter_audio_windows`; ``first``/``end`` [W] in samples."""
    # keep_from[i] = earliest sample any window i.. still needs
    keep_from = np.minimum.accumulate(first[::-1])[::-1] if len(first) else first  # [W]
    with _open_av(path) as container:
        stream = container.streams.audio[0]
        video_start = 0.0
        if container.streams.video:
            vs = container.streams.video[0]
            if vs.start_time is not None and vs.time_base is not None:
                video_start = float(vs.start_time * vs.time_base)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        buf = np.zeros(0, np.float32)  # samples [buf_pos, buf_pos + len(buf))
        buf_pos: int | None = None
        pending: list[np.ndarray] = []
        pending_len = 0
        i = 0

        def window(k: int) -> np.ndarray:
            out = np.zeros(int(end[k] - first[k]), np.float32)  # [N]
            lo, hi = max(first[k], buf_pos), min(end[k], buf_pos + len(buf))
            if hi > lo:
                out[lo - first[k] : hi - first[k]] = buf[lo - buf_pos : hi - buf_pos]
            return out

        def flush() -> None:
            nonlocal buf, buf_pos, pending, pending_len
            if pending:
                buf = np.concatenate([buf, *pending])
                pending, pending_len = [], 0
            if i < len(first):
                drop = min(int(keep_from[i] - buf_pos), len(buf))
                if drop > 0:
                    buf = buf[drop:].copy()
                    buf_pos += drop

        def decoded() -> Iterator[np.ndarray]:
            nonlocal buf_pos
            try:
                for frame in container.decode(stream):
                    if buf_pos is None:
                        t0 = float(frame.time) if frame.time is not None else video_start
                        buf_pos = int(round((t0 - video_start) * sample_rate))
                    for out in resampler.resample(frame):
                        yield out.to_ndarray()[0]  # [n] packed mono float32
                for out in resampler.resample(None):
                    yield out.to_ndarray()[0]
            except Exception as exc:
                raise DecodeError(f"{path}: audio decoding failed: {describe(path, exc)}") from exc

        for samples in decoded():
            pending.append(samples)
            pending_len += len(samples)
            if i >= len(first):
                break
            if buf_pos + len(buf) + pending_len >= end[i]:
                flush()
                while i < len(first) and buf_pos + len(buf) >= end[i]:
                    yield i, window(i)
                    i += 1
                    flush()
                if i >= len(first):
                    break
            elif pending_len > sample_rate:  # bound the pending list during gaps between windows
                flush()
        if buf_pos is None:
            raise NoAudioError(f"{path}: the audio track has no decodable samples")
        flush()
        while i < len(first):  # windows reaching past the end of the audio: zero-padded
            yield i, window(i)
            i += 1
            flush()
