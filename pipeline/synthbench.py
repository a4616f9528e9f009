"""Benchmark-like datasets: the real label sequences with synthetic planted features.

The benchmark videos are not available here, but their labels are. A model that only learns on
the demo (whose highlights are easy to separate) may fail on benchmark-sized data: two 2048-d
inputs and a few dozen training videos per domain. This module writes a dataset with the real
YouTube Highlights (or TVSum) label sequences and synthetic features of the real sizes, in the
layouts users with published features have (UMT's for YouTube Highlights, lighthouse's for
TVSum), so the pipeline runs on it through ``features.source`` exactly as on released features.

Feature model, per video of T segments and per modality m (visual, audio), D = 2048:

- a dataset-wide random basis ``B_m`` [R, D] (R = ``latent_dim``) and a non-negative base level
  ``mu_m`` [D]; per video a scene latent ``s ~ N(0, scene_std^2 I_R)`` and a full-width offset
  ``o ~ N(0, offset_std^2 I_D)`` (per-video scene offsets);
- per segment a latent that drifts smoothly (AR(1), coefficient ``drift``) and i.i.d. full-width
  noise ``N(0, noise_std^2)``;
- cues: one random unit direction per (domain, modality), amplitude ``cue`` (TVSum: scaled by
  the shot's mean annotator score). A highlight segment carries the cue with probability
  ``p_cue`` in both modalities at once, the audio copy shifted by the video's delay
  (uniform in ``-max_shift..max_shift`` segments: audio-visual asynchrony); single-modality
  distractors cover about ``p_distractor`` of the non-highlight segments in runs as long as the
  video's highlight runs, each run in ONE modality, its segments carrying the cue with
  probability ``p_cue`` and as strong as the video's mean highlight strength: neither one
  modality nor temporal context can tell them from highlights, only both modalities together
  (``distractor_runs = False``: isolated distractor segments, which context alone separates);
- values pass through a ReLU (post-ReLU-like, as pooled I3D / PANN features are).

``calibrate`` reports the chance level (random scores, several draws) and a per-segment linear
probe (scikit-learn's logistic regression on the training videos' whitened PCA-64 features,
scored on the test videos): the defaults (``cue = 0.3``) put the probe between 0.70 and 0.80
umt mAP on the two YouTube Highlights domains used in README; it also reports a context probe
(each modality's whitened PCA-64 with +-1 segment of context, visual only and both) and the cue
oracle (:func:`cue_oracle_scores`). ``train_draws = K`` plants each training video K times with
fresh features, a data-size study (:func:`_draw_id`). :func:`known_cue_items` (a diagnosis,
``benchmarks/tvsum_known_cue.py``) hands a model low-dimensional inputs that hold the planted
cue direction (or one estimated from the training labels, :func:`lda_direction`), to tell the
cost of finding the cue from the model's use of it. Everything is seeded: the same arguments
give the same files.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from . import metrics
from .align import VideoItem
from .annotations import VideoAnnotation, read_authors, read_lighthouse_jsonl
from .batching import items_table
from .paths import check_id, safe_join

FEATURE_DIM = 2048


@dataclass
class SynthConfig:
    """Difficulty knobs of the planted features (defaults: calibrated, see the module docstring)."""

    latent_dim: int = 32
    scene_std: float = 1.0
    offset_std: float = 0.3
    drift: float = 0.8
    noise_std: float = 1.0
    cue: float = 0.3
    p_cue: float = 0.6
    p_distractor: float = 0.25
    max_shift: int = 1
    base: float = 0.5
    distractor_runs: bool = True
    train_draws: int = 1  # a data-size study, not difficulty: each training video K times (see _draw_id)

    def __post_init__(self) -> None:
        if self.train_draws < 1:
            raise ValueError(f"train_draws must be >= 1, got {self.train_draws}")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[(start, length)] of the runs of True in a 1-d bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2])]


def _distractor_runs(g: np.random.Generator, highlight: np.ndarray, p_distractor: float,
                     p_cue: float) -> tuple[np.ndarray, np.ndarray]:
    """Single-modality distractors laid out like the video's highlights: runs whose lengths are
    drawn from the video's highlight run lengths, placed on non-highlight segments until about
    ``p_distractor`` of them are covered, each run in one modality (drawn per run), its segments
    carrying the cue with probability ``p_cue`` as highlight segments do. Temporal context alone
    therefore cannot tell a distractor run from a highlight; only the second modality can.
    Returns (distract [T] bool, in_audio [T] bool)."""
    T = len(highlight)
    lengths = [n for _, n in _runs(highlight)] or [max(1, T // 10)]
    target = int(round(p_distractor * int((~highlight).sum())))
    covered = np.zeros(T, bool)
    in_audio = np.zeros(T, bool)
    for _ in range(4 * T):  # bounded: each pass covers a segment or lands on a short gap
        free = np.flatnonzero(~highlight & ~covered)
        if covered.sum() >= target or free.size == 0:
            break
        t, n, audio = int(g.choice(free)), int(g.choice(lengths)), bool(g.random() < 0.5)
        while t < T and n > 0 and not highlight[t] and not covered[t]:
            covered[t], in_audio[t] = True, audio
            t, n = t + 1, n - 1
    return covered & (g.random(T) < p_cue), in_audio


def _rng(seed: int, *names: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def _unit(rng: np.random.Generator, d: int) -> np.ndarray:
    v = rng.standard_normal(d)
    return v / np.linalg.norm(v)


class _Planter:
    """Draws one video's [T, D] visual and audio features from its per-segment cue strengths."""

    def __init__(self, cfg: SynthConfig, seed: int, domains: list[str]):
        self.cfg, self.seed = cfg, seed
        g = _rng(seed, "dataset")
        R, D = cfg.latent_dim, FEATURE_DIM
        self.basis = {m: g.standard_normal((R, D)) / np.sqrt(R) for m in ("visual", "audio")}  # [R, D]
        self.mu = {m: cfg.base * g.random(D) for m in ("visual", "audio")}  # [D]
        self.cue_dir = {(d, m): _unit(_rng(seed, "cue", d, m), D) * np.sqrt(D) for d in domains for m in ("visual", "audio")}

    def unit_cues(self) -> dict:
        """(domain, modality) -> the cue's unit direction [D] (what a model would have to find)."""
        return {k: v / np.linalg.norm(v) for k, v in self.cue_dir.items()}

    def video(self, vid: str, domain: str, strength: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
        """strength [T] in [0, 1] (0 = not a highlight) -> visual [T, D], audio [T, D], facts."""
        cfg = self.cfg
        g = _rng(self.seed, "video", vid)
        T, D, R = len(strength), FEATURE_DIM, cfg.latent_dim
        shift = int(g.integers(-cfg.max_shift, cfg.max_shift + 1)) if cfg.max_shift > 0 else 0
        highlight = strength > 0
        planted = highlight & (g.random(T) < cfg.p_cue)  # [T] both modalities carry the cue
        if cfg.distractor_runs:
            distract, distract_audio = _distractor_runs(g, highlight, cfg.p_distractor, cfg.p_cue)
        else:  # isolated segments, each in a random modality
            distract = ~highlight & (g.random(T) < cfg.p_distractor)  # [T] one modality only
            distract_audio = g.random(T) < 0.5  # [T] which modality the distractor is in
        # a distractor is as strong as the video's typical highlight (TVSum strengths are < 1)
        d_amp = float(strength[highlight].mean()) if highlight.any() else 1.0
        amp_v = np.where(planted, strength, 0.0) + np.where(distract & ~distract_audio, d_amp, 0.0)  # [T]
        amp_a_unshifted = np.where(planted, strength, 0.0)
        amp_a = np.zeros(T)
        src = np.arange(T) - shift  # audio at t carries the visual event of t - shift
        ok = (src >= 0) & (src < T)
        amp_a[ok] = amp_a_unshifted[src[ok]]
        amp_a = amp_a + np.where(distract & distract_audio, d_amp, 0.0)
        out = {}
        for m, amp in (("visual", amp_v), ("audio", amp_a)):
            scene = g.standard_normal(R) * cfg.scene_std  # [R]
            lat = np.empty((T, R))
            z = g.standard_normal(R)
            for t in range(T):  # AR(1) drift around the scene
                z = cfg.drift * z + np.sqrt(1 - cfg.drift**2) * g.standard_normal(R)
                lat[t] = z
            x = (scene + lat) @ self.basis[m]  # [T, D]
            x += g.standard_normal(D) * cfg.offset_std  # per-video offset
            x += g.standard_normal((T, D)) * cfg.noise_std
            x += cfg.cue * amp[:, None] * self.cue_dir[(domain, m)][None, :]
            out[m] = np.maximum(x + self.mu[m], 0.0).astype(np.float32)
        facts = {"shift": shift, "planted": int(planted.sum()), "distractors": int(distract.sum())}
        return out["visual"], out["audio"], facts


def _draw_id(vid: str, k: int) -> str:
    """The id of draw ``k`` of a training video: draw 0 is the video itself, draw k >= 1 is
    ``<vid>_draw<k>``, the same labels with features drawn afresh (same dataset-wide basis and
    cue directions, new scene, drift, noise, delay and distractors). ``train_draws = K`` thus
    gives K times the training videos while the test videos stay the real split's: what the
    model would learn from more videos of the same label statistics."""
    return vid if k == 0 else f"{vid}_draw{k}"


def _plant(planter: "_Planter", cfg: SynthConfig, v: VideoAnnotation, split: str, strength: np.ndarray,
           dataset: str, items: list, videos: dict, lists: dict, facts: dict) -> None:
    """Plant one labelled video (and, in the training split, its ``train_draws - 1`` extra draws)."""
    for k in range(cfg.train_draws if split == "train" else 1):
        ann = v if k == 0 else replace(v, vid=_draw_id(v.vid, k), aliases=())
        vis, aud, f = planter.video(ann.vid, ann.domain, strength)
        items.append(_item(ann, split, vis, aud, dataset))
        videos[ann.vid] = ann
        if k > 0:
            lists[ann.domain]["train"].append(ann.vid)
        facts["shifts"][str(f["shift"])] = facts["shifts"].get(str(f["shift"]), 0) + 1


def _split_lists(splits_file: Path, dataset: str, domains: list[str] | None, rotation: int = 0) -> dict:
    with open(splits_file, encoding="utf-8") as fh:
        splits = json.load(fh)[dataset]
    domains = sorted(splits) if domains is None else domains
    missing = [d for d in domains if d not in splits]
    if missing:
        raise ValueError(f"{splits_file}: no split lists for {missing} (has {sorted(splits)})")
    lists = {d: {part: list(vids) for part, vids in splits[d].items()} for d in domains}  # copies: draws are appended
    return rotate_split(lists, rotation, str(splits_file))


def rotate_split(lists: dict, rotation: int, source: str = "split lists") -> dict:
    """``lists`` ({domain: {"train": [...], "val": [...]}}) with another held-out set: per domain the
    videos, train then val in list order, turn by ``rotation`` times the size of the val list and
    the last that many become val. Rotation 0 is the split itself; rotations 0..R-1 (R = the
    fewest ``len(train + val) // len(val)`` over the domains) hold out disjoint sets, so the same
    planted videos give an outer cross-validation: R honest test readings instead of one (TVSum:
    5, each category's 5 videos in turn). Raises ValueError naming the domain when ``rotation`` is
    outside 0..R-1."""
    if rotation == 0:
        return lists
    out = {}
    for d, parts in lists.items():
        train, val = list(parts.get("train", [])), list(parts.get("val", []))
        videos, n = train + val, len(val)
        if rotation < 0 or n == 0 or rotation >= len(videos) // n:
            limit = len(videos) // n if n else 0
            raise ValueError(f"{source}: domain {d!r}: rotation {rotation} outside 0..{limit - 1} "
                             f"({len(train)} train and {n} val videos)")
        turned = videos[rotation * n:] + videos[:rotation * n]
        out[d] = {"train": turned[:-n], "val": turned[-n:]}
    return out


@dataclass
class Planted:
    """A planted benchmark-like dataset in memory: the label files' videos with their split and
    features, as aligned items (what the pipeline reads back after importing the files)."""

    dataset: str
    items: list[VideoItem]
    videos: dict[str, VideoAnnotation]  # vid -> its annotation
    lists: dict  # {domain: {"train": [...], "val": [...]}} (UMT's split, restricted)
    label_files: list[Path]
    facts: dict
    cue_dirs: dict = field(default_factory=dict)  # (domain, modality) -> unit cue direction [D]


def _item(v: VideoAnnotation, split: str, visual: np.ndarray, audio: np.ndarray, dataset: str) -> VideoItem:
    T = v.num_segments
    if dataset == "tvsum":
        K = v.scores.shape[1]
        targets = ((v.scores.sum(1) - K) / (4.0 * K)).astype(np.float32)
    else:
        targets = v.label.astype(np.float32)
    return VideoItem(v.vid, v.domain, split, visual, audio, np.ones(T, bool), v.label.astype(np.int64), targets,
                     v.scores.astype(np.float32))


def plant_youtube(labels_root: str | os.PathLike, splits_file: str | os.PathLike, domains: list[str] | None,
                  seed: int = 0, cfg: SynthConfig | None = None, rotation: int = 0) -> Planted:
    """Planted features on the real YouTube Highlights labels (the authors' release at
    ``labels_root``) of the videos of ``domains`` that UMT's split lists name (turned by
    ``rotation``, :func:`rotate_split`; a video's features do not depend on its split)."""
    cfg = cfg or SynthConfig()
    lists = _split_lists(Path(splits_file), "youtube_highlights", domains, rotation)
    domains = list(lists)
    split_of = {v: ("train" if part == "train" else "test") for s in lists.values() for part in ("train", "val")
                for v in s[part]}
    planter = _Planter(cfg, seed, domains)
    items, videos, facts = [], {}, {"shifts": {}, "rotation": rotation}
    for v in read_authors(labels_root).videos:
        if v.vid not in split_of or v.domain not in lists:
            continue
        _plant(planter, cfg, v, split_of[v.vid], v.label.astype(float), "youtube_highlights", items, videos, lists,
               facts)
    return Planted("youtube_highlights", items, videos, lists, [], facts, planter.unit_cues())


def plant_tvsum(labels_files: list[str | os.PathLike], splits_file: str | os.PathLike, seed: int = 0,
                cfg: SynthConfig | None = None, rotation: int = 0) -> Planted:
    """Planted features on the real TVSum shot scores (lighthouse jsonl files), UMT's split turned
    by ``rotation`` (:func:`rotate_split`; a video's features do not depend on its split). A shot's cue
    strength is ``0.5 + 0.5 * (mean annotator score - 1) / 4`` (0.5 to 1, so the better shots of
    a video carry the stronger cue) where it is a positive of the binary label (mean above the
    video's median), 0 elsewhere."""
    cfg = cfg or SynthConfig()
    if cfg.train_draws != 1:
        raise ValueError("train_draws: only for youtube_highlights (the TVSum bench copies lighthouse's label "
                         "files, which cannot name the extra draws)")
    anns = [v for f in labels_files for v in read_lighthouse_jsonl(f, "tvsum").videos]
    domains = sorted({v.domain for v in anns})
    lists = _split_lists(Path(splits_file), "tvsum", domains, rotation)
    split_of = {v: ("train" if part == "train" else "test") for s in lists.values() for part in ("train", "val")
                for v in s[part]}
    planter = _Planter(cfg, seed, domains)
    items, videos, facts = [], {}, {"shifts": {}, "rotation": rotation}
    for v in anns:
        if v.vid not in split_of:
            continue
        mean = v.scores.mean(axis=1)  # [T] mean annotator score in [1, 5]
        strength = np.where(v.label > 0, 0.5 + 0.5 * np.clip((mean - 1.0) / 4.0, 0.0, 1.0), 0.0)
        _plant(planter, cfg, v, split_of[v.vid], strength, "tvsum", items, videos, lists, facts)
    return Planted("tvsum", items, videos, lists, [Path(f) for f in labels_files], facts, planter.unit_cues())


def _npy(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, arr, allow_pickle=False)


def write_planted(planted: Planted, out: str | os.PathLike, cfg: SynthConfig, seed: int,
                  names: tuple[str, str] = ("i3d", "pann")) -> dict:
    """Write ``planted`` under ``out`` (= ``data/raw/<dataset>``) in the layout users of published
    features have; returns (and writes to ``out/synthbench.json``) the facts.

    youtube_highlights (UMT's layout): ``annotations/youtube_anno.json`` + ``umt_splits.json``,
    ``features/video_features/{vid}_rgb.npy`` / ``{vid}_opt.npy`` [T, 1024] (the visual features'
    two halves, as UMT's RGB and flow I3D streams) and ``features/audio_features/{vid}.npy``.
    tvsum (lighthouse's layout): the jsonl label files copied to ``annotations/`` with
    ``umt_splits.json``, features in ``features/features/tvsum/<name>/{vid}.npz`` (key ``features``)."""
    out = Path(out)
    ann_dir = out / "annotations"
    ann_dir.mkdir(parents=True, exist_ok=True)
    (ann_dir / "umt_splits.json").write_text(json.dumps({planted.dataset: planted.lists}, indent=1), encoding="utf-8")
    feat = out / "features"
    if planted.dataset == "youtube_highlights":
        anno = {}
        for it in planted.items:
            v = planted.videos[it.vid]
            check_id(it.vid, "synthbench")
            _npy(safe_join(feat, "video_features", f"{it.vid}_rgb.npy"), it.visual[:, :1024])
            _npy(safe_join(feat, "video_features", f"{it.vid}_opt.npy"), it.visual[:, 1024:])
            _npy(safe_join(feat, "audio_features", f"{it.vid}.npy"), it.audio)
            anno[it.vid] = {"domain": v.domain, "frames": int(v.end_frame.max()), "info": "synthetic features",
                            "clip": np.stack([v.start_frame, v.end_frame], 1).tolist(), "match": v.match.tolist(),
                            "mturk": []}
        (ann_dir / "youtube_anno.json").write_text(json.dumps(anno, sort_keys=True), encoding="utf-8")
    else:
        for f in planted.label_files:
            (ann_dir / f.name).write_bytes(f.read_bytes())
        for it in planted.items:
            for name, arr in zip(names, (it.visual, it.audio)):
                path = safe_join(feat, "features", "tvsum", check_id(name, "feature name"), f"{it.vid}.npz")
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path, features=arr)
    facts = {"dataset": planted.dataset, "domains": sorted(planted.lists), "seed": seed, "config": asdict(cfg),
             "videos": len(planted.items), "segments": int(sum(it.num_segments for it in planted.items)),
             "positives": int(sum(it.labels.sum() for it in planted.items)), **planted.facts}
    (out / "synthbench.json").write_text(json.dumps(facts, indent=1, sort_keys=True), encoding="utf-8")
    return facts


