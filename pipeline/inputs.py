"""Input normalisation and dimensionality bottleneck of one modality's segment features.

Backbone features are large (I3D 2048-d after RGB + flow, PANN Cnn14 2048-d), un-normalised and
post-ReLU, and a benchmark domain has only a few dozen training videos (about 1,500 segments):
a ``Linear(2048 -> 256)`` on the raw features can memorise per-segment noise (training mAP
0.95-0.99 while test sits near chance, issue "A model that generalises"). ``InputStage`` maps
``[..., Din]`` features to ``[..., out_dim]`` with statistics fitted once on the training
segments, without labels (not stated in the paper; the paper-literal setting is ``none``):

- ``none``: identity (``out_dim = Din``);
- ``standardize``: ``(x - mean) / std`` per dimension (``out_dim = Din``);
- ``pca``: centred and projected on the top ``k`` principal directions, all divided by one
  scale so that the components' mean variance on the training segments is 1: the spectrum is
  kept, so a strong direction stays strong and the weak ones (mostly noise) stay weak,
  ``out_dim = k``;
- ``pca_whiten``: the same directions, each scaled to unit variance (whitened): every kept
  direction, noise included, weighs as much as the strongest. The directions come
  from a randomized SVD (``torch.svd_lowrank``, 6 power iterations, its own fixed seed), much
  cheaper than an exact eigen-decomposition at 2048-d; on the top components it spans the same
  subspace (tested against ``eigh``). Directions whose variance is below 1e-9 of the largest,
  or beyond the number of training segments, output zeros.

Before any of these, ``remove_top = r > 0`` removes the top ``r`` principal directions of a wider
set of training segments, ``background`` (in training: the training videos of every domain, not
only the group's own; ``pipeline.train``): ``x - ((x - m) U) U^T`` with ``U`` [Din, r]
orthonormal. Variation shared by the whole dataset (scene, camera, recording: what every domain
has) is then gone before the group's own PCA, whose components are left to what tells this
domain's segments apart. Label-free, as "all-but-the-top" post-processing of embeddings (Mu and
Viswanath, 2018); not stated in the paper; ``0`` keeps it off.

The fitted statistics are buffers, so they travel in the model's ``state_dict`` and are applied
again at inference. Using a stage that needs fitting before ``fit`` raises.
"""

from __future__ import annotations

import torch
import torch.nn as nn

INPUT_NORMS = ("pca", "pca_whiten", "standardize", "none")
PCA_MODES = ("pca", "pca_whiten")


