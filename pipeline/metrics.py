"""Evaluation protocols for highlight detection, usable on anyone's predictions.

``umt`` (default) reproduces the computation of UMT's published code (TencentARC/UMT,
``datasets/youtube.py`` and ``datasets/tvsum.py``), which every later paper's numbers follow:

- per video, segments are ranked by predicted score, descending; AP is the trapezoid sum over the
  ranked list starting from recall 0 and precision 1:
  ``ap += (rec_i - rec_{i-1}) * (prc_{i-1} + prc_i) / 2`` (:func:`ap_umt`); 0 for a video without
  positives. This is not the textbook AP: labels [1, 0, 1] ranked in that order give 0.7917, the
  textbook AP 0.8333.
- YouTube Highlights (and the ``demo`` dataset): label = ``match > 0`` (the table's ``label``); a
  domain's value is the mean over its videos; ``mAP`` is the mean of the domain values.
- TVSum: for each of the 20 annotators, that annotator's shot scores are binarised as
  ``score > lower median`` (``torch.median``: the lower middle value for an even count); the top 5
  segments by prediction are kept and AP is computed as above with positives counted inside those 5
  only (:func:`ap_topk_umt`); mean over the category's videos, then mean over the 20 annotators gives
  the category value; ``mAP`` is the mean of the categories.

``standard``: textbook average precision per video (scikit-learn's ``average_precision_score``:
tied scores form one threshold) on the table's ``label`` (TVSum: mean annotator score > the video's
lower median); videos without positives are excluded and counted; per-domain mean, ``mAP`` = mean of
the domains that have an evaluable video.

Ties: ranking uses a stable sort on ``-scores`` (``np.argsort(kind="mergesort")``), so tied segments
keep annotation order (earlier segment first). UMT ranks with ``torch.argsort(descending=True)``,
whose order among ties is unspecified, so only tied predictions can make the two differ;
``standard`` is independent of tie order.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .annotations import DATASETS, load_annotations, lower_median, scores_matrix
from .errors import PipelineError
from .paths import UnsafeIdError, check_id

PROTOCOLS = ("umt", "standard")
TVSUM_TOP_K = 5


class PredictionError(PipelineError, ValueError):
    """Bad predictions (file or dict); the message names the file/line and the video."""


# ---------------------------------------------------------------------------------------------
# Average precision
# ---------------------------------------------------------------------------------------------


def _check_pair(scores: Sequence[float], labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)  # [T]
    y = np.asarray(labels)  # [T]
    if s.ndim != 1 or y.shape != s.shape or len(s) == 0:
        raise ValueError(f"scores {s.shape} and labels {y.shape} must be equal-length non-empty 1-D arrays")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return s, y.astype(np.float64)


def rank(scores: np.ndarray) -> np.ndarray:
    """Indices [T] ordering ``scores`` [T] descending; ties keep index order (stable sort)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")


def _trapezoid_ap(ranked: np.ndarray) -> float:
    """UMT's AP of ranked binary labels [n]: trapezoids from (recall 0, precision 1); 0 if no positive."""
    num_gt = ranked.sum()
    if num_gt == 0:
        return 0.0
    hits = np.cumsum(ranked)  # [n]
    rec = hits / num_gt  # [n]
    prc = hits / np.arange(1, len(ranked) + 1)  # [n]
    prev_rec = np.concatenate(([0.0], rec[:-1]))  # [n]
    prev_prc = np.concatenate(([1.0], prc[:-1]))  # [n]
    return float(np.sum((rec - prev_rec) * (prev_prc + prc) / 2))


def ap_umt(scores: Sequence[float], labels: Sequence[int]) -> float:
    """UMT's YouTube Highlights AP of one video: scores [T], binary labels [T] -> float in [0, 1]."""
    s, y = _check_pair(scores, labels)
    return _trapezoid_ap(y[rank(s)])


