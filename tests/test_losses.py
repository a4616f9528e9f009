"""The HPCL losses against values computed on paper and against naive loop implementations."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.losses import ce_loss, hard_pair_pairs, hard_pair_rank_loss, hpcl_loss, listwise_loss


pytestmark = pytest.mark.usefixtures("one_torch_thread")


E = math.e


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32)


# --- hpcl_loss ------------------------------------------------------------------------------


def naive_hpcl(emb, labels, mask, tau):
    """Direct transcription of the issue's definition with Python loops."""
    video_losses = []
    for b in range(emb.shape[0]):
        idx = [t for t in range(emb.shape[1]) if mask[b, t]]
        z = {t: emb[b, t] / emb[b, t].norm() for t in idx}
        q_losses = []
        for i in idx:
            P = [p for p in idx if p != i and labels[b, p] == labels[b, i]]
            N = [n for n in idx if labels[b, n] != labels[b, i]]
            if not P or not N:
                continue
            neg = sum(math.exp(float(z[i] @ z[n]) / tau) for n in N)
            terms = []
            for p in P:
                e = math.exp(float(z[i] @ z[p]) / tau)
                terms.append(-math.log(e / (e + neg)))
            q_losses.append(sum(terms) / len(terms))
        if q_losses:
            video_losses.append(sum(q_losses) / len(q_losses))
    return sum(video_losses) / len(video_losses) if video_losses else 0.0


def test_hpcl_hand_computed():
    # z0=(1,0) y=1, z1=(0,1) y=1, z2=(1,0) y=0, z3=(-1,0) y=0, tau=1 (numbers on paper):
    # q0: P={1} s=0, N s=1,-1    -> log(1 + e + 1/e)
    # q1: P={0} s=0, N s=0,0     -> log 3
    # q2: P={3} s=-1, N s=1,0    -> 1 + log(1/e + e + 1)
    # q3: P={2} s=-1, N s=-1,0   -> 1 + log(2/e + 1)
    emb = _t([[[2.0, 0.0], [0.0, 0.5], [3.0, 0.0], [-1.0, 0.0]]])  # not normalised on purpose
    labels = torch.tensor([[1, 1, 0, 0]])
    expected = (math.log(1 + E + 1 / E) + math.log(3) + 1 + math.log(1 / E + E + 1) + 1 + math.log(2 / E + 1)) / 4
    got = hpcl_loss(emb, labels, tau=1.0)
    assert got.item() == pytest.approx(expected, abs=1e-6)


def test_hpcl_tau_divides_every_term():
    # labels [1, 1, 0]; z0 = z1 = (1,0), z2 = (0,1); tau = 0.5:
    # q0: s01 = 2, s02 = 0 -> -log(e^2 / (e^2 + 1)); q1 the same; q2 has no positive (no term).
    emb = _t([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    labels = torch.tensor([[1, 1, 0]])
    expected = -math.log(E**2 / (E**2 + 1))
    assert hpcl_loss(emb, labels, tau=0.5).item() == pytest.approx(expected, abs=1e-6)
    # the printed formula's denominator without tau would give -log(e^2 / (e^1 + 1)): not that
    assert abs(hpcl_loss(emb, labels, tau=0.5).item() - (-math.log(E**2 / (E + 1)))) > 0.1


def test_hpcl_matches_naive_loops_with_masks():
    g = torch.Generator().manual_seed(0)
    B, T, D = 3, 9, 5
    emb = torch.randn(B, T, D, generator=g)
    labels = (torch.rand(B, T, generator=g) > 0.5).long()
    labels[2] = 1  # a video with one label only: no contributing query
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, 6:] = False
    mask[1, 4:] = False
    for tau in (0.1, 0.7):
        got = hpcl_loss(emb, labels, mask, tau=tau).item()
        assert got == pytest.approx(naive_hpcl(emb, labels, mask, tau), rel=1e-5)


def test_hpcl_padding_never_counts_and_no_contribution_is_zero():
    emb = _t([[[2.0, 0.0], [0.0, 0.5], [3.0, 0.0], [-1.0, 0.0]]])
    labels = torch.tensor([[1, 1, 0, 0]])
    base = hpcl_loss(emb, labels, tau=1.0)
    padded = torch.cat([emb, _t([[[5.0, 5.0], [-3.0, 1.0]]])], dim=1)  # [1, 6, 2]
    plab = torch.tensor([[1, 1, 0, 0, 0, 1]])
    pmask = torch.tensor([[True] * 4 + [False] * 2])
    assert hpcl_loss(padded, plab, pmask, tau=1.0).item() == pytest.approx(base.item(), abs=1e-6)
    # a second video with a single label adds nothing to the batch mean
    batch = torch.cat([emb, emb * 2], dim=0)
    blab = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]])
    assert hpcl_loss(batch, blab, tau=1.0).item() == pytest.approx(base.item(), abs=1e-6)
    # nothing contributes -> 0, and backward still works
    e = emb.clone().requires_grad_(True)
    zero = hpcl_loss(e, torch.zeros(1, 4, dtype=torch.long))
    zero.backward()
    assert zero.item() == 0.0 and torch.all(e.grad == 0)


