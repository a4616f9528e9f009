"""Timelines of predicted highlight scores against the ground truth (like the paper's Figure 4).

``plot_timelines`` draws one PNG per video: the predicted score per segment as a line, the
ground-truth highlight segments (``label == 1``) shaded. The x axis is time in seconds (segment
centres) when the segment table knows ``start_s``/``end_s``, else the segment index.
``write_timeline_data`` writes the same series as one CSV per video (columns ``segment``,
``score``, ``label``), which ``dvc plots show`` renders with ``x: segment`` and
``y: [score, label]``.

Both take the canonical segment table (``docs/ARCHITECTURE.md``: ``vid``, ``seg_idx``,
``label``, optionally ``split``, ``domain``, ``start_s``, ``end_s``) and predictions
``{vid: [one score per segment]}`` (the ``predictions/<dataset>.jsonl`` contents). File names are
``<vid>.png`` / ``<vid>.csv``; ids go through ``pipeline.paths.check_id``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .paths import check_id, safe_join

REQUIRED_COLUMNS = ("vid", "seg_idx", "label")


def select_videos(
    table: pd.DataFrame,
    predictions: Mapping[str, Sequence[float]],
    vids: Sequence[str] | None = None,
    max_videos: int = 4,
) -> list[str]:
    """The videos to plot: ``vids`` as given (each checked), or the first ``max_videos`` videos
    of the table (in table order) that have predictions, test-split videos first when the table
    has a ``split`` column."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"segment table lacks column(s) {missing}; needs {list(REQUIRED_COLUMNS)}")
    in_table = set(table["vid"].astype(str))
    if vids is not None:
        for vid in vids:
            check_id(vid, "plot request")
            if vid not in in_table:
                raise KeyError(f"video {vid!r} is not in the segment table")
            if vid not in predictions:
                raise KeyError(f"video {vid!r} has no predictions")
        return list(vids)
    order = list(dict.fromkeys(table["vid"].astype(str)))  # first appearance
    if "split" in table.columns:
        test = set(table.loc[table["split"] == "test", "vid"].astype(str))
        order = [v for v in order if v in test] + [v for v in order if v not in test]
    return [v for v in order if v in predictions][: max(0, max_videos)]


def _video_series(
    table: pd.DataFrame, predictions: Mapping[str, Sequence[float]], vid: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of one video sorted by seg_idx, and its scores [T] (checked: length, finite)."""
    check_id(vid, "predictions")
    rows = table[table["vid"].astype(str) == vid].sort_values("seg_idx")
    scores = np.asarray(predictions[vid], dtype=np.float64)  # [T]
    if scores.ndim != 1 or len(scores) != len(rows):
        raise ValueError(f"video {vid!r}: {scores.size} predicted scores for {len(rows)} segments in the table")
    if not np.all(np.isfinite(scores)):
        bad = int(np.argmin(np.isfinite(scores)))
        raise ValueError(f"video {vid!r}: predicted scores contain NaN or infinity (segment {bad})")
    return rows, scores


def _times(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """(start_s [T], end_s [T]) when every segment of the video has finite times, else None."""
    if "start_s" not in rows.columns or "end_s" not in rows.columns:
        return None
    start = pd.to_numeric(rows["start_s"], errors="coerce").to_numpy(np.float64)
    end = pd.to_numeric(rows["end_s"], errors="coerce").to_numpy(np.float64)
    if len(start) == 0 or not (np.all(np.isfinite(start)) and np.all(np.isfinite(end))):
        return None
    return start, end


def highlight_spans(lo: np.ndarray, hi: np.ndarray, positive: np.ndarray) -> list[tuple[float, float]]:
    """Merge the [lo, hi) extents of positive segments into disjoint spans, sorted by start."""
    spans: list[list[float]] = []
    for a, b in sorted(zip(lo[positive].tolist(), hi[positive].tolist())):
        if spans and a <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    return [(a, b) for a, b in spans]


def plot_timelines(
    table: pd.DataFrame,
    predictions: Mapping[str, Sequence[float]],
    out_dir: str | os.PathLike,
    vids: Sequence[str] | None = None,
    max_videos: int = 4,
    figsize: tuple[float, float] = (8.0, 2.5),
    dpi: int = 100,
) -> list[Path]:
    """Write ``out_dir/<vid>.png`` per selected video (see ``select_videos``); return the paths.

    Each PNG is ``figsize * dpi`` pixels (800 x 250 by default): the predicted score per segment
    (line with markers) over time or segment index, ground-truth highlights shaded red. Rendered
    with matplotlib's Agg canvas (no pyplot state), PNG metadata without a version stamp.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for vid in select_videos(table, predictions, vids, max_videos):
        rows, scores = _video_series(table, predictions, vid)
        positive = rows["label"].to_numpy() > 0  # [T]
        times = _times(rows)
        if times is not None:
            lo, hi = times
            x = 0.5 * (lo + hi)  # [T] segment centres, seconds
            xlabel = "time (s)"
        else:
            x = rows["seg_idx"].to_numpy(np.float64)  # [T]
            lo, hi = x - 0.5, x + 0.5
            xlabel = "segment"
        fig = Figure(figsize=figsize, dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for k, (a, b) in enumerate(highlight_spans(lo, hi, positive)):
            ax.axvspan(a, b, color="tab:red", alpha=0.2, lw=0, label="ground-truth highlight" if k == 0 else None)
        ax.plot(x, scores, color="tab:blue", marker=".", ms=4, lw=1.2, label="predicted score")
        ax.set_xlim(float(lo.min()), float(hi.max()))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("score")
        title = vid
        if "domain" in rows.columns and isinstance(rows["domain"].iloc[0], str):
            title += f"  ({rows['domain'].iloc[0]})"
        ax.set_title(title, fontsize=9)
        ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
        fig.tight_layout()
        path = safe_join(out, f"{vid}.png")
        fig.savefig(path, format="png", metadata={"Software": None})
        paths.append(path)
    return paths


def write_timeline_data(
    table: pd.DataFrame,
    predictions: Mapping[str, Sequence[float]],
    out_dir: str | os.PathLike,
    vids: Sequence[str] | None = None,
    max_videos: int = 4,
) -> list[Path]:
    """Write ``out_dir/<vid>.csv`` (columns segment, score, label) per selected video; return the paths.

    segment: seg_idx; score: the prediction (``repr`` precision); label: the binary ground truth.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for vid in select_videos(table, predictions, vids, max_videos):
        rows, scores = _video_series(table, predictions, vid)
        path = safe_join(out, f"{vid}.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["segment", "score", "label"])
            for seg, score, label in zip(rows["seg_idx"].tolist(), scores.tolist(), rows["label"].tolist()):
                w.writerow([int(seg), repr(float(score)), int(int(label) > 0)])
        paths.append(path)
    return paths
