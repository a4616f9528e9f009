"""Fault injection into the stages themselves (issue 9), on the tiny demo dataset in a copy of
the repository: expected errors end a stage with one message and exit 1 and no traceback; a
failed test video is listed by every later stage and in the metrics; a video replaced after a
failed stage run is re-extracted; a truncated features.h5 is named and rebuilt by `dvc repro`; a
full disk names the file and the free space; prepare refuses an empty split and honours
``prepare.missing_split_videos``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from ruamel.yaml import YAML

from test_annotations import small_release, write_splits
from test_pipeline_e2e import _copy_repo, _dvc

VENV_BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _edit_params(repo: Path, edit) -> None:
    """Edit params.yaml the way a user does (YAML 1.2, as DVC reads it)."""
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    path = repo / "params.yaml"
    params = yaml.load(path.read_text())
    edit(params)
    with open(path, "w") as fh:
        yaml.dump(params, fh)


def _stage(repo: Path, script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    run_env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    run_env.pop("HPCL_DEBUG", None)
    return subprocess.run([sys.executable, f"stages/{script}.py", *args], cwd=repo, env=run_env, capture_output=True,
                          text=True, timeout=600)


def _one_clean_error(proc: subprocess.CompletedProcess, stage: str, *words: str) -> str:
    """Exit 1, ``ERROR <stage>: ...`` holding ``words``, no traceback; -> the stderr text."""
    err = proc.stderr
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-2000:], err[-3000:])
    assert "Traceback" not in err, err[-3000:]
    assert f"ERROR {stage}: " in err, err[-3000:]
    for w in words:
        assert w in err, (w, err[-3000:])
    return err


def _ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc.stdout


def _tiny(p: dict) -> None:
    p["dataset"] = "demo"
    p["demo"]["preset"] = "tiny"
    demo = p["presets"]["demo"]
    demo["extract_visual"] = {"crop_size": 32, "frames_per_segment": 4, "batch_size": 8}
    demo["model"] = {"d_model": 16, "num_heads": 2, "ffn_dim": 32}
    demo["train"] = {"epochs": 1, "batch_size": 2, "selection": "fixed", "seeds": [0], "test_every": 0}
    p["evaluate"]["tsne"] = False


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path_factory.mktemp("faults") / "repo"
    repo.mkdir()
    _copy_repo(repo)
    (repo / "dvc.lock").unlink(missing_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _edit_params(repo, _tiny)
    _dvc(repo, "repro")
    return repo


def _test_video(repo: Path) -> tuple[str, Path]:
    table = pd.read_csv(repo / "data" / "prepared" / "demo" / "segments.csv")
    row = table[table["split"] == "test"].iloc[0]
    return str(row["vid"]), repo / "data" / "raw" / "demo" / "videos" / str(row["video"])


def test_expected_errors_end_a_stage_with_one_message(repo):
    params = (repo / "params.yaml").read_text()
    _edit_params(repo, lambda p: p["presets"]["demo"]["extract_visual"].__setitem__("batch_size", 0))
    _one_clean_error(_stage(repo, "prepare"), "prepare", "params.yaml", "presets.demo.extract_visual.batch_size = 0")
    log = (repo / "logs" / "prepare.log").read_text()
    assert "Traceback" in log and "ParamsError" in log  # the details are kept
    with_debug = subprocess.run([sys.executable, "stages/prepare.py"], cwd=repo, capture_output=True, text=True,
                                env={**os.environ, "HPCL_DEBUG": "1"})
    assert with_debug.returncode == 1 and "Traceback" in with_debug.stderr
    (repo / "params.yaml").write_text(params)

    vid, _ = _test_video(repo)
    labels = next((repo / "data" / "raw" / "demo" / "annotations").glob(f"*/{vid}/match_label.json"))
    saved = labels.read_text()
    labels.write_text(saved.replace("]]", "]", 1)[:-3])
    _one_clean_error(_stage(repo, "prepare"), "prepare", f"{vid}/match_label.json: malformed JSON")
    labels.write_text(saved)

    manifest = repo / "data" / "weights" / "visual" / "weights.json"
    manifest.rename(manifest.with_suffix(".bak"))
    _one_clean_error(_stage(repo, "extract", "visual"), "extract_visual", "weights.json: No such file or directory")
    manifest.with_suffix(".bak").rename(manifest)


def test_truncated_features_h5_is_named_and_restored_by_dvc_repro(repo):
    store = repo / "data" / "features" / "demo" / "visual" / "features.h5"
    before = {k: v[()] for k, v in h5py.File(store, "r").items()}
    store.write_bytes(store.read_bytes()[: store.stat().st_size // 3])  # changed outside DVC
    _one_clean_error(_stage(repo, "align"), "align", "features.h5: not a readable HDF5 feature store", "dvc repro")
    _dvc(repo, "repro")  # DVC sees the output changed and restores it (from its cache, or by re-running)
    assert "up to date" in _dvc(repo, "status")
    with h5py.File(store, "r") as h5:
        for vid, feats in before.items():
            np.testing.assert_array_equal(h5[vid][()], feats)


def test_a_failed_test_video_is_listed_by_every_stage_and_in_the_metrics(repo):
    """Before issue 9 it vanished: metrics over fewer videos with a bare count."""
    vid, video = _test_video(repo)
    shutil.copyfile(video, video.with_suffix(".orig"))
    video.write_bytes(video.read_bytes()[:2000])
    _edit_params(repo, lambda p: [p["presets"]["demo"][s].__setitem__("max_failures", 1)
                                  for s in ("extract_visual", "extract_audio")])
    try:
        out = _ok(_stage(repo, "extract", "visual"))
        assert f"extract_visual: skipped 1 video(s), visual extraction failed at probe" in out and vid in out
        _ok(_stage(repo, "extract", "audio"))
        out = _ok(_stage(repo, "align"))
        assert "align: 1 video(s) of the train/test splits left out" in out and f"  {vid} (test, " in out
        # a test video: the models trained on the unchanged training split stay valid
        out = _ok(_stage(repo, "evaluate"))
        assert "1 test video(s) not evaluated" in out and f"  {vid} (test, " in out
        metrics = json.loads((repo / "metrics" / "demo.json").read_text())
        listed = metrics["skipped_videos"]["test"]
        assert [r["vid"] for r in listed] == [vid] and listed[0]["stage"] == "extract_visual"
        assert "visual extraction failed at probe" in listed[0]["reason"] and video.name in listed[0]["reason"]
        assert "audio extraction failed" in listed[0]["reason"]
        table = subprocess.run([str(VENV_BIN / "hpcl"), "table", "metrics/demo.json"], cwd=repo, capture_output=True,
                               text=True)
        assert table.returncode == 0 and table.stdout.rstrip().endswith(
            "1 test video(s) not evaluated (ids and reasons: skipped_videos in the metrics file).")
    finally:
        _edit_params(repo, lambda p: [p["presets"]["demo"][s].__setitem__("max_failures", 0)
                                      for s in ("extract_visual", "extract_audio")])


def test_a_video_replaced_after_a_failed_stage_run_is_re_extracted(repo):
    """Before issue 9 the rerun merged the old part of the replaced video and exited 0."""
    vid, video = _test_video(repo)  # still truncated: the stage fails with max_failures 0
    store = repo / "data" / "features" / "demo" / "audio" / "features.h5"
    old = {k: v[()] for k, v in h5py.File(store, "r").items()}
    _one_clean_error(_stage(repo, "extract", "audio"), "extract_audio", "1 video(s) failed, more than max_failures=0",
                     f"{vid} [probe]")
    parts = repo / "data" / "features" / ".parts" / "demo" / "audio"  # kept outside the DVC output
    assert any(p.suffix == ".npz" for p in parts.iterdir())
    table = pd.read_csv(repo / "data" / "prepared" / "demo" / "segments.csv")
    others = table[(table["vid"] != vid)].drop_duplicates("vid")
    victim, donor = others.iloc[0], others.iloc[1]
    videos = video.parent
    shutil.copyfile(videos / str(donor["video"]), videos / str(victim["video"]))  # the user replaces a file
    shutil.copyfile(video.with_suffix(".orig"), video)  # and repairs the broken one
    out = _ok(_stage(repo, "extract", "audio"))
    assert "re-did 1 stale part(s)" in out
    summary = json.loads((repo / "data" / "features" / "demo" / "audio" / "summary.json").read_text())
    assert summary["discarded_stale_parts"] == 1 and summary["extracted"] == 2
    with h5py.File(store, "r") as h5:
        assert not np.array_equal(h5[str(victim["vid"])][()], old[str(victim["vid"])])  # new content, new features


SITECUSTOMIZE = """
import errno, os
if os.environ.get("FAULT_ENOSPC_AT"):
    import numpy
    _savez, _calls = numpy.savez, [0]
    def savez(*args, **kwargs):
        _calls[0] += 1
        if _calls[0] == int(os.environ["FAULT_ENOSPC_AT"]):
            raise OSError(errno.ENOSPC, "No space left on device")
        return _savez(*args, **kwargs)
    numpy.savez = savez
