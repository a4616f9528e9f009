"""benchmarks/bench_worktree.py: the params it writes and the make-bench call it makes."""

import json
import sys
from pathlib import Path

import pytest

from pipeline.cli import build_parser
from pipeline.params import read_params, section

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_worktree import bench_params, make_bench_args  # noqa: E402


def _written(tmp_path, dataset):
    path = tmp_path / "params.yaml"
    path.write_text(bench_params((REPO / "params.yaml").read_text(encoding="utf-8"), dataset), encoding="utf-8")
    return read_params(path)  # validated as the stages validate it


def test_tvsum_params_point_at_lighthouse_features(tmp_path):
    p = _written(tmp_path, "tvsum")
    assert p["dataset"] == "tvsum" and p["features"]["source"] == "lighthouse"
    assert section("prepare", p)["format"] == "lighthouse"
    # the preset's model and train sections are what the worktree's runs get, untouched
    assert section("model", p)["input_remove_top"] == read_params()["presets"]["tvsum"]["model"]["input_remove_top"]


def test_youtube_params_read_umts_annotation_file(tmp_path):
    p = _written(tmp_path, "youtube_highlights")
    assert p["dataset"] == "youtube_highlights" and p["features"]["source"] == "umt"
    prep = section("prepare", p)
    assert (prep["format"], prep["split"], prep["annotations"]) == ("umt", "umt", ["youtube_anno.json"])
    # nothing else changed: the demo preset is as in the repository's params.yaml
    assert p["presets"]["demo"] == read_params()["presets"]["demo"]


def test_drifted_params_fail_naming_the_line():
    text = (REPO / "params.yaml").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="'dataset: demo' exactly once, found 0"):
        bench_params(text.replace("dataset: demo\n", "dataset: tvsum\n"), "tvsum")
    with pytest.raises(ValueError, match="'source: extract' exactly once, found 2"):
        bench_params(text + "  source: extract\n", "youtube_highlights")
    with pytest.raises(ValueError, match="dataset 'demo'"):
        bench_params(text, "demo")


@pytest.mark.parametrize("dataset", ["tvsum", "youtube_highlights"])
def test_make_bench_arguments_parse_as_readme_ran_them(dataset):
    args = build_parser().parse_args(make_bench_args(dataset, Path("/s"), 1, 2, f"data/raw/{dataset}"))
    assert (args.rotation, args.seed, args.out) == (1, 2, f"data/raw/{dataset}")
    assert args.splits == "/s/splits/umt_splits.json"
    if dataset == "tvsum":
        assert json.loads(args.config) == {"cue": 0.45}
        assert args.labels == ["/s/tvsum/lighthouse_tvsum_train_release.jsonl",
                               "/s/tvsum/lighthouse_tvsum_val_release.jsonl"]
    else:
        assert json.loads(args.config) == {} and args.domains == ["gymnastics", "parkour"]
        assert args.labels == ["/s/youtube_highlights"]
