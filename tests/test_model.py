"""HPCL model: shapes, padding and audio masks, every variant, gradient flow."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from pipeline.inputs import InputStage
from pipeline.losses import ce_loss, hard_pair_rank_loss, hpcl_loss
from pipeline.model import (
    FUSIONS,
    GLOBAL_INITS,
    POS_ENCODINGS,
    VARIANTS,
    AttentionBlock,
    ModelConfig,
    build_model,
    masked_mean,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


DV, DA = 12, 10
HPCL_VARIANTS = tuple(v for v in VARIANTS if not v.startswith("linear"))


def tiny(**kw) -> ModelConfig:
    base = dict(d_model=16, num_heads=2, num_layers=1, num_cross_layers=1, ffn_dim=32, dropout=0.0, input_norm="none")
    base.update(kw)
    return ModelConfig(**base)


def inputs(B=2, T=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    visual = torch.randn(B, T, DV, generator=g)
    audio = torch.randn(B, T, DA, generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    if B > 1:
        mask[1, 5:] = False
    audio_mask = mask.clone()
    return visual, audio, mask, audio_mask


def test_default_config_shapes_d256():
    cfg = ModelConfig()
    assert (cfg.d_model, cfg.variant, cfg.global_init, cfg.fusion) == (256, "co_av", "mean", "late")
    model = build_model(cfg, 1024, 2048).eval()
    g = torch.Generator().manual_seed(0)
    model.fit_inputs(torch.randn(80, 1024, generator=g), torch.randn(80, 2048, generator=g), torch.ones(80, dtype=torch.bool))
    B, T = 2, 9
    out = model(torch.randn(B, T, 1024), torch.randn(B, T, 2048), torch.ones(B, T, dtype=torch.bool),
                torch.ones(B, T, dtype=torch.bool))
    assert out["score"].shape == (B, T)
    assert set(out["logits"]) == {"co", "v", "a"}
    assert all(v.shape == (B, T) for v in out["logits"].values())
    assert out["emb_v"].shape == out["emb_a"].shape == (B, T, 256)
    assert out["emb"].shape == (B, T, 512)


@pytest.mark.parametrize("variant", VARIANTS)
def test_padding_invariance(variant):
    """A video padded inside a batch scores exactly as it does alone, whatever the padding holds."""
    torch.manual_seed(0)
    model = build_model(tiny(variant=variant), DV, DA).eval()
    g = torch.Generator().manual_seed(1)
    short_v, short_a = torch.randn(1, 5, DV, generator=g), torch.randn(1, 5, DA, generator=g)
    long_v, long_a = torch.randn(1, 8, DV, generator=g), torch.randn(1, 8, DA, generator=g)
    ones5 = torch.ones(1, 5, dtype=torch.bool)
    with torch.no_grad():
        alone = model(short_v, short_a, ones5, ones5)
        garbage = 100 * torch.randn(1, 3, DV, generator=g)
        bv = torch.cat([torch.cat([short_v, garbage], 1), long_v])  # [2, 8, DV]
        ba = torch.cat([torch.cat([short_a, -garbage[..., :DA]], 1), long_a])  # [2, 8, DA]
        mask = torch.ones(2, 8, dtype=torch.bool)
        mask[0, 5:] = False
        batched = model(bv, ba, mask, mask.clone())
    torch.testing.assert_close(batched["score"][0, :5], alone["score"][0], atol=1e-5, rtol=1e-5)
    if alone["emb"] is not None:
        torch.testing.assert_close(batched["emb"][0, :5], alone["emb"][0], atol=1e-5, rtol=1e-5)
    for k in alone["logits"]:
        torch.testing.assert_close(batched["logits"][k][0, :5], alone["logits"][k][0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pos_encoding", POS_ENCODINGS)
def test_position_encodings_padding_invariant_and_order_aware(pos_encoding):
    torch.manual_seed(0)
    model = build_model(tiny(pos_encoding=pos_encoding), DV, DA).eval()
    visual, audio, mask, amask = inputs()
    with torch.no_grad():
        full = model(visual, audio, mask, amask)["score"]
        alone = model(visual[1:, :5], audio[1:, :5], mask[1:, :5], amask[1:, :5])["score"]
        flipped = model(visual.flip(1), audio.flip(1), mask, amask)["score"].flip(1)
    torch.testing.assert_close(full[1, :5], alone[0], atol=1e-5, rtol=1e-5)
    # without a position code the model is permutation-equivariant over segments
    if pos_encoding == "none":
        torch.testing.assert_close(flipped[0], full[0], atol=1e-5, rtol=1e-5)
    elif pos_encoding == "sinusoidal":
        assert not torch.allclose(flipped[0], full[0], atol=1e-4)


def test_relative_bias_is_one_entry_per_offset():
    from pipeline.model import RelativePositionBias

    rel = RelativePositionBias(num_heads=2, max_offset=2)
    with torch.no_grad():
        rel.table.copy_(torch.arange(10.0).view(5, 2))  # offset -2..2 -> rows 0..4
    bias = rel(torch.arange(3), torch.tensor([0, 1, 2, 0, 1, 2]))  # visual and audio keys share times
    assert bias.shape == (2, 3, 6)
    # head 0, query time 0: offsets 0, 1, 2, 0, 1, 2 -> rows 2, 3, 4 -> values 4, 6, 8
    assert bias[0, 0].tolist() == [4, 6, 8, 4, 6, 8]
    # query time 2, key time 0: offset -2 -> row 0; clipping beyond +-2
    assert bias[1, 2, 0].item() == 1
    far = rel(torch.tensor([0]), torch.tensor([7]))
    assert far[0, 0, 0].item() == 8  # offset 7 clipped to 2


def test_audio_mask_excludes_silent_segments_from_keys_and_fusion():
    torch.manual_seed(0)
    model = build_model(tiny(), DV, DA).eval()
    visual, audio, mask, _ = inputs(B=1, T=6)
    amask = torch.tensor([[True, True, False, False, True, True]])
    with torch.no_grad():
        ref = model(visual, audio, mask, amask)
        other = audio.clone()
        other[0, 2:4] = 50 * torch.randn(2, DA)  # change only the silent segments' audio
        out = model(visual, other, mask, amask)
    keep = amask[0]
    # segments with audio never see the silent segments' audio (as keys in any attention)
    torch.testing.assert_close(out["score"][0, keep], ref["score"][0, keep])
    torch.testing.assert_close(out["emb_a"][0, keep], ref["emb_a"][0, keep])
    torch.testing.assert_close(out["emb_v"], ref["emb_v"])
    assert torch.equal(out["head_masks"]["a"], amask)
    # on silent segments the fused score ignores the audio head (default fusion_score: logit sum)
    lg = ref["logits"]
    torch.testing.assert_close(ref["score"][0, ~keep], (lg["co"] + lg["v"])[0, ~keep])
    torch.testing.assert_close(ref["score"][0, keep], (lg["co"] + lg["v"] + lg["a"])[0, keep])


def test_stored_configs_keep_the_fusion_they_were_trained_with():
    """A model file or history written before fusion_score / stream_training existed was trained
    jointly and scored by averaged probabilities: loading it must not switch it to today's
    defaults; params (from_dict) get the defaults."""
    assert (ModelConfig.from_dict({}).fusion_score, ModelConfig.from_dict({}).stream_training) == ("logit", "own")
    old = ModelConfig.from_stored({"variant": "co_av"})
    assert (old.fusion_score, old.stream_training) == ("probability", "joint")
    new = ModelConfig.from_stored({"fusion_score": "logit", "stream_training": "own"})
    assert (new.fusion_score, new.stream_training) == ("logit", "own")


def test_fusion_scores_by_hand():
    """Late fusion with weights (w_co, w_v, w_a) = (1, 0.5, 2): logit = the weighted sum of the
    logits; probability = the logit of the weighted mean of the probabilities; min = the
    co-occurrence logit plus (w_v + w_a) times the smaller stream logit; the audio head drops out
    on a segment without audio under every rule."""
    visual, audio, mask, _ = inputs(B=1, T=4)
    amask = torch.tensor([[True, False, True, True]])
    for rule in ("logit", "probability", "min"):
        torch.manual_seed(0)
        model = build_model(tiny(fusion_score=rule, w_co=1.0, w_v=0.5, w_a=2.0), DV, DA).eval()
        with torch.no_grad():
            out = model(visual, audio, mask, amask)
        co, v, a = (out["logits"][k][0].tolist() for k in ("co", "v", "a"))
        sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
        for t in range(4):
            if rule == "logit":
                want = co[t] + 0.5 * v[t] + (2.0 * a[t] if t != 1 else 0.0)
            elif rule == "min":
                want = co[t] + (2.5 * min(v[t], a[t]) if t != 1 else 0.5 * v[t])
            else:
                num = sig(co[t]) + 0.5 * sig(v[t]) + (2.0 * sig(a[t]) if t != 1 else 0.0)
                p = num / (3.5 if t != 1 else 1.5)
                want = math.log(p / (1 - p))
            assert out["score"][0, t].item() == pytest.approx(want, abs=1e-5), (rule, t)


def test_min_fusion_is_a_conjunction_and_drops_zero_weight_heads():
    """Under fusion_score: min a segment whose stream heads disagree ranks by the weaker one
    (logits chosen by hand through fuse's weights argument); a stream head of weight 0 leaves the
    min, which then equals the logit rule; both stream weights 0 leave the co-occurrence logit."""
    torch.manual_seed(0)
    model = build_model(tiny(fusion_score="min"), DV, DA).eval()
    logits = {"co": torch.tensor([[0.0, 0.0, 1.0]]), "v": torch.tensor([[4.0, 1.0, -1.0]]),
              "a": torch.tensor([[-2.0, 1.0, 3.0]])}
    mask = torch.ones(1, 3, dtype=torch.bool)
    both = model.fuse(logits, mask, mask, (1, 1, 1))
    torch.testing.assert_close(both, torch.tensor([[-4.0, 2.0, -1.0]]))
    # segment 0 (one strong modality) falls to last; the logit rule ties it with segment 1 (2, 2, 3)
    no_audio = model.fuse(logits, mask, mask, (1, 2, 0))
    torch.testing.assert_close(no_audio, logits["co"] + 2 * logits["v"])
    torch.testing.assert_close(model.fuse(logits, mask, mask, (2, 0, 0)), 2 * logits["co"])


@pytest.mark.parametrize("variant", ["a_only", "cr_av", "co_av"])
@pytest.mark.parametrize("global_init", GLOBAL_INITS)
def test_video_without_audio_stays_finite(variant, global_init):
    torch.manual_seed(0)
    model = build_model(tiny(variant=variant, global_init=global_init), DV, DA)
    visual, audio, mask, _ = inputs()
    audio = torch.zeros_like(audio)
    amask = torch.zeros_like(mask)  # no audio track anywhere: every audio key masked
    out = model(visual, audio, mask, amask)
    assert torch.isfinite(out["score"]).all() and torch.isfinite(out["emb"]).all()
    labels = (torch.arange(7) % 3 == 0).long().expand(2, 7)
    loss = ce_loss(out["logits"], labels.float(), mask, out["head_masks"]) + hpcl_loss(out["emb"], labels, mask)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_attention_block_masks_keys_and_handles_empty_rows():
    torch.manual_seed(0)
    block = AttentionBlock(8, 2, 16, 0.0).eval()
    q, kv = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    valid = torch.tensor([[True, True, False, False], [False, False, False, False]])
    kv2 = kv.clone()
    kv2[0, 2:] = 1e3  # invalid keys of row 0 changed
    with torch.no_grad():
        a, b = block(q, kv, valid), block(q, kv2, valid)
    torch.testing.assert_close(a[0], b[0])
    # row 1 has no valid key: zero attention output, i.e. the block reduces to the residual path
    with torch.no_grad():
        x = block.norm1(q[1])
        expected = block.norm2(x + block.ffn(x))
    torch.testing.assert_close(a[1], expected)
    m = masked_mean(torch.tensor([[[1.0], [3.0], [100.0]]]), torch.tensor([[True, True, False]]))
    assert m.item() == pytest.approx(2.0)


def test_pre_norm_block_by_hand_keeps_the_input_scale():
    """pre: x = q + attn(LN1(q), LN1(kv)); out = x + ffn(LN2(x)), computed here from the block's own
    parts; the output's scale follows the input's, where post-norm output rows have unit variance."""
    torch.manual_seed(0)
    pre = AttentionBlock(8, 2, 16, 0.0, pre_norm=True).eval()
    post = AttentionBlock(8, 2, 16, 0.0).eval()
    q, kv = torch.randn(1, 3, 8), torch.randn(1, 4, 8)
    valid = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        qn, kvn = pre.norm1(q), pre.norm1(kv)
        a, _ = pre.attn(qn, kvn, kvn, need_weights=False)
        x = q + a
        torch.testing.assert_close(pre(q, kv, valid), x + pre.ffn(pre.norm2(x)))
        # a 10x stronger input: pre-norm's output grows with it, post-norm's does not
        big_pre, big_post = pre(10 * q, 10 * kv, valid), post(10 * q, 10 * kv, valid)
        assert big_pre.norm() > 5 * pre(q, kv, valid).norm()
        torch.testing.assert_close(big_post.var(-1, unbiased=False), torch.ones(1, 3), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="block_norm"):
        ModelConfig(block_norm="mid")
    model = build_model(tiny(block_norm="pre"), DV, DA)
    assert all(b.pre_norm for b in model.modules() if isinstance(b, AttentionBlock))


@pytest.mark.parametrize(
    "variant,global_init,fusion", list(itertools.product(HPCL_VARIANTS, GLOBAL_INITS, FUSIONS))
)
def test_every_ablation_runs(variant, global_init, fusion):
    torch.manual_seed(0)
    model = build_model(tiny(variant=variant, global_init=global_init, fusion=fusion), DV, DA)
    visual, audio, mask, amask = inputs()
    out = model(visual, audio, mask, amask)
    assert out["score"].shape == (2, 7)
    expected_heads = {
        "v_only": {"v"}, "a_only": {"a"}, "av": {"av"},
        "cr_av": {"co", "v", "a"} if fusion == "late" else {"fused"},
        "co_av": {"co", "v", "a"} if fusion == "late" else {"fused"},
        "late_av": {"v", "a"},
    }[variant]
    assert set(out["logits"]) == expected_heads
    assert out["emb"].shape == (2, 7, 32 if variant in ("cr_av", "co_av", "late_av") else 16)
    assert ("emb_v" in out) == (variant in ("v_only", "cr_av", "co_av", "late_av"))
    assert ("emb_a" in out) == (variant in ("a_only", "cr_av", "co_av", "late_av"))
    if len(expected_heads) == 1:
        torch.testing.assert_close(out["score"], next(iter(out["logits"].values())))
    assert (model.stream_v is None or model.stream_v.glob is None) == (global_init == "none" or model.stream_v is None)
    out["score"].sum().backward()


def test_late_av_scores_by_the_weighted_sum_of_its_two_logits():
    """late_av: score = w_v * l_v + w_a * l_a, the visual logit alone where a segment has no audio."""
    torch.manual_seed(0)
    model = build_model(tiny(variant="late_av", w_v=1.0, w_a=0.5), DV, DA).eval()
    visual, audio, mask, amask = inputs()
    amask[0, 3] = False
    with torch.no_grad():
        out = model(visual, audio, mask, amask)
    lv, la = out["logits"]["v"], out["logits"]["a"]
    for b, t in ((0, 0), (0, 6), (1, 2)):
        assert out["score"][b, t].item() == pytest.approx(lv[b, t].item() + 0.5 * la[b, t].item(), abs=1e-6)
    assert out["score"][0, 3].item() == pytest.approx(lv[0, 3].item(), abs=1e-6)
    assert out["head_masks"]["a"][0, 3].item() is False


def _training_grads(cfg: ModelConfig, visual: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gradients of the whole training loss (CE, HPCL 0.3, hard-pair 0.1, as ``pipeline.train``
    computes it) on one labelled batch of two videos, for a model built from seed 0."""
    from pipeline.objective import training_loss
    from pipeline.train_config import TrainConfig

    _, _, mask, amask = inputs()
    labels = torch.tensor([[0, 0, 1, 1, 0, 1, 0], [1, 1, 0, 0, 1, 0, 0]])
    batch = {"labels": labels, "targets": labels.float(), "mask": mask, "audio_mask": amask}
    torch.manual_seed(0)
    model = build_model(cfg, DV, DA)
    training_loss(model(visual, audio, mask, amask), batch, TrainConfig(lambda_hpcl=0.3, lambda_rank=0.1))["loss"].backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_training_loss_adds_the_listwise_term_with_its_weight():
    """lambda_list weighs ``losses.listwise_loss`` of every head against the batch's targets (not
    its labels) into the total; at 0 the term is not computed."""
    from pipeline.losses import listwise_loss
    from pipeline.objective import training_loss
    from pipeline.train_config import TrainConfig

    visual, audio, mask, amask = inputs()
    labels = torch.tensor([[0, 0, 1, 1, 0, 1, 0], [1, 1, 0, 0, 1, 0, 0]])
    targets = torch.linspace(0.0, 1.0, 14).reshape(2, 7)  # graded, unlike the labels
    batch = {"labels": labels, "targets": targets, "mask": mask, "audio_mask": amask}
    torch.manual_seed(0)
    model = build_model(tiny(variant="co_av"), DV, DA).eval()
    with torch.no_grad():
        out = model(visual, audio, mask, amask)
        off = training_loss(out, batch, TrainConfig())
        on = training_loss(out, batch, TrainConfig(lambda_list=2.0, list_tau=0.5))
    direct = listwise_loss(out["logits"], targets, mask, out["head_masks"], tau=0.5)
    assert off["loss_list"].item() == 0.0
    assert on["loss_list"].item() == pytest.approx(direct.item(), rel=1e-6) and direct.item() > 0
    assert on["loss"].item() == pytest.approx(off["loss"].item() + 2.0 * direct.item(), rel=1e-6)
    with pytest.raises(ValueError, match="list_tau"):
        TrainConfig(list_tau=0.0)


@pytest.mark.parametrize("variant", ["late_av", "co_av"])
def test_streams_train_on_their_own(variant):
    """late_av, and co_av with stream_training: own (the default): the whole training loss (CE and
    the contrastive terms on each stream's own embedding) gives the visual stream (and its head)
    the same gradient whatever the audio is, and the audio stream the same whatever the visual is."""
    visual, audio, _, _ = inputs()
    cfg = tiny(variant=variant)
    base, new_audio, new_visual = (_training_grads(cfg, visual, audio), _training_grads(cfg, visual, audio * 3 + 1),
                                   _training_grads(cfg, visual * 3 + 1, audio))
    for name, g in base.items():
        if name.startswith(("stream_v.", "heads.v.")):
            torch.testing.assert_close(new_audio[name], g, msg=name)
            assert not torch.allclose(new_visual[name], g), name
        if name.startswith(("stream_a.", "heads.a.")):
            torch.testing.assert_close(new_visual[name], g, msg=name)
            assert not torch.allclose(new_audio[name], g), name
    assert any(n.startswith("stream_v.") for n in base) and any(n.startswith("stream_a.") for n in base)


def test_joint_stream_training_couples_the_streams():
    """stream_training: joint (the paper's reading): the co-occurrence block and the contrastive
    terms on the concatenated embedding carry the audio into the visual stream's gradient."""
    visual, audio, _, _ = inputs()
    cfg = tiny(stream_training="joint")
    name = "stream_v.proj.weight"
    assert not torch.allclose(_training_grads(cfg, visual, audio)[name], _training_grads(cfg, visual, audio * 3 + 1)[name])


def test_single_stream_variants_ignore_the_other_modality():
    torch.manual_seed(0)
    visual, audio, mask, amask = inputs()
    v_only = build_model(tiny(variant="v_only"), DV, DA).eval()
    a_only = build_model(tiny(variant="a_only"), DV, DA).eval()
    with torch.no_grad():
        torch.testing.assert_close(v_only(visual, audio, mask, amask)["score"], v_only(visual, audio * 7, mask, amask)["score"])
        torch.testing.assert_close(a_only(visual, audio, mask, amask)["score"], a_only(visual * 7, audio, mask, amask)["score"])


def test_co_occurrence_sees_both_modalities_cross_attention_only_the_other():
    """CO-AV visual queries attend over [visual; audio]; CR-AV visual queries only over audio."""
    torch.manual_seed(0)
    visual, audio, mask, amask = inputs(B=1)
    for mode, expected_keys in (("co", 14), ("cr", 7)):
        model = build_model(tiny(variant=f"{mode}_av"), DV, DA).eval()
        seen = {}
        hook = model.cross.v_blocks[0].attn.register_forward_hook(lambda m, args, out: seen.update(k=args[1].shape[1]))
        with torch.no_grad():
            model(visual, audio, mask, amask)
        hook.remove()
        assert seen["k"] == expected_keys


def test_gradient_reaches_every_parameter():
    """co_av, late fusion, random G_init, shared-model domain embedding, all loss terms."""
    torch.manual_seed(0)
    model = build_model(tiny(global_init="random"), DV, DA, num_domains=3)
    visual, audio, mask, amask = inputs()
    amask[0, 2] = False
    labels = torch.tensor([[0, 0, 1, 1, 0, 1, 0], [1, 1, 0, 0, 1, 0, 0]])
    out = model(visual, audio, mask, amask, torch.tensor([0, 2]))
    loss = (
        ce_loss(out["logits"], labels.float(), mask, out["head_masks"])
        + 0.3 * hpcl_loss(out["emb"], labels, mask)
        + 0.1 * hard_pair_rank_loss(out["emb"], labels, mask)
    )
    loss.backward()
    for name, p in model.named_parameters():
        if name == "domain_emb.weight":  # only the rows of the domains in the batch
            assert p.grad[[0, 2]].abs().sum() > 0 and p.grad[1].abs().sum() == 0
            continue
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_config_validation_and_from_dict():
    cfg = ModelConfig.from_dict({"variant": "cr_av", "d_model": 32, "num_heads": 4})
    assert cfg.variant == "cr_av" and cfg.d_model == 32
    with pytest.raises(ValueError, match="unknown model params"):
        ModelConfig.from_dict({"varient": "co_av"})
    with pytest.raises(ValueError, match="variant"):
        ModelConfig(variant="va")
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="domain embedding"):
        build_model(tiny(), DV, DA, num_domains=2)(*inputs())


