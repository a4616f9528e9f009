"""The embedded demo dataset: synthetic audio-visual videos whose highlights need both modalities.

``generate_demo(out_dir, ...)`` writes, deterministically from a seed, a small dataset in the
YouTube Highlights on-disk layout (Sun et al., ECCV 2014)::

    out_dir/annotations/<domain>/vlist.json              [[[vids], "TraiTightL"], [[vids], "TraiLooseL"],
                                                          [[vids], "TestTightL"], [[vids], "TestLooseL"]]
    out_dir/annotations/<domain>/<vid>/clip.json         [[f0, f1], ...]   frames, f1 exclusive
    out_dir/annotations/<domain>/<vid>/match_label.json  [clips, labels]   labels in {-1, 0, 1}
    out_dir/videos/<vid>.mp4                             H.264 video + AAC mono audio (PyAV, no ffmpeg)
    out_dir/demo.json                                    parameters, fps, and every video's events

What a video contains (the paper's point: highlights need both modalities and tolerate asynchrony):

- background: a slowly drifting, desaturated, periodic noise texture; quiet ambience (pink-ish
  noise and a faint hum);
- highlight: a visual event (camera shake, fast saturated objects, a colour flash) AND an audio
  event (domain style: a crowd-like roar or a rising whistle). The sound is one segment shorter
  than the picture, centred on it and then shifted by a uniform random offset of up to
  ``max_audio_shift_segments`` segment durations, so with the default shift of up to one segment
  a highlight segment may be silent itself while its neighbour is loud;
- distractors, one modality alone: the same visual event in silence, or the same loud sound with
  nothing to see. Their visual/audio events are drawn from exactly the distributions of the
  highlights' ones, so a single modality cannot tell a highlight from a distractor.

Events are separated by at least one segment duration of plain background (audio extents
included), so the ground truth is exactly the rule "visual event in this segment AND an audio
event within one segment of it", which a model must learn from both modalities with temporal
context (per-segment fusion misses the silent highlight segments).

Segments follow YouTube Highlights' clips: windows of ``frames_per_segment`` frames every
``stride`` frames (``stride`` must divide ``frames_per_segment``). The timeline is cut into
units of ``stride`` frames; a segment spans ``m = frames_per_segment // stride`` units and is
labelled 1 when more than half of its units show a highlight's visual event, 0 (borderline) when
exactly half do, -1 otherwise. The default preset uses 2-second non-overlapping segments
(8 fps, 16 frames, stride 16); the ``tiny`` preset for tests uses half-overlapping ones (like the
real data's 100-frame windows with stride 50), which produces a few borderline 0 labels.

Everything random comes from ``numpy.random.default_rng([seed, domain_index, video_index])`` so
a video does not change when other videos are added. Frames go to the encoder as YUV 4:2:0
converted here (BT.601, limited range), and x264 runs single-threaded on its C code paths
(``X264_OPTIONS``), so the same seed gives byte-identical mp4 files with the same PyAV/FFmpeg
build (and identical decoded frames and audio).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .paths import check_id, safe_join

AAC_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
VLIST_SETS = ("TraiTightL", "TraiLooseL", "TestTightL", "TestLooseL")

# x264 in one thread and without its assembly: with SIMD, the output for identical frames varied
# between runs in one process (for some frame sizes, e.g. 64x64 and 112x112, measured with PyAV
# 16.1 / x264 core 165), consistent with an over-read past PyAV's tightly allocated planes; the
# C code paths made every size tried byte-identical run to run. The frames are small, so the cost
# is small.
X264_OPTIONS = {"crf": "20", "preset": "veryfast", "threads": "1", "x264-params": "asm=0"}

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


# ----------------------------------------------------------------------------- planning


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


# ----------------------------------------------------------------------------- pictures


def _periodic_texture(rng: np.random.Generator, h: int, w: int, cutoff: float) -> np.ndarray:
    """Smooth periodic noise [h, w] with zero mean and unit std (low-pass filtered white noise)."""
    spec = np.fft.rfft2(rng.standard_normal((h, w)))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    spec *= np.exp(-(fy**2 + fx**2) / (2 * cutoff**2))
    tex = np.fft.irfft2(spec, s=(h, w))
    return (tex - tex.mean()) / (tex.std() + 1e-12)


def _bounce(p0: np.ndarray, v: np.ndarray, t: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Positions [len(t), n] of points moving at velocity v from p0, reflected inside [lo, hi]."""
    span = hi - lo
    x = (p0[None, :] - lo + v[None, :] * t[:, None]) % (2 * span)
    return lo + np.where(x > span, 2 * span - x, x)


