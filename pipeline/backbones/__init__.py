"""Backbone registry: names in ``params.yaml`` -> feature extractors.

Every visual backbone is a ``torch.nn.Module`` in eval mode with ``name``, ``feature_dim``,
``crop_size``, ``labels`` (class names or None), ``preprocess(frames_uint8 [F, H, W, 3]) ->
[3, F, S, S]``, ``forward(clips [B, 3, F, S, S]) -> [B, D]`` and ``classify(clips) -> logits [B, C]``.
Every audio backbone has ``name``, ``feature_dim``, ``sample_rate``, ``min_samples``, ``labels``,
``forward(waveforms [B, N]) -> [B, D]`` and ``classify(waveforms) -> probabilities [B, C]``.
Imports are lazy so that choosing ``logmel`` never imports ``panns_inference``.
"""

from __future__ import annotations

VISUAL_BACKBONES = ("i3d", "i3d_r50", "slow_r50", "x3d_m")
AUDIO_BACKBONES = ("pann_cnn14", "logmel")


def build_visual_backbone(name: str, weights_path=None, device="cpu", **kwargs):
    """Build the visual backbone ``name`` with weights from ``weights_path`` (None = random init)."""
    if name == "i3d":
        from .i3d import build_i3d

        model = build_i3d(weights_path=weights_path, **kwargs)
    elif name in ("i3d_r50", "slow_r50", "x3d_m"):
        from .pytorchvideo_models import build_pytorchvideo_backbone

        model = build_pytorchvideo_backbone(name, weights_path=weights_path, **kwargs)
    else:
        raise ValueError(f"unknown visual backbone {name!r}; choose one of {VISUAL_BACKBONES}")
    return model.to(device).eval()


def build_audio_backbone(name: str, weights_path=None, device="cpu", **kwargs):
    """Build the audio backbone ``name`` with weights from ``weights_path`` (None = random init)."""
    if name == "pann_cnn14":
        from .audio import build_pann_cnn14

        model = build_pann_cnn14(weights_path=weights_path, **kwargs)
    elif name == "logmel":
        from .audio import build_logmel

        model = build_logmel(**kwargs)
    else:
        raise ValueError(f"unknown audio backbone {name!r}; choose one of {AUDIO_BACKBONES}")
    return model.to(device).eval()
