"""One ``hpcl highlight`` run: model file + videos -> per-video JSON, timeline, reel, and index.html.

Per video: probe; cut into segments as the model was trained (``segmentation``); extract
features with the pipeline's own extractor (``pipeline.extract.extract_visual`` /
``extract_audio`` on a one-video segment table, into a temporary feature store: the same
decoding, sampling, preprocessing and backbones as training, streamed, with a progress bar and
ETA); score with the model file's ensemble; choose and merge windows (``windows``); write
``<vid>.json``, ``<vid>_timeline.png`` and ``<vid>_reel.mp4``. A video that fails at any step is
reported with its reason and the run goes on; ``index.html`` covers every video that worked.

Long videos: the model attends over at most ``max_segments`` segments at once (default 512, far
more than any training video has); a longer video is scored in windows of ``max_segments``
segments hopping by half of that, and each segment takes its score from the window whose
centre is nearest to it, so memory stays bounded whatever the length.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..backbones import build_audio_backbone, build_visual_backbone
from ..decoding import frames_to_seconds, probe_video
from ..device import resolve_device
from ..extract import ExtractionError, extract_audio, extract_visual
from ..paths import REPO_ROOT, safe_join
from ..store import read_store, video_attrs
from .modelfile import HighlightModel, check_backbone, check_extractable, describe, file_sha256, load_model_file
from .page import write_page
from .reel import write_reel
from .segmentation import Segmentation, segment_video
from .timeline import plot_highlight_timeline
from .windows import default_budget, highlight_windows

MAX_SEGMENTS = 512
DEFAULT_WEIGHTS = {m: REPO_ROOT / "data" / "weights" / m / "weights.pt" for m in ("visual", "audio")}


def video_id(path: str | os.PathLike, taken: set[str]) -> str:
    """A safe, unique output name from a video's file name (unsafe characters -> '_')."""
    stem = re.sub(r"[^A-Za-z0-9_.\-]", "_", Path(path).stem).lstrip(".") or "video"
    vid, k = stem[:100], 1
    while vid in taken:
        k += 1
        vid = f"{stem[:96]}_{k}"
    taken.add(vid)
    return vid


class Extractors:
    """The visual and audio backbones the model file names, with the weights it was trained on."""

    def __init__(self, model: HighlightModel, device: torch.device, visual_weights: str | None = None,
                 audio_weights: str | None = None):
        check_extractable(model)
        feats = model.meta["features"]
        self.visual_cfg, self.audio_cfg = feats["visual"], feats["audio"]
        self.device = device
        self.visual = self._build("visual", build_visual_backbone, visual_weights, model,
                                  crop_size=int(self.visual_cfg["crop_size"]))
        self.audio = self._build("audio", build_audio_backbone, audio_weights, model)

    def _build(self, modality: str, build, given: str | None, model: HighlightModel, **kw):
        cfg = model.meta["features"][modality]
        name = cfg["backbone"]
        need = bool(cfg.get("weights_sha256"))
        path = Path(given) if given else (DEFAULT_WEIGHTS[modality] if need else None)
        if need and (path is None or not path.is_file()):
            raise FileNotFoundError(
                f"{model.path}: the {modality} backbone {name!r} needs its weights (sha256 {cfg['weights_sha256']}); "
                f"{path} does not exist: run `dvc repro weights_{modality}` or pass --{modality}-weights PATH")
        sha = file_sha256(path) if path is not None else None
        check_backbone(model, modality, name, sha)
        return build(name, weights_path=path, device=self.device, **kw)


