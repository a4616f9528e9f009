"""The embedded demo dataset: layout, determinism, decodability and the events it promises."""

from __future__ import annotations

import json
from pathlib import Path

import av
import decord
import numpy as np
import pytest

from pipeline.demo import (
    DEMO_PRESETS,
    VLIST_SETS,
    DemoEvent,
    demo_preset,
    generate_demo,
    plan_events,
    rgb_to_yuv420p,
    segment_labels,
)
from pipeline.paths import UnsafeIdError

TINY = demo_preset("tiny")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo_a")
    return out, generate_demo(out, **TINY)


@pytest.fixture(scope="module")
def manifest(tiny) -> dict:
    return json.loads((tiny[0] / "demo.json").read_text())


def _frames(path: Path) -> np.ndarray:
    vr = decord.VideoReader(str(path))
    return vr.get_batch(list(range(len(vr)))).asnumpy()  # [N, H, W, 3]


def _audio(path: Path) -> tuple[np.ndarray, int]:
    """Decoded mono audio [N] at the stream's own rate."""
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].rate
        return np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)]), rate


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------ layout


def test_layout_matches_youtube_highlights(tiny, manifest):
    root, summary = tiny
    F, S = TINY["frames_per_segment"], TINY["stride"]
    counts = {"-1": 0, "0": 0, "1": 0}
    listed = []
    for domain in TINY["domains"]:
        vlist = json.loads((root / "annotations" / domain / "vlist.json").read_text())
        assert [name for _, name in vlist] == list(VLIST_SETS)
        vids = [v for group, _ in vlist for v in group]
        assert len(vids) == len(set(vids)) == TINY["videos_per_domain"]
        n_test = sum(len(g) for g, name in vlist if name.startswith("Test"))
        assert n_test == summary["domains"][domain]["test"] >= 1
        for vid in vids:
            folder = root / "annotations" / domain / vid
            clips = json.loads((folder / "clip.json").read_text())
            ml_clips, labels = json.loads((folder / "match_label.json").read_text())
            assert ml_clips == clips
            assert len(labels) == len(clips) == manifest["videos"][vid]["segments"] == TINY["segments_per_video"]
            assert clips == [[float(k * S), float(k * S + F)] for k in range(len(clips))]
            assert set(labels) <= {-1, 0, 1}
            assert (root / "videos" / f"{vid}.mp4").stat().st_size > 0
            for lab in labels:
                counts[str(lab)] += 1
        listed += vids
    assert sorted(listed) == sorted(manifest["videos"])
    assert summary["videos"] == len(listed)
    assert summary["segments"] == sum(counts.values())
    assert summary["labels"] == counts
    assert counts["1"] > 0 and counts["-1"] > 0 and counts["0"] > 0  # half-overlapping clips: borderline too
    assert sorted(p.name for p in (root / "videos").iterdir()) == sorted(f"{v}.mp4" for v in listed)


def test_annotation_reader_accepts_the_demo(tiny):
    from pipeline.annotations import prepare_dataset

    root, summary = tiny
    table, report = prepare_dataset("demo", root / "annotations", fmt="authors", split="authors",
                                    videos_dir=root / "videos")
    assert len(table) == summary["segments"]
    assert report["videos_not_found"] == []
    assert int(table["label"].sum()) == summary["labels"]["1"]
    assert report["per_split"]["test"]["videos"] == sum(d["test"] for d in summary["domains"].values())


# ------------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_other_seed_differs(tiny, tmp_path):
    root, _ = tiny
    again = tmp_path / "again"
    generate_demo(again, **TINY)
    a, b = _files(root), _files(again)
    assert sorted(a) == sorted(b)
    for name in a:
        if not name.endswith(".mp4"):
            assert a[name] == b[name], name
    vid = sorted(n for n in a if n.endswith(".mp4"))[0]
    np.testing.assert_array_equal(_frames(root / vid), _frames(again / vid))
    np.testing.assert_array_equal(_audio(root / vid)[0], _audio(again / vid)[0])
    # single-threaded x264 + native AAC + no timestamps in the mp4: byte-identical files
    assert all(a[n] == b[n] for n in a if n.endswith(".mp4"))

    other = tmp_path / "other"
    generate_demo(other, **{**TINY, "seed": 1, "domains": TINY["domains"][:1], "videos_per_domain": 2})
    first = f"{TINY['domains'][0]}_000"
    ml = f"annotations/{TINY['domains'][0]}/{first}/match_label.json"
    assert (json.loads((other / "demo.json").read_text())["videos"][first]["events"]
            != json.loads(a["demo.json"])["videos"][first]["events"])
    assert (other / ml).exists()