def test_hpcl_gradient_finite_with_zero_and_padded_rows():
    emb = torch.randn(2, 5, 3)
    emb[0, 4] = 0.0  # an all-zero padded embedding
    emb.requires_grad_(True)
    labels = torch.tensor([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1]])
    mask = torch.tensor([[True] * 4 + [False], [True] * 5])
    hpcl_loss(emb, labels, mask).backward()
    assert torch.isfinite(emb.grad).all()
    assert torch.all(emb.grad[0, 4] == 0)  # padding gets no gradient


# --- hard_pair_rank_loss ----------------------------------------------------------------------


def naive_rank(emb, labels, mask, margin, region):
    total = 0.0
    for b in range(emb.shape[0]):
        idx = [t for t in range(emb.shape[1]) if mask[b, t]]
        y = [int(labels[b, t]) for t in idx]
        z = [emb[b, t] / emb[b, t].norm() for t in idx]
        T = len(idx)
        for c in range(1, T):
            if y[c] == y[c - 1]:
                continue
            for k in range(1, region + 1):
                a = c - k if c - k >= 0 else c
                bb = c + k if c + k <= T - 1 else c
                if y[a] != y[bb]:
                    total += max(margin - float((z[a] - z[bb]).norm()), 0.0)
    return total / emb.shape[0]


def test_hard_pairs_read_literally():
    # labels [0,0,1,1,1,0], L=2: watersheds 2 and 5; c=2 -> (1,3), (0,4); c=5 -> (4,5), (3,5)
    a, b = hard_pair_pairs(torch.tensor([0, 0, 1, 1, 1, 0]), region=2)
    assert list(zip(a.tolist(), b.tolist())) == [(1, 3), (0, 4), (4, 5), (3, 5)]
    # labels [0,1,1,0], L=2: c=1 -> (0,2), (1,3); c=3 -> (2,3), (1,3) again: counted twice
    a, b = hard_pair_pairs(torch.tensor([0, 1, 1, 0]), region=2)
    assert list(zip(a.tolist(), b.tolist())) == [(0, 2), (1, 3), (2, 3), (1, 3)]
    # equal-label pairs are dropped: [1,0,1], L=1: c=1 -> (0,2) dropped; c=2 -> (1, 3->2) kept
    a, b = hard_pair_pairs(torch.tensor([1, 0, 1]), region=1)
    assert list(zip(a.tolist(), b.tolist())) == [(1, 2)]
    a, b = hard_pair_pairs(torch.tensor([1, 1, 1]), region=3)
    assert a.numel() == 0


def test_rank_loss_hand_computed():
    # labels [0,0,1,1,1,0], L=2, margin 1.5; pairs (1,3),(0,4),(4,5),(3,5)
    # z = (1,0),(1,0),(0,1),(0,1),(1,0),(1,0): d(1,3)=sqrt2, d(0,4)=0, d(4,5)=0, d(3,5)=sqrt2
    emb = _t([[[1, 0], [2, 0], [0, 1], [0, 3], [1, 0], [0.5, 0]]])
    labels = torch.tensor([[0, 0, 1, 1, 1, 0]])
    expected = 2 * (1.5 - math.sqrt(2)) + 1.5 + 1.5
    got = hard_pair_rank_loss(emb, labels, margin=1.5, region=2)
    assert got.item() == pytest.approx(expected, abs=1e-5)


