"""Obtaining weights safely: downloads, checksums, atomic writes, manifests, restricted loading.

Every product is written to a temporary file beside its destination and renamed into place only
when it is complete and verified, with a JSON manifest beside it (``visual.pt`` -> ``visual.json``)
that records where the weights came from and their sha256.

- Third-party torch checkpoints (PANN Cnn14 from Zenodo, obtained here; pytorchvideo's Kinetics
  checkpoints, :func:`pipeline.backbones.pytorchvideo_models.obtain_pytorchvideo`) are kept as
  published (so their sha256 is the publisher's) and only ever opened with
  ``torch.load(weights_only=True)``.
- Pickles of numpy arrays (DeepMind's I3D in Flax layout,
  :mod:`pipeline.backbones.i3d_weights`) go through :func:`restricted_loads`.

This module imports no backbone: backbones import it, never the other way round.
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
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .errors import PipelineError

# -- what we fetch -----------------------------------------------------------------------------
PANN_CNN14_URL = "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth?download=1"
PANN_CNN14_FILE = "Cnn14_mAP=0.431.pth"
# Size as listed by several independent public projects that pin this file (e.g. panns loaders);
# the sha256 is the one two independent projects pin (one in full, one its first 16 digits).
PANN_CNN14_SIZE = 327_428_481
PANN_CNN14_SHA256 = "0dc499e40e9761ef5ea061ffc77697697f277f6a960894903df3ada000e34b31"



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
def temp_beside(dest: Path) -> Iterator[Path]:
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
    with temp_beside(path) as tmp:
        tmp.write_text(json.dumps(dict(manifest), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    return path


def check_digest(what: str, actual: str, expected: str | None) -> None:
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
    with temp_beside(dest) as tmp:
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
        check_digest(url, sha, expected_sha256)
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
        check_digest(str(src), sha, expected_sha256)
        if validate is not None:
            validate(src)
        return sha
    with temp_beside(dest) as tmp:
        shutil.copyfile(src, tmp)
        _fsync(tmp)
        sha = sha256_file(tmp)
        check_digest(str(src), sha, expected_sha256)
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


def local_or_download(
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


def obtain_checkpoint(
    what: str,
    out_path: str | os.PathLike,
    local_path: str | os.PathLike | None,
    url: str,
    *,
    backbone: str,
    weights: str,
    fmt: str,
    validate: Callable[[Path], None],
    hint: str,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    """Put a checkpoint used as is at ``out_path`` (``local_or_download``: ``local_path`` copied
    after checks, or ``url`` downloaded; ``validate`` must accept it) and write its manifest:
    ``{"backbone", "weights" (what they are), "source", "file", "sha256", "size", "format"}``."""
    out_path = Path(out_path)
    sha, origin = local_or_download(what, local_path, url, out_path, expected_size, expected_sha256, timeout,
                                     validate, hint)
    manifest = {"backbone": backbone, "weights": weights, "source": origin, "file": out_path.name, "sha256": sha,
                "size": out_path.stat().st_size, "format": fmt}
    write_manifest(out_path, manifest)
    return manifest


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
    hint = (
        f"download {PANN_CNN14_FILE} ({PANN_CNN14_SIZE} bytes) from https://zenodo.org/record/3987831, "
        "put it e.g. at data/raw/weights/ and set params.yaml `weights.audio.local_path` to it"
    )
    return obtain_checkpoint("PANN Cnn14 checkpoint", out_path, local_path, url, backbone="pann_cnn14",
                             weights="PANNs Cnn14 (AudioSet), mAP 0.431", fmt="PANN checkpoint {'model': state_dict}",
                             validate=_validate_pann, hint=hint, expected_size=expected_size,
                             expected_sha256=expected_sha256, timeout=timeout)
