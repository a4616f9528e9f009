"""Annotation readers -> canonical segment table: real annotations, small files of every format,
every error case, splits and the segments.csv round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.annotations import (
    SEGMENT_COLUMNS,
    AnnotationError,
    detect_format,
    frames_to_shots,
    load_annotations,
    lower_median,
    prepare_dataset,
    read_segment_table,
    scores_matrix,
    write_segment_table,
)

YT_DOMAINS = ("dog", "gymnastics", "parkour", "skating", "skiing", "surfing")


# ------------------------------------------------------------------ small-file writers


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def clips_for(n: int) -> list[list[float]]:
    return [[50.0 * i, 50.0 * i + 100.0] for i in range(n)]


def write_authors(root: Path, domains: dict, missing: dict | None = None) -> Path:
    """domains: {domain: {list name: {vid: match list, or None for a listed video without folder}}}."""
    for domain, lists in domains.items():
        vlist = []
        for name, vids in lists.items():
            vlist.append([list(vids), name])
            for vid, match in vids.items():
                if match is None:
                    continue
                write_json(root / domain / vid / "clip.json", clips_for(len(match)))
                write_json(root / domain / vid / "match_label.json", [clips_for(len(match)), match])
        write_json(root / domain / "vlist.json", vlist)
    for vid, backup in (missing or {}).items():
        (root / "missingVideos").mkdir(parents=True, exist_ok=True)
        (root / "missingVideos" / vid).write_text(backup + "\n")
    return root


def small_release(root: Path) -> Path:
    return write_authors(root, {
        "dog": {"TraiTightL": {"dogA": [-1, 1, 1, 0]}, "TestLooseL": {"dogB": [1, -1, -1], "dogGone": None}},
        "surfing": {"TraiLooseL": {"surfA": [0, 1]}, "TestTightL": {"surfB": [-1, -1, 1, 1, 1]}},
    }, missing={"surfB": "surfB_new"})


def write_splits(path: Path, dataset_key: str, domains: dict) -> Path:
    return write_json(path, {dataset_key: domains})


def tvsum_rows(T: int, base: int = 1) -> list[list[float]]:
    return [[float(1 + (t + a + base) % 5) for a in range(20)] for t in range(T)]


# ------------------------------------------------------------------ real annotations


@pytest.fixture(scope="module")
def real_youtube(shared_data):
    return prepare_dataset("youtube_highlights", shared_data / "youtube_highlights",
                           splits_file=shared_data / "splits" / "umt_splits.json")


def test_real_youtube_umt_split_counts(real_youtube):
    table, report = real_youtube
    assert tuple(table.columns) == SEGMENT_COLUMNS
    expected = {  # domain: (videos, train, test, clips), counted from the UMT split and clip.json files
        "dog": (68, 44, 24, 3169), "gymnastics": (62, 34, 28, 2750), "parkour": (32, 21, 11, 1494),
        "skating": (35, 24, 11, 2433), "skiing": (119, 68, 51, 9870), "surfing": (103, 56, 47, 4614),
    }
    for d, (n, tr, te, clips) in expected.items():
        r = report["per_domain"][d]
        assert (r["videos"], r["train_videos"], r["test_videos"], r["segments"]) == (n, tr, te, clips)
    assert report["videos"] == 419 and report["segments"] == 24330 == len(table)
    assert json.loads(json.dumps(report)) == report  # report.json-ready
    assert report["per_split"]["test"]["videos"] == 172
    # 550 listed videos, 131 of them in no UMT list: excluded and counted, never silently
    assert report["skipped_counts"] == {"bad_missing_entry": 1, "unsplit": 131}
    bad = [s for s in report["skipped"] if s["reason"] == "bad_missing_entry"]
    assert bad[0]["vid"] == "pvyy j51M64"  # the release's typo for pvyy-j51M64
    assert report["missing_on_youtube"]["count"] == 46 and report["missing_on_youtube"]["in_table"] == 10
    assert report["missing_on_youtube"]["reuploads"]["fxOfeQdFrVE"] == "QSYJqzjwDHU"
    # labels are match > 0 and rows are grouped by video with seg_idx 0..T-1
    assert (table["label"] == (table["match"] > 0)).all()
    assert set(table["match"].unique()) == {-1.0, 0.0, 1.0}
    assert abs(report["positive_fraction"] - table["label"].mean()) < 1e-12
    first = table[table["vid"] == "-olTgMPAyMI"]
    assert first["seg_idx"].tolist() == list(range(len(first)))
    assert first[["start_frame", "end_frame"]].iloc[0].tolist() == [0.0, 100.0]
    assert first["start_s"].isna().all() and first["fps"].isna().all() and (first["video"] == "").all()


def test_real_youtube_authors_splits(shared_data):
    root = shared_data / "youtube_highlights"
    table, report = prepare_dataset("youtube_highlights", root, split="authors")
    assert report["videos"] == 550 and report["skipped_counts"] == {"bad_missing_entry": 1}
    listed = {d: json.loads((root / d / "vlist.json").read_text()) for d in YT_DOMAINS}
    for d, lists in listed.items():
        test = sum(len(v) for v, name in lists if name.startswith("Test"))
        assert report["per_domain"][d]["test_videos"] == test
    _, sel = prepare_dataset("youtube_highlights", root, split="authors_sel")
    assert sel["videos"] == 413 and sel["skipped_counts"]["unsplit"] == 550 - 413


def test_real_tvsum_lighthouse(shared_data):
    files = sorted((shared_data / "tvsum").glob("lighthouse_tvsum_*_release.jsonl"))
    table, report = prepare_dataset("tvsum", files, splits_file=shared_data / "splits" / "umt_splits.json")
    assert report["videos"] == 50 and report["segments"] == 6266
    assert report["per_split"]["train"]["videos"] == 40 and report["per_split"]["test"]["videos"] == 10
    assert len(report["per_domain"]) == 10 and all(r["test_videos"] == 1 for r in report["per_domain"].values())
    one = table[table["vid"] == "sTEELN-vY30"]
    assert one["domain"].iloc[0] == "VU" and one["split"].iloc[0] == "test" and len(one) == 74
    assert one["end_s"].iloc[-1] == 148.0 and one["match"].isna().all()
    s = scores_matrix(one["scores"])  # [74, 20]
    assert s.shape == (74, 20) and s[0, :3].tolist() == [5.0, 3.0, 2.0]
    mean = s.mean(axis=1)
    assert (one["label"].to_numpy() == (mean > np.sort(mean)[(74 - 1) // 2])).all()


# ------------------------------------------------------------------ authors' layout, small


def test_authors_small_release(tmp_path):
    root = small_release(tmp_path / "yt")
    (root / "dog" / "strayVid").mkdir()  # a folder no vlist.json lists
    splits = write_splits(tmp_path / "s.json", "youtube_highlights", {
        "dog": {"train": ["dogA"], "val": ["dogB", "dogGone"]},
        "surfing": {"train": [], "val": ["surfB"]},
    })
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "dogA.mkv").write_bytes(b"x")
    (videos / "surfB_new.mp4").write_bytes(b"x")  # found through the missingVideos re-upload id
    table, report = prepare_dataset("youtube_highlights", root, splits_file=splits, videos_dir=videos)
    assert table["vid"].unique().tolist() == ["dogA", "dogB", "surfB"]
    assert table.groupby("vid", sort=False)["split"].first().tolist() == ["train", "test", "test"]
    assert table["label"].tolist() == [0, 1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1]
    assert table["scores"].tolist()[:4] == ["[-1]", "[1]", "[1]", "[0]"]
    assert table.groupby("vid", sort=False)["video"].first().tolist() == ["dogA.mkv", "", "surfB_new.mp4"]
    reasons = {(s["vid"], s["reason"]) for s in report["skipped"]}
    assert reasons == {("dogGone", "folder_missing"), ("strayVid", "unlisted_folder"), ("surfA", "unsplit")}
    assert report["videos_found"] == 2 and report["videos_not_found"] == ["dogB"]
    assert report["per_split"]["test"] == {"videos": 2, "segments": 8, "positive_fraction": 4 / 8}


def test_authors_split_for_demo_and_umt_refused(tmp_path):
    root = small_release(tmp_path / "demo")
    table, report = prepare_dataset("demo", root, split="authors")
    assert report["per_split"]["train"]["videos"] == 2 and report["per_split"]["test"]["videos"] == 2
    with pytest.raises(AnnotationError, match="no 'demo' videos"):
        prepare_dataset("demo", root, split="umt", splits_file=write_splits(tmp_path / "s.json", "tvsum", {}))


@pytest.mark.parametrize(
    "case, match",
    [
        ("length", r"match_label.json: video 'v1': 3 clips but 2 match labels"),
        ("range", r"video 'v1': match\[1\] = 2.0 is not one of -1, 0, 1"),
        ("nonnumeric", r"video 'v1': match\[0\] = 'a' is not a finite number"),
        ("malformed", r"v1/match_label.json: malformed JSON at line 1"),
        ("unsafe", r"video id '\.\./x' is not a safe name"),
        ("twice", r"video 'v1' is listed twice"),
        ("two_domains", r"video 'v1' is listed in two domains \(a and b\)"),
        ("clips_differ", r"video 'v1': its clips differ from those in .*clip.json"),
    ],
)
def test_authors_errors(tmp_path, case, match):
    root = write_authors(tmp_path, {"a": {"TraiTightL": {"v1": [1, -1, 0]}}})
    mfile = root / "a" / "v1" / "match_label.json"
    if case == "length":
        write_json(mfile, [clips_for(3), [1, -1]])
    elif case == "range":
        write_json(mfile, [clips_for(3), [1, 2, 0]])
    elif case == "nonnumeric":
        write_json(mfile, [clips_for(3), ["a", 1, 0]])
    elif case == "malformed":
        mfile.write_text("[[[0, 100]], [1,")
    elif case == "unsafe":
        write_json(root / "a" / "vlist.json", [[["v1", "../x"], "TraiTightL"]])
    elif case == "twice":
        write_json(root / "a" / "vlist.json", [[["v1"], "TraiTightL"], [["v1"], "TestTightL"]])
    elif case == "two_domains":
        write_authors(root, {"b": {"TestTightL": {"v1": [1]}}})
    elif case == "clips_differ":
        write_json(mfile, [[[0, 100], [50, 150], [100, 201]], [1, -1, 0]])
    with pytest.raises(AnnotationError, match=match):
        prepare_dataset("youtube_highlights", root, split="authors")


def test_split_list_video_without_annotations(tmp_path):
    root = small_release(tmp_path / "yt")
    splits = write_splits(tmp_path / "s.json", "youtube_highlights",
                          {"dog": {"train": ["dogA", "ghost"], "val": ["dogB"]}, "surfing": {"train": [], "val": []}})
    with pytest.raises(AnnotationError, match=r"s.json: video 'ghost' \(dog, train\) is in the split list but not in "
                                              r"the annotations \(.*yt\); set prepare.missing_split_videos: skip in params.yaml"):
        prepare_dataset("youtube_highlights", root, splits_file=splits)
    _, report = prepare_dataset("youtube_highlights", root, splits_file=splits, missing_split_videos="skip")
    assert report["skipped_counts"] == {"folder_missing": 1, "not_in_annotations": 1, "unsplit": 2}


def test_split_file_errors(tmp_path):
    root = small_release(tmp_path / "yt")
    dup = write_splits(tmp_path / "d.json", "youtube_highlights", {"dog": {"train": ["dogA"], "val": ["dogA"]}})
    with pytest.raises(AnnotationError, match=r"d.json: video 'dogA' is listed twice"):
        prepare_dataset("youtube_highlights", root, splits_file=dup)
    wrong = write_splits(tmp_path / "w.json", "youtube_highlights",
                         {"surfing": {"train": ["dogA"], "val": []}, "dog": {"train": [], "val": ["dogB"]}})
    with pytest.raises(AnnotationError, match=r"video 'dogA': domain 'dog' but .*w.json lists it under 'surfing'"):
        prepare_dataset("youtube_highlights", root, splits_file=wrong)


# ------------------------------------------------------------------ UMT json, lighthouse jsonl


def test_umt_youtube_json(tmp_path):
    path = write_json(tmp_path / "youtube_anno.json", {
        "vidA": {"fps": 25.0, "frames": 240, "domain": "dog", "info": [], "clip": [[0, 100], [50, 150], [100, 200]],
                 "match": [1, 0, -1], "mturk": [0.5, 1, 0]},
        "vidB": {"fps": 30, "frames": 120, "domain": "surfing", "clip": [[0, 100]], "match": [1]},
    })
    splits = write_splits(tmp_path / "s.json", "youtube_highlights",
                          {"dog": {"train": [], "val": ["vidA"]}, "surfing": {"train": ["vidB"], "val": []}})
    table, report = prepare_dataset("youtube_highlights", path, splits_file=splits)
    assert report["format"] == "umt"
    a = table[table["vid"] == "vidA"]
    assert a["start_s"].tolist() == [0.0, 2.0, 4.0] and a["end_s"].tolist() == [4.0, 6.0, 8.0]
    assert a["fps"].tolist() == [25.0] * 3 and a["label"].tolist() == [1, 0, 0] and a["split"].iloc[0] == "test"


def test_umt_tvsum_json_domain_from_split(tmp_path):
    path = write_json(tmp_path / "tvsum_anno.json", {"t1": {"anno": tvsum_rows(4)}, "t2": {"category": "BK", "anno": tvsum_rows(3, 2)}})
    splits = write_splits(tmp_path / "s.json", "tvsum", {"BK": {"train": ["t2"], "val": ["t1"]}})
    table, _ = prepare_dataset("tvsum", path, splits_file=splits)
    assert table["domain"].unique().tolist() == ["BK"] and len(table) == 7
    assert table["start_s"].tolist()[:4] == [0.0, 2.0, 4.0, 6.0]
    bad = write_json(tmp_path / "bad.json", {"t1": {"anno": tvsum_rows(2)[:1] + [[3.0] * 19]}})
    with pytest.raises(AnnotationError, match=r"bad.json: video 't1': shot 1 has 19 annotator scores"):
        prepare_dataset("tvsum", bad, splits_file=splits)


def lighthouse_yt(vid: str, match: list[int], fps: float = 30.0, domain: str = "dog") -> dict:
    n = len(match)
    clip = [[50.0 * i, min(50.0 * i + 100.0, 50.0 * n + 48.0)] for i in range(n)]  # last end clipped
    return {"qid": vid, "query": domain, "duration": clip[-1][1] / fps, "vid": vid,
            "relevant_clip_ids": None, "relevant_windows": None, "label": [[int(m > 0)] for m in match],
            "domain": domain, "frames": clip[-1][1], "fps": fps, "clip": clip, "match": match}


def test_lighthouse_youtube_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "yt_val.jsonl", [lighthouse_yt("v1", [-1, 1, 0, 1]), lighthouse_yt("v2", [1], 29.97)])
    table = load_annotations("youtube_highlights", path)
    v1 = table[table["vid"] == "v1"]
    assert v1["end_frame"].tolist() == [100.0, 150.0, 200.0, 248.0]
    assert v1["end_s"].iloc[-1] == 248.0 / 30.0 and v1["label"].tolist() == [0, 1, 0, 1]
    assert (table["split"] == "").all() and (table["video"] == "").all()
    rec = lighthouse_yt("v3", [1, -1])
    rec["label"] = [[1], [1]]
    bad = write_jsonl(tmp_path / "bad.jsonl", [lighthouse_yt("v1", [1]), rec])
    with pytest.raises(AnnotationError, match=r"bad.jsonl:2: video 'v3': label disagrees with match > 0"):
        load_annotations("youtube_highlights", bad)


@pytest.mark.parametrize(
    "lines, match",
    [
        ([json.dumps({"vid": "v1", "domain": "VU", "label": tvsum_rows(1)}), '{"vid": "v2", '], r"x.jsonl:2: malformed JSON"),
        (['{"vid": "v1", "domain": "VU", "label": [[6.0]]}'], r"x.jsonl:1: video 'v1': shot 0 has 1 annotator"),
        ([json.dumps({"vid": "v1", "domain": "VU", "label": [[6.0] + [3.0] * 19]})], r"shot 0, annotator 0: score 6.0 is outside 1..5"),
        ([json.dumps({"vid": "v1", "domain": "VU", "label": [["x"] + [3.0] * 19]})], r"x.jsonl:1: video 'v1': scores of shot 0\[0\] = 'x'"),
        ([json.dumps({"vid": "v1", "domain": "VU", "label": tvsum_rows(2)})] * 2, r"x.jsonl:2: video 'v1': duplicated id \(first on line 1\)"),
        ([json.dumps({"vid": "../v1", "domain": "VU", "label": tvsum_rows(2)})], r"video id '\.\./v1' is not a safe name"),
        ([json.dumps({"vid": "v1", "domain": "VU", "duration": 3, "label": tvsum_rows(2)})], r"duration 3 != 2 labelled shots"),
        ([json.dumps({"vid": "v1", "label": tvsum_rows(2)})], r"x.jsonl:1: video 'v1': missing field 'domain'"),
    ],
)
def test_lighthouse_tvsum_errors(tmp_path, lines, match):
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=match):
        load_annotations("tvsum", path)


def test_load_annotations_concatenates_and_refuses_duplicates(tmp_path):
    a = write_jsonl(tmp_path / "train.jsonl", [{"vid": "t1", "domain": "BK", "label": tvsum_rows(3)}])
    b = write_jsonl(tmp_path / "val.jsonl", [{"vid": "t2", "domain": "BT", "label": tvsum_rows(2)}])
    table = load_annotations("tvsum", [a, b])
    assert table["vid"].tolist() == ["t1"] * 3 + ["t2"] * 2 and table["seg_idx"].tolist() == [0, 1, 2, 0, 1]
    c = write_jsonl(tmp_path / "again.jsonl", [{"vid": "t1", "domain": "BK", "label": tvsum_rows(3)}])
    with pytest.raises(AnnotationError, match=r"'t1' is annotated in both .*train.jsonl and .*again.jsonl"):
        load_annotations("tvsum", [a, c])
    seg = tmp_path / "segments.csv"
    write_segment_table(load_annotations("tvsum", b), seg)
    assert load_annotations("tvsum", [a, seg])["vid"].nunique() == 2
    with pytest.raises(AnnotationError, match=r"'t2' is annotated in both .*val.jsonl and .*segments.csv"):
        load_annotations("tvsum", [b, seg])


def test_detect_format(tmp_path):
    root = small_release(tmp_path / "yt")
    assert detect_format(root) == "authors"
    assert [detect_format(tmp_path / n) for n in ("a.jsonl", "a.json", "a.tsv", "a.csv")] == [
        "lighthouse", "umt", "tvsum_tsv", "segments"]
    with pytest.raises(AnnotationError, match="cannot tell"):
        detect_format(tmp_path / "a.txt")
    with pytest.raises(AnnotationError, match="without <domain>/vlist.json"):
        detect_format(root / "dog")


# ------------------------------------------------------------------ TVSum tsv


def write_tvsum_tsv(tmp_path: Path) -> tuple[Path, Path]:
    """Video A: 5 s, 13 frames (fps 2.6): shots = frames 0-5, 6-10, 11-12 (a 1 s shot).
    Video B: 0:04, 12 frames (fps 3): shots = frames 0-5, 6-11. Annotator a's frame scores are
    constant per shot except the noted frames, which test the rounding."""
    rows = []
    for a in range(20):
        s = [1 + a % 5] * 6 + [5] * 5 + [2, 3]  # shot 2 mean 2.5 -> rounds half up to 3
        if a == 0:
            s[5] = 4  # shot 0: (1*5 + 4) / 6 = 1.5 -> 2
        rows.append(f"vidA\tVT\t{','.join(map(str, s))}")
    for a in range(20):
        s = [3] * 6 + [1, 1, 1, 1, 1, 2]  # shot 1 mean 7/6 -> 1
        rows.append(f"vidB\tBK\t{','.join(map(str, s))}")
    anno = tmp_path / "ydata-tvsum50-anno.tsv"
    anno.write_text("\n".join(rows) + "\n")
    info = tmp_path / "ydata-tvsum50-info.tsv"
    info.write_text("category\tvideo_id\ttitle\turl\tlength\n"
                    "VT\tvidA\tA title\thttp://x\t0:05\nBK\tvidB\tB title\thttp://y\t0:04\n"
                    "BK\tvidC\tC title\thttp://z\t1:02:03\n")
    return anno, info


def test_tvsum_tsv_reader(tmp_path):
    anno, info = write_tvsum_tsv(tmp_path)
    splits = write_splits(tmp_path / "s.json", "tvsum", {"VT": {"train": ["vidA"], "val": []},
                                                         "BK": {"train": [], "val": ["vidB"]}})
    table, report = prepare_dataset("tvsum", anno, splits_file=splits)  # info found beside the anno file
    a = table[table["vid"] == "vidA"]
    assert a["start_frame"].tolist() == [0, 6, 11] and a["end_frame"].tolist() == [6, 11, 13]
    assert a["start_s"].tolist() == [0, 2, 4] and a["end_s"].tolist() == [2, 4, 5] and a["fps"].iloc[0] == 2.6
    sa = scores_matrix(a["scores"])  # [3, 20]
    assert sa[:, 0].tolist() == [2, 5, 3] and sa[:, 1].tolist() == [2, 5, 3] and sa[:, 4].tolist() == [5, 5, 3]
    b = table[table["vid"] == "vidB"]
    assert scores_matrix(b["scores"]).tolist() == [[3] * 20, [1] * 20] and b["label"].tolist() == [1, 0]
    # label: mean over annotators > lower median of the shot means
    means = sa.mean(axis=1)
    assert a["label"].tolist() == (means > lower_median(means)).astype(int).tolist() == [0, 1, 0]
    assert report["skipped"] == [{"vid": "vidC", "domain": "BK", "reason": "no_annotation_rows",
                                  "detail": f"in {info} but not in {anno}"}]


def test_frames_to_shots_exact_boundaries():
    shots, starts = frames_to_shots(np.arange(1, 61, dtype=float)[None] % 5 + 1, 2)  # 60 frames, 2 s -> 1 shot
    assert starts.tolist() == [0] and shots.shape == (1, 1)
    # 149 s at 30 fps: 75 shots, the last one second long
    _, starts = frames_to_shots(np.ones((1, 4470)), 149)
    assert len(starts) == 75 and starts[1] == 60 and starts[-1] == 4440


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t.replace("vidA\tVT\t1,", "vidA\tVT\tx,", 1), r"anno.tsv:1: video 'vidA': frame score 'x' is not a number"),
        (lambda t: t.replace("vidA\tVT\t1,", "vidA\tVT\t7,", 1), r"anno.tsv:1: video 'vidA': frame 0: score 7.0 is outside 1..5"),
        (lambda t: t.replace("vidB\tBK", "vidB\tVT", 1), r"anno.tsv:22: video 'vidB': category 'BK' differs from 'VT' on line 21"),
        (lambda t: "\n".join(t.splitlines()[1:]), r"video 'vidA': 19 annotator rows, expected 20"),
        (lambda t: t.replace("vidA\tVT\t1,", "vidA\tVT\t1,1,", 1), r"anno.tsv:2: video 'vidA': 13 frame scores, line 1 has 14"),
        (lambda t: t.replace("vidA\t", "../a\t", 1), r"video id '\.\./a' is not a safe name"),
    ],
)
def test_tvsum_tsv_errors(tmp_path, edit, match):
    anno, _ = write_tvsum_tsv(tmp_path)
    anno.write_text(edit(anno.read_text()))
    with pytest.raises(AnnotationError, match=match):
        load_annotations("tvsum", anno)


def test_tvsum_info_errors(tmp_path):
    anno, info = write_tvsum_tsv(tmp_path)
    info.write_text(info.read_text().replace("0:05", "5 s"))
    with pytest.raises(AnnotationError, match=r"info.tsv:2: video 'vidA': length '5 s' is not m:ss"):
        load_annotations("tvsum", anno)
    info.write_text("category\tvideo_id\ttitle\turl\tlength\nBK\tvidB\tB\tu\t0:04\n")
    with pytest.raises(AnnotationError, match=r"anno.tsv:1: video 'vidA': not in the info table"):
        load_annotations("tvsum", anno)


# ------------------------------------------------------------------ segments.csv


def test_segment_table_round_trip(tmp_path):
    anno, _ = write_tvsum_tsv(tmp_path)
    tv = load_annotations("tvsum", anno)
    yt = load_annotations("youtube_highlights", write_jsonl(
        tmp_path / "y.jsonl", [lighthouse_yt("NA", [1, -1, 0], fps=29.97002997002997)]))  # "NA" stays a string
    table = pd.concat([tv, yt], ignore_index=True)
    table.loc[table["vid"] == "vidA", "video"] = "vidA.mp4"
    table.loc[table["vid"] == "NA", "split"] = "train"
    path = tmp_path / "out" / "segments.csv"
    write_segment_table(table, path)
    back = read_segment_table(path)
    pd.testing.assert_frame_equal(back, table)
    assert back["seg_idx"].dtype == np.int64 and back["label"].dtype == np.int64
    assert back["match"].dtype == np.float64 and back["match"].isna().sum() == len(tv)
    assert back["vid"].iloc[-1] == "NA" and back["video"].iloc[0] == "vidA.mp4"
    assert [p.name for p in path.parent.iterdir()] == ["segments.csv"]  # no temp file left


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t.replace("vid,domain", "vid,category", 1), r"columns \['vid', 'category'"),
        (lambda t: t.replace("\nv1,BK,train,1,", "\nv1,BK,train,x,", 1), r"segments.csv:3: video 'v1': seg_idx = 'x' is not an integer"),
        (lambda t: t.replace("\nv1,BK,train,1,", "\nv1,BK,train,2,", 1), r"segments.csv:3: video 'v1': seg_idx 2 where 1 was expected"),
        (lambda t: t.replace(",0.0,2.0,", ",zero,2.0,", 1), r"segments.csv:2: video 'v1': start_s = 'zero' is not a number"),
        (lambda t: t.replace("v1,BK,train,", "v1,BK,valid,", 1), r"split 'valid' is not train/test"),
        (lambda t: t + t.splitlines()[1] + "\n", r"segments.csv:5: video 'v1': rows are not contiguous"),
        (lambda t: t.replace('"[3, 3', '"[3, x', 1), r"segments.csv:2: video 'v1': scores .* is not a JSON list"),
    ],
)
def test_segment_table_errors(tmp_path, edit, match):
    table = load_annotations("tvsum", write_jsonl(tmp_path / "a.jsonl", [
        {"vid": "v1", "domain": "BK", "label": [[3.0] * 20, [4.0] * 20]},
        {"vid": "v2", "domain": "BK", "label": [[3.0] * 20]},
    ]))
    table["split"] = "train"
    path = tmp_path / "segments.csv"
    write_segment_table(table, path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(AnnotationError, match=match):
        read_segment_table(path)


def test_prepare_rejects_unknown_choices(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        prepare_dataset("qvhighlights", tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        prepare_dataset("tvsum", tmp_path, split="random")
    with pytest.raises(AnnotationError, match="no such file"):
        prepare_dataset("tvsum", tmp_path / "nothing.jsonl")
    with pytest.raises(AnnotationError, match="does not hold tvsum annotations"):
        prepare_dataset("tvsum", small_release(tmp_path / "yt"))


def test_umt_split_and_missing_categories_need_the_split_file(tmp_path):
    path = write_jsonl(tmp_path / "y.jsonl", [lighthouse_yt("vidA", [1, -1, 0])])
    with pytest.raises(AnnotationError, match="split 'umt' needs splits_file"):
        prepare_dataset("youtube_highlights", path)
    anno = tmp_path / "tvsum_anno.json"
    anno.write_text(json.dumps({"vidT": {"anno": [[3] * 20, [1] * 20]}}))  # UMT's tvsum json has no category
    with pytest.raises(AnnotationError, match=r"tvsum_anno\.json.*vidT.*no domain/category field.*--splits-file"):
        load_annotations("tvsum", anno)
    splits = write_splits(tmp_path / "s.json", "tvsum", {"BK": {"train": [], "val": ["vidT"]}})
    assert load_annotations("tvsum", anno, splits_file=splits)["domain"].unique().tolist() == ["BK"]


# ------------------------------------------------------------------ issue 9: empty splits, zero-length clips


def test_an_empty_split_fails_prepare_naming_the_split_file(tmp_path):
    """Before issue 9, prepare succeeded and an IndexError came two stages later."""
    root = small_release(tmp_path / "yt")
    no_test = write_splits(tmp_path / "s.json", "youtube_highlights",
                           {"dog": {"train": ["dogA"], "val": []}, "surfing": {"train": [], "val": []}})
    with pytest.raises(AnnotationError, match=r"s.json: the test split is empty \(\{'train': 1, 'test': 0\}"):
        prepare_dataset("youtube_highlights", root, splits_file=no_test)
    nothing = write_splits(tmp_path / "e.json", "youtube_highlights", {"dog": {"train": [], "val": []}})
    with pytest.raises(AnnotationError, match=r"e.json: the train and test splits are empty"):
        prepare_dataset("youtube_highlights", root, splits_file=nothing)


def test_a_zero_length_clip_fails_prepare_naming_the_file_and_the_video(tmp_path):
    root = write_authors(tmp_path, {"a": {"TraiTightL": {"v1": [1, -1, 0]}, "TestTightL": {"v2": [1]}}})
    clips = [[0, 100], [30, 30], [100, 200]]
    write_json(root / "a" / "v1" / "clip.json", clips)
    write_json(root / "a" / "v1" / "match_label.json", [clips, [1, -1, 0]])
    with pytest.raises(AnnotationError, match=r"v1/.*json: video 'v1': clip\[1\] = \[30, 30\] has zero length"):
        prepare_dataset("youtube_highlights", root, split="authors")
    lines = [lighthouse_yt("v1", [1, 0], fps=30.0)]
    lines[0]["clip"] = [[0, 100], [598, 598]]
    path = write_jsonl(tmp_path / "yt.jsonl", lines)
    with pytest.raises(AnnotationError, match=r"yt.jsonl:1: video 'v1': clip\[1\] = \[598, 598\] has zero length"):
        load_annotations("youtube_highlights", path)
