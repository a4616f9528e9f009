"""Frames -> backbone input: resize the short side, centre crop, normalise (torch only).

``pytorchvideo.transforms`` cannot be imported with current torchvision (it needs the removed
``torchvision.transforms.functional_tensor``), so the three steps are written here in plain torch:

1. resize so that the short side equals ``crop_size`` (bilinear, ``align_corners=False``,
   antialiased when shrinking; small frames are upscaled the same way); the long side becomes
   ``floor(long * crop_size / short + 0.5)``;
2. centre crop ``crop_size x crop_size``; the top-left corner is ``((H' - S) // 2, (W' - S) // 2)``,
   so an odd surplus leaves the extra pixel on the bottom/right;
3. normalise from uint8 ``v`` either to a value range ``lo + v / 255 * (hi - lo)`` (DeepMind I3D:
   ``[-1, 1]``) or with per-channel ``(v / 255 - mean) / std`` (pytorchvideo's Kinetics models).

Frames are processed in chunks so that memory is bounded by ``_CHUNK_ELEMENTS`` floats plus the
output, whatever the source resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

KINETICS_MEAN = (0.45, 0.45, 0.45)  # pytorchvideo's Kinetics-400 normalisation, in [0, 1] units
KINETICS_STD = (0.225, 0.225, 0.225)

_CHUNK_ELEMENTS = 1 << 25  # float32 elements of source frames converted at once (128 MiB)


def resized_short_side(height: int, width: int, short_side: int) -> tuple[int, int]:
    """Size ``(H', W')`` with the short side equal to ``short_side`` and the aspect kept."""
    if height <= width:
        return short_side, max(short_side, int(np.floor(width * short_side / height + 0.5)))
    return max(short_side, int(np.floor(height * short_side / width + 0.5))), short_side


def _check_frames(frames: np.ndarray | torch.Tensor) -> None:
    if not isinstance(frames, (np.ndarray, torch.Tensor)):
        raise TypeError(f"frames must be a numpy array or torch tensor [F, H, W, 3] uint8, got {type(frames).__name__}")
    if frames.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape [F, H, W, 3] (RGB), got {tuple(frames.shape)}")
    if min(frames.shape[:3]) < 1:
        raise ValueError(f"frames must be non-empty, got shape {tuple(frames.shape)}")


def _normaliser(
    value_range: Sequence[float] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale [3], shift [3]) such that ``out = v * scale + shift`` for uint8 values ``v``."""
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    if mean is not None and value_range is not None:
        raise ValueError("give either value_range or mean/std, not both")
    if mean is not None:
        m = torch.as_tensor(mean, dtype=torch.float64)
        s = torch.as_tensor(std, dtype=torch.float64)
        if m.shape != (3,) or s.shape != (3,) or bool((s <= 0).any()):
            raise ValueError(f"mean and std must be 3 values with std > 0, got {mean}, {std}")
        return (1.0 / (255.0 * s)).float(), (-m / s).float()
    lo, hi = (-1.0, 1.0) if value_range is None else (float(value_range[0]), float(value_range[1]))
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    return torch.full((3,), (hi - lo) / 255.0), torch.full((3,), lo)


def video_to_tensor(
    frames: np.ndarray | torch.Tensor,
    crop_size: int,
    value_range: Sequence[float] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> torch.Tensor:
    """RGB frames -> one normalised clip for a video backbone.

    Args:
        frames: uint8 [F, H, W, 3], RGB, any H and W >= 1 (portrait, odd, tiny all work): a numpy
            array, or a torch tensor on any device (GPU-decoded frames stay on their GPU: the
            result is on the same device, computed with the same operations).
        crop_size: side S of the square output.
        value_range: ``(low, high)`` the uint8 range [0, 255] maps to; the default (when neither
            this nor mean/std is given) is DeepMind I3D's ``(-1, 1)``.
        mean, std: per-channel statistics in [0, 1] units, used instead of ``value_range``.

    Returns:
        float32 tensor [3, F, S, S] (channels first, then time), contiguous, on the frames' device
        (CPU for a numpy array).
    """
    _check_frames(frames)
    if not isinstance(crop_size, (int, np.integer)) or crop_size < 1:
        raise ValueError(f"crop_size must be a positive integer, got {crop_size!r}")
    scale, shift = _normaliser(value_range, mean, std)
    num_frames, height, width, _ = frames.shape
    new_h, new_w = resized_short_side(height, width, int(crop_size))
    top, left = (new_h - crop_size) // 2, (new_w - crop_size) // 2

    device = frames.device if isinstance(frames, torch.Tensor) else torch.device("cpu")
    scale, shift = scale.to(device), shift.to(device)
    out = torch.empty(num_frames, 3, crop_size, crop_size, device=device)  # [F, 3, S, S]
    chunk = max(1, _CHUNK_ELEMENTS // (height * width * 3))
    for start in range(0, num_frames, chunk):
        part = frames[start : start + chunk]
        x = part if isinstance(part, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(part))  # [f, H, W, 3] uint8
        x = x.permute(0, 3, 1, 2).float()  # [f, 3, H, W] in [0, 255]
        if (new_h, new_w) != (height, width):
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
        x = x[:, :, top : top + crop_size, left : left + crop_size]  # [f, 3, S, S]
        out[start : start + chunk] = x * scale.view(1, 3, 1, 1) + shift.view(1, 3, 1, 1)
    return out.permute(1, 0, 2, 3).contiguous()  # [3, F, S, S]
