"""The highlight reel: the chosen windows cut from the source video, in time order, into one mp4.

Written with PyAV (H.264 + AAC, no system ffmpeg). Frames come from ``pipeline.decoding``
(decord, or PyAV for rotated videos: upright), streamed in chunks, so memory does not grow with
the reel's length. The reel has a constant frame rate (the source's average rate): output frame
k of a window starting at ``a`` shows the source frame on screen at ``a + k / fps``, so
variable-frame-rate sources keep their timing. Audio: the source's track at 48 kHz mono
(``decoding.iter_audio_windows``, the extractor's downmix), the same spans as the pictures,
sample-exact to the frame count; a source without audio gives a reel without an audio track.
Each window fades in from black and silence and out to them over ``fade_s`` (0.25 s, at most a
third of the window), so the joins are visible and do not click.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

from ..decoding import NoAudioError, VideoInfo, iter_audio_windows, iter_frames, probe_video

REEL_AUDIO_RATE = 48000
REEL_MAX_SHORT_SIDE = 720
FADE_S = 0.25
AUDIO_CHUNK = 1024
X264_OPTIONS = {"crf": "23", "preset": "veryfast"}


def reel_fps(info: VideoInfo) -> Fraction:
    """The reel's constant frame rate: the source's average rate as a small fraction (30000/1001...)."""
    return Fraction(info.fps).limit_denominator(1001)


def plan_frames(windows_s: Sequence[tuple[float, float]], info: VideoInfo, fps: Fraction) -> list[np.ndarray]:
    """Per window (time order): the source frame index [n_k] shown at each output frame time."""
    out = []
    for a, b in windows_s:
        n = max(1, int(round((b - a) * fps)))
        t = a + np.arange(n) / float(fps)  # [n] source times
        idx = np.searchsorted(info.frame_starts_s, t + 1e-6, side="right") - 1
        out.append(np.clip(idx, 0, info.num_frames - 1))
    return out


def _gain(n: int, rate: float, fade_s: float) -> np.ndarray:
    """Fade-in/out envelope [n] for n samples (or frames) at ``rate`` per second."""
    fade = max(min(fade_s, n / rate / 3.0), 1e-9)
    t = (np.arange(n) + 0.5) / rate
    return np.clip(np.minimum(t, n / rate - t) / fade, 0.0, 1.0)


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return np.ascontiguousarray(frame[: h - h % 2, : w - w % 2])


def write_reel(
    video_path: str | os.PathLike,
    windows_s: Sequence[tuple[float, float]],
    out_path: str | os.PathLike,
    info: VideoInfo | None = None,
    fade_s: float = FADE_S,
    max_short_side: int = REEL_MAX_SHORT_SIDE,
) -> dict:
    """Cut ``windows_s`` ([start_s, end_s) in seconds from the first frame) out of ``video_path``
    into ``out_path`` (mp4, written to a part file then renamed). Windows are sorted by start and
    must not overlap. Returns {"path", "fps", "frames", "duration_s", "has_audio", "size",
    "windows": [[start_s, end_s, reel_start_s], ...]}."""
    video_path, out_path = Path(video_path), Path(out_path)
    info = info if info is not None else probe_video(video_path)
    spans = sorted((float(a), float(b)) for a, b in windows_s)
    if not spans:
        raise ValueError(f"{video_path}: no window to cut into a reel")
    for (a0, b0), (a1, _) in zip(spans, spans[1:]):
        if a1 < b0 - 1e-9:
            raise ValueError(f"{video_path}: reel windows overlap ([{a0}, {b0}) and [{a1}, ...))")
    fps = reel_fps(info)
    plans = plan_frames(spans, info, fps)
    counts = [len(p) for p in plans]
    offsets = np.concatenate([[0], np.cumsum(counts)])  # [W + 1] output frame positions
    short = min(info.width, info.height)
    short_side = max_short_side if short > max_short_side else None
    # audio: the same spans, each exactly as long as its frames
    sample_pos = [int(round(int(k) * REEL_AUDIO_RATE / fps)) for k in offsets]  # [W + 1]
    audio_spans = [(a, a + c / float(fps)) for (a, _), c in zip(spans, counts)]
    try:
        audio_iter = iter_audio_windows(video_path, audio_spans, REEL_AUDIO_RATE, min_window_s=0.0)
    except NoAudioError:
        audio_iter = None
    # the unique source frames, decoded once in order; windows may show a frame twice (low fps)
    all_idx = np.concatenate(plans)  # [F]
    unique = np.unique(all_idx)
    frames = iter_frames(video_path, unique.tolist(), short_side=short_side, info=info)
    part = out_path.with_name(out_path.name + ".part")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    size = None
    try:
        with av.open(str(part), "w", format="mp4") as out:
            vs = None
            aus = None
            if audio_iter is not None:
                aus = out.add_stream("aac", rate=REEL_AUDIO_RATE, layout="mono")
                aus.bit_rate = 96000
            current_idx, current = -1, None
            for w, plan in enumerate(plans):
                vgain = _gain(len(plan), float(fps), fade_s)  # [n]
                wave = None
                if audio_iter is not None:
                    _, wave = next(audio_iter)  # [N]
                    n_samples = sample_pos[w + 1] - sample_pos[w]
                    wave = np.pad(wave[:n_samples], (0, max(0, n_samples - len(wave))))
                    wave = (wave * _gain(n_samples, REEL_AUDIO_RATE, fade_s)).astype(np.float32)
                a_done = 0
                for k, src in enumerate(plan.tolist()):
                    while current_idx < src:
                        pos, current = next(frames)
                        current_idx = int(unique[pos])
                    img = _even(current)
                    if vs is None:
                        size = (img.shape[1], img.shape[0])
                        vs = out.add_stream("libx264", rate=fps, options=X264_OPTIONS)
                        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
                    shaded = (img.astype(np.float32) * vgain[k] + 0.5).astype(np.uint8)
                    vf = av.VideoFrame.from_ndarray(shaded, format="rgb24").reformat(format="yuv420p")
                    vf.pts = int(offsets[w]) + k
                    out.mux(vs.encode(vf))
                    if wave is not None:  # interleave: the audio up to the end of this frame
                        a_end = int(round((int(offsets[w]) + k + 1) * REEL_AUDIO_RATE / fps)) - sample_pos[w]
                        a_end = len(wave) if k == len(plan) - 1 else min(a_end, len(wave))
                        while a_done < a_end:
                            piece = wave[a_done : min(a_done + AUDIO_CHUNK, a_end)]
                            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece[None, :]), format="fltp",
                                                            layout="mono")
                            af.sample_rate = REEL_AUDIO_RATE
                            af.pts = sample_pos[w] + a_done
                            af.time_base = Fraction(1, REEL_AUDIO_RATE)
                            out.mux(aus.encode(af))
                            a_done += len(piece)
            out.mux(vs.encode(None))
            if aus is not None:
                out.mux(aus.encode(None))
        os.replace(part, out_path)
    finally:
        part.unlink(missing_ok=True)
    reel_starts = offsets[:-1] / float(fps)
    return {
        "path": str(out_path),
        "fps": float(fps),
        "frames": int(offsets[-1]),
        "duration_s": float(offsets[-1] / fps),
        "has_audio": audio_iter is not None,
        "size": list(size) if size else None,
        "windows": [[a, a + c / float(fps), float(r)] for (a, _), c, r in zip(spans, counts, reel_starts)],
    }