def _saturated_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """n fully saturated RGB colours [n, 3] in [0, 1] (a random hue on the colour wheel)."""
    hue = rng.uniform(0.0, 1.0, n)[:, None]  # [n, 1]
    k = (np.array([5.0, 3.0, 1.0])[None, :] + hue * 6.0) % 6.0  # [n, 3]
    return 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


class _VisualEvent:
    """Renders one visual event (shake, fast objects, colour flash) onto frames of its interval."""

    def __init__(self, event: DemoEvent, objects: str, h: int, w: int):
        rng = np.random.default_rng(event.seed)
        self.start, self.end = event.visual
        n = self.end - self.start
        t = np.arange(n, dtype=np.float64)
        self.shake = rng.integers(-(h // 8), h // 8 + 1, size=(n, 2))  # [n, 2] camera jolts, pixels
        self.flash = _saturated_colours(rng, 1)[0]  # [3]
        self.flash_alpha = 0.35 + 0.2 * np.sin(2 * np.pi * t / 3.0 + rng.uniform(0, 2 * np.pi))  # [n]
        self.objects = objects
        self.colours = _saturated_colours(rng, 4)  # [4, 3]
        if objects == "disks":
            self.radius = rng.uniform(h / 12, h / 7, 4)  # [4]
            speed = rng.uniform(h / 10, h / 5, (4, 2)) * rng.choice([-1.0, 1.0], (4, 2))
            self.ys = _bounce(rng.uniform(0, h, 4), speed[:, 0], t, 0, h - 1)  # [n, 4]
            self.xs = _bounce(rng.uniform(0, w, 4), speed[:, 1], t, 0, w - 1)  # [n, 4]
        else:  # bars sweeping across, alternately horizontal and vertical
            self.width = rng.uniform(h / 14, h / 8, 4)  # [4]
            speed = rng.uniform(h / 8, h / 4, 4) * rng.choice([-1.0, 1.0], 4)
            self.pos = _bounce(rng.uniform(0, h, 4), speed, t, 0, h - 1)  # [n, 4]

    def offset(self, frame: int) -> np.ndarray:
        return self.shake[frame - self.start]

    def draw(self, img: np.ndarray, frame: int, yy: np.ndarray, xx: np.ndarray) -> None:
        """Paint objects and flash onto img [H, W, 3] float in [0, 1], in place."""
        i = frame - self.start
        for j in range(4):
            if self.objects == "disks":
                mask = (yy - self.ys[i, j]) ** 2 + (xx - self.xs[i, j]) ** 2 < self.radius[j] ** 2  # [H, W]
            else:
                coord = yy if j % 2 == 0 else xx
                mask = np.abs(coord - self.pos[i, j]) < self.width[j]  # [H, W]
            img[mask] = self.colours[j]
        a = self.flash_alpha[i]
        img *= 1.0 - a
        img += a * self.flash


def render_frames(
    events: Sequence[DemoEvent], n_frames: int, size: tuple[int, int], objects: str, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield the video's frames, each uint8 [H, W, 3] RGB."""
    h, w = size
    th, tw = 2 * h, 2 * w
    coarse = _periodic_texture(rng, th, tw, cutoff=0.03)  # [2H, 2W] large blobs
    fine = _periodic_texture(rng, th, tw, cutoff=0.25)  # [2H, 2W] grain
    base = 0.5 + rng.uniform(-0.08, 0.08, 3)  # [3] desaturated base colour
    tint = rng.uniform(-1.0, 1.0, 3) * 0.05 + 0.08  # [3] mostly luminance, a little colour
    texture = base + coarse[..., None] * tint + 0.03 * fine[..., None]  # [2H, 2W, 3]
    velocity = rng.uniform(0.15, 0.4, 2) * rng.choice([-1.0, 1.0], 2)  # px/frame, slow drift
    origin = rng.uniform(0, th, 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)  # [H, W]
    visual = [_VisualEvent(e, objects, h, w) for e in events if e.visual is not None]
    for f in range(n_frames):
        active = [ve for ve in visual if ve.start <= f < ve.end]
        oy, ox = np.floor(origin + velocity * f).astype(np.int64)
        for ve in active:
            dy, dx = ve.offset(f)
            oy, ox = oy + dy, ox + dx
        rows = (np.arange(h) + oy) % th
        cols = (np.arange(w) + ox) % tw
        img = texture[rows][:, cols].copy()  # [H, W, 3]
        img *= 1.0 + 0.04 * np.sin(2 * np.pi * f / 136.0)  # slow exposure drift, period 136 frames
        for ve in active:
            ve.draw(img, f, yy, xx)
        yield (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- sound


def _band_noise(rng: np.random.Generator, n: int, rate: int, lo: float, hi: float) -> np.ndarray:
    """White noise band-limited to [lo, hi] Hz, unit std, [n] float64."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freq = np.fft.rfftfreq(n, 1.0 / rate)
    spec[(freq < lo) | (freq > hi)] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (x.std() + 1e-12)


def _envelope(n: int, rate: int, attack_s: float = 0.05, release_s: float = 0.1) -> np.ndarray:
    """Linear attack/release envelope [n]."""
    env = np.ones(n)
    a = min(n // 2, int(attack_s * rate))
    r = min(n // 2, int(release_s * rate))
    if a > 0:
        env[:a] = np.linspace(0.0, 1.0, a, endpoint=False)
    if r > 0:
        env[n - r :] = np.linspace(1.0, 0.0, r)
    return env


def _event_sound(event: DemoEvent, sound: str, rate: int) -> np.ndarray:
    """The audio event [n] float64: a crowd-like roar or a rising tone (RMS about 0.12, ambience 0.01)."""
    rng = np.random.default_rng(event.seed + 1)
    n = event.audio[1] - event.audio[0]
    t = np.arange(n) / rate
    if sound == "crowd":
        roar = _band_noise(rng, n, rate, 250.0, min(4000.0, 0.45 * rate))
        swell = 1.0 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * t + rng.uniform(0, 2 * np.pi))
        claps = np.zeros(n)
        hits = rng.integers(0, max(1, n - 1), size=int(12 * n / rate) + 1)
        decay = np.exp(-np.arange(int(0.015 * rate)) / (0.003 * rate))
        for k in hits:
            seg = claps[k : k + decay.size]
            seg += decay[: seg.size] * rng.uniform(1.0, 3.0)
        claps *= _band_noise(rng, n, rate, 800.0, min(6000.0, 0.45 * rate))
        x = 0.12 * roar * swell + 0.08 * claps
    else:  # rising whistle with harmonics and vibrato
        f0 = rng.uniform(300.0, 500.0)
        f1 = min(rng.uniform(1500.0, 2500.0), 0.2 * rate)
        dur = max(n / rate, 1e-3)
        freq = f0 * (f1 / f0) ** (t / dur) * (1.0 + 0.01 * np.sin(2 * np.pi * 6.0 * t))
        phase = 2 * np.pi * np.cumsum(freq) / rate
        x = 0.17 * (np.sin(phase) + 0.4 * np.sin(2 * phase) + 0.2 * np.sin(3 * phase))
    return x * _envelope(n, rate)


def render_audio(
    events: Sequence[DemoEvent], n_samples: int, rate: int, sound: str, rng: np.random.Generator
) -> np.ndarray:
    """The soundtrack [n_samples] float32 in [-1, 1]: quiet ambience plus the audio events."""
    spec = np.fft.rfft(rng.standard_normal(n_samples))
    freq = np.fft.rfftfreq(n_samples, 1.0 / rate)
    spec *= 1.0 / np.sqrt(np.maximum(freq, 20.0))  # pink-ish
    spec[freq > 3000.0] *= 0.1
    amb = np.fft.irfft(spec, n_samples)
    amb *= 0.01 / (amb.std() + 1e-12)
    t = np.arange(n_samples) / rate
    hum = 0.004 * np.sin(2 * np.pi * rng.uniform(90.0, 130.0) * t) * (1.0 + 0.3 * np.sin(2 * np.pi * 0.05 * t))
    track = amb + hum  # [N]
    for e in events:
        if e.audio is not None:
            track[e.audio[0] : e.audio[1]] += _event_sound(e, sound, rate)
    return np.clip(track, -1.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- encoding


def rgb_to_yuv420p(img: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] (H, W even) -> planar YUV 4:2:0 [H * 3 // 2, W] (BT.601, limited range).

    Done here rather than by swscale so that the encoder input is a pure function of the frame.
    """
    x = img.astype(np.float64)  # [H, W, 3]
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0  # [H, W]
    u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    h, w = y.shape
    u = u.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # [H/2, W/2]
    v = v.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    planes = np.concatenate([y.ravel(), u.ravel(), v.ravel()])  # [H*W*3/2]
    return np.clip(np.floor(planes + 0.5), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


def encode_mp4(
    path: str | os.PathLike,
    frames: Iterator[np.ndarray],
    audio: np.ndarray,
    fps: int,
    size: tuple[int, int],
    audio_rate: int,
) -> None:
    """Write frames (uint8 [H, W, 3]) and mono audio [N] float32 to an H.264 + AAC mp4 with PyAV.

    Written to a part file and renamed into place. Audio frames of 1024 samples are interleaved
    with the video frames they accompany.
    """
    import av

    path = Path(path)
    part = path.with_name(path.name + ".part")
    h, w = size
    with av.open(str(part), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps, options=X264_OPTIONS)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.thread_count = 1  # PyAV's default (0 = auto) lets x264 thread
        vs.codec_context.thread_type = "NONE"
        aus = out.add_stream("aac", rate=audio_rate, layout="mono")
        aus.bit_rate = 64000
        chunk = 1024
        a_pos = 0
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(img), format="yuv420p")
            frame.pts = i
            out.mux(vs.encode(frame))
            # interleave: audio up to the end of this frame
            a_end = min(len(audio), int(round((i + 1) * audio_rate / fps)))
            while a_pos + chunk <= a_end or (a_end == len(audio) and a_pos < a_end):
                piece = audio[a_pos : a_pos + chunk]  # [<=1024]
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece[None, :]), format="fltp", layout="mono")
                af.sample_rate = audio_rate
                af.pts = a_pos
                af.time_base = Fraction(1, audio_rate)
                out.mux(aus.encode(af))
                a_pos += piece.size
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))
    os.replace(part, path)


