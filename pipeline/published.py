"""Published pre-extracted features (UMT or lighthouse layout) -> the feature store.

An alternative to decoding videos: a user with the released features reproduces the literature.

Layouts under ``root`` (``data/raw/<dataset>/features``):

    umt:        video_features/{vid}_rgb.npy, video_features/{vid}_opt.npy   [T, 1024] each
                (I3D RGB and flow, concatenated to [T, 2048]); audio_features/{vid}.npy  [T, 2048]
    lighthouse: features/<dataset>/<name>/{vid}.npz with key "features"   [T, D]
                (visual ``names["visual"]``: one name or a list, concatenated along D after
                cutting to their shortest; audio ``names["audio"]``)

Lengths are aligned as the published code does: every video is cut to the shortest of its
visual rows, audio rows and annotated segments (the table's rows); nothing is padded. Each
stored video carries ``num_label_segments`` (the table's count) and ``truncated`` (how many
segments the longest of the three lost; 0 when they agree), so the align stage cuts the labels
the same way. Arrays are read with ``allow_pickle=False`` always.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from .errors import PipelineError
from .part_keys import file_fingerprint, part_key
from .paths import check_id, safe_join
from .store import FeatureStore, failures_path

LAYOUTS = ("umt", "lighthouse")
MODALITIES = ("visual", "audio")
DEFAULT_NAMES = {"visual": "i3d", "audio": "pann"}


class PublishedFeatureError(PipelineError, ValueError):
    """A published feature file is unusable; the message names the file."""

    stage = "load"  # the stage column of the store's failures table


class PublishedImportError(PipelineError, RuntimeError):
    """More published feature files were unusable than ``max_failures`` allows."""


class MissingPublishedFile(PublishedFeatureError):
    """A published feature file does not exist."""

    stage = "locate"


@dataclass(frozen=True)
class _Source:
    """Where one modality's features of a video live and how to read them."""

    files: tuple[Path, ...]  # arrays concatenated along D
    npz_key: str | None  # None: .npy files; else the key inside each .npz
    cut_to_shortest: bool  # lighthouse cuts several features to their shortest; UMT needs equal T


