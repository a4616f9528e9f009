"""Rendering a planned video: its frames and its soundtrack as numpy arrays.

``render_frames`` yields uint8 RGB frames (a drifting, desaturated background texture plus each
visual event's camera shake, fast saturated objects and colour flash) and ``render_audio``
returns the float32 mono soundtrack (quiet ambience plus each audio event's crowd-like roar or
rising whistle), both deterministic given the events and the generator; nothing is encoded or
written here.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from .plan import DemoEvent

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
