"""Segment table + visual store + audio store -> training-ready per-video arrays.

``align_dataset`` joins, per video of the canonical segment table, the ``[T, Dv]`` visual and
``[T, Da]`` audio features of the two HDF5 feature stores (one dataset per video at ``/<vid>``,
read through ``pipeline.store``; see docs/ARCHITECTURE.md) with the labels, and writes one HDF5 file with a group per video:

    /<vid>/visual      [T, Dv] float32
    /<vid>/audio       [T, Da] float32   (zeros when the video has no audio track)
    /<vid>/audio_mask  [T]     bool      (False = no audio for that segment)
    /<vid>/labels      [T]     int64     binary training labels
    /<vid>/targets     [T]     float32   regression-style targets (TVSum: (sum - 20) / 80)
    /<vid>/scores      [T, K]  float32   raw scores (YouTube: [match]; TVSum: 20 annotator scores)
    attrs: vid, domain, split, num_table_segments

T is the common number of segments of the table rows, the visual rows and the audio rows. A
difference of one segment (a rounding difference of the extractors at the video's end) is cut
to the shortest and counted; a larger difference is an error naming the video, unless a store
marks the video ``truncated`` (the published-features importer cut it deliberately): then it
is cut to the shortest and counted. A video missing from a store (its extraction failed) or
with an empty split (in no split list) is skipped and listed in the summary. A store dataset with ``has_audio`` False (the video has no
audio track) gives zero audio features and ``audio_mask`` False, whatever its row count.

Labels: the table's ``label`` column (YouTube Highlights: match > 0). For ``dataset ==
"tvsum"`` with ``tvsum_label="median"`` the positives are recomputed from the raw scores as the
shots whose mean annotator score is above the video's median of those means (the lower median,
``torch.median`` semantics, as the segment table and the evaluation protocols use; computed on
all the video's table rows before any cut); ``"mean"`` uses the video's mean instead and
``"table"`` keeps the table's column. TVSum targets are ``(sum - K) / (4 K)`` for K annotator
scores in 1..5, i.e. ``(sum - 20) / 80`` for 20 annotators, in [0, 1]; elsewhere the targets
are the binary labels.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from tqdm import tqdm

from .annotations import lower_median
from .paths import check_id
from .errors import PipelineError, disk_full, is_disk_full
from .store import StoreError, read_store, video_attrs

TVSUM_LABELS = ("median", "mean", "table")


class AlignError(PipelineError, ValueError):
    """The segment table and the feature stores cannot be joined; the message names the video."""


_REQUIRED = ("vid", "domain", "split", "seg_idx", "label", "scores")


@dataclass
class VideoItem:
    """One aligned video. T segments; Dv, Da feature sizes; K raw scores per segment."""

    vid: str
    domain: str
    split: str  # "train" | "test"
    visual: np.ndarray  # [T, Dv] float32
    audio: np.ndarray  # [T, Da] float32
    audio_mask: np.ndarray  # [T] bool
    labels: np.ndarray  # [T] int64 in {0, 1}
    targets: np.ndarray  # [T] float32 in [0, 1]
    scores: np.ndarray  # [T, K] float32

    @property
    def num_segments(self) -> int:
        return int(self.labels.shape[0])


def _parse_scores(value, vid: str, seg: int, source: str) -> list[float]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise AlignError(f"{source}: video {vid!r} segment {seg}: scores {value!r} are not JSON ({exc})") from None
    if np.isscalar(value):
        value = [value]
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        raise AlignError(f"{source}: video {vid!r} segment {seg}: non-numeric scores {value!r}") from None
    if not out or not np.all(np.isfinite(out)):
        raise AlignError(f"{source}: video {vid!r} segment {seg}: scores {value!r} are empty or not finite")
    return out


def _video_labels(
    rows: pd.DataFrame, vid: str, dataset: str, tvsum_label: str, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of one video (ordered) -> labels [n] int64, targets [n] float32, scores [n, K] float32."""
    seg_list = rows["seg_idx"].tolist()
    score_rows = [_parse_scores(v, vid, s, source) for v, s in zip(rows["scores"], seg_list)]
    widths = {len(r) for r in score_rows}
    if len(widths) != 1:
        raise AlignError(f"{source}: video {vid!r}: segments have different numbers of scores {sorted(widths)}")
    scores = np.asarray(score_rows, dtype=np.float64)  # [n, K]
    try:
        table_labels = rows["label"].astype(float).to_numpy()
    except (TypeError, ValueError):
        raise AlignError(f"{source}: video {vid!r}: non-numeric label column") from None
    if not np.isin(table_labels, (0.0, 1.0)).all():
        bad = seg_list[int(np.flatnonzero(~np.isin(table_labels, (0.0, 1.0)))[0])]
        raise AlignError(f"{source}: video {vid!r} segment {bad}: label must be 0 or 1")
    labels = table_labels.astype(np.int64)  # [n]
    targets = labels.astype(np.float32)  # [n]
    if dataset == "tvsum":
        if scores.min() < 1 or scores.max() > 5:
            raise AlignError(f"{source}: video {vid!r}: TVSum annotator scores must lie in 1..5")
        mean = scores.mean(axis=1)  # [n] mean annotator score per shot
        if tvsum_label == "median":
            labels = (mean > lower_median(mean)).astype(np.int64)
        elif tvsum_label == "mean":
            labels = (mean > mean.mean()).astype(np.int64)
        K = scores.shape[1]
        targets = ((scores.sum(axis=1) - K) / (4.0 * K)).astype(np.float32)  # (sum - 20) / 80 for K = 20
    return labels, targets, scores.astype(np.float32)


