"""The Ray engine on a local 2-CPU instance: the same features as the local engine on the real
clips, failures in the failures table, parts that resume across engines, a killed worker costing
a retry and not the run, and `dvc repro` with `engine: ray`.

Features equal the local engine's up to the order of float32 sums: the model sees the same
clips, but Ray forms its batches differently (across chunks and videos) and its actor runs torch
on its own number of threads, so a convolution may sum in another order. Measured here: max
|difference| 3e-12 with random weights at 32x32, 1.3e-5 with the real I3D weights on features of
magnitude about 10; the tests allow 1e-4.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

ray = pytest.importorskip("ray", reason="the Ray extra is not installed (pip install -e '.[ray]')")

from pipeline.backbones import build_audio_backbone, build_visual_backbone  # noqa: E402
from pipeline.extract import ExtractionError, extract_audio, extract_visual  # noqa: E402
from pipeline.extract import ray_engine  # noqa: E402
from pipeline.store import failures_path, parts_dir, read_store, video_attrs  # noqa: E402

pytestmark = pytest.mark.slow
ATOL = 1e-4  # the order of float32 sums; see the module docstring
CLIPS = {"bikes": ("bikes.mp4", 250), "bunny": ("bigbuckbunny.mp4", 132), "carphone": ("carphone_pristine.mp4", 120)}


@pytest.fixture(scope="module")
def ray_instance():
    """One local instance for the module (starting one takes seconds); the engine reuses it."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return build_visual_backbone("i3d", crop_size=32)  # the real network (random weights), small input


def clip_table(copies: int = 1, missing: bool = False) -> pd.DataFrame:
    """25-frame segments of the real clips (``copies`` ids per clip), + a video that does not exist."""
    rows = []
    for c in range(copies):
        for vid, (name, frames) in CLIPS.items():
            for i, s in enumerate(range(0, frames - 24, 25)):
                rows.append({"vid": f"{vid}{c}", "seg_idx": i, "start_frame": s, "end_frame": s + 25, "video": name})
    if missing:
        rows.append({"vid": "gone", "seg_idx": 0, "start_frame": 0, "end_frame": 25, "video": "gone.mp4"})
    return pd.DataFrame(rows)


def assert_same_features(a: Path, b: Path) -> None:
    fa, fb = read_store(a), read_store(b)
    assert sorted(fa) == sorted(fb)
    for vid in fa:
        assert fa[vid].shape == fb[vid].shape
        np.testing.assert_allclose(fa[vid], fb[vid], rtol=0, atol=ATOL, err_msg=vid)


def test_ray_equals_local_on_the_real_clips_with_failures(shared_data, ray_instance, backbone, tmp_path, monkeypatch):
    monkeypatch.setattr(ray_engine, "SEGMENTS_PER_TASK", 4)  # long videos in several chunks
    videos = shared_data / "videos"
    table = clip_table(missing=True)
    kw = dict(frames_per_segment=4, batch_size=3, max_failures=1, progress=False)
    local = extract_visual(table, videos, backbone, tmp_path / "local.h5", **kw)
    remote = extract_visual(table, videos, backbone, tmp_path / "ray.h5", engine="ray", **kw)
    assert local["extracted"] == remote["extracted"] == 3 and local["segments"] == remote["segments"] == 19
    assert_same_features(tmp_path / "local.h5", tmp_path / "ray.h5")
    assert video_attrs(tmp_path / "ray.h5") == video_attrs(tmp_path / "local.h5")  # fps, num_frames
    assert failures_path(tmp_path / "ray.h5").read_text() == failures_path(tmp_path / "local.h5").read_text()
    assert "gone,locate,FileNotFoundError" in failures_path(tmp_path / "ray.h5").read_text()


def test_audio_on_ray_equals_local(shared_data, ray_instance, tmp_path):
    videos = shared_data / "videos"
    table = clip_table()  # bunny has 6-channel AAC; bikes and carphone have no audio track
    logmel = build_audio_backbone("logmel")  # the real weight-free audio feature
    local = extract_audio(table, videos, logmel, tmp_path / "local.h5", progress=False)
    remote = extract_audio(table, videos, logmel, tmp_path / "ray.h5", engine="ray", progress=False)
    assert local["no_audio"] == remote["no_audio"] == 2
    assert_same_features(tmp_path / "local.h5", tmp_path / "ray.h5")
    assert video_attrs(tmp_path / "ray.h5") == video_attrs(tmp_path / "local.h5")  # has_audio


