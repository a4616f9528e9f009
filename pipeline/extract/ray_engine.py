"""The Ray Data engine: extraction spread over the CPUs and GPUs of a Ray instance or cluster.

Pipeline (one Ray Data dataset, streamed):

1. one item per video chunk: up to ``segments_per_task`` segments of one video (long videos are
   cut into several chunks), carrying its file and segment spans;
2. ``map_batches(_decode)``: CPU tasks (1 CPU each) decode a chunk with the same generators as
   the local engine (``producers.visual_frames`` / ``audio_windows``) and emit one row per segment
   (raw uint8 frames [F, H, W, 3] or a waveform [N] as bytes), plus an ``end`` row per chunk, or a
   ``fail`` / ``zeros`` row;
3. ``map_batches(_Backbone)``: an actor pool holding the backbone once per GPU (or per CPU
   worker); Ray Data forms batches of ``batch_size`` rows across chunks and videos, so short
   videos do not starve the model; each actor preprocesses its clips with the backbone's own
   ``preprocess`` and runs the model -> float32 [B, D];
4. the driver (this process) assembles each video's rows and commits the video, once all its
   segments and all its chunks are in, as the same keyed atomic part the local engine writes
   (``FeatureStore.put`` with ``part_keys``), so runs resume across engines.

Faults: a video that fails (missing, unreadable, bad segments) becomes a ``fail`` row and lands in
the failures table; a killed decoding task is retried (``max_retries``) and a killed actor is
restarted with its batch retried (Ray Data's actor pools: ``max_restarts=-1``,
``max_task_retries=-1``), so a lost worker costs a retry, not the run. One run per output: the
caller holds the store's lock (``run_lock``).

``ray_address``: "" starts a local instance on this machine's CPUs (and GPUs) and stops it at the
end; "auto" or "host:port" joins a running cluster (every node needs this package installed and
the data, weights and output on shared storage at the same paths). If Ray is already initialised
in this process, that instance is used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from ..device import autocast_context
from ..errors import PipelineError
from ..store import FeatureStore
from .jobs import VideoJob
from .local import Counts
from .producers import audio_windows, visual_frames

SEGMENTS_PER_TASK = 32  # segments of one video decoded by one task (long videos -> several tasks)
ROWS_PER_BLOCK = 4  # rows a decoding task yields at a time (bounds its memory)
DECODE_TASK_MEMORY = 512 * 2**20  # bytes reserved per decoding task (a chunk of frames + FFmpeg)
INSTALL_HINT = "engine 'ray' needs Ray: pip install -e '.[ray]'"


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise PipelineError(f"{INSTALL_HINT} ({exc})") from exc
    return ray


def _connect(ray, ray_address: str) -> bool:
    """Connect to Ray -> True when this call started (and so must stop) the instance."""
    if ray.is_initialized():
        return False
    address = str(ray_address or "").strip()
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=os.cpu_count() or 1, **kwargs)
    return True


def _items(todo: list[VideoJob], segments_per_task: int) -> list[dict]:
    """One item per chunk of ``segments_per_task`` segments of each video."""
    items = []
    for job in todo:
        chunks = max(1, -(-job.num_segments // segments_per_task))
        for c in range(chunks):
            sl = slice(c * segments_per_task, min(job.num_segments, (c + 1) * segments_per_task))
            items.append({
                "vid": job.vid, "path": "" if job.path is None else str(job.path), "first": sl.start,
                "chunks": chunks, "spans": json.dumps([
                    [None if not np.isfinite(v) else float(v) for v in (job.start_frame[i], job.end_frame[i],
                                                                        job.start_s[i], job.end_s[i])]
                    for i in range(sl.start, sl.stop)
                ]),
            })
    return items


def _row(vid: str, row: int, kind: str, info: dict | None = None, data: np.ndarray | None = None) -> dict:
    data = np.zeros(0, np.uint8) if data is None else np.ascontiguousarray(data)
    return {"vid": vid, "row": row, "kind": kind, "info": json.dumps(info or {}), "data": data.tobytes(),
            "dtype": str(data.dtype), "shape": json.dumps(list(data.shape))}


def _columns(rows: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.array([r[key] for r in rows], dtype=object if key == "data" else None) for key in rows[0]}


def _decode(batch: dict[str, np.ndarray], kind: str, decode: dict) -> Iterator[dict[str, np.ndarray]]:
    """Ray task: chunk items -> rows (clip / end / zeros / fail), ROWS_PER_BLOCK at a time."""
    for i in range(len(batch["vid"])):
        vid, first = str(batch["vid"][i]), int(batch["first"][i])
        spans = np.array(json.loads(str(batch["spans"][i])), dtype=np.float64)  # [T, 4], NaN = unknown
        path = str(batch["path"][i])
        job = VideoJob(vid, Path(path) if path else None, spans[:, 0], spans[:, 1], spans[:, 2], spans[:, 3])
        messages = visual_frames(job, **decode) if kind == "visual" else audio_windows(job, **decode)
        rows: list[dict] = []
        for message in messages:
            tag = message[0]
            if tag == "clip":
                rows.append(_row(vid, first + message[2], "clip", data=message[3]))
            elif tag == "end":
                rows.append(_row(vid, -1, "end", message[2]))
            elif tag == "zeros":
                rows.append(_row(vid, -1, "zeros", {"count": message[2], **message[3]}))
            elif tag == "fail":
                exc = message[3]
                rows = [_row(vid, -1, "fail", {"stage": message[2], "error_type": type(exc).__name__,
                                               "message": str(exc)})]  # drop this chunk's clips
            if len(rows) >= ROWS_PER_BLOCK and tag == "clip":
                yield _columns(rows)
                rows = []
        if rows:
            yield _columns(rows)


class _Backbone:
    """Ray actor: the backbone, once per GPU (or CPU worker); rows -> features [B, D]."""

    def __init__(self, backbone: torch.nn.Module, kind: str, autocast: str, threads: int):
        import ray

        self.device = torch.device("cuda") if ray.get_gpu_ids() else torch.device("cpu")
        if self.device.type == "cpu":
            torch.set_num_threads(max(1, threads))
        self.model = backbone.eval().to(self.device)
        self.kind, self.autocast = kind, autocast
        self.dim = int(backbone.feature_dim)

    def _input(self, data: bytes, dtype: str, shape: str) -> torch.Tensor:
        array = np.frombuffer(data, dtype=dtype).reshape(json.loads(shape))
        if self.kind == "visual":
            return self.model.preprocess(array.copy())  # [3, F, S, S]
        return torch.from_numpy(array.copy())  # [N]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["vid"])
        feats = np.zeros((n, self.dim), np.float32)  # [B, D]; zeros for end / fail / zeros rows
        clips = [i for i in range(n) if batch["kind"][i] == "clip"]
        # consecutive clips of equal shape form one model call (audio windows may differ in length)
        groups: list[list[int]] = []
        for i in clips:
            if groups and batch["shape"][groups[-1][-1]] == batch["shape"][i]:
                groups[-1].append(i)
            else:
                groups.append([i])
        for group in groups:
            x = torch.stack([self._input(batch["data"][i], batch["dtype"][i], batch["shape"][i]) for i in group])
            with torch.inference_mode(), autocast_context(self.device, self.autocast):
                y = self.model(x.to(self.device))  # [b, D]
            feats[group] = y.float().cpu().numpy()
        return {"vid": batch["vid"], "row": batch["row"], "kind": batch["kind"], "info": batch["info"],
                "features": feats}


def _pool(ray, device: torch.device) -> tuple[int, dict, int]:
    """(actors, resources per actor, torch threads per actor) for this cluster."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 1))
    if device.type == "cuda" and gpus > 0:
        return gpus, {"num_gpus": 1, "num_cpus": 1}, 1
    per_actor = max(1, min(8, cpus // 2))  # the other half of the CPUs decode
    return max(1, (cpus // 2) // per_actor), {"num_cpus": per_actor}, per_actor


def run_ray(
    todo: list[VideoJob],
    kind: str,
    decode: dict,
    backbone: torch.nn.Module,
    store: FeatureStore,
    keys: dict[str, str],
    device: torch.device,
    autocast: str,
    batch_size: int,
    ray_address: str = "",
    progress: bool = True,
    segments_per_task: int | None = None,
) -> Counts:
    """Extract ``todo`` into ``store`` on Ray (see the module docstring) -> counts.

    segments_per_task: segments of one video per decoding task (default ``SEGMENTS_PER_TASK``).
    """
    segments_per_task = int(segments_per_task or SEGMENTS_PER_TASK)
    counts = Counts()
    if not todo:
        return counts
    ray = _import_ray()
    started_here = _connect(ray, ray_address)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        actors, actor_resources, threads = _pool(ray, device)
        model = backbone.to("cpu")  # shipped once through the object store; each actor moves it to its device
        items = _items(todo, segments_per_task)
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        # decoding: CPU tasks (Ray retries a task whose worker died, 3 times by default); their memory
        # request also keeps Ray Data from fusing them into the backbone actors
        ds = ds.map_batches(_decode, batch_size=1, fn_kwargs={"kind": kind, "decode": decode}, num_cpus=1,
                            memory=DECODE_TASK_MEMORY)
        # the backbone: an actor pool (Ray Data restarts a dead actor and retries its batch)
        ds = ds.map_batches(_Backbone, batch_size=batch_size, fn_constructor_kwargs={
            "backbone": model, "kind": kind, "autocast": autocast, "threads": threads,
        }, compute=ray.data.ActorPoolStrategy(size=actors), **actor_resources)
        counts = _collect(ds, todo, store, keys, int(backbone.feature_dim), progress, kind, segments_per_task)
    finally:
        if started_here:
            ray.shutdown()
    return counts


def _collect(ds, todo: list[VideoJob], store: FeatureStore, keys: dict[str, str], dim: int, progress: bool,
             desc: str, segments_per_task: int) -> Counts:
    """Assemble rows into videos and commit each complete one (driver side)."""
    counts = Counts()
    num_segments = {job.vid: job.num_segments for job in todo}
    chunks = {job.vid: max(1, -(-job.num_segments // segments_per_task)) for job in todo}
    pending: dict[str, np.ndarray] = {}  # vid -> [T, D]
    seen: dict[str, np.ndarray] = {}  # vid -> [T] bool
    ends: dict[str, int] = {}
    attrs: dict[str, dict] = {}
    finished: set[str] = set()  # committed or failed: their later rows are ignored
    total = sum(num_segments.values())
    with tqdm(total=total, unit="seg", desc=f"{desc} (ray)", disable=not progress, dynamic_ncols=True) as bar:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for i in range(len(batch["vid"])):
                vid, kind = str(batch["vid"][i]), str(batch["kind"][i])
                if vid in finished or vid not in num_segments:
                    continue
                info = json.loads(str(batch["info"][i]))
                if kind == "fail":
                    finished.add(vid)
                    pending.pop(vid, None)
                    store.record_failure(vid, info["stage"], info["message"], error_type=info["error_type"])
                    continue
                if kind == "zeros":  # no audio track: every chunk says so, the first one commits
                    finished.add(vid)
                    info.pop("count")
                    count = num_segments[vid]
                    store.put(vid, np.zeros((count, dim), np.float32), key=keys[vid], **info)
                    counts.extracted += 1
                    counts.no_audio += 1
                    bar.update(count)
                    continue
                if vid not in pending:
                    pending[vid] = np.zeros((num_segments[vid], dim), np.float32)
                    seen[vid] = np.zeros(num_segments[vid], bool)
                if kind == "end":
                    ends[vid] = ends.get(vid, 0) + 1
                    attrs[vid] = info
                else:  # clip
                    row = int(batch["row"][i])
                    if not seen[vid][row]:
                        counts.segments += 1
                        bar.update(1)
                    pending[vid][row] = batch["features"][i]
                    seen[vid][row] = True
                if ends.get(vid, 0) == chunks[vid] and seen[vid].all():
                    try:
                        store.put(vid, pending.pop(vid), key=keys[vid], **attrs[vid])
                        counts.extracted += 1
                    except ValueError as exc:  # non-finite features (e.g. fp16 overflow)
                        store.record_failure(vid, "model", exc)
                    finished.add(vid)
    return counts
