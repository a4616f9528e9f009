"""pipeline.transforms.video_to_tensor on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.transforms import KINETICS_MEAN, KINETICS_STD, resized_short_side, video_to_tensor


def _to_unit(v: float) -> float:
    """uint8 value -> DeepMind's [-1, 1]."""
    return v / 255.0 * 2.0 - 1.0


def test_identity_size_only_normalises_and_reorders():
    frames = np.arange(2 * 3 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 3)  # [F, H, W, C]
    out = video_to_tensor(frames, crop_size=3)
    assert out.shape == (3, 2, 3, 3) and out.dtype == torch.float32
    # out[c, f, y, x] == frames[f, y, x, c] mapped to [-1, 1]
    assert out[2, 1, 0, 1].item() == pytest.approx(_to_unit(frames[1, 0, 1, 2]), abs=1e-6)
    assert out[0, 0, 2, 2].item() == pytest.approx(_to_unit(frames[0, 2, 2, 0]), abs=1e-6)
    assert out.min().item() >= -1.0 and out.max().item() <= 1.0


def test_extremes_map_to_value_range():
    frames = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    frames[0, 0, 0] = 255
    out = video_to_tensor(frames, 2, value_range=(0.0, 1.0))
    assert out[:, 0, 0, 0].tolist() == [1.0, 1.0, 1.0]
    assert out[:, 0, 1, 1].tolist() == [0.0, 0.0, 0.0]


def test_landscape_centre_crop_without_resize():
    # H = 2 is already the short side: no resize, crop columns 1..2 of 5 ((5 - 2) // 2 = 1).
    frames = np.zeros((1, 2, 5, 3), dtype=np.uint8)
    frames[0, :, :, 0] = np.array([10, 20, 30, 40, 50], dtype=np.uint8)
    out = video_to_tensor(frames, 2, value_range=(0.0, 255.0))
    assert out.shape == (3, 1, 2, 2)
    assert out[0, 0].tolist() == [[20.0, 30.0], [20.0, 30.0]]


def test_portrait_centre_crop_without_resize():
    # W = 4 is the short side; rows (6 - 4) // 2 = 1 .. 4 are kept.
    frames = np.zeros((1, 6, 4, 3), dtype=np.uint8)
    frames[0, :, :, 1] = np.arange(6, dtype=np.uint8)[:, None] * 10
    out = video_to_tensor(frames, 4, value_range=(0.0, 255.0))
    assert out.shape == (3, 1, 4, 4)
    assert out[1, 0, :, 0].tolist() == [10.0, 20.0, 30.0, 40.0]


def test_antialiased_downscale_by_two():
    # Columns [0, 40, 80, 120] -> 2 columns with PIL-style antialiased bilinear (triangle of
    # half-width 2 input pixels): first output = (0*.75 + 40*.75 + 80*.25) / 1.75 = 200 / 7.
    # H = 2 -> short side 1, long side 4 * 1 / 2 = 2, centre crop keeps column (2 - 1) // 2 = 0.
    frames = np.zeros((1, 2, 4, 3), dtype=np.uint8)
    frames[0, :, :, :] = np.array([0, 40, 80, 120], dtype=np.uint8)[None, :, None]
    out = video_to_tensor(frames, 1, value_range=(0.0, 255.0))
    assert out.shape == (3, 1, 1, 1)
    assert out[:, 0, 0, 0].tolist() == pytest.approx([200 / 7] * 3, abs=1e-4)


def test_tiny_frame_upscale_is_bilinear():
    # 2x2 -> 4x4, align_corners=False: sample positions -0.25, 0.25, 0.75, 1.25 (clamped)
    # give [a, .75a + .25b, .25a + .75b, b] along each axis.
    frames = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    frames[0, :, 0, 2] = 10
    frames[0, :, 1, 2] = 50
    out = video_to_tensor(frames, 4, value_range=(0.0, 255.0))
    assert out.shape == (3, 1, 4, 4)
    for row in out[2, 0].tolist():
        assert row == pytest.approx([10.0, 20.0, 40.0, 50.0], abs=1e-4)


def test_single_pixel_frames_upscale_to_constant():
    frames = np.full((3, 1, 1, 3), 51, dtype=np.uint8)
    out = video_to_tensor(frames, 5)
    assert out.shape == (3, 3, 5, 5)
    assert torch.allclose(out, torch.full_like(out, _to_unit(51)), atol=1e-6)


def test_odd_sizes_shape_and_constant_preserved():
    # 5x7 -> short side 3, long side floor(7 * 3 / 5 + .5) = 4, crop 3x3; a constant stays constant.
    assert resized_short_side(5, 7, 3) == (3, 4)
    assert resized_short_side(7, 5, 3) == (4, 3)
    assert resized_short_side(720, 1280, 224) == (224, 398)
    frames = np.full((2, 5, 7, 3), 200, dtype=np.uint8)
    out = video_to_tensor(frames, 3)
    assert out.shape == (3, 2, 3, 3)
    assert torch.allclose(out, torch.full_like(out, _to_unit(200)), atol=1e-5)


def test_mean_std_normalisation():
    frames = np.zeros((1, 1, 1, 3), dtype=np.uint8)
    frames[0, 0, 0] = [0, 114, 255]
    out = video_to_tensor(frames, 1, mean=KINETICS_MEAN, std=KINETICS_STD)
    expected = [(0 - 0.45) / 0.225, (114 / 255 - 0.45) / 0.225, (1 - 0.45) / 0.225]
    assert out[:, 0, 0, 0].tolist() == pytest.approx(expected, abs=1e-5)
    per_channel = video_to_tensor(frames, 1, mean=(0.0, 0.5, 1.0), std=(1.0, 0.5, 0.25))
    assert per_channel[:, 0, 0, 0].tolist() == pytest.approx([0.0, (114 / 255 - 0.5) / 0.5, 0.0], abs=1e-5)


def test_chunked_processing_matches_one_pass(monkeypatch):
    import pipeline.transforms as transforms

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(5, 9, 13, 3), dtype=np.uint8)
    whole = video_to_tensor(frames, 6)
    monkeypatch.setattr(transforms, "_CHUNK_ELEMENTS", 9 * 13 * 3 * 2)  # two frames per chunk
    chunked = video_to_tensor(frames, 6)
    assert torch.equal(whole, chunked)


@pytest.mark.parametrize(
    "frames, message",
    [
        (np.zeros((2, 4, 4, 3), dtype=np.float32), "uint8"),
        (np.zeros((4, 4, 3), dtype=np.uint8), "shape"),
        (np.zeros((2, 4, 4, 1), dtype=np.uint8), "shape"),
        (np.zeros((0, 4, 4, 3), dtype=np.uint8), "non-empty"),
        (np.zeros((2, 0, 4, 3), dtype=np.uint8), "non-empty"),
    ],
)
def test_bad_frames_raise(frames, message):
    with pytest.raises(ValueError, match=message):
        video_to_tensor(frames, 4)


def test_bad_arguments_raise():
    frames = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    with pytest.raises(TypeError):
        video_to_tensor(frames.tolist(), 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="crop_size"):
        video_to_tensor(frames, 0)
    with pytest.raises(ValueError, match="both"):
        video_to_tensor(frames, 4, mean=KINETICS_MEAN)
    with pytest.raises(ValueError, match="not both"):
        video_to_tensor(frames, 4, value_range=(0, 1), mean=KINETICS_MEAN, std=KINETICS_STD)
    with pytest.raises(ValueError, match="value_range"):
        video_to_tensor(frames, 4, value_range=(1, 1))
