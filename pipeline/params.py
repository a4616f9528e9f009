"""Reading ``params.yaml`` for the DVC stages.

``params.yaml`` holds base sections (``extract_visual``, ``train``, ...) and, under
``presets.<dataset>``, the values that differ per dataset (crop size, epochs, ...). A stage
asks for its section and gets the base merged with the selected dataset's preset, so
``dataset: tvsum`` alone switches every stage to the TVSum setting while ``dvc.yaml`` still
tracks exactly the keys each stage reads.

The file is read exactly as DVC reads it (ruamel.yaml, YAML 1.2, ``typ="safe"``, as
``dvc.utils.serialize.parse_yaml`` does), so ``lr: 1e-4`` or the ``1e-05`` that
``dvc exp run -S train.weight_decay=1e-5`` writes is a float for the stages as for DVC, and a
duplicated key is an error. Every section is validated (``params_schema``) before any work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .params_schema import DATASETS, ParamsError, validate_params
from .params_schema import merge as _merge
from .paths import REPO_ROOT

__all__ = ["DATASETS", "ParamsError", "backbone", "load_yaml_as_dvc", "parse_value", "raw_dir", "read_params", "section"]


def load_yaml_as_dvc(path: str | Path) -> Any:
    """The contents of a YAML file parsed as DVC parses params.yaml (YAML 1.2, safe loader)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return YAML(typ="safe").load(text) or {}
    except YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def parse_value(text: str) -> Any:
    """One value as DVC's ``-S key=value`` reads it (YAML 1.2): ``1e-4`` is a float, ``[0, 1]`` a list."""
    try:
        return YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise ParamsError(f"{text!r}: not a YAML value ({' '.join(str(exc).split())})") from None


def read_params(path: str | Path | None = None, validate: bool = True) -> dict[str, Any]:
    """The contents of ``params.yaml`` (default: the repository's), validated (``ParamsError``)."""
    path = Path(path) if path is not None else REPO_ROOT / "params.yaml"
    params = load_yaml_as_dvc(path)
    return validate_params(params, str(path)) if validate else params


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
