"""Audio backbones: PANN Cnn14 loading (random-init checkpoints written here) and log-mel statistics."""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import os
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from pipeline.backbones import build_audio_backbone
from pipeline.backbones.audio import (
    CNN14_CONFIG,
    PANN_WEIGHTS_HINT,
    PannCnn14,
    _import_cnn14,
    audioset_classes,
    build_logmel,
    build_pann_cnn14,
    ensure_panns_labels_csv,
    load_pann_state_dict,
    load_pann_weights,
)
from pipeline.paths import REPO_ROOT, shared_data_dir
from pipeline.weights import load_state_checked

SR = 32000


# ----------------------------------------------------------------------------- labels


def test_labels_resource_is_the_audioset_list():
    classes = audioset_classes()
    assert len(classes) == 527
    assert classes[0] == ("/m/09x0r", "Speech")
    assert len({mid for mid, _ in classes}) == 527  # mids are unique


def test_labels_resource_matches_shared_csv():
    csv_path = shared_data_dir() / "audioset" / "class_labels_indices.csv"
    if not csv_path.is_file():
        pytest.skip(f"shared AudioSet label CSV not found at {csv_path}")
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    assert [(r[1], r[2]) for r in rows] == audioset_classes()


def _read_like_panns_config(path: Path) -> list[str]:
    """What panns_inference/config.py does with the file: skip the header, column 2 = label."""
    with open(path) as fh:
        lines = list(csv.reader(fh, delimiter=","))
    return [line[2] for line in lines[1:]]


def test_labels_csv_written_repaired_and_kept(tmp_path):
    path = tmp_path / "panns_data" / "class_labels_indices.csv"
    assert ensure_panns_labels_csv(tmp_path) == path
    labels = _read_like_panns_config(path)
    assert labels == [name for _, name in audioset_classes()]

    path.write_text("")  # what an offline wget leaves behind
    ensure_panns_labels_csv(tmp_path)
    assert _read_like_panns_config(path) == labels

    path.write_text("index,mid,display_name\n0,/m/x,Speech\n")  # truncated: rewritten too
    ensure_panns_labels_csv(tmp_path)
    assert len(_read_like_panns_config(path)) == 527

    before = path.stat().st_mtime_ns
    ensure_panns_labels_csv(tmp_path)  # complete: left alone
    assert path.stat().st_mtime_ns == before


