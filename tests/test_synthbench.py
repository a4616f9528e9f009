"""Benchmark-like data: real label sequences with planted features, written in the layouts the
pipeline imports, read back through the pipeline's own readers; calibration; the ablation runner."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.annotations import load_annotations
from pipeline.published import import_published
from pipeline.store import read_store
from pipeline.align import VideoItem
from pipeline.synthbench import (
    Planted,
    SynthConfig,
    _Planter,
    calibrate,
    cue_oracle_scores,
    known_cue_basis,
    known_cue_items,
    lda_direction,
    plant_tvsum,
    plant_youtube,
    rotate_split,
    with_context,
    write_planted,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def parkour(shared_data):
    return plant_youtube(shared_data / "youtube_highlights", shared_data / "splits" / "umt_splits.json", ["parkour"])


def test_youtube_plant_uses_the_real_labels_and_umt_split(parkour, shared_data):
    splits = json.loads((shared_data / "splits" / "umt_splits.json").read_text())["youtube_highlights"]["parkour"]
    by_split = {s: sorted(it.vid for it in parkour.items if it.split == s) for s in ("train", "test")}
    assert by_split == {"train": sorted(splits["train"]), "test": sorted(splits["val"])}
    it = parkour.items[0]
    v = parkour.videos[it.vid]
    np.testing.assert_array_equal(it.labels, (v.match > 0).astype(int))  # the authors' labels, untouched
    assert it.visual.shape == it.audio.shape == (v.num_segments, 2048) and it.visual.dtype == np.float32
    assert (it.visual >= 0).all() and (it.visual == 0).any()  # post-ReLU-like
    again = plant_youtube(shared_data / "youtube_highlights", shared_data / "splits" / "umt_splits.json", ["parkour"])
    np.testing.assert_array_equal(again.items[0].audio, it.audio)  # seeded
    other = plant_youtube(shared_data / "youtube_highlights", shared_data / "splits" / "umt_splits.json",
                          ["parkour"], seed=1)
    assert not np.array_equal(other.items[0].visual, it.visual)


def test_train_draws_add_fresh_draws_of_the_training_videos_only(parkour, shared_data, tmp_path):
    """train_draws = 3: every training video twice more under a new id, same labels, new
    features, listed in the written train split; the test videos unchanged."""
    more = plant_youtube(shared_data / "youtube_highlights", shared_data / "splits" / "umt_splits.json", ["parkour"],
                         cfg=SynthConfig(train_draws=3))
    base_train = sorted(it.vid for it in parkour.items if it.split == "train")
    train = {it.vid: it for it in more.items if it.split == "train"}
    assert sorted(train) == sorted(base_train + [f"{v}_draw{k}" for v in base_train for k in (1, 2)])
    test = {it.vid: it for it in more.items if it.split == "test"}
    assert sorted(test) == sorted(it.vid for it in parkour.items if it.split == "test")
    v = base_train[0]
    np.testing.assert_array_equal(train[f"{v}_draw1"].labels, train[v].labels)
    assert not np.array_equal(train[f"{v}_draw1"].visual, train[v].visual)
    original = next(it for it in parkour.items if it.vid == v)
    np.testing.assert_array_equal(train[v].visual, original.visual)  # draw 0 is the K = 1 video itself
    write_planted(more, tmp_path, SynthConfig(train_draws=3), 0)
    lists = json.loads((tmp_path / "annotations" / "umt_splits.json").read_text())["youtube_highlights"]["parkour"]
    anno = json.loads((tmp_path / "annotations" / "youtube_anno.json").read_text())
    assert sorted(lists["train"]) == sorted(train) and f"{v}_draw2" in anno
    assert (tmp_path / "features" / "audio_features" / f"{v}_draw2.npy").is_file()
    with pytest.raises(ValueError, match="train_draws"):
        SynthConfig(train_draws=0)


def test_planted_cues_follow_the_rules():
    """Highlights carry the cue in both modalities (audio shifted by the video's delay),
    distractors in one modality only; nothing else carries it."""
    cfg = SynthConfig(noise_std=0.0, scene_std=0.0, offset_std=0.0, base=0.0, p_cue=1.0, p_distractor=0.5,
                      cue=1.0, latent_dim=4, drift=0.0)
    planter = _Planter(cfg, 0, ["d"])
    strength = np.array([0, 0, 1, 1, 0, 0, 0, 0, 0, 0], dtype=float)
    for vid in ("a", "b", "c", "e", "f"):
        vis, aud, facts = planter.video(vid, "d", strength)
        # with no noise and no base, a ReLU of (latent + cue): project on the cue directions
        u, w = planter.cue_dir[("d", "visual")], planter.cue_dir[("d", "audio")]
        pv = (vis @ u) / (u @ u)
        pa = (aud @ w) / (w @ w)
        has_v, has_a = pv > 0.3, pa > 0.3
        s = facts["shift"]
        assert has_v[2] and has_v[3]  # p_cue = 1: every highlight carries the visual cue
        assert has_a[2 + s] and has_a[3 + s]  # and the audio cue, delayed by the video's shift
        single = (has_v ^ has_a) & ~np.isin(np.arange(10), [2, 3, 2 + s, 3 + s])
        # distractors: one modality only; one may land on the non-highlight segment that the
        # delayed audio of the highlight run reaches (|shift| <= 1), which then carries both
        assert int(single.sum()) <= facts["distractors"] <= int(single.sum()) + abs(s)


def test_distractors_come_in_runs_shaped_like_the_highlights():
    """Distractor runs: each run lies on non-highlight segments in one modality, no longer than
    the longest highlight run, and together they cover about p_distractor of the non-highlight
    segments, so context alone cannot separate them from highlights (isolated ones: it can)."""
    from pipeline.synthbench import _distractor_runs, _runs

    highlight = np.zeros(200, bool)
    highlight[[*range(20, 26), *range(90, 96), *range(150, 156)]] = True  # three runs of 6
    covered_total = 0
    for seed in range(20):
        g = np.random.default_rng(seed)
        distract, in_audio = _distractor_runs(g, highlight, p_distractor=0.2, p_cue=1.0)
        assert not (distract & highlight).any()
        runs = _runs(distract)
        lengths = [n for _, n in runs]  # placements of <= 6; touching placements merge
        assert lengths and 3 <= np.median(lengths) <= 12  # runs, not isolated segments
        covered_total += int(distract.sum())
    assert 0.15 < covered_total / (20 * 182) < 0.25  # about p_distractor of the 182 free segments
    # p_cue thins a run the way it thins highlights
    g = np.random.default_rng(0)
    thinned, _ = _distractor_runs(g, highlight, p_distractor=0.2, p_cue=0.5)
    assert 0 < thinned.sum() < 0.2 * 182
    # through the planter (no noise: the cue is visible): the default layout plants runs in one
    # modality each, the isolated layout mostly single segments
    def single_modality_runs(distractor_runs):
        cfg = SynthConfig(noise_std=0.0, scene_std=0.0, offset_std=0.0, base=0.0, p_cue=1.0, p_distractor=0.2,
                          cue=1.0, latent_dim=4, drift=0.0, max_shift=0, distractor_runs=distractor_runs)
        planter = _Planter(cfg, 0, ["d"])
        vis, aud, _ = planter.video("x", "d", highlight.astype(float))
        u, w = planter.cue_dir[("d", "visual")], planter.cue_dir[("d", "audio")]
        has_v, has_a = (vis @ u) / (u @ u) > 0.3, (aud @ w) / (w @ w) > 0.3
        assert (has_v & has_a)[highlight].all() and not (has_v & has_a)[~highlight].any()
        return [n for _, n in _runs(has_v ^ has_a)]
    runs = single_modality_runs(True)
    assert np.mean(runs) >= 3
    assert np.mean(single_modality_runs(False)) < 2


def test_written_umt_layout_reads_back_through_the_pipeline(parkour, tmp_path):
    facts = write_planted(parkour, tmp_path / "yt", SynthConfig(), seed=0)
    assert facts["videos"] == len(parkour.items) and facts["segments"] == sum(it.num_segments for it in parkour.items)
    table = load_annotations("youtube_highlights", tmp_path / "yt" / "annotations" / "youtube_anno.json")
    assert sorted(table["vid"].unique()) == sorted(it.vid for it in parkour.items)
    store = tmp_path / "visual.h5"
    import_published(table, "umt", tmp_path / "yt" / "features", "visual", store)
    import_published(table, "umt", tmp_path / "yt" / "features", "audio", tmp_path / "audio.h5")
    vis, aud = read_store(store), read_store(tmp_path / "audio.h5")
    for it in parkour.items[:3]:
        np.testing.assert_array_equal(vis[it.vid], it.visual)
        np.testing.assert_array_equal(aud[it.vid], it.audio)
        rows = table[table.vid == it.vid]
        np.testing.assert_array_equal(rows["label"].to_numpy(), it.labels)
    splits = json.loads((tmp_path / "yt" / "annotations" / "umt_splits.json").read_text())
    assert list(splits["youtube_highlights"]) == ["parkour"]


def test_tvsum_plant_and_lighthouse_layout(shared_data, tmp_path):
    files = [shared_data / "tvsum" / f"lighthouse_tvsum_{p}_release.jsonl" for p in ("train", "val")]
    planted = plant_tvsum(files, shared_data / "splits" / "umt_splits.json")
    assert len(planted.items) == 50
    assert sum(it.split == "train" for it in planted.items) == 40  # 4 per category
    write_planted(planted, tmp_path / "tv", SynthConfig(), seed=0)
    table = load_annotations("tvsum", [tmp_path / "tv" / "annotations" / f.name for f in files])
    import_published(table, "lighthouse", tmp_path / "tv" / "features", "visual", tmp_path / "v.h5",
                     names={"visual": "i3d", "audio": "pann"})
    it = planted.items[0]
    np.testing.assert_array_equal(read_store(tmp_path / "v.h5")[it.vid], it.visual)


def test_rotate_split_by_hand():
    """Each domain's train + val turn by rotation x len(val); the last len(val) are held out."""
    lists = {"a": {"train": ["a0", "a1", "a2", "a3"], "val": ["a4"]},
             "b": {"train": ["b0", "b1", "b2", "b3", "b4", "b5"], "val": ["b6", "b7"]}}
    assert rotate_split(lists, 0) == lists
    assert rotate_split(lists, 1) == {"a": {"train": ["a1", "a2", "a3", "a4"], "val": ["a0"]},
                                      "b": {"train": ["b2", "b3", "b4", "b5", "b6", "b7"], "val": ["b0", "b1"]}}
    assert rotate_split(lists, 3)["b"] == {"train": ["b6", "b7", "b0", "b1", "b2", "b3"], "val": ["b4", "b5"]}
    held = [v for r in range(4) for v in rotate_split(lists, r)["b"]["val"]]
    assert sorted(held) == sorted(lists["b"]["train"] + lists["b"]["val"])  # disjoint, all videos once
    assert rotate_split({"a": lists["a"]}, 4)["a"]["val"] == ["a3"]
    with pytest.raises(ValueError, match="domain 'b': rotation 4 outside 0..3"):
        rotate_split(lists, 4)
    with pytest.raises(ValueError, match="rotation -1"):
        rotate_split(lists, -1)


def test_tvsum_rotation_holds_out_another_video_with_the_same_features(shared_data, tmp_path):
    files = [shared_data / "tvsum" / f"lighthouse_tvsum_{p}_release.jsonl" for p in ("train", "val")]
    splits = shared_data / "splits" / "umt_splits.json"
    umt = json.loads(splits.read_text())["tvsum"]
    base, turned = plant_tvsum(files, splits), plant_tvsum(files, splits, rotation=2)
    test = sorted(it.vid for it in turned.items if it.split == "test")
    assert test == sorted(umt[d]["train"][1] for d in umt)  # each category's second training video
    assert sum(it.split == "train" for it in turned.items) == 40
    by_vid = {it.vid: it for it in base.items}
    for it in turned.items:
        np.testing.assert_array_equal(it.visual, by_vid[it.vid].visual)  # only the split moved
    facts = write_planted(turned, tmp_path, SynthConfig(), seed=0)
    written = json.loads((tmp_path / "annotations" / "umt_splits.json").read_text())["tvsum"]
    assert facts["rotation"] == 2 and sorted(v for d in written.values() for v in d["val"]) == test


def test_calibration_reports_chance_and_a_probe_above_it(parkour):
    cal = calibrate(parkour, draws=5)
    assert cal["test_videos"] == 11
    assert 0.4 < cal["chance_umt_mAP"] < 0.65 and cal["chance_std"] > 0
    assert cal["linear_probe_umt_mAP"] > cal["chance_umt_mAP"] + 0.05
    # the cue oracle: above chance, and the audio is needed to tell highlights from distractor runs
    assert cal["cue_oracle_visual_umt_mAP"] > cal["chance_umt_mAP"] + 0.1
    assert cal["cue_oracle_audio_visual_umt_mAP"] > cal["cue_oracle_visual_umt_mAP"]
    # the context probes: each above chance
    assert cal["context_probe_visual_umt_mAP"] > cal["chance_umt_mAP"] + 0.05
    assert cal["context_probe_audio_visual_umt_mAP"] > cal["chance_umt_mAP"] + 0.05


def test_with_context_by_hand():
    x = np.array([[1.0], [2.0], [3.0]])
    np.testing.assert_array_equal(with_context(x), [[1, 1, 2], [2, 1, 3], [3, 2, 3]])  # t, t-1, t+1


def test_cue_oracle_scores_by_hand():
    d, T = 4, 5
    visual = np.zeros((T, d), np.float32)
    audio = np.zeros((T, d), np.float32)
    visual[:, 0] = [0, 2, 0, 3, 0]  # visual cue on segments 1 and 3
    audio[:, 1] = [0, 0, 4, 0, 0]  # audio cue on segment 2: one segment from both
    item = VideoItem("v", "dom", "test", visual, audio, np.ones(T, bool), np.zeros(T, np.int64),
                     np.zeros(T, np.float32), np.zeros((T, 1), np.float32))
    cues = {("dom", "visual"): np.eye(d)[0], ("dom", "audio"): np.eye(d)[1]}
    planted = Planted("youtube_highlights", [item], {}, {}, [], {}, cues)
    got = cue_oracle_scores(planted, item)
    np.testing.assert_allclose(got["visual"], [2, 2, 5, 3, 3])  # c_v summed over t-1..t+1
    # max3(c_a) = [0, 4, 4, 4, 0]; min(c_v, .) = [0, 2, 0, 3, 0]; summed over t-1..t+1
    np.testing.assert_allclose(got["audio_visual"], [2, 2, 5, 3, 3])
    audio[:, 1] = [0, 4, 0, 0, 0]  # the audio on segment 1 only: segment 3 is a visual-only distractor
    got = cue_oracle_scores(planted, item)
    # max3(c_a) = [4, 4, 4, 0, 0]; min(c_v, .) = [0, 2, 0, 0, 0]; summed: [2, 2, 2, 0, 0]
    np.testing.assert_allclose(got["audio_visual"], [2, 2, 2, 0, 0])
    np.testing.assert_allclose(got["visual"], [2, 2, 5, 3, 3])  # the visual oracle cannot tell them apart
    # per shot: c_v = [0, 2, 0, 3, 0], max3(c_a) = [4, 4, 4, 0, 0]
    np.testing.assert_allclose(got["shot_visual"], [0, 2, 0, 3, 0])
    np.testing.assert_allclose(got["shot_sum"], [4, 6, 4, 3, 0])  # the distractor (3) above a silent shot
    np.testing.assert_allclose(got["shot_min"], [0, 2, 0, 0, 0])  # the conjunction ranks it with them



def test_known_cue_basis_puts_the_cue_first_then_the_principal_directions():
    g = np.random.default_rng(0)
    D = 6
    x = g.standard_normal((200, D)) * 0.1
    x[:, 3] += 10.0 * g.standard_normal(200)  # the dominant direction: e3
    x[:, 1] += 3.0 * g.standard_normal(200)  # the second: e1
    x[:, 0] += 5.0 * g.standard_normal(200)  # strong, but along the cue, so projected out first
    cue = np.eye(D)[0] * 4.0  # not unit: the basis holds its unit direction
    mean, basis = known_cue_basis(x, cue, 3)
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)  # orthonormal
    np.testing.assert_allclose(basis[:, 0], np.eye(D)[0], atol=1e-12)  # +u, sign included
    assert abs(basis[3, 1]) > 0.99 and abs(basis[1, 2]) > 0.99  # then e3, then e1 (e0's variance is the cue's)
    with pytest.raises(ValueError, match="dims"):
        known_cue_basis(x, cue, D + 1)


