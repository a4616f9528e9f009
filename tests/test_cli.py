"""The `hpcl` command line: help on every subcommand, evaluate, check-backbones, bench-extract."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from pipeline.cli import build_parser, main
from pipeline.metrics import write_predictions

SUBCOMMANDS = ["evaluate", "table", "check-backbones", "bench-extract", "highlight", "export", "highlight-proof",
               "highlight-figures", "bench-highlight"]


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommand_has_help(sub, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([sub, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: hpcl {sub}" in capsys.readouterr().out


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "--help"], capture_output=True, text=True, check=True)
    for sub in SUBCOMMANDS:
        assert sub in out.stdout


def _lighthouse_tvsum(shared_data):
    return [str(shared_data / "tvsum" / f"lighthouse_tvsum_{s}_release.jsonl") for s in ("train", "val")]


def test_evaluate_tvsum_matches_library_and_ranks(shared_data, tmp_path, capsys):
    # The CLI's figure is the library's on the same predictions, read back from the jsonl; the
    # annotators' mean score ranks far better than its reverse.
    from pipeline.annotations import load_annotations, scores_matrix
    from pipeline.metrics import evaluate

    table = load_annotations("tvsum", _lighthouse_tvsum(shared_data))
    vids = sorted(table["vid"].unique())[:3]
    preds = {}
    for vid in vids:
        rows = table[table["vid"] == vid].sort_values("seg_idx")
        preds[vid] = scores_matrix(rows["scores"]).mean(axis=1).tolist()
    pred_file = tmp_path / "pred.jsonl"
    write_predictions(pred_file, preds)
    out_file = tmp_path / "out.json"
    argv = ["evaluate", "--dataset", "tvsum", "--predictions", str(pred_file), "--out", str(out_file)]
    for path in _lighthouse_tvsum(shared_data):
        argv += ["--annotations", path]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out_file.read_text())
    assert printed["num_videos"] == 3 and printed["protocol"] == "umt"
    expected = evaluate("tvsum", table, preds, "umt")
    assert printed["mAP"] == pytest.approx(expected["mAP"], abs=1e-12)
    assert printed["per_domain"] == pytest.approx(expected["per_domain"], abs=1e-12)

    reversed_preds = {vid: (-np.asarray(s)).tolist() for vid, s in preds.items()}
    write_predictions(pred_file, reversed_preds)
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["mAP"] < printed["mAP"] - 0.3


def test_evaluate_unknown_video_is_a_clear_error(shared_data, tmp_path, capsys):
    pred_file = tmp_path / "pred.jsonl"
    write_predictions(pred_file, {"not_a_tvsum_video": [0.1, 0.2]})
    argv = ["evaluate", "--dataset", "tvsum", "--predictions", str(pred_file)]
    for path in _lighthouse_tvsum(shared_data):
        argv += ["--annotations", path]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not_a_tvsum_video" in err and "pred.jsonl" in err


def test_check_backbones_with_real_i3d_weights(shared_data, i3d_kinetics_weights, capsys):
    weights, _ = i3d_kinetics_weights
    video = shared_data / "videos" / "bigbuckbunny.mp4"
    assert main(["check-backbones", str(video), "--visual-weights", str(weights), "--audio", "logmel",
                 "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["visual"]) == 5
    probs = [entry["prob"] for entry in result["visual"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
    assert all(isinstance(entry["label"], str) and entry["label"] for entry in result["visual"])
    assert result["audio"] is None  # logmel has no classes


def test_check_backbones_without_weights_says_where_they_go(shared_data, tmp_path, capsys, monkeypatch):
    import pipeline.cli as cli

    monkeypatch.setattr(cli, "DEFAULT_VISUAL_WEIGHTS", tmp_path / "absent.pt")
    with pytest.raises(SystemExit) as exit_info:
        main(["check-backbones", str(shared_data / "videos" / "bikes.mp4"), "--audio", "logmel"])
    assert "weights_visual" in str(exit_info.value) and "--visual-weights" in str(exit_info.value)


def test_bench_extract_prints_the_three_figures(shared_data, i3d_kinetics_weights, capsys):
    weights, _ = i3d_kinetics_weights
    video = shared_data / "videos" / "bikes.mp4"
    assert main(["bench-extract", str(video), "--visual-weights", str(weights), "--segments", "4",
                 "--batch-size", "2", "--frames-per-segment", "8", "--crop-size", "64", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    cpu = result["cpu"]
    assert cpu["segments_per_s"] > 0 and cpu["model_only_segments_per_s"] > 0 and cpu["decode_only_segments_per_s"] > 0
    assert cpu["overlap_efficiency"] == pytest.approx(
        cpu["segments_per_s"] / cpu["model_only_segments_per_s"], abs=1e-3)  # printed rounded
    assert set(result) >= {"cpu", "nvdec"}  # side by side; without CUDA the nvdec column says why
    if not torch.cuda.is_available():
        assert "CUDA" in result["nvdec"]["unavailable"]


def test_table_prints_one_row_per_domain_and_the_mean(tmp_path, capsys):
    block = lambda m, a, b: {"mAP": m, "per_domain": {"dog": a, "surfing": b}}  # noqa: E731
    seeds = lambda m, s, a, b: {**block(m, a, b), "std": s, "per_domain_std": {"dog": 0.01, "surfing": 0.02}}  # noqa: E731
    result = {"dataset": "youtube_highlights", "num_videos": 7, "seeds": [0, 1, 2],
              "umt": seeds(0.5, 0.03, 0.25, 0.75), "standard": seeds(0.6, 0.04, 0.5, 0.7),
              "ensemble": {"umt": block(0.55, 0.3, 0.8)},
              "test_best_epoch_optimistic": seeds(0.9, 0.05, 0.85, 0.95),
              "cv": {"mAP": 0.61}, "selected_epoch": {"dog": [12, 10, 11], "surfing": [7, 7, 9]},
              "seconds_per_epoch": 0.25,
              "skipped_videos": {"train": [], "test": [{"vid": "v9", "domain": "dog", "stage": "extract_visual",
                                                        "reason": "visual extraction failed at decode"}]}}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(result))
    assert main(["table", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "youtube_highlights: test mAP per domain (7 test videos, mean +- std over 3 seeds)"
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")[1:]] for line in lines[2:5]}
    assert rows == {"dog": ["0.250 +- 0.010", "0.500 +- 0.010", "0.300", "0.850 +- 0.010"],
                    "surfing": ["0.750 +- 0.020", "0.700 +- 0.020", "0.800", "0.950 +- 0.020"],
                    "mean": ["0.500 +- 0.030", "0.600 +- 0.040", "0.550", "0.900 +- 0.050"]}
    assert lines[5] == "(cross-validation mAP 0.610; epochs dog: 12/10/11, surfing: 7/7/9; 0.250 s/epoch)"
    assert lines[-1] == "1 test video(s) not evaluated (ids and reasons: skipped_videos in the metrics file)."
