"""decord 0.6.0 vs decord2: the same frames? the same CPU speed? (two virtualenvs, back to back)

decord and decord2 install the same module (``import decord``), so they cannot share a
virtualenv. This script makes two small ones outside the repository (numpy + one decoder each),
runs itself inside each on the same files (``dump``), saves every decoded frame, and compares
(``compare``). It needs only the standard library, numpy and decord, so it runs in both.

    .venv/bin/python benchmarks/decoder_compare.py run [--videos DIR] [--work DIR] [--rounds 3]

(run with the repository's venv: the comparison needs numpy, and torch for its "closest resize"
column) prints, per video and decoding mode (native size; scaled while decoding to a short side of 224,
as extraction does), the frames' maximum absolute difference and the share of differing uint8
values, and the CPU decoding time of each package (best of ``rounds`` alternating runs, one
decoder thread, as extraction uses). Exit status 0 either way; the verdict line says whether
the switch conditions hold (frames equal or within 1, CPU no more than 10 % slower).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = {"decord060": "decord==0.6.0", "decord2": "decord2==3.4.0"}
SHORT_SIDE = 224


def _videos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".mp4", ".mkv", ".avi", ".mov"))


def _scaled(width: int, height: int, short: int) -> tuple[int, int]:
    scale = short / min(width, height)  # as pipeline.decoding._scaled_size
    return max(1, math.floor(width * scale + 0.5)), max(1, math.floor(height * scale + 0.5))


def cmd_dump(args: argparse.Namespace) -> None:
    """Inside one venv: decode every frame of every video, save them, time the decoding."""
    import decord
    import numpy as np

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict = {}
    for video in _videos(Path(args.videos)):
        probe = decord.VideoReader(str(video), ctx=decord.cpu(0), num_threads=1)
        n = len(probe)
        h, w = probe[0].shape[:2]
        del probe
        modes = {"native": (-1, -1), f"short{SHORT_SIDE}": _scaled(w, h, SHORT_SIDE)}
        for mode, (width, height) in modes.items():
            best = math.inf
            frames = None
            for _ in range(args.repeats):
                started = time.perf_counter()
                reader = decord.VideoReader(str(video), ctx=decord.cpu(0), width=width, height=height, num_threads=1)
                frames = reader.get_batch(list(range(n))).asnumpy()  # [N, H, W, 3] uint8
                best = min(best, time.perf_counter() - started)
                del reader
            np.save(out / f"{video.stem}.{mode}.npy", frames)
            timings[f"{video.name}:{mode}"] = {"seconds": best, "frames": int(n), "shape": list(frames.shape)}
    (out / "timings.json").write_text(json.dumps({"decord": decord.__version__, "timings": timings}, indent=1))


def _venv_python(work: Path, name: str) -> Path:
    venv = work / name
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "numpy", PACKAGES[name]], check=True)
    return python


def _closest_resize(native, scaled) -> str:
    """Which torch resize of the native frames the decoder's scaled frames are closest to (first 20
    frames, mean |difference|), to explain a difference between the two packages' scalers."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return "-"
    import numpy as np

    x = torch.from_numpy(native[:20]).permute(0, 3, 1, 2).float()  # [n, 3, H, W]
    target = scaled[:20].astype(np.float32)  # [n, h, w, 3]
    errors = {}
    for mode in ("bilinear", "bicubic"):
        y = F.interpolate(x, size=target.shape[1:3], mode=mode, align_corners=False, antialias=True)
        errors[mode] = float(np.abs(y.clamp(0, 255).round().permute(0, 2, 3, 1).numpy() - target).mean())
    best = min(errors, key=errors.get)
    return f"{best} ({errors[best]:.2f})"


