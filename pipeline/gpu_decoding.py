"""Video frames decoded on an NVIDIA GPU (NVDEC), kept on the device for resize, crop and backbone.

Route: NVIDIA's PyNvVideoCodec (``pip install -e '.[gpu]'``), its ``SimpleDecoder`` with device
memory and interleaved RGB output, frames handed to torch through DLPack without a copy to the
host. decord2's GPU context was the first choice, but its package-registry wheels (3.4.0, every
Python version) are built without CUDA: ``decord.gpu(0)`` raises "GPU acceleration not available
on this platform" (README, "Decoding on the GPU").

Decoder choice (``extract_visual.decoder``): ``cpu`` (decord, the default everywhere without
CUDA), ``nvdec``, or ``auto`` = ``nvdec`` when the extraction device is CUDA and NVDEC can be
loaded, else ``cpu``. Asking for ``nvdec`` where it cannot run is an error that says why (no
CUDA device, PyNvVideoCodec not installed, the driver's decoder library missing), never a silent
fallback. Frames decoded on the GPU are not bit-identical to decord's (NVDEC's YUV -> RGB and
torch's resize differ from FFmpeg's swscale), so the decoder is part of the feature store's
attributes: parts decoded one way are never mixed with the other.

Frame indexing, segment sampling and rotation follow ``pipeline.decoding`` (frame counts and
times come from ``probe_video``); only the pixels come from NVDEC.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from .decoding import DecodeError, VideoInfo, probe_video, segment_frame_indices
from .errors import PipelineError

DECODERS = ("auto", "cpu", "nvdec")
INSTALL_HINT = "install NVIDIA's PyNvVideoCodec with `pip install -e '.[gpu]'`"


class GpuDecodeUnavailable(PipelineError, RuntimeError):
    """``decoder: nvdec`` was asked for where NVDEC cannot run (the message says why)."""


def _import_nvc():
    """PyNvVideoCodec, or :class:`GpuDecodeUnavailable` naming what is missing."""
    try:
        import PyNvVideoCodec as nvc  # noqa: N813  (NVIDIA's module name)
    except ImportError as exc:
        raise GpuDecodeUnavailable(f"decoder 'nvdec': PyNvVideoCodec is not installed ({exc}); {INSTALL_HINT}") from exc
    except Exception as exc:  # it loads the driver's libnvcuvid / libnvidia-encode at import
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GpuDecodeUnavailable(
            f"decoder 'nvdec': PyNvVideoCodec cannot load the NVIDIA driver's video libraries ({first}); "
            "check `nvidia-smi` and, in a container, NVIDIA_DRIVER_CAPABILITIES=compute,utility,video"
        ) from exc
    return nvc


def nvdec_unavailable_reason(device: torch.device) -> str | None:
    """Why NVDEC decoding cannot run for extraction on ``device`` (None: it can)."""
    if device.type != "cuda":
        return f"the extraction device is {device}, not a CUDA GPU"
    if not torch.cuda.is_available():
        return "CUDA is not available on this machine"
    try:
        _import_nvc()
    except GpuDecodeUnavailable as exc:
        return str(exc)
    return None


def resolve_decoder(decoder: str, device: torch.device) -> str:
    """``auto`` | ``cpu`` | ``nvdec`` -> ``cpu`` or ``nvdec`` for extraction on ``device``.

    ``nvdec`` where it cannot run raises :class:`GpuDecodeUnavailable` with the reason.
    """
    text = str(decoder).strip().lower()
    if text not in DECODERS:
        raise ValueError(f"decoder {decoder!r}: use one of {', '.join(DECODERS)}")
    if text == "cpu":
        return "cpu"
    reason = nvdec_unavailable_reason(torch.device(device))
    if text == "nvdec":
        if reason is not None:
            reason = reason.removeprefix("decoder 'nvdec': ")
            raise GpuDecodeUnavailable(f"decoder 'nvdec' requested but {reason} (use decoder: auto or cpu)")
        return "nvdec"
    return "cpu" if reason is not None else "nvdec"


def rotate_upright(frames: torch.Tensor, rotation: int) -> torch.Tensor:
    """Frames [N, H, W, 3] -> upright: ``rotation`` degrees counter-clockwise (0, 90, 180, 270),
    as ``pipeline.decoding`` does for CPU-decoded frames (``np.rot90`` over H, W)."""
    if rotation % 360 == 0:
        return frames
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    return torch.rot90(frames, k=(rotation // 90) % 4, dims=(1, 2)).contiguous()


class NvdecFrameReader:
    """One video decoded by NVDEC on ``device``: ``get_batch(indices)`` -> uint8 [U, H, W, 3] on the GPU."""

    def __init__(self, path: str | os.PathLike, device: torch.device, rotation: int = 0):
        nvc = _import_nvc()
        self.path, self.rotation = Path(path), rotation
        self.device = torch.device(device)
        gpu_id = self.device.index if self.device.index is not None else torch.cuda.current_device()
        try:
            self._decoder = nvc.SimpleDecoder(
                str(self.path), gpu_id=gpu_id, use_device_memory=True, output_color_type=nvc.OutputColorType.RGB
            )
        except Exception as exc:
            raise DecodeError(f"{self.path}: cannot open video with NVDEC ({type(exc).__name__}: {exc})") from exc

    def __len__(self) -> int:
        return len(self._decoder)

    def get_batch(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at sorted unique ``indices`` -> uint8 [len(indices), H, W, 3] on the device, upright."""
        try:
            decoded = self._decoder.get_batch_frames_by_index([int(i) for i in indices])
            frames = [torch.from_dlpack(frame) for frame in decoded]  # [H, W, 3] uint8 each, on the GPU
        except Exception as exc:
            raise DecodeError(
                f"{self.path}: NVDEC decoding of frames {int(indices[0])}..{int(indices[-1])} failed ({exc})"
            ) from exc
        if len(frames) != len(indices):
            raise DecodeError(f"{self.path}: NVDEC returned {len(frames)} of {len(indices)} frames")
        batch = torch.stack(frames).to(self.device)  # [U, H, W, 3]
        return rotate_upright(batch, self.rotation)


