"""Resumable, atomic HDF5 feature store.

Layout while a run is in progress (``path`` = ``.../visual.h5``)::

    visual.h5.parts/store.json       the store's attributes (backbone, weights sha256, ...)
    visual.h5.parts/<vid>.npz        one committed video: ``features`` float32 [T, D] + ``attrs`` (JSON)
                                     + ``key`` (what made it, see ``part_keys``)
    visual.h5.parts/.tmp-<pid>-<vid>.npz   a part being written (never counts as done)

``put`` writes a part to a temporary file, fsyncs it and ``os.replace``s it into place, so a run
killed at any point (kill -9) leaves only whole parts. A rerun calls ``resume(keys)`` with the key
of every video it wants (``pipeline.part_keys``: the video's content fingerprint, its segment
rows, the store's attributes): a part whose stored key differs (the video was replaced, its rows
edited) is discarded as stale, an unreadable one (torn by a crash of the machine) is discarded as
torn, each with a warning and counted in ``discarded``; the rest are reused.
``finalize`` merges the parts into ``path`` (again through a temporary file and ``os.replace``):
one float32 [T, D] dataset per video at ``/<vid>`` with its attributes, and file attributes = the
store's attributes + ``created`` (UTC time) + package versions. Everything but ``created`` is a
function of the features and the attributes, so an interrupted-and-resumed run and an
uninterrupted one give equal files. ``finalize`` also writes the failures table
(``<stem>_failures.csv``: vid, stage, error_type, message) and removes the parts.

Opening a store whose parts were written with different attributes (another backbone, weights,
frames per segment...) discards those parts with a warning and starts clean: they could never be
merged with the new ones, and DVC reruns the stage exactly when such parameters change.
One writer per store at a time.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
import platform
import shutil
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable, Mapping

import h5py
import numpy as np

from .errors import PipelineError, disk_full, is_disk_full
from .paths import check_id, safe_join

_MANIFEST = "store.json"
_VERSIONED_PACKAGES = ("torch", "decord", "av", "numpy", "h5py")
FAILURE_COLUMNS = ("vid", "stage", "error_type", "message")

AttrValue = str | int | float | bool


class StoreError(PipelineError, OSError):
    """A feature store or part that cannot be read (missing, truncated, not HDF5)."""


@dataclass(frozen=True)
class Failure:
    """One video that could not be extracted, and why."""

    vid: str
    stage: str  # locate | probe | segments | decode | model
    error_type: str
    message: str


def failures_path(store_path: str | os.PathLike) -> Path:
    """``.../visual.h5`` -> ``.../visual_failures.csv``."""
    store_path = Path(store_path)
    return store_path.with_name(f"{store_path.stem}_failures.csv")


def parts_dir(store_path: str | os.PathLike) -> Path:
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".parts")


def _normalise_attrs(attrs: dict, where: str) -> dict[str, AttrValue]:
    """Plain, HDF5-storable attribute values; None becomes "" (HDF5 has no null)."""
    out: dict[str, AttrValue] = {}
    for key, value in sorted(attrs.items()):
        if value is None:
            value = ""
        elif isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, (int, np.integer)):
            value = int(value)
        elif isinstance(value, (float, np.floating)):
            value = float(value)
        elif isinstance(value, (str, os.PathLike)):
            value = str(value)
        else:
            raise TypeError(f"{where}: attribute {key!r} has type {type(value).__name__}; use str, int, float or bool")
        out[str(key)] = value
    return out


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine the features (recorded in every store)."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def _atomic_write(target: Path, write, suffix: str = "", kept: str = "") -> None:
    """Write through ``write(file)`` into a temporary sibling, fsync, rename onto ``target``.

    A full disk raises :class:`~pipeline.errors.DiskFullError` naming ``target``, the free space
    and ``kept`` (what is safe); the temporary file is removed.
    """
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}{suffix}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(target, exc, kept) from exc
        raise
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FeatureStore:
    """Per-video feature parts that survive a kill, merged into one HDF5 file at the end.

    attrs: the store's identity (backbone, weights_sha256, frames_per_segment, sample_rate,
    crop_size, ...): str/int/float/bool/None values.
    parts: the folder of parts (default ``<path>.parts``). Under DVC, put it outside the stage's
    ``outs`` (DVC empties outputs before rerunning a stage, which would lose the parts).
    """

    def __init__(self, path: str | os.PathLike, attrs: dict, parts: str | os.PathLike | None = None):
        self.path = Path(path)
        self.parts = Path(parts) if parts is not None else parts_dir(self.path)
        self.attrs = _normalise_attrs(attrs, str(self.path))
        self.failures: list[Failure] = []
        self.discarded = {"stale": 0, "torn": 0}  # parts thrown away (and so re-done) by this run
        manifest = self.parts / _MANIFEST
        if self.parts.exists():
            previous = self._read_manifest(manifest)
            if previous != self.attrs:
                self.discarded["stale"] += len(self.done())
                warnings.warn(
                    f"{self.parts}: parts were extracted with {previous} but this run uses {self.attrs}; "
                    "discarding them and starting clean",
                    stacklevel=2,
                )
                shutil.rmtree(self.parts)
        self.parts.mkdir(parents=True, exist_ok=True)
        for stale in self.parts.glob(".tmp-*"):  # half-written parts of a killed run
            stale.unlink()
        for name in (self.path.name, failures_path(self.path).name):  # a merge killed half-way
            for stale in self.path.parent.glob(f".tmp-*-{name}"):
                stale.unlink()
        if not manifest.exists():
            text = json.dumps(self.attrs, sort_keys=True, indent=1).encode()
            _atomic_write(manifest, lambda fh: fh.write(text))

    @staticmethod
    def _read_manifest(manifest: Path) -> dict | None:
        try:
            return json.loads(manifest.read_text())
        except (OSError, ValueError):
            return None

    def _part(self, vid: str) -> Path:
        return safe_join(self.parts, check_id(vid, self.path) + ".npz")

    def done(self) -> set[str]:
        """Ids of the videos whose features are committed."""
        return {p.name[: -len(".npz")] for p in self.parts.glob("*.npz") if not p.name.startswith(".")}

    def resume(self, keys: Mapping[str, str]) -> set[str]:
        """The videos of ``keys`` ({vid: part key}) whose committed part can be reused.

        A part that cannot be read (torn) or whose stored key differs from ``keys[vid]`` (stale:
        its video, segment rows or settings changed since) is deleted with a warning and counted
        in ``self.discarded``; the caller re-extracts it. Parts of videos not in ``keys`` are
        left alone (and not merged by ``finalize(vids=...)``).
        """
        valid = set()
        for vid in sorted(self.done() & set(keys)):
            part = self._part(vid)
            try:
                with np.load(part, allow_pickle=False) as data:
                    stored = str(data["key"]) if "key" in data.files else None
                    feats = data["features"]  # reading it whole checks the zip CRC
                    if feats.ndim != 2:
                        raise ValueError(f"features have shape {feats.shape}")
            except Exception as exc:
                warnings.warn(f"{part}: torn part of video {vid!r} ({type(exc).__name__}: {exc}); "
                              "discarding it, the video is extracted again", stacklevel=2)
                self.discarded["torn"] += 1
                part.unlink(missing_ok=True)
                continue
            if stored != keys[vid]:
                warnings.warn(f"{part}: stale part of video {vid!r} (its video file, segment rows or settings "
                              "changed since it was extracted); discarding it, the video is extracted again",
                              stacklevel=2)
                self.discarded["stale"] += 1
                part.unlink(missing_ok=True)
                continue
            valid.add(vid)
        return valid

    def put(self, vid: str, feats: np.ndarray, key: str | None = None, **attrs) -> None:
        """Commit the features float32 [T, D] of video ``vid`` (atomically) with per-video attrs.

        key: the part's key (``pipeline.part_keys``); ``resume`` reuses the part only for that key.
        It is kept in the part, not in the merged file.
        """
        part = self._part(vid)
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[0] == 0:
            raise ValueError(f"{self.path}: features of video {vid!r} must be [T, D] with T >= 1, got {feats.shape}")
        if not np.isfinite(feats).all():
            raise ValueError(f"{self.path}: features of video {vid!r} contain NaN or inf")
        meta = json.dumps(_normalise_attrs(attrs, f"{self.path} video {vid!r}"), sort_keys=True)

        def write(fh) -> None:
            np.savez(fh, features=feats, attrs=np.array(meta), key=np.array("" if key is None else str(key)))

        _atomic_write(part, write, kept=self._kept())

    def _kept(self) -> str:
        return f"the {len(self.done())} videos already committed are kept in {self.parts}"

    def record_failure(self, vid: str, stage: str, error: BaseException | str, error_type: str | None = None) -> Failure:
        """Remember that ``vid`` failed at ``stage`` (written to the failures table)."""
        message = " ".join(str(error).split())
        failure = Failure(vid, stage, error_type or type(error).__name__, message)
        self.failures.append(failure)
        return failure

    def write_failures(self) -> Path:
        """Write the failures table (header only when there is none) next to the store."""
        target = failures_path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        rows = sorted(self.failures, key=lambda f: (f.vid, f.stage))

        def write(fh) -> None:
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(FAILURE_COLUMNS)
            for f in rows:
                writer.writerow([f.vid, f.stage, f.error_type, f.message])
            fh.write(text.getvalue().encode())

        _atomic_write(target, write)
        return target

    def _load_part(self, vid: str) -> tuple[np.ndarray, dict]:
        part = self._part(vid)
        try:
            with np.load(part, allow_pickle=False) as data:
                return data["features"], json.loads(str(data["attrs"]))
        except Exception as exc:
            raise StoreError(f"{part}: unreadable part for video {vid!r} ({type(exc).__name__}: {exc}); delete it "
                             "and rerun to extract the video again") from exc

    def finalize(self, vids: Iterable[str] | None = None, cleanup: bool = True) -> Path:
        """Merge the committed parts (of ``vids``, default all) into the HDF5 file -> its path.

        Also writes the failures table. Parts are removed afterwards unless ``cleanup`` is False.
        """
        done = self.done()
        wanted = sorted(done if vids is None else {v for v in vids if v in done})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".tmp-{os.getpid()}-{self.path.name}")
        dim = None
        try:
            with h5py.File(tmp, "w", track_order=False) as h5:
                file_attrs = dict(self.attrs)
                file_attrs["created"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                file_attrs["num_videos"] = len(wanted)
                file_attrs.update({f"version_{k}": v for k, v in package_versions().items()})
                for key in sorted(file_attrs):
                    h5.attrs[key] = file_attrs[key]
                for vid in wanted:
                    feats, attrs = self._load_part(vid)  # [T, D]
                    if dim is not None and feats.shape[1] != dim:
                        raise ValueError(f"{self.parts}: video {vid!r} has {feats.shape[1]}-d features, others {dim}-d")
                    dim = feats.shape[1]
                    ds = h5.create_dataset(vid, data=feats, track_times=False)
                    attrs["num_segments"] = int(feats.shape[0])
                    for key in sorted(attrs):
                        ds.attrs[key] = attrs[key]
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full(self.path, exc, self._kept()) from exc
            raise
        finally:
            if tmp.exists():
                tmp.unlink()
        self.write_failures()
        if cleanup:
            shutil.rmtree(self.parts)
        return self.path


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _open(path: str | os.PathLike) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: feature store not found (run the extract stages first: dvc repro)")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise StoreError(f"{path}: not a readable HDF5 feature store ({' '.join(str(exc).split())}); it was "
                         "truncated or changed outside DVC: `dvc repro` rebuilds it (DVC sees the change), or "
                         "delete it and rerun the stage that writes it") from exc


def read_store(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All features of a finalized store: {vid: float32 [T, D]}."""
    with _open(path) as h5:
        return {vid: h5[vid][()] for vid in h5.keys()}


def store_attrs(path: str | os.PathLike) -> dict:
    """The file attributes of a finalized store (backbone, weights_sha256, versions, ...)."""
    with _open(path) as h5:
        return {key: _plain(value) for key, value in h5.attrs.items()}


def video_attrs(path: str | os.PathLike) -> dict[str, dict]:
    """Per-video attributes of a finalized store: {vid: {"num_segments": T, "has_audio": ...}}."""
    with _open(path) as h5:
        return {vid: {k: _plain(v) for k, v in h5[vid].attrs.items()} for vid in h5.keys()}