# ----------------------------------------------------------------------------- the dataset


def _write_json(path: Path, obj) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(obj) + "\n")
    os.replace(part, path)


def _check_args(domains, videos_per_domain, segments_per_video, fps, frames_per_segment, stride, size, audio_rate,
                highlight_fraction, max_audio_shift_segments, distractor_rate, test_fraction) -> tuple[int, int]:
    if not domains or len(set(domains)) != len(domains):
        raise ValueError(f"domains must be non-empty and distinct, got {domains!r}")
    for d in domains:
        check_id(d, "generate_demo(domains=...)")
    if isinstance(segments_per_video, int):
        lo, hi = segments_per_video, segments_per_video
    else:
        lo, hi = (int(x) for x in segments_per_video)
    if not 1 <= lo <= hi:
        raise ValueError(
            f"segments_per_video must be a positive int or (lo, hi) with lo <= hi, got {segments_per_video!r}"
        )
    if videos_per_domain < 2:
        raise ValueError(f"videos_per_domain must be >= 2 (one train, one test), got {videos_per_domain}")
    if not (isinstance(fps, int) and fps > 0):
        raise ValueError(f"fps must be a positive int, got {fps!r}")
    if stride <= 0 or frames_per_segment <= 0 or frames_per_segment % stride:
        raise ValueError(f"stride ({stride}) must be positive and divide frames_per_segment ({frames_per_segment})")
    h, w = size
    if h < 16 or w < 16 or h % 2 or w % 2:
        raise ValueError(f"size must be even and >= 16 pixels per side (H.264 4:2:0), got {size!r}")
    if audio_rate not in AAC_RATES:
        raise ValueError(f"audio_rate {audio_rate} is not an AAC rate {AAC_RATES}")
    for name, value in (("highlight_fraction", highlight_fraction), ("distractor_rate", distractor_rate),
                        ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {value}")
    if not 0.0 <= max_audio_shift_segments <= 4.0:
        raise ValueError(f"max_audio_shift_segments must lie in [0, 4], got {max_audio_shift_segments}")
    return lo, hi


def generate_demo(
    out_dir: str | os.PathLike,
    seed: int = 0,
    domains: Sequence[str] = ("stadium", "arcade"),
    videos_per_domain: int = 12,
    segments_per_video: int | tuple[int, int] = (20, 30),
    fps: int = 8,
    frames_per_segment: int = 16,
    stride: int = 16,
    size: tuple[int, int] = (128, 128),
    audio_rate: int = 32000,
    highlight_fraction: float = 0.2,
    max_audio_shift_segments: float = 1.0,
    distractor_rate: float = 0.2,
    test_fraction: float = 0.3,
    overwrite: bool = False,
    progress: bool = False,
) -> dict:
    """Write the demo dataset under ``out_dir`` (layout in the module docstring); return a summary.

    segments_per_video: T per video, an int or an inclusive range (lo, hi) drawn per video.
    highlight_fraction / distractor_rate: target shares of a video's timeline covered by highlights
    and by each kind of single-modality distractor (visual-only, audio-only); placement may fall
    short on short videos, never over. test_fraction: share of each domain's videos in Test*L.
    overwrite: replace existing ``annotations/``, ``videos/`` and ``demo.json`` under out_dir.

    Returns {"out_dir", "videos", "segments", "labels": {"-1", "0", "1"}, "domains": {domain:
    {"train", "test", "segments", "positives"}}, "bytes", "seconds"}.
    """
    t_start = time.perf_counter()
    lo, hi = _check_args(domains, videos_per_domain, segments_per_video, fps, frames_per_segment, stride, size,
                         audio_rate, highlight_fraction, max_audio_shift_segments, distractor_rate, test_fraction)
    out = Path(out_dir)
    ann_root, vid_root, manifest_path = out / "annotations", out / "videos", out / "demo.json"
    existing = [p for p in (ann_root, vid_root, manifest_path) if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass overwrite=True to regenerate the demo dataset")
    for p in existing:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    ann_root.mkdir(parents=True)
    vid_root.mkdir(parents=True)

    m = frames_per_segment // stride
    jobs = [(d, i) for d in range(len(domains)) for i in range(videos_per_domain)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="demo videos", unit="video")
    manifest_videos: dict[str, dict] = {}
    domain_summary: dict[str, dict] = {}
    label_counts = {"-1": 0, "0": 0, "1": 0}
    for d, domain in enumerate(domains):
        style = DOMAIN_STYLES[d % len(DOMAIN_STYLES)]
        dom_dir = safe_join(ann_root, domain)
        dom_dir.mkdir()
        vids, positives, n_pos = [], [], []
        for i in range(videos_per_domain):
            rng = np.random.default_rng([seed, d, i])
            vid = check_id(f"{domain}_{i:03d}", "generate_demo")
            n_seg = int(rng.integers(lo, hi + 1))
            n_units = n_seg - 1 + m
            n_frames = n_units * stride
            n_samples = int(round(n_frames * audio_rate / fps))
            events = plan_events(rng, n_units, stride, frames_per_segment, fps, audio_rate, highlight_fraction,
                                  distractor_rate, max_audio_shift_segments)
            labels = segment_labels(events, n_seg, stride, frames_per_segment)  # [T]
            clips = [[float(k * stride), float(k * stride + frames_per_segment)] for k in range(n_seg)]
            vdir = safe_join(dom_dir, vid)
            vdir.mkdir()
            _write_json(vdir / "clip.json", clips)
            _write_json(vdir / "match_label.json", [clips, [int(x) for x in labels]])
            frames = render_frames(events, n_frames, size, style["objects"], rng)
            audio = render_audio(events, n_samples, audio_rate, style["sound"], rng)  # [N]
            encode_mp4(safe_join(vid_root, f"{vid}.mp4"), frames, audio, fps, size, audio_rate)
            vids.append(vid)
            positives.append(float(np.mean(labels > 0)))
            n_pos.append(int(np.sum(labels > 0)))
            for v in (-1, 0, 1):
                label_counts[str(v)] += int(np.sum(labels == v))
            manifest_videos[vid] = {
                "domain": domain,
                "fps": fps,
                "frames": n_frames,
                "duration_s": n_frames / fps,
                "audio_samples": n_samples,
                "segments": n_seg,
                "events": [asdict(e) for e in events],
            }
            if bar is not None:
                bar.update(1)
        # split: a seeded permutation; the last share goes to Test; Tight = fewer positives than the median
        order = np.random.default_rng([seed, d, 1_000_003]).permutation(videos_per_domain)
        n_test = min(videos_per_domain - 1, max(1, int(round(test_fraction * videos_per_domain))))
        test_idx = sorted(order[videos_per_domain - n_test :].tolist())
        train_idx = sorted(order[: videos_per_domain - n_test].tolist())
        median = float(np.median(positives))
        sets = []
        for name, idx in (("Trai", train_idx), ("Test", test_idx)):
            tight = [vids[j] for j in idx if positives[j] < median]
            loose = [vids[j] for j in idx if positives[j] >= median]
            sets += [[tight, f"{name}TightL"], [loose, f"{name}LooseL"]]
        _write_json(dom_dir / "vlist.json", sets)
        for j in train_idx:
            manifest_videos[vids[j]]["split"] = "train"
        for j in test_idx:
            manifest_videos[vids[j]]["split"] = "test"
        domain_summary[domain] = {
            "train": len(train_idx),
            "test": len(test_idx),
            "segments": sum(manifest_videos[v]["segments"] for v in vids),
            "positives": sum(n_pos),
        }
    if bar is not None:
        bar.close()
    params = dict(seed=seed, domains=list(domains), videos_per_domain=videos_per_domain,
                  segments_per_video=[lo, hi], fps=fps, frames_per_segment=frames_per_segment, stride=stride,
                  size=list(size), audio_rate=audio_rate, highlight_fraction=highlight_fraction,
                  max_audio_shift_segments=max_audio_shift_segments, distractor_rate=distractor_rate,
                  test_fraction=test_fraction)
    styles = {dom: DOMAIN_STYLES[d % len(DOMAIN_STYLES)] for d, dom in enumerate(domains)}
    _write_json(manifest_path, {"params": params, "styles": styles, "videos": manifest_videos})
    written = [manifest_path, *ann_root.rglob("*"), *vid_root.rglob("*")]
    n_bytes = sum(p.stat().st_size for p in written if p.is_file())
    return {
        "out_dir": str(out),
        "videos": len(manifest_videos),
        "segments": sum(v["segments"] for v in manifest_videos.values()),
        "labels": label_counts,
        "domains": domain_summary,
        "bytes": n_bytes,
        "seconds": time.perf_counter() - t_start,
    }