class InputStage(nn.Module):
    """forward(x [..., in_dim]) -> [..., out_dim]; ``fit(x [N, in_dim])`` sets the statistics."""

    def __init__(self, in_dim: int, mode: str = "pca", k: int = 64, remove_top: int = 0) -> None:
        super().__init__()
        if mode not in INPUT_NORMS:
            raise ValueError(f"input normalisation must be one of {INPUT_NORMS}, got {mode!r}")
        if k < 1:
            raise ValueError(f"the PCA bottleneck needs k >= 1, got {k}")
        if not 0 <= remove_top < in_dim:
            raise ValueError(f"remove_top (model.input_remove_top) must be in [0, {in_dim}) for {in_dim}-d "
                             f"features, got {remove_top}")
        if remove_top and mode == "none":
            raise ValueError("remove_top needs an input normalisation: input_norm none is the paper-literal raw input")
        self.mode, self.in_dim, self.remove_top = mode, in_dim, remove_top
        if remove_top:
            self.register_buffer("rm_mean", torch.zeros(in_dim))  # [Din]
            self.register_buffer("rm_dirs", torch.zeros(in_dim, remove_top))  # [Din, r] orthonormal
        self.out_dim = min(k, in_dim) if mode in PCA_MODES else in_dim
        if mode != "none":
            self.register_buffer("mean", torch.zeros(in_dim))  # [Din]
            self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        if mode == "standardize":
            self.register_buffer("inv_std", torch.ones(in_dim))  # [Din]
        if mode in PCA_MODES:
            self.register_buffer("proj", torch.zeros(in_dim, self.out_dim))  # [Din, k] scaled directions

    @torch.no_grad()
    def fit(self, x: torch.Tensor, background: torch.Tensor | None = None) -> "InputStage":
        """Fit on training segments x [N, in_dim] (float); with ``remove_top``, the removed
        directions are the top principal directions of x and ``background`` [M, in_dim] (more
        training segments, e.g. other domains') together. Returns self."""
        if self.mode == "none":
            return self
        if x.dim() != 2 or x.shape[1] != self.in_dim or x.shape[0] < 2:
            raise ValueError(f"InputStage.fit needs [N >= 2, {self.in_dim}] features, got {tuple(x.shape)}")
        x32 = x.detach().to(torch.float32)
        if self.remove_top:
            both = x32 if background is None or len(background) == 0 else torch.cat(
                [x32, background.detach().to(torch.float32)])  # [N + M, Din]
            if both.shape[0] <= self.remove_top:
                raise ValueError(f"remove_top = {self.remove_top} needs more than {self.remove_top} training "
                                 f"segments, got {both.shape[0]}")
            rm_mean = both.to(torch.float64).mean(0).to(torch.float32)  # [Din]
            _, dirs = _top_directions(both - rm_mean, self.remove_top)  # [Din, r]
            self.rm_mean.copy_(rm_mean)
            self.rm_dirs.copy_(dirs)
            x32 = self.remove_shared(x32)
        mean = x32.to(torch.float64).mean(0).to(torch.float32)  # [Din]
        xc = x32 - mean  # [N, Din]
        n = xc.shape[0]
        self.mean.copy_(mean)
        if self.mode == "standardize":
            std = xc.pow(2).sum(0).div(n - 1).sqrt()  # [Din]
            self.inv_std.copy_(torch.where(std > 1e-8, 1.0 / std.clamp_min(1e-8), torch.zeros_like(std)))
        else:
            sv, dirs = _top_directions(xc, self.out_dim)  # [k'], [Din, k']
            var = sv.pow(2) / (n - 1)  # variance along each direction
            keep = var > 1e-9 * var[0].clamp_min(1e-30)
            if self.mode == "pca_whiten":  # each direction to unit variance
                scale = torch.where(keep, var.clamp_min(1e-30).rsqrt(), torch.zeros_like(var))  # [k']
            else:  # one scale for all: mean variance of the kept directions = 1
                scale = torch.where(keep, var[keep].mean().clamp_min(1e-30).rsqrt(), torch.zeros_like(var))  # [k']
            dirs = torch.where(keep[None, :], dirs, torch.zeros_like(dirs))
            # a fixed sign per direction (largest |loading| positive)
            idx = dirs.abs().argmax(0)
            sign = torch.sign(dirs[idx, torch.arange(dirs.shape[1])])
            sign = torch.where(sign == 0, torch.ones_like(sign), sign)
            out = torch.zeros(self.in_dim, self.out_dim)
            out[:, : dirs.shape[1]] = dirs * (scale * sign)[None, :]
            self.proj.copy_(out)
        self.fitted.fill_(True)
        return self

    def remove_shared(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., Din] without its components along the removed directions."""
        return x - ((x - self.rm_mean) @ self.rm_dirs) @ self.rm_dirs.T  # [..., Din]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return x
        if not bool(self.fitted):
            raise RuntimeError("InputStage used before fit(): fit it on the training segments (or load a trained state_dict)")
        if self.remove_top:
            x = self.remove_shared(x)
        if self.mode == "standardize":
            return (x - self.mean) * self.inv_std  # [..., Din]
        return (x - self.mean) @ self.proj  # [..., k]


def _top_directions(xc: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred xc [N, Din] -> (singular values [k'] descending, directions [Din, k']), k' =
    min(k, N, Din): a randomized SVD (Halko et al.; 6 power iterations), seeded apart from the
    global RNG, so the same data give the same map."""
    q = min(k + 10, xc.shape[0], xc.shape[1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        _, sv, v = torch.svd_lowrank(xc, q=q, niter=6)  # sv [q], v [Din, q]
    return sv[:k], v[:, :k]


def background_parts(background: tuple | None) -> tuple:
    """(visual [M, Dv], audio [M, Da], audio_mask [M]) or None -> the background segments of the
    visual stage, of the audio stage (segments with audio only) and of a concatenated stage."""
    if background is None:
        return None, None, None
    visual, audio, audio_mask = background
    audio_mask = audio_mask.to(torch.bool)
    return visual, audio[audio_mask], torch.cat([visual, audio], dim=-1)
