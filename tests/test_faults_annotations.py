"""Fault injection into the labels (issue 9): bad annotation files of every format, split files
and segment tables, each refused with a message naming the file, the video and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.annotations import AnnotationError, load_annotations, prepare_dataset, read_segment_table
from test_annotations import clips_for, lighthouse_yt, small_release, tvsum_rows, write_authors, write_json, write_jsonl
from test_annotations import write_splits, write_tvsum_tsv


def _authors(tmp_path: Path, edit) -> Path:
    root = write_authors(tmp_path / "yt", {"dog": {"TraiTightL": {"v1": [1, -1, 0]}, "TestTightL": {"v2": [1, 0]}}})
    edit(root)
    return root


def _set_clips(root: Path, clips, match) -> None:
    write_json(root / "dog" / "v1" / "clip.json", clips)
    write_json(root / "dog" / "v1" / "match_label.json", [clips, match])


def _lighthouse_tvsum(vid: str, T: int = 3, **edit) -> dict:
    return {"vid": vid, "domain": "VT", "duration": T, "label": tvsum_rows(T), **edit}


# name -> (builder(tmp_path) -> (dataset, path, kwargs for prepare_dataset or None), text the message must hold)
def _case_authors(edit):
    def build(tmp_path):
        return "youtube_highlights", _authors(tmp_path, edit), {"split": "authors"}
    return build


def _case_file(dataset: str, name: str, content):
    def build(tmp_path):
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content)
        elif name.endswith(".jsonl"):
            write_jsonl(path, content)
        else:
            write_json(path, content)
        return dataset, path, None
    return build


def _tsv_case(edit):
    def build(tmp_path):
        anno, _ = write_tvsum_tsv(tmp_path)
        anno.write_text(edit(anno.read_text()))
        return "tvsum", anno, None
    return build


def _split_case(domains, **kw):
    def build(tmp_path):
        root = small_release(tmp_path / "yt")
        splits = write_splits(tmp_path / "splits.json", "youtube_highlights", domains)
        return "youtube_highlights", root, {"splits_file": splits, **kw}
    return build


def _table_case(edit):
    def build(tmp_path):
        path = tmp_path / "segments.csv"
        table = load_annotations("youtube_highlights", write_jsonl(tmp_path / "ok.jsonl", [lighthouse_yt("v1", [1, 0, -1])]))
        table.to_csv(path, index=False)
        path.write_text(edit(path.read_text()))
        return "youtube_highlights", path, "table"
    return build


UMT_OK = {"fps": 30.0, "domain": "dog", "clip": clips_for(2), "match": [1, 0]}

BAD_ANNOTATIONS = {
    "authors_match_count": (_case_authors(lambda r: write_json(r / "dog" / "v1" / "match_label.json", [clips_for(3), [1, -1]])),
                            "match_label.json: video 'v1': 3 clips but 2 match labels"),
    "authors_match_value": (_case_authors(lambda r: write_json(r / "dog" / "v1" / "match_label.json", [clips_for(3), [1, 5, 0]])),
                            "video 'v1': match[1] = 5.0 is not one of -1, 0, 1"),
    "authors_malformed_json": (_case_authors(lambda r: (r / "dog" / "v1" / "match_label.json").write_text("[[[0, 1]], [1,")),
                               "v1/match_label.json: malformed JSON at line 1"),
    "authors_zero_length_clip": (_case_authors(lambda r: _set_clips(r, [[0, 100], [30, 30], [100, 200]], [1, -1, 0])),
                                 "video 'v1': clip[1] = [30, 30] has zero length"),
    "authors_reversed_clip": (_case_authors(lambda r: _set_clips(r, [[0, 100], [90, 40], [100, 200]], [1, -1, 0])),
                              "video 'v1': clip[1] = [90, 40] is not 0 <= start <= end"),
    "authors_unsafe_id": (_case_authors(lambda r: write_json(r / "dog" / "vlist.json", [[["v1", "../../etc"], "TraiTightL"]])),
                          "video id '../../etc' is not a safe name"),
    "umt_missing_clip": (_case_file("youtube_highlights", "youtube_anno.json", {"v9": {k: v for k, v in UMT_OK.items() if k != "clip"}}),
                         "youtube_anno.json: video 'v9': missing field 'clip'"),
    "umt_bad_fps": (_case_file("youtube_highlights", "youtube_anno.json", {"v9": {**UMT_OK, "fps": -30}}),
                    "youtube_anno.json: video 'v9': fps = -30 is not a positive number"),
    "umt_not_an_object": (_case_file("youtube_highlights", "youtube_anno.json", [1, 2]),
                          "youtube_anno.json: expected a JSON object"),
    "lighthouse_malformed_line": (_case_file("youtube_highlights", "yt.jsonl", "{\"vid\": \"v1\", \n"),
                                  "yt.jsonl:1: malformed JSON"),
    "lighthouse_label_vs_match": (_case_file("youtube_highlights", "yt.jsonl", [{**lighthouse_yt("v3", [1, 0]), "label": [[0], [0]]}]),
                                  "yt.jsonl:1: video 'v3': label disagrees with match > 0"),
    "lighthouse_duplicate": (_case_file("youtube_highlights", "yt.jsonl", [lighthouse_yt("v3", [1, 0]), lighthouse_yt("v3", [0, 1])]),
                             "yt.jsonl:2: video 'v3': duplicated id (first on line 1)"),
    "lighthouse_tvsum_annotators": (_case_file("tvsum", "tv.jsonl", [_lighthouse_tvsum("t1", label=[r[:19] for r in tvsum_rows(3)])]),
                                    "tv.jsonl:1: video 't1': shot 0 has 19 annotator scores, expected 20"),
    "lighthouse_tvsum_score_range": (_case_file("tvsum", "tv.jsonl", [_lighthouse_tvsum("t1", label=[[7.0] * 20] + tvsum_rows(2))]),
                                     "tv.jsonl:1: video 't1': shot 0, annotator 0: score 7.0 is outside 1..5"),
    "lighthouse_tvsum_duration": (_case_file("tvsum", "tv.jsonl", [_lighthouse_tvsum("t1", duration=5)]),
                                  "tv.jsonl:1: video 't1': duration 5 != 3 labelled shots"),
    "tvsum_tsv_score_range": (_tsv_case(lambda t: t.replace("vidA\tVT\t1,", "vidA\tVT\t7,", 1)),
                              "anno.tsv:1: video 'vidA': frame 0: score 7.0 is outside 1..5"),
    "tvsum_tsv_missing_annotator": (_tsv_case(lambda t: "\n".join(t.splitlines()[1:])),
                                    "video 'vidA': 19 annotator rows, expected 20"),
    "split_missing_video": (_split_case({"dog": {"train": ["dogA", "ghost"], "val": ["dogB"]}}),
                            "splits.json: video 'ghost' (dog, train) is in the split list but not in the annotations"),
    "split_listed_twice": (_split_case({"dog": {"train": ["dogA"], "val": ["dogA"]}}),
                           "splits.json: video 'dogA' is listed twice"),
    "split_empty_test": (_split_case({"dog": {"train": ["dogA"], "val": []}}),
                         "splits.json: the test split is empty"),
    "table_seg_idx_gap": (_table_case(lambda t: t.replace("\nv1,dog,,1,", "\nv1,dog,,5,", 1)),
                          "segments.csv:3: video 'v1': seg_idx 5 where 1 was expected"),
    "table_label": (_table_case(lambda t: t.replace(",1,1.0,[1],", ",7,1.0,[1],", 1)),
                    "segments.csv:2: video 'v1': label 7 is not 0/1"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANNOTATIONS))
def test_bad_annotations_name_the_file_the_video_and_the_problem(tmp_path, case):
    build, expected = BAD_ANNOTATIONS[case]
    dataset, path, kwargs = build(tmp_path)
    with pytest.raises(AnnotationError) as info:
        if kwargs == "table":
            read_segment_table(path)
        elif kwargs is None:
            load_annotations(dataset, path)
        else:
            prepare_dataset(dataset, path, **kwargs)
    assert expected in str(info.value), str(info.value)
    assert str(tmp_path) in str(info.value)  # the file is named with its path


def test_the_suite_covers_at_least_fifteen_kinds():
    assert len(BAD_ANNOTATIONS) >= 15
    assert json.dumps(sorted(BAD_ANNOTATIONS))  # names are plain
