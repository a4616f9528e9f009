"""Fault injection into feature extraction (issue 9): kill -9 at every point of a run and of the
merge, a full disk (a small tmpfs where the machine allows mounting one, else a write that
raises ENOSPC), and ten kinds of bad video, each named in words in the failures table.

After every fault the rerun must give the same features as an uninterrupted run.
"""

from __future__ import annotations

import csv
import errno
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.errors import DiskFullError
from pipeline.extract import ExtractionError, extract_audio, extract_visual
from pipeline.store import failures_path, parts_dir, read_store, store_attrs
from test_decoding import sine, write_video
from test_extract import NAN, TinyAudio, TinyVisual, segment_table

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
# four segments per video and batches of two: a batch never spans two videos, so a resumed run batches
# exactly as an uninterrupted one and the features are bit-identical
ROWS = [(v, f"{v}.mp4", s, s + 12, NAN, NAN) for v in ("a", "b", "c") for s in (0, 6, 12, 18)]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fault_media")
    write_video(root / "a.mp4", 36, 32, 24, fps=25, audio=sine(440, 1.5, 48000))
    write_video(root / "b.mp4", 40, 24, 32, fps=25, audio=sine(660, 1.6, 48000))
    write_video(root / "c.mp4", 34, 40, 20, fps=25, audio=sine(880, 1.4, 48000))
    return root


def _extract(store: Path, media: Path, rows=ROWS, **kw) -> dict:
    return extract_visual(segment_table(rows), media, TinyVisual(), store, frames_per_segment=4, batch_size=2,
                          progress=False, **kw)


@pytest.fixture(scope="module")
def reference(media, tmp_path_factory) -> tuple[dict, dict]:
    path = tmp_path_factory.mktemp("reference") / "visual.h5"
    _extract(path, media)
    attrs = store_attrs(path)
    attrs.pop("created")
    return read_store(path), attrs


def _same_as_reference(path: Path, reference) -> None:
    feats, attrs = reference
    got = read_store(path)
    assert sorted(got) == sorted(feats)
    for vid in feats:
        np.testing.assert_array_equal(got[vid], feats[vid])
    mine = store_attrs(path)
    mine.pop("created")
    assert mine == attrs


# ------------------------------------------------------------------ kill -9 at several points

KILL_SCRIPT = """
import os, shutil, signal, sys
sys.path.insert(0, {tests!r})
import pandas as pd, torch
torch.set_num_threads(1)
import pipeline.extract as extract
import pipeline.extract.producers as producers
import pipeline.store as store
from test_extract import TinyVisual

POINT, COUNT = {point!r}, {count}
seen = {{"n": 0}}

def hit():
    seen["n"] += 1
    if seen["n"] == COUNT:
        os.kill(os.getpid(), signal.SIGKILL)

real_replace, real_rmtree, real_frames = os.replace, shutil.rmtree, producers.iter_segment_frames

def replace(src, dst, *a, **k):
    name = os.path.basename(str(dst))
    if (POINT == "before_part_rename" and name.endswith(".npz")) or \\
       (POINT == "before_merge_rename" and name.endswith(".h5")) or \\
       (POINT == "before_failures_rename" and name.endswith("_failures.csv")):
        hit()
    real_replace(src, dst, *a, **k)
    if POINT == "after_part_rename" and name.endswith(".npz"):
        hit()

def rmtree(path, *a, **k):
    if POINT == "before_parts_cleanup":
        hit()
    real_rmtree(path, *a, **k)

def frames(*a, **k):
    if POINT == "decoding":
        hit()
    return real_frames(*a, **k)

store.os.replace, store.shutil.rmtree, producers.iter_segment_frames = replace, rmtree, frames
extract.extract_visual(pd.read_csv({table!r}), {media!r}, TinyVisual(), {store_path!r}, frames_per_segment=4,
                       batch_size=2, progress=False)
print("NOT KILLED")
"""

# (point, which occurrence): what is on disk when the process dies
KILL_POINTS = [
    ("decoding", 2),  # the producer starts the second video; one part may be committed
    ("before_part_rename", 2),  # the second part is written to its temporary file, not renamed
    ("after_part_rename", 2),  # two parts committed
    ("before_merge_rename", 1),  # the merged file is complete in its temporary file
    ("before_failures_rename", 1),  # features.h5 in place, failures table not yet
    ("before_parts_cleanup", 1),  # everything written, the parts not yet removed
]


def _kill_run(tmp_path: Path, media: Path, point: str, count: int, rows=ROWS) -> Path:
    table_csv = tmp_path / "segments.csv"
    segment_table(rows).to_csv(table_csv, index=False)
    store = tmp_path / "killed" / "visual.h5"
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=str(TESTS_DIR), point=point, count=count, table=str(table_csv),
                                         media=str(media), store_path=str(store)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-1000:] + proc.stderr[-2000:]
    return store


