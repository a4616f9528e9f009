"""Planning a demo video: presets, domain styles and where events go on the timeline.

``DEMO_PRESETS`` / ``demo_preset`` give ``generate_demo``'s keyword arguments (``default`` for
``make demo``, ``tiny`` for tests), ``DOMAIN_STYLES`` the look and sound of a domain's events.
``plan_events`` draws a video's highlights and single-modality distractors (``DemoEvent``) and
lays them out on the unit grid, and ``segment_labels`` turns the events into the {-1, 0, 1}
segment labels; nothing here renders, encodes or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Domain styles, chosen by the domain's index (cycled): what the visual objects look like and
# which sound the audio events make. Highlights and distractors of a domain share the style.
DOMAIN_STYLES = (
    {"objects": "disks", "sound": "crowd"},  # balls flying around + a crowd-like roar
    {"objects": "bars", "sound": "tone"},  # sweeping stripes + a rising whistle
)

DEMO_PRESETS: dict[str, dict] = {
    # `make demo`: 2 domains x 12 videos x 20..30 two-second segments (about 600 segments,
    # 20 minutes of 128x128 video at 8 fps); 4 test videos per domain.
    "default": dict(
        seed=0,
        domains=("stadium", "arcade"),
        videos_per_domain=12,
        segments_per_video=(20, 30),
        fps=8,
        frames_per_segment=16,
        stride=16,
        size=(128, 128),
        audio_rate=32000,
        highlight_fraction=0.2,
        max_audio_shift_segments=1.0,
        distractor_rate=0.2,
        test_fraction=0.3,
    ),
    # CI: a handful of short videos with half-overlapping clips (borderline labels appear).
    "tiny": dict(
        seed=0,
        domains=("stadium", "arcade"),
        videos_per_domain=3,
        segments_per_video=24,
        fps=8,
        frames_per_segment=8,
        stride=4,
        size=(64, 64),
        audio_rate=16000,
        highlight_fraction=0.2,
        max_audio_shift_segments=1.0,
        distractor_rate=0.2,
        test_fraction=0.34,
    ),
}


def demo_preset(name: str, **overrides) -> dict:
    """The keyword arguments of ``generate_demo`` for preset ``name`` (a copy), with ``overrides``.

    E.g. ``generate_demo(out, **demo_preset("default", seed=3))``.
    """
    if name not in DEMO_PRESETS:
        raise ValueError(f"unknown demo preset {name!r}; choose one of {sorted(DEMO_PRESETS)}")
    unknown = sorted(set(overrides) - set(DEMO_PRESETS[name]))
    if unknown:
        raise ValueError(f"demo preset {name!r}: unknown setting(s) {unknown}; known: {sorted(DEMO_PRESETS[name])}")
    return {**DEMO_PRESETS[name], **overrides}


@dataclass(frozen=True)
class DemoEvent:
    """One event on a video's timeline.

    kind: "highlight" (visual + audio), "visual" (visual only) or "audio" (audio only).
    visual: [start, end) in frames, or None. audio: [start, end) in audio samples, or None.
    shift_s: for a highlight, the offset of the sound's centre from the picture's centre (seconds).
    seed: seeds the event's own generator (object paths, colours, sound).
    """

    kind: str
    visual: tuple[int, int] | None
    audio: tuple[int, int] | None
    shift_s: float
    seed: int


def plan_events(
    rng: np.random.Generator,
    n_units: int,
    unit_frames: int,
    seg_frames: int,
    fps: int,
    audio_rate: int,
    highlight_fraction: float,
    distractor_rate: float,
    max_shift_segments: float,
) -> list[DemoEvent]:
    """Draw highlight and single-modality distractor runs and lay them out on the unit grid.

    Runs are 2..4 segment durations long, as close to the target shares as whole runs allow (at
    least one highlight); a sound is one segment shorter than its run (highlights: centred on the
    picture, then shifted by up to ``max_shift_segments`` segments). Each event's hull (visual and
    audio extents together) lies inside the video, at least one segment duration away from every
    other hull; the events come in a random order with the spare units spread randomly between
    them. Returns the events sorted by time.
    """
    m = seg_frames // unit_frames  # units per segment
    spf = audio_rate / fps  # audio samples per frame
    targets = {
        "highlight": max(1, round(highlight_fraction * n_units)),
        "visual": round(distractor_rate * n_units),
        "audio": round(distractor_rate * n_units),
    }
    placed = dict.fromkeys(targets, 0)
    drawn: list[tuple[str, int, float]] = []  # (kind, run length in units, audio shift in frames)
    open_kinds = [k for k in targets if targets[k] > 0]
    while open_kinds:  # round robin, so that dropping from the end below stays fair between kinds
        for kind in list(open_kinds):
            length = int(rng.integers(2 * m, 4 * m + 1))
            shift = float(rng.uniform(-1.0, 1.0)) * max_shift_segments * seg_frames if kind == "highlight" else 0.0
            over, under = placed[kind] + length - targets[kind], targets[kind] - placed[kind]
            if placed[kind] > 0 and (under <= 0 or over > under):
                open_kinds.remove(kind)
                continue
            drawn.append((kind, length, shift))
            placed[kind] += length

    def spans(kind: str, length: int, shift: float) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        """Visual and audio [start, end) in frames relative to the run's first frame."""
        run = length * unit_frames
        if kind == "visual":
            return (0.0, float(run)), None
        if kind == "audio":
            return None, (0.0, float(run - seg_frames))
        # the sound is one segment shorter than the picture, centred on it, then shifted
        return (0.0, float(run)), (seg_frames / 2 + shift, run - seg_frames / 2 + shift)

    def hull(event: tuple[str, int, float]) -> tuple[int, int]:
        """(units before the run's first unit, units of the whole hull)."""
        ends = [x for span in spans(*event) if span is not None for x in span]
        left = int(np.ceil(max(0.0, -min(ends)) / unit_frames))
        return left, left + int(np.ceil(max(ends) / unit_frames))

    def needed(events: list[tuple[str, int, float]]) -> int:
        return sum(hull(e)[1] for e in events) + m * (len(events) - 1)

    while needed(drawn) > n_units and len(drawn) > 1:
        drawn.pop()
    if needed(drawn) > n_units:
        raise ValueError(
            f"a video of {n_units} units of {unit_frames} frames cannot hold one highlight of "
            f"{drawn[0][1]} units; raise segments_per_video"
        )
    order = rng.permutation(len(drawn))
    gaps = rng.multinomial(n_units - needed(drawn), np.full(len(drawn) + 1, 1.0 / (len(drawn) + 1)))
    cursor = int(gaps[0])  # units
    events: list[DemoEvent] = []
    for k, j in enumerate(order):
        left, size = hull(drawn[j])
        origin = (cursor + left) * unit_frames  # frames
        v, a = spans(*drawn[j])
        visual = (origin + int(v[0]), origin + int(v[1])) if v is not None else None
        audio = (int(round((origin + a[0]) * spf)), int(round((origin + a[1]) * spf))) if a is not None else None
        events.append(DemoEvent(drawn[j][0], visual, audio, drawn[j][2] / fps, int(rng.integers(0, 2**31 - 1))))
        cursor += size + m + int(gaps[k + 1])
    return events


def segment_labels(events: Sequence[DemoEvent], n_segments: int, unit_frames: int, seg_frames: int) -> np.ndarray:
    """Labels [n_segments] in {-1, 0, 1}: the share of a segment's units under a highlight's picture.

    Segment k covers units k..k+m-1 (m = seg_frames // unit_frames): 1 if more than half of them
    are highlight units, 0 if exactly half, -1 otherwise.
    """
    m = seg_frames // unit_frames
    n_units = n_segments - 1 + m
    hl = np.zeros(n_units, dtype=np.int64)  # [U] 1 where a highlight is visible
    for e in events:
        if e.kind == "highlight":
            hl[e.visual[0] // unit_frames : e.visual[1] // unit_frames] = 1
    counts = np.convolve(hl, np.ones(m, dtype=np.int64), mode="valid")  # [T] highlight units per segment
    labels = np.where(2 * counts > m, 1, np.where(2 * counts == m, 0, -1))
    return labels.astype(np.int64)
