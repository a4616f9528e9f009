"""The self-contained model file: everything ``hpcl highlight`` needs to score a new video.

One file per trained group (a domain, or the shared model), written by ``export_run`` from a
training run directory (``data/models/<dataset>/``: ``history.json`` with ``groups[<group>]``
``seeds`` and ``checkpoints``, one ``state_dict`` per seed). It is a ``torch.save`` of plain
containers only, so ``torch.load(weights_only=True)`` reads it (no pickle code runs)::

    {"format": "hpcl-model", "format_version": 1,
     "meta": "<JSON text>",            # below
     "states": [state_dict, ...],      # one per seed, in meta["seeds"] order
     "content_sha256": "<hex>"}        # over meta and every tensor (name, dtype, shape, bytes)

``meta``: group, dataset, domains, domain_index, num_domains, visual_dim, audio_dim,
model_config (``ModelConfig`` fields), seeds, ensemble ("mean"), features (source, and per
modality the backbone, its weights' sha256 and the extraction settings read from the feature
stores), segmentation (unit, length, stride), metrics (the evaluate stage's metrics file),
params_sha256. Whatever the model fits on training data (input normalisation, projections) is
a buffer of its ``state_dict`` and travels in ``states``.

The seeds form one ensemble: a segment's score is the mean over the seeds of the fused highlight
probability (``pipeline.train.predict``). ``load_model_file`` checks the format, the version and
the content hash (a truncated, edited or foreign file is a :class:`ModelFileError` naming the
file) and builds every seed's model with a strict ``load_state_dict``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..align import VideoItem
from ..model import ModelConfig, build_model
from ..paths import check_id, safe_join
from ..batching import predict
from ..errors import PipelineError

FORMAT = "hpcl-model"
FORMAT_VERSION = 1
# What a user needs instead, for features this project's extractors cannot compute.
IMPORTED_EXTRACTORS = {
    "umt": "UMT's released feature extractors (I3D RGB + optical-flow video features, PANN Cnn14 audio features)",
    "lighthouse": "lighthouse's feature extractor for the features named in the model file",
}


class ModelFileError(PipelineError, ValueError):
    """A model file that cannot be used: unreadable, foreign, tampered with, or not for this input."""


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_sha256(meta_text: str, states: Sequence[Mapping[str, torch.Tensor]]) -> str:
    """sha256 over the meta JSON text and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256(meta_text.encode("utf-8"))
    for k, state in enumerate(states):
        for name in sorted(state):
            t = state[name].detach().cpu().contiguous()
            h.update(f"\n{k}/{name}/{t.dtype}/{tuple(t.shape)}\n".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- export


def feature_settings(visual_attrs: Mapping, audio_attrs: Mapping) -> dict:
    """The ``features`` block from the two feature stores' file attributes."""
    def pick(attrs: Mapping, keys: Sequence[str]) -> dict:
        return {k: attrs[k] for k in keys if k in attrs}

    published = visual_attrs.get("source") == "published" or audio_attrs.get("source") == "published"
    source = str(visual_attrs.get("layout") or audio_attrs.get("layout")) if published else "extract"
    return {
        "source": source,
        "visual": pick(visual_attrs, ("backbone", "weights_sha256", "feature_dim", "frames_per_segment", "crop_size",
                                      "decode_short_side")),
        "audio": pick(audio_attrs, ("backbone", "weights_sha256", "feature_dim", "sample_rate", "min_window_s",
                                    "downmix")),
    }


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from exc


def export_group(model_dir: str | os.PathLike, group: str, out_path: str | os.PathLike, dataset: str, features: dict,
                 segmentation: dict, metrics: dict | None = None, params_sha256: str = "") -> dict:
    """Write the model file of ``group`` of the run in ``model_dir`` to ``out_path``; return its meta."""
    model_dir = Path(model_dir)
    with open(model_dir / "history.json", encoding="utf-8") as fh:
        history = json.load(fh)
    groups = history.get("groups") or {}
    if group not in groups:
        raise ModelFileError(f"{model_dir / 'history.json'}: no group {group!r} (groups: {sorted(groups)})")
    g = groups[group]
    for key in ("checkpoints", "seeds", "domains", "domain_index", "num_domains", "visual_dim", "audio_dim"):
        if key not in g:
            raise ModelFileError(f"{model_dir / 'history.json'}: groups[{group!r}] has no key {key!r}")
    if len(g["checkpoints"]) != len(g["seeds"]) or not g["checkpoints"]:
        raise ModelFileError(f"{model_dir / 'history.json'}: groups[{group!r}] needs one checkpoint per seed")
    states = [_load_state(safe_join(model_dir, rel)) for rel in g["checkpoints"]]
    meta = {
        "group": group,
        "dataset": dataset,
        "domains": list(g["domains"]),
        "domain_index": dict(g["domain_index"]),
        "num_domains": int(g["num_domains"]),
        "visual_dim": int(g["visual_dim"]),
        "audio_dim": int(g["audio_dim"]),
        "model_config": history["model_config"],
        "seeds": [int(s) for s in g["seeds"]],
        "ensemble": "mean over seeds of the fused highlight probability",
        "features": features,
        "segmentation": segmentation,
        "metrics": metrics,
        "params_sha256": params_sha256,
    }
    _build(meta, states, str(out_path))  # refuse to write a file that would not load
    meta_text = json.dumps(meta, sort_keys=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "meta": meta_text, "states": states,
               "content_sha256": content_sha256(meta_text, states)}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    part = out_path.with_name(out_path.name + ".part")
    torch.save(payload, part)
    os.replace(part, out_path)
    return meta


def export_run(model_dir: str | os.PathLike, out_dir: str | os.PathLike, dataset: str, features: dict,
               segmentation: dict, metrics: dict | None = None, params_sha256: str = "") -> dict:
    """One model file per group of the run: ``out_dir/<group>.pt`` and ``out_dir/models.json``
    ({group: {"file", "sha256", "domains", "seeds"}}, plus a ``domains`` map domain -> file)."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    with open(model_dir / "history.json", encoding="utf-8") as fh:
        groups = sorted((json.load(fh).get("groups") or {}))
    out_dir.mkdir(parents=True, exist_ok=True)
    index: dict = {"dataset": dataset, "models": {}, "domains": {}}
    for group in groups:
        path = safe_join(out_dir, f"{check_id(group, 'history.json (group)')}.pt")
        meta = export_group(model_dir, group, path, dataset, features, segmentation, metrics, params_sha256)
        index["models"][group] = {"file": path.name, "sha256": file_sha256(path), "domains": meta["domains"],
                                  "seeds": meta["seeds"]}
        for d in meta["domains"]:
            index["domains"][d] = path.name
    with open(out_dir / "models.json", "w", encoding="utf-8") as fh:
        json.dump(index, fh, indent=2, sort_keys=True)
        fh.write("\n")
    return index


# ----------------------------------------------------------------------------- load


def _build(meta: dict, states: Sequence[Mapping[str, torch.Tensor]], where: str) -> list[torch.nn.Module]:
    try:
        cfg = ModelConfig.from_stored(dict(meta["model_config"]))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{where}: model_config is not usable by this version ({exc})") from exc
    models = []
    for seed, state in zip(meta["seeds"], states):
        model = build_model(cfg, meta["visual_dim"], meta["audio_dim"], meta["num_domains"])
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelFileError(f"{where}: the weights of seed {seed} do not fit the model config ({exc})") from exc
        models.append(model.eval())
    return models


@dataclass
class HighlightModel:
    """A loaded model file: ``meta`` (see the module docstring) and one model per seed."""

    path: Path
    sha256: str
    meta: dict
    models: list

    def domain(self, requested: str | None) -> str:
        """The domain to score with: ``requested``, or the only one."""
        domains = self.meta["domains"]
        if requested is None:
            if len(domains) == 1:
                return domains[0]
            raise ModelFileError(f"{self.path}: this model serves several domains {domains}: pass --domain")
        if requested not in domains:
            raise ModelFileError(f"{self.path}: domain {requested!r} is not one of its domains {domains}")
        return requested

    def score(self, visual: np.ndarray, audio: np.ndarray, audio_mask: np.ndarray, domain: str | None = None,
              device: torch.device | str = "cpu") -> np.ndarray:
        """Segment scores [T] float64: the mean over seeds of the fused highlight probability.

        visual [T, Dv], audio [T, Da] (zeros where there is none), audio_mask [T] bool.
        """
        dv, da = self.meta["visual_dim"], self.meta["audio_dim"]
        if visual.ndim != 2 or visual.shape[1] != dv or audio.ndim != 2 or audio.shape[1] != da:
            raise ModelFileError(f"{self.path}: features of shapes {visual.shape} and {audio.shape}, the model needs "
                                 f"[T, {dv}] visual and [T, {da}] audio")
        d = self.domain(domain)
        T = visual.shape[0]
        item = VideoItem(vid="video", domain=d, split="test", visual=visual.astype(np.float32),
                         audio=audio.astype(np.float32), audio_mask=audio_mask.astype(bool),
                         labels=np.zeros(T, np.int64), targets=np.zeros(T, np.float32), scores=np.zeros((T, 1), np.float32))
        device = torch.device(device)
        probs = []
        for model in self.models:
            probs.append(predict(model.to(device), [item], self.meta["domain_index"], device)["video"])  # [T]
        return np.mean(probs, axis=0)


def load_model_file(path: str | os.PathLike) -> HighlightModel:
    """Read and check a model file (see the module docstring) -> :class:`HighlightModel`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable HPCL model file ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an HPCL model file (no format {FORMAT!r}); export one with `hpcl export`")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path}: model file format version {version!r}, this version reads {FORMAT_VERSION}")
    meta_text, states = payload.get("meta"), payload.get("states")
    if not isinstance(meta_text, str) or not isinstance(states, list) or not states:
        raise ModelFileError(f"{path}: model file lacks 'meta' or 'states'")
    expected = payload.get("content_sha256")
    actual = content_sha256(meta_text, states)
    if actual != expected:
        raise ModelFileError(f"{path}: the file's contents do not match its recorded sha256 (recorded {expected}, "
                             f"computed {actual}): it was modified or damaged after export")
    meta = json.loads(meta_text)
    if len(meta.get("seeds", [])) != len(states):
        raise ModelFileError(f"{path}: {len(states)} weight sets for seeds {meta.get('seeds')}")
    return HighlightModel(path, file_sha256(path), meta, _build(meta, states, str(path)))


