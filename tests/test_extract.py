"""Extraction runner: table -> store, failures, resume after kill -9, no-audio videos, checks, bench, devices.

``TinyVisual`` / ``TinyAudio`` are small real torch modules with the backbone interface (test
fixtures, not product parts); the real ``i3d`` (random init, tiny crop) and ``logmel`` backbones run
too. Videos are written with PyAV by the helpers in test_decoding.py.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from pipeline.decoding import iter_audio_windows, iter_segment_frames
from pipeline.device import autocast_context, resolve_device, set_cpu_threads
from pipeline.extract import (
    ExtractionError,
    batched,
    bench_extract,
    check_backbones,
    extract_audio,
    extract_visual,
    video_jobs,
)
from pipeline.paths import UnsafeIdError
from pipeline.store import failures_path, parts_dir, read_store, store_attrs, video_attrs
from pipeline.transforms import video_to_tensor
from test_decoding import sine, write_video

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent


class TinyVisual(nn.Module):
    """Conv3d + ReLU + global mean: clips [B, 3, F, 16, 16] -> [B, 6]; 3 classes."""

    name = "tiny_visual"
    feature_dim = 6
    crop_size = 16
    labels = ["red", "green", "blue"]

    def __init__(self, seed: int = 0):
        super().__init__()
        self.conv = nn.Conv3d(3, 6, kernel_size=3, padding=1)
        self.head = nn.Linear(6, 3)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        return video_to_tensor(frames, self.crop_size)  # [3, F, 16, 16] in [-1, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3, 4))  # [B, 6]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward(x))  # [B, 3]


class TinyAudio(nn.Module):
    """Hand-checkable waveform statistics: [rms, zero-crossing frequency (Hz), peak, seconds]."""

    name = "tiny_audio"
    feature_dim = 4
    sample_rate = 32000
    min_samples = 320
    labels = ["quiet", "loud"]

    def forward(self, w: torch.Tensor) -> torch.Tensor:  # w [B, N]
        rms = w.pow(2).mean(dim=1).sqrt()  # [B]
        crossings = (torch.sign(w[:, 1:]) != torch.sign(w[:, :-1])).float().sum(dim=1)  # [B]
        freq = crossings / 2 / (w.shape[1] / self.sample_rate)
        seconds = torch.full_like(rms, w.shape[1] / self.sample_rate)
        return torch.stack([rms, freq, w.abs().amax(dim=1), seconds], dim=1)  # [B, 4]

    def classify(self, w: torch.Tensor) -> torch.Tensor:
        rms = w.pow(2).mean(dim=1).sqrt()
        return torch.stack([1 - rms, rms], dim=1)  # [B, 2]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("media")
    write_video(root / "a.mp4", 60, 32, 24, fps=25, audio=sine(440, 2.4, 48000, (0.5, 0.0)))  # stereo, L only
    write_video(root / "b.mp4", 40, 38, 22, fps=30)  # no audio, odd size
    write_video(root / "c.mp4", 50, 24, 32, fps=25, audio=sine(880, 2.0, 44100, (0.3,)), sample_rate=44100)
    (root / "broken.mp4").write_bytes((root / "a.mp4").read_bytes()[:1500])
    (root / "empty.mp4").write_bytes(b"")
    return root


def segment_table(rows: list[tuple]) -> pd.DataFrame:
    """rows: (vid, video, start_frame, end_frame, start_s, end_s) in seg_idx order per video."""
    out, counter = [], {}
    for vid, video, sf, ef, ss, es in rows:
        out.append(
            {"vid": vid, "domain": "d", "split": "train", "seg_idx": counter.get(vid, 0), "start_frame": sf,
             "end_frame": ef, "start_s": ss, "end_s": es, "fps": None, "label": 0, "match": None,
             "scores": "[]", "video": video}
        )
        counter[vid] = counter.get(vid, 0) + 1
    return pd.DataFrame(out)


NAN = float("nan")
GOOD_ROWS = [
    ("a", "a.mp4", 0, 20, NAN, NAN), ("a", "a.mp4", 10, 30, NAN, NAN), ("a", "a.mp4", 20, 40, NAN, NAN),
    ("a", "a.mp4", 40, 60, NAN, NAN),
    ("b", "b.mp4", NAN, NAN, 0.0, 0.5), ("b", "b.mp4", NAN, NAN, 0.5, 1.0), ("b", "b.mp4", NAN, NAN, 1.0, 1.4),
    ("c", "c.mp4", 25, 50, NAN, NAN), ("c", "c.mp4", 0, 25, NAN, NAN),  # annotation order is not time order
]
BAD_ROWS = [
    ("broken", "broken.mp4", 0, 10, NAN, NAN), ("empty", "empty.mp4", 0, 10, NAN, NAN),
    ("gone", "gone.mp4", 0, 10, NAN, NAN), ("nofile", "", 0, 10, NAN, NAN),
    ("late", "a.mp4", 100, 120, NAN, NAN),  # starts after the video's 60 frames
]


def expected_visual(model: TinyVisual, path: Path, segments, frames_per_segment: int) -> np.ndarray:
    """The features computed segment by segment, the slow obvious way -> [T, D]."""
    out = []
    for seg in segments:
        (_, frames), = iter_segment_frames(path, [seg], frames_per_segment, short_side=model.crop_size)
        with torch.inference_mode():
            out.append(model(model.preprocess(frames)[None])[0].numpy())
    return np.stack(out)


def test_extract_visual_features_failures_and_attrs(media, tmp_path, one_torch_thread):
    model = TinyVisual()
    store = tmp_path / "visual.h5"
    summary = extract_visual(
        segment_table(GOOD_ROWS + BAD_ROWS), media, model, store, frames_per_segment=4, batch_size=3,
        max_failures=5, progress=False, weights_sha256="cafe",
    )
    assert summary["videos"] == 8 and summary["extracted"] == 3 and summary["failed"] == 5
    assert summary["segments"] == 9 and summary["resumed"] == 0
    feats = read_store(store)
    assert sorted(feats) == ["a", "b", "c"]
    np.testing.assert_allclose(feats["a"], expected_visual(model, media / "a.mp4", [(0, 20), (10, 30), (20, 40), (40, 60)], 4), rtol=1e-5, atol=1e-6)
    # b's shots in seconds at 30 fps -> the frames starting inside: [0, 15), [15, 30), [30, 40) (the video ends)
    np.testing.assert_allclose(feats["b"], expected_visual(model, media / "b.mp4", [(0, 15), (15, 30), (30, 40)], 4), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats["c"], expected_visual(model, media / "c.mp4", [(25, 50), (0, 25)], 4), rtol=1e-5, atol=1e-6)
    assert not np.allclose(feats["c"][0], feats["c"][1])
    attrs = store_attrs(store)
    assert (attrs["backbone"], attrs["weights_sha256"], attrs["frames_per_segment"], attrs["crop_size"]) == ("tiny_visual", "cafe", 4, 16)
    assert attrs["modality"] == "visual" and attrs["feature_dim"] == 6 and attrs["decode_short_side"] == 16
    assert video_attrs(store)["b"] == {"fps": 30.0, "num_frames": 40, "num_segments": 3}
    with open(failures_path(store)) as fh:
        rows = {r["vid"]: r for r in csv.DictReader(fh)}
    assert {v: rows[v]["stage"] for v in rows} == {
        "broken": "probe", "empty": "probe", "gone": "locate", "nofile": "locate", "late": "segments"
    }
    assert "empty.mp4" in rows["empty"]["message"] and "gone.mp4" in rows["gone"]["message"]
    assert "a.mp4 segment 0" in rows["late"]["message"]
    assert not parts_dir(store).exists()


def test_batches_span_videos_ends_wait_for_their_batch_and_failures_drop_clips():
    x, wide = torch.zeros(2), torch.zeros(3)
    items = [
        ("begin", "a", 2), ("clip", "a", 1, x), ("clip", "a", 0, x), ("end", "a", {}),
        ("begin", "b", 2), ("clip", "b", 0, x),
        ("begin", "c", 2), ("clip", "c", 0, x), ("fail", "c", "decode", OSError("x")),
        ("clip", "b", 1, wide), ("end", "b", {}),
    ]
    out = list(batched(iter(items), batch_size=3, pin=False))
    summary = [(m[0], m[1], m[2].tolist()) if m[0] == "batch" else m[:2] for m in out]
    assert summary == [
        ("begin", "a"), ("begin", "b"),
        ("batch", ["a", "a", "b"], [1, 0, 0]), ("end", "a"),  # a's end only after its batch
        ("begin", "c"), ("fail", "c"),  # c's waiting clip is dropped
        ("batch", ["b"], [1]), ("end", "b"),  # a different shape starts a new batch
    ]
    assert out[2][3].shape == (3, 2) and out[6][3].shape == (1, 3)


def test_two_decoder_threads_give_the_same_features(media, tmp_path, one_torch_thread):
    table = segment_table(GOOD_ROWS)
    one = extract_visual(table, media, TinyVisual(), tmp_path / "one.h5", frames_per_segment=4, batch_size=2, progress=False)
    two = extract_visual(table, media, TinyVisual(), tmp_path / "two.h5", frames_per_segment=4, batch_size=2,
                         num_workers=2, progress=False)
    assert one["segments"] == two["segments"] == 9
    a, b = read_store(tmp_path / "one.h5"), read_store(tmp_path / "two.h5")
    assert sorted(a) == sorted(b)
    for vid in a:
        np.testing.assert_allclose(a[vid], b[vid], rtol=1e-5, atol=1e-6)


def test_too_many_failures_raise_but_keep_work_and_resume(media, tmp_path, one_torch_thread):
    model = TinyVisual()
    store = tmp_path / "visual.h5"
    table = segment_table(GOOD_ROWS + BAD_ROWS[:2])
    with pytest.raises(ExtractionError, match=r"2 video\(s\) failed.*max_failures=1(.|\n)*broken(.|\n)*empty"):
        extract_visual(table, media, model, store, frames_per_segment=4, batch_size=3, max_failures=1, progress=False)
    assert not store.exists()
    assert {p.stem for p in parts_dir(store).glob("*.npz")} == {"a", "b", "c"}
    with open(failures_path(store)) as fh:
        assert sorted(r["vid"] for r in csv.DictReader(fh)) == ["broken", "empty"]
    # the user fixes the table (drops the broken files): the rerun only finalizes
    summary = extract_visual(segment_table(GOOD_ROWS), media, model, store, frames_per_segment=4, batch_size=3, progress=False)
    assert summary["resumed"] == 3 and summary["extracted"] == 0 and summary["segments"] == 0
    assert sorted(read_store(store)) == ["a", "b", "c"]


KILL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {tests!r})
import pandas as pd, torch
torch.set_num_threads(1)
from test_extract import TinyVisual
from pipeline.extract import extract_visual

class KilledMidRun(TinyVisual):
    calls = 0
    def forward(self, x):
        KilledMidRun.calls += 1
        if KilledMidRun.calls == 4:  # the second batch of the second video
            os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(x)

extract_visual(pd.read_csv({table!r}), {media!r}, KilledMidRun(), {store!r}, frames_per_segment=4, batch_size=2,
               progress=False)
"""


