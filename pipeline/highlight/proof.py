"""Measurements of ``hpcl highlight``: reel precision on the demo's planted highlights, and peak
memory on a generated long video.

``demo_proof``: for every ``<vid>.json`` of a highlight run whose video is in the demo's
``demo.json``, the demo's segments (its annotated 2 s clips) are matched with the reel: a segment
is *in the reel* when more than half of it lies inside the reel's windows. Precision = in-reel
segments that are planted highlights (label 1) / in-reel segments. A *distractor segment* is one
with more than half of its span under a single-modality distractor (a visual event in silence,
or a sound with nothing to see); ``distractors_in_reel`` = the share of them in the reels.

``bench_memory``: generates a long low-resolution video (moving texture + a tone, H.264 + AAC,
PyAV), runs the whole highlight run on it in a fresh process and reports that process's peak
resident memory, next to a one-minute video's, so the growth with length is visible.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..paths import check_id, safe_join


def _overlap(a: float, b: float, spans: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, e) - max(a, s)) for s, e in spans)


def demo_proof(highlights_dir: str | os.PathLike, demo_dir: str | os.PathLike) -> dict:
    """The reel precision and distractor share over a highlight run on demo videos (module docstring)."""
    highlights_dir, demo_dir = Path(highlights_dir), Path(demo_dir)
    with open(demo_dir / "demo.json", encoding="utf-8") as fh:
        manifest = json.load(fh)
    params = manifest["params"]
    per_video, totals = {}, {"reel": 0, "reel_highlights": 0, "distractors": 0, "distractors_in_reel": 0,
                             "highlights": 0, "highlights_in_reel": 0, "reel_s": 0.0}
    for path in sorted(highlights_dir.glob("*.json")):
        vid = path.stem
        if vid not in manifest["videos"]:
            continue
        with open(path, encoding="utf-8") as fh:
            result = json.load(fh)
        meta = manifest["videos"][check_id(vid, demo_dir / "demo.json")]
        fps, rate = float(meta["fps"]), float(params["audio_rate"])
        clip_file = safe_join(demo_dir / "annotations", meta["domain"], vid, "match_label.json")
        with open(clip_file, encoding="utf-8") as fh:
            clips, labels = json.load(fh)
        reel = [(float(a), float(b)) for a, b, _ in result["windows"]]
        distractors = []
        for e in meta["events"]:
            if e["kind"] == "visual":
                distractors.append((e["visual"][0] / fps, e["visual"][1] / fps))
            elif e["kind"] == "audio":
                distractors.append((e["audio"][0] / rate, e["audio"][1] / rate))
        counts = dict.fromkeys(totals, 0)
        for (f0, f1), label in zip(clips, labels):
            a, b = f0 / fps, f1 / fps
            in_reel = _overlap(a, b, reel) > 0.5 * (b - a)
            is_distractor = _overlap(a, b, distractors) > 0.5 * (b - a)
            counts["reel"] += in_reel
            counts["reel_highlights"] += in_reel and label > 0
            counts["highlights"] += label > 0
            counts["highlights_in_reel"] += in_reel and label > 0
            counts["distractors"] += is_distractor
            counts["distractors_in_reel"] += in_reel and is_distractor
        counts["reel_s"] = sum(b - a for a, b in reel)
        per_video[vid] = counts
        for k in totals:
            totals[k] += counts[k]
    if not per_video:
        raise ValueError(f"{highlights_dir}: no <vid>.json of a video listed in {demo_dir / 'demo.json'}")
    return {
        "videos": len(per_video),
        "reel_segments": totals["reel"],
        "precision": totals["reel_highlights"] / totals["reel"] if totals["reel"] else 0.0,
        "highlight_recall": totals["highlights_in_reel"] / totals["highlights"] if totals["highlights"] else 0.0,
        "distractor_segments": totals["distractors"],
        "distractors_in_reel": totals["distractors_in_reel"] / totals["distractors"] if totals["distractors"] else 0.0,
        "reel_seconds": round(totals["reel_s"], 3),
        "per_video": per_video,
    }


# ----------------------------------------------------------------------------- long-video memory


def write_long_video(path: str | os.PathLike, seconds: float, size: int = 64, fps: int = 8,
                     audio_rate: int = 16000) -> Path:
    """A ``seconds``-long ``size`` x ``size`` H.264 + AAC mp4 (a drifting texture, a slow tone),
    generated frame by frame (memory bounded by one frame and one audio chunk)."""
    import av

    path = Path(path)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (size * 2, size * 2, 3), dtype=np.uint8)
    n_frames = int(round(seconds * fps))
    spf = audio_rate // fps
    part = path.with_name(path.name + ".part")
    with av.open(str(part), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "30"})
        vs.width, vs.height, vs.pix_fmt = size, size, "yuv420p"
        aus = out.add_stream("aac", rate=audio_rate, layout="mono")
        for i in range(n_frames):
            dy, dx = (i * 3) % size, (i * 2) % size
            img = np.ascontiguousarray(texture[dy:dy + size, dx:dx + size])
            vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            vf.pts = i
            out.mux(vs.encode(vf))
            t = (i * spf + np.arange(spf)) / audio_rate
            wave = (0.2 * np.sin(2 * np.pi * (220 + 110 * np.sin(t / 30)) * t)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(wave[None, :], format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = audio_rate, i * spf, Fraction(1, audio_rate)
            out.mux(aus.encode(af))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))
    os.replace(part, path)
    return path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def _highlight_child(video: str, model: str, out_dir: str, device: str, visual_weights: str | None) -> dict:
    from .modelfile import load_model_file
    from .run import highlight_videos

    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    started = time.perf_counter()
    m = load_model_file(model)
    result = highlight_videos([video], m, out_dir, device=device, visual_weights=visual_weights, progress=False)
    if result["failures"]:
        raise RuntimeError(f"highlight failed: {result['failures']}")
    r = result["videos"][0]
    return {"video_duration_s": r["duration_s"], "segments": len(r["segments"]), "peak_rss_mb": round(_peak_rss_mb(), 1),
            "seconds": round(time.perf_counter() - started, 1)}


def _in_fresh_process(fn, *args):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(fn, args)


def bench_memory(model: str, work_dir: str | os.PathLike, durations_s=(60.0, 3600.0), device: str = "cpu",
                 visual_weights: str | None = None, keep: bool = False) -> dict:
    """Peak RSS of a whole highlight run (fresh process each) on generated videos of ``durations_s``."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for seconds in durations_s:
        video = work / f"long_{int(seconds)}s.mp4"
        if not video.exists():
            _in_fresh_process(write_long_video, str(video), float(seconds))
        row = _in_fresh_process(_highlight_child, str(video), str(model), str(work / f"out_{int(seconds)}s"), device,
                                visual_weights)
        row["video_bytes"] = video.stat().st_size
        rows.append(row)
        if not keep:
            video.unlink()
    return {"runs": rows, "device": device, "cpu_count": os.cpu_count()}
