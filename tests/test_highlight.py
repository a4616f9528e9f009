"""`hpcl highlight` with a real trained model: a tiny demo run through the pipeline's own library
(real I3D weights, logmel audio), exported, then used on the run's test videos.

Checks the model file round trip (scores equal the pipeline's own predictions from the
checkpoints on the aligned features, to 1e-5), the refusals (tampered, truncated or foreign file,
mismatched backbone weights, a model trained on imported features), the outputs (JSON, reel,
timeline, page), a failing video among good ones, and the page in a real headless browser.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from pipeline.align import align_dataset, load_aligned
from pipeline.annotations import prepare_dataset, write_segment_table
from pipeline.backbones import build_audio_backbone, build_visual_backbone
from pipeline.demo import demo_preset, generate_demo
from pipeline.evaluation import evaluate_run
from pipeline.extract import extract_audio, extract_visual
from pipeline.highlight.export import export_dataset
from pipeline.highlight.figures import find_chromium
from pipeline.highlight.modelfile import ModelFileError, content_sha256, export_group, load_model_file
from pipeline.highlight.run import Extractors, highlight_videos, score_video, video_features, video_id
from pipeline.highlight.segmentation import Segmentation, segment_video
from pipeline.decoding import probe_video
from pipeline.metrics import read_predictions
from pipeline.model import ModelConfig, build_model
from pipeline.train import TrainConfig, load_checkpoint, predict, train_dataset

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # trains a tiny run: about a minute

MODEL = {"d_model": 32, "num_heads": 2, "ffn_dim": 64}


@pytest.fixture(scope="module")
def run(tmp_path_factory, i3d_kinetics_weights) -> Path:
    """A repository-shaped folder holding a finished tiny demo run and its exported model files."""
    root = tmp_path_factory.mktemp("hl_run")
    raw = root / "data" / "raw" / "demo"
    generate_demo(raw, **demo_preset("tiny"))
    table, _ = prepare_dataset("demo", raw / "annotations", fmt="authors", split="authors", videos_dir=raw / "videos")
    write_segment_table(table, root / "data" / "prepared" / "demo" / "segments.csv")
    weights = root / "data" / "weights" / "visual" / "weights.pt"
    weights.parent.mkdir(parents=True)
    shutil.copy(i3d_kinetics_weights[0], weights)
    sha = i3d_kinetics_weights[1]["sha256"]
    feats = root / "data" / "features" / "demo"
    visual = build_visual_backbone("i3d", weights_path=weights, crop_size=64)
    extract_visual(table, raw / "videos", visual, feats / "visual" / "features.h5", frames_per_segment=8,
                   progress=False, weights_sha256=sha, parts_dir=root / "parts" / "v")
    extract_audio(table, raw / "videos", build_audio_backbone("logmel"), feats / "audio" / "features.h5",
                  progress=False, parts_dir=root / "parts" / "a")
    align_dataset(table, feats / "visual" / "features.h5", feats / "audio" / "features.h5",
                  root / "data" / "aligned" / "demo" / "aligned.h5", "demo")
    items = load_aligned(root / "data" / "aligned" / "demo" / "aligned.h5")
    cfg = ModelConfig.from_dict(MODEL)
    train_cfg = TrainConfig.from_sections({"epochs": 3, "batch_size": 2, "seeds": [0, 1], "selection": "fixed"}, {})
    model_dir = root / "data" / "models" / "demo"
    train_dataset(items, cfg, train_cfg, model_dir, "demo", progress=False)
    evaluate_run(items, model_dir, cfg, "demo", table, root / "predictions" / "demo.jsonl", root / "metrics" / "demo.json")
    export_dataset(root, "demo", params={"model": MODEL})
    return root


def _test_video(run: Path, domain: str = "stadium") -> tuple[str, Path]:
    items = load_aligned(run / "data" / "aligned" / "demo" / "aligned.h5")
    vid = next(it.vid for it in items if it.split == "test" and it.domain == domain)
    return vid, run / "data" / "raw" / "demo" / "videos" / f"{vid}.mp4"


def _pipeline_scores(run: Path, vid: str) -> np.ndarray:
    """What the pipeline's checkpoints give on the aligned features: mean over seeds [T]."""
    items = {it.vid: it for it in load_aligned(run / "data" / "aligned" / "demo" / "aligned.h5")}
    history = json.loads((run / "data" / "models" / "demo" / "history.json").read_text())
    group = history["groups"][items[vid].domain]
    scores = []
    for rel in group["checkpoints"]:
        model = build_model(ModelConfig.from_dict(MODEL), group["visual_dim"], group["audio_dim"], group["num_domains"])
        load_checkpoint(model, run / "data" / "models" / "demo" / rel)
        scores.append(predict(model, [items[vid]], group["domain_index"], torch.device("cpu"))[vid])
    return np.mean(scores, axis=0)


