"""A finished pipeline run -> model files (``data/export/<dataset>/<group>.pt`` + ``models.json``).

Gathers what the model file records from the run's own products: the checkpoints and
``history.json`` (``data/models/<dataset>/``), the feature stores' attributes (backbone, weights
sha256, frames per segment, crop, sample rate...: the extraction settings as they were used), the
training segment table (segment length and stride, measured), the metrics file and a hash of the
parameters. Used by the ``export`` DVC stage and ``hpcl export``.

Segmentation unit (``export.segment_unit``): ``auto`` = ``frames`` for YouTube Highlights (the
authors' 100-frame clips at each video's own frame rate) and ``seconds`` for everything else
(TVSum's 2 s shots, the demo's 2 s segments), converted from frames with each training video's
frame rate from the feature store when the table has only frames.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

from ..annotations import read_segment_table
from ..store import store_attrs, video_attrs
from .modelfile import export_run, feature_settings, params_sha256
from .segmentation import segmentation_from_table

PARAM_SECTIONS = ("prepare", "features", "extract_visual", "extract_audio", "align", "model", "loss", "train")


def segment_unit(dataset: str, unit: str) -> str:
    if unit == "auto":
        return "frames" if dataset == "youtube_highlights" else "seconds"
    if unit not in ("frames", "seconds"):
        raise ValueError(f"export.segment_unit must be auto, frames or seconds, got {unit!r}")
    return unit


def model_params(params: Mapping, dataset: str, section) -> dict:
    """The parameter values a model depends on (hashed into the model file): the resolved
    sections ``PARAM_SECTIONS`` and the dataset's backbones."""
    out = {name: section(name, params) for name in PARAM_SECTIONS}
    out["dataset"] = dataset
    out["backbones"] = ((params.get("presets") or {}).get(dataset) or {}).get("backbones")
    return out


def export_dataset(root: str | os.PathLike, dataset: str, unit: str = "auto", params: Mapping | None = None,
                   out_dir: str | os.PathLike | None = None) -> dict:
    """Write the model files of the run of ``dataset`` under ``root`` (the repository); return the
    ``models.json`` index. ``params``: the model's parameter values (see ``model_params``)."""
    root = Path(root)
    model_dir = root / "data" / "models" / dataset
    visual_store = root / "data" / "features" / dataset / "visual" / "features.h5"
    audio_store = root / "data" / "features" / dataset / "audio" / "features.h5"
    features = feature_settings(store_attrs(visual_store), store_attrs(audio_store))
    table = read_segment_table(root / "data" / "prepared" / dataset / "segments.csv")
    table = table[table["split"].astype(str) == "train"]
    fps = {vid: float(a["fps"]) for vid, a in video_attrs(visual_store).items() if a.get("fps")}
    unit = segment_unit(dataset, unit)
    if unit == "seconds" and features["source"] != "extract" and not fps:
        unit = "frames"  # imported features: no frame rates known; such a model cannot run anyway
    segmentation = segmentation_from_table(table, unit, fps).to_dict()
    metrics_path = root / "metrics" / f"{dataset}.json"
    metrics = None
    if metrics_path.is_file():
        with open(metrics_path, encoding="utf-8") as fh:
            metrics = json.load(fh)
    out = Path(out_dir) if out_dir is not None else root / "data" / "export" / dataset
    return export_run(model_dir, out, dataset, features, segmentation, metrics,
                      params_sha256(params) if params is not None else "")
