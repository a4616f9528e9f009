"""Published pre-extracted features (UMT and lighthouse layouts) -> the feature store."""

from __future__ import annotations

import csv
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from pipeline.paths import UnsafeIdError
from pipeline.published import DEFAULT_NAMES, import_published, published_part_key
from pipeline.store import FeatureStore, read_store, store_attrs, video_attrs


def _table(counts: dict[str, int]) -> pd.DataFrame:
    """A segment table with ``counts[vid]`` rows per video (only the columns the importer reads)."""
    rows = [{"vid": vid, "seg_idx": i, "label": i % 2} for vid, n in counts.items() for i in range(n)]
    return pd.DataFrame(rows)


def _feats(seed: int, T: int, D: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((T, D)).astype(np.float32)  # [T, D]


def _write_umt(root, vid: str, T_visual: int, T_audio: int, seed: int) -> dict[str, np.ndarray]:
    """UMT's release layout; small D (4 per I3D stream, 6 audio) instead of 1024 / 2048."""
    (root / "video_features").mkdir(parents=True, exist_ok=True)
    (root / "audio_features").mkdir(parents=True, exist_ok=True)
    arrays = {"rgb": _feats(seed, T_visual, 4), "opt": _feats(seed + 1, T_visual, 4), "audio": _feats(seed + 2, T_audio, 6)}
    np.save(root / "video_features" / f"{vid}_rgb.npy", arrays["rgb"])
    np.save(root / "video_features" / f"{vid}_opt.npy", arrays["opt"])
    np.save(root / "audio_features" / f"{vid}.npy", arrays["audio"])
    return arrays


@pytest.fixture
def umt(tmp_path):
    """Three videos: equal lengths; features longer than labels; labels longer than audio."""
    root = tmp_path / "features"
    arrays = {
        "vidA": _write_umt(root, "vidA", T_visual=5, T_audio=5, seed=0),
        "vidB": _write_umt(root, "vidB", T_visual=7, T_audio=6, seed=10),
        "vidC": _write_umt(root, "vidC", T_visual=6, T_audio=4, seed=20),
    }
    table = _table({"vidA": 5, "vidB": 4, "vidC": 6})
    return root, table, arrays


def test_umt_round_trip_and_truncation(umt, tmp_path):
    root, table, arrays = umt
    vis = import_published(table, "umt", root, "visual", tmp_path / "out" / "visual.h5")
    aud = import_published(table, "umt", root, "audio", tmp_path / "out" / "audio.h5")

    feats_v, feats_a = read_store(tmp_path / "out" / "visual.h5"), read_store(tmp_path / "out" / "audio.h5")
    T = {"vidA": 5, "vidB": 4, "vidC": 4}  # min(visual, audio, labels)
    for vid, arr in arrays.items():
        np.testing.assert_array_equal(feats_v[vid], np.concatenate([arr["rgb"], arr["opt"]], axis=1)[: T[vid]])
        np.testing.assert_array_equal(feats_a[vid], arr["audio"][: T[vid]])
        assert feats_v[vid].dtype == np.float32 and feats_v[vid].shape == (T[vid], 8)

    assert vis["imported"] == aud["imported"] == 3 and vis["num_failures"] == 0
    assert (vis["feature_dim"], aud["feature_dim"]) == (8, 6)
    # vidB: visual 7 -> 4, audio 6 -> 4, labels 4 kept; vidC: labels 6 -> 4, visual 6 -> 4, audio kept
    assert vis["truncated"]["vidB"] == {"labels": 0, "features": 3, "lengths": {"visual": 7, "audio": 6, "labels": 4}}
    assert aud["truncated"]["vidB"]["features"] == 2
    assert vis["truncated"]["vidC"]["labels"] == aud["truncated"]["vidC"]["labels"] == 2
    assert "vidA" not in vis["truncated"]
    assert (vis["truncated_videos"], vis["truncated_label_segments"], vis["truncated_feature_segments"]) == (2, 2, 5)
    json.dumps(vis)  # the summary is JSON as it stands

    attrs = video_attrs(tmp_path / "out" / "visual.h5")
    assert attrs["vidA"]["truncated"] == 0 and attrs["vidA"]["num_label_segments"] == 5
    assert attrs["vidB"]["truncated"] == 3 and attrs["vidB"]["num_published_segments"] == 7
    assert attrs["vidC"]["truncated"] == 2 and attrs["vidC"]["num_label_segments"] == 6
    assert attrs["vidC"]["num_segments"] == 4
    assert store_attrs(tmp_path / "out" / "visual.h5")["backbone"] == "published:umt:i3d_rgb+i3d_flow"


def _failures(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_missing_file_is_a_recorded_failure_and_the_run_goes_on(umt, tmp_path):
    root, table, _ = umt
    (root / "video_features" / "vidB_opt.npy").unlink()
    store = tmp_path / "visual.h5"
    summary = import_published(table, "umt", root, "visual", store, max_failures=1)
    assert set(read_store(store)) == {"vidA", "vidC"}
    assert list(summary["failed"]) == ["vidB"] and "vidB_opt.npy" in summary["failed"]["vidB"]
    rows = _failures(summary["failures_table"])
    assert [(r["vid"], r["stage"]) for r in rows] == [("vidB", "locate")]
    assert "vidB_opt.npy" in rows[0]["message"]

    # the other modality misses nothing itself: it imports vidB cut to the labels and audio only
    aud = import_published(table, "umt", root, "audio", tmp_path / "audio.h5")
    assert aud["other_modality_missing"] == ["vidB"] and read_store(tmp_path / "audio.h5")["vidB"].shape == (4, 6)

    # above max_failures: an error at the end, after the good videos are stored
    (tmp_path / "visual.h5").unlink()
    with pytest.raises(RuntimeError, match=r"1 videos failed \(max_failures=0\).*vidB.*vidB_opt\.npy"):
        import_published(table, "umt", root, "visual", store)
    assert set(read_store(store)) == {"vidA", "vidC"}


def test_unusable_arrays_are_refused_naming_the_file(umt, tmp_path):
    root, table, _ = umt
    # a pickle-bearing .npy (an object array): never unpickled
    np.save(root / "audio_features" / "vidA.npy", np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    np.save(root / "audio_features" / "vidB.npy", np.arange(12).reshape(6, 2))  # integers
    np.save(root / "audio_features" / "vidC.npy", np.zeros(4, dtype=np.float32))  # 1-D
    summary = import_published(table, "umt", root, "audio", tmp_path / "audio.h5", max_failures=3)
    failed = summary["failed"]
    assert set(failed) == {"vidA", "vidB", "vidC"}
    assert "vidA.npy" in failed["vidA"] and "not a plain numeric array" in failed["vidA"]
    assert "vidB.npy" in failed["vidB"] and "int64" in failed["vidB"]
    assert "vidC.npy" in failed["vidC"] and "[T, D]" in failed["vidC"]
    assert {r["stage"] for r in _failures(summary["failures_table"])} == {"load"}


def test_umt_rgb_and_flow_must_agree(umt, tmp_path):
    root, table, _ = umt
    np.save(root / "video_features" / "vidA_opt.npy", _feats(3, 4, 4))  # rgb has 5 rows
    summary = import_published(table, "umt", root, "visual", tmp_path / "v.h5", max_failures=1)
    assert "vidA_rgb.npy has 5" in summary["failed"]["vidA"] and "vidA_opt.npy has 4" in summary["failed"]["vidA"]


def test_resume_skips_videos_already_committed(umt, tmp_path):
    root, table, arrays = umt
    store_path = tmp_path / "visual.h5"
    attrs = {"backbone": "published:umt:i3d_rgb+i3d_flow", "source": "published", "layout": "umt", "modality": "visual"}
    first = FeatureStore(store_path, attrs)  # a run killed after committing vidA (keyed as the importer does)
    key = published_part_key("umt", root, "vidA", DEFAULT_NAMES, int((table["vid"] == "vidA").sum()), first.attrs)
    first.put("vidA", np.concatenate([arrays["vidA"]["rgb"], arrays["vidA"]["opt"]], axis=1), key=key,
              num_label_segments=5, num_published_segments=5, truncated=0)
    summary = import_published(table, "umt", root, "visual", store_path)
    assert (summary["already_done"], summary["imported"]) == (1, 2)
    assert set(read_store(store_path)) == {"vidA", "vidB", "vidC"}


def _write_lighthouse(root, dataset: str, name: str, vid: str, arr: np.ndarray) -> None:
    folder = root / "features" / dataset / name
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{vid}.npz", features=arr)


def test_lighthouse_round_trip_several_visual_features(tmp_path):
    root = tmp_path / "features_root"
    slowfast = {"v1": _feats(0, 6, 3), "v2": _feats(1, 3, 3)}
    clip = {"v1": _feats(2, 5, 2), "v2": _feats(3, 3, 2)}  # v1: 5 rows, slowfast 6
    pann = {"v1": _feats(4, 6, 5), "v2": _feats(5, 3, 5)}
    for vid in ("v1", "v2"):
        _write_lighthouse(root, "youtube", "slowfast", vid, slowfast[vid])
        _write_lighthouse(root, "youtube", "clip", vid, clip[vid])
        _write_lighthouse(root, "youtube", "pann", vid, pann[vid])
    table = _table({"v1": 6, "v2": 3})
    names = {"visual": ["slowfast", "clip"], "audio": "pann"}  # dataset folder found: the only one
    vis = import_published(table, "lighthouse", root, "visual", tmp_path / "v.h5", names=names)
    aud = import_published(table, "lighthouse", root, "audio", tmp_path / "a.h5", names=names)
    fv, fa = read_store(tmp_path / "v.h5"), read_store(tmp_path / "a.h5")
    np.testing.assert_array_equal(fv["v1"], np.concatenate([slowfast["v1"][:5], clip["v1"]], axis=1))
    np.testing.assert_array_equal(fa["v1"], pann["v1"][:5])
    np.testing.assert_array_equal(fv["v2"], np.concatenate([slowfast["v2"], clip["v2"]], axis=1))
    assert vis["names"]["dataset"] == "youtube" and vis["feature_dim"] == 5
    assert aud["truncated"]["v1"] == {"labels": 1, "features": 1, "lengths": {"visual": 5, "audio": 6, "labels": 6}}
    assert store_attrs(tmp_path / "v.h5")["backbone"] == "published:lighthouse:slowfast+clip"


def test_lighthouse_bad_npz(tmp_path):
    root = tmp_path / "r"
    _write_lighthouse(root, "tvsum", "i3d", "v1", _feats(0, 4, 3))
    _write_lighthouse(root, "tvsum", "pann", "v1", _feats(1, 4, 3))
    folder = root / "features" / "tvsum" / "i3d"
    np.savez(folder / "v2.npz", feats=_feats(2, 4, 3))  # wrong key
    np.savez(folder / "v3.npz", features=np.array([object()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(folder / "v4.npz", "w") as zf:  # a zip that is not an npz
        zf.writestr("features.npy", b"not numpy")
    table = _table({"v1": 4, "v2": 4, "v3": 4, "v4": 4})
    summary = import_published(table, "lighthouse", root, "visual", tmp_path / "v.h5",
                               names={"dataset": "tvsum"}, max_failures=3)
    assert summary["imported"] == 1
    assert "v2.npz" in summary["failed"]["v2"] and "'features'" in summary["failed"]["v2"]
    assert "v3.npz" in summary["failed"]["v3"] and "not a plain numeric array" in summary["failed"]["v3"]
    assert "v4.npz" in summary["failed"]["v4"]


def test_bad_arguments_and_unsafe_ids(umt, tmp_path):
    root, table, _ = umt
    with pytest.raises(ValueError, match="layout"):
        import_published(table, "i3d", root, "visual", tmp_path / "v.h5")
    with pytest.raises(ValueError, match="modality"):
        import_published(table, "umt", root, "flow", tmp_path / "v.h5")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        import_published(table, "umt", tmp_path / "nowhere", "visual", tmp_path / "v.h5")
    with pytest.raises(ValueError, match="names\\['dataset'\\]"):
        (root / "features" / "a").mkdir(parents=True)
        (root / "features" / "b").mkdir()
        import_published(table, "lighthouse", root, "visual", tmp_path / "v.h5")
    with pytest.raises(UnsafeIdError, match="segment table"):
        import_published(_table({"../vidA": 2}), "umt", root, "visual", tmp_path / "v.h5")


def test_align_cuts_the_labels_by_the_reported_counts(umt, tmp_path):
    """The align stage accepts the imported stores and drops exactly the reported label segments."""
    from pipeline.align import align_dataset, load_aligned

    root, table, _ = umt
    table = table.assign(domain="dog", split="train", scores="[1]")
    vis = import_published(table, "umt", root, "visual", tmp_path / "visual.h5")
    import_published(table, "umt", root, "audio", tmp_path / "audio.h5")
    summary = align_dataset(table, tmp_path / "visual.h5", tmp_path / "audio.h5", tmp_path / "al.h5", "youtube_highlights")
    assert summary["truncated"]["table_segments_dropped"] == vis["truncated_label_segments"] == 2
    assert {item.vid: item.num_segments for item in load_aligned(tmp_path / "al.h5")} == {"vidA": 5, "vidB": 4, "vidC": 4}