def iter_segment_frames_nvdec(
    path: str | os.PathLike,
    segments: Sequence[tuple[float, float]],
    frames_per_segment: int,
    device: torch.device,
    chunk_segments: int = 8,
    info: VideoInfo | None = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """As ``pipeline.decoding.iter_segment_frames``, decoded by NVDEC: yields (seg_idx, frames
    uint8 [F, H, W, 3] on ``device``) at the display size (the backbone's preprocess resizes them on
    the GPU). Segments are validated when this is called, before anything is decoded."""
    path = Path(path)
    info = info if info is not None else probe_video(path)
    indices = np.zeros((len(segments), frames_per_segment), np.int64)  # [S, F]
    for i, (s, e) in enumerate(segments):
        indices[i] = segment_frame_indices(s, e, frames_per_segment, info.num_frames, name=f"{path.name} segment {i}")
    reader = NvdecFrameReader(path, device, info.rotation)
    return _iter_chunks(reader, indices, max(1, chunk_segments))


def _iter_chunks(reader: NvdecFrameReader, indices: np.ndarray, chunk_segments: int) -> Iterator[tuple[int, torch.Tensor]]:
    for c0 in range(0, len(indices), chunk_segments):
        chunk = indices[c0 : c0 + chunk_segments]  # [c, F]
        unique, inverse = np.unique(chunk, return_inverse=True)  # [U], [c*F]
        frames = reader.get_batch(unique.tolist())  # [U, H, W, 3] on the GPU
        inverse = torch.from_numpy(inverse.reshape(chunk.shape)).to(frames.device)  # [c, F]
        for j in range(len(chunk)):
            yield c0 + j, frames[inverse[j]]  # [F, H, W, 3]
