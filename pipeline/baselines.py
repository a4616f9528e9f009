"""The bar the HPCL variants must clear: per-segment linear models on the same inputs.

``linear``: logistic regression per segment on ``[in_v(visual_t); in_a(audio_t)]``, the two
modalities after the model's own input normalisation and bottleneck (``pipeline.inputs``);
audio is zeroed on segments without audio.
``linear_ctx``: the same on the concatenated features of segments ``t - k .. t + k`` (zeros
beyond the video's ends), so it can use the neighbours' evidence (audio-visual delays,
highlights that come in runs).

Same forward contract as ``HPCLModel`` (``score``, ``logits``, ``head_masks``); ``emb`` is None,
so training uses the CE term only.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .inputs import InputStage, background_parts


class LinearBaseline(nn.Module):
    """forward(visual [B, T, Dv], audio [B, T, Da], mask [B, T], audio_mask [B, T], domain [B] | None)
    -> {"score" [B, T], "logits" {"lin": [B, T]}, "head_masks" {}, "emb" None}.

    ``context``: k neighbours each side (0 = per segment); ``input_dropout`` on the normalised
    inputs; ``num_domains > 1`` adds a per-domain bias (a shared model over several domains)."""

    def __init__(self, visual_dim: int, audio_dim: int, input_norm: str = "pca", input_dim: int = 64,
                 context: int = 0, input_dropout: float = 0.0, num_domains: int = 0, remove_top: int = 0) -> None:
        super().__init__()
        self.in_v = InputStage(visual_dim, input_norm, input_dim, remove_top)
        self.in_a = InputStage(audio_dim, input_norm, input_dim, remove_top)
        self.context = context
        width = (self.in_v.out_dim + self.in_a.out_dim) * (2 * context + 1)
        self.drop = nn.Dropout(input_dropout)
        self.head = nn.Linear(width, 1)
        self.domain_bias = nn.Embedding(num_domains, 1) if num_domains > 1 else None

    @torch.no_grad()
    def fit_inputs(self, visual: torch.Tensor, audio: torch.Tensor, audio_mask: torch.Tensor,
                   background: tuple | None = None) -> None:
        """Fit the input stages on training segments visual [N, Dv], audio [N, Da], audio_mask [N]
        (``background``: more training segments for ``remove_top``, as ``HPCLModel.fit_inputs``)."""
        audio_mask = audio_mask.to(torch.bool)
        bg_v, bg_a, _ = background_parts(background)
        self.in_v.fit(visual, bg_v)
        self.in_a.fit(audio[audio_mask] if audio_mask.sum() >= 2 else audio, bg_a)

    def forward(self, visual, audio, mask, audio_mask, domain=None) -> dict:
        mask = mask.to(torch.bool)  # [B, T]
        audio_mask = audio_mask.to(torch.bool) & mask  # [B, T]
        x = torch.cat([self.in_v(visual), self.in_a(audio) * audio_mask[..., None]], dim=-1)  # [B, T, kv + ka]
        x = x * mask[..., None]
        if self.context:
            k = self.context
            padded = F.pad(x, (0, 0, k, k))  # [B, T + 2k, W]
            T = x.shape[1]
            x = torch.cat([padded[:, j : j + T] for j in range(2 * k + 1)], dim=-1)  # [B, T, (2k+1) W]
        logit = self.head(self.drop(x)).squeeze(-1)  # [B, T]
        if self.domain_bias is not None:
            if domain is None:
                raise ValueError("this model was built with a domain bias: pass domain [B]")
            logit = logit + self.domain_bias(domain)  # [B, 1] broadcast over T
        return {"score": logit, "logits": {"lin": logit}, "head_masks": {}, "emb": None}