def test_kill_9_mid_run_then_resume_equals_uninterrupted(media, tmp_path, one_torch_thread):
    rows = [(v, f"{v}.mp4", s, s + 12, NAN, NAN) for v in ("a", "c", "b") for s in (0, 8, 16, 24)]
    table = segment_table(rows)
    table_csv = tmp_path / "segments.csv"
    table.to_csv(table_csv, index=False)
    killed = tmp_path / "killed" / "visual.h5"
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=str(TESTS_DIR), table=str(table_csv), media=str(media), store=str(killed)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not killed.exists()
    assert {p.stem for p in parts_dir(killed).glob("*.npz")} == {"a"}  # c was half done: not committed

    resumed = extract_visual(table, media, TinyVisual(), killed, frames_per_segment=4, batch_size=2, progress=False)
    assert resumed["resumed"] == 1 and resumed["extracted"] == 2

    clean = tmp_path / "clean" / "visual.h5"
    extract_visual(table, media, TinyVisual(), clean, frames_per_segment=4, batch_size=2, progress=False)
    a, b = read_store(killed), read_store(clean)
    assert sorted(a) == sorted(b) == ["a", "b", "c"]
    for vid in a:
        np.testing.assert_array_equal(a[vid], b[vid])
    sa, sb = store_attrs(killed), store_attrs(clean)
    sa.pop("created"), sb.pop("created")
    assert sa == sb


