"""The training objective of one batch: the paper's eq. 6 and the optional terms beside it.

``training_loss`` combines the terms of ``pipeline.losses`` with the weights of a
``TrainConfig``; ``pipeline.train`` calls it once per batch, and tests call it to check
gradients.
"""

from __future__ import annotations

import torch

from .losses import av_agreement_loss, ce_loss, hard_pair_rank_loss, hpcl_loss, listwise_loss
from .train_config import TrainConfig

LOSS_TERMS = ("loss", "loss_ce", "loss_hpcl", "loss_rank", "loss_av", "loss_list")


def training_loss(out: dict, b: dict, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """The loss of one batch (paper eq. 6, plus ``lambda_av`` and ``lambda_list`` where set) from
    the model's output ``out`` and the collated batch ``b`` -> one tensor per ``LOSS_TERMS`` name
    (each term unweighted; "loss" the weighted sum).

    The contrastive terms apply to ``out["contrastive_embs"]`` one by one where the model gives
    them (``late_av``, and ``co_av`` / ``cr_av`` with ``stream_training: own``: each stream its
    own terms), else to ``out["emb"]``. The listwise term ranks each head's logits within each
    video against ``b["targets"]`` (TVSum: the mean annotator score; elsewhere the labels)."""
    zero = torch.zeros((), device=b["labels"].device)
    target = b["targets"] if cfg.ce_target == "regression" else b["labels"].float()  # [B, T]
    l_ce = ce_loss(out["logits"], target, b["mask"], out["head_masks"])
    embs = out.get("contrastive_embs") or ([out["emb"]] if out["emb"] is not None else [])  # [B, T, D] each
    l_hpcl = sum((hpcl_loss(e, b["labels"], b["mask"], tau=cfg.tau) for e in embs), zero) if cfg.lambda_hpcl else zero
    l_rank = (sum((hard_pair_rank_loss(e, b["labels"], b["mask"], margin=cfg.margin, region=cfg.region)
                   for e in embs), zero) if cfg.lambda_rank else zero)
    joint = "emb_v" in out and "emb_a" in out and "contrastive_embs" not in out  # co_av, cr_av
    l_av = (av_agreement_loss(out["emb_v"], out["emb_a"], b["mask"], b["audio_mask"], cfg.tau, cfg.av_window)
            if cfg.lambda_av and joint else zero)
    l_list = (listwise_loss(out["logits"], b["targets"], b["mask"], out["head_masks"], cfg.list_tau)
              if cfg.lambda_list else zero)
    loss = (cfg.lambda_ce * l_ce + cfg.lambda_hpcl * l_hpcl + cfg.lambda_rank * l_rank + cfg.lambda_av * l_av
            + cfg.lambda_list * l_list)
    return {"loss": loss, "loss_ce": l_ce, "loss_hpcl": l_hpcl, "loss_rank": l_rank, "loss_av": l_av,
            "loss_list": l_list}
