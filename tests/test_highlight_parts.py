"""The parts of `hpcl highlight` that need no trained model: segmentation, window choice, the
reel (decoded back: duration, frames shown, timestamps, audio), the demo proof's counting."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from pipeline.decoding import probe_video
from pipeline.highlight.proof import demo_proof
from pipeline.highlight.reel import plan_frames, write_reel
from pipeline.highlight.segmentation import Segmentation, segment_video, segmentation_from_table, windows
from pipeline.highlight.windows import default_budget, highlight_windows, union_length
from test_decoding import dominant_frequency, frame_ids, rotate_mp4_clockwise, sine, write_video

# ----------------------------------------------------------------------------- segmentation


def test_windows_rule_youtube_clips_and_tails():
    w = windows(1000, 100, 50)  # the authors' 100-frame clips with stride 50
    assert len(w) == 19 and w[0].tolist() == [0, 100] and w[-1].tolist() == [900, 1000]
    assert windows(5.3, 2, 2).tolist() == [[0, 2], [2, 4], [4, 5.3]]  # tail 1.3 s >= half a window: kept
    assert windows(4.5, 2, 2).tolist() == [[0, 2], [2, 4]]  # tail 0.5 s < half: dropped
    assert windows(1.0, 2, 2).tolist() == [[0, 1]]  # shorter than one window: the only one stays


def test_segmentation_from_table_frames_and_seconds():
    table = pd.DataFrame({"vid": ["a"] * 3 + ["b"] * 2, "seg_idx": [0, 1, 2, 0, 1],
                          "start_frame": [0, 50, 100, 0, 50], "end_frame": [100, 150, 200, 100, 150],
                          "start_s": np.nan, "end_s": np.nan})
    assert segmentation_from_table(table, "frames") == Segmentation("frames", 100, 50)
    # seconds from frames through each video's frame rate
    assert segmentation_from_table(table, "seconds", {"a": 25.0, "b": 25.0}) == Segmentation("seconds", 4.0, 2.0)
    with pytest.raises(ValueError, match="frame rates"):
        segmentation_from_table(table, "seconds")


def test_segment_override_only_for_time_based():
    assert Segmentation("seconds", 2, 2).with_seconds(3) == Segmentation("seconds", 3, 3)
    assert Segmentation("seconds", 2, 1).with_seconds(4) == Segmentation("seconds", 4, 2)
    with pytest.raises(ValueError, match="100 frames"):
        Segmentation("frames", 100, 50).with_seconds(3)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    plain = write_video(root / "plain.mp4", num_frames=100, width=32, height=24, fps=25,
                        audio=sine(440, 4.0, 48000, (0.5,)), sample_rate=48000)
    silent = write_video(root / "silent.mp4", num_frames=60, width=32, height=24, fps=25)
    return {
        "plain": plain,
        "silent": silent,
        "rotated": rotate_mp4_clockwise(silent, root / "rotated.mp4"),
        # frames 0-19 every 20 ms, then every 80 ms from 0.4 s (3.6 s in all)
        "vfr": write_video(root / "vfr.mp4", num_frames=60,
                           pts_ms=[20 * i if i < 20 else 400 + 80 * (i - 20) for i in range(60)]),
    }


def test_segment_video_frames_unit_gets_seconds_from_frame_times(clips):
    info = probe_video(clips["vfr"])
    rows = segment_video("v", "vfr.mp4", info, Segmentation("frames", 20, 20))
    assert rows["start_frame"].tolist() == [0, 20, 40]
    assert np.allclose(rows["start_s"], [0.0, 0.4, 2.0], atol=1e-3)  # frame 20 is at 0.4 s, frame 40 at 2.0 s
    rows = segment_video("v", "vfr.mp4", info, Segmentation("seconds", 1.0, 1.0))
    assert np.isnan(rows["start_frame"]).all() and rows["start_s"].tolist()[:2] == [0.0, 1.0]


# ----------------------------------------------------------------------------- windows


def test_default_budget():
    assert default_budget(100.0) == 15.0 and default_budget(600.0) == 30.0


def test_windows_budget_merging_and_ranking():
    s = np.arange(10) * 2.0
    e = s + 2.0
    scores = np.array([0.1, 0.9, 0.8, 0.2, 0.1, 0.7, 0.1, 0.1, 0.95, 0.1])
    w = highlight_windows(s, e, scores, top_seconds=6)
    # 0.95 (16-18), 0.9 (2-4), 0.8 (4-6) fit in 6 s; 0.7 would make 8 s: stop
    assert [(x.start_s, x.end_s) for x in w] == [(16.0, 18.0), (2.0, 6.0)]
    assert w[1].score == pytest.approx(0.85) and w[1].segments == (1, 2)
    assert [(x.start_s, x.end_s) for x in highlight_windows(s, e, scores, top_k=4)] == [(16, 18), (2, 6), (10, 12)]
    cut = highlight_windows(s, e, scores, top_seconds=1)  # nothing fits: the best segment cut around its centre
    assert [(x.start_s, x.end_s) for x in cut] == [(16.5, 17.5)]


def test_overlapping_segments_budget_counts_the_union():
    s = np.array([0.0, 1.0, 2.0, 3.0])
    e = s + 2.0
    w = highlight_windows(s, e, np.array([0.9, 0.8, 0.1, 0.7]), top_seconds=3)
    assert [(x.start_s, x.end_s) for x in w] == [(0.0, 3.0)]  # 0-2 and 1-3: union 3 s; adding 3-5 would be 5 s
    assert union_length([(0, 2), (1, 3), (5, 6)]) == 4


# ----------------------------------------------------------------------------- the reel


def _decode(path: Path):
    with av.open(str(path)) as c:
        has_audio = bool(c.streams.audio)
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    samples = None
    if has_audio:
        with av.open(str(path)) as c:
            samples = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    return frames, samples


def test_reel_duration_timestamps_frames_and_audio(clips):
    reel = write_reel(clips["plain"], [(0.4, 1.2), (2.0, 3.0)], clips["plain"].parent / "reel.mp4", fade_s=0.0)
    frames, samples = _decode(Path(reel["path"]))
    assert reel["fps"] == 25 and reel["frames"] == 20 + 25 and reel["duration_s"] == pytest.approx(1.8)
    assert len(frames) == 45
    assert np.allclose([t for t, _ in frames], np.arange(45) / 25.0, atol=1e-3)  # constant rate from 0
    ids = frame_ids(np.stack([img for _, img in frames]))
    assert ids.tolist() == list(range(10, 30)) + list(range(50, 75))  # the source frames of both windows
    assert reel["has_audio"] and samples is not None
    # AAC pads to whole 1024-sample frames: within one frame of the pictures' duration
    assert abs(len(samples) / 48000 - 1.8) < 1024 / 48000 + 1e-9
    assert dominant_frequency(samples[4800:43200], 48000) == pytest.approx(440, abs=5)
    assert [w[2] for w in reel["windows"]] == pytest.approx([0.0, 0.8])


def test_reel_fades_at_joins(clips):
    reel = write_reel(clips["plain"], [(0.4, 1.2), (2.0, 3.0)], clips["plain"].parent / "fade.mp4", fade_s=0.2)
    frames, samples = _decode(Path(reel["path"]))
    brightness = np.array([img.mean() for _, img in frames])
    assert brightness[0] < 0.3 * brightness[10] and brightness[19] < 0.3 * brightness[10]  # out at the join
    assert brightness[20] < 0.3 * brightness[30]  # and in again
    rms = lambda x: float(np.sqrt(np.mean(x ** 2)))  # noqa: E731
    assert rms(samples[:480]) < 0.3 * rms(samples[9600:19200])  # the sound fades in too


def test_reel_of_video_without_audio_rotated_and_vfr(clips):
    reel = write_reel(clips["silent"], [(0.0, 1.0)], clips["silent"].parent / "silent_reel.mp4")
    frames, samples = _decode(Path(reel["path"]))
    assert not reel["has_audio"] and samples is None and len(frames) == 25
    rot = write_reel(clips["rotated"], [(0.0, 1.0)], clips["rotated"].parent / "rot_reel.mp4", fade_s=0.0)
    frames, _ = _decode(Path(rot["path"]))
    assert frames[0][1].shape[:2] == (32, 24)  # upright: display size, not the coded 24 x 32
    assert frame_ids(np.stack([img for _, img in frames]), transpose=True).tolist() == list(range(25))
    info = probe_video(clips["vfr"])
    vfr = write_reel(clips["vfr"], [(0.2, 0.8)], clips["vfr"].parent / "vfr_reel.mp4", info=info, fade_s=0.0)
    frames, _ = _decode(Path(vfr["path"]))
    expected = plan_frames([(0.2, 0.8)], info, vfr["fps"])[0]
    # each output frame shows the source frame on screen at its time: 20 ms frames, then 80 ms ones
    assert frame_ids(np.stack([img for _, img in frames])).tolist() == expected.tolist()
    # by hand: the average rate is 60 frames / 3.56 s = 1500/89 fps, so output frame k is at 0.2 + k * 89/1500 s
    assert vfr["fps"] == pytest.approx(1500 / 89)
    assert expected.tolist() == [10, 12, 15, 18, 20, 21, 21, 22, 23, 24]


def test_reel_refuses_overlapping_windows(clips):
    with pytest.raises(ValueError, match="overlap"):
        write_reel(clips["plain"], [(0.0, 1.0), (0.5, 1.5)], clips["plain"].parent / "bad.mp4")


# ----------------------------------------------------------------------------- the demo proof


def test_demo_proof_counts(tmp_path):
    demo = tmp_path / "demo"
    vdir = demo / "annotations" / "stadium" / "stadium_000"
    vdir.mkdir(parents=True)
    clips_ = [[0, 16], [16, 32], [32, 48], [48, 64]]  # 2 s each at 8 fps
    (vdir / "match_label.json").write_text(json.dumps([clips_, [1, -1, 1, -1]]))
    events = [{"kind": "visual", "visual": [16, 32], "audio": None},
              {"kind": "audio", "visual": None, "audio": [48 * 4000, 64 * 4000]}]
    (demo / "demo.json").write_text(json.dumps({"params": {"audio_rate": 32000}, "videos": {
        "stadium_000": {"domain": "stadium", "fps": 8, "events": events}}}))
    out = tmp_path / "hl"
    out.mkdir()
    # segment 0 fully in the reel, segment 1 exactly half (not more): out, segment 3 (audio distractor) in
    (out / "stadium_000.json").write_text(json.dumps({"windows": [[0.0, 3.0, 0.9], [6.0, 8.0, 0.5]]}))
    (out / "other.json").write_text(json.dumps({"windows": []}))  # not a demo video: ignored
    r = demo_proof(out, demo)
    assert (r["videos"], r["reel_segments"], r["distractor_segments"]) == (1, 2, 2)
    assert r["precision"] == 0.5 and r["highlight_recall"] == 0.5 and r["distractors_in_reel"] == 0.5