def test_extract_audio_windows_downmix_and_no_audio(media, tmp_path):
    rows = [
        ("a", "a.mp4", 0, 20, NAN, NAN), ("a", "a.mp4", 10, 40, NAN, NAN), ("a", "a.mp4", 25, 50, NAN, NAN),
        ("b", "b.mp4", NAN, NAN, 0.0, 0.5), ("b", "b.mp4", NAN, NAN, 0.5, 1.3),
        ("c", "c.mp4", NAN, NAN, 1.0, 1.5), ("c", "c.mp4", NAN, NAN, 0.0, 1.2),
        ("gone", "gone.mp4", NAN, NAN, 0.0, 1.0),
    ]
    store = tmp_path / "audio.h5"
    summary = extract_audio(segment_table(rows), media, TinyAudio(), store, min_window_s=1.0, batch_size=2,
                            max_failures=1, progress=False)
    assert summary["extracted"] == 3 and summary["no_audio"] == 1 and summary["failed"] == 1
    feats = read_store(store)
    a = feats["a"]  # [3, 4]: rms, Hz, peak, seconds
    # 440 Hz at 0.5 on the left only -> mono amplitude 0.5 / sqrt(2) (FFmpeg's (L + R) / sqrt(2))
    # window 0 (0.8 s) is padded to [-0.1, 0.9] s: a tenth of it is before the audio (zeros)
    np.testing.assert_allclose(a[:, 0], [0.25 * np.sqrt(0.9), 0.25, 0.25], rtol=0.03)
    np.testing.assert_allclose(a[:, 1], [440 * 0.9, 440, 440], rtol=0.02)
    np.testing.assert_allclose(a[:, 3], [1.0, 1.2, 1.0])  # 20 frames = 0.8 s padded to 1 s; 30 frames = 1.2 s
    np.testing.assert_array_equal(feats["b"], np.zeros((2, 4), np.float32))
    c = feats["c"]
    np.testing.assert_allclose(c[:, 0], 0.3 / np.sqrt(2), rtol=0.03)
    np.testing.assert_allclose(c[:, 1], 880, rtol=0.02)
    np.testing.assert_allclose(c[:, 3], [1.0, 1.2])  # annotation order kept
    per_video = video_attrs(store)
    assert per_video["b"]["has_audio"] is False and per_video["a"]["has_audio"] is True
    attrs = store_attrs(store)
    assert (attrs["modality"], attrs["sample_rate"], attrs["min_window_s"]) == ("audio", 32000, 1.0)
    assert attrs["downmix"] == "ffmpeg-swresample-default-mono"