def ap_topk_umt(scores: Sequence[float], labels: Sequence[int], k: int = TVSUM_TOP_K) -> float:
    """UMT's TVSum top-k AP: keep the k best-scored segments, positives counted inside them only."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    s, y = _check_pair(scores, labels)
    return _trapezoid_ap(y[rank(s)][:k])


def ap_standard(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Textbook AP (``sklearn.metrics.average_precision_score``): ``sum_n (R_n - R_{n-1}) P_n`` over
    distinct score thresholds (tied scores enter together). NaN when there is no positive label."""
    s, y = _check_pair(scores, labels)
    num_pos = y.sum()
    if num_pos == 0:
        return math.nan
    order = rank(s)
    s_sorted, y_sorted = s[order], y[order]  # [T], [T]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s) - 1]  # [M] last index of each tie group
    tp = np.cumsum(y_sorted)[last]  # [M]
    precision = tp / (last + 1)  # [M]
    recall = tp / num_pos  # [M]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# ---------------------------------------------------------------------------------------------
# Protocols over a segment table
# ---------------------------------------------------------------------------------------------


def _videos(table: pd.DataFrame) -> dict[str, tuple[str, pd.DataFrame]]:
    """Segment table -> {vid: (domain, that video's rows ordered by seg_idx)}."""
    return {vid: (str(g["domain"].iloc[0]), g.sort_values("seg_idx", kind="mergesort"))
            for vid, g in table.groupby("vid", sort=False)}


def _checked_predictions(predictions: Mapping[str, Sequence[float]], videos: Mapping) -> dict[str, np.ndarray]:
    if not predictions:
        raise PredictionError("no predictions to evaluate")
    out = {}
    for vid, scores in predictions.items():
        if vid not in videos:
            raise PredictionError(f"video {vid!r} has predictions but no annotations")
        s = np.asarray(scores, dtype=np.float64)
        T = len(videos[vid][1])
        if s.ndim != 1 or len(s) != T:
            raise PredictionError(f"video {vid!r}: {s.shape[0] if s.ndim == 1 else s.shape} predicted scores "
                                  f"for {T} annotated segments")
        if not np.isfinite(s).all():
            raise PredictionError(f"video {vid!r}: predicted scores must be finite")
        out[vid] = s
    return out


def _mean_of_domains(per_domain: Mapping[str, float]) -> float:
    return float(np.mean(list(per_domain.values())))


def _youtube_umt(preds: Mapping[str, np.ndarray], videos: Mapping) -> dict[str, float]:
    by_domain: dict[str, list[float]] = {}
    for vid, s in preds.items():
        domain, rows = videos[vid]
        by_domain.setdefault(domain, []).append(ap_umt(s, rows["label"].to_numpy()))
    return {d: float(np.mean(v)) for d, v in sorted(by_domain.items())}


def annotator_labels(scores: np.ndarray) -> np.ndarray:
    """TVSum's per-annotator positives: annotator scores [T, K] -> labels [K, T] int64, a shot
    positive for annotator a where its score is above the lower median of a's scores (UMT)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.stack([(scores[:, a] > lower_median(scores[:, a])).astype(np.int64) for a in range(scores.shape[1])])


def _tvsum_umt(preds: Mapping[str, np.ndarray], videos: Mapping) -> dict[str, float]:
    by_domain: dict[str, list[np.ndarray]] = {}
    width = None
    for vid, s in preds.items():
        domain, rows = videos[vid]
        scores = scores_matrix(rows["scores"])  # [T, K] annotator scores
        if width is not None and scores.shape[1] != width:
            raise PredictionError(f"video {vid!r}: {scores.shape[1]} annotators, other videos have {width}")
        width = scores.shape[1]
        aps = np.array([ap_topk_umt(s, y, TVSUM_TOP_K) for y in annotator_labels(scores)])  # [K] one per annotator
        by_domain.setdefault(domain, []).append(aps)
    # [videos, K] -> mean over videos -> [K] -> mean over annotators
    return {d: float(np.stack(v).mean(axis=0).mean()) for d, v in sorted(by_domain.items())}


def _standard(preds: Mapping[str, np.ndarray], videos: Mapping) -> tuple[dict[str, float], int, int]:
    by_domain: dict[str, list[float]] = {}
    without_positives = 0
    for vid, s in preds.items():
        domain, rows = videos[vid]
        y = rows["label"].to_numpy()
        if y.sum() == 0:
            without_positives += 1
            continue
        by_domain.setdefault(domain, []).append(ap_standard(s, y))
    if not by_domain:
        raise PredictionError("no evaluated video has a positive segment: standard AP is undefined")
    return ({d: float(np.mean(v)) for d, v in sorted(by_domain.items())},
            sum(len(v) for v in by_domain.values()), without_positives)


def evaluate(dataset: str, table: pd.DataFrame, predictions: Mapping[str, Sequence[float]],
             protocol: str = "umt") -> dict:
    """Score ``predictions`` {vid: [T] scores, in annotation order} against the segment ``table``.

    ``table`` needs the columns vid, domain, seg_idx, label (and scores for TVSum). Exactly the videos
    in ``predictions`` are evaluated. Returns ``{"dataset", "protocol", "mAP",
    "per_domain": {domain: float}, "num_videos"}``; ``standard`` adds ``num_videos_without_positives``
    (excluded; ``num_videos`` counts the videos that entered the mean).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    need = ("vid", "domain", "seg_idx", "label") + (("scores",) if dataset == "tvsum" else ())
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"the segment table lacks column(s) {', '.join(missing)}")
    videos = _videos(table)
    preds = _checked_predictions(predictions, videos)
    result: dict = {"dataset": dataset, "protocol": protocol}
    if protocol == "standard":
        per_domain, n, without = _standard(preds, videos)
        result.update(mAP=_mean_of_domains(per_domain), per_domain=per_domain, num_videos=n,
                      num_videos_without_positives=without)
        return result
    per_domain = _tvsum_umt(preds, videos) if dataset == "tvsum" else _youtube_umt(preds, videos)
    result.update(mAP=_mean_of_domains(per_domain), per_domain=per_domain, num_videos=len(preds))
    return result