"""


def test_disk_full_in_a_stage_names_the_file_and_the_free_space_then_resumes(repo, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    env = {"PYTHONPATH": str(tmp_path), "FAULT_ENOSPC_AT": "2"}
    err = _one_clean_error(_stage(repo, "extract", "audio", env=env), "extract_audio", ".npz: disk full while writing it",
                           " free on ", "already committed are kept")
    assert "free some space and rerun" in err
    out = _ok(_stage(repo, "extract", "audio"))
    summary = json.loads((repo / "data" / "features" / "demo" / "audio" / "summary.json").read_text())
    assert summary["resumed"] == 1 and "extract_audio:" in out


def test_prepare_refuses_an_empty_split_and_honours_missing_split_videos(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _copy_repo(repo)
    annotations = repo / "data" / "raw" / "youtube_highlights" / "annotations"
    small_release(annotations / "yt")
    splits = {"dog": {"train": ["dogA", "ghost"], "val": ["dogB"]}, "surfing": {"train": [], "val": ["surfB"]}}
    write_splits(annotations / "umt_splits.json", "youtube_highlights", splits)

    def use(**prepare):
        def edit(p):
            p["dataset"] = "youtube_highlights"
            p["prepare"].update({"annotations": ["yt"], "splits_file": "umt_splits.json", **prepare})
            p["presets"]["youtube_highlights"]["prepare"] = {"format": "authors", "split": "umt"}
        return edit

    _edit_params(repo, use(missing_split_videos="error"))
    _one_clean_error(_stage(repo, "prepare"), "prepare", "umt_splits.json: video 'ghost' (dog, train)",
                     "set prepare.missing_split_videos: skip")
    _edit_params(repo, use(missing_split_videos="skip"))
    out = _ok(_stage(repo, "prepare"))
    assert "prepare: skipped 1 video(s), not_in_annotations: ghost" in out
    report = json.loads((repo / "data" / "prepared" / "youtube_highlights" / "report.json").read_text())
    assert {"vid": "ghost", "domain": "dog", "split": "train", "reason": "not_in_annotations"}.items() <= \
        next(s for s in report["skipped"] if s["vid"] == "ghost").items()
    write_splits(annotations / "umt_splits.json", "youtube_highlights",
                 {"dog": {"train": ["dogA"], "val": []}, "surfing": {"train": [], "val": []}})
    _one_clean_error(_stage(repo, "prepare"), "prepare", "umt_splits.json: the test split is empty")
