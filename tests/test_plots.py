"""Timeline plots and their dvc-plots data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.paths import UnsafeIdError
from pipeline.plots import highlight_spans, plot_timelines, select_videos, write_timeline_data


def _table() -> pd.DataFrame:
    """Three videos: 'tv' with 2 s shots (times known), 'yt' with frame clips only, 'trainvid' in train."""
    rows = []
    for k, lab in enumerate([0, 1, 1, 0, 0, 1]):
        rows.append({"vid": "tv", "domain": "VT", "split": "test", "seg_idx": k, "start_frame": np.nan,
                     "end_frame": np.nan, "start_s": 2.0 * k, "end_s": 2.0 * k + 2.0, "fps": np.nan,
                     "label": lab, "match": np.nan, "scores": "[]", "video": ""})
    for k, lab in enumerate([0, 0, 1, 0]):
        rows.append({"vid": "yt", "domain": "dog", "split": "test", "seg_idx": k, "start_frame": 50.0 * k,
                     "end_frame": 50.0 * k + 100, "start_s": np.nan, "end_s": np.nan, "fps": np.nan,
                     "label": lab, "match": 2.0 * lab - 1, "scores": "[]", "video": ""})
    for k in range(3):
        rows.append({"vid": "trainvid", "domain": "dog", "split": "train", "seg_idx": k, "start_frame": 0.0,
                     "end_frame": 1.0, "start_s": np.nan, "end_s": np.nan, "fps": np.nan, "label": 0,
                     "match": -1.0, "scores": "[]", "video": ""})
    table = pd.DataFrame(rows)
    return table.iloc[::-1].reset_index(drop=True)  # row order must not matter within a video


PRED = {"trainvid": [0.1, 0.2, 0.3], "tv": [0.1, 0.9, 0.8, 0.2, 0.1, 0.7], "yt": [0.0, 0.25, 1.5, -0.5]}

# matplotlib's tab:red (214, 39, 40) at alpha 0.2 over the white axes background
SHADE = np.array([0.2 * 214 + 0.8 * 255, 0.2 * 39 + 0.8 * 255, 0.2 * 40 + 0.8 * 255])


def _shaded_pixels(path) -> int:
    img = np.asarray(Image.open(path).convert("RGB")).astype(np.float64)  # [H, W, 3]
    return int((np.abs(img - SHADE).max(axis=2) <= 2).sum())


def test_pngs_written_with_the_right_size_and_names(tmp_path):
    paths = plot_timelines(_table(), PRED, tmp_path, max_videos=4, figsize=(6.0, 2.0), dpi=80)
    # test videos first, then train; table order within each
    assert [p.name for p in paths] == ["yt.png", "tv.png", "trainvid.png"]
    for p in paths:
        assert p.parent == tmp_path.resolve() and p.stat().st_size > 1000
        with Image.open(p) as img:
            assert img.format == "PNG" and img.size == (480, 160)
    # ground-truth highlights are shaded; a video without highlights has no shading
    assert _shaded_pixels(tmp_path / "tv.png") > 500
    assert _shaded_pixels(tmp_path / "yt.png") > 200
    assert _shaded_pixels(tmp_path / "trainvid.png") == 0


def test_pngs_are_deterministic(tmp_path):
    a = plot_timelines(_table(), PRED, tmp_path / "a", vids=["tv"])
    b = plot_timelines(_table(), PRED, tmp_path / "b", vids=["tv"])
    assert a[0].read_bytes() == b[0].read_bytes()
    with Image.open(a[0]) as img:
        assert img.size == (800, 250)


def test_selection():
    t = _table()
    assert select_videos(t, PRED, max_videos=1) == ["yt"]
    assert select_videos(t, {"trainvid": [0, 0, 0], "tv": [0] * 6}) == ["tv", "trainvid"]
    assert select_videos(t.drop(columns=["split"]), PRED) == ["trainvid", "yt", "tv"]  # table order
    assert select_videos(t, PRED, vids=["trainvid"]) == ["trainvid"]
    with pytest.raises(KeyError, match="'nope' is not in the segment table"):
        select_videos(t, PRED, vids=["nope"])
    with pytest.raises(KeyError, match="'tv' has no predictions"):
        select_videos(t, {"yt": PRED["yt"]}, vids=["tv"])
    with pytest.raises(UnsafeIdError):
        select_videos(t, PRED, vids=["../etc"])
    with pytest.raises(ValueError, match="lacks column"):
        select_videos(t.drop(columns=["label"]), PRED)


def test_bad_predictions_are_refused(tmp_path):
    with pytest.raises(ValueError, match="video 'tv': 5 predicted scores for 6 segments"):
        plot_timelines(_table(), {"tv": [0.0] * 5}, tmp_path)
    with pytest.raises(ValueError, match="video 'yt'.*NaN.*segment 2"):
        write_timeline_data(_table(), {"yt": [0.0, 1.0, float("nan"), 0.0]}, tmp_path)
    bad = _table()
    bad.loc[bad["vid"] == "yt", "vid"] = "../yt"
    with pytest.raises(UnsafeIdError):
        plot_timelines(bad, {"../yt": [0.0] * 4}, tmp_path)


def test_timeline_csv_by_hand(tmp_path):
    paths = write_timeline_data(_table(), PRED, tmp_path, vids=["yt", "tv"])
    assert [p.name for p in paths] == ["yt.csv", "tv.csv"]
    assert (tmp_path / "yt.csv").read_text() == (
        "segment,score,label\n0,0.0,0\n1,0.25,0\n2,1.5,1\n3,-0.5,0\n"
    )
    tv = pd.read_csv(tmp_path / "tv.csv")
    assert tv["segment"].tolist() == list(range(6))
    assert tv["score"].tolist() == PRED["tv"]
    assert tv["label"].tolist() == [0, 1, 1, 0, 0, 1]


def test_highlight_spans_merge_overlapping_and_adjacent():
    lo = np.array([0.0, 50.0, 100.0, 150.0, 200.0, 300.0])
    hi = lo + 100.0  # 100-frame windows, stride 50 (YouTube Highlights' clips)
    pos = np.array([False, True, True, False, False, True])
    assert highlight_spans(lo, hi, pos) == [(50.0, 200.0), (300.0, 400.0)]
    assert highlight_spans(np.arange(4.0), np.arange(4.0) + 1, np.array([1, 1, 0, 1], bool)) == [(0.0, 2.0), (3.0, 4.0)]
    assert highlight_spans(lo, hi, np.zeros(6, bool)) == []