def test_real_backbones_through_the_runner(media, tmp_path):
    from pipeline.backbones import build_audio_backbone, build_visual_backbone

    i3d = build_visual_backbone("i3d", crop_size=32)
    table = segment_table([("a", "a.mp4", 0, 30, NAN, NAN), ("a", "a.mp4", 30, 60, NAN, NAN)])
    extract_visual(table, media, i3d, tmp_path / "visual.h5", frames_per_segment=8, batch_size=2, progress=False)
    feats = read_store(tmp_path / "visual.h5")["a"]
    assert feats.shape == (2, 1024) and np.isfinite(feats).all()
    assert store_attrs(tmp_path / "visual.h5")["backbone"] == "i3d"

    logmel = build_audio_backbone("logmel")
    table = segment_table([("a", "a.mp4", 0, 30, NAN, NAN), ("a", "a.mp4", 30, 60, NAN, NAN), ("b", "b.mp4", 0, 40, NAN, NAN)])
    extract_audio(table, media, logmel, tmp_path / "audio.h5", batch_size=4, progress=False)
    feats = read_store(tmp_path / "audio.h5")
    assert feats["a"].shape == (2, 128) and feats["b"].shape == (1, 128)
    windows = [(0.0, 1.2), (1.2, 2.4)]
    expected = np.stack([x for _, x in iter_audio_windows(media / "a.mp4", windows)])
    with torch.inference_mode():
        np.testing.assert_allclose(feats["a"], logmel(torch.from_numpy(expected)).numpy(), rtol=1e-5, atol=1e-4)
    assert not feats["b"].any()