def _neighbour_max(x: np.ndarray) -> np.ndarray:
    """[T] -> max over t-1, t, t+1 (edges: the neighbours that exist)."""
    y = x.copy()
    y[1:] = np.maximum(y[1:], x[:-1])
    y[:-1] = np.maximum(y[:-1], x[1:])
    return y


def _neighbour_sum(x: np.ndarray) -> np.ndarray:
    """[T] -> sum over t-1, t, t+1 (edges: the neighbours that exist)."""
    y = x.copy()
    y[1:] += x[:-1]
    y[:-1] += x[1:]
    return y


def cue_oracle_scores(planted: Planted, item: VideoItem) -> dict[str, np.ndarray]:
    """Scores [T] that know the planted cue directions: what a model that found the cues could reach.

    ``c_v``, ``c_a``: each segment's projection on its domain's visual / audio cue direction.
    ``visual`` = c_v summed over t-1..t+1 (a run's context); ``audio_visual`` = min(c_v, the
    largest c_a within one segment, for the audio delay) summed over t-1..t+1: both modalities
    must carry the cue, which is what tells a highlight from a single-modality distractor.
    Per segment, without the sum over neighbours (the top-5 protocol ranks single shots):
    ``shot_visual`` = c_v; ``shot_sum`` = c_v + the largest c_a within one segment (the two added,
    as a linear model does); ``shot_min`` = the smaller of the two (a conjunction).
    """
    c_v = item.visual.astype(np.float64) @ planted.cue_dirs[(item.domain, "visual")]  # [T]
    c_a = item.audio.astype(np.float64) @ planted.cue_dirs[(item.domain, "audio")]  # [T]
    c_a_near = _neighbour_max(c_a)  # [T] the audio within one segment, for the delay
    return {"visual": _neighbour_sum(c_v), "audio_visual": _neighbour_sum(np.minimum(c_v, c_a_near)),
            "shot_visual": c_v, "shot_sum": c_v + c_a_near, "shot_min": np.minimum(c_v, c_a_near)}