def compare(dirs: dict[str, Path], rounds: list[dict[str, dict]]) -> tuple[list[str], bool]:
    """Table lines and whether the switch conditions hold."""
    import numpy as np

    a, b = "decord060", "decord2"
    keys = sorted(rounds[0][a]["timings"])
    lines = [
        f"{'video:mode':34} {'frames':>6} {'shape':>16} {'max|diff|':>9} {'values differ':>13} "
        f"{'0.6.0 s':>8} {'decord2 s':>9} {'decord2/0.6.0':>13}  closest torch resize (mean |d|): 0.6.0 | decord2"
    ]
    ok = True
    total = {a: 0.0, b: 0.0}
    for key in keys:
        name, mode = key.split(":")
        fa = np.load(dirs[a] / f"{Path(name).stem}.{mode}.npy")
        fb = np.load(dirs[b] / f"{Path(name).stem}.{mode}.npy")
        if fa.shape != fb.shape:
            diff_text, share_text, ok = "shape!", f"{fb.shape}", False
        else:
            diff = np.abs(fa.astype(np.int16) - fb.astype(np.int16))
            max_diff = int(diff.max())
            diff_text, share_text = str(max_diff), f"{(diff > 0).mean():.2%}"
            ok &= max_diff <= 1
        ta = min(r[a]["timings"][key]["seconds"] for r in rounds)
        tb = min(r[b]["timings"][key]["seconds"] for r in rounds)
        total[a] += ta
        total[b] += tb
        cause = ""
        if mode != "native":
            native = np.load(dirs[a] / f"{Path(name).stem}.native.npy")
            cause = f"  {_closest_resize(native, fa)} | {_closest_resize(native, fb)}"
        lines.append(
            f"{key:34} {fa.shape[0]:>6} {'x'.join(map(str, fa.shape[1:])):>16} {diff_text:>9} {share_text:>13} "
            f"{ta:>8.3f} {tb:>9.3f} {tb / ta:>13.3f}{cause}"
        )
    ratio = total[b] / total[a]
    lines.append(f"{'all':34} {'':>6} {'':>16} {'':>9} {'':>13} {total[a]:>8.3f} {total[b]:>9.3f} {ratio:>13.3f}")
    ok &= ratio <= 1.10
    return lines, ok


def cmd_run(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    pythons = {name: _venv_python(work, name) for name in PACKAGES}
    rounds = []
    dirs = {name: work / f"frames-{name}" for name in PACKAGES}
    for r in range(args.rounds):
        order = list(PACKAGES) if r % 2 == 0 else list(PACKAGES)[::-1]  # alternate: evens out load drift
        result = {}
        for name in order:
            subprocess.run(
                [str(pythons[name]), __file__, "dump", "--videos", str(args.videos), "--out", str(dirs[name]),
                 "--repeats", "1"],
                check=True,
            )
            result[name] = json.loads((dirs[name] / "timings.json").read_text())
        rounds.append(result)
    versions = {name: rounds[0][name]["decord"] for name in PACKAGES}
    lines, ok = compare(dirs, rounds)
    print(f"decoders: decord060 = decord {versions['decord060']}, decord2 = decord {versions['decord2']}; "
          f"videos in {args.videos}; CPU time = best of {args.rounds} alternating runs, 1 decoder thread; "
          f"{os.cpu_count()} CPU cores")
    print("\n".join(lines))
    print("verdict: switch conditions hold (frames within 1, CPU <= 1.10x)" if ok
          else "verdict: switch conditions do NOT hold")


def cmd_compare(args: argparse.Namespace) -> None:
    work = Path(args.work)
    dirs = {name: work / f"frames-{name}" for name in PACKAGES}
    rounds = [{name: json.loads((dirs[name] / "timings.json").read_text()) for name in PACKAGES}]
    lines, ok = compare(dirs, rounds)
    print("(timings of the last run only)")
    print("\n".join(lines))
    print("verdict: switch conditions hold" if ok else "verdict: switch conditions do NOT hold")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    here = Path(__file__).resolve().parents[1]
    default_videos = Path(os.environ.get("HPCL_SHARED_DATA", here.parent / "shared" / "data")) / "videos"
    p = sub.add_parser("run", help="make the two venvs, decode in each, compare")
    p.add_argument("--videos", default=str(default_videos))
    p.add_argument("--work", default="/tmp/hpcl-decoder-compare", help="venvs and saved frames (outside the repo)")
    p.add_argument("--rounds", type=int, default=3)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("dump", help="(inside one venv) decode, save frames and timings")
    p.add_argument("--videos", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--repeats", type=int, default=1)
    p.set_defaults(func=cmd_dump)
    p = sub.add_parser("compare", help="compare the frames and timings saved by an earlier `run` (no decoding)")
    p.add_argument("--work", default="/tmp/hpcl-decoder-compare")
    p.set_defaults(func=cmd_compare)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