@pytest.mark.parametrize("point, count", KILL_POINTS, ids=[p for p, _ in KILL_POINTS])
def test_kill_9_then_rerun_equals_an_uninterrupted_run(media, reference, tmp_path, point, count):
    store = _kill_run(tmp_path, media, point, count)
    committed = {p.stem for p in parts_dir(store).glob("[!.]*.npz")} if parts_dir(store).exists() else set()
    if point == "after_part_rename":
        assert committed == {"a", "b"}
    if point == "before_part_rename":
        assert committed == {"a"} and list(parts_dir(store).glob(".tmp-*"))  # the torn temporary part
    if point == "before_merge_rename":
        assert not store.exists() and list(store.parent.glob(".tmp-*visual.h5"))
    summary = _extract(store, media)  # the rerun
    assert summary["resumed"] == len(committed & {"a", "b", "c"})
    assert summary["discarded_stale_parts"] == summary["discarded_torn_parts"] == 0
    _same_as_reference(store, reference)
    assert not parts_dir(store).exists() and not list(store.parent.glob(".tmp-*"))


def test_kill_9_then_a_replaced_video_is_re_extracted_not_merged(media, tmp_path):
    local = tmp_path / "media"
    shutil.copytree(media, local)
    store = _kill_run(tmp_path, local, "after_part_rename", 2)  # a and b committed
    shutil.copyfile(local / "c.mp4", local / "a.mp4")  # the user replaces a's file before the rerun
    with pytest.warns(UserWarning, match="stale part of video 'a'"):
        summary = _extract(store, local)
    assert summary["discarded_stale_parts"] == 1 and summary["resumed"] == 1
    clean = tmp_path / "clean" / "visual.h5"
    _extract(clean, local)
    np.testing.assert_array_equal(read_store(store)["a"], read_store(clean)["a"])


# ------------------------------------------------------------------ disk full


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return proc.returncode == 0


def test_disk_full_on_a_small_tmpfs_names_the_file_keeps_the_work_and_resumes(media, reference, tmp_path):
    disk = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    if not _mount_tmpfs(disk, "256k"):
        pytest.skip("cannot mount a tmpfs here (not root or no mount permission); the patched-write test covers it")
    try:
        store = disk / "visual.h5"
        filler = disk / "filler"
        with open(filler, "wb") as fh:  # leave room for the run's lock file, the manifest and one part
            fh.write(b"\0" * (shutil.disk_usage(disk).free - 3 * 4096))  # tmpfs counts 4 KiB pages
        with pytest.raises(DiskFullError) as info:
            _extract(store, media)
        text = str(info.value)
        assert "disk full while writing it" in text and f"free on {disk}" in text
        assert ".npz" in text and "already committed are kept" in text
        kept = {p.stem for p in parts_dir(store).glob("*.npz")}
        assert len(kept) == 1 and not list(parts_dir(store).glob(".tmp-*"))
        filler.unlink()  # the user frees space and reruns
        summary = _extract(store, media)
        assert summary["resumed"] == 1
        _same_as_reference(store, reference)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_disk_full_from_a_patched_write_names_the_file_keeps_the_work_and_resumes(media, reference, tmp_path, monkeypatch):
    import pipeline.store as store_module

    real_savez, calls = np.savez, {"n": 0}

    def savez(fh, **arrays):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_savez(fh, **arrays)

    monkeypatch.setattr(store_module.np, "savez", savez)
    store = tmp_path / "visual.h5"
    with pytest.raises(DiskFullError, match=r"b\.npz: disk full while writing it \(.* free on .*\); the 1 videos "
                                            r"already committed are kept in .*visual\.h5\.parts; free some space"):
        _extract(store, media)
    assert {p.stem for p in parts_dir(store).glob("*.npz")} == {"a"}
    assert not list(parts_dir(store).glob(".tmp-*"))
    monkeypatch.setattr(store_module.np, "savez", real_savez)
    assert _extract(store, media)["resumed"] == 1
    _same_as_reference(store, reference)


# ------------------------------------------------------------------ ten kinds of bad video


def _faststart_copy(src: Path, dst: Path) -> None:
    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": "faststart"}) as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for packet in i.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            o.mux(packet)


