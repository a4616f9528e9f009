"""README figures from a highlight run: a screenshot of ``index.html`` (headless Chromium) and a
frame strip of a reel (frames evenly spaced over the reel, decoded back with PyAV)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np


def find_chromium() -> str | None:
    for name in (os.environ.get("HPCL_CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def page_screenshot(index_html: str | os.PathLike, out_png: str | os.PathLike, width: int = 1000,
                    height: int = 760) -> Path:
    """Screenshot of the page as Chromium renders it headless (``width`` x ``height`` pixels)."""
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("no chromium found: install Debian's chromium (apt-get install chromium) "
                                "or set HPCL_CHROMIUM")
    out_png = Path(out_png).resolve()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},{height}",
           "--virtual-time-budget=5000", "--autoplay-policy=no-user-gesture-required",
           f"--screenshot={out_png}", Path(index_html).resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or not out_png.is_file():
        raise RuntimeError(f"chromium screenshot failed ({proc.returncode}): {proc.stderr[-500:]}")
    return out_png


def reel_strip(reel_mp4: str | os.PathLike, out_png: str | os.PathLike, frames: int = 8, height: int = 96) -> Path:
    """``frames`` frames evenly spaced over the reel, side by side, each ``height`` pixels high."""
    from PIL import Image

    with av.open(str(reel_mp4)) as c:
        stream = c.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    if not decoded:
        raise ValueError(f"{reel_mp4}: no frames")
    picks = np.linspace(0, len(decoded) - 1, frames + 2)[1:-1].round().astype(int)  # skip the fades at the ends
    tiles = []
    for k in picks:
        img = Image.fromarray(decoded[k])
        tiles.append(img.resize((max(1, round(img.width * height / img.height)), height), Image.BILINEAR))
    gap = 4
    strip = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), height), "white")
    x = 0
    for t in tiles:
        strip.paste(t, (x, 0))
        x += t.width + gap
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    strip.save(out_png, format="PNG")
    return out_png