def _import_with_fake_wget(tmp_path: Path, code: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Run ``code`` with HOME=tmp and a ``wget`` on PATH that only records that it was called."""
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    bin_dir.mkdir()
    home.mkdir()
    marker = tmp_path / "wget_was_called"
    wget = bin_dir / "wget"
    wget.write_text(f"#!/bin/sh\necho \"$@\" > '{marker}'\nexit 1\n")
    wget.chmod(0o755)
    env = dict(os.environ, HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )
    return proc, marker


def test_importing_cnn14_never_runs_wget(tmp_path):
    code = (
        "from pipeline.backbones.audio import _import_cnn14\n"
        "_import_cnn14()\n"
        "import panns_inference.config as c\n"
        "assert len(c.labels) == 527 and c.labels[0] == 'Speech', len(c.labels)\n"
    )
    proc, marker = _import_with_fake_wget(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    assert (tmp_path / "home" / "panns_data" / "class_labels_indices.csv").is_file()


def test_plain_panns_import_would_run_wget(tmp_path):
    """Control for the test above: without the prepared CSV the import does call wget."""
    proc, marker = _import_with_fake_wget(tmp_path, "import panns_inference")
    assert marker.exists() and "class_labels_indices.csv" in marker.read_text()
    assert proc.returncode != 0  # and then crashes reading the file wget did not write


# ----------------------------------------------------------------------------- PANN Cnn14


def test_pann_without_weights_is_refused():
    with pytest.raises(ValueError, match=r"weights\.audio\.local_path") as err:
        build_pann_cnn14()
    assert str(err.value) == PANN_WEIGHTS_HINT
    with pytest.raises(ValueError, match="PANN Cnn14 checkpoint is required"):
        build_audio_backbone("pann_cnn14")


@pytest.fixture(scope="module")
def source_cnn14():
    """A random-init Cnn14 with non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(0)
    model = _import_cnn14()(**CNN14_CONFIG)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def official_style_ckpt(source_cnn14, tmp_path_factory) -> Path:
    """Written like audioset_tagging_cnn: weights under "model" beside the sampler's numpy state."""
    path = tmp_path_factory.mktemp("pann") / "Cnn14_random.pth"
    sampler = {
        "indexes_per_class": [np.arange(5, dtype=np.int64), np.arange(3, dtype=np.int64)],
        "pointers_of_classes": [np.int64(2), np.int64(1)],
        "random_state": np.random.RandomState(1).get_state(),
    }
    torch.save({"iteration": 660000, "model": source_cnn14.state_dict(), "sampler": sampler}, path)
    return path


def test_checkpoint_round_trip(source_cnn14, official_style_ckpt):
    loaded = build_pann_cnn14(official_style_ckpt)
    assert isinstance(loaded, PannCnn14) and not loaded.training
    assert (loaded.name, loaded.feature_dim, loaded.sample_rate) == ("pann_cnn14", 2048, 32000)
    assert len(loaded.labels) == 527 and loaded.labels[0] == "Speech"
    assert loaded.weights_sha256 == hashlib.sha256(official_style_ckpt.read_bytes()).hexdigest()

    x = torch.randn(2, SR, generator=torch.Generator().manual_seed(1)) * 0.1  # [2, 32000]
    with torch.inference_mode():
        ref = source_cnn14(x)
        emb, probs = loaded(x), loaded.classify(x)
    assert emb.shape == (2, 2048) and probs.shape == (2, 527)
    assert torch.equal(emb, ref["embedding"])
    assert torch.equal(probs, ref["clipwise_output"])
    assert float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0


def test_min_samples_is_the_real_minimum_and_short_windows_are_padded(source_cnn14):
    wrapper = PannCnn14(source_cnn14)
    assert wrapper.min_samples == 31 * 320 == 9920
    g = torch.Generator().manual_seed(2)
    with torch.inference_mode():
        assert source_cnn14(torch.randn(1, 9920, generator=g))["embedding"].shape == (1, 2048)
        with pytest.raises(RuntimeError, match="too small"):
            source_cnn14(torch.randn(1, 9919, generator=g))
        short = torch.randn(2, 4000, generator=g) * 0.1  # [2, 4000], 0.125 s
        padded = torch.cat([short, torch.zeros(2, 9920 - 4000)], dim=1)  # [2, 9920]
        assert torch.equal(wrapper(short), source_cnn14(padded)["embedding"])


def test_bare_state_dict_is_accepted(tmp_path):
    state = {"bn0.weight": torch.arange(4.0), "fc1.bias": torch.ones(2)}
    torch.save(state, tmp_path / "bare.pth")
    got = load_pann_state_dict(tmp_path / "bare.pth")
    assert got.keys() == state.keys() and torch.equal(got["bn0.weight"], state["bn0.weight"])


def test_broken_checkpoints_are_refused_naming_the_file(tmp_path, source_cnn14, official_style_ckpt):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"<html>404 not found</html>")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(official_style_ckpt.read_bytes()[:100_000])
    code = tmp_path / "code.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "args": argparse.Namespace(lr=1)}, code)
    for path in (garbage, truncated, code):
        with pytest.raises(ValueError, match=str(path.name)):
            load_pann_state_dict(path)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_pann_state_dict(tmp_path / "missing.pth")

    subset = tmp_path / "subset.pth"
    torch.save({"model": {"bn0.weight": torch.ones(64), "head.weight": torch.ones(1)}}, subset)
    before = source_cnn14.fc1.weight.clone()
    with pytest.raises(ValueError, match=r"subset\.pth.*missing keys.*unexpected keys.*head\.weight"):
        load_pann_weights(source_cnn14, subset)
    assert torch.equal(source_cnn14.fc1.weight, before)  # nothing loaded

    state = dict(source_cnn14.state_dict())
    state["fc_audioset.weight"] = torch.zeros(10, 2048)
    with pytest.raises(ValueError, match=r"x\.pth.*shape mismatch.*fc_audioset\.weight.*\(10, 2048\)"):
        load_state_checked(source_cnn14, state, "x.pth", "PANN Cnn14")