def check_extractable(model: HighlightModel) -> None:
    """Refuse a model trained on imported features, naming the extractor it would need."""
    feats = model.meta["features"]
    source = feats.get("source", "extract")
    if source != "extract":
        need = IMPORTED_EXTRACTORS.get(source, f"the extractor of the {source!r} features")
        raise ModelFileError(
            f"{model.path}: this model was trained on features imported from {source} "
            f"(visual {feats['visual'].get('backbone')!r}, audio {feats['audio'].get('backbone')!r}); this project's "
            f"extractors cannot compute them for a new video. It needs {need}. Train on features this project "
            f"extracts (features.source: extract) to use `hpcl highlight`."
        )


def check_backbone(model: HighlightModel, modality: str, name: str, weights_sha256: str | None) -> None:
    """The backbone about to extract ``modality`` must be the one the model was trained on."""
    want = model.meta["features"][modality]
    want_name, want_sha = want.get("backbone"), want.get("weights_sha256") or ""
    if name != want_name or (weights_sha256 or "") != want_sha:
        raise ModelFileError(
            f"{model.path}: {modality} backbone mismatch: the model was trained on {want_name!r} with weights "
            f"sha256 {want_sha or '(none)'}, the extractor has {name!r} with weights sha256 {weights_sha256 or '(none)'}"
        )


def describe(model: HighlightModel) -> dict:
    """What the output JSON records about the model."""
    m = model.meta
    return {"file": str(model.path), "sha256": model.sha256, "group": m["group"], "dataset": m["dataset"],
            "seeds": m["seeds"], "ensemble": m["ensemble"],
            "backbones": {k: {"name": m["features"][k].get("backbone"),
                              "weights_sha256": m["features"][k].get("weights_sha256")} for k in ("visual", "audio")},
            "segmentation": m["segmentation"], "params_sha256": m["params_sha256"]}


def params_sha256(sections: Mapping) -> str:
    """sha256 of the canonical JSON of the parameter sections a model depends on."""
    return hashlib.sha256(json.dumps(sections, sort_keys=True, default=str).encode()).hexdigest()
