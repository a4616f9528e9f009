"""pytorchvideo's Kinetics-400 video networks as feature extractors: i3d_r50, slow_r50, x3d_m.

The networks come from ``pytorchvideo.models.hub`` (built with ``pretrained=False``, so nothing is
downloaded); weights are loaded from a local pytorchvideo checkpoint (``{"model_state": ...}``,
see :func:`obtain_pytorchvideo` below) with ``torch.load(weights_only=True)``.

Feature extraction: the head's fixed ``AvgPool3d`` (sized for the training clip, e.g. 8 x 224 x
224) is replaced by global adaptive average pooling, so any clip length and crop work, and the
Kinetics classifier (``proj``, 2048 -> 400) is taken out of the forward pass:

- ``i3d_r50``, ``slow_r50``: the last ResNet stage averaged over time and space, [B, 2048];
- ``x3d_m``: X3D's projected pool (1x1x1 conv 192 -> 432, BN, ReLU, global average pool, 1x1x1
  conv 432 -> 2048, ReLU), [B, 2048]. For the training clip size this is exactly the value the
  original head feeds its classifier.

``classify`` applies the kept classifier to the features (Kinetics logits; the class order is the
alphabetical Kinetics-400 order, as in ``pipeline/resources/kinetics400_labels.json``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..transforms import KINETICS_MEAN, KINETICS_STD, video_to_tensor
from ..weights import load_state_checked, load_torch_checkpoint, obtain_checkpoint
from .i3d import load_kinetics400_labels

log = logging.getLogger(__name__)

PYTORCHVIDEO_BACKBONES = ("i3d_r50", "slow_r50", "x3d_m")
FEATURE_DIMS = {"i3d_r50": 2048, "slow_r50": 2048, "x3d_m": 2048}
# The clips each model was trained on (frames x crop); any size works after the head change.
TRAINING_CLIPS = {"i3d_r50": (8, 224), "slow_r50": (8, 224), "x3d_m": (16, 224)}
PYTORCHVIDEO_URLS = {
    "i3d_r50": "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/I3D_8x8_R50.pyth",
    "slow_r50": "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/SLOW_8x8_R50.pyth",
    "x3d_m": "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_M.pyth",
}


def _hub_builder(name: str) -> Callable[..., nn.Module]:
    from pytorchvideo.models import hub

    return getattr(hub, name)


class PytorchvideoBackbone(nn.Module):
    """A pytorchvideo network whose head pools globally and returns features.

    ``forward(clips [B, 3, T, S, S]) -> [B, feature_dim]``; ``classify(clips) -> logits [B, 400]``.
    """

    def __init__(self, net: nn.Module, name: str, crop_size: int = 224):
        super().__init__()
        head = net.blocks[-1]
        if hasattr(head.pool, "post_conv"):  # X3D ProjectedPool: keep its convs, pool globally
            head.pool.pool = nn.AdaptiveAvgPool3d(1)
        else:
            head.pool = nn.AdaptiveAvgPool3d(1)
        self.classifier = head.proj  # Linear(2048, 400), used by classify only
        head.proj, head.dropout, head.activation = None, None, None
        self.net = net
        self.name = name
        self.feature_dim = FEATURE_DIMS[name]
        self.crop_size = int(crop_size)
        self.labels: list[str] | None = load_kinetics400_labels() if self.classifier.out_features == 400 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clips [B, 3, T, S, S] (Kinetics mean/std normalised) -> features [B, feature_dim]."""
        if x.ndim != 5:
            raise ValueError(f"{self.name} expects clips [B, C, T, H, W], got shape {tuple(x.shape)}")
        return self.net(x)  # head: adaptive pool [B, D, 1, 1, 1] -> output_pool -> view [B, D]

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Clips [B, 3, T, S, S] -> Kinetics-400 logits [B, 400] (pre-softmax)."""
        return self.classifier(self.forward(x))

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 RGB frames [F, H, W, 3] -> clip [3, F, S, S], Kinetics mean/std normalised."""
        return video_to_tensor(frames, self.crop_size, mean=KINETICS_MEAN, std=KINETICS_STD)


def load_pytorchvideo_weights(net: nn.Module, name: str, weights_path: str | os.PathLike) -> None:
    """Load a pytorchvideo checkpoint (``model_state``) into the hub network ``net``; errors name the file."""

    if not os.path.isfile(weights_path):
        raise FileNotFoundError(
            f"{name} weights file {weights_path} does not exist; create it with the `weights_visual` stage "
            "(pipeline.backbones.pytorchvideo_models.obtain_pytorchvideo) or set params.yaml weights.visual.local_path"
        )
    load_state_checked(net, load_torch_checkpoint(weights_path, key="model_state"), weights_path, name)


def build_pytorchvideo_backbone(
    name: str,
    weights_path: str | os.PathLike | None = None,
    crop_size: int = 224,
) -> PytorchvideoBackbone:
    """Build ``name`` (i3d_r50, slow_r50, x3d_m) as a feature extractor, in eval mode.

    Args:
        name: the pytorchvideo hub model.
        weights_path: pytorchvideo checkpoint (``{"model_state": state_dict}`` or the bare state
            dict); None gives a random initialisation whose features are meaningless (warning).
        crop_size: side of the square frames ``preprocess`` produces.
    """
    if name not in PYTORCHVIDEO_BACKBONES:
        raise ValueError(f"unknown pytorchvideo backbone {name!r}; choose one of {PYTORCHVIDEO_BACKBONES}")
    net = _hub_builder(name)(pretrained=False)
    if weights_path is None:
        log.warning("%s: no weights given, random initialisation: features are meaningless without weights", name)
    else:
        load_pytorchvideo_weights(net, name, weights_path)
    return PytorchvideoBackbone(net, name, crop_size=crop_size).eval()


def obtain_pytorchvideo(
    name: str,
    out_path: str | os.PathLike,
    local_path: str | os.PathLike | None = None,
    url: str | None = None,
    expected_sha256: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    """Put pytorchvideo's Kinetics-400 checkpoint for ``name`` (i3d_r50, slow_r50, x3d_m) at ``out_path``.

    From ``local_path`` or pytorchvideo's hub URL; the file must load (weights_only) into the
    backbone's architecture before it is renamed into place. Records its sha256 in the manifest.
    """
    if name not in PYTORCHVIDEO_URLS:
        raise ValueError(f"unknown pytorchvideo backbone {name!r}; choose one of {sorted(PYTORCHVIDEO_URLS)}")
    url = url or PYTORCHVIDEO_URLS[name]
    file_name = url.rsplit("/", 1)[-1]
    hint = (
        f"download {file_name} from {url}, put it e.g. at data/raw/weights/ and set params.yaml "
        "`weights.visual.local_path` to it"
    )

    def validate(path: Path) -> None:
        build_pytorchvideo_backbone(name, weights_path=path)

    return obtain_checkpoint(f"{name} checkpoint", out_path, local_path, url, backbone=name,
                             weights=f"pytorchvideo model zoo Kinetics-400 ({file_name})",
                             fmt="pytorchvideo checkpoint {'model_state': state_dict}", validate=validate, hint=hint,
                             expected_sha256=expected_sha256, timeout=timeout)