@pytest.fixture(scope="module")
def bad_media(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad_media")
    write_video(root / "long.mp4", 250, 48, 32, fps=25, audio=sine(440, 10.0, 48000))
    raw = (root / "long.mp4").read_bytes()
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is not a video\n" * 50)
    (root / "cut.mp4").write_bytes(raw[: len(raw) // 2])  # index (moov) at the end: gone
    _faststart_copy(root / "long.mp4", root / "fs.mp4")
    fs = (root / "fs.mp4").read_bytes()
    (root / "fscut.mp4").write_bytes(fs[: len(fs) // 2])  # index first, data cut at about 5 s
    corrupt = bytearray(raw)
    corrupt[len(raw) // 3: len(raw) // 3 + 4000] = b"\0" * 4000
    (root / "corrupt.mp4").write_bytes(bytes(corrupt))
    with av.open(str(root / "audioonly.m4a"), "w") as c:  # an audio file where a video is expected
        stream = c.add_stream("aac", rate=48000, layout="mono")
        wave = sine(440, 1.0, 48000)
        frame = av.AudioFrame.from_ndarray(wave.astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        for packet in stream.encode(frame):
            c.mux(packet)
        for packet in stream.encode(None):
            c.mux(packet)
    (root / "folder.mp4").mkdir()
    return root


# vid, file, segment (start, end frame), failure stage, words the message must hold
BAD_VIDEOS = [
    ("gone", "gone.mp4", (0, 10), "locate", "gone.mp4: video file not found"),
    ("nofile", "", (0, 10), "locate", "the segment table names no video file"),
    ("empty", "empty.mp4", (0, 10), "probe", "empty.mp4: file is empty (0 bytes)"),
    ("text", "text.mp4", (0, 10), "probe", "text.mp4: cannot read with PyAV: corrupt data in the file (FFmpeg found invalid data)"),
    ("cut", "cut.mp4", (0, 10), "probe", "cut.mp4: cannot read with PyAV: truncated file: the .mp4 has no index (moov box)"),
    ("fscut", "fscut.mp4", (0, 10), "probe", "truncated file: the stream ends at"),
    ("corrupt", "corrupt.mp4", (0, 240), "decode", "corrupt data in the file (FFmpeg found invalid data)"),
    ("audioonly", "audioonly.m4a", (0, 10), "probe", "audioonly.m4a: no video stream"),
    ("folder", "folder.mp4", (0, 10), "locate", "folder.mp4: video file not found"),
    ("late", "long.mp4", (300, 320), "segments", "long.mp4 segment 0"),
    ("zero", "long.mp4", (20, 20), "segments", "segment [20.0, 20.0) is empty"),
]


def test_ten_kinds_of_bad_video_are_recorded_in_words_and_the_good_one_extracted(bad_media, tmp_path):
    rows = [("good", "long.mp4", 0, 25, NAN, NAN)]
    rows += [(vid, name, s, e, NAN, NAN) for vid, name, (s, e), _, _ in BAD_VIDEOS]
    store = tmp_path / "visual.h5"
    summary = _extract(store, bad_media, rows, max_failures=len(BAD_VIDEOS))
    assert summary["extracted"] == 1 and summary["failed"] == len(BAD_VIDEOS)
    assert sorted(read_store(store)) == ["good"]
    with open(failures_path(store)) as fh:
        rows = {r["vid"]: r for r in csv.DictReader(fh)}
    for vid, _, _, stage, words in BAD_VIDEOS:
        assert rows[vid]["stage"] == stage, (vid, rows[vid])
        assert words in rows[vid]["message"], (vid, rows[vid]["message"])
        assert "1094995529" not in rows[vid]["message"] and ".cc:" not in rows[vid]["message"]
    fscut = rows["fscut"]["message"]
    seconds = float(fscut.split("the stream ends at ")[1].split(" s")[0])
    assert 2.0 < seconds < 8.0 and "of 10.0 s" in fscut  # cut in the middle of a 10 s video


def test_a_truncated_audio_track_is_named_in_words(bad_media, tmp_path):
    rows = [("good", "long.mp4", NAN, NAN, 0.0, 1.0), ("fscut", "fscut.mp4", NAN, NAN, 8.0, 9.0)]
    store = tmp_path / "audio.h5"
    summary = extract_audio(segment_table(rows), bad_media, TinyAudio(), store, max_failures=1, progress=False)
    assert summary["failed"] == 1
    with open(failures_path(store)) as fh:
        row = next(csv.DictReader(fh))
    assert row["vid"] == "fscut" and "truncated file: the stream ends at" in row["message"]


def test_too_many_bad_videos_list_every_one_and_keep_the_good(bad_media, tmp_path):
    rows = [("good", "long.mp4", 0, 25, NAN, NAN), ("empty", "empty.mp4", 0, 10, NAN, NAN),
            ("cut", "cut.mp4", 0, 10, NAN, NAN)]
    store = tmp_path / "visual.h5"
    with pytest.raises(ExtractionError, match=r"2 video\(s\) failed, more than max_failures=1") as info:
        _extract(store, bad_media, rows, max_failures=1)
    assert "cut [probe] DecodeError: " in str(info.value) and "no index (moov box)" in str(info.value)
    assert "empty [probe] DecodeError: " in str(info.value) and "file is empty (0 bytes)" in str(info.value)
    assert {p.stem for p in parts_dir(store).glob("*.npz")} == {"good"}
