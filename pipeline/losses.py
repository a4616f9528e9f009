"""The three training losses of HPCL (paper section 3.4, equations 3-6).

- ``hpcl_loss``: supervised, dense, segment-to-segment contrastive loss inside each video (eq. 3).
- ``hard_pair_rank_loss``: hinge loss on the hard pairs around label boundaries (eq. 4).
- ``ce_loss``: binary cross-entropy on every classifier head (eq. 5).
- ``av_agreement_loss``: label-free audio-visual correspondence between the two streams (not in
  the paper; ``loss.lambda_av``, off by default).

Shapes: ``B`` videos in a batch, ``T`` segments (padded), ``D`` embedding size. ``mask`` is
``[B, T]`` bool with True on real segments; padded positions never count in any loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _full_mask(labels: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``mask`` as bool ``[B, T]`` (all True when None), checked against ``labels``."""
    if mask is None:
        return torch.ones(labels.shape, dtype=torch.bool, device=labels.device)
    if mask.shape != labels.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != labels shape {tuple(labels.shape)}")
    return mask.to(torch.bool)


def _check(emb: torch.Tensor, labels: torch.Tensor) -> None:
    if emb.dim() != 3 or labels.dim() != 2 or emb.shape[:2] != labels.shape:
        raise ValueError(
            f"expected emb [B, T, D] and labels [B, T], got {tuple(emb.shape)} and {tuple(labels.shape)}"
        )


def hpcl_loss(
    emb: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None, tau: float = 0.1
) -> torch.Tensor:
    """Supervised dense contrastive loss within each video (paper eq. 3).

    emb [B, T, D] (not normalised; L2-normalised here), labels [B, T] in {0, 1}, mask [B, T] bool.
    For a query segment i: positives P_i = the other real segments with its label, negatives N_i =
    the real segments with the other label, z = emb / ||emb||,
    ``loss_i = mean_{p in P_i} -log(exp(z_i.z_p/tau) / (exp(z_i.z_p/tau) + sum_{n in N_i} exp(z_i.z_n/tau)))``.
    A query with empty P_i or N_i contributes nothing; a video's loss is the mean over its
    contributing queries; the batch loss is the mean over videos with at least one contributing
    query (0 when there is none). Returns a scalar tensor.

    The paper's printed eq. 3 writes ``exp(q . k+)`` without ``/ tau`` in the denominator while the
    numerator and the negatives carry it; we read that as a typo and divide every term by tau
    (the numerator then is one of the denominator's terms, as in every InfoNCE/SupCon form).
    """
    _check(emb, labels)
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    B, T, _ = emb.shape
    valid = _full_mask(labels, mask)  # [B, T]
    z = F.normalize(emb, dim=-1)  # [B, T, D]
    sim = z @ z.transpose(1, 2) / tau  # [B, T, T] s_ij = z_i.z_j / tau
    lab = labels.to(torch.long)
    same = lab[:, :, None] == lab[:, None, :]  # [B, T, T]
    pair_ok = valid[:, :, None] & valid[:, None, :]  # [B, T, T] both real
    not_self = ~torch.eye(T, dtype=torch.bool, device=emb.device)  # [T, T]
    pos = pair_ok & same & not_self  # [B, T, T] positives of query i
    neg = pair_ok & ~same  # [B, T, T] negatives of query i
    n_pos = pos.sum(-1)  # [B, T]
    has_neg = neg.any(-1)  # [B, T]
    # log sum_n exp(s_in); rows without negatives get a finite dummy (they never contribute), so
    # that neither the value nor the gradient of logsumexp sees a row of -inf only.
    neg_sim = sim.masked_fill(~neg, float("-inf"))  # [B, T, T]
    neg_sim = torch.where(has_neg[:, :, None], neg_sim, torch.zeros_like(sim))
    neg_lse = torch.logsumexp(neg_sim, dim=-1)  # [B, T]
    # -log(e^s_ip / (e^s_ip + sum_n e^s_in)) = log(e^s_ip + e^neg_lse) - s_ip
    pair_loss = torch.logaddexp(sim, neg_lse[:, :, None]) - sim  # [B, T, T]
    pair_loss = torch.where(pos, pair_loss, torch.zeros_like(pair_loss))
    contrib = valid & (n_pos > 0) & has_neg  # [B, T] contributing queries
    query_loss = pair_loss.sum(-1) / n_pos.clamp_min(1)  # [B, T]
    n_q = contrib.sum(-1)  # [B]
    video_loss = torch.where(contrib, query_loss, torch.zeros_like(query_loss)).sum(-1)  # [B]
    video_loss = video_loss / n_q.clamp_min(1)  # [B]
    has_q = n_q > 0  # [B]
    if not bool(has_q.any()):
        return emb.sum() * 0.0
    return video_loss[has_q].mean()


