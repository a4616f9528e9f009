"""The HPCL model (paper section 3) and its ablation variants (Tables 3, 5 and 6).

Per video of T segments, with visual features [T, Dv] and audio features [T, Da]:

1. an input stage per modality (``pipeline.inputs``: by default a PCA to ``input_dim``
   components fitted on the training segments, spectrum kept, not stated in the paper), then a
   linear projection to d (``d_model``, 256 in the paper). The paper states no position code;
   without one attention cannot tell a neighbouring segment from a distant one, so by default
   every segment-to-segment attention gets a learned relative position bias (``pos_encoding``)
   started with a locality prior (``rel_pos_init``), which makes "the audio one segment later"
   a single learned number;
2. intra-modality encoding: ``num_layers`` transformer self-attention blocks over the T segments
   of each modality;
3. global context decoder: a learnable query G_init in R^d (started at random for
   ``global_init: random``, at the mean of the projected training segments for ``mean``) attends
   over the modality's segments through a transformer decoder block to give G [d]; F = F + G
   (``none`` skips it);
4. cross-modality co-occurrence encoding (eqs. 1-2): the segments of one modality query the
   concatenated [visual; audio] sequence of 2T segments, once for visual, once for audio;
5. three FC heads: co-occurrence (on the concatenation [co_v, co_a] of the two co-occurrence
   outputs of a segment: the paper's single co-occurrence score y~), intra-visual, intra-audio;
   late fusion = weighted sum of the heads' logits (``fusion_score``, ``pipeline.fusion``; or of
   their probabilities, or the co-occurrence logit plus the smaller of the two stream heads');
   ``fusion: early`` concatenates [co_v, co_a, F_v, F_a] before one classifier instead. By
   default (``stream_training: own``) step 4 reads the streams without back-propagating into
   them: each stream learns from its own head and its own contrastive terms.

Variants (``variant``; paper section 4.2, Table 3):
- ``v_only`` / ``a_only``: one modality's stream (projection, intra-modality encoding, global
  decoder) and its head; the other stream and the co-occurrence encoding are discarded;
- ``av``: visual and audio features concatenated [T, Dv + Da], projected, then one
  intra-modality stream and one head;
- ``cr_av``: as ``co_av`` but the cross-modality block is plain cross-attention (visual queries
  over the T audio keys/values, audio queries over the T visual ones);
- ``co_av``: the paper's model. In the single-stream variants ``fusion`` has no effect;
- ``late_av`` (not in the paper, a baseline): a ``v_only`` and an ``a_only`` model side by side,
  trained independently (each stream learns from its own head and its own contrastive terms:
  ``out["contrastive_embs"]``), scored by the weighted sum of their logits
  ``w_v * l_v + w_a * l_a`` (log-odds add: a segment needs both modalities' evidence to rank
  first, where a probability average rewards either one).

Masks: ``mask`` [B, T] (True = real segment) keeps padding out of every attention's keys and
out of every pooled mean; ``audio_mask`` [B, T] (True = the segment has audio) additionally
removes silent segments (no audio track) from the audio keys. A query whose keys are all
masked gets a zero attention output (its row stays finite). In late fusion a segment without
audio is scored by the other heads only, and ``head_masks["a"]`` tells the CE loss not to train
the audio head there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn as nn

from .baselines import LinearBaseline
from .fusion import FUSION_HEADS, FUSION_SCORES, check_fusion_weights, fuse_logits
from .inputs import INPUT_NORMS, InputStage, background_parts

VARIANTS = ("v_only", "a_only", "av", "cr_av", "co_av", "late_av", "linear", "linear_ctx")
GLOBAL_INITS = ("random", "mean", "none")
FUSIONS = ("late", "early")
STREAM_TRAININGS = ("own", "joint")
# Keys whose default changed after model files and histories were first written: a stored
# config without them was trained (and must be scored) with these values.
STORED_BEFORE = {"fusion_score": "probability", "stream_training": "joint"}
POS_ENCODINGS = ("relative", "sinusoidal", "none")
REL_POS_INITS = ("locality", "zero")
BLOCK_NORMS = ("post", "pre")


@dataclass
class ModelConfig:
    """The ``model:`` section of params.yaml (flat; every field is a key there).

    variant: v_only | a_only | av | cr_av | co_av (paper Table 3; co_av is the paper's model);
        late_av: two independent single-modality models, logits summed (not in the paper);
        linear | linear_ctx: the per-segment baselines of ``pipeline.baselines``.
    input_norm, input_dim: the per-modality input stage before the projection
        (``pipeline.inputs``; not stated in the paper): pca (``input_dim`` components, one
        scale, spectrum kept) | pca_whiten (each component to unit variance) | standardize |
        none (the paper-literal plain linear layer on raw features).
    input_remove_top: before the input stage, remove the top principal directions of every
        domain's training segments (``pipeline.inputs``: variation the whole dataset shares,
        label-free; not stated in the paper; 0 = off).
    input_dropout: dropout on the normalised inputs (not stated).
    input_noise: in training only, Gaussian noise of this std added to the normalised inputs
        (``pca`` scales them to unit mean variance, so 0.5 is half a typical component's
        spread; not stated in the paper; 0 = none).
    d_model: width d of every embedding (paper: 256).
    num_heads: attention heads of every attention block (not stated in the paper).
    num_layers: intra-modality self-attention blocks per modality (not stated).
    num_cross_layers: co-occurrence (or cross-attention) blocks per modality (not stated).
    ffn_dim: hidden width of the blocks' feed-forward layers.
    block_norm: post | pre (not stated in the paper). post: each attention block normalises its
        output (``LayerNorm(x + sublayer(x))``, the original transformer's and UMT's layout), so
        every embedding a head reads has the same scale; pre: each sub-layer reads a normalised
        copy and adds to an un-normalised residual stream (``x + sublayer(LayerNorm(x))``), so how
        strongly a segment's input carries a cue can reach the heads as a magnitude.
    dropout: dropout on the attention blocks' residual branches and feed-forward layer (not on
        the attention weights).
    pos_encoding: relative | sinusoidal | none (not stated in the paper). relative: a learned
        bias per head and segment offset (key time - query time, clipped to +-rel_pos_max) added to
        the attention logits of every segment-to-segment attention; a visual and an audio token of
        the same segment share its time, so "the audio one segment later" is one bias entry.
        sinusoidal: the transformer's absolute code added to the projected features.
    rel_pos_max: largest distinguished offset of the relative bias.
    rel_pos_init: locality | zero. locality starts head h's bias at ``-slope_h * |offset|`` with
        ``slope_h = rel_pos_slope / 2**h`` (steep local heads to nearly flat global ones, as
        ALiBi's slopes): from zero the bias moves by about lr per Adam step and stays inert.
    context: neighbours each side of the ``linear_ctx`` baseline.
    global_init: random | mean | none (paper Table 5): the global-context query G_init, a
        learnable vector in R^d; random: small random start; mean: starts at the mean of the
        projected training segments (``HPCLModel.fit_inputs``); none: no global context.
    fusion: late | early (paper Table 6).
    w_co, w_v, w_a: late-fusion weights of the co-occurrence, intra-visual and intra-audio
        heads (the paper's "weighted sum"; values not stated: equal by default, and
        ``train.fusion_grid`` lets cross-validation choose others); ``late_av`` weighs its two
        logits by w_v and w_a.
    fusion_score: logit | probability | min: how late fusion combines (not stated in the paper).
        logit: ``sum_k w_k l_k``, log-odds add, so a segment with evidence in several heads
        ranks above one with evidence in one; probability: the logit of ``sum_k w_k p_k /
        sum_k w_k``, which rewards evidence in any one head; min: ``w_co l_co + (w_v + w_a)
        min(l_v, l_a)``, a conjunction: a segment ranks only as high as its weaker stream head
        says, so a strong cue in one modality cannot stand in for the other (a head of weight 0
        leaves the min; README 2026-12-07). Every rule leaves the audio head out on segments
        without audio. ``late_av`` always sums logits.
    stream_training: own | joint (cr_av, co_av; not stated in the paper). joint: the
        cross-modality block and the contrastive terms on the concatenated embedding
        back-propagate into both streams. own: each stream learns from its own head and its own
        contrastive terms, as a single-modality model would, and the cross-modality block and
        its head learn on top of them without back-propagating into them (``lambda_av`` then
        has no effect).
    """

    variant: str = "co_av"
    input_norm: str = "pca"
    input_dim: int = 64
    input_remove_top: int = 0
    input_dropout: float = 0.0
    input_noise: float = 0.0
    d_model: int = 256
    num_heads: int = 8
    num_layers: int = 1
    num_cross_layers: int = 1
    ffn_dim: int = 512
    block_norm: str = "post"
    dropout: float = 0.1
    pos_encoding: str = "relative"
    rel_pos_max: int = 16
    rel_pos_init: str = "locality"
    rel_pos_slope: float = 0.5
    context: int = 1
    global_init: str = "mean"
    fusion: str = "late"
    w_co: float = 1.0
    w_v: float = 1.0
    w_a: float = 1.0
    fusion_score: str = "logit"
    stream_training: str = "own"

    def __post_init__(self) -> None:
        for name, allowed in (
            ("variant", VARIANTS),
            ("global_init", GLOBAL_INITS),
            ("fusion", FUSIONS),
            ("fusion_score", FUSION_SCORES),
            ("stream_training", STREAM_TRAININGS),
            ("pos_encoding", POS_ENCODINGS),
            ("rel_pos_init", REL_POS_INITS),
            ("input_norm", INPUT_NORMS),
            ("block_norm", BLOCK_NORMS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"model.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"model.d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        if self.input_noise < 0:
            raise ValueError(f"model.input_noise must be >= 0, got {self.input_noise}")
        if self.input_remove_top < 0 or (self.input_remove_top and self.input_norm == "none"):
            raise ValueError(f"model.input_remove_top must be >= 0 and needs an input_norm other than none, "
                             f"got {self.input_remove_top} with input_norm {self.input_norm!r}")
        if self.input_dim < 1 or self.context < 0 or self.rel_pos_max < 0 or self.rel_pos_slope < 0:
            raise ValueError("model.input_dim must be >= 1; context, rel_pos_max and rel_pos_slope >= 0")
        if not (0.0 <= self.input_dropout < 1.0 and 0.0 <= self.dropout < 1.0):
            raise ValueError("model.dropout and model.input_dropout must be in [0, 1)")
        check_fusion_weights((self.w_co, self.w_v, self.w_a), "model.w_co, w_v, w_a")

    @classmethod
    def from_dict(cls, params: dict) -> "ModelConfig":
        """Build from the params.yaml ``model:`` section; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown model params {unknown}; known: {sorted(known)}")
        return cls(**params)

    @classmethod
    def from_stored(cls, stored: dict) -> "ModelConfig":
        """A config stored in a model file (``pipeline.highlight.modelfile``): the keys of
        ``STORED_BEFORE`` it lacks take the values it was trained with, not today's defaults."""
        return cls.from_dict({**STORED_BEFORE, **stored})


def _fill_fusion_weights(module, state_dict, prefix, *args) -> None:
    """load_state_dict pre-hook: a checkpoint written before ``fusion_w`` existed was scored with
    the configured weights, which the module holds."""
    state_dict.setdefault(prefix + "fusion_w", module.fusion_w.detach().clone())


def sinusoidal_positions(T: int, d: int, device=None) -> torch.Tensor:
    """The transformer's sinusoidal position code: [T, d]."""
    pos = torch.arange(T, dtype=torch.float32, device=device)[:, None]  # [T, 1]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / d))
    pe = torch.zeros(T, d, device=device)  # [T, d]
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: d // 2])
    return pe


class RelativePositionBias(nn.Module):
    """Learned attention-logit bias per head and segment offset.

    forward(q_time [Tq], k_time [Tk]) -> [H, Tq, Tk]: ``table[clip(k - q, -R, R)]``.
    ``slope > 0``: head h starts at ``-slope / 2**h * |offset|`` (locality prior); 0: zeros.
    """

    def __init__(self, num_heads: int, max_offset: int, slope: float = 0.0) -> None:
        super().__init__()
        self.max_offset = max_offset
        offsets = torch.arange(-max_offset, max_offset + 1, dtype=torch.float32).abs()  # [2R+1]
        slopes = slope / 2.0 ** torch.arange(num_heads, dtype=torch.float32)  # [H]
        self.table = nn.Parameter(-offsets[:, None] * slopes[None, :])  # [2R+1, H]

    def forward(self, q_time: torch.Tensor, k_time: torch.Tensor) -> torch.Tensor:
        rel = (k_time[None, :] - q_time[:, None]).clamp(-self.max_offset, self.max_offset)  # [Tq, Tk]
        return self.table[rel + self.max_offset].permute(2, 0, 1)  # [H, Tq, Tk]


class AttentionBlock(nn.Module):
    """Transformer block: queries attend over keys/values, then a feed-forward layer; post-norm
    (``LayerNorm(x + sublayer(x))``) or, with ``pre_norm``, pre-norm (``x + sublayer(LayerNorm(x))``,
    queries and keys/values normalised by the same LayerNorm, the output not normalised).

    forward(q [B, Tq, d], kv [B, Tk, d], key_valid [B, Tk] bool, q_time [Tq] | None,
    k_time [Tk] | None) -> [B, Tq, d].
    Self-attention when kv is q (the encoder layer); cross-attention otherwise (the decoder
    layer's cross-attention, eqs. 1-2). Invalid keys are never attended; a batch row without
    any valid key gets a zero attention output instead of NaN. With ``rel_pos_max > 0`` and the
    segment times given, a ``RelativePositionBias`` is added to the attention logits.
    """

    def __init__(self, d: int, num_heads: int, ffn_dim: int, dropout: float, rel_pos_max: int = 0,
                 rel_pos_slope: float = 0.0, pre_norm: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.pre_norm = pre_norm
        # no dropout on the attention weights: its mask over [B*H, Tq, Tk] took 15% of a CPU step
        self.attn = nn.MultiheadAttention(d, num_heads, dropout=0.0, batch_first=True)
        self.rel = RelativePositionBias(num_heads, rel_pos_max, rel_pos_slope) if rel_pos_max > 0 else None
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d))
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        q: torch.Tensor,
        kv: torch.Tensor,
        key_valid: torch.Tensor,
        q_time: torch.Tensor | None = None,
        k_time: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, Tq, _ = q.shape
        Tk = kv.shape[1]
        empty = ~key_valid.any(dim=1)  # [B] rows with no valid key
        # such rows attend to everything (finite) and the result is zeroed below
        ignore = ~key_valid & ~empty[:, None]  # [B, Tk] True = not attended
        # one additive float mask: -inf on ignored keys (+ the relative bias) -> [B*H, Tq, Tk]
        bias = torch.zeros(B, 1, Tq, Tk, dtype=q.dtype, device=q.device)
        bias = bias.masked_fill(ignore[:, None, None, :], float("-inf"))  # [B, 1, Tq, Tk]
        if self.rel is not None and q_time is not None and k_time is not None:
            bias = bias + self.rel(q_time, k_time)[None]  # [B, H, Tq, Tk]
        bias = bias.expand(B, self.num_heads, Tq, Tk).reshape(B * self.num_heads, Tq, Tk)
        if self.pre_norm:
            qn = self.norm1(q)  # [B, Tq, d]
            kvn = qn if kv is q else self.norm1(kv)  # [B, Tk, d]
            a, _ = self.attn(qn, kvn, kvn, attn_mask=bias, need_weights=False)  # [B, Tq, d]
            x = q + self.drop(a.masked_fill(empty[:, None, None], 0.0))  # [B, Tq, d]
            return x + self.drop(self.ffn(self.norm2(x)))  # [B, Tq, d]
        a, _ = self.attn(q, kv, kv, attn_mask=bias, need_weights=False)  # [B, Tq, d]
        a = a.masked_fill(empty[:, None, None], 0.0)
        x = self.norm1(q + self.drop(a))  # [B, Tq, d]
        return self.norm2(x + self.drop(self.ffn(x)))  # [B, Tq, d]


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of x [B, T, d] over the valid [B, T] positions -> [B, d] (zeros where none)."""
    w = valid.to(x.dtype)[:, :, None]  # [B, T, 1]
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


class GlobalContext(nn.Module):
    """Global-context decoder: one query attends over the segments; returns G [B, 1, d].

    The query is a learnable G_init in R^d (paper section 3.3: statistics over the entire
    training data, not the context of one video). ``init="random"``: small random start;
    ``init="mean"``: ``set_mean`` starts it at the mean of the projected training segments,
    computed once before training (paper Table 5). The decoder block is a
    transformer decoder layer without its self-attention (self-attention over one query token is
    a fixed linear map whose query/key projections would get no gradient). The global query has
    no time, so no relative position bias.
    """

    def __init__(self, d: int, num_heads: int, ffn_dim: int, dropout: float, init: str,
                 pre_norm: bool = False) -> None:
        super().__init__()
        if init not in ("random", "mean"):
            raise ValueError(f"global init must be random or mean, got {init!r}")
        self.init = init
        self.g_init = nn.Parameter(torch.randn(d) * 0.02)  # [d] G_init
        self.block = AttentionBlock(d, num_heads, ffn_dim, dropout, pre_norm=pre_norm)

    @torch.no_grad()
    def set_mean(self, mean: torch.Tensor) -> None:
        """Start G_init at ``mean`` [d] (``init="mean"``)."""
        self.g_init.copy_(mean)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        B, _, d = x.shape
        query = self.g_init.expand(B, 1, d)  # [B, 1, d]
        return self.block(query, x, valid)  # [B, 1, d]


def _rel_args(cfg: ModelConfig) -> tuple[int, float]:
    """(max offset, locality slope) of the relative position bias; (0, 0) without one."""
    if cfg.pos_encoding != "relative":
        return 0, 0.0
    return cfg.rel_pos_max, cfg.rel_pos_slope if cfg.rel_pos_init == "locality" else 0.0


class Stream(nn.Module):
    """One modality's intra-modality encoding: input stage, projection, self-attention, global context.

    forward(feats [B, T, Din], valid [B, T] bool, domain_emb [B, d] or None) -> [B, T, d].
    """

    def __init__(self, in_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.inputs = InputStage(in_dim, cfg.input_norm, cfg.input_dim, cfg.input_remove_top)
        self.in_drop = nn.Dropout(cfg.input_dropout)
        self.input_noise = cfg.input_noise
        self.proj = nn.Linear(self.inputs.out_dim, d)
        self.sinusoidal = cfg.pos_encoding == "sinusoidal"
        self.layers = nn.ModuleList(
            AttentionBlock(d, cfg.num_heads, cfg.ffn_dim, cfg.dropout, *_rel_args(cfg), pre_norm=cfg.block_norm == "pre")
            for _ in range(cfg.num_layers)
        )
        self.glob = (
            GlobalContext(d, cfg.num_heads, cfg.ffn_dim, cfg.dropout, cfg.global_init, cfg.block_norm == "pre")
            if cfg.global_init != "none"
            else None
        )

    @torch.no_grad()
    def fit_inputs(self, feats: torch.Tensor, background: torch.Tensor | None = None) -> None:
        """Fit the input stage on training segments feats [N, Din] (``background`` [M, Din]: more
        training segments for ``input_remove_top``); start G_init at the mean of their projections
        for ``global_init: mean``."""
        self.inputs.fit(feats, background)
        if self.glob is not None and self.glob.init == "mean":
            self.glob.set_mean(self.proj(self.inputs(feats)).mean(0))  # [d]

    def forward(self, feats: torch.Tensor, valid: torch.Tensor, domain_emb: torch.Tensor | None) -> torch.Tensor:
        B, T, _ = feats.shape
        x = self.inputs(feats)  # [B, T, k] normalised
        if self.training and self.input_noise > 0:
            x = x + self.input_noise * torch.randn_like(x)
        x = self.proj(self.in_drop(x))  # [B, T, d]
        if self.sinusoidal:
            x = x + sinusoidal_positions(T, x.shape[-1], x.device)[None]
        if domain_emb is not None:
            x = x + domain_emb[:, None, :]
        time = torch.arange(T, device=feats.device)  # [T]
        for layer in self.layers:
            x = layer(x, x, valid, time, time)  # [B, T, d]
        if self.glob is not None:
            x = x + self.glob(x, valid)  # [B, T, d] + G [B, 1, d]
        return x


class CrossModal(nn.Module):
    """Co-occurrence (``co``: keys = [visual; audio], 2T) or cross-attention (``cr``: keys = the
    other modality, T) encoding for both modalities.

    forward(fv [B, T, d], fa [B, T, d], valid_v [B, T], valid_a [B, T]) -> (co_v, co_a) [B, T, d].
    """

    def __init__(self, cfg: ModelConfig, mode: str) -> None:
        super().__init__()
        self.mode = mode

        def blocks() -> nn.ModuleList:
            return nn.ModuleList(
                AttentionBlock(cfg.d_model, cfg.num_heads, cfg.ffn_dim, cfg.dropout, *_rel_args(cfg),
                               pre_norm=cfg.block_norm == "pre")
                for _ in range(cfg.num_cross_layers)
            )

        self.v_blocks, self.a_blocks = blocks(), blocks()

    def forward(
        self, fv: torch.Tensor, fa: torch.Tensor, valid_v: torch.Tensor, valid_a: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        T = fv.shape[1]
        time = torch.arange(T, device=fv.device)  # [T]
        if self.mode == "co":
            kv_v = kv_a = torch.cat([fv, fa], dim=1)  # [B, 2T, d] F^va
            valid_kv_v = valid_kv_a = torch.cat([valid_v, valid_a], dim=1)  # [B, 2T]
            k_time = torch.cat([time, time])  # [2T] a visual and an audio token share their time
        else:
            kv_v, valid_kv_v = fa, valid_a  # visual queries over audio
            kv_a, valid_kv_a = fv, valid_v  # audio queries over visual
            k_time = time
        co_v, co_a = fv, fa
        for bv, ba in zip(self.v_blocks, self.a_blocks):
            co_v = bv(co_v, kv_v, valid_kv_v, time, k_time)  # [B, T, d]
            co_a = ba(co_a, kv_a, valid_kv_a, time, k_time)  # [B, T, d]
        return co_v, co_a


class HPCLModel(nn.Module):
    """HPCL highlight detector; see the module docstring for the architecture and variants.

    forward(visual [B, T, Dv], audio [B, T, Da], mask [B, T] bool, audio_mask [B, T] bool,
    domain [B] long or None) -> dict:
      "score"  [B, T]: logit of the fused highlight probability,
      "logits" {head: [B, T]}: per-head logits (late: "co", "v", "a" as the variant has them;
               early: "fused"; single-stream variants: "v", "a" or "av"),
      "head_masks" {head: [B, T] bool}: where a head is valid beyond ``mask`` (audio head),
      "emb_v" / "emb_a" [B, T, d]: intra-modality outputs (when the variant has the stream),
      "emb" [B, T, D]: the contrastive embedding (concatenation of the intra-modality outputs),
      "contrastive_embs" (``late_av``, and ``cr_av`` / ``co_av`` with ``stream_training: own``)
               [[B, T, d], [B, T, d]]: the embeddings the contrastive terms apply to one by
               one, so that they do not couple the streams.
    """

    def __init__(self, cfg: ModelConfig, visual_dim: int, audio_dim: int, num_domains: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        v = cfg.variant
        self.stream_v = Stream(visual_dim, cfg) if v in ("v_only", "cr_av", "co_av", "late_av") else None
        self.stream_a = Stream(audio_dim, cfg) if v in ("a_only", "cr_av", "co_av", "late_av") else None
        self.stream_av = Stream(visual_dim + audio_dim, cfg) if v == "av" else None
        self.cross = CrossModal(cfg, "co" if v == "co_av" else "cr") if v in ("cr_av", "co_av") else None
        self.domain_emb = nn.Embedding(num_domains, cfg.d_model) if num_domains > 1 else None
        d = cfg.d_model
        if self.cross is not None and cfg.fusion == "early":
            self.heads = nn.ModuleDict({"fused": nn.Linear(4 * d, 1)})
        elif self.cross is not None:
            self.heads = nn.ModuleDict({"co": nn.Linear(2 * d, 1), "v": nn.Linear(d, 1), "a": nn.Linear(d, 1)})
        elif v == "late_av":
            self.heads = nn.ModuleDict({"v": nn.Linear(d, 1), "a": nn.Linear(d, 1)})
        else:
            self.heads = nn.ModuleDict({{"v_only": "v", "a_only": "a", "av": "av"}[v]: nn.Linear(d, 1)})
        # late-fusion weights (w_co, w_v, w_a): a buffer, so that weights chosen by cross-validation
        # (``train.fusion_grid``) travel in the checkpoint; one written before it existed is loaded
        # with the configured weights, the ones it was scored with
        self.register_buffer("fusion_w", torch.tensor([cfg.w_co, cfg.w_v, cfg.w_a], dtype=torch.float32))
        self.register_load_state_dict_pre_hook(_fill_fusion_weights)

    @property
    def fusion_weights(self) -> dict[str, float]:
        """The late-fusion weights in use: {"co", "v", "a"} -> float."""
        return dict(zip(FUSION_HEADS, (float(w) for w in self.fusion_w)))

    def set_fusion_weights(self, weights) -> None:
        """Score with late-fusion weights ``(w_co, w_v, w_a)`` from now on (they are in the state_dict)."""
        check_fusion_weights(weights)
        self.fusion_w.copy_(torch.tensor([float(w) for w in weights], dtype=torch.float32))

    def fuse(self, logits: dict[str, torch.Tensor], mask: torch.Tensor, audio_mask: torch.Tensor,
             weights=None) -> torch.Tensor:
        """The fused score [B, T] of a forward's ``logits`` under late-fusion weights ``(w_co, w_v,
        w_a)`` (default: the model's own), as ``forward``'s "score": one forward scores every
        candidate of ``train.fusion_grid``."""
        w = self.fusion_weights if weights is None else dict(zip(FUSION_HEADS, map(float, weights)))
        rule = "logit" if self.cfg.variant == "late_av" else self.cfg.fusion_score
        return fuse_logits(logits, audio_mask.to(torch.bool) & mask.to(torch.bool), rule, w)

    @torch.no_grad()
    def fit_inputs(self, visual: torch.Tensor, audio: torch.Tensor, audio_mask: torch.Tensor,
                   background: tuple | None = None) -> None:
        """Before training: fit the input stages (and start a ``mean`` G_init) on the training
        segments visual [N, Dv], audio [N, Da], audio_mask [N] bool (the audio stage is fitted on
        the segments with audio only); ``background``: (visual [M, Dv], audio [M, Da],
        audio_mask [M]) of more training segments, for ``input_remove_top``."""
        bg_v, bg_a, bg_av = background_parts(background)
        audio_mask = audio_mask.to(torch.bool)
        if self.stream_v is not None:
            self.stream_v.fit_inputs(visual, bg_v)
        if self.stream_a is not None:
            self.stream_a.fit_inputs(audio[audio_mask] if audio_mask.sum() >= 2 else audio, bg_a)
        if self.stream_av is not None:
            self.stream_av.fit_inputs(torch.cat([visual, audio], dim=-1), bg_av)

    def forward(
        self,
        visual: torch.Tensor,
        audio: torch.Tensor,
        mask: torch.Tensor,
        audio_mask: torch.Tensor,
        domain: torch.Tensor | None = None,
    ) -> dict:
        mask = mask.to(torch.bool)  # [B, T]
        audio_mask = audio_mask.to(torch.bool) & mask  # [B, T]
        dom = None
        if self.domain_emb is not None:
            if domain is None:
                raise ValueError("this model was built with a domain embedding: pass domain [B]")
            dom = self.domain_emb(domain)  # [B, d]
        out: dict = {"head_masks": {}}
        feats: dict[str, torch.Tensor] = {}
        if self.stream_v is not None:
            out["emb_v"] = self.stream_v(visual, mask, dom)  # [B, T, d]
        if self.stream_a is not None:
            out["emb_a"] = self.stream_a(audio, audio_mask, dom)  # [B, T, d]
        if self.stream_av is not None:
            out["emb_av"] = self.stream_av(torch.cat([visual, audio], dim=-1), mask, dom)  # [B, T, d]
        embs = [out[k] for k in ("emb_v", "emb_a", "emb_av") if k in out]
        out["emb"] = torch.cat(embs, dim=-1)  # [B, T, D] D = d or 2d
        if self.cross is not None:
            fv, fa = out["emb_v"], out["emb_a"]
            if self.cfg.stream_training == "own":  # the streams learn from their own heads and terms
                co_v, co_a = self.cross(fv.detach(), fa.detach(), mask, audio_mask)  # [B, T, d] each
                out["contrastive_embs"] = [fv, fa]
            else:
                co_v, co_a = self.cross(fv, fa, mask, audio_mask)  # [B, T, d] each
            if self.cfg.fusion == "early":
                feats["fused"] = torch.cat([co_v, co_a, fv, fa], dim=-1)  # [B, T, 4d]
            else:
                feats["co"] = torch.cat([co_v, co_a], dim=-1)  # [B, T, 2d]
                feats["v"], feats["a"] = fv, fa
                out["head_masks"]["a"] = audio_mask
        elif self.cfg.variant == "late_av":  # two independent models: no shared term reaches both streams
            feats["v"], feats["a"] = out["emb_v"], out["emb_a"]
            out["head_masks"]["a"] = audio_mask
            out["contrastive_embs"] = [out["emb_v"], out["emb_a"]]
        else:
            name = next(iter(self.heads))
            feats[name] = out["emb_" + name]
        logits = {k: self.heads[k](f).squeeze(-1) for k, f in feats.items()}  # {head: [B, T]}
        out["logits"] = logits
        rule = "logit" if self.cfg.variant == "late_av" else self.cfg.fusion_score
        out["score"] = fuse_logits(logits, audio_mask, rule, self.fusion_weights)  # [B, T]
        return out


def build_model(cfg: ModelConfig, visual_dim: int, audio_dim: int, num_domains: int = 0) -> nn.Module:
    """The HPCL model (or, for ``variant: linear | linear_ctx``, the per-segment baseline of
    ``pipeline.baselines``) for features of ``visual_dim`` and ``audio_dim``; ``num_domains > 1``
    adds a learned domain embedding (one shared model over several domains). Call
    ``fit_inputs`` on the training segments before training."""
    if cfg.variant in ("linear", "linear_ctx"):
        return LinearBaseline(visual_dim, audio_dim, cfg.input_norm, cfg.input_dim,
                              cfg.context if cfg.variant == "linear_ctx" else 0, cfg.input_dropout, num_domains,
                              cfg.input_remove_top)
    return HPCLModel(cfg, visual_dim, audio_dim, num_domains)