def test_lda_direction_by_hand():
    # positives (2, 2), (4, 4), negatives (0, 2), (2, 4): mean difference (2, 0); within-class
    # rows (-1, -1), (1, 1) twice: S_w = [[4, 4], [4, 4]] / (4 - 2) = [[2, 2], [2, 2]], mean
    # eigenvalue 2, so w = [[4, 2], [2, 4]]^-1 (2, 0) = (8, -4) / 12: the shared spread along
    # (1, 1) is discounted, which the mean difference alone does not do
    x = np.array([[2.0, 2.0], [4.0, 4.0], [0.0, 2.0], [2.0, 4.0]])
    y = np.array([1, 1, 0, 0])
    np.testing.assert_allclose(lda_direction(x, y, k=2), [2 / 3, -1 / 3], atol=1e-12)
    with pytest.raises(ValueError, match="positive and negative"):
        lda_direction(x, np.ones(4, np.int64))


def _item(vid, domain, split, visual, audio, labels):
    T = len(labels)
    return VideoItem(vid, domain, split, visual, audio, np.ones(T, bool), np.asarray(labels, np.int64),
                     np.zeros(T, np.float32), np.zeros((T, 1), np.float32))


def test_known_cue_items_fit_on_training_videos_per_domain():
    g = np.random.default_rng(1)
    D, dims = 8, 3

    def feats(T):
        return g.standard_normal((T, D)).astype(np.float32)

    items = [_item(f"{d}{k}", d, split, feats(12), feats(12), [1] * 6 + [0] * 6)
             for d in ("A", "B") for k, split in enumerate(["train", "train", "test"])]
    cues = {(d, m): np.eye(D)[i] for i, (d, m) in enumerate([("A", "visual"), ("A", "audio"),
                                                              ("B", "visual"), ("B", "audio")])}
    out = {it.vid: it for it in known_cue_items(items, cues, dims)}
    assert set(out) == {it.vid for it in items}
    for it in items:
        got = out[it.vid]
        assert got.visual.shape == (12, dims) and got.audio.shape == (12, dims) and got.visual.dtype == np.float32
        train = np.concatenate([i.visual for i in items if i.domain == it.domain and i.split == "train"])
        u = cues[(it.domain, "visual")]
        np.testing.assert_allclose(got.visual[:, 0], (it.visual - train.mean(0)) @ u, atol=1e-5)  # the cue comes first
        np.testing.assert_array_equal(got.labels, it.labels)
    # a test video's features play no part in the fit: change one, the others' outputs stay
    items[2] = _item("A2", "A", "test", feats(12) * 100, feats(12), [1] * 6 + [0] * 6)
    again = {it.vid: it for it in known_cue_items(items, cues, dims)}
    np.testing.assert_array_equal(again["A0"].visual, out["A0"].visual)
    # no planted directions: each domain's is estimated from its training labels
    est = {it.vid: it for it in known_cue_items(items, None, dims)}
    x = np.concatenate([i.visual for i in items if i.vid in ("A0", "A1")])
    y = np.concatenate([i.labels for i in items if i.vid in ("A0", "A1")])
    u = lda_direction(x, y)
    np.testing.assert_allclose(est["A0"].visual[:, 0], (items[0].visual - x.mean(0)) @ (u / np.linalg.norm(u)), atol=1e-5)