# ------------------------------------------------------------------ issue 8: inputs, position prior, G_init, baselines


def test_relative_bias_locality_prior_values():
    from pipeline.model import RelativePositionBias

    rel = RelativePositionBias(num_heads=3, max_offset=2, slope=0.5)
    # rows: offsets -2..2; head h starts at -0.5 / 2**h * |offset|
    expected = torch.tensor([[-1.0, -0.5, -0.25], [-0.5, -0.25, -0.125], [0.0, 0.0, 0.0],
                             [-0.5, -0.25, -0.125], [-1.0, -0.5, -0.25]])
    torch.testing.assert_close(rel.table.detach(), expected)
    assert torch.count_nonzero(RelativePositionBias(2, 2).table) == 0  # slope 0: the old zero start
    # the params reach the blocks: locality by default, zero on request, none without a relative code
    first = build_model(tiny(), DV, DA).stream_v.layers[0].rel.table
    assert first[0, 0].item() == pytest.approx(-0.5 * 16)
    zero = build_model(tiny(rel_pos_init="zero"), DV, DA).stream_v.layers[0].rel.table
    assert torch.count_nonzero(zero) == 0
    assert build_model(tiny(pos_encoding="none"), DV, DA).stream_v.layers[0].rel is None


@pytest.mark.parametrize("global_init", ["mean", "random"])
def test_global_context_query_is_a_learnable_g_init(global_init):
    """Paper 3.3 / Table 5: G_init is a parameter in R^d; `mean` starts it at the mean of the
    projected training segments, `random` leaves its random start; either way it trains."""
    torch.manual_seed(0)
    model = build_model(tiny(global_init=global_init, input_norm="pca", input_dim=4), DV, DA)
    g = torch.Generator().manual_seed(3)
    v_train, a_train = torch.randn(40, DV, generator=g) + 2.0, torch.randn(40, DA, generator=g) - 1.0
    before = model.stream_v.glob.g_init.detach().clone()
    model.fit_inputs(v_train, a_train, torch.ones(40, dtype=torch.bool))
    g_init = model.stream_v.glob.g_init
    assert isinstance(g_init, torch.nn.Parameter) and g_init.shape == (16,)
    with torch.no_grad():
        mean_proj = model.stream_v.proj(model.stream_v.inputs(v_train)).mean(0)
    if global_init == "mean":
        torch.testing.assert_close(g_init.detach(), mean_proj)
    else:
        torch.testing.assert_close(g_init.detach(), before)
        assert not torch.allclose(g_init.detach(), mean_proj)
    # the query no longer depends on the video's own mean: one query for every video
    visual, audio, mask, amask = inputs()
    out = model(visual, audio, mask, amask)
    out["score"].sum().backward()
    assert g_init.grad is not None and g_init.grad.abs().sum() > 0


