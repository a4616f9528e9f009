"""Evaluation protocols: hand-computed AP values, scikit-learn equality, and a plain transcription of
UMT's published evaluation loops compared on random predictions over the real annotations, read
from several layouts."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score

from pipeline.annotations import prepare_dataset, write_segment_table
from pipeline.metrics import (
    PredictionError,
    annotator_labels,
    ap_standard,
    ap_topk_umt,
    ap_umt,
    evaluate,
    evaluate_files,
    read_predictions,
    write_predictions,
)

# ------------------------------------------------------------------ the reference: UMT's loops, transcribed


def umt_trapezoid_reference(label: list[float]) -> float:
    """The AP loop of TencentARC/UMT datasets/youtube.py and tvsum.py, line by line."""
    if (num_gt := sum(label)) == 0:
        return 0
    hits = ap = rec = 0
    prc = 1
    for i, gt in enumerate(label):
        hits += gt
        _rec = hits / num_gt
        _prc = hits / (i + 1)
        ap += (_rec - rec) * (prc + _prc) / 2
        rec, prc = _rec, _prc
    return ap


def umt_youtube_reference(match: dict[str, list[int]], preds: dict[str, np.ndarray]) -> float:
    """One domain: mean over its videos of the trapezoid AP with saliency = match > 0."""
    collected = []
    for vid, score in preds.items():
        inds = torch.argsort(torch.tensor(score, dtype=torch.float64), descending=True)
        label = torch.Tensor([1 if s > 0 else 0 for s in match[vid]])[inds].tolist()
        collected.append(umt_trapezoid_reference(label))
    return sum(collected) / len(collected)


def umt_tvsum_reference(anno: dict[str, list[list[float]]], preds: dict[str, np.ndarray], k: int = 5) -> float:
    """One category: for each annotator, mean top-k AP over the videos; then mean over annotators."""
    collected = []
    for i in range(20):
        video_ap = []
        for vid, score in preds.items():
            inds = torch.argsort(torch.tensor(score, dtype=torch.float64), descending=True)
            label = torch.Tensor(anno[vid])[:, i]
            label = torch.where(label > label.median(), 1.0, 0.0)
            label = label[inds].tolist()[:k]
            video_ap.append(umt_trapezoid_reference(label))
        collected.append(sum(video_ap) / len(video_ap))
    return sum(collected) / len(collected)


# ------------------------------------------------------------------ AP functions, hand-computed


def test_umt_ap_is_not_textbook_ap():
    assert ap_umt([3, 2, 1], [1, 0, 1]) == pytest.approx(19 / 24, abs=1e-15)  # 0.791666...
    assert ap_standard([3, 2, 1], [1, 0, 1]) == pytest.approx(5 / 6, abs=1e-15)  # 0.8333...


@pytest.mark.parametrize(
    "scores, labels, expected",
    [
        ([2, 1], [0, 1], 0.25),  # (1 - 0) * (0 + 1/2) / 2
        ([2, 1], [1, 0], 1.0),
        ([1, 2, 3], [1, 1, 1], 1.0),
        ([5, 4, 3], [0, 0, 0], 0.0),  # no positive scores 0
        ([0.1, 0.9, 0.5], [1, 0, 0], (1 / 3) / 2),  # ranked [0, 0, 1]: (1) * (0 + 1/3) / 2
        ([1, 1, 1], [0, 0, 1], 1 / 6),  # ties keep annotation order: ranked [0, 0, 1]
        ([1, 1, 1], [1, 0, 0], 1.0),
    ],
)
def test_ap_umt_hand_computed(scores, labels, expected):
    assert ap_umt(scores, labels) == pytest.approx(expected, abs=1e-15)


def test_ap_topk_counts_positives_inside_top_k():
    scores = [7, 6, 5, 4, 3, 2, 1]
    # ranked labels [0, 1, 1, 0, 0 | 1, 1]: 2 positives in the top 5:
    # 0 + 0.5 * (0 + 1/2) / 2 + 0.5 * (1/2 + 2/3) / 2 = 5/12
    assert ap_topk_umt(scores, [0, 1, 1, 0, 0, 1, 1]) == pytest.approx(5 / 12, abs=1e-15)
    assert ap_umt(scores, [0, 1, 1, 0, 0, 1, 1]) != pytest.approx(5 / 12)
    assert ap_topk_umt(scores, [0, 0, 0, 0, 0, 1, 1]) == 0.0
    assert ap_topk_umt([1, 2], [1, 0], k=5) == pytest.approx(0.25)  # fewer than k segments: all kept
    assert ap_topk_umt(scores, [1, 0, 0, 0, 0, 0, 0], k=1) == 1.0
    with pytest.raises(ValueError, match="k must be"):
        ap_topk_umt(scores, [1] * 7, k=0)


def test_ap_standard_equals_sklearn_with_ties():
    rng = np.random.default_rng(0)
    for trial in range(300):
        T = int(rng.integers(1, 40))
        y = rng.integers(0, 2, T)
        if y.sum() == 0:
            y[rng.integers(T)] = 1
        # few distinct values -> many ties; or continuous
        s = rng.integers(0, 4, T).astype(float) if trial % 2 else rng.normal(size=T)
        assert ap_standard(s, y) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert math.isnan(ap_standard([1, 2], [0, 0]))


def test_ap_input_errors():
    with pytest.raises(ValueError, match="equal-length"):
        ap_umt([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        ap_umt([1, float("nan")], [1, 0])
    with pytest.raises(ValueError, match="0 or 1"):
        ap_standard([1, 2], [2, 0])


# ------------------------------------------------------------------ protocols on small tables


def yt_table(videos: dict[str, tuple[str, list[int]]]) -> pd.DataFrame:
    rows = [{"vid": v, "domain": d, "split": "test", "seg_idx": t, "label": int(m > 0), "match": float(m),
             "scores": json.dumps([m])} for v, (d, match) in videos.items() for t, m in enumerate(match)]
    return pd.DataFrame(rows)


def test_youtube_umt_is_mean_of_domain_means():
    table = yt_table({"a": ("dog", [1, -1, 1]), "b": ("dog", [-1, 1]), "c": ("ski", [0, -1, 1]), "d": ("dog", [-1, 0])})
    preds = {"a": [3, 2, 1], "b": [2, 1], "c": [1, 2, 3]}  # "d" not predicted: not evaluated
    r = evaluate("youtube_highlights", table, preds)
    assert r["per_domain"] == pytest.approx({"dog": (19 / 24 + 0.25) / 2, "ski": 1.0}, abs=1e-15)
    assert r["mAP"] == pytest.approx(((19 / 24 + 0.25) / 2 + 1.0) / 2, abs=1e-15)
    assert r["num_videos"] == 3 and r["dataset"] == "youtube_highlights" and r["protocol"] == "umt"
    assert evaluate("demo", table, preds)["mAP"] == r["mAP"]
    s = evaluate("youtube_highlights", table, {**preds, "d": [1, 2]}, protocol="standard")
    assert s["num_videos"] == 3 and s["num_videos_without_positives"] == 1  # "d" has no positive: excluded
    assert s["per_domain"] == pytest.approx({"dog": (5 / 6 + 0.5) / 2, "ski": 1.0}, abs=1e-15)
    assert json.loads(json.dumps(s)) == s


def test_tvsum_umt_annotators_and_lower_median():
    # annotators 0-9 score shots [5,1,1,5,1,1]: lower median 1 -> positives shots 0, 3;
    # predictions rank shots 0..5 in order, top 5 = [1,0,0,1,0]: 0.5*(1+1)/2 + 0.5*(1/3+1/2)/2 = 17/24.
    # annotators 10-19 score [1,1,1,1,1,5]: the only positive (shot 5) is outside the top 5 -> 0.
    rows = [[5, 1, 1, 5, 1, 1], [1, 1, 1, 1, 1, 5]]
    scores = [[rows[0][t]] * 10 + [rows[1][t]] * 10 for t in range(6)]
    table = pd.DataFrame([{"vid": "v", "domain": "BK", "seg_idx": t, "label": 0, "scores": json.dumps(scores[t])}
                          for t in range(6)])
    table2 = table.assign(vid="w", domain="GA")
    preds = {"v": [6, 5, 4, 3, 2, 1], "w": [1, 2, 3, 4, 5, 6]}  # w ranks shot 5 first: 1/2 annotators AP 1
    w_first = umt_trapezoid_reference([0, 0, 1, 0, 0])  # annotators 0-9 for w: top 5 = shots 5,4,3,2,1
    labels = annotator_labels(np.array(scores))  # [K, T]
    assert labels.shape == (20, 6) and labels.dtype == np.int64
    assert all(labels[a].tolist() == [1, 0, 0, 1, 0, 0] for a in range(10))
    assert all(labels[a].tolist() == [0, 0, 0, 0, 0, 1] for a in range(10, 20))
    r = evaluate("tvsum", pd.concat([table, table2]), preds)
    assert r["per_domain"]["BK"] == pytest.approx(17 / 48, abs=1e-15)
    assert r["per_domain"]["GA"] == pytest.approx((w_first + 1.0) / 2, abs=1e-15)
    assert r["mAP"] == pytest.approx((17 / 48 + (w_first + 1.0) / 2) / 2, abs=1e-15)


def test_evaluate_errors():
    table = yt_table({"a": ("dog", [1, -1, 1])})
    with pytest.raises(PredictionError, match="video 'zz' has predictions but no annotations"):
        evaluate("youtube_highlights", table, {"zz": [1.0]})
    with pytest.raises(PredictionError, match=r"video 'a': 2 predicted scores for 3 annotated segments"):
        evaluate("youtube_highlights", table, {"a": [1.0, 2.0]})
    with pytest.raises(PredictionError, match=r"video 'a': predicted scores must be finite"):
        evaluate("youtube_highlights", table, {"a": [1.0, float("inf"), 0]})
    with pytest.raises(PredictionError, match="no predictions"):
        evaluate("youtube_highlights", table, {})
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate("youtube_highlights", table, {"a": [1, 2, 3]}, protocol="textbook")
    with pytest.raises(PredictionError, match="standard AP is undefined"):
        evaluate("youtube_highlights", yt_table({"a": ("dog", [0, -1])}), {"a": [1, 2]}, protocol="standard")


# ------------------------------------------------------------------ predictions jsonl


def test_predictions_round_trip(tmp_path):
    preds = {"a": np.array([0.1, 1 / 3, -2e-300]), "b-2": np.array([5.0])}
    path = tmp_path / "p" / "pred.jsonl"
    write_predictions(path, preds)
    back = read_predictions(path)
    assert list(back) == ["a", "b-2"] and all(np.array_equal(back[k], preds[k]) for k in preds)
    with pytest.raises(PredictionError, match="finite"):
        write_predictions(path, {"a": [float("nan")]})


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"vid": "a", "scores": [1]}\n{"vid": "b", "scores": [1,\n', r"pred.jsonl:2: malformed JSON"),
        ('{"vid": "a", "scores": [1]}\n\n{"vid": "a", "scores": [2]}\n', r"pred.jsonl:3: video 'a' duplicated \(first on line 1\)"),
        ('{"vid": "a", "scores": [1, NaN]}\n', r"pred.jsonl:1: video 'a': scores\[1\] = nan is not a finite number"),
        ('{"vid": "a", "scores": [true]}\n', r"scores\[0\] = True is not a finite number"),
        ('{"vid": "a", "scores": ["1"]}\n', r"scores\[0\] = '1' is not a finite number"),
        ('{"vid": "a/../b", "scores": [1]}\n', r"pred.jsonl:1: video id 'a/../b' is not a safe name"),
        ('{"video": "a", "scores": [1]}\n', r"pred.jsonl:1: expected"),
        ("\n", r"pred.jsonl: no predictions"),
    ],
)
def test_read_predictions_errors(tmp_path, text, match):
    path = tmp_path / "pred.jsonl"
    path.write_text(text)
    with pytest.raises(PredictionError, match=match):
        read_predictions(path)


# ------------------------------------------------------------------ the real annotations vs the reference


def random_predictions(table: pd.DataFrame, vids, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = table.groupby("vid").size()
    return {v: rng.random(int(sizes[v])) for v in vids}


@pytest.fixture(scope="module")
def youtube_reference(shared_data, tmp_path_factory):
    """UMT test videos of the authors' release: raw match labels, random predictions, the reference
    mAP, and the same annotations written as UMT json, lighthouse jsonl and segments.csv."""
    root = shared_data / "youtube_highlights"
    splits = json.loads((shared_data / "splits" / "umt_splits.json").read_text())["youtube_highlights"]
    match, domain_of, clips = {}, {}, {}
    for domain, lists in splits.items():
        for vid in lists["val"]:
            clips[vid], match[vid] = json.loads((root / domain / vid / "match_label.json").read_text())
            domain_of[vid] = domain
    rng = np.random.default_rng(7)
    preds = {v: rng.random(len(m)) for v, m in match.items()}
    per_domain = {d: umt_youtube_reference(match, {v: p for v, p in preds.items() if domain_of[v] == d})
                  for d in splits}
    out = tmp_path_factory.mktemp("yt_layouts")
    umt = {v: {"fps": 30.0, "frames": clips[v][-1][1], "domain": domain_of[v], "info": [], "clip": clips[v],
               "match": match[v], "mturk": [0.0] * len(match[v])} for v in match}
    (out / "youtube_anno.json").write_text(json.dumps(umt))
    with open(out / "youtube_val.jsonl", "w") as f:
        for v in match:
            f.write(json.dumps({"qid": v, "query": domain_of[v], "duration": clips[v][-1][1] / 30, "vid": v,
                                "label": [[int(m > 0)] for m in match[v]], "domain": domain_of[v], "fps": 30.0,
                                "frames": clips[v][-1][1], "clip": clips[v], "match": match[v]}) + "\n")
    table, _ = prepare_dataset("youtube_highlights", root, splits_file=shared_data / "splits" / "umt_splits.json")
    write_segment_table(table, out / "segments.csv")
    write_predictions(out / "pred.jsonl", preds)
    return {"root": root, "out": out, "preds": preds, "match": match, "domain_of": domain_of,
            "per_domain": per_domain, "mAP": sum(per_domain.values()) / len(per_domain)}


@pytest.mark.parametrize("layout", ["authors", "youtube_anno.json", "youtube_val.jsonl", "segments.csv"])
def test_youtube_umt_matches_reference_on_real_annotations(youtube_reference, layout):
    ref = youtube_reference
    path = ref["root"] if layout == "authors" else ref["out"] / layout
    r = evaluate_files("youtube_highlights", [path], ref["out"] / "pred.jsonl")
    assert r["num_videos"] == 172 and set(r["per_domain"]) == set(ref["per_domain"])
    for d, value in ref["per_domain"].items():
        assert abs(r["per_domain"][d] - value) < 1e-9
    assert abs(r["mAP"] - ref["mAP"]) < 1e-9


def test_youtube_standard_matches_sklearn_on_real_annotations(youtube_reference):
    ref = youtube_reference
    r = evaluate_files("youtube_highlights", [ref["root"]], ref["out"] / "pred.jsonl", protocol="standard")
    per_domain: dict[str, list[float]] = {}
    skipped = 0
    for v, p in ref["preds"].items():
        y = np.array(ref["match"][v]) > 0
        if not y.any():
            skipped += 1
            continue
        per_domain.setdefault(ref["domain_of"][v], []).append(average_precision_score(y, p))
    assert r["num_videos_without_positives"] == skipped and r["num_videos"] == 172 - skipped
    for d, aps in per_domain.items():
        assert abs(r["per_domain"][d] - np.mean(aps)) < 1e-9
    assert abs(r["mAP"] - np.mean([np.mean(a) for a in per_domain.values()])) < 1e-9


@pytest.fixture(scope="module")
def tvsum_reference(shared_data, tmp_path_factory):
    files = sorted((shared_data / "tvsum").glob("lighthouse_tvsum_*_release.jsonl"))
    records = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    anno = {r["vid"]: r["label"] for r in records}
    domain_of = {r["vid"]: r["domain"] for r in records}
    val = [json.loads(line) for line in (shared_data / "tvsum" / "lighthouse_tvsum_val_release.jsonl").read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(11)
    preds = {r["vid"]: rng.random(len(r["label"])) for r in val}
    per_domain = {d: umt_tvsum_reference(anno, {v: p for v, p in preds.items() if domain_of[v] == d})
                  for d in sorted({domain_of[v] for v in preds})}
    out = tmp_path_factory.mktemp("tvsum_layouts")
    (out / "tvsum_anno.json").write_text(json.dumps({v: {"anno": a} for v, a in anno.items()}))  # no domain
    table, _ = prepare_dataset("tvsum", files, splits_file=shared_data / "splits" / "umt_splits.json")
    write_segment_table(table, out / "segments.csv")
    write_predictions(out / "pred.jsonl", preds)
    return {"files": files, "out": out, "preds": preds, "anno": anno, "per_domain": per_domain,
            "splits": shared_data / "splits" / "umt_splits.json",
            "mAP": sum(per_domain.values()) / len(per_domain), "table": table}


@pytest.mark.parametrize("layout", ["lighthouse", "tvsum_anno.json", "segments.csv"])
def test_tvsum_umt_matches_reference_on_real_annotations(tvsum_reference, layout):
    ref = tvsum_reference
    paths = ref["files"] if layout == "lighthouse" else [ref["out"] / layout]
    r = evaluate_files("tvsum", paths, ref["out"] / "pred.jsonl", splits_file=ref["splits"])
    assert r["num_videos"] == 10 and len(r["per_domain"]) == 10
    for d, value in ref["per_domain"].items():
        assert abs(r["per_domain"][d] - value) < 1e-9
    assert abs(r["mAP"] - ref["mAP"]) < 1e-9


def test_tvsum_umt_on_train_videos_too(tvsum_reference):
    """Several videos per category (the 40 training videos): the mean over videos, then annotators."""
    ref = tvsum_reference
    table = ref["table"]
    train = table.loc[table["split"] == "train", "vid"].unique()
    preds = random_predictions(table, train, seed=3)
    domain_of = table.drop_duplicates("vid").set_index("vid")["domain"]
    r = evaluate("tvsum", table, preds)
    for d in sorted(set(domain_of[train])):
        expected = umt_tvsum_reference(ref["anno"], {v: p for v, p in preds.items() if domain_of[v] == d})
        assert abs(r["per_domain"][d] - expected) < 1e-9


def test_tvsum_standard_uses_table_labels(tvsum_reference):
    ref = tvsum_reference
    r = evaluate_files("tvsum", ref["files"], ref["out"] / "pred.jsonl", protocol="standard")
    for v, p in ref["preds"].items():
        s = np.array(ref["anno"][v]).mean(axis=1)
        y = s > np.sort(s)[(len(s) - 1) // 2]
        d = ref["table"].loc[ref["table"]["vid"] == v, "domain"].iloc[0]
        assert abs(r["per_domain"][d] - average_precision_score(y, p)) < 1e-9  # one test video per category


def test_evaluate_files_names_the_predictions_file(tvsum_reference, tmp_path):
    ref = tvsum_reference
    path = tmp_path / "short.jsonl"
    vid = next(iter(ref["preds"]))
    write_predictions(path, {vid: [0.5, 0.25]})
    with pytest.raises(PredictionError, match=rf"short.jsonl: video '{vid}': 2 predicted scores for \d+ annotated"):
        evaluate_files("tvsum", ref["files"], path)