def test_ablation_settings_apply_overrides_and_tabulate(tmp_path):
    from pipeline.ablation import ablation_table, configs, run_setting
    from pipeline.batching import items_table
    from test_train import TINY, planted_items

    sections = {"model": dict(TINY), "train": {"epochs": 2, "batch_size": 2, "folds": 2, "seeds": [0, 1],
                                               "device": "cpu", "num_threads": 1}, "loss": {}}
    m, t = configs(sections["model"], sections["train"], sections["loss"],
                   {"model.variant": "linear", "loss.lambda_rank": 0.0, "train.lr": 0.01})
    assert (m.variant, t.lambda_rank, t.lr, t.folds) == ("linear", 0.0, 0.01, 2)
    # the named baselines train to convergence (100 epochs), the model variants keep params' budget
    from pipeline.ablation import SETTINGS
    for name, epochs in (("linear", 100), ("linear_ctx", 100), ("co_av", 2), ("v_only", 2)):
        m, t = configs(sections["model"], sections["train"], sections["loss"], SETTINGS[name][0])
        assert t.epochs == epochs, name
    assert m.variant == "v_only" and configs(sections["model"], sections["train"], sections["loss"],
                                             SETTINGS["linear"][0])[0].variant == "linear"
    # co_av_fixed: the default before 2026-12-07, fusion weights not chosen by cross-validation
    assert configs(sections["model"], {**sections["train"], "fusion_grid": [[1, 1, 0]]}, sections["loss"],
                   SETTINGS["co_av_fixed"][0])[1].fusion_grid == []
    with pytest.raises(ValueError, match="expected model"):
        configs({}, {}, {}, {"lr": 0.1})
    with pytest.raises(ValueError, match="unknown model params"):
        configs({}, {}, {}, {"model.lr": 0.1})
    items = planted_items(4, 2)
    table = items_table(items)
    for name, overrides in (("linear", {"model.variant": "linear"}), ("co_av", {})):
        res = run_setting(name, overrides, items, table, "youtube_highlights", sections, tmp_path,
                          keep_cv_curves=name == "linear", keep_predictions=name == "co_av")
        assert res["setting"]["model_config"]["variant"] == ("linear" if name == "linear" else "co_av")
        assert not (tmp_path / name / "models").exists()
    # --keep-predictions: the seeds' ensemble, scored again from the file, gives the metrics' figure
    assert not (tmp_path / "linear" / "predictions.jsonl").exists()
    from pipeline.metrics import evaluate, read_predictions
    kept_preds = read_predictions(tmp_path / "co_av" / "predictions.jsonl")
    test_vids = {it.vid for it in items if it.split == "test"}
    assert set(kept_preds) == test_vids
    ens = json.loads((tmp_path / "co_av" / "metrics.json").read_text())["ensemble"]["umt"]["mAP"]
    assert evaluate("youtube_highlights", table[table["split"] == "test"], kept_preds)["mAP"] == pytest.approx(ens)
    # --keep-cv-curves: the curves selection read, per seed; their best is the epoch it chose
    from pipeline.selection import best_of_curves
    kept = json.loads((tmp_path / "linear" / "cv_curves.json").read_text())
    assert not (tmp_path / "co_av" / "cv_curves.json").exists()
    g = kept["groups"]["dog"]
    assert g["selection"] == "kfold" and g["seeds"] == [0, 1] and g["cv"]["scope"] == "group"
    assert [len(r["cv"]["curve"]) for r in g["runs"]] == [2, 2]
    assert [best_of_curves([r["cv"]["curve"]])[1] for r in g["runs"]] == [r["selected_epoch"] for r in g["runs"]]
    assert [r["selected_epoch"] for r in g["runs"]] == json.loads(
        (tmp_path / "linear" / "metrics.json").read_text())["selected_epoch"]["dog"]
    text = ablation_table(tmp_path, ["co_av", "linear"])
    lines = text.splitlines()
    assert lines[0].startswith("| setting | umt mAP (honest)") and [ln.split("|")[1].strip() for ln in lines[2:]] == [
        "co_av", "linear"]
    saved = json.loads((tmp_path / "linear" / "metrics.json").read_text())
    assert f"{saved['umt']['mAP']:.3f} +- {saved['umt']['std']:.3f}" in lines[3]
    # the textbook-AP column (mean +- std over seeds) follows the honest umt figure
    assert lines[0].split("|")[3].strip() == "textbook AP"
    assert lines[3].split("|")[3].strip() == f"{saved['standard']['mAP']:.3f} +- {saved['standard']['std']:.3f}"


