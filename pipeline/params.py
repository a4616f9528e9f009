"""Reading ``params.yaml`` for the DVC stages.

``params.yaml`` holds base sections (``extract_visual``, ``train``, ...) and, under
``presets.<dataset>``, the values that differ per dataset (crop size, epochs, ...). A stage
asks for its section and gets the base merged with the selected dataset's preset, so
``dataset: tvsum`` alone switches every stage to the TVSum setting while ``dvc.yaml`` still
tracks exactly the keys each stage reads.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .paths import REPO_ROOT

DATASETS = ("demo", "youtube_highlights", "tvsum")


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_params(path: str | Path | None = None) -> dict[str, Any]:
    """The raw contents of ``params.yaml`` (default: the repository's)."""
    path = Path(path) if path is not None else REPO_ROOT / "params.yaml"
    with open(path, encoding="utf-8") as fh:
        params = yaml.safe_load(fh) or {}
    dataset = params.get("dataset")
    if dataset not in DATASETS:
        raise ValueError(f"{path}: dataset must be one of {DATASETS}, got {dataset!r}")
    return params


def section(name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Section ``name`` with the current dataset's preset merged over it."""
    params = params if params is not None else read_params()
    base = params.get(name) or {}
    preset = ((params.get("presets") or {}).get(params["dataset"]) or {}).get(name) or {}
    return _merge(base, preset)


def backbone(modality: str, params: dict[str, Any] | None = None) -> str:
    """The dataset's backbone for ``modality`` (``presets.<dataset>.backbones.<modality>``)."""
    params = params if params is not None else read_params()
    try:
        return params["presets"][params["dataset"]]["backbones"][modality]
    except (KeyError, TypeError):
        raise ValueError(f"params.yaml: presets.{params['dataset']}.backbones.{modality} is not set") from None


def raw_dir(params: dict[str, Any]) -> Path:
    """``data/raw/<dataset>``: annotations/, videos/, and optionally features/."""
    return REPO_ROOT / "data" / "raw" / params["dataset"]