def test_input_stage_pca_whiten_whitens_and_matches_exact_pca():
    from pipeline.inputs import InputStage

    g = torch.Generator().manual_seed(0)
    # 300 segments in 50-d with a decaying spectrum
    x = torch.randn(300, 50, generator=g) * torch.linspace(5.0, 0.1, 50) + 3.0
    stage = InputStage(50, "pca_whiten", 6)
    with pytest.raises(RuntimeError, match="before fit"):
        stage(x)
    stage.fit(x)
    y = stage(x)  # [300, 6]
    assert y.shape == (300, 6)
    torch.testing.assert_close(y.mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(y.T), torch.eye(6), atol=1e-3, rtol=0)
    # the same subspace as an exact eigen-decomposition of the covariance
    evals, evecs = torch.linalg.eigh(torch.cov(x.T.double()))
    top = evecs[:, -6:].float()  # [50, 6]
    proj = stage.proj / stage.proj.norm(dim=0, keepdim=True)
    torch.testing.assert_close((top.T @ proj).abs().max(0).values, torch.ones(6), atol=1e-3, rtol=0)
    # statistics are buffers: they travel in the state_dict and reload to the same map
    again = InputStage(50, "pca_whiten", 6)
    again.load_state_dict(stage.state_dict())
    torch.testing.assert_close(again(x[:5]), y[:5])
    # fewer segments than components: the missing directions output zeros, never NaN
    for mode in ("pca", "pca_whiten"):
        few = InputStage(50, mode, 6).fit(x[:4])
        out = few(x)
        assert torch.isfinite(out).all() and torch.count_nonzero(out[:, 3:]) == 0