# ----------------------------------------------------------------------------- log-mel


@pytest.fixture(scope="module")
def logmel():
    return build_logmel()


def _signals() -> torch.Tensor:
    """[3, 64000]: 2 s of silence, a 1 kHz sine (amplitude 0.5), white noise (sigma 0.1)."""
    t = torch.arange(2 * SR, dtype=torch.float64) / SR
    tone = (0.5 * torch.sin(2 * math.pi * 1000.0 * t)).float()
    noise = torch.randn(2 * SR, generator=torch.Generator().manual_seed(0)) * 0.1
    return torch.stack([torch.zeros(2 * SR), tone, noise])


def test_logmel_interface(logmel):
    assert (logmel.name, logmel.feature_dim, logmel.sample_rate, logmel.labels) == (
        "logmel", 128, 32000, None,
    )
    with pytest.raises(ValueError, match="no classifier"):
        logmel.classify(torch.zeros(1, SR))
    assert build_audio_backbone("logmel", n_mels=32).feature_dim == 64
    with pytest.raises(ValueError, match="fmax"):
        build_logmel(fmax=20000)


def test_logmel_silence_tone_noise(logmel):
    with torch.inference_mode():
        feats = logmel(_signals())  # [3, 128]
    mean, std = feats[:, :64], feats[:, 64:]  # [3, 64] each
    silence, tone, noise = mean

    # silence: the 1e-10 floor, exactly -100 dB everywhere, constant over time
    assert torch.equal(silence, torch.full((64,), -100.0)) and torch.equal(std[0], torch.zeros(64))

    # the tone peaks in the band whose centre is nearest 1 kHz, far above its other bands
    centres = librosa.mel_frequencies(64 + 2, fmin=50, fmax=14000)[1:-1]
    peak = int(np.abs(centres - 1000.0).argmin())
    assert int(tone.argmax()) == peak
    assert float(tone[peak]) > float(tone.median()) + 60.0

    # white noise: Slaney filters have unit area, so every band holds sigma^2 * sum(w^2) / df;
    # with sum(hann^2) = 3/8 * 1024 = 384 and df = 31.25 Hz that is 10 log10(0.12288) = -9.11 dB.
    # Wide bands (above 4 kHz) average many bins, so their mean log power sits close to it.
    expected = 10 * math.log10(0.1**2 * 384 / (SR / 1024))
    wide = torch.from_numpy(centres > 4000)
    assert torch.all((noise[wide] - expected).abs() < 1.0)
    assert torch.all((noise - expected).abs() < 2.5)  # narrow bands: log of few bins, biased low

    # ordering of band energies
    assert torch.all(noise > silence) and torch.all(tone[peak] > noise)


def test_logmel_batch_rows_are_independent_and_short_windows_padded(logmel):
    x = _signals()  # [3, 64000]
    with torch.inference_mode():
        batch = logmel(x)  # [3, 128]
        for i in range(3):
            torch.testing.assert_close(batch[i : i + 1], logmel(x[i : i + 1]), atol=1e-3, rtol=1e-4)
        short = x[1:, :500]  # [2, 500] < n_fft
        padded = torch.cat([short, torch.zeros(2, 1024 - 500)], dim=1)  # [2, 1024]
        assert torch.equal(logmel(short), logmel(padded))
        assert torch.isfinite(logmel(short)).all()