def test_export_records_what_highlight_needs(run, i3d_kinetics_weights):
    index = json.loads((run / "data" / "export" / "demo" / "models.json").read_text())
    assert set(index["models"]) == {"stadium", "arcade"} and index["domains"]["arcade"] == "arcade.pt"
    m = load_model_file(run / "data" / "export" / "demo" / "stadium.pt")
    meta = m.meta
    assert meta["seeds"] == [0, 1] and len(m.models) == 2 and meta["domains"] == ["stadium"]
    # the tiny demo: 8-frame clips every 4 frames at 8 fps = 1 s windows every 0.5 s
    assert meta["segmentation"] == {"unit": "seconds", "length": 1.0, "stride": 0.5}
    v, a = meta["features"]["visual"], meta["features"]["audio"]
    assert (v["backbone"], v["weights_sha256"], v["crop_size"], v["frames_per_segment"]) == \
        ("i3d", i3d_kinetics_weights[1]["sha256"], 64, 8)
    assert a["backbone"] == "logmel" and meta["features"]["source"] == "extract"
    assert meta["model_config"]["d_model"] == 32 and len(meta["params_sha256"]) == 64
    assert meta["metrics"]["dataset"] == "demo"


def test_model_file_scores_equal_the_pipeline_on_the_same_video(run):
    vid, path = _test_video(run)
    model = load_model_file(run / "data" / "export" / "demo" / "stadium.pt")
    items = {it.vid: it for it in load_aligned(run / "data" / "aligned" / "demo" / "aligned.h5")}
    # the same segments and the same features as training
    ex = Extractors(model, torch.device("cpu"), str(run / "data" / "weights" / "visual" / "weights.pt"))
    table = segment_video(vid, path.name, probe_video(path), Segmentation.from_dict(model.meta["segmentation"]))
    assert len(table) == items[vid].num_segments
    visual, audio, has_audio = video_features(path, vid, table, ex, run / "work" / vid, progress=False)
    assert has_audio and np.allclose(visual, items[vid].visual, atol=1e-4)
    assert np.allclose(audio, items[vid].audio, atol=1e-4)
    # the whole command: its scores are the ensemble of the pipeline's seeds
    out = run / "hl_one"
    result = highlight_videos([path], model, out, device="cpu",
                              visual_weights=str(run / "data" / "weights" / "visual" / "weights.pt"), progress=False)
    assert not result["failures"]
    scores = np.array(json.loads((out / f"{vid}.json").read_text())["pred_saliency_scores"])
    assert np.allclose(scores, _pipeline_scores(run, vid), atol=1e-5)
    # and what the evaluate stage wrote for it (the seeds' ensemble)
    evaluated = read_predictions(run / "predictions" / "demo.jsonl")[vid]
    assert np.allclose(scores, evaluated, atol=1e-5)
    # one seed of the file equals that seed's checkpoint alone
    one = model.models[0]
    it = items[vid]
    alone = predict(one, [it], model.meta["domain_index"], torch.device("cpu"))[vid]
    assert not np.allclose(alone, scores, atol=1e-6)  # two seeds really differ: the ensemble is their mean


@pytest.fixture(scope="module")
def outputs(run, tmp_path_factory) -> tuple[Path, dict]:
    """One run over two stadium videos, a missing file and an empty file."""
    out = tmp_path_factory.mktemp("hl_out")
    vid, path = _test_video(run)
    items = load_aligned(run / "data" / "aligned" / "demo" / "aligned.h5")
    other = next(it.vid for it in items if it.domain == "stadium" and it.vid != vid)
    empty = out / "empty.mp4"
    empty.write_bytes(b"")
    videos = [path, out / "missing.mp4", empty, run / "data" / "raw" / "demo" / "videos" / f"{other}.mp4"]
    from pipeline.annotations import read_segment_table

    labels = read_segment_table(run / "data" / "prepared" / "demo" / "segments.csv")
    result = highlight_videos(videos, run / "data" / "export" / "demo" / "stadium.pt", out, device="cpu", labels=labels,
                              visual_weights=str(run / "data" / "weights" / "visual" / "weights.pt"), progress=False)
    return out, result