def video_features(path: Path, vid: str, table: pd.DataFrame, ex: Extractors, work: Path,
                   progress: bool = True) -> tuple[np.ndarray, np.ndarray, bool]:
    """Features of one video through the pipeline's extractor: (visual [T, Dv], audio [T, Da], has_audio).
    ``table``: the video's segment-table rows (``segmentation.segment_video``); ``video`` is the
    file name inside ``path.parent``. Raises ExtractionError (its message names the reason)."""
    v, a = ex.visual_cfg, ex.audio_cfg
    short = int(v.get("decode_short_side") or 0) or None
    extract_visual(table, path.parent, ex.visual, work / "visual.h5", frames_per_segment=int(v["frames_per_segment"]),
                   device=ex.device, progress=progress, weights_sha256=v.get("weights_sha256"),
                   decode_short_side=short, num_workers=0, parts_dir=work / "visual.parts", desc=f"visual {vid}")
    extract_audio(table, path.parent, ex.audio, work / "audio.h5", min_window_s=float(a.get("min_window_s", 1.0)),
                  device=ex.device, progress=progress, weights_sha256=a.get("weights_sha256"), num_workers=0,
                  parts_dir=work / "audio.parts", desc=f"audio {vid}")
    visual = read_store(work / "visual.h5")[vid]  # [T, Dv]
    has_audio = bool(video_attrs(work / "audio.h5")[vid].get("has_audio", True))
    audio = read_store(work / "audio.h5")[vid]  # [T, Da] (zeros without audio)
    return visual, audio, has_audio


