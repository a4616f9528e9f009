"""Segment scores -> the highlight windows of the reel.

The rule (README "Use a trained model on your own videos"):

1. Segments are taken in order of decreasing score (ties: the earlier segment first).
2. ``top_seconds`` mode (default budget: 30 s or 15% of the video, whichever is shorter): a
   segment is added while the union of the chosen segments' time spans stays within the budget;
   the first segment that would exceed it ends the selection. When not even the best segment fits
   (a very short video), it is cut to the budget around its centre.
   ``top_k`` mode: the ``k`` best segments.
3. Chosen segments whose spans overlap or touch are merged into one window; a window's score is
   the mean score of its segments. Windows are ranked by score (ties: earlier first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_SECONDS = 30.0
DEFAULT_FRACTION = 0.15
TOUCH_S = 1e-6  # spans closer than this are adjacent


@dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float
    score: float
    segments: tuple[int, ...]  # indices of the merged segments, in time order

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def default_budget(duration_s: float) -> float:
    """The reel length when ``--top-seconds`` is not given: min(30 s, 15% of the video)."""
    return min(DEFAULT_MAX_SECONDS, DEFAULT_FRACTION * float(duration_s))


def union_length(spans: list[tuple[float, float]]) -> float:
    """Total length of the union of [start, end) spans."""
    total, cur_a, cur_b = 0.0, None, None
    for a, b in sorted(spans):
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    return total + (cur_b - cur_a if cur_b is not None else 0.0)


def _order(scores: np.ndarray) -> np.ndarray:
    return np.lexsort((np.arange(len(scores)), -scores))  # score descending, index ascending


def choose_segments(
    start_s: np.ndarray, end_s: np.ndarray, scores: np.ndarray, top_seconds: float | None = None,
    top_k: int | None = None, duration_s: float | None = None,
) -> tuple[list[int], tuple[float, float] | None]:
    """Indices of the chosen segments (rule above) and, when the best segment had to be cut to the
    budget, its cut span (else None). start_s, end_s, scores: [T]."""
    scores = np.asarray(scores, np.float64)
    if not len(scores):
        return [], None
    order = _order(scores)
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"--top-k must be >= 1, got {top_k}")
        return sorted(order[:top_k].tolist()), None
    budget = default_budget(duration_s if duration_s is not None else float(end_s.max())) if top_seconds is None \
        else float(top_seconds)
    if budget <= 0:
        raise ValueError(f"--top-seconds must be > 0, got {budget}")
    chosen: list[int] = []
    for i in order.tolist():
        spans = [(start_s[j], end_s[j]) for j in chosen] + [(start_s[i], end_s[i])]
        if union_length(spans) > budget + 1e-9:
            break
        chosen.append(i)
    if chosen:
        return sorted(chosen), None
    best = int(order[0])
    centre = 0.5 * (start_s[best] + end_s[best])
    a = max(float(start_s[best]), centre - budget / 2)
    return [best], (a, a + budget)


def merge_windows(
    chosen: list[int], start_s: np.ndarray, end_s: np.ndarray, scores: np.ndarray,
    cut: tuple[float, float] | None = None,
) -> list[Window]:
    """Merge chosen segments that overlap or touch -> windows ranked by score (rule above)."""
    groups: list[list[int]] = []
    bounds: list[list[float]] = []
    for i in sorted(chosen, key=lambda j: (start_s[j], end_s[j])):
        a, b = (cut if cut is not None else (float(start_s[i]), float(end_s[i])))
        if bounds and a <= bounds[-1][1] + TOUCH_S:
            groups[-1].append(i)
            bounds[-1][1] = max(bounds[-1][1], b)
        else:
            groups.append([i])
            bounds.append([a, b])
    out = [Window(float(a), float(b), float(np.mean([scores[j] for j in g])), tuple(g)) for g, (a, b) in zip(groups, bounds)]
    return sorted(out, key=lambda w: (-w.score, w.start_s))


def highlight_windows(
    start_s: np.ndarray, end_s: np.ndarray, scores: np.ndarray, top_seconds: float | None = None,
    top_k: int | None = None, duration_s: float | None = None,
) -> list[Window]:
    """The reel's windows for one video, ranked by score (see the module docstring)."""
    start_s, end_s = np.asarray(start_s, np.float64), np.asarray(end_s, np.float64)
    chosen, cut = choose_segments(start_s, end_s, scores, top_seconds, top_k, duration_s)
    return merge_windows(chosen, start_s, end_s, np.asarray(scores, np.float64), cut)