def test_a_failing_video_is_reported_and_the_others_are_done(outputs):
    out, result = outputs
    assert len(result["videos"]) == 2
    failed = {Path(f["video"]).name: f["error"] for f in result["failures"]}
    assert set(failed) == {"missing.mp4", "empty.mp4"}
    assert "not found" in failed["missing.mp4"] and "empty" in failed["empty.mp4"]
    assert json.loads((out / "run.json").read_text())["failures"][0]["video"].endswith("missing.mp4")


def test_outputs_json_reel_timeline(outputs):
    out, result = outputs
    r = result["videos"][0]
    data = json.loads((out / f"{r['vid']}.json").read_text())
    times = [(s["start_s"], s["end_s"]) for s in data["segments"]]
    assert times == sorted(times) and len(data["pred_saliency_scores"]) == len(times)
    ranked = [w[2] for w in data["windows"]]
    assert ranked == sorted(ranked, reverse=True) and data["pred_relevant_windows"] == data["windows"]
    budget = min(30.0, 0.15 * data["duration_s"])
    reel_s = sum(b - a for a, b, _ in data["windows"])
    assert reel_s <= budget + 1e-9 and data["selection"]["top_seconds"] == pytest.approx(budget)
    assert data["model"]["sha256"] and data["model"]["backbones"]["visual"]["name"] == "i3d"
    assert data["truth_windows"] is not None  # the labels table contains the video
    with av.open(str(out / data["reel"]["file"])) as c:
        n = sum(1 for _ in c.decode(video=0))
        assert c.streams.audio  # the demo videos have sound
    assert n == data["reel"]["frames"] and abs(n / 8 - reel_s) <= len(data["windows"]) / 8 + 1e-9
    from PIL import Image

    assert Image.open(out / data["timeline"]).size == (800, 240)
    page = (out / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing fetched: opens from disk


def test_a_model_file_from_before_fusion_score_keeps_its_fusion(run, tmp_path):
    """A file exported before model.fusion_score existed (its model_config lacks the key) is
    scored as it was trained, by averaged probabilities, not by today's logit sum."""
    good = run / "data" / "export" / "demo" / "stadium.pt"
    payload = torch.load(good, weights_only=True)
    meta = json.loads(payload["meta"])
    assert meta["model_config"]["fusion_score"] == "logit"
    for key in ("fusion_score", "stream_training"):
        del meta["model_config"][key]
    payload["meta"] = json.dumps(meta)
    payload["content_sha256"] = content_sha256(payload["meta"], payload["states"])
    torch.save(payload, tmp_path / "old.pt")
    old, new = load_model_file(tmp_path / "old.pt"), load_model_file(good)
    assert old.models[0].cfg.fusion_score == "probability" and new.models[0].cfg.fusion_score == "logit"
    item = next(it for it in load_aligned(run / "data" / "aligned" / "demo" / "aligned.h5") if it.domain == "stadium")
    s_old = old.score(item.visual, item.audio, item.audio_mask)
    s_new = new.score(item.visual, item.audio, item.audio_mask)
    assert s_old.shape == s_new.shape and not np.allclose(s_old, s_new)


def test_refuses_tampered_truncated_and_foreign_files(run, tmp_path):
    good = run / "data" / "export" / "demo" / "stadium.pt"
    payload = torch.load(good, weights_only=True)
    payload["meta"] = payload["meta"].replace('"stadium"', '"arcade"')  # edited without re-hashing
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(ModelFileError, match="edited.pt.*modified or damaged"):
        load_model_file(tmp_path / "edited.pt")
    payload = torch.load(good, weights_only=True)
    name = sorted(payload["states"][0])[0]
    payload["states"][0][name] = payload["states"][0][name] + 1e-3  # weights changed
    torch.save(payload, tmp_path / "weights.pt")
    with pytest.raises(ModelFileError, match="modified or damaged"):
        load_model_file(tmp_path / "weights.pt")
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cut.pt: not a readable HPCL model file"):
        load_model_file(tmp_path / "cut.pt")
    torch.save({"w": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ModelFileError, match="not an HPCL model file"):
        load_model_file(tmp_path / "foreign.pt")


def test_refuses_mismatched_backbone_weights(run, tmp_path):
    weights = run / "data" / "weights" / "visual" / "weights.pt"
    state = torch.load(weights, weights_only=True)
    key = next(k for k, v in state.items() if v.dtype.is_floating_point)
    state[key] = state[key] * 1.01
    torch.save(state, tmp_path / "other.pt")
    vid, path = _test_video(run)
    model = run / "data" / "export" / "demo" / "stadium.pt"
    want = load_model_file(model).meta["features"]["visual"]["weights_sha256"]
    with pytest.raises(ModelFileError, match=f"visual backbone mismatch.*'i3d'.*{want}.*'i3d'.*sha256 [0-9a-f]{{64}}"):
        highlight_videos([path], model, tmp_path / "out", device="cpu", visual_weights=str(tmp_path / "other.pt"))


def test_refuses_a_model_trained_on_imported_features(run, tmp_path):
    features = {"source": "umt", "visual": {"backbone": "published:umt:i3d_rgb+i3d_flow"},
                "audio": {"backbone": "published:umt:pann"}}
    export_group(run / "data" / "models" / "demo", "stadium", tmp_path / "umt.pt", "demo", features,
                 {"unit": "frames", "length": 100, "stride": 50})
    vid, path = _test_video(run)
    with pytest.raises(ModelFileError, match="imported from umt.*UMT's released feature extractors"):
        highlight_videos([path], tmp_path / "umt.pt", tmp_path / "out", device="cpu")


def test_video_ids_are_safe_and_unique():
    taken: set[str] = set()
    assert video_id("/x/My clip (1).mp4", taken) == "My_clip__1_"
    assert video_id("/y/My clip (1).mkv", taken) == "My_clip__1__2"
    assert video_id("/z/..mp4", taken) == "video"


# ----------------------------------------------------------------------------- the page, in a browser


def test_page_in_a_headless_browser(outputs):
    out, result = outputs
    exe = find_chromium()
    if exe is None:
        pytest.skip("no chromium found (make test installs Debian's chromium when run as root; or set HPCL_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((out / "index.html").as_uri())
        page.wait_for_selector("section.video")
        r = result["videos"][1]
        section = page.locator(f"#video-{r['vid']}")
        buttons = section.locator("button.moment")
        assert buttons.count() == len(r["windows"]) >= 1
        player = section.locator("video.player")
        loaded = "v => new Promise(ok => { if (v.readyState >= 1) ok(v.duration); " \
            "v.addEventListener('loadedmetadata', () => ok(v.duration)); setTimeout(() => ok(-1), 15000); })"
        assert player.evaluate(loaded) > 0, "chromium could not load the source video"
        target = buttons.nth(buttons.count() - 1)  # the last-ranked moment
        start = float(target.get_attribute("data-start"))
        target.click()
        t = player.evaluate("v => { v.pause(); return v.currentTime; }")
        assert abs(t - start) < 0.15, (t, start)
        assert "active" in target.get_attribute("class")
        assert page.locator("section.failed li").count() == 2  # the two failed videos are listed
        reel_duration = section.locator("video.reel").evaluate(loaded)
        assert abs(reel_duration - r["reel"]["duration_s"]) < 0.2
        browser.close()
    assert errors == []


def test_long_videos_are_scored_in_windows_of_max_segments(run):
    model = load_model_file(run / "data" / "export" / "demo" / "stadium.pt")
    it = load_aligned(run / "data" / "aligned" / "demo" / "aligned.h5")[0]  # 24 segments
    args = (it.visual, it.audio, it.audio_mask, "stadium", torch.device("cpu"))
    assert np.array_equal(score_video(model, *args, max_segments=24), model.score(*args[:3], "stadium"))
    # 10-segment windows hopping by 5: starts 0, 5, 10, 14 (the last one flush with the end);
    # segment t takes the score of the window whose centre (start + 5) is nearest to t + 0.5
    out = score_video(model, *args, max_segments=10)
    starts = [0, 5, 10, 14]
    for t in range(24):
        s = min(starts, key=lambda s: abs(t + 0.5 - (s + 5)))
        window = model.score(it.visual[s:s + 10], it.audio[s:s + 10], it.audio_mask[s:s + 10], "stadium")
        assert out[t] == pytest.approx(window[t - s], abs=1e-12)


def test_cli_highlight_exit_status_and_summary(run, tmp_path, capsys):
    from pipeline.cli import main

    vid, path = _test_video(run, "arcade")
    args = ["highlight", str(path), str(tmp_path / "nope.mp4"), "--model", str(run / "data" / "export" / "demo" / "arcade.pt"), "--out",
            str(tmp_path), "--top-k", "2", "--device", "cpu", "--visual-weights",
            str(run / "data" / "weights" / "visual" / "weights.pt")]
    with pytest.raises(SystemExit) as exit_info:  # one of the two videos is missing: status 1
        main(args)
    assert exit_info.value.code == 1
    out, err = capsys.readouterr()
    assert f"{vid}: reel" in out and "page: " in out and "FAILED" in err and "nope.mp4" in err
    data = json.loads((tmp_path / f"{vid}.json").read_text())
    assert data["selection"] == {"top_k": 2} and 1 <= len(data["windows"]) <= 2
