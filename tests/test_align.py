"""align: segment table + feature stores -> per-video training arrays."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from pipeline.align import align_dataset, load_aligned
from pipeline.paths import UnsafeIdError

DV, DA = 6, 4


def youtube_table(spec: dict[str, tuple[str, str, list[int]]]) -> pd.DataFrame:
    """{vid: (domain, split, match list)} -> segment table rows (only the columns align reads)."""
    rows = []
    for vid, (domain, split, match) in spec.items():
        for t, m in enumerate(match):
            rows.append({"vid": vid, "domain": domain, "split": split, "seg_idx": t,
                         "label": int(m > 0), "match": float(m), "scores": json.dumps([m])})
    return pd.DataFrame(rows)


def write_store(path, videos: dict[str, np.ndarray], attrs: dict[str, dict] | None = None) -> None:
    with h5py.File(path, "w") as f:
        for vid, x in videos.items():
            ds = f.create_dataset(vid, data=np.asarray(x, dtype=np.float32))
            ds.attrs["num_segments"] = len(x)
            for k, v in (attrs or {}).get(vid, {}).items():
                ds.attrs[k] = v


def feats(T: int, D: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(T, D)).astype(np.float32)


def test_align_round_trip_off_by_one_no_audio_and_missing(tmp_path):
    table = youtube_table({
        "vidA": ("dog", "train", [1, 0, -1, 1]),
        "vidB": ("dog", "test", [0, 1, 1, 0, 0]),     # visual one segment longer: cut, counted
        "vidC": ("surfing", "train", [1, 1, 0]),      # no audio track
        "vidD": ("surfing", "train", [0, 1]),         # visual extraction failed
    })
    vA, aA = feats(4, DV, 0), feats(4, DA, 1)
    vB, aB = feats(6, DV, 2), feats(5, DA, 3)
    vC = feats(3, DV, 4)
    write_store(tmp_path / "v.h5", {"vidA": vA, "vidB": vB, "vidC": vC, "extra": feats(2, DV, 9)})
    write_store(tmp_path / "a.h5", {"vidA": aA, "vidB": aB, "vidC": np.zeros((3, DA)), "vidD": feats(2, DA, 5)},
                {"vidC": {"has_audio": False}})
    out = tmp_path / "aligned" / "yt.h5"
    summary = align_dataset(table, tmp_path / "v.h5", tmp_path / "a.h5", out, "youtube_highlights")
    assert summary["num_videos"] == 3 and summary["num_segments"] == 4 + 5 + 3
    assert summary["skipped"]["missing_visual"] == ["vidD"] and summary["num_skipped"] == 1
    assert summary["off_by_one"] == {"videos": 1, "table_segments_dropped": 0}
    assert summary["no_audio_videos"] == 1 and summary["features_without_table"] == 1
    assert summary["per_split"] == {"train": 2, "test": 1}
    assert summary["positives_fraction"] == pytest.approx((2 + 2 + 2) / 12)
    assert (summary["visual_dim"], summary["audio_dim"]) == (DV, DA)
    assert not (tmp_path / "aligned" / "yt.h5.part").exists()

    items = load_aligned(out)
    assert [it.vid for it in items] == ["vidA", "vidB", "vidC"]  # table order
    a, b, c = items
    np.testing.assert_array_equal(a.visual, vA)
    np.testing.assert_array_equal(a.audio, aA)
    np.testing.assert_array_equal(a.labels, [1, 0, 0, 1])  # match > 0
    np.testing.assert_array_equal(a.targets, [1, 0, 0, 1])
    np.testing.assert_array_equal(a.scores[:, 0], [1, 0, -1, 1])
    assert a.audio_mask.all() and (a.domain, a.split) == ("dog", "train")
    np.testing.assert_array_equal(b.visual, vB[:5])
    assert b.num_segments == 5 and b.split == "test"
    assert c.audio.shape == (3, DA) and not c.audio.any() and not c.audio_mask.any()
    assert a.visual.dtype == np.float32 and a.labels.dtype == np.int64 and a.audio_mask.dtype == bool


def test_mismatch_beyond_one_segment_names_the_video(tmp_path):
    table = youtube_table({"vidA": ("dog", "train", [1, 0, 0, 1, 0])})
    write_store(tmp_path / "v.h5", {"vidA": feats(5, DV, 0)})
    write_store(tmp_path / "a.h5", {"vidA": feats(3, DA, 1)})
    out = tmp_path / "out.h5"
    with pytest.raises(ValueError, match=r"'vidA'.*differ by more than one"):
        align_dataset(table, tmp_path / "v.h5", tmp_path / "a.h5", out, "youtube_highlights")
    assert not out.exists() and not (tmp_path / "out.h5.part").exists()


def test_truncated_published_features_are_cut_and_counted(tmp_path):
    table = youtube_table({"vidA": ("dog", "train", [1, 0, 0, 1, 0, 1, 1])})
    write_store(tmp_path / "v.h5", {"vidA": feats(4, DV, 0)}, {"vidA": {"truncated": 3}})
    write_store(tmp_path / "a.h5", {"vidA": feats(4, DA, 1)}, {"vidA": {"truncated": 3}})
    summary = align_dataset(table, tmp_path / "v.h5", tmp_path / "a.h5", tmp_path / "o.h5", "youtube_highlights")
    assert summary["truncated"] == {"videos": 1, "table_segments_dropped": 3}
    (item,) = load_aligned(tmp_path / "o.h5")
    np.testing.assert_array_equal(item.labels, [1, 0, 0, 1])


def test_tvsum_labels_above_median_and_regression_targets(tmp_path):
    # 4 shots, 20 annotators: shot means 1, 2, 4, 5 -> lower median 2 -> labels 0 0 1 1;
    # targets (sum - 20) / 80 = (20 - 20)/80, (40-20)/80, (80-20)/80, (100-20)/80
    means = [1, 2, 4, 5]
    rows = [{"vid": "tv1", "domain": "VT", "split": "train", "seg_idx": t, "label": 0,
             "scores": json.dumps([m] * 20)} for t, m in enumerate(means)]
    table = pd.DataFrame(rows)
    write_store(tmp_path / "v.h5", {"tv1": feats(4, DV, 0)})
    write_store(tmp_path / "a.h5", {"tv1": feats(4, DA, 1)})
    align_dataset(table, tmp_path / "v.h5", tmp_path / "a.h5", tmp_path / "o.h5", "tvsum")
    (item,) = load_aligned(tmp_path / "o.h5")
    np.testing.assert_array_equal(item.labels, [0, 0, 1, 1])
    np.testing.assert_allclose(item.targets, [0.0, 0.25, 0.75, 1.0])
    assert item.scores.shape == (4, 20)
    # the table rule keeps the table's (all-zero) labels
    align_dataset(table, tmp_path / "v.h5", tmp_path / "a.h5", tmp_path / "t.h5", "tvsum", tvsum_label="table")
    assert not load_aligned(tmp_path / "t.h5")[0].labels.any()
    # shot means 1 2 3 3 5: lower median 3 -> only the last shot; mean 2.8 -> the last three
    rows5 = [{"vid": "tv2", "domain": "VT", "split": "test", "seg_idx": t, "label": 0,
              "scores": json.dumps([m] * 20)} for t, m in enumerate([1, 2, 3, 3, 5])]
    write_store(tmp_path / "v5.h5", {"tv2": feats(5, DV, 0)})
    write_store(tmp_path / "a5.h5", {"tv2": feats(5, DA, 1)})
    for rule, expected in (("median", [0, 0, 0, 0, 1]), ("mean", [0, 0, 1, 1, 1])):
        align_dataset(pd.DataFrame(rows5), tmp_path / "v5.h5", tmp_path / "a5.h5", tmp_path / "r.h5", "tvsum",
                      tvsum_label=rule)
        np.testing.assert_array_equal(load_aligned(tmp_path / "r.h5")[0].labels, expected)
    with pytest.raises(ValueError, match="tvsum_label"):
        align_dataset(table, tmp_path / "v.h5", tmp_path / "a.h5", tmp_path / "x.h5", "tvsum", tvsum_label="max")


def test_bad_inputs_name_the_video(tmp_path):
    write_store(tmp_path / "v.h5", {"vidA": feats(2, DV, 0)})
    write_store(tmp_path / "a.h5", {"vidA": feats(2, DA, 1)})
    args = (tmp_path / "v.h5", tmp_path / "a.h5", tmp_path / "o.h5", "youtube_highlights")
    bad_scores = youtube_table({"vidA": ("dog", "train", [1, 0])})
    bad_scores.loc[1, "scores"] = "[oops"
    with pytest.raises(ValueError, match=r"'vidA' segment 1: scores"):
        align_dataset(bad_scores, *args)
    gap = youtube_table({"vidA": ("dog", "train", [1, 0])})
    gap.loc[1, "seg_idx"] = 2
    with pytest.raises(ValueError, match=r"'vidA': seg_idx"):
        align_dataset(gap, *args)
    with pytest.raises(UnsafeIdError, match=r"\.\./x"):
        align_dataset(youtube_table({"../x": ("dog", "train", [1, 0])}), *args)
    with pytest.raises(ValueError, match="lacks columns"):
        align_dataset(youtube_table({"vidA": ("dog", "train", [1, 0])}).drop(columns="scores"), *args)
    write_store(tmp_path / "nan.h5", {"vidA": np.full((2, DV), np.nan)})
    with pytest.raises(ValueError, match=r"nan\.h5: video 'vidA': non-finite"):
        align_dataset(youtube_table({"vidA": ("dog", "train", [1, 0])}), tmp_path / "nan.h5", *args[1:])