def score_video(model: HighlightModel, visual: np.ndarray, audio: np.ndarray, audio_mask: np.ndarray,
                domain: str | None, device: torch.device, max_segments: int = MAX_SEGMENTS) -> np.ndarray:
    """Scores [T]; videos longer than ``max_segments`` in half-overlapping windows (module docstring)."""
    T = len(visual)
    if T <= max_segments:
        return model.score(visual, audio, audio_mask, domain, device)
    hop = max(1, max_segments // 2)
    starts = list(range(0, T - max_segments + 1, hop))
    if starts[-1] + max_segments < T:
        starts.append(T - max_segments)
    centres = np.array(starts) + max_segments / 2.0
    owner = np.argmin(np.abs(np.arange(T)[:, None] + 0.5 - centres[None, :]), axis=1)  # [T] window per segment
    out = np.zeros(T, np.float64)
    for w, s in enumerate(starts):
        sl = slice(s, s + max_segments)
        scores = model.score(visual[sl], audio[sl], audio_mask[sl], domain, device)  # [W]
        mine = owner[sl] == w
        out[s:s + max_segments][mine] = scores[mine]
    return out


def truth_spans(labels: pd.DataFrame | None, vid: str, info) -> list[tuple[float, float]] | None:
    """Ground-truth highlight spans of ``vid`` (seconds) from a segment table, or None."""
    if labels is None:
        return None
    rows = labels[labels["vid"].astype(str) == vid]
    if rows.empty:
        return None
    spans = []
    for _, r in rows[rows["label"] > 0].iterrows():
        if np.isfinite(r.get("start_s", np.nan)) and np.isfinite(r.get("end_s", np.nan)):
            spans.append((float(r["start_s"]), float(r["end_s"])))
        else:
            spans.append((frames_to_seconds(float(r["start_frame"]), info.frame_starts_s, info.fps),
                          frames_to_seconds(float(r["end_frame"]), info.frame_starts_s, info.fps)))
    return spans


def highlight_one(path: Path, vid: str, model: HighlightModel, ex: Extractors, seg: Segmentation, out_dir: Path,
                  top_seconds: float | None, top_k: int | None, domain: str | None,
                  labels: pd.DataFrame | None, progress: bool, max_segments: int) -> dict:
    """Everything for one video; returns the ``<vid>.json`` dict (also written)."""
    info = probe_video(path)
    table = segment_video(vid, path.name, info, seg)
    with tempfile.TemporaryDirectory(prefix="hpcl-highlight-") as tmp:
        visual, audio, has_audio = video_features(path, vid, table, ex, Path(tmp), progress)
    T = len(visual)
    audio_mask = np.full(T, has_audio, bool)  # [T]
    d = model.domain(domain)
    scores = score_video(model, visual, audio, audio_mask, d, ex.device, max_segments)  # [T]
    start_s, end_s = table["start_s"].to_numpy(np.float64), table["end_s"].to_numpy(np.float64)
    wins = highlight_windows(start_s, end_s, scores, top_seconds, top_k, info.duration_s)
    spans = sorted((w.start_s, w.end_s) for w in wins)
    reel = write_reel(path, spans, safe_join(out_dir, f"{vid}_reel.mp4"), info=info)
    reel["file"] = f"{vid}_reel.mp4"
    reel["path"] = reel["file"]
    truth = truth_spans(labels, vid, info)
    plot_highlight_timeline(safe_join(out_dir, f"{vid}_timeline.png"), start_s, end_s, scores, spans,
                            f"{vid}  ({model.meta['group']} model)", truth)
    windows = [[w.start_s, w.end_s, w.score] for w in wins]
    result = {
        "vid": vid,
        "video": str(path),
        "duration_s": info.duration_s,
        "fps": info.fps,
        "num_frames": info.num_frames,
        "rotation": info.rotation,
        "has_audio": has_audio,
        "domain": d,
        "segments": [{"start_s": float(a), "end_s": float(b), "score": float(s)}
                     for a, b, s in zip(start_s, end_s, scores)],
        "windows": windows,
        "pred_relevant_windows": windows,
        "pred_saliency_scores": [float(s) for s in scores],
        "selection": {"top_k": top_k} if top_k else
                     {"top_seconds": float(top_seconds) if top_seconds else default_budget(info.duration_s)},
        "reel": reel,
        "timeline": f"{vid}_timeline.png",
        "truth_windows": truth,
        "model": describe(model),
    }
    with open(safe_join(out_dir, f"{vid}.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1)
        fh.write("\n")
    return result


def highlight_videos(
    videos: Sequence[str | os.PathLike],
    model_path: str | os.PathLike | HighlightModel,
    out_dir: str | os.PathLike,
    top_seconds: float | None = None,
    top_k: int | None = None,
    segment_seconds: float | None = None,
    device: str = "auto",
    domain: str | None = None,
    labels: pd.DataFrame | None = None,
    visual_weights: str | None = None,
    audio_weights: str | None = None,
    progress: bool = True,
    max_segments: int = MAX_SEGMENTS,
    title: str = "Highlights",
    page: bool = True,
) -> dict:
    """Highlights for every video in ``videos`` into ``out_dir`` (module docstring).

    Returns {"videos": [per-video result dicts], "failures": [{"video", "stage", "error"}],
    "index": path of index.html (None when no video worked)}; also writes ``out_dir/run.json``.
    ``page=False`` leaves index.html and run.json to the caller (a batch over several models).
    Errors in the model file or the backbones stop the run before any video (they concern all).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model_path if isinstance(model_path, HighlightModel) else load_model_file(model_path)
    dev = resolve_device(device)
    seg = Segmentation.from_dict(model.meta["segmentation"], str(model.path)).with_seconds(segment_seconds)
    ex = Extractors(model, dev, visual_weights, audio_weights)
    model.domain(domain)  # a shared model without --domain fails here, once
    results, failures, taken = [], [], set()
    for video in videos:
        path = Path(video)
        vid = video_id(path, taken)
        try:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: video file not found")
            results.append(highlight_one(path, vid, model, ex, seg, out_dir, top_seconds, top_k, domain, labels,
                                         progress, max_segments))
        except (ExtractionError, OSError, ValueError, RuntimeError) as exc:
            failures.append({"video": str(path), "vid": vid, "error": f"{type(exc).__name__}: {exc}"})
    if not page:
        return {"videos": results, "failures": failures, "index": None}
    index = write_page(out_dir, results, failures, title) if results else None
    summary = {"videos": [r["vid"] for r in results], "failures": failures,
               "index": index.name if index else None, "model": describe(model)}
    with open(out_dir / "run.json", "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
        fh.write("\n")
    return {"videos": results, "failures": failures, "index": str(index) if index else None}
