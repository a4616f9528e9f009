"""Segment table + videos + backbone -> per-segment features in a resumable HDF5 store.

Split by concern:

| module | does |
|---|---|
| ``jobs`` | the segment table grouped by video (``VideoJob``), segment spans, the store's attributes |
| ``producers`` | decoding one video into messages; batching across videos; decoder threads |
| ``local`` | the local engine: decoder threads feed the backbone in this process |
| ``ray_engine`` | the Ray Data engine: decoding tasks, backbone actor pools, a local instance or a cluster |
| ``runner`` | ``extract_visual`` / ``extract_audio``: lock, resume, engine, failure budget, merge |
| ``bench`` | ``check_backbones`` and ``bench_extract`` (decode-only / model-only / end-to-end, CPU and GPU decoding) |

Both engines commit each video as the same keyed, atomic part (``pipeline.part_keys``,
``pipeline.store``), so a run started with one engine resumes with the other.
"""

from .bench import bench_extract, check_backbones
from .jobs import ExtractionError, VideoJob, frame_ranges, time_windows, video_jobs
from .producers import batched, resolve_workers
from .runner import ENGINES, extract_audio, extract_visual

__all__ = [
    "ENGINES",
    "ExtractionError",
    "VideoJob",
    "batched",
    "bench_extract",
    "check_backbones",
    "extract_audio",
    "extract_visual",
    "frame_ranges",
    "resolve_workers",
    "time_windows",
    "video_jobs",
]