def _store_dim(features: dict[str, np.ndarray], path: str | os.PathLike) -> int | None:
    """The feature size D shared by the store's [T, D] arrays (None if it has none)."""
    dims = {a.shape[1] for a in features.values() if a.ndim == 2}
    if len(dims) > 1:
        raise AlignError(f"{path}: feature datasets have different sizes {sorted(dims)}")
    return dims.pop() if dims else None


def align_dataset(
    table: pd.DataFrame,
    visual_store: str | os.PathLike,
    audio_store: str | os.PathLike,
    out_path: str | os.PathLike,
    dataset: str,
    tvsum_label: str = "median",
    progress: bool = False,
) -> dict:
    """Join ``table`` with the two feature stores and write ``out_path`` (see module docstring).

    Returns a summary: ``{"dataset", "num_videos", "num_segments", "per_split", "positives_fraction",
    "visual_dim", "audio_dim", "skipped": {"missing_visual": [vid], "missing_audio": [vid], "no_split": [vid]},
    "num_skipped", "no_audio_videos", "off_by_one": {"videos", "table_segments_dropped"},
    "truncated": {"videos", "table_segments_dropped"}, "features_without_table": int}``.
    """
    if tvsum_label not in TVSUM_LABELS:
        raise AlignError(f"tvsum_label must be one of {TVSUM_LABELS}, got {tvsum_label!r}")
    missing_cols = [c for c in _REQUIRED if c not in table.columns]
    if missing_cols:
        raise AlignError(f"segment table lacks columns {missing_cols}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".part")
    summary: dict = {
        "dataset": dataset,
        "num_videos": 0,
        "num_segments": 0,
        "per_split": {},
        "skipped": {"missing_visual": [], "missing_audio": [], "no_split": []},
        "no_audio_videos": 0,
        "off_by_one": {"videos": 0, "table_segments_dropped": 0},
        "truncated": {"videos": 0, "table_segments_dropped": 0},
    }
    try:
        written, positives = _align_into(table, visual_store, audio_store, tmp_path, dataset, tvsum_label, progress, summary)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and is_disk_full(exc):
            raise disk_full(out_path, exc) from exc
        raise
    os.replace(tmp_path, out_path)
    summary["num_videos"] = len(written)
    summary["num_skipped"] = len(set().union(*summary["skipped"].values()))
    summary["positives_fraction"] = positives / summary["num_segments"] if summary["num_segments"] else 0.0
    return summary


def _align_into(
    table: pd.DataFrame,
    visual_store: str | os.PathLike,
    audio_store: str | os.PathLike,
    tmp_path: Path,
    dataset: str,
    tvsum_label: str,
    progress: bool,
    summary: dict,
) -> tuple[list[str], int]:
    """The body of ``align_dataset``: writes ``tmp_path``, fills ``summary``; -> (vids, positives)."""
    source = "segment table"
    order = list(dict.fromkeys(table["vid"].astype(str)))
    groups = {vid: rows for vid, rows in table.groupby(table["vid"].astype(str), sort=False)}
    positives = 0
    written: list[str] = []
    fv, fa = read_store(visual_store), read_store(audio_store)  # {vid: [T, D]}
    av, aa = video_attrs(visual_store), video_attrs(audio_store)  # {vid: {attr: value}}
    dv, da = _store_dim(fv, visual_store), _store_dim(fa, audio_store)
    with h5py.File(tmp_path, "w") as out:
        for vid in tqdm(order, desc=f"align {dataset}", unit="video", disable=not progress):
            check_id(vid, source)
            rows = groups[vid].sort_values("seg_idx", kind="stable")
            seg = rows["seg_idx"].astype(int).to_numpy()
            if not np.array_equal(seg, np.arange(len(seg))):
                raise AlignError(f"{source}: video {vid!r}: seg_idx must be 0..{len(seg) - 1} without gaps or repeats")
            meta = {c: rows[c].astype(str).unique() for c in ("domain", "split")}
            for c, values in meta.items():
                if len(values) != 1:
                    raise AlignError(f"{source}: video {vid!r} has several values of {c}: {list(values)}")
            domain, split = meta["domain"][0], meta["split"][0]
            if split == "":  # in no split list: nothing to train or test it on
                summary["skipped"]["no_split"].append(vid)
                continue
            if split not in ("train", "test"):
                raise AlignError(f"{source}: video {vid!r}: split must be train or test, got {split!r}")
            if vid not in fv:
                summary["skipped"]["missing_visual"].append(vid)
            if vid not in fa:
                summary["skipped"]["missing_audio"].append(vid)
            if vid not in fv or vid not in fa:
                continue
            has_audio = bool(aa[vid].get("has_audio", True))
            # published-features importer: ``truncated`` = segments cut (0 when lengths agreed)
            truncated = bool(av[vid].get("truncated", False)) or bool(aa[vid].get("truncated", False))
            vis = np.asarray(fv[vid], dtype=np.float32)
            if vis.ndim != 2 or vis.shape[1] != dv:
                raise AlignError(f"{visual_store}: video {vid!r}: features of shape {vis.shape}, expected [T, {dv}]")
            n_tab, n_vis = len(rows), vis.shape[0]
            lengths = {"table": n_tab, "visual": n_vis}
            if has_audio:
                aud = np.asarray(fa[vid], dtype=np.float32)
                if aud.ndim != 2 or aud.shape[1] != da:
                    raise AlignError(f"{audio_store}: video {vid!r}: features of shape {aud.shape}, expected [T, {da}]")
                lengths["audio"] = aud.shape[0]
            T = min(lengths.values())
            spread = max(lengths.values()) - T
            if spread > 1 and not truncated:
                raise AlignError(
                    f"video {vid!r}: segment counts differ by more than one ({lengths}; "
                    f"{visual_store}, {audio_store}); re-extract it or fix the annotations"
                )
            if spread > 0:
                key = "truncated" if truncated else "off_by_one"
                summary[key]["videos"] += 1
                summary[key]["table_segments_dropped"] += n_tab - T
            if T == 0:
                raise AlignError(f"video {vid!r}: no segments left to align ({lengths})")
            vis = vis[:T]  # [T, Dv]
            if not np.isfinite(vis).all():
                raise AlignError(f"{visual_store}: video {vid!r}: non-finite features")
            if has_audio:
                aud = aud[:T]  # [T, Da]
                if not np.isfinite(aud).all():
                    raise AlignError(f"{audio_store}: video {vid!r}: non-finite features")
                audio_mask = np.ones(T, dtype=bool)
            else:
                if da is None:
                    raise AlignError(f"{audio_store}: video {vid!r} has no audio and no [T, Da] dataset gives Da")
                aud = np.zeros((T, da), dtype=np.float32)  # [T, Da]
                audio_mask = np.zeros(T, dtype=bool)
                summary["no_audio_videos"] += 1
            labels, targets, scores = _video_labels(rows, vid, dataset, tvsum_label, source)
            g = out.create_group(vid)
            g.create_dataset("visual", data=vis)
            g.create_dataset("audio", data=aud)
            g.create_dataset("audio_mask", data=audio_mask)
            g.create_dataset("labels", data=labels[:T])
            g.create_dataset("targets", data=targets[:T])
            g.create_dataset("scores", data=scores[:T])
            g.attrs.update({"vid": vid, "domain": domain, "split": split, "num_table_segments": n_tab})
            written.append(vid)
            summary["num_segments"] += T
            summary["per_split"][split] = summary["per_split"].get(split, 0) + 1
            positives += int(labels[:T].sum())
        table_vids = set(order)
        extra = {k for k in fv.keys() if k not in table_vids} | {k for k in fa.keys() if k not in table_vids}
        summary["features_without_table"] = len(extra)
        summary["visual_dim"], summary["audio_dim"] = dv, da
        out.attrs["dataset"] = dataset
        out.attrs["vids"] = json.dumps(written)
    return written, positives


def load_aligned(path: str | os.PathLike) -> list[VideoItem]:
    """Read an ``align_dataset`` file -> VideoItems, in the segment table's video order."""
    items = []
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: aligned file not found (run the align stage first: dvc repro)") from None
    except OSError as exc:
        raise StoreError(f"{path}: not a readable aligned HDF5 file ({' '.join(str(exc).split())}); `dvc repro` "
                         "rebuilds it") from exc
    with f:
        for vid in json.loads(f.attrs["vids"]):
            g = f[vid]
            items.append(
                VideoItem(
                    vid=str(g.attrs["vid"]),
                    domain=str(g.attrs["domain"]),
                    split=str(g.attrs["split"]),
                    visual=g["visual"][()],
                    audio=g["audio"][()],
                    audio_mask=g["audio_mask"][()].astype(bool),
                    labels=g["labels"][()].astype(np.int64),
                    targets=g["targets"][()].astype(np.float32),
                    scores=g["scores"][()],
                )
            )
    return items
