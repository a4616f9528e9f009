"""FeatureStore: atomic per-video parts, resume after a kill, deterministic merge, failures table."""

from __future__ import annotations

import csv
import os

import h5py
import numpy as np
import pytest

from pipeline.paths import UnsafeIdError
from pipeline.store import (
    StoreError,
    FeatureStore,
    failures_path,
    package_versions,
    parts_dir,
    read_store,
    store_attrs,
    video_attrs,
)

ATTRS = {"backbone": "i3d", "weights_sha256": "ab" * 32, "frames_per_segment": 16, "crop_size": 224, "sample_rate": None}


def features(seed: int, t: int, d: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((t, d)).astype(np.float32)  # [T, D]


def test_round_trip_attrs_and_cleanup(tmp_path):
    path = tmp_path / "feats" / "visual.h5"
    store = FeatureStore(path, ATTRS)
    assert store.done() == set()
    store.put("vid_b", features(1, 5), fps=25.0, has_audio=True)
    store.put("vid_a", features(2, 3), fps=30.0, has_audio=False)
    assert store.done() == {"vid_a", "vid_b"}
    assert store.finalize() == path
    assert not parts_dir(path).exists()
    data = read_store(path)
    assert sorted(data) == ["vid_a", "vid_b"]
    np.testing.assert_array_equal(data["vid_b"], features(1, 5))
    assert data["vid_a"].dtype == np.float32 and data["vid_a"].shape == (3, 8)
    attrs = store_attrs(path)
    assert attrs["backbone"] == "i3d" and attrs["weights_sha256"] == "ab" * 32
    assert attrs["frames_per_segment"] == 16 and attrs["crop_size"] == 224 and attrs["sample_rate"] == ""
    assert attrs["num_videos"] == 2 and attrs["created"].endswith("Z")
    for name, version in package_versions().items():
        assert attrs[f"version_{name}"] == version
    assert {"python", "torch", "decord", "av", "numpy", "h5py"} <= set(package_versions())
    per_video = video_attrs(path)
    assert per_video["vid_a"] == {"fps": 30.0, "has_audio": False, "num_segments": 3}
    assert per_video["vid_b"]["num_segments"] == 5
    with open(failures_path(path)) as fh:
        assert fh.read() == "vid,stage,error_type,message\n"


def test_truncated_temp_part_of_a_killed_run_never_counts_and_resume_matches(tmp_path):
    reference = tmp_path / "ref.h5"
    store = FeatureStore(reference, ATTRS)
    for i, vid in enumerate(["v0", "v1", "v2"]):
        store.put(vid, features(i, 4 + i))
    store.finalize()

    path = tmp_path / "run.h5"
    store = FeatureStore(path, ATTRS)
    store.put("v0", features(0, 4))
    # a kill while v1 was being written leaves a truncated temporary part behind
    whole = tmp_path / "whole.npz"
    np.savez(whole, features=features(1, 5), attrs=np.array("{}"))
    stale = parts_dir(path) / ".tmp-99999-v1.npz"
    stale.write_bytes(whole.read_bytes()[:100])
    assert store.done() == {"v0"}
    del store

    half_merged = tmp_path / ".tmp-99999-run.h5"  # and a kill during an earlier merge
    half_merged.write_bytes(b"\x89HDF partial")
    resumed = FeatureStore(path, ATTRS)  # the rerun
    assert resumed.done() == {"v0"} and not stale.exists() and not half_merged.exists()
    for i, vid in enumerate(["v0", "v1", "v2"]):
        if vid not in resumed.done():
            resumed.put(vid, features(i, 4 + i))
    resumed.finalize()
    a, b = read_store(reference), read_store(path)
    assert sorted(a) == sorted(b)
    for vid in a:
        np.testing.assert_array_equal(a[vid], b[vid])
    ra, rb = store_attrs(reference), store_attrs(path)
    ra.pop("created"), rb.pop("created")
    assert ra == rb


def test_final_file_is_deterministic_except_created(tmp_path):
    blobs = []
    for run in ("a", "b"):
        path = tmp_path / run / "audio.h5"
        store = FeatureStore(path, ATTRS)
        for vid in (["x", "y"] if run == "a" else ["y", "x"]):  # commit order must not matter
            store.put(vid, features(len(vid) + ord(vid), 6), has_audio=True)
        store.finalize()
        created = store_attrs(path)["created"].encode()
        raw = path.read_bytes()
        assert raw.count(created) == 1
        blobs.append(raw.replace(created, b"#" * len(created)))
    assert blobs[0] == blobs[1]


def test_changed_attrs_discard_parts_with_a_warning(tmp_path):
    path = tmp_path / "visual.h5"
    store = FeatureStore(path, ATTRS)
    store.put("v0", features(0, 3))
    same = FeatureStore(path, dict(ATTRS))
    assert same.done() == {"v0"}
    with pytest.warns(UserWarning, match="discarding"):
        other = FeatureStore(path, {**ATTRS, "frames_per_segment": 32})
    assert other.done() == set()
    assert FeatureStore(path, {**ATTRS, "frames_per_segment": 32}).done() == set()


def test_put_rejects_bad_features_and_unsafe_ids(tmp_path):
    store = FeatureStore(tmp_path / "s.h5", ATTRS)
    with pytest.raises(ValueError, match="'v1'.*\\[T, D\\]"):
        store.put("v1", np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="'v2'.*NaN"):
        store.put("v2", np.array([[1.0, np.nan]], np.float32))
    with pytest.raises(UnsafeIdError, match="../evil"):
        store.put("../evil", features(0, 2))
    with pytest.raises(TypeError, match="'bad'"):
        store.put("v3", features(0, 2), bad=[1, 2])
    with pytest.raises(TypeError, match="'layers'"):
        FeatureStore(tmp_path / "t.h5", {"layers": {"a": 1}})
    assert store.done() == set()


def test_failures_table_and_subset_finalize(tmp_path):
    path = tmp_path / "visual.h5"
    store = FeatureStore(path, ATTRS)
    store.put("ok1", features(0, 2))
    store.put("stale", features(1, 2))
    store.record_failure("bad", "decode", OSError("bad.mp4: cannot open\n  (truncated)"))
    store.record_failure("gone", "locate", "no file", error_type="MissingVideo")
    store.finalize(vids=["ok1", "bad", "gone"])
    assert sorted(read_store(path)) == ["ok1"]
    with open(failures_path(path)) as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [
        {"vid": "bad", "stage": "decode", "error_type": "OSError", "message": "bad.mp4: cannot open (truncated)"},
        {"vid": "gone", "stage": "locate", "error_type": "MissingVideo", "message": "no file"},
    ]


def test_unreadable_part_is_reported_with_its_file(tmp_path):
    path = tmp_path / "visual.h5"
    store = FeatureStore(path, ATTRS)
    store.put("v0", features(0, 2))
    (parts_dir(path) / "v0.npz").write_bytes(b"garbage")
    with pytest.raises(StoreError, match="v0.npz.*'v0'"):
        store.finalize()
    assert not path.exists()  # no half-merged final file
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.h5"):
        read_store(tmp_path / "nothere.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(OSError, match="junk.h5"):
        store_attrs(junk)


def test_final_file_layout_is_plain_hdf5(tmp_path):
    path = tmp_path / "visual.h5"
    store = FeatureStore(path, ATTRS)
    store.put("v0", features(0, 4, d=3))
    store.finalize()
    with h5py.File(path, "r") as h5:
        assert list(h5.keys()) == ["v0"]
        assert h5["v0"].shape == (4, 3) and h5["v0"].dtype == np.float32
        assert h5["v0"].attrs["num_segments"] == 4
    assert sorted(os.listdir(tmp_path)) == ["visual.h5", "visual_failures.csv"]


def test_parts_folder_outside_the_output_folder(tmp_path):
    # under DVC the parts live outside the stage's outs, which DVC empties before a rerun
    out_dir, parts = tmp_path / "features" / "visual", tmp_path / "features" / ".visual.parts"
    store = FeatureStore(out_dir / "visual.h5", ATTRS, parts=parts)
    store.put("v0", features(0, 2))
    assert (parts / "v0.npz").is_file() and not out_dir.exists()
    assert FeatureStore(out_dir / "visual.h5", ATTRS, parts=parts).done() == {"v0"}
    store.finalize()
    assert sorted(p.name for p in out_dir.iterdir()) == ["visual.h5", "visual_failures.csv"]
    assert not parts.exists()
