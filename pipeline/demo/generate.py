"""Writing the demo dataset: ``generate_demo`` and the on-disk YouTube Highlights layout.

Checks the arguments, then for every video plans its events, renders and encodes it, and writes
``annotations/<domain>/<vid>/clip.json`` and ``match_label.json``, ``videos/<vid>.mp4``, each
domain's ``vlist.json`` (seeded train/test split, ``VLIST_SETS``) and the ``demo.json``
manifest, and returns a summary. The layout and what the videos contain are described in the
``pipeline.demo`` package docstring.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from ..paths import check_id, safe_join
from .encode import AAC_RATES, encode_mp4
from .plan import DOMAIN_STYLES, plan_events, segment_labels
from .render import render_audio, render_frames

VLIST_SETS = ("TraiTightL", "TraiLooseL", "TestTightL", "TestLooseL")


def _write_json(path: Path, obj) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(obj) + "\n")
    os.replace(part, path)


def _check_args(domains, videos_per_domain, segments_per_video, fps, frames_per_segment, stride, size, audio_rate,
                highlight_fraction, max_audio_shift_segments, distractor_rate, test_fraction) -> tuple[int, int]:
    if not domains or len(set(domains)) != len(domains):
        raise ValueError(f"domains must be non-empty and distinct, got {domains!r}")
    for d in domains:
        check_id(d, "generate_demo(domains=...)")
    if isinstance(segments_per_video, int):
        lo, hi = segments_per_video, segments_per_video
    else:
        lo, hi = (int(x) for x in segments_per_video)
    if not 1 <= lo <= hi:
        raise ValueError(
            f"segments_per_video must be a positive int or (lo, hi) with lo <= hi, got {segments_per_video!r}"
        )
    if videos_per_domain < 2:
        raise ValueError(f"videos_per_domain must be >= 2 (one train, one test), got {videos_per_domain}")
    if not (isinstance(fps, int) and fps > 0):
        raise ValueError(f"fps must be a positive int, got {fps!r}")
    if stride <= 0 or frames_per_segment <= 0 or frames_per_segment % stride:
        raise ValueError(f"stride ({stride}) must be positive and divide frames_per_segment ({frames_per_segment})")
    h, w = size
    if h < 16 or w < 16 or h % 2 or w % 2:
        raise ValueError(f"size must be even and >= 16 pixels per side (H.264 4:2:0), got {size!r}")
    if audio_rate not in AAC_RATES:
        raise ValueError(f"audio_rate {audio_rate} is not an AAC rate {AAC_RATES}")
    for name, value in (("highlight_fraction", highlight_fraction), ("distractor_rate", distractor_rate),
                        ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {value}")
    if not 0.0 <= max_audio_shift_segments <= 4.0:
        raise ValueError(f"max_audio_shift_segments must lie in [0, 4], got {max_audio_shift_segments}")
    return lo, hi


def generate_demo(
    out_dir: str | os.PathLike,
    seed: int = 0,
    domains: Sequence[str] = ("stadium", "arcade"),
    videos_per_domain: int = 12,
    segments_per_video: int | tuple[int, int] = (20, 30),
    fps: int = 8,
    frames_per_segment: int = 16,
    stride: int = 16,
    size: tuple[int, int] = (128, 128),
    audio_rate: int = 32000,
    highlight_fraction: float = 0.2,
    max_audio_shift_segments: float = 1.0,
    distractor_rate: float = 0.2,
    test_fraction: float = 0.3,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Write the demo dataset under ``out_dir`` (layout in the ``pipeline.demo`` docstring); return a summary.

    segments_per_video: T per video, an int or an inclusive range (lo, hi) drawn per video.
    highlight_fraction / distractor_rate: target shares of a video's timeline covered by highlights
    and by each kind of single-modality distractor (visual-only, audio-only); placement may fall
    short on short videos, never over. test_fraction: share of each domain's videos in Test*L.
    overwrite: replace existing ``annotations/``, ``videos/`` and ``demo.json`` under out_dir.

    Returns {"out_dir", "videos", "segments", "labels": {"-1", "0", "1"}, "domains": {domain:
    {"train", "test", "segments", "positives"}}, "bytes", "seconds"}.
    """
    t_start = time.perf_counter()
    lo, hi = _check_args(domains, videos_per_domain, segments_per_video, fps, frames_per_segment, stride, size,
                         audio_rate, highlight_fraction, max_audio_shift_segments, distractor_rate, test_fraction)
    out = Path(out_dir)
    ann_root, vid_root, manifest_path = out / "annotations", out / "videos", out / "demo.json"
    existing = [p for p in (ann_root, vid_root, manifest_path) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass overwrite=True to regenerate the demo dataset")
    for p in existing:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    ann_root.mkdir(parents=True)
    vid_root.mkdir(parents=True)

    m = frames_per_segment // stride
    jobs = [(d, i) for d in range(len(domains)) for i in range(videos_per_domain)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="demo videos", unit="video")
    manifest_videos: dict[str, dict] = {}
    domain_summary: dict[str, dict] = {}
    label_counts = {"-1": 0, "0": 0, "1": 0}
    for d, domain in enumerate(domains):
        style = DOMAIN_STYLES[d % len(DOMAIN_STYLES)]
        dom_dir = safe_join(ann_root, domain)
        dom_dir.mkdir()
        vids, positives, n_pos = [], [], []
        for i in range(videos_per_domain):
            rng = np.random.default_rng([seed, d, i])
            vid = check_id(f"{domain}_{i:03d}", "generate_demo")
            n_seg = int(rng.integers(lo, hi + 1))
            n_units = n_seg - 1 + m
            n_frames = n_units * stride
            n_samples = int(round(n_frames * audio_rate / fps))
            events = plan_events(rng, n_units, stride, frames_per_segment, fps, audio_rate, highlight_fraction,
                                  distractor_rate, max_audio_shift_segments)
            labels = segment_labels(events, n_seg, stride, frames_per_segment)  # [T]
            clips = [[float(k * stride), float(k * stride + frames_per_segment)] for k in range(n_seg)]
            vdir = safe_join(dom_dir, vid)
            vdir.mkdir()
            _write_json(vdir / "clip.json", clips)
            _write_json(vdir / "match_label.json", [clips, [int(x) for x in labels]])
            frames = render_frames(events, n_frames, size, style["objects"], rng)
            audio = render_audio(events, n_samples, audio_rate, style["sound"], rng)  # [N]
            encode_mp4(safe_join(vid_root, f"{vid}.mp4"), frames, audio, fps, size, audio_rate)
            vids.append(vid)
            positives.append(float(np.mean(labels > 0)))
            n_pos.append(int(np.sum(labels > 0)))
            for v in (-1, 0, 1):
                label_counts[str(v)] += int(np.sum(labels == v))
            manifest_videos[vid] = {
                "domain": domain,
                "fps": fps,
                "frames": n_frames,
                "duration_s": n_frames / fps,
                "audio_samples": n_samples,
                "segments": n_seg,
                "events": [asdict(e) for e in events],
            }
            if bar is not None:
                bar.update(1)
        # split: a seeded permutation; the last share goes to Test; Tight = fewer positives than the median
        order = np.random.default_rng([seed, d, 1_000_003]).permutation(videos_per_domain)
        n_test = min(videos_per_domain - 1, max(1, int(round(test_fraction * videos_per_domain))))
        test_idx = sorted(order[videos_per_domain - n_test :].tolist())
        train_idx = sorted(order[: videos_per_domain - n_test].tolist())
        median = float(np.median(positives))
        sets = []
        for name, idx in (("Trai", train_idx), ("Test", test_idx)):
            tight = [vids[j] for j in idx if positives[j] < median]
            loose = [vids[j] for j in idx if positives[j] >= median]
            sets += [[tight, f"{name}TightL"], [loose, f"{name}LooseL"]]
        _write_json(dom_dir / "vlist.json", sets)
        for j in train_idx:
            manifest_videos[vids[j]]["split"] = "train"
        for j in test_idx:
            manifest_videos[vids[j]]["split"] = "test"
        domain_summary[domain] = {
            "train": len(train_idx),
            "test": len(test_idx),
            "segments": sum(manifest_videos[v]["segments"] for v in vids),
            "positives": sum(n_pos),
        }
    if bar is not None:
        bar.close()
    params = dict(seed=seed, domains=list(domains), videos_per_domain=videos_per_domain,
                  segments_per_video=[lo, hi], fps=fps, frames_per_segment=frames_per_segment, stride=stride,
                  size=list(size), audio_rate=audio_rate, highlight_fraction=highlight_fraction,
                  max_audio_shift_segments=max_audio_shift_segments, distractor_rate=distractor_rate,
                  test_fraction=test_fraction)
    styles = {dom: DOMAIN_STYLES[d % len(DOMAIN_STYLES)] for d, dom in enumerate(domains)}
    _write_json(manifest_path, {"params": params, "styles": styles, "videos": manifest_videos})
    written = [manifest_path, *ann_root.rglob("*"), *vid_root.rglob("*")]
    n_bytes = sum(p.stat().st_size for p in written if p.is_file())
    return {
        "out_dir": str(out),
        "videos": len(manifest_videos),
        "segments": sum(v["segments"] for v in manifest_videos.values()),
        "labels": label_counts,
        "domains": domain_summary,
        "bytes": n_bytes,
        "seconds": time.perf_counter() - t_start,
    }