# ---------------------------------------------------------------------------------------------
# Predictions jsonl
# ---------------------------------------------------------------------------------------------


def read_predictions(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``{"vid": ..., "scores": [...]}`` per line -> {vid: scores [T] float64}; errors name the line."""
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    first: dict[str, int] = {}
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise PredictionError(f"{path}: file not found") from None
    with f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise PredictionError(f"{where}: malformed JSON (column {e.colno}: {e.msg})") from None
            if not isinstance(rec, dict) or "vid" not in rec or "scores" not in rec:
                raise PredictionError(f'{where}: expected {{"vid": ..., "scores": [...]}}')
            try:
                vid = check_id(rec["vid"], where)
            except UnsafeIdError as e:
                raise PredictionError(str(e)) from None
            if vid in first:
                raise PredictionError(f"{where}: video {vid!r} duplicated (first on line {first[vid]})")
            first[vid] = lineno
            scores = rec["scores"]
            if not isinstance(scores, list) or not scores:
                raise PredictionError(f"{where}: video {vid!r}: scores must be a non-empty list")
            for i, x in enumerate(scores):
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                    raise PredictionError(f"{where}: video {vid!r}: scores[{i}] = {x!r} is not a finite number")
            out[vid] = np.asarray(scores, dtype=np.float64)
    if not out:
        raise PredictionError(f"{path}: no predictions")
    return out


def write_predictions(path: str | os.PathLike, predictions: Mapping[str, Sequence[float]]) -> None:
    """{vid: scores [T]} -> jsonl, one line per video (atomic write; floats written exactly)."""
    path = Path(path)
    lines = []
    for vid, scores in predictions.items():
        check_id(vid, path)
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim != 1 or not np.isfinite(s).all():
            raise PredictionError(f"{path}: video {vid!r}: scores must be a 1-D list of finite numbers")
        lines.append(json.dumps({"vid": vid, "scores": s.tolist()}))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def evaluate_files(dataset: str, annotation_paths: Sequence[str | os.PathLike], predictions_path: str | os.PathLike,
                   protocol: str = "umt", splits_file: str | os.PathLike | None = None) -> dict:
    """``hpcl evaluate``: annotations (any supported format, several concatenated) + predictions jsonl.

    ``splits_file`` (UMT's split lists) is needed only for annotations without categories (UMT's tvsum json).
    """
    table = load_annotations(dataset, annotation_paths, splits_file=splits_file)
    predictions = read_predictions(predictions_path)
    try:
        return evaluate(dataset, table, predictions, protocol)
    except PredictionError as e:
        raise PredictionError(f"{predictions_path}: {e}") from None