def test_table_validation_names_the_video(tmp_path):
    table = segment_table(GOOD_ROWS)
    with pytest.raises(ValueError, match="'a' has seg_idx"):
        video_jobs(table.drop(index=1), tmp_path)
    with pytest.raises(ValueError, match="'b' segment 1 has neither"):
        video_jobs(segment_table(GOOD_ROWS[4:5] + [("b", "b.mp4", NAN, NAN, 0.5, NAN)]), tmp_path)
    with pytest.raises(UnsafeIdError):
        video_jobs(segment_table([("../x", "x.mp4", 0, 1, NAN, NAN)]), tmp_path)
    with pytest.raises(UnsafeIdError, match="leaves the data folder"):
        video_jobs(segment_table([("x", "../../etc/passwd", 0, 1, NAN, NAN)]), tmp_path)
    jobs = video_jobs(table, tmp_path)
    assert [j.vid for j in jobs] == ["a", "b", "c"] and [j.num_segments for j in jobs] == [4, 3, 2]


def test_check_backbones(media, tmp_path):
    result = check_backbones(media / "a.mp4", TinyVisual(), TinyAudio(), topk=2, visual_frames=16)
    assert [r["label"] for r in result["visual"]] != [] and len(result["visual"]) == 2
    probs = [r["prob"] for r in result["visual"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    # 2.4 s of audio (whole track, shorter than 10 s): rms 0.25 -> [loud 0.25, quiet 0.75]
    assert [r["label"] for r in result["audio"]] == ["quiet", "loud"]
    assert result["audio"][1]["prob"] == pytest.approx(0.25, rel=0.05)
    assert check_backbones(media / "b.mp4", TinyVisual(), TinyAudio(), visual_frames=8)["audio"] is None


def test_check_backbones_real_i3d_on_a_real_clip(shared_data):
    from pipeline.backbones import build_audio_backbone, build_visual_backbone

    video = shared_data / "videos" / "bigbuckbunny.mp4"
    if not video.is_file():
        pytest.skip(f"{video} not found")
    result = check_backbones(video, build_visual_backbone("i3d", crop_size=32), build_audio_backbone("logmel"))
    assert len(result["visual"]) == 5 and all(r["label"] for r in result["visual"])
    assert result["audio"] is None  # logmel has no classes


def test_bench_extract_reports_consistent_rates(media):
    out = bench_extract(media / "c.mp4", TinyVisual(), segments=5, batch_size=2, frames_per_segment=4, segment_s=0.8,
                        rounds=2)
    cpu = out["cpu"]
    assert cpu["segments"] == 5 and out["rounds"] == 2  # 50 frames in 20-frame shots: 3 shots, cycled to 5
    rates = {k: cpu[k] for k in ("segments_per_s", "model_only_segments_per_s", "decode_only_segments_per_s")}
    assert all(v > 0 for v in rates.values()), rates
    assert cpu["overlap_efficiency"] == pytest.approx(cpu["segments_per_s"] / cpu["model_only_segments_per_s"], rel=1e-2)
    slowest = min(cpu["model_only_segments_per_s"], cpu["decode_only_segments_per_s"])
    assert cpu["efficiency_vs_bottleneck"] == pytest.approx(cpu["segments_per_s"] / slowest, rel=1e-2)
    assert cpu["bottleneck"] == ("decode" if slowest == cpu["decode_only_segments_per_s"] else "model")
    if not torch.cuda.is_available():  # the GPU column says why it is empty, side by side with the CPU one
        assert "not a CUDA GPU" in out["nvdec"]["unavailable"]


# ----------------------------------------------------------------------------- device


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda:0")
    else:
        with pytest.raises(RuntimeError, match="device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_autocast_context_and_threads():
    a = torch.randn(4, 4)
    with autocast_context("cpu", "none"):
        assert (a @ a).dtype == torch.float32
    for dtype in ("bf16", "fp16"):  # a GPU setting: CPU runs stay float32
        with autocast_context(torch.device("cpu"), dtype):
            assert (a @ a).dtype == torch.float32
    if torch.cuda.is_available():
        b = a.cuda()
        with autocast_context("cuda", "bf16"):
            assert (b @ b).dtype == torch.bfloat16
        with autocast_context("cuda:0", "fp16"):
            assert (b @ b).dtype == torch.float16
    with pytest.raises(ValueError, match="'fp8'"):
        autocast_context("cpu", "fp8")
    before = torch.get_num_threads()
    try:
        assert set_cpu_threads(1) == 1 and torch.get_num_threads() == 1
        assert set_cpu_threads(0) == (os.cpu_count() or 1)
    finally:
        torch.set_num_threads(before)