def test_rank_loss_double_count_batch_mean_and_padding():
    # labels [0,1,1,0], L=2, margin 1: pairs (0,2),(1,3),(2,3),(1,3)
    # z = (1,0),(0,1),(1,0),(0,1): d = 0, 0, sqrt2, 0 -> 1 + 1 + 0 + 1 = 3
    emb = _t([[[1, 0], [0, 1], [1, 0], [0, 1]]])
    labels = torch.tensor([[0, 1, 1, 0]])
    assert hard_pair_rank_loss(emb, labels, margin=1.0, region=2).item() == pytest.approx(3.0, abs=1e-5)
    # a video without pairs counts 0 in the mean over all videos
    batch = torch.cat([emb, emb], 0)
    blab = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1]])
    assert hard_pair_rank_loss(batch, blab, margin=1.0, region=2).item() == pytest.approx(1.5, abs=1e-5)
    # padded segments with another label would add a watershed if they counted
    padded = torch.cat([emb, _t([[[1, 0], [1, 0]]])], 1)
    plab = torch.tensor([[0, 1, 1, 0, 1, 1]])
    pmask = torch.tensor([[True] * 4 + [False] * 2])
    assert hard_pair_rank_loss(padded, plab, pmask, margin=1.0, region=2).item() == pytest.approx(3.0, abs=1e-5)


def test_rank_loss_matches_naive_loops_and_gradient_finite():
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(3, 12, 4, generator=g)
    emb[0, 3] = emb[0, 4]  # identical embeddings across a boundary: distance 0
    labels = (torch.rand(3, 12, generator=g) > 0.5).long()
    labels[0, 3], labels[0, 4] = 0, 1
    mask = torch.ones(3, 12, dtype=torch.bool)
    mask[1, 8:] = False
    for margin, region in ((0.7, 3), (1.2, 1)):
        got = hard_pair_rank_loss(emb, labels, mask, margin=margin, region=region).item()
        assert got == pytest.approx(naive_rank(emb, labels, mask, margin, region), abs=1e-4)
    e = emb.clone().requires_grad_(True)
    hard_pair_rank_loss(e, labels, mask).backward()
    assert torch.isfinite(e.grad).all()


# --- ce_loss ----------------------------------------------------------------------------------