def _run_folder(path, seeds, umt, standard):
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({"seeds": seeds, "umt": {"per_seed": umt},
                                                   "standard": {"per_seed": standard}}))
    return path


def test_paired_comparison_by_hand(tmp_path, capsys):
    """Two datasets x two seeds: umt A - B per run (0.1, -0.1, 0.2, 0.2) -> mean 0.100, population
    std sqrt((0 + 0.04 + 0.01 + 0.01) / 4) = 0.122; per pair 0.0 and 0.2 -> 0.100 +- 0.100."""
    from pipeline.ablation import paired_comparison
    from pipeline.cli import main

    a1 = _run_folder(tmp_path / "d1" / "co_av", [0, 1], [0.6, 0.5], [0.8, 0.8])
    b1 = _run_folder(tmp_path / "d1" / "linear", [0, 1], [0.5, 0.6], [0.7, 0.7])
    a2 = _run_folder(tmp_path / "d2" / "co_av", [0, 1], [0.7, 0.7], [0.9, 0.7])
    b2 = _run_folder(tmp_path / "d2" / "linear", [0, 1], [0.5, 0.5], [0.7, 0.7])
    text = paired_comparison([(a1, b1), (a2, b2)])
    assert f"| {a1} | {b1} | 0.550 +- 0.050 | 0.550 +- 0.050 | +0.000 +- 0.100 | 0.800 +- 0.000 | 0.700 +- 0.000 | " \
           "+0.100 +- 0.000 |" in text
    assert ("umt mAP, 4 runs: A 0.625 +- 0.083, B 0.525 +- 0.043; A - B +0.100 +- 0.122 (A ahead in 3, equal in 0, "
            "range -0.100 to +0.200); per pair (2): +0.100 +- 0.100") in text
    assert ("textbook AP, 4 runs: A 0.800 +- 0.071, B 0.700 +- 0.000; A - B +0.100 +- 0.071 (A ahead in 3, equal in 1, "
            "range +0.000 to +0.200); per pair (2): +0.100 +- 0.000") in text
    assert main(["ablate", "--compare", str(a1), str(b1), "--compare", str(a2), str(b2)]) == 0
    assert "per pair (2): +0.100 +- 0.100" in capsys.readouterr().out
    other = _run_folder(tmp_path / "d3" / "linear", [0, 2], [0.5, 0.5], [0.7, 0.7])
    with pytest.raises(ValueError, match="different seeds"):
        paired_comparison([(a1, other)])
    assert main(["ablate", "--compare", str(a1), str(tmp_path / "nowhere")]) == 2
    assert "nowhere/metrics.json: no metrics" in capsys.readouterr().err
    assert main(["ablate", "co_av"]) == 2  # neither --out nor --compare
    assert main(["ablate", "co_av", "--compare", str(a1), str(b1)]) == 2  # a setting name would be ignored
    assert "run folders only" in capsys.readouterr().err