def test_refuses_to_overwrite_unless_asked(tiny, tmp_path):
    small = {**TINY, "domains": ("solo",), "videos_per_domain": 2, "segments_per_video": 24}
    generate_demo(tmp_path, **small)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_demo(tmp_path, **small)
    (tmp_path / "videos" / "stale.mp4").write_bytes(b"old")
    generate_demo(tmp_path, **small, overwrite=True)
    assert not (tmp_path / "videos" / "stale.mp4").exists()


# ---------------------------------------------------------------------------------- decoding


def test_videos_decode_with_decord_and_carry_aac_audio(tiny, manifest):
    root, _ = tiny
    vid, info = next(iter(manifest["videos"].items()))
    path = root / "videos" / f"{vid}.mp4"
    vr = decord.VideoReader(str(path))
    assert len(vr) == info["frames"]
    assert vr.get_avg_fps() == pytest.approx(TINY["fps"])
    assert vr[0].shape == (*TINY["size"], 3)
    with av.open(str(path)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        stream = c.streams.audio[0]
        assert stream.codec_context.name == "aac"
        assert stream.rate == TINY["audio_rate"]
        assert stream.codec_context.layout.name == "mono"
    audio, rate = _audio(path)
    # the whole soundtrack is there: AAC pads at most one 1024-sample frame at the end
    assert info["audio_samples"] <= len(audio) < info["audio_samples"] + 1024


# ------------------------------------------------------------------------ events as designed


def _event_masks(info: dict, n_frames: int, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    visual = np.zeros(n_frames, bool)
    loud = np.zeros(n_samples, bool)
    for e in info["events"]:
        if e["visual"]:
            visual[e["visual"][0] : e["visual"][1]] = True
        if e["audio"]:
            loud[e["audio"][0] : e["audio"][1]] = True
    return visual, loud


def test_events_show_motion_and_sound_where_planned(tiny, manifest):
    """Frame differences are large inside visual events only; audio RMS is high inside audio events only."""
    root, _ = tiny
    kinds = set()
    for vid, info in manifest["videos"].items():
        frames = _frames(root / "videos" / f"{vid}.mp4").astype(np.float32)  # [N, H, W, 3]
        audio, _ = _audio(root / "videos" / f"{vid}.mp4")
        audio = audio[: info["audio_samples"]]
        visual, loud = _event_masks(info, len(frames), len(audio))
        motion = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # [N-1] change into frame f+1
        inside = visual[1:] & visual[:-1]
        outside = ~visual[1:] & ~visual[:-1]
        assert motion[inside].min() > motion[outside].max(), vid  # the slow drift stays below every event frame
        assert motion[inside].mean() > 5 * motion[outside].mean(), vid
        margin = 400  # attack/release ramps at the event edges
        core = loud & np.roll(loud, margin) & np.roll(loud, -margin)
        quiet = ~loud & ~np.roll(loud, margin) & ~np.roll(loud, -margin)
        rms_loud = np.sqrt(np.mean(audio[core] ** 2))
        rms_quiet = np.sqrt(np.mean(audio[quiet] ** 2))
        assert rms_loud > 5 * rms_quiet, vid
        kinds |= {e["kind"] for e in info["events"]}
        # every highlight segment shows a visual event; silent-and-still segments are never highlights
        fps, rate = TINY["fps"], TINY["audio_rate"]
        clips, labels = json.loads((root / "annotations" / info["domain"] / vid / "match_label.json").read_text())
        for (f0, f1), lab in zip(clips, labels):
            f0, f1 = int(f0), int(f1)
            sees = visual[f0:f1].mean()
            if lab == 1:
                assert sees > 0.5, (vid, f0)
            s0, s1 = int(f0 * rate / fps), int(f1 * rate / fps)
            if sees == 0 or not loud[max(0, s0 - (s1 - s0)) : s1 + (s1 - s0)].any():
                assert lab == -1, (vid, f0)
    assert kinds == {"highlight", "visual", "audio"}  # the tiny preset has both kinds of distractors


def _check_rule(events: list[DemoEvent], labels: np.ndarray, fps: int, rate: int, F: int, S: int) -> None:
    """label is 1 (0) <=> a picture covers more than (exactly) half of the segment AND a sound lies
    within one segment of the visible part; -1 otherwise. Events keep one segment of background apart."""
    spf = rate / fps
    hulls = []
    for e in events:
        spans = ([e.visual] if e.visual else []) + ([(e.audio[0] / spf, e.audio[1] / spf)] if e.audio else [])
        hulls.append((min(x[0] for x in spans), max(x[1] for x in spans)))
    hulls.sort()
    for (_, a1), (b0, _) in zip(hulls, hulls[1:]):
        assert b0 - a1 >= F - 1e-3
    for k, lab in enumerate(labels):
        f0, f1 = k * S, k * S + F
        expected = -1
        for e in events:
            if e.visual is None or e.visual[1] <= f0 or e.visual[0] >= f1:
                continue
            v0, v1 = max(f0, e.visual[0]), min(f1, e.visual[1])  # visible part of the picture
            heard = any(x.audio is not None and x.audio[0] / spf < v1 + F and x.audio[1] / spf > v0 - F for x in events)
            share = (v1 - v0) / F
            if heard:
                expected = 1 if share > 0.5 else 0 if share == 0.5 else -1
        assert lab == expected, (k, expected)


@pytest.mark.parametrize("F,S", [(16, 16), (8, 4)])
def test_labels_are_exactly_the_audio_visual_rule(F, S):
    """Over many random videos: highlights need the picture AND a sound within one segment."""
    fps, rate = 8, 16000
    n_shifted = 0
    for seed in range(150):
        T = 20 + seed % 15
        rng = np.random.default_rng([seed, 7])
        events = plan_events(rng, T - 1 + F // S, S, F, fps, rate, 0.2, 0.2, 1.0)
        labels = segment_labels(events, T, S, F)
        _check_rule(events, labels, fps, rate, F, S)
        for e in events:
            if e.kind == "highlight":
                assert abs(e.shift_s) <= F / fps + 1e-9
                vc = 0.5 * (e.visual[0] + e.visual[1]) / fps
                ac = 0.5 * (e.audio[0] + e.audio[1]) / rate
                assert ac - vc == pytest.approx(e.shift_s, abs=1.0 / rate)
                sound_s = (e.audio[1] - e.audio[0]) / rate
                assert sound_s == pytest.approx((e.visual[1] - e.visual[0] - F) / fps, abs=1.0 / rate)
                n_shifted += abs(e.shift_s) > 0.5 * F / fps
    assert n_shifted > 50  # asynchrony is common, not a corner case


def test_segment_labels_by_hand():
    # 2 units per segment (clips of 8 frames, stride 4); a highlight's picture covers units 2..5
    hl = DemoEvent("highlight", (8, 24), (0, 1), 0.0, 0)
    distractor = DemoEvent("visual", (28, 36), None, 0.0, 0)
    # segment k covers units k, k+1: 0:{0,1} 1:{1,2} 2:{2,3} 3:{3,4} 4:{4,5} 5:{5,6} 6:{6,7} 7:{7,8}
    assert segment_labels([hl, distractor], 8, 4, 8).tolist() == [-1, 0, 1, 1, 1, 0, -1, -1]
    # non-overlapping: one unit per segment
    assert segment_labels([hl], 7, 4, 4).tolist() == [-1, -1, 1, 1, 1, 1, -1]


def test_rgb_to_yuv420p_by_hand():
    img = np.zeros((2, 4, 3), np.uint8)
    img[:, :2] = (255, 255, 255)  # left 2x2 block white
    img[:, 2:] = (255, 0, 0)  # right 2x2 block red
    yuv = rgb_to_yuv420p(img)  # [3, 4]: 2 rows of Y, then U (1x2) and V (1x2) packed in one row
    assert yuv[:2].tolist() == [[235, 235, 81, 81], [235, 235, 81, 81]]
    assert yuv[2].tolist() == [128, 90, 128, 240]  # U white, U red, V white, V red


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "change,error,match",
    [
        ({"stride": 3}, ValueError, "divide frames_per_segment"),
        ({"size": (63, 64)}, ValueError, "even"),
        ({"audio_rate": 12345}, ValueError, "AAC"),
        ({"videos_per_domain": 1}, ValueError, "videos_per_domain"),
        ({"domains": ("ok", "../escape")}, UnsafeIdError, "escape"),
        ({"segments_per_video": 3}, ValueError, "cannot hold one highlight"),
        ({"highlight_fraction": 1.5}, ValueError, "highlight_fraction"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, change, error, match):
    with pytest.raises(error, match=match):
        generate_demo(tmp_path / "x", **{**TINY, **change})


def test_presets():
    assert set(DEMO_PRESETS) >= {"default", "tiny"}
    p = demo_preset("default")
    p["seed"] = 99  # a copy
    assert DEMO_PRESETS["default"]["seed"] == 0
    assert demo_preset("tiny", seed=5, videos_per_domain=4) == {**DEMO_PRESETS["tiny"], "seed": 5, "videos_per_domain": 4}
    with pytest.raises(ValueError, match="unknown demo preset"):
        demo_preset("huge")
    with pytest.raises(ValueError, match="unknown setting"):
        demo_preset("tiny", sead=1)


def test_function_defaults_are_the_default_preset():
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(generate_demo).parameters.items()}
    for key, value in DEMO_PRESETS["default"].items():
        assert defaults[key] == value, key