def test_input_stage_pca_keeps_the_spectrum_under_one_scale():
    from pipeline.inputs import InputStage

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 50, generator=g) * torch.logspace(1.0, -1.0, 50) + 3.0  # std 10 down to 0.1
    y = InputStage(50, "pca", 6).fit(x)(x)  # [300, 6]
    cov = torch.cov(y.T)
    # uncorrelated components whose variances are the top 6 eigenvalues over their mean
    evals = torch.linalg.eigvalsh(torch.cov(x.T.double())).flip(0)[:6].float()  # descending
    torch.testing.assert_close(cov.diagonal(), evals / evals.mean(), atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(cov - torch.diag(cov.diagonal()), torch.zeros(6, 6), atol=2e-3, rtol=0)
    assert cov.diagonal().mean().item() == pytest.approx(1.0, abs=1e-3)
    assert cov[0, 0] > 2.5 * cov[5, 5]  # the strongest direction stays strongest (whitening would make them equal)
    # the same directions as pca_whiten: each output is the whitened one times sqrt(its variance)
    w = InputStage(50, "pca_whiten", 6).fit(x)(x)
    torch.testing.assert_close(y, w * cov.diagonal().sqrt(), atol=2e-3, rtol=2e-3)


def test_input_stage_standardize_and_none():
    from pipeline.inputs import InputStage

    x = torch.tensor([[1.0, 10.0, 5.0], [3.0, 10.0, 7.0], [5.0, 10.0, 9.0]])
    st = InputStage(3, "standardize").fit(x)
    # column 0: mean 3, sample std 2; column 1 constant -> 0; column 2: mean 7, std 2
    torch.testing.assert_close(st(x), torch.tensor([[-1.0, 0.0, -1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]))
    none = InputStage(3, "none")
    assert none(x) is x and none.out_dim == 3 and not list(none.buffers())
    with pytest.raises(ValueError, match="input normalisation"):
        InputStage(3, "whiten")


@pytest.mark.parametrize("variant,context", [("linear", 0), ("linear_ctx", 1)])
def test_linear_baselines_see_exactly_their_context(variant, context):
    torch.manual_seed(0)
    model = build_model(tiny(variant=variant, context=1, input_norm="standardize"), DV, DA).eval()
    g = torch.Generator().manual_seed(0)
    model.fit_inputs(torch.randn(50, DV, generator=g), torch.randn(50, DA, generator=g), torch.ones(50, dtype=torch.bool))
    visual, audio, mask, amask = inputs(B=1, T=7)
    with torch.no_grad():
        ref = model(visual, audio, mask, amask)
        changed = visual.clone()
        changed[0, 3] += 5.0  # change segment 3 only
        out = model(changed, audio, mask, amask)
    assert ref["emb"] is None and set(ref["logits"]) == {"lin"}
    moved = (out["score"][0] - ref["score"][0]).abs() > 1e-6
    expected = torch.zeros(7, dtype=torch.bool)
    expected[3 - context : 3 + context + 1] = True
    assert torch.equal(moved, expected)
    # audio is ignored where the segment has no audio
    silent = amask.clone()
    silent[0, 5] = False
    with torch.no_grad():
        a = model(visual, audio, mask, silent)["score"]
        b = model(visual, audio * torch.tensor([1, 1, 1, 1, 1, 9, 1.0])[None, :, None], mask, silent)["score"]
    torch.testing.assert_close(a, b)


def test_new_model_params_are_validated():
    with pytest.raises(ValueError, match="input_norm"):
        ModelConfig(input_norm="pca64")
    with pytest.raises(ValueError, match="rel_pos_init"):
        ModelConfig(rel_pos_init="alibi")
    with pytest.raises(ValueError, match="input_dim"):
        ModelConfig(input_dim=0)


def test_input_noise_perturbs_training_passes_only():
    """input_noise > 0: two training passes on the same input differ, evaluation passes do not;
    input_noise = 0: training passes are identical too (dropout 0)."""
    v, a, m, am = inputs()
    for noise, differs in ((0.5, True), (0.0, False)):
        torch.manual_seed(0)
        model = build_model(tiny(input_noise=noise), DV, DA)
        model.train()
        s1, s2 = model(v, a, m, am)["score"], model(v, a, m, am)["score"]
        assert (not torch.allclose(s1, s2)) == differs
        model.eval()
        assert torch.equal(model(v, a, m, am)["score"], model(v, a, m, am)["score"])
    with pytest.raises(ValueError, match="input_noise"):
        tiny(input_noise=-0.1)


def test_fusion_weights_travel_in_the_checkpoint_and_score_by_hand():
    """set_fusion_weights changes the score to the weighted logit sum computed by hand; the weights
    are in the state_dict, so a fresh model loading it scores the same; a checkpoint written
    before the buffer existed loads with the configured weights; fuse() under explicit weights
    equals the score of a model holding them."""
    visual, audio, mask, amask = inputs(B=1, T=4)
    torch.manual_seed(0)
    model = build_model(tiny(w_co=1.0, w_v=1.0, w_a=1.0), DV, DA).eval()
    model.set_fusion_weights((0.5, 1.0, 0.0))
    with torch.no_grad():
        out = model(visual, audio, mask, amask)
    co, v = out["logits"]["co"][0], out["logits"]["v"][0]
    torch.testing.assert_close(out["score"][0], 0.5 * co + v)
    state = model.state_dict()
    assert state["fusion_w"].tolist() == [0.5, 1.0, 0.0]
    fresh = build_model(tiny(), DV, DA).eval()
    fresh.load_state_dict(state, strict=True)
    assert fresh.fusion_weights == {"co": 0.5, "v": 1.0, "a": 0.0}
    with torch.no_grad():
        torch.testing.assert_close(fresh(visual, audio, mask, amask)["score"], out["score"])
        torch.testing.assert_close(model.fuse(out["logits"], mask, amask, (1.0, 1.0, 1.0)),
                                   build_model(tiny(), DV, DA).fuse(out["logits"], mask, amask))
    old = {k: t for k, t in state.items() if k != "fusion_w"}  # written before fusion_w existed
    legacy = build_model(tiny(w_a=2.0), DV, DA)
    legacy.load_state_dict(old, strict=True)
    assert legacy.fusion_weights == {"co": 1.0, "v": 1.0, "a": 2.0}
    for bad in ((1.0, -1.0, 1.0), (0.0, 0.0, 0.0), (1.0, 1.0)):
        with pytest.raises(ValueError, match="three numbers >= 0"):
            model.set_fusion_weights(bad)


def test_remove_top_takes_the_shared_directions_out_before_the_input_stage_by_hand():
    """remove_top = 1: the top principal direction of the training and background segments
    together (here e0, where the background spreads) is removed, x -> x - ((x - m) . e0) e0; the
    standardisation after it sees the other coordinates unchanged. Without the background the
    training segments' own top direction (e1) goes."""
    # x's coordinates are centred and uncorrelated, so e0, e1, e2 are exactly its principal directions
    x = torch.tensor([[1.0, 3.0, 0.5], [1.0, -3.0, -0.5], [-1.0, 2.0, -0.75], [-1.0, -2.0, 0.75]])
    bg = torch.tensor([[20.0, 0.0, 0.0], [-20.0, 0.0, 0.0], [30.0, 0.0, 0.0], [-30.0, 0.0, 0.0]])
    stage = InputStage(3, "standardize", remove_top=1).fit(x, bg)
    assert abs(float(stage.rm_dirs[0, 0])) == pytest.approx(1.0, abs=1e-5)
    assert stage.rm_mean.tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-6)
    torch.testing.assert_close(stage.remove_shared(x), torch.cat([torch.zeros(4, 1), x[:, 1:]], 1), atol=1e-5, rtol=0)
    rest = x[:, 1:]
    want = (rest - rest.mean(0)) / rest.std(0)  # the unbiased std, as the stage's
    torch.testing.assert_close(stage(x)[:, 1:], want, atol=1e-4, rtol=0)
    own = InputStage(3, "standardize", remove_top=1).fit(x)  # no background: x's top direction, e1
    assert abs(float(own.rm_dirs[1, 0])) == pytest.approx(1.0, abs=1e-3)
    # a point off the training set: its component along e0 is replaced by the mean's
    torch.testing.assert_close(stage.remove_shared(torch.tensor([[7.0, 1.0, 2.0]])), torch.tensor([[0.0, 1.0, 2.0]]),
                               atol=1e-5, rtol=0)


def test_remove_top_travels_in_the_state_dict_and_rejects_bad_settings():
    g = torch.Generator().manual_seed(0)
    x, bg = torch.randn(40, 6, generator=g), 5 * torch.randn(60, 6, generator=g)
    stage = InputStage(6, "pca", 3, remove_top=2).fit(x, bg)
    again = InputStage(6, "pca", 3, remove_top=2)
    again.load_state_dict(stage.state_dict())
    torch.testing.assert_close(again(x), stage(x))
    torch.testing.assert_close(stage.rm_dirs.T @ stage.rm_dirs, torch.eye(2), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="input_norm none"):
        InputStage(6, "none", remove_top=1)
    with pytest.raises(ValueError, match=r"model.input_remove_top\) must be in \[0, 6\) for 6-d features, got 6"):
        InputStage(6, "pca", 3, remove_top=6)
    with pytest.raises(ValueError, match="needs more than 2 training segments"):
        InputStage(6, "pca", 3, remove_top=2).fit(torch.randn(2, 6))
    with pytest.raises(ValueError, match="input_remove_top"):
        ModelConfig(input_norm="none", input_remove_top=1)


@pytest.mark.parametrize("variant", ["co_av", "linear"])
def test_models_fit_the_removed_directions_on_the_background_too(variant):
    """HPCLModel and the linear baseline hand the background's segments (audio: those with
    audio) to each modality's stage: the removed directions follow the background."""
    g = torch.Generator().manual_seed(0)
    visual, audio = torch.randn(30, DV, generator=g), torch.randn(30, DA, generator=g)
    amask = torch.ones(30, dtype=torch.bool)
    spread = torch.zeros(50, DV)
    spread[:, 0] = 40 * torch.randn(50, generator=g)  # the background spreads along e0
    bg_amask = torch.ones(50, dtype=torch.bool)
    bg_amask[:25] = False  # the audio stage sees only the background's second half
    bg_audio = torch.zeros(50, DA)
    bg_audio[:25, 0] = 1000 * torch.randn(25, generator=g)  # silent segments: must not count
    bg_audio[25:, 1] = 40 * torch.randn(25, generator=g)
    model = build_model(tiny(variant=variant, input_norm="pca", input_dim=4, input_remove_top=1), DV, DA)
    model.fit_inputs(visual, audio, amask, background=(spread, bg_audio, bg_amask))
    stages = (model.in_v, model.in_a) if variant == "linear" else (model.stream_v.inputs, model.stream_a.inputs)
    assert abs(float(stages[0].rm_dirs[0, 0])) == pytest.approx(1.0, abs=1e-3)
    assert abs(float(stages[1].rm_dirs[1, 0])) == pytest.approx(1.0, abs=1e-3)