def _load_2d(path: Path, npz_key: str | None) -> np.ndarray:
    """One published array [T, D] as float32; PublishedFeatureError naming ``path`` otherwise."""
    if not path.is_file():
        raise MissingPublishedFile(f"missing file {path}")
    try:
        if npz_key is None:
            arr = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as npz:
                if npz_key not in npz.files:
                    raise PublishedFeatureError(f"{path}: no key {npz_key!r} (keys: {npz.files})")
                arr = npz[npz_key]
    except PublishedFeatureError:
        raise
    except ValueError as exc:  # numpy: "Object arrays cannot be loaded when allow_pickle=False"
        raise PublishedFeatureError(f"{path}: refused, it is not a plain numeric array ({exc})") from None
    except (OSError, EOFError) as exc:  # truncated or not a numpy file at all
        raise PublishedFeatureError(f"{path}: unreadable ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or 0 in arr.shape:
        raise PublishedFeatureError(f"{path}: expected a non-empty [T, D] array, got shape {np.shape(arr)}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise PublishedFeatureError(f"{path}: expected floating-point features, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise PublishedFeatureError(f"{path}: non-finite values")
    return arr.astype(np.float32, copy=False)  # [T, D]


def _num_rows(path: Path, npz_key: str | None) -> int:
    """T of a published [T, D] array, read from its header where possible (.npy memory-mapped)."""
    if npz_key is None and path.is_file():
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            if isinstance(arr, np.ndarray) and arr.ndim == 2:
                return int(arr.shape[0])
        except (ValueError, OSError, EOFError):
            pass  # fall through: _load_2d gives the precise error
    return int(_load_2d(path, npz_key).shape[0])


def _sources(layout: str, root: Path, vid: str, names: dict) -> dict[str, _Source]:
    """Both modalities' file lists for ``vid`` (paths joined safely under ``root``)."""
    if layout == "umt":
        return {
            "visual": _Source(
                (safe_join(root, "video_features", f"{vid}_rgb.npy"), safe_join(root, "video_features", f"{vid}_opt.npy")),
                None,
                cut_to_shortest=False,
            ),
            "audio": _Source((safe_join(root, "audio_features", f"{vid}.npy"),), None, cut_to_shortest=False),
        }
    dataset = names["dataset"]
    out = {}
    for modality in MODALITIES:
        feature_names = names[modality]
        feature_names = [feature_names] if isinstance(feature_names, str) else list(feature_names)
        files = tuple(safe_join(root, "features", dataset, check_id(n, "feature names"), f"{vid}.npz") for n in feature_names)
        out[modality] = _Source(files, "features", cut_to_shortest=True)
    return out


def _resolve_names(layout: str, root: Path, names: dict | None) -> dict:
    """``names`` completed with defaults; lighthouse's dataset folder found when unique."""
    resolved = {**DEFAULT_NAMES, **(names or {})}
    unknown = set(resolved) - {"visual", "audio", "dataset"}
    if unknown:
        raise ValueError(f"names: unknown keys {sorted(unknown)} (use visual, audio, dataset)")
    if layout == "lighthouse" and not resolved.get("dataset"):
        base = root / "features"
        found = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        if len(found) != 1:
            raise ValueError(
                f"{base}: give names['dataset'] (the folder under features/); found {found or 'none'}"
            )
        resolved["dataset"] = found[0]
    if layout == "lighthouse":
        check_id(resolved["dataset"], "names['dataset']")
    return resolved


def _source_rows(src: _Source) -> int:
    """T of a source: its files' common row count (UMT's RGB and flow must agree, as its
    ``torch.cat`` needs; lighthouse's several features are cut to their shortest)."""
    rows = [_num_rows(f, src.npz_key) for f in src.files]
    if not src.cut_to_shortest and len(set(rows)) > 1:
        raise PublishedFeatureError(
            "files disagree on the number of segments: "
            + ", ".join(f"{f} has {n}" for f, n in zip(src.files, rows))
        )
    return min(rows)


def _read_concat(src: _Source, T: int) -> np.ndarray:
    """The source's arrays cut to ``T`` rows and concatenated: [T, sum D]."""
    arrays = [_load_2d(f, src.npz_key)[:T] for f in src.files]  # [T, D_i] each
    return np.concatenate(arrays, axis=1)  # [T, sum D]


def _video_lengths(srcs: dict[str, _Source], modality: str) -> dict[str, int | None]:
    """Rows of each modality (None: the other modality's files are missing or unusable)."""
    lengths: dict[str, int | None] = {}
    for m, src in srcs.items():
        try:
            lengths[m] = _source_rows(src)
        except PublishedFeatureError:
            if m == modality:
                raise
            lengths[m] = None
    return lengths


def import_published(
    table: pd.DataFrame,
    layout: str,
    root: str | os.PathLike,
    modality: str,
    store_path: str | os.PathLike,
    names: dict | None = None,
    max_failures: int = 0,
    progress: bool = False,
) -> dict:
    """Import one modality's published features of the table's videos into ``store_path``.

    ``table``: the canonical segment table (``vid`` column; one row per annotated segment).
    ``names``: lighthouse feature folders, ``{"visual": "i3d" | [names], "audio": "pann",
    "dataset": folder under features/}`` (``dataset`` may be omitted when there is one folder).
    Per video: reads the arrays (``allow_pickle=False``), checks they are finite 2-D floats,
    cuts them to ``T = min(T_visual, T_audio, T_labels)`` and ``put``s ``[T, D]`` float32 with
    attrs ``num_label_segments``, ``num_published_segments``, ``truncated``. A video whose
    files are missing or unusable is recorded as a failure (with the reason) and the run goes on;
    videos already in the store are not rewritten. Raises ``RuntimeError`` at the end (after
    the store is finalized) if failures exceed ``max_failures``.

    Returns a JSON-serialisable summary: ``{"layout", "modality", "root", "names", "feature_dim",
    "num_videos", "imported", "already_done", "failed": {vid: reason}, "num_failures",
    "truncated": {vid: {"labels": n, "features": n, "lengths": {...}}}, "truncated_videos",
    "truncated_label_segments", "truncated_feature_segments", "other_modality_missing": [vid],
    "store", "failures_table"}``. The failures table is the store's ``<stem>_failures.csv``
    (stage ``locate`` for a missing file, ``load`` for an unusable one).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    if "vid" not in table.columns:
        raise ValueError("segment table lacks the 'vid' column")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"published features folder {root} does not exist")
    names = _resolve_names(layout, root, names)
    vids = table["vid"].astype(str)
    label_counts = vids.value_counts(sort=False).to_dict()  # vid -> T_labels
    order = list(dict.fromkeys(vids))

    store_attrs = {
        "backbone": f"published:{layout}:{_describe(layout, modality, names)}",
        "source": "published",
        "layout": layout,
        "modality": modality,
    }
    store = FeatureStore(store_path, store_attrs)
    keys = {vid: published_part_key(layout, root, check_id(vid, "segment table"), names, int(label_counts[vid]),
                                    store.attrs) for vid in order}
    done = store.resume(keys)  # parts of changed files or label counts are discarded and re-imported
    summary: dict = {
        "layout": layout, "modality": modality, "root": str(root), "names": names,
        "feature_dim": None, "num_videos": len(order), "imported": 0, "already_done": 0,
        "failed": {}, "truncated": {}, "other_modality_missing": [],
    }
    for vid in tqdm(order, desc=f"import {layout} {modality}", unit="video", disable=not progress):
        check_id(vid, "segment table")
        srcs = _sources(layout, root, vid, names)
        try:
            lengths = _video_lengths(srcs, modality)
            n_labels = int(label_counts[vid])
            known = [n for n in (lengths["visual"], lengths["audio"], n_labels) if n is not None]
            T = min(known)
            if lengths["visual" if modality == "audio" else "audio"] is None:
                summary["other_modality_missing"].append(vid)
            n_self = int(lengths[modality])
            cut = {"labels": n_labels - T, "features": n_self - T}
            if max(known) > T:
                summary["truncated"][vid] = {**cut, "lengths": {**lengths, "labels": n_labels}}
            if vid in done:
                summary["already_done"] += 1
                continue
            feats = _read_concat(srcs[modality], T)  # [T, D]
            if summary["feature_dim"] is None:
                summary["feature_dim"] = int(feats.shape[1])
            elif feats.shape[1] != summary["feature_dim"]:
                raise PublishedFeatureError(
                    f"{srcs[modality].files[0]}: {feats.shape[1]} features per segment, other videos have "
                    f"{summary['feature_dim']}"
                )
        except PublishedFeatureError as exc:
            summary["failed"][vid] = str(exc)
            store.record_failure(vid, exc.stage, exc)
            continue
        store.put(
            vid, feats, key=keys[vid],
            num_label_segments=n_labels, num_published_segments=n_self, truncated=max(known) - T,
        )
        summary["imported"] += 1
    summary["store"] = str(store.finalize(vids=order))
    summary["failures_table"] = str(failures_path(store_path))
    summary["num_failures"] = len(summary["failed"])
    summary["discarded_stale_parts"] = store.discarded["stale"]
    summary["discarded_torn_parts"] = store.discarded["torn"]
    summary["truncated_videos"] = len(summary["truncated"])
    summary["truncated_label_segments"] = sum(t["labels"] for t in summary["truncated"].values())
    summary["truncated_feature_segments"] = sum(t["features"] for t in summary["truncated"].values())
    if summary["num_failures"] > max_failures:
        first = next(iter(summary["failed"].items()))
        raise PublishedImportError(
            f"importing {layout} {modality} features from {root}: {summary['num_failures']} videos failed "
            f"(max_failures={max_failures}); first: {first[0]}: {first[1]}"
        )
    return summary


def published_part_key(layout: str, root: Path, vid: str, names: dict, num_label_segments: int, store_attrs) -> str:
    """The part key of an imported video: the fingerprints of both modalities' files (their
    lengths set the cut), its number of annotated segments and the store's attributes."""
    srcs = _sources(layout, Path(root), vid, names)
    content = [f"{f.name}={file_fingerprint(f)}" for m in MODALITIES for f in srcs[m].files]
    return part_key(content, f"num_label_segments={num_label_segments}", store_attrs)


def _describe(layout: str, modality: str, names: dict) -> str:
    if layout == "umt":
        return "i3d_rgb+i3d_flow" if modality == "visual" else "pann_cnn14"
    n = names[modality]
    return n if isinstance(n, str) else "+".join(n)
