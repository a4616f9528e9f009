"""Videos left out are listed with their reasons, per split, never dropped silently (issue 9, item 3)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from pipeline.evaluation import evaluate_run
from pipeline.model import ModelConfig
from pipeline.skipped import (
    Skip,
    collect_skips,
    print_reasons,
    print_skips,
    read_skips,
    skipped_by_split,
    table_note,
    write_skips,
)
from pipeline.train import TrainConfig, train_dataset
from test_train import TINY, planted_items, table_of

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _table(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"vid": v, "split": s, "domain": d, "seg_idx": 0} for v, s, d in rows])


def test_collect_skips_explains_missing_features_with_the_extraction_failure(tmp_path):
    table = _table([("v1", "train", "dog"), ("v2", "test", "dog"), ("v3", "test", "surf"), ("ok", "test", "dog")])
    (tmp_path / "visual.csv").write_text(
        "vid,stage,error_type,message\nv1,decode,OSError,v1.mp4: truncated file: the stream ends at 12.4 s\n"
        "v2,locate,FileNotFoundError,v2.mp4: video file not found\n"
    )
    (tmp_path / "audio.csv").write_text("vid,stage,error_type,message\nv2,locate,FileNotFoundError,v2.mp4: gone\n")
    summary = {"skipped": {"missing_visual": ["v1", "v2"], "missing_audio": ["v2", "v3"], "no_split": []}}
    report = {"skipped": [
        {"vid": "lost", "domain": "dog", "split": "test", "reason": "not_in_annotations", "detail": "in umt_splits.json (test) but not annotated"},
        {"vid": "extra", "domain": "dog", "reason": "unsplit", "detail": "in no list"},  # outside the benchmark
    ]}
    skips = collect_skips(table, summary, {"visual": tmp_path / "visual.csv", "audio": tmp_path / "audio.csv"}, report)
    by_vid = {s.vid: s for s in skips}
    assert set(by_vid) == {"v1", "v2", "v3", "lost"}
    assert by_vid["v1"] == Skip("v1", "train", "dog", "extract_visual",
                                "visual extraction failed at decode (OSError): v1.mp4: truncated file: the stream ends at 12.4 s")
    assert "visual extraction failed at locate" in by_vid["v2"].reason and "audio extraction failed" in by_vid["v2"].reason
    assert by_vid["v3"].reason == "no audio features" and by_vid["v3"].stage == "extract_audio"
    assert by_vid["lost"].stage == "prepare" and by_vid["lost"].split == "test"
    write_skips(tmp_path / "skipped.json", skips)
    assert sorted(read_skips(tmp_path / "skipped.json"), key=lambda s: s.vid) == sorted(skips, key=lambda s: s.vid)
    assert read_skips(tmp_path / "absent.json") == []
    per_split = skipped_by_split(skips)
    assert [r["vid"] for r in per_split["train"]] == ["v1"] and [r["vid"] for r in per_split["test"]] == ["lost", "v2", "v3"]


def test_printing_names_each_video_and_its_reason():
    out = io.StringIO()
    print_skips("train", [Skip("v1", "train", "dog", "extract_visual", "decode failed")], "left out of training", out)
    assert out.getvalue() == "train: 1 video(s) left out of training:\n  v1 (train, dog) [extract_visual]: decode failed\n"
    out = io.StringIO()
    print_reasons("prepare", [{"vid": f"u{i}", "reason": "unsplit"} for i in range(25)] + [{"vid": "x", "reason": "no folder"}], out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "prepare: skipped 1 video(s), no folder: x"
    assert lines[1].startswith("prepare: skipped 25 video(s), unsplit: u0, u1") and lines[1].endswith("... (5 more)")


def test_table_note_counts():
    assert table_note({"skipped_videos": {"train": [], "test": []}}).startswith("All test videos evaluated")
    note = table_note({"skipped_videos": {"train": [{"vid": "a"}], "test": [{"vid": "b"}, {"vid": "c"}]}})
    assert note.startswith("2 test video(s) not evaluated; 1 training video(s) left out of training")


def test_metrics_list_every_video_not_evaluated_with_its_reason_per_split(tmp_path):
    """Before issue 9 the metrics held only counts: which videos, and why, was nowhere."""
    items = planted_items(3, 2, domains=("dog", "surfing"))
    mcfg = ModelConfig(**TINY)
    tcfg = TrainConfig(epochs=1, batch_size=2, device="cpu", num_threads=1, selection="fixed", seeds=[0], test_every=0)
    train_dataset(items, mcfg, tcfg, tmp_path / "m",
                  "youtube_highlights", progress=False)
    table = table_of(items)
    dog_test = next(it for it in items if it.split == "test" and it.domain == "dog")
    lost = table[table.vid == dog_test.vid].assign(vid="lostvid")  # a test video whose extraction failed
    gone_train = table[table.vid == dog_test.vid].assign(vid="gonetrain", split="train")
    kayak = table[table.vid == dog_test.vid].assign(vid="kayak1", domain="kayak")  # a domain with no model
    table = pd.concat([table, lost, gone_train, kayak], ignore_index=True)
    kayak_item = next(it for it in items if it.vid == dog_test.vid)
    kayak_item = type(kayak_item)(**{**kayak_item.__dict__, "vid": "kayak1", "domain": "kayak"})
    skips = [Skip("lostvid", "test", "dog", "extract_visual", "visual extraction failed at probe (ValueError): bad"),
             Skip("gonetrain", "train", "dog", "extract_audio", "audio extraction failed at decode (OSError): x")]
    m = evaluate_run(items + [kayak_item], tmp_path / "m", mcfg, "youtube_highlights", table, tmp_path / "p.jsonl",
                     tmp_path / "metrics.json", skipped=skips)
    assert m["unevaluated_videos"] == {"no_features": 1, "no_model": 1}
    test = {r["vid"]: r for r in m["skipped_videos"]["test"]}
    assert set(test) == {"lostvid", "kayak1"}
    assert test["lostvid"]["reason"].startswith("visual extraction failed at probe")
    assert test["kayak1"]["stage"] == "evaluate" and "no trained model for domain 'kayak'" in test["kayak1"]["reason"]
    assert [r["vid"] for r in m["skipped_videos"]["train"]] == ["gonetrain"]
    assert json.loads((tmp_path / "metrics.json").read_text())["skipped_videos"] == m["skipped_videos"]
