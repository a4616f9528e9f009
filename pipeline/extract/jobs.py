"""What an extraction run works on: the segment table grouped by video, segment spans, the
store's identity (its attributes), shared by every engine (local threads, Ray)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..decoding import frames_to_seconds, seconds_to_frames
from ..errors import PipelineError
from ..paths import check_id, safe_join

AUDIO_DOWNMIX = "ffmpeg-swresample-default-mono"


class ExtractionError(PipelineError, RuntimeError):
    """More videos failed than ``max_failures`` allows (the message lists them)."""



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


def chunk_job(job: VideoJob, first: int, count: int) -> VideoJob:
    """Segments ``first .. first + count - 1`` of ``job`` as a job of their own (a chunk of a long
    video for a distributed engine; its rows are numbered from 0, add ``first`` back)."""
    sl = slice(first, first + count)
    return replace(job, start_frame=job.start_frame[sl], end_frame=job.end_frame[sl], start_s=job.start_s[sl],
                   end_s=job.end_s[sl])


def missing_file(job: VideoJob, videos_dir: Path) -> Exception | None:
    """Why ``job`` has no readable file (FileNotFoundError), or None."""
    if job.path is None:
        return FileNotFoundError(f"{job.vid}: the segment table names no video file (under {videos_dir})")
    if not job.path.is_file():
        return FileNotFoundError(f"{job.path}: video file not found")
    return None


def sorted_order(starts: Sequence[float]) -> np.ndarray:
    """Segment order by start time (stable), so decoding only moves forward."""
    return np.argsort(np.asarray(starts, dtype=np.float64), kind="stable")


def short_side(decode_short_side: int | str | None, backbone) -> int | None:
    """``decode_short_side`` ("auto" = the backbone's crop size, an int, or None) -> int or None."""
    if decode_short_side == "auto":
        return int(backbone.crop_size)
    return None if decode_short_side in (None, 0, "none") else int(decode_short_side)


def visual_store_attrs(backbone, weights_sha256: str | None, frames_per_segment: int, short: int | None,
                       decoder: str) -> dict:
    """The visual store's identity: what makes its features (and so its parts' keys)."""
    attrs = {
        "modality": "visual",
        "backbone": backbone.name,
        "weights_sha256": weights_sha256,
        "feature_dim": int(backbone.feature_dim),
        "frames_per_segment": int(frames_per_segment),
        "crop_size": int(backbone.crop_size),
        "decode_short_side": short or 0,
    }
    if decoder != "cpu":  # CPU-decoded stores keep the attributes (and part keys) they always had
        attrs["decoder"] = decoder
    return attrs


def audio_store_attrs(backbone, weights_sha256: str | None, sample_rate: int, min_window_s: float) -> dict:
    """The audio store's identity."""
    return {
        "modality": "audio",
        "backbone": backbone.name,
        "weights_sha256": weights_sha256,
        "feature_dim": int(backbone.feature_dim),
        "sample_rate": sample_rate,
        "min_window_s": min_window_s,
        "downmix": AUDIO_DOWNMIX,
    }
