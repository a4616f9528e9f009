"""GPU (NVDEC) decoding: decoder selection, the reasons it cannot run, the device-side transforms,
and, on a machine with CUDA + PyNvVideoCodec, NVDEC frames and features against decord's."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from pipeline.decoding import iter_segment_frames, probe_video
from pipeline.extract import extract_visual
from pipeline.gpu_decoding import (
    GpuDecodeUnavailable,
    _import_nvc,
    iter_segment_frames_nvdec,
    nvdec_unavailable_reason,
    resolve_decoder,
    rotate_upright,
)
from pipeline.store import read_store, store_attrs
from pipeline.transforms import video_to_tensor
from test_extract import GOOD_ROWS, TinyVisual, media, segment_table  # noqa: F401  (media is a fixture)

HAS_NVC = importlib.util.find_spec("PyNvVideoCodec") is not None
HAS_NVDEC = torch.cuda.is_available() and HAS_NVC and nvdec_unavailable_reason(torch.device("cuda")) is None


def test_cpu_decoding_is_the_default_without_cuda():
    cpu = torch.device("cpu")
    assert resolve_decoder("cpu", cpu) == "cpu"
    assert resolve_decoder("auto", cpu) == "cpu"  # a CPU extraction never decodes on a GPU
    assert resolve_decoder(" AUTO ", cpu) == "cpu"
    with pytest.raises(ValueError, match=r"decoder 'vaapi'.*auto, cpu, nvdec"):
        resolve_decoder("vaapi", cpu)


def test_nvdec_without_a_gpu_is_a_clear_error_not_a_fallback():
    with pytest.raises(GpuDecodeUnavailable, match=r"decoder 'nvdec' requested but the extraction device is cpu, not a "
                                                   r"CUDA GPU \(use decoder: auto or cpu\)"):
        resolve_decoder("nvdec", torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_nvdec_on_a_cuda_device_without_cuda_says_so():
    assert nvdec_unavailable_reason(torch.device("cuda")) == "CUDA is not available on this machine"
    assert resolve_decoder("auto", torch.device("cuda")) == "cpu"
    with pytest.raises(GpuDecodeUnavailable, match="CUDA is not available"):
        resolve_decoder("nvdec", torch.device("cuda"))


@pytest.mark.skipif(HAS_NVC, reason="PyNvVideoCodec is installed here")
def test_missing_pynvvideocodec_names_the_package_and_the_extra():
    with pytest.raises(GpuDecodeUnavailable, match=r"PyNvVideoCodec is not installed.*pip install -e '\.\[gpu\]'"):
        _import_nvc()


def test_extract_visual_refuses_nvdec_on_cpu_before_writing_anything(media, tmp_path):  # noqa: F811
    store = tmp_path / "v.h5"
    with pytest.raises(GpuDecodeUnavailable, match="not a CUDA GPU"):
        extract_visual(segment_table(GOOD_ROWS), media, TinyVisual(), store, frames_per_segment=4, device="cpu",
                       decoder="nvdec", progress=False)
    assert not store.exists() and not list(tmp_path.iterdir())


def test_ray_engine_with_nvdec_is_refused_clearly():
    from pipeline.extract.runner import _check_engine

    with pytest.raises(ValueError, match="engine 'local' only"):
        _check_engine("ray", "nvdec")
    with pytest.raises(ValueError, match=r"engine 'spark': use one of local, ray"):
        _check_engine("spark")
    _check_engine("ray", "cpu")  # fine


def test_auto_decoder_on_cpu_keeps_the_cpu_store_identity(media, tmp_path, one_torch_thread):  # noqa: F811
    table = segment_table(GOOD_ROWS)
    extract_visual(table, media, TinyVisual(), tmp_path / "auto.h5", frames_per_segment=4, decoder="auto",
                   progress=False)
    extract_visual(table, media, TinyVisual(), tmp_path / "cpu.h5", frames_per_segment=4, decoder="cpu",
                   progress=False)
    a, b = read_store(tmp_path / "auto.h5"), read_store(tmp_path / "cpu.h5")
    assert sorted(a) == sorted(b) == ["a", "b", "c"]
    for vid in a:
        np.testing.assert_array_equal(a[vid], b[vid])
    assert "decoder" not in store_attrs(tmp_path / "auto.h5")  # CPU-decoded stores keep their old identity


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotate_upright_matches_the_cpu_decoder_rotation(rotation):
    frames = np.random.default_rng(rotation).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)  # [N, H, W, 3]
    expected = np.stack([np.rot90(f, k=rotation // 90) for f in frames])  # as pipeline.decoding does
    got = rotate_upright(torch.from_numpy(frames), rotation)
    np.testing.assert_array_equal(got.numpy(), expected)
    with pytest.raises(ValueError, match="multiple of 90"):
        rotate_upright(torch.from_numpy(frames), 45)


def test_device_side_transform_equals_the_numpy_path():
    # GPU-decoded frames are torch tensors: the same resize / crop / normalise must apply to them.
    frames = np.random.default_rng(0).integers(0, 256, (4, 30, 52, 3), dtype=np.uint8)  # [F, H, W, 3]
    for kwargs in ({}, {"mean": (0.45,) * 3, "std": (0.225,) * 3}):
        a = video_to_tensor(frames, 16, **kwargs)  # [3, F, 16, 16]
        b = video_to_tensor(torch.from_numpy(frames), 16, **kwargs)
        assert b.device.type == "cpu" and b.shape == (3, 4, 16, 16)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="uint8"):
        video_to_tensor(torch.zeros(4, 30, 52, 3), 16)


# -- only where CUDA and PyNvVideoCodec are present (the GPU machines) ---------------------------------
@pytest.mark.skipif(not HAS_NVDEC, reason="needs CUDA + PyNvVideoCodec (NVDEC)")
def test_nvdec_frames_match_decord_within_colour_conversion(shared_data):
    path = shared_data / "videos" / "bikes.mp4"
    info = probe_video(path)
    segments = [(0.0, 50.0), (100.0, 150.0)]
    cpu = dict(iter_segment_frames(path, segments, 8, info=info))  # [F, H, W, 3] numpy, display size
    gpu = dict(iter_segment_frames_nvdec(path, segments, 8, torch.device("cuda"), info=info))
    for k in cpu:
        assert gpu[k].device.type == "cuda" and tuple(gpu[k].shape) == cpu[k].shape
        diff = np.abs(gpu[k].cpu().numpy().astype(np.int16) - cpu[k].astype(np.int16))
        assert diff.mean() < 3.0, diff.mean()  # NVDEC's YUV -> RGB differs from swscale's by rounding


@pytest.mark.skipif(not HAS_NVDEC, reason="needs CUDA + PyNvVideoCodec (NVDEC)")
def test_nvdec_extraction_close_to_cpu_and_keyed_apart(media, tmp_path):  # noqa: F811
    table = segment_table(GOOD_ROWS)
    kw = dict(frames_per_segment=4, device="cuda", progress=False)
    extract_visual(table, media, TinyVisual(), tmp_path / "gpu.h5", decoder="nvdec", **kw)
    extract_visual(table, media, TinyVisual(), tmp_path / "cpu.h5", decoder="cpu", **kw)
    assert store_attrs(tmp_path / "gpu.h5")["decoder"] == "nvdec"
    a, b = read_store(tmp_path / "gpu.h5"), read_store(tmp_path / "cpu.h5")
    for vid in a:
        cos = (a[vid] * b[vid]).sum(1) / (np.linalg.norm(a[vid], axis=1) * np.linalg.norm(b[vid], axis=1) + 1e-12)
        assert cos.min() > 0.95, (vid, cos)