def test_ce_loss_hand_computed_masks_and_soft_targets():
    target = _t([[1, 0, 1], [0, 1, 0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    zero = torch.zeros(2, 3)
    # logit 0 -> log 2 per segment whatever the target; two heads -> 2 log 2
    assert ce_loss({"v": zero, "a": zero}, target, mask).item() == pytest.approx(2 * math.log(2), abs=1e-6)
    # logit log 3 -> p = 0.75: BCE = -log 0.75 for target 1, -log 0.25 for target 0
    l3 = torch.full((2, 3), math.log(3))
    expected = (-math.log(0.75) * 2 - math.log(0.25) * 2) / 4
    assert ce_loss({"co": l3}, target, mask).item() == pytest.approx(expected, abs=1e-6)
    # a head mask narrows where the audio head is trained: only (0,0) and (0,1)
    head_mask = torch.tensor([[True, True, False], [False, True, True]])
    got = ce_loss({"a": l3}, target, mask, {"a": head_mask}).item()
    assert got == pytest.approx((-math.log(0.75) - math.log(0.25)) / 2, abs=1e-6)
    # soft (regression) targets: y = 0.25 -> -(0.25 log 0.75 + 0.75 log 0.25)
    soft = torch.full((1, 1), 0.25)
    got = ce_loss({"v": torch.full((1, 1), math.log(3))}, soft).item()
    assert got == pytest.approx(-(0.25 * math.log(0.75) + 0.75 * math.log(0.25)), abs=1e-6)


def test_losses_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"\[B, T, D\]"):
        hpcl_loss(torch.zeros(4, 2), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="mask shape"):
        hard_pair_rank_loss(torch.zeros(1, 4, 2), torch.zeros(1, 4), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="head 'v'"):
        ce_loss({"v": torch.zeros(1, 3)}, torch.zeros(1, 4))


def test_av_agreement_loss_by_hand():
    """T = 3 orthonormal segments, the audio equal to the visual: cosine similarity is the identity."""
    import math

    from pipeline.losses import av_agreement_loss

    e = torch.eye(3)[None]  # [1, 3, 3]
    full = torch.ones(1, 3, dtype=torch.bool)
    got = av_agreement_loss(e, e.clone(), full, full, tau=1.0, window=0)
    assert got.item() == pytest.approx(math.log(math.e + 2) - 1)  # one positive (itself), two negatives
    # window 1: segments 0 and 2 have positives {t, 1} and one negative; segment 1 has no negative
    got = av_agreement_loss(e, e.clone(), full, full, tau=1.0, window=1)
    assert got.item() == pytest.approx(math.log(math.e + 2) - math.log(math.e + 1))
    # no audio on segment 2: it is neither a query nor a key
    audio = torch.tensor([[True, True, False]])
    got = av_agreement_loss(e, e.clone(), full, audio, tau=1.0, window=0)
    assert got.item() == pytest.approx(math.log(math.e + 1) - 1)
    # one valid segment: no query has a negative -> 0, with finite gradients
    v = e.clone().requires_grad_(True)
    one = torch.tensor([[True, False, False]])
    loss = av_agreement_loss(v, e.clone(), one, full, tau=0.1, window=1)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(v.grad).all()
    with pytest.raises(ValueError, match="emb_v"):
        av_agreement_loss(e, e[:, :2], full, full)


def test_listwise_loss_by_hand():
    """q = softmax(target / tau), loss = -sum q log softmax(logits): tau = 1 / ln 2 makes the
    targets [1, 0] a q of [2/3, 1/3]; logits [ln 3, 0] a p of [3/4, 1/4]."""
    tau = 1.0 / math.log(2.0)
    target = torch.tensor([[1.0, 0.0]])
    flat = listwise_loss({"h": torch.zeros(1, 2)}, target, tau=tau)
    assert flat.item() == pytest.approx(math.log(2.0), abs=1e-6)
    tilted = listwise_loss({"h": torch.tensor([[math.log(3.0), 0.0]])}, target, tau=tau)
    expected = -(2 / 3 * math.log(3 / 4) + 1 / 3 * math.log(1 / 4))
    assert tilted.item() == pytest.approx(expected, abs=1e-6)
    # two heads: their terms add up
    both = listwise_loss({"a": torch.zeros(1, 2), "b": torch.tensor([[math.log(3.0), 0.0]])}, target, tau=tau)
    assert both.item() == pytest.approx(math.log(2.0) + expected, abs=1e-6)


def test_listwise_loss_padding_flat_videos_head_masks_and_shift():
    """Padding and head-masked segments never count; a video whose targets are all equal (or
    with one segment) is left out of the mean; a constant added to a video's logits changes
    nothing (only the order inside a video is trained)."""
    tau = 1.0 / math.log(2.0)
    logits = torch.tensor([[math.log(3.0), 0.0, 9.0],   # video 0: third slot is padding
                           [5.0, 5.0, 5.0],             # video 1: flat targets -> left out
                           [1.0, 0.0, 0.0]])            # video 2: one valid segment -> left out
    target = torch.tensor([[1.0, 0.0, 1.0], [0.3, 0.3, 0.3], [1.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, True, True], [True, False, False]])
    expected = -(2 / 3 * math.log(3 / 4) + 1 / 3 * math.log(1 / 4))
    got = listwise_loss({"h": logits}, target, mask, tau=tau)
    assert got.item() == pytest.approx(expected, abs=1e-6)
    shifted = listwise_loss({"h": logits + torch.tensor([[100.0], [-3.0], [7.0]])}, target, mask, tau=tau)
    assert shifted.item() == pytest.approx(expected, abs=1e-5)
    # a head mask hiding video 0's second segment leaves it one segment: nothing left to rank
    hm = torch.tensor([[True, False, False], [True, True, True], [True, True, True]])
    assert listwise_loss({"h": logits}, target, mask, {"h": hm}, tau=tau).item() == 0.0


def test_listwise_loss_is_top_heavy_and_trains_the_order():
    """A smaller tau puts more of the target on the best segment; descending the loss on free
    logits orders them as the targets."""
    target = torch.tensor([[0.9, 0.6, 0.5, 0.1]])
    logits = torch.zeros(1, 4, requires_grad=True)
    grads = []
    for tau in (1.0, 0.1):
        g, = torch.autograd.grad(listwise_loss({"h": logits}, target, tau=tau), logits)
        grads.append(g[0, 0].item())
    assert grads[1] < grads[0] < 0  # the best segment is pushed up, harder at tau 0.1
    opt = torch.optim.SGD([logits], lr=1.0)
    for _ in range(200):
        opt.zero_grad()
        listwise_loss({"h": logits}, target, tau=0.1).backward()
        opt.step()
    assert torch.argsort(logits[0], descending=True).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="tau"):
        listwise_loss({"h": logits}, target, tau=0.0)
    with pytest.raises(ValueError, match="head 'h'"):
        listwise_loss({"h": torch.zeros(1, 3)}, target)