def hard_pair_pairs(labels: torch.Tensor, region: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """The hard pairs of one video (paper section 3.4, read literally).

    labels [T] in {0, 1} -> (a [P], b [P]) segment indices. Watersheds are the indices c,
    1 <= c <= T-1, with labels[c] != labels[c-1]; for each, the pairs are (c-k, c+k) for
    k = 1..region, an index outside [0, T-1] being replaced by c itself; pairs whose two labels
    are equal are dropped. A pair produced by two watersheds appears twice.
    """
    T = labels.shape[0]
    lab = labels.to(torch.long)
    c = torch.nonzero(lab[1:] != lab[:-1]).flatten() + 1  # [W] watersheds
    k = torch.arange(1, region + 1, device=labels.device)  # [L]
    a = c[:, None] - k[None, :]  # [W, L]
    b = c[:, None] + k[None, :]  # [W, L]
    cc = c[:, None].expand_as(a)  # [W, L]
    a = torch.where(a < 0, cc, a).flatten()  # [W*L]
    b = torch.where(b > T - 1, cc, b).flatten()  # [W*L]
    keep = lab[a] != lab[b]
    return a[keep], b[keep]


def hard_pair_rank_loss(
    emb: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    margin: float = 0.7,
    region: int = 3,
) -> torch.Tensor:
    """Hinge loss on hard pairs around label boundaries (paper eq. 4).

    emb [B, T, D] (L2-normalised here), labels [B, T] in {0, 1}, mask [B, T] bool. Per video the
    real segments (mask True, in order) form the sequence; its pairs come from
    ``hard_pair_pairs``; its loss is ``sum over pairs of max(margin - ||z_a - z_b||_2, 0)``.
    The batch loss is the mean over all B videos, a video without pairs counting 0. Returns a
    scalar tensor.
    """
    _check(emb, labels)
    if region < 1:
        raise ValueError(f"region must be >= 1, got {region}")
    B = emb.shape[0]
    valid = _full_mask(labels, mask)  # [B, T]
    z = F.normalize(emb, dim=-1)  # [B, T, D]
    total = emb.sum() * 0.0
    for i in range(B):
        idx = torch.nonzero(valid[i]).flatten()  # [T_i] real segments in order
        if idx.numel() < 2:
            continue
        zi = z[i, idx]  # [T_i, D]
        a, b = hard_pair_pairs(labels[i, idx], region)
        if a.numel() == 0:
            continue
        sq = (zi[a] - zi[b]).pow(2).sum(-1)  # [P]
        dist = sq.clamp_min(1e-12).sqrt()  # [P] finite gradient even for identical embeddings
        total = total + torch.relu(margin - dist).sum()
    return total / B


def _heads(logits: dict[str, torch.Tensor], target: torch.Tensor, mask: torch.Tensor | None,
           head_masks: dict[str, torch.Tensor] | None, loss_name: str):
    """Per classifier head: (its logits [B, T], where it is trained [B, T] bool: the real
    segments, narrowed by the head's own mask if it has one). Checks the shapes."""
    if not logits:
        raise ValueError(f"{loss_name} needs at least one head")
    head_masks = head_masks or {}
    valid = _full_mask(target, mask)  # [B, T]
    for name, logit in logits.items():
        if logit.shape != target.shape:
            raise ValueError(f"head {name!r}: logits {tuple(logit.shape)} != target {tuple(target.shape)}")
        yield logit, (valid & head_masks[name].to(torch.bool) if name in head_masks else valid)


def ce_loss(
    logits: dict[str, torch.Tensor],
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    head_masks: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Binary cross-entropy summed over the classifier heads (paper eq. 5).

    logits: head name -> [B, T] logits; target [B, T] in [0, 1] (binary labels, or the TVSum
    regression targets ``(sum - 20) / 80`` used as soft targets); mask [B, T] bool; head_masks:
    optional head name -> [B, T] bool narrowing where that head is trained (the audio head is
    not trained on segments without audio). Each head's term is the mean over its valid
    segments of the whole batch (0 if it has none); the heads' terms are summed.
    """
    target = target.to(torch.float32)
    total = None
    for logit, m in _heads(logits, target, mask, head_masks, "ce_loss"):  # [B, T] each
        bce = F.binary_cross_entropy_with_logits(logit, target, reduction="none")  # [B, T]
        term = torch.where(m, bce, torch.zeros_like(bce)).sum() / m.sum().clamp_min(1)
        total = term if total is None else total + term
    return total


def av_agreement_loss(
    emb_v: torch.Tensor, emb_a: torch.Tensor, mask: torch.Tensor, audio_mask: torch.Tensor,
    tau: float = 0.1, window: int = 1,
) -> torch.Tensor:
    """Label-free audio-visual correspondence inside each video (not in the paper).

    emb_v, emb_a [B, T, D] (L2-normalised here); mask [B, T] real segments; audio_mask [B, T]
    segments with audio. For a visual segment t, the audio segments within ``window`` of t are
    positives and the other audio segments of its video negatives (InfoNCE over several
    positives, ``-log sum_pos exp(s/tau) / sum_all exp(s/tau)``, ``s`` the cosine similarity),
    and symmetrically for an audio segment: the streams learn what the two modalities share
    within a segment or so (a delay of up to ``window`` segments tolerated), which is what tells
    a highlight from a one-modality distractor. Mean over the queries that have a positive and a
    negative (0 if none).
    """
    if emb_v.shape != emb_a.shape or emb_v.dim() != 3 or not mask.shape == audio_mask.shape == emb_v.shape[:2]:
        raise ValueError(f"expected emb_v, emb_a [B, T, D] and masks [B, T], got {tuple(emb_v.shape)}, "
                         f"{tuple(emb_a.shape)}, {tuple(mask.shape)}")
    T = emb_v.shape[1]
    valid = mask.to(torch.bool) & audio_mask.to(torch.bool)  # [B, T] both modalities present
    sim = F.normalize(emb_v, dim=-1) @ F.normalize(emb_a, dim=-1).transpose(1, 2) / tau  # [B, Tv, Ta]
    t = torch.arange(T, device=emb_v.device)
    near = (t[:, None] - t[None, :]).abs() <= window  # [T, T]
    pair = valid[:, :, None] & valid[:, None, :]  # [B, T, T]
    pos, allowed = pair & near[None], pair
    total, count = sim.new_zeros(()), sim.new_zeros(())
    for s, p, a in ((sim, pos, allowed), (sim.transpose(1, 2), pos.transpose(1, 2), allowed.transpose(1, 2))):
        neg_inf = torch.full_like(s, -1e4)  # finite: rows without any key keep finite gradients
        lse_pos = torch.logsumexp(torch.where(p, s, neg_inf), dim=-1)  # [B, T]
        lse_all = torch.logsumexp(torch.where(a, s, neg_inf), dim=-1)  # [B, T]
        q = p.any(-1) & (a & ~p).any(-1)  # [B, T] queries with a positive and a negative
        total = total + torch.where(q, lse_all - lse_pos, torch.zeros_like(lse_all)).sum()
        count = count + q.sum()
    return total / count.clamp_min(1)


def listwise_loss(
    logits: dict[str, torch.Tensor],
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    head_masks: dict[str, torch.Tensor] | None = None,
    tau: float = 0.1,
) -> torch.Tensor:
    """Top-heavy listwise ranking within each video (ListNet; not in the paper).

    logits: head name -> [B, T]; target [B, T] graded relevance (TVSum: ``(sum - 20) / 80``, the
    mean annotator score in [0, 1]; binary labels elsewhere); mask [B, T] bool; head_masks as in
    ``ce_loss``. Per video and head, over its valid segments: the cross-entropy
    ``-sum_t q_t log softmax(logit)_t`` with ``q = softmax(target / tau)``, so a small ``tau``
    puts the target's mass on the video's best segments, which is what a top-k protocol counts.
    It is invariant to a constant added to a video's logits: only the order inside the video
    is trained. Videos (per head) with fewer than two valid segments or one target value for
    all of them carry no ranking and are left out; the loss is the mean over the videos left
    (0 if none), summed over the heads.
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    target = target.to(torch.float32)
    total = None
    for logit, m in _heads(logits, target, mask, head_masks, "listwise_loss"):  # [B, T] each
        neg_inf = torch.full_like(logit, -1e4)  # finite: fully masked rows keep finite gradients
        log_p = torch.log_softmax(torch.where(m, logit, neg_inf), dim=-1)  # [B, T]
        q = torch.softmax(torch.where(m, target / tau, neg_inf), dim=-1)  # [B, T]
        big = torch.finfo(target.dtype).max
        t_max = torch.where(m, target, torch.full_like(target, -big)).amax(-1)  # [B]
        t_min = torch.where(m, target, torch.full_like(target, big)).amin(-1)  # [B]
        ranked = (m.sum(-1) >= 2) & (t_max > t_min)  # [B] videos with an order to learn
        ce = -(torch.where(m, q * log_p, torch.zeros_like(log_p))).sum(-1)  # [B]
        term = torch.where(ranked, ce, torch.zeros_like(ce)).sum() / ranked.sum().clamp_min(1)
        total = term if total is None else total + term
    return total
