"""A new video cut into segments the way the model's training data was.

A :class:`Segmentation` is a window length and a stride in one unit:

- ``frames``: windows of ``length`` frames every ``stride`` frames at the video's own frame rate
  (YouTube Highlights: the authors' 100-frame clips with stride 50);
- ``seconds``: windows of ``length`` seconds every ``stride`` seconds (TVSum's 2 s shots, the
  demo's 2 s segments), mapped to frames through the video's frame times by the extractor, so
  variable-frame-rate videos are cut by time.

The rule for a video of total length N (frames or seconds): window k is
``[k * stride, min(k * stride + length, N))`` for k = 0, 1, ... until a window reaches N; the
last window is dropped when it is shorter than half a window and is not the only one (a tail of
less than half a segment after the last window is left unscored, as the benchmarks' annotations
do). ``segmentation_from_table`` measures length and stride on a training segment table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from ..decoding import VideoInfo, frames_to_seconds

UNITS = ("frames", "seconds")


@dataclass(frozen=True)
class Segmentation:
    unit: str  # frames | seconds
    length: float
    stride: float

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"segmentation unit must be one of {UNITS}, got {self.unit!r}")
        if not (math.isfinite(self.length) and math.isfinite(self.stride)) or self.length <= 0 or self.stride <= 0:
            raise ValueError(f"segmentation length and stride must be positive, got {self.length}, {self.stride}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "segmentation") -> "Segmentation":
        try:
            return cls(str(d["unit"]), float(d["length"]), float(d["stride"]))
        except KeyError as exc:
            raise ValueError(f"{source}: missing key {exc.args[0]!r} (needs unit, length, stride)") from None

    def with_seconds(self, seconds: float | None) -> "Segmentation":
        """``--segment-seconds``: a new window length (stride scaled alike) for a time-based
        segmentation; a frame-based one cannot be overridden (an error)."""
        if not seconds:
            return self
        if self.unit != "seconds":
            raise ValueError(
                f"--segment-seconds applies to time-based segmentations only; this model was trained on windows of "
                f"{self.length:g} frames every {self.stride:g} frames at the video's own frame rate"
            )
        return Segmentation("seconds", float(seconds), float(seconds) * self.stride / self.length)


def windows(total: float, length: float, stride: float) -> np.ndarray:
    """Window bounds [K, 2] over [0, total) by the rule in the module docstring."""
    if total <= 0:
        raise ValueError(f"cannot segment a video of length {total}")
    out = []
    k = 0
    while True:
        start = k * stride
        end = min(start + length, total)
        out.append((start, end))
        if end >= total:
            break
        k += 1
    if len(out) > 1 and out[-1][1] - out[-1][0] < 0.5 * length:
        out.pop()
    return np.asarray(out, dtype=np.float64)


def segment_video(vid: str, video: str, info: VideoInfo, seg: Segmentation) -> pd.DataFrame:
    """The canonical segment-table rows of one new video (columns as ``pipeline.extract`` reads
    them: vid, seg_idx, start_frame, end_frame, start_s, end_s, video). Seconds are from the
    first video frame; frame-based windows get their seconds through the frame times."""
    if seg.unit == "frames":
        bounds = windows(float(info.num_frames), seg.length, seg.stride)  # [K, 2] frames
        start_f, end_f = bounds[:, 0], bounds[:, 1]
        start_s = np.array([frames_to_seconds(f, info.frame_starts_s, info.fps) for f in start_f])
        end_s = np.array([frames_to_seconds(f, info.frame_starts_s, info.fps) for f in end_f])
    else:
        bounds = windows(float(info.duration_s), seg.length, seg.stride)  # [K, 2] seconds
        start_s, end_s = bounds[:, 0], bounds[:, 1]
        start_f = end_f = np.full(len(bounds), np.nan)
    return pd.DataFrame({
        "vid": vid, "seg_idx": np.arange(len(bounds)), "start_frame": start_f, "end_frame": end_f,
        "start_s": start_s, "end_s": end_s, "video": video,
    })


def _median_steps(table: pd.DataFrame, lo: str, hi: str, scale: Mapping[str, float] | None) -> tuple[float, float]:
    lengths, strides = [], []
    for vid, rows in table.groupby(table["vid"].astype(str), sort=False):
        rows = rows.sort_values("seg_idx")
        a = pd.to_numeric(rows[lo], errors="coerce").to_numpy(np.float64)
        b = pd.to_numeric(rows[hi], errors="coerce").to_numpy(np.float64)
        f = 1.0 if scale is None else scale.get(vid, math.nan)
        lengths.extend(((b - a) * f).tolist())
        strides.extend((np.diff(a) * f).tolist())
    lengths = [x for x in lengths if math.isfinite(x) and x > 0]
    strides = [x for x in strides if math.isfinite(x) and x > 0]
    if not lengths:
        raise ValueError(f"segment table: no finite {lo}/{hi} to measure the segment length on")
    length = float(np.median(lengths))
    return length, float(np.median(strides)) if strides else length


def segmentation_from_table(table: pd.DataFrame, unit: str, fps: Mapping[str, float] | None = None) -> Segmentation:
    """The median segment length and stride of a training segment table in ``unit``.

    ``frames`` needs the table's start/end_frame; ``seconds`` uses start/end_s where the table has
    them, else the frames divided by each video's frame rate ``fps[vid]`` (from the feature store).
    """
    if unit not in UNITS:
        raise ValueError(f"segmentation unit must be one of {UNITS}, got {unit!r}")

    def has(c: str) -> bool:
        return c in table and pd.to_numeric(table[c], errors="coerce").notna().all()

    if unit == "frames":
        if not (has("start_frame") and has("end_frame")):
            raise ValueError("segment table has no start_frame/end_frame: a frame-based segmentation cannot be measured")
        length, stride = _median_steps(table, "start_frame", "end_frame", None)
        return Segmentation("frames", float(round(length)), float(round(stride)))
    if has("start_s") and has("end_s"):
        length, stride = _median_steps(table, "start_s", "end_s", None)
    elif has("start_frame") and has("end_frame") and fps:
        length, stride = _median_steps(table, "start_frame", "end_frame", {v: 1.0 / f for v, f in fps.items() if f})
    else:
        raise ValueError("segment table has neither start_s/end_s nor frames with known frame rates: "
                         "a time-based segmentation cannot be measured")
    return Segmentation("seconds", round(length, 6), round(stride, 6))
