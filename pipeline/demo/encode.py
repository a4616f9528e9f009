"""Encoding a rendered video: frames and mono audio to an H.264 + AAC mp4 with PyAV (no ffmpeg).

``rgb_to_yuv420p`` converts a frame to planar YUV 4:2:0 here (BT.601, limited range) so that the
encoder input is a pure function of the frame, and ``encode_mp4`` writes the file through a part
file with single-threaded, assembly-free x264 (``X264_OPTIONS``), which makes the output
byte-identical run to run with one PyAV/FFmpeg build; ``AAC_RATES`` are the sample rates the AAC
encoder accepts.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

AAC_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)

# x264 in one thread and without its assembly: with SIMD, the output for identical frames varied
# between runs in one process (for some frame sizes, e.g. 64x64 and 112x112, measured with PyAV
# 16.1 / x264 core 165), consistent with an over-read past PyAV's tightly allocated planes; the
# C code paths made every size tried byte-identical run to run. The frames are small, so the cost
# is small.
X264_OPTIONS = {"crf": "20", "preset": "veryfast", "threads": "1", "x264-params": "asm=0"}


def rgb_to_yuv420p(img: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] (H, W even) -> planar YUV 4:2:0 [H * 3 // 2, W] (BT.601, limited range).

    Done here rather than by swscale so that the encoder input is a pure function of the frame.
    """
    x = img.astype(np.float64)  # [H, W, 3]
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0  # [H, W]
    u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    h, w = y.shape
    u = u.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # [H/2, W/2]
    v = v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    planes = np.concatenate([y.ravel(), u.ravel(), v.ravel()])  # [H*W*3/2]
    return np.clip(np.floor(planes + 0.5), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


def encode_mp4(
    path: str | os.PathLike,
    frames: Iterator[np.ndarray],
    audio: np.ndarray,
    fps: int,
    size: tuple[int, int],
    audio_rate: int,
) -> None:
    """Write frames (uint8 [H, W, 3]) and mono audio [N] float32 to an H.264 + AAC mp4 with PyAV.

    Written to a part file and renamed into place. Audio frames of 1024 samples are interleaved
    with the video frames they accompany.
    """
    import av

    path = Path(path)
    part = path.with_name(path.name + ".part")
    h, w = size
    with av.open(str(part), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps, options=X264_OPTIONS)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.thread_count = 1  # PyAV's default (0 = auto) lets x264 thread
        vs.codec_context.thread_type = "NONE"
        aus = out.add_stream("aac", rate=audio_rate, layout="mono")
        aus.bit_rate = 64000
        chunk = 1024
        a_pos = 0
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(img), format="yuv420p")
            frame.pts = i
            out.mux(vs.encode(frame))
            # interleave: audio up to the end of this frame
            a_end = min(len(audio), int(round((i + 1) * audio_rate / fps)))
            while a_pos + chunk <= a_end or (a_end == len(audio) and a_pos < a_end):
                piece = audio[a_pos : a_pos + chunk]  # [<=1024]
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece[None, :]), format="fltp", layout="mono")
                af.sample_rate = audio_rate
                af.pts = a_pos
                af.time_base = Fraction(1, audio_rate)
                out.mux(aus.encode(af))
                a_pos += piece.size
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))
    os.replace(part, path)