def test_parts_resume_across_engines(shared_data, ray_instance, backbone, tmp_path):
    videos = shared_data / "videos"
    store = tmp_path / "v.h5"
    kw = dict(frames_per_segment=4, batch_size=4, progress=False)
    with pytest.raises(ExtractionError, match="gone"):  # the ray run fails on the missing video ...
        extract_visual(clip_table(missing=True), videos, backbone, store, engine="ray", **kw)
    assert len(list(parts_dir(store).glob("*.npz"))) == 3  # ... but keeps its three committed parts
    summary = extract_visual(clip_table(), videos, backbone, store, engine="local", **kw)
    assert summary["resumed"] == 3 and summary["extracted"] == 0 and summary["discarded_stale_parts"] == 0
    extract_visual(clip_table(), videos, backbone, tmp_path / "fresh.h5", **kw)
    assert_same_features(store, tmp_path / "fresh.h5")


def _ray_workers_named(name: str) -> list:
    """Ray worker processes of this test's own instance (descendants of this process) named ``name``."""
    import psutil

    found = []
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if name in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def test_a_killed_worker_costs_a_retry_not_the_run(shared_data, ray_instance, backbone, tmp_path, monkeypatch):
    monkeypatch.setattr(ray_engine, "SEGMENTS_PER_TASK", 2)
    videos = shared_data / "videos"
    table = clip_table(copies=2)  # 6 videos, 38 segments, 20 decoding tasks
    store = tmp_path / "killed.h5"
    parts = parts_dir(store)
    killed: list[tuple[int, int]] = []  # (pid, parts committed when killed)

    def killer() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            committed = len(list(parts.glob("*.npz"))) if parts.exists() else 0
            actors = _ray_workers_named("_Backbone")
            if committed >= 1 and actors:  # mid-run: some videos done, others not
                actors[0].kill()  # SIGKILL the backbone actor's process
                killed.append((actors[0].pid, committed))
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    kw = dict(frames_per_segment=4, batch_size=2, progress=False)
    summary = extract_visual(table, videos, backbone, store, engine="ray", **kw)
    thread.join(timeout=5)
    assert killed, "the test did not manage to kill a worker mid-run"
    assert killed[0][1] < 6, killed  # it died before the run was over
    assert summary["extracted"] == 6 and summary["failed"] == 0 and summary["segments"] == 38
    extract_visual(table, videos, backbone, tmp_path / "local.h5", **kw)
    assert_same_features(store, tmp_path / "local.h5")


def test_dvc_repro_with_engine_ray_equals_engine_local(shared_data, tmp_path_factory):
    from test_pipeline_e2e import REAL_CLIPS, _benchmark_copy, _dvc, _ran, _edit_params, _write_json

    def edit(p):
        p["dataset"] = "youtube_highlights"
        yt = p["presets"]["youtube_highlights"]
        yt["backbones"]["audio"] = "logmel"  # the PANN checkpoint is not available here
        yt["prepare"] = {"format": "authors", "split": "authors"}
        yt["extract_visual"] = {"crop_size": 32, "frames_per_segment": 4}

    repo = _benchmark_copy(tmp_path_factory, "ray", edit)
    raw = repo / "data" / "raw" / "youtube_highlights"
    (raw / "videos").mkdir(parents=True)
    for vid, (name, frames) in REAL_CLIPS.items():
        shutil.copy(shared_data / "videos" / name, raw / "videos" / f"{vid}.mp4")
        clips = [[float(f), float(f + 25)] for f in range(0, frames - 24, 25)]
        _write_json(raw / "annotations" / "clips" / vid / "match_label.json", [clips, [1] * len(clips)])
        _write_json(raw / "annotations" / "clips" / vid / "clip.json", clips)
    _write_json(raw / "annotations" / "clips" / "vlist.json",
                [[["bikes", "carphoneA"], "TraiTightL"], [[], "TraiLooseL"],
                 [["bunny", "carphoneB"], "TestTightL"], [[], "TestLooseL"]])
    features = repo / "data" / "features" / "youtube_highlights"

    _dvc(repo, "repro", "extract_visual")
    local = read_store(features / "visual" / "features.h5")

    def to_ray(p):
        p["extract_visual"]["engine"] = "ray"
        p["extract_visual"]["ray_address"] = ""  # a local instance on this machine's CPUs

    _edit_params(repo, to_ray)
    log = _dvc(repo, "repro", "extract_visual")
    assert _ran(log) == {"extract_visual"}
    remote = read_store(features / "visual" / "features.h5")
    assert sorted(remote) == sorted(local) == ["bikes", "bunny", "carphoneA", "carphoneB"]
    for vid in remote:
        assert remote[vid].shape == local[vid].shape
        np.testing.assert_allclose(remote[vid], local[vid], rtol=0, atol=ATOL, err_msg=vid)
