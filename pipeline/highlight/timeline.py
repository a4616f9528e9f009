"""The score timeline of one video: segment scores over time, the reel's windows shaded, and the
ground truth when a labelled segment table covers the video."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np


def plot_highlight_timeline(
    out_path: str | os.PathLike,
    start_s: np.ndarray,
    end_s: np.ndarray,
    scores: np.ndarray,
    windows: Sequence[tuple[float, float]],
    title: str,
    truth: Sequence[tuple[float, float]] | None = None,
    figsize: tuple[float, float] = (8.0, 2.4),
    dpi: int = 100,
) -> Path:
    """Write the PNG (``figsize * dpi`` pixels) and return its path.

    start_s, end_s, scores: [T] per segment; the score is drawn as a step over each segment's span
    (overlapping segments: at their centres). windows: the reel's [start_s, end_s) spans, shaded
    orange. truth: ground-truth highlight spans, drawn as a red band under the curve.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    start_s, end_s, scores = (np.asarray(a, np.float64) for a in (start_s, end_s, scores))
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for k, (a, b) in enumerate(windows):
        ax.axvspan(a, b, color="tab:orange", alpha=0.3, lw=0, label="in the reel" if k == 0 else None)
    if truth:
        for k, (a, b) in enumerate(truth):
            ax.fill_between([a, b], -0.08, -0.02, color="tab:red", lw=0, label="ground truth" if k == 0 else None)
    overlapping = len(start_s) > 1 and np.any(start_s[1:] < end_s[:-1] - 1e-9)
    if overlapping:
        ax.plot(0.5 * (start_s + end_s), scores, color="tab:blue", lw=1.2, marker=".", ms=3, label="score")
    else:
        xs = np.ravel(np.column_stack([start_s, end_s]))  # [2T]
        ax.plot(xs, np.repeat(scores, 2), color="tab:blue", lw=1.2, label="score")
    ax.set_xlim(float(start_s.min()), float(end_s.max()))
    ax.set_ylim(-0.1, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("highlight score")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    fig.tight_layout()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, format="png", metadata={"Software": None})
    return out_path