def known_cue_basis(train_feats: np.ndarray, cue: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """train_feats [N, D], cue [D] -> (mean [D], basis [D, dims]): orthonormal columns, the first
    the cue's unit direction, the others the top ``dims - 1`` principal directions of the centred
    training features with the cue projected out."""
    if dims < 1 or dims > min(train_feats.shape):
        raise ValueError(f"dims must be in 1..{min(train_feats.shape)}, got {dims}")
    x = train_feats.astype(np.float64)
    mean = x.mean(axis=0)
    u = cue.astype(np.float64) / np.linalg.norm(cue)
    xc = x - mean
    xc = xc - np.outer(xc @ u, u)  # the cue projected out before the principal directions
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    stacked = np.concatenate([u[:, None], vt[: dims - 1].T], axis=1)  # [D, dims]
    basis, r = np.linalg.qr(stacked)
    basis *= np.where(np.diag(r) < 0, -1.0, 1.0)[None, :]  # QR's signs: the first column is +u
    return mean, basis


def lda_direction(train_feats: np.ndarray, labels: np.ndarray, k: int = 64) -> np.ndarray:
    """An estimate of the cue from the training labels: shrunk linear discriminant in the top-``k``
    principal subspace, ``(S_w + s I)^-1 (mean_pos - mean_neg)`` with ``S_w`` the pooled
    within-class covariance and ``s`` its mean eigenvalue, mapped back to [D]."""
    x = train_feats.astype(np.float64)
    y = labels.astype(bool)
    if y.all() or not y.any():
        raise ValueError("lda_direction needs positive and negative training segments")
    _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    z = x @ vt[:k].T  # [N, k]
    within = np.concatenate([z[y] - z[y].mean(axis=0), z[~y] - z[~y].mean(axis=0)])
    s_w = within.T @ within / (len(z) - 2)
    k_eff = s_w.shape[0]
    w = np.linalg.solve(s_w + np.trace(s_w) / k_eff * np.eye(k_eff), z[y].mean(axis=0) - z[~y].mean(axis=0))
    return vt[:k].T @ w


def known_cue_items(items: list[VideoItem], cue_dirs: dict | None, dims: int) -> list[VideoItem]:
    """``items`` with each modality's features replaced by their ``dims``-d known-cue projection,
    fitted per category on its training videos (:func:`known_cue_basis`); ``cue_dirs`` None:
    the direction estimated from the training labels (:func:`lda_direction`) instead of the
    planted one. Returned grouped by domain. Meant for planted benches, whose audio is never
    missing: ``audio_mask`` is carried over, not used in the fit."""
    out = []
    for domain in sorted({it.domain for it in items}):
        dom = [it for it in items if it.domain == domain]
        train = [it for it in dom if it.split == "train"]
        fits = {}
        for m in ("visual", "audio"):
            x = np.concatenate([getattr(it, m) for it in train])
            cue = (cue_dirs[(domain, m)] if cue_dirs is not None
                   else lda_direction(x, np.concatenate([it.labels for it in train])))
            fits[m] = known_cue_basis(x, cue, dims)
        for it in dom:
            new = {m: ((getattr(it, m).astype(np.float64) - mean) @ basis).astype(np.float32)
                   for m, (mean, basis) in fits.items()}
            out.append(replace(it, **new))
    return out


def with_context(x: np.ndarray) -> np.ndarray:
    """[T, D] -> [T, 3D]: each segment's row beside its two neighbours' (t, t-1, t+1; an edge
    repeats itself)."""
    prev = np.concatenate([x[:1], x[:-1]])
    nxt = np.concatenate([x[1:], x[-1:]])
    return np.concatenate([x, prev, nxt], axis=1)


def _probes(planted: Planted, featurizers: list, pca_dim: int, C: float) -> list[dict[str, list[float]]]:
    """Per domain and per featurizer, scikit-learn's logistic regression (L2, ``C``) on the
    training segments' features ``featurize(pcas, item) -> [T, F]``, where ``pcas`` maps a
    modality (``visual``, ``audio``, ``both`` = [visual; audio]) to a whitened PCA to ``pca_dim``
    components fitted once per domain on its training segments; returns, per featurizer, the
    test videos' scores."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    scores: list[dict[str, list[float]]] = [{} for _ in featurizers]
    for domain in sorted({it.domain for it in planted.items}):
        train = [it for it in planted.items if it.split == "train" and it.domain == domain]
        raw = {"visual": np.concatenate([it.visual for it in train]), "audio": np.concatenate([it.audio for it in train])}
        raw["both"] = np.concatenate([raw["visual"], raw["audio"]], 1)  # [N, Dv + Da]
        pcas = {m: PCA(min(pca_dim, x.shape[0] - 1), whiten=True, random_state=0).fit(x) for m, x in raw.items()}
        y = np.concatenate([it.labels for it in train])  # [N]
        for featurize, out in zip(featurizers, scores):
            clf = LogisticRegression(C=C, max_iter=5000).fit(np.concatenate([featurize(pcas, it) for it in train]), y)
            for it in planted.items:
                if it.split == "test" and it.domain == domain:
                    out[it.vid] = clf.decision_function(featurize(pcas, it)).tolist()
    return scores


def calibrate(planted: Planted, draws: int = 10, pca_dim: int = 64, C: float = 0.1) -> dict:
    """The difficulty of ``planted``: the test split's umt mAP of random scores (mean and std over
    ``draws`` seeded draws: the protocol's chance level); of a per-segment linear probe, per
    domain: scikit-learn's logistic regression (L2, ``C``, fitted to convergence) on the
    training segments' ``[visual; audio]`` features after a whitened PCA to ``pca_dim``
    components fitted on the same segments, scored on the test segments; of the same probe with
    +-1 segment of context on each modality's own whitened PCA, visual only and both modalities
    (how much of the audio's share a learner finds from this many training videos); and the
    ceilings of :func:`cue_oracle_scores` (scores that know the cue directions), visual only and
    both modalities: the room a model has, and how much of it needs the audio."""
    test = [it for it in planted.items if it.split == "test"]
    table = items_table(test)
    chance = []
    for d in range(draws):
        rng = np.random.default_rng(d)
        preds = {it.vid: rng.random(it.num_segments).tolist() for it in test}
        chance.append(metrics.evaluate(planted.dataset, table, preds, protocol="umt")["mAP"])

    def umt(scores: dict) -> dict:
        return metrics.evaluate(planted.dataset, table, scores, protocol="umt")

    def visual_ctx(p, it):
        return with_context(p["visual"].transform(it.visual))

    def both_ctx(p, it):
        return np.concatenate([visual_ctx(p, it), with_context(p["audio"].transform(it.audio))], 1)

    res, ctx_v, ctx_av = (umt(sc) for sc in _probes(
        planted, [lambda p, it: p["both"].transform(np.concatenate([it.visual, it.audio], 1)), visual_ctx, both_ctx],
        pca_dim, C))
    oracle_scores = {it.vid: cue_oracle_scores(planted, it) for it in test}
    oracle = {kind: float(umt({v: sc[kind].tolist() for v, sc in oracle_scores.items()})["mAP"])
              for kind in ("visual", "audio_visual")}
    return {"dataset": planted.dataset, "chance_umt_mAP": float(np.mean(chance)), "chance_std": float(np.std(chance)),
            "linear_probe_umt_mAP": float(res["mAP"]),
            "linear_probe_per_domain": {k: float(v) for k, v in res["per_domain"].items()},
            "context_probe_visual_umt_mAP": float(ctx_v["mAP"]),
            "context_probe_audio_visual_umt_mAP": float(ctx_av["mAP"]),
            "cue_oracle_visual_umt_mAP": oracle["visual"], "cue_oracle_audio_visual_umt_mAP": oracle["audio_visual"],
            "test_videos": len(test)}
