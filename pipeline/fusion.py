"""Late fusion of the HPCL model's head logits (``model.fusion_score``: the paper's "weighted
sum" of the head scores, whose form it leaves open).

The heads are co-occurrence (``co``), intra-visual (``v``) and intra-audio (``a``), weighted by
``(w_co, w_v, w_a)`` (``model.w_*``, or chosen by cross-validation from ``train.fusion_grid``).
Fusion is applied at scoring only: each head trains on its own loss terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FUSION_SCORES = ("logit", "probability", "min")
FUSION_HEADS = ("co", "v", "a")  # the order of (w_co, w_v, w_a)


def check_fusion_weights(weights, what: str = "late-fusion weights (w_co, w_v, w_a)") -> None:
    """Three weights, each >= 0, not all 0; else ValueError naming ``what``."""
    ok = isinstance(weights, (list, tuple)) and len(weights) == 3
    ok = ok and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)
    if not ok or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"{what} must be three numbers >= 0, not all 0; got {weights!r}")


def fuse_logits(logits: dict[str, torch.Tensor], audio_mask: torch.Tensor, rule: str,
                fusion_weights: dict[str, float]) -> torch.Tensor:
    """Late fusion of the heads' logits {head: [B, T]} under {head: weight} -> [B, T].

    logit: ``sum_k w_k l_k``. probability: the logit of ``p = sum_k w_k sigmoid(l_k) /
    sum_k w_k``, computed in log space. min: ``w_co l_co + (w_v + w_a) min(l_v, l_a)``, the
    min over the stream heads (v, a) of nonzero weight. The audio head's weight is 0 on
    segments without audio (unless it is the only head with a nonzero weight). One head: its
    own logit.
    """
    if len(logits) == 1:
        return next(iter(logits.values()))
    weights = {}
    for name, l in logits.items():
        w = torch.full_like(l, float(fusion_weights[name]))  # [B, T]
        if name == "a" and sum(fusion_weights[k] for k in logits if k != "a") > 0:
            w = torch.where(audio_mask, w, torch.zeros_like(w))
        weights[name] = w
    if rule == "logit":
        return sum(weights[k] * l for k, l in logits.items())  # [B, T]
    if rule == "min":
        return _conjunction(logits, weights)
    log_p, log_q = [], []
    for name, l in logits.items():
        lw = torch.log(weights[name])  # -inf where the weight is 0
        log_p.append(lw + F.logsigmoid(l))
        log_q.append(lw + F.logsigmoid(-l))
    # the normaliser sum_k w_k cancels in log p - log (1 - p)
    return torch.logsumexp(torch.stack(log_p), 0) - torch.logsumexp(torch.stack(log_q), 0)  # [B, T]


def _conjunction(logits: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """``fusion_score: min``: {head: logit [B, T]}, {head: weight [B, T]} -> ``w_co l_co + (w_v +
    w_a) min(l_v, l_a)`` [B, T], the min taken per segment over the stream heads whose weight
    there is nonzero (so on a segment without audio, whose audio weight is 0, it is ``w_v l_v``;
    with both stream weights 0 the streams add nothing)."""
    out = weights["co"] * logits["co"] if "co" in logits else 0.0
    streams = [k for k in ("v", "a") if k in logits]
    inf = logits[streams[0]].new_full((), float("inf"))  # on the logits' device and dtype
    low = torch.stack([torch.where(weights[k] > 0, logits[k], inf) for k in streams]).amin(0)  # [B, T]
    total = sum(weights[k] for k in streams)  # [B, T]
    return out + torch.where(total > 0, total * low, torch.zeros_like(low))
