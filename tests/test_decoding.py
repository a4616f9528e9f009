"""Decoding: segment frame sampling, decord frames per segment, PyAV audio windows.

Test videos are written here with PyAV (libx264 + AAC ship in its wheels): tiny sizes, frames whose
grey levels encode their index, so a decoded frame tells which frame it is. The writers are
imported by test_extract.py and test_store.py too.
"""

from __future__ import annotations

import fractions
import struct
import tracemalloc
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.decoding import (
    DecodeError,
    NoAudioError,
    SegmentError,
    frames_to_seconds,
    iter_audio_windows,
    iter_segment_frames,
    probe_video,
    seconds_to_frames,
    segment_frame_indices,
)
from pipeline.paths import shared_data_dir

# ----------------------------------------------------------------------------- test-file writers


def frame_image(index: int, width: int, height: int) -> np.ndarray:
    """uint8 [H, W, 3]: left half encodes index % 16, right half index // 16 % 16 (16 levels apart)."""
    img = np.empty((height, width, 3), np.uint8)
    img[:, : width // 2] = (index % 16) * 16 + 8
    img[:, width // 2 :] = (index // 16 % 16) * 16 + 8
    return img


def frame_ids(frames: np.ndarray, transpose: bool = False) -> np.ndarray:
    """Decoded frames [F, H, W, 3] -> the indices ``frame_image`` wrote (robust to compression).

    transpose=True reads halves top/bottom (a frame turned a quarter clockwise for display).
    """
    frames = frames.astype(np.float64)
    if transpose:
        frames = frames.transpose(0, 2, 1, 3)[:, ::-1]  # undo the clockwise quarter turn
    h, w = frames.shape[1:3]
    lo = frames[:, h // 4 : 3 * h // 4, w // 8 : 3 * w // 8].mean(axis=(1, 2, 3))
    hi = frames[:, h // 4 : 3 * h // 4, 5 * w // 8 : 7 * w // 8].mean(axis=(1, 2, 3))
    return (np.round((hi - 8) / 16) * 16 + np.round((lo - 8) / 16)).astype(int)


def _encode_audio(container, stream, signal: np.ndarray, sample_rate: int, layout: str, fmt: str) -> None:
    pts = 0
    for s in range(0, signal.shape[1], 1024):
        chunk = np.ascontiguousarray(signal[:, s : s + 1024])
        if fmt == "s16":
            chunk = np.ascontiguousarray((np.clip(chunk, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp" if fmt == "fltp" else "s16", layout=layout)
        frame.sample_rate, frame.pts = sample_rate, pts
        pts += frame.samples
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def sine(freq: float, seconds: float, sample_rate: int, amplitudes=(0.5,)) -> np.ndarray:
    """float32 [C, N]: a sine of ``freq`` Hz per channel with the given amplitudes."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return np.stack([a * np.sin(2 * np.pi * freq * t) for a in amplitudes]).astype(np.float32)


def write_video(
    path: Path,
    num_frames: int = 30,
    width: int = 32,
    height: int = 24,
    fps: int = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 48000,
    pts_ms: list[int] | None = None,
    codec: str = "libx264",
) -> Path:
    """Write an H.264 video of index-coded frames; optional audio float32 [C, N] (AAC, or PCM in .mkv).

    pts_ms: explicit frame times in milliseconds (variable frame rate).
    """
    layouts = {1: "mono", 2: "stereo", 6: "5.1"}
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast"} if codec == "libx264" else {}
        if pts_ms is not None:
            video.codec_context.time_base = fractions.Fraction(1, 1000)
        stream_a = None
        if audio is not None:
            pcm = path.suffix in (".mkv", ".mov")
            stream_a = container.add_stream("pcm_s16le" if pcm else "aac", rate=sample_rate, layout=layouts[len(audio)])
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frame_image(i, width, height), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], fractions.Fraction(1, 1000)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if stream_a is not None:
            _encode_audio(container, stream_a, audio, sample_rate, layouts[len(audio)], "s16" if pcm else "fltp")
    return path


def rotate_mp4_clockwise(path: Path, out: Path) -> Path:
    """Copy an mp4 with its video track's display matrix set to a clockwise quarter turn (as phones do)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    assert at > 0 and data[at + 4] == 0, "expects a version-0 tkhd box"
    matrix = at + 4 + 4 + 5 * 4 + 8 + 8  # after version/flags, times, ids, duration, reserved, layer...
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    out.write_bytes(bytes(data))
    return out


def dominant_frequency(x: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sample_rate)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    plain = write_video(root / "plain.mp4", num_frames=60, width=32, height=24, fps=25)
    return {
        "plain": plain,
        "odd": write_video(root / "odd.mp4", num_frames=20, width=38, height=22, fps=30),
        "rotated": rotate_mp4_clockwise(plain, root / "rotated.mp4"),
        "vfr": write_video(
            root / "vfr.mp4", num_frames=40, pts_ms=[20 * i if i < 20 else 400 + 80 * (i - 20) for i in range(40)]
        ),
        "tone": write_video(
            root / "tone.mp4", num_frames=75, fps=25, audio=sine(440, 3.0, 48000, (0.5, 0.0)), sample_rate=48000
        ),
    }


def real_videos() -> Path:
    folder = shared_data_dir() / "videos"
    if not (folder / "bigbuckbunny.mp4").is_file():
        pytest.skip(f"real clips not found in {folder} (set HPCL_SHARED_DATA)")
    return folder


# ----------------------------------------------------------------------------- frame sampling


def test_segment_frame_indices_are_bin_centres():
    np.testing.assert_array_equal(segment_frame_indices(0, 100, 4, 1000), [12, 37, 62, 87])
    np.testing.assert_array_equal(segment_frame_indices(10, 13, 6, 1000), [10, 10, 11, 11, 12, 12])
    # fractional bounds (a segment in seconds times fps)
    np.testing.assert_array_equal(segment_frame_indices(7.5, 9.5, 2, 1000), [8, 9])


def test_segment_frame_indices_clip_to_video_end():
    # the authors' [500, 600) on a 598-frame video: the bins past the end repeat the last frame
    idx = segment_frame_indices(500, 600, 10, 598)
    np.testing.assert_array_equal(idx, [505, 515, 525, 535, 545, 555, 565, 575, 585, 595])
    np.testing.assert_array_equal(segment_frame_indices(590, 600, 5, 598), [591, 593, 595, 597, 597])


@pytest.mark.parametrize(
    "start,end,match",
    [(10, 10, "empty"), (12, 10, "empty"), (600, 700, "outside"), (-5, 10, "outside"), (float("nan"), 3, "finite")],
)
def test_segment_frame_indices_bad_segments_name_the_segment(start, end, match):
    with pytest.raises(SegmentError, match=match) as info:
        segment_frame_indices(start, end, 4, 598, name="vidA segment 7")
    assert "vidA segment 7" in str(info.value)


def test_seconds_to_frames_constant_rate():
    starts = np.arange(100) / 25.0  # 25 fps
    assert seconds_to_frames(0.0, 2.0, starts) == (0, 50)
    assert seconds_to_frames(2.0, 4.0, starts) == (50, 100)
    assert seconds_to_frames(0.3, 0.5, starts) == (8, 13)  # ceil(7.5), ceil(12.5)
    assert seconds_to_frames(0.41, 0.42, starts) == (10, 11)  # shorter than a frame: the frame showing
    assert seconds_to_frames(3.0, 9.0, starts) == (75, 100)  # past the end: clipped
    with pytest.raises(SegmentError, match="shot 3"):
        seconds_to_frames(2.0, 2.0, starts, name="shot 3")


def test_frames_to_seconds_interpolates_and_extrapolates():
    starts = np.array([0.0, 0.02, 0.04, 0.12, 0.2])
    assert frames_to_seconds(0, starts, 25.0) == 0.0
    assert frames_to_seconds(2.5, starts, 25.0) == pytest.approx(0.08)
    assert frames_to_seconds(6, starts, 25.0) == pytest.approx(0.2 + 2 / 25)


# ----------------------------------------------------------------------------- video


def test_probe_video(videos):
    info = probe_video(videos["plain"])
    assert (info.fps, info.num_frames, info.width, info.height, info.has_audio) == (25.0, 60, 32, 24, False)
    assert info.duration_s == pytest.approx(60 / 25)
    assert info.rotation == 0
    np.testing.assert_allclose(info.frame_starts_s[:3], [0, 0.04, 0.08], atol=1e-6)
    tone = probe_video(videos["tone"])
    assert tone.has_audio and tone.num_frames == 75


def test_iter_segment_frames_returns_the_sampled_frames(videos):
    segments = [(0, 10), (5, 15), (40, 60), (50, 80)]  # overlapping; the last one runs past the end
    out = list(iter_segment_frames(videos["plain"], segments, frames_per_segment=5, chunk_segments=3))
    assert [i for i, _ in out] == [0, 1, 2, 3]
    for (i, frames), (s, e) in zip(out, segments):
        assert frames.shape == (5, 24, 32, 3) and frames.dtype == np.uint8
        np.testing.assert_array_equal(frame_ids(frames), segment_frame_indices(s, e, 5, 60))


def test_chunk_size_does_not_change_frames(videos):
    segments = [(i, i + 7) for i in range(0, 50, 4)]
    a = [f for _, f in iter_segment_frames(videos["plain"], segments, 4, chunk_segments=1)]
    b = [f for _, f in iter_segment_frames(videos["plain"], segments, 4, chunk_segments=100)]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))


def test_odd_size_and_short_side_resize(videos):
    (_, frames), = iter_segment_frames(videos["odd"], [(0, 20)], 4)
    assert frames.shape == (4, 22, 38, 3)
    np.testing.assert_array_equal(frame_ids(frames), [2, 7, 12, 17])
    (_, small), = iter_segment_frames(videos["odd"], [(0, 20)], 4, short_side=16)
    assert small.shape == (4, 16, 28, 3)  # 38 * 16 / 22 = 27.6 -> 28
    np.testing.assert_array_equal(frame_ids(small), [2, 7, 12, 17])


def test_scaled_decode_where_decord_keeps_the_source_width(tmp_path):
    # decord returns 32-wide frames when asked for 16 x 21 from this 24 x 32 portrait video
    path = write_video(tmp_path / "portrait.mp4", num_frames=20, width=24, height=32)
    (_, frames), = iter_segment_frames(path, [(0, 20)], 4, short_side=16)
    assert frames.shape == (4, 21, 16, 3)  # 32 * 16 / 24 = 21.3 -> 21
    np.testing.assert_array_equal(frame_ids(frames), [2, 7, 12, 17])


def test_rotated_video_is_returned_upright(videos):
    info = probe_video(videos["rotated"])
    assert (info.rotation, info.width, info.height, info.num_frames) == (270, 24, 32, 60)
    segments = [(0, 16), (30, 60)]
    out = list(iter_segment_frames(videos["rotated"], segments, 4, chunk_segments=1))
    for (_, frames), (s, e) in zip(out, segments):
        assert frames.shape == (4, 32, 24, 3)  # portrait
        # the coded left half (low digit) is at the top after the clockwise quarter turn
        np.testing.assert_array_equal(frame_ids(frames, transpose=True), segment_frame_indices(s, e, 4, 60))
    (_, small), = iter_segment_frames(videos["rotated"], [(0, 60)], 2, short_side=12)
    assert small.shape == (2, 16, 12, 3)
    # asking again for earlier frames restarts the sequential decoder
    out2 = list(iter_segment_frames(videos["rotated"], [(30, 60), (0, 16)], 4, chunk_segments=1))
    np.testing.assert_array_equal(out2[1][1], out[0][1])


def test_variable_frame_rate_segments_in_seconds(videos):
    info = probe_video(videos["vfr"])  # frames 0-19 every 20 ms, then every 80 ms from 0.4 s
    assert info.num_frames == 40
    np.testing.assert_allclose(info.frame_starts_s[[0, 19, 20, 21, 39]], [0, 0.38, 0.4, 0.48, 1.92], atol=1e-6)
    first, last = seconds_to_frames(0.2, 0.6, info.frame_starts_s)
    assert (first, last) == (10, 23)  # 0.20..0.38 at 20 ms, then 0.40, 0.48, 0.56
    (_, frames), = iter_segment_frames(videos["vfr"], [(first, last)], 13)
    np.testing.assert_array_equal(frame_ids(frames), np.arange(10, 23))


def test_long_video_memory_is_bounded_by_a_chunk(tmp_path):
    # an hour at 1 fps: 3600 frames; decoding it whole would hold 3600 x 24 x 32 x 3 = 8.3 MB
    path = write_video(tmp_path / "hour.mp4", num_frames=3600, width=32, height=24, fps=1)
    info = probe_video(path)
    assert info.num_frames == 3600 and info.duration_s == pytest.approx(3600)
    segments = [(s, s + 100) for s in range(0, 3600, 50)]  # YouTube-style windows, stride 50
    tracemalloc.start()
    try:
        count = 0
        for i, frames in iter_segment_frames(path, segments, 4, chunk_segments=8, info=info):
            if i % 20 == 0:
                np.testing.assert_array_equal(frame_ids(frames) % 256, segment_frame_indices(*segments[i], 4, 3600) % 256)
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(segments)
    assert peak < 1_500_000, f"peak {peak} bytes: decoding held more than a chunk"


def test_unreadable_files_raise_decode_errors_naming_the_file(tmp_path, videos):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DecodeError, match="empty.mp4.*empty"):
        probe_video(empty)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01 not a video " * 100)
    with pytest.raises(DecodeError, match="garbage.mp4"):
        probe_video(garbage)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(videos["plain"].read_bytes()[:1500])
    with pytest.raises(DecodeError, match="truncated.mp4"):
        list(iter_segment_frames(truncated, [(0, 10)], 2))
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        probe_video(tmp_path / "missing.mp4")


# ----------------------------------------------------------------------------- audio


def test_audio_windows_tone_frequency_rms_and_downmix(videos):
    # stereo AAC: 440 Hz at 0.5 on the left, silence on the right -> mono (L + R) / sqrt(2)
    windows = [(0.5, 1.5), (1.0, 2.0), (1.5, 2.5)]  # 50% overlap
    out = list(iter_audio_windows(videos["tone"], windows, sample_rate=32000))
    assert [i for i, _ in out] == [0, 1, 2]
    for _, x in out:
        assert x.shape == (32000,) and x.dtype == np.float32
        assert dominant_frequency(x, 32000) == pytest.approx(440, abs=1.5)
        rms = float(np.sqrt(np.mean(x**2)))
        assert rms == pytest.approx(0.5 / np.sqrt(2) / np.sqrt(2), rel=0.03)  # amplitude 0.5 / sqrt(2)
    # overlapping windows are views of the same signal
    np.testing.assert_array_equal(out[0][1][16000:], out[1][1][:16000])


def test_audio_short_windows_are_padded_around_centre_and_past_end_is_zero(videos):
    full = next(iter_audio_windows(videos["tone"], [(0.0, 3.0)], min_window_s=0.0))[1]
    short, late = [x for _, x in iter_audio_windows(videos["tone"], [(1.2, 1.4), (2.5, 3.5)], min_window_s=1.0)]
    assert short.shape == (32000,)
    np.testing.assert_array_equal(short, full[int(0.8 * 32000) : int(1.8 * 32000)])
    assert late.shape == (32000,)
    np.testing.assert_array_equal(late[: 16000 - 200], full[80000 : 96000 - 200])
    assert np.all(late[16000 + 2000 :] == 0)  # after the audio ends (3.0 s, plus codec tail)
    early = next(iter_audio_windows(videos["tone"], [(0.0, 0.2)], min_window_s=1.0))[1]
    assert early.shape == (32000,)
    assert np.all(early[: int(0.4 * 32000)] == 0)  # padded before 0 s with zeros
    np.testing.assert_array_equal(early[int(0.4 * 32000) :], full[: int(0.6 * 32000)])


def test_audio_windows_validation(videos):
    with pytest.raises(SegmentError, match="sorted"):
        list(iter_audio_windows(videos["tone"], [(1.0, 2.0), (0.5, 1.5)]))
    with pytest.raises(SegmentError, match="window 1"):
        list(iter_audio_windows(videos["tone"], [(1.0, 2.0), (2.0, 2.0)]))


def test_no_audio_track_raises_up_front(videos):
    with pytest.raises(NoAudioError, match="plain.mp4"):
        iter_audio_windows(videos["plain"], [(0.0, 1.0)])  # at the call, before any decoding


def test_long_audio_memory_is_bounded(tmp_path):
    sr_in = 8000
    signal = sine(440, 180.0, sr_in, (0.3,))  # 3 minutes, PCM in Matroska (cheap to write)
    path = write_video(tmp_path / "long.mkv", num_frames=4, fps=1, audio=signal, sample_rate=sr_in)
    windows = [(s, s + 2.0) for s in np.arange(0, 178, 1.0)]  # 2 s windows, 50% overlap
    tracemalloc.start()
    try:
        n = 0
        for i, x in iter_audio_windows(path, windows):
            assert x.shape == (64000,)
            if i % 40 == 0:
                assert float(np.sqrt(np.mean(x**2))) == pytest.approx(0.3 / np.sqrt(2), rel=0.02)
            n += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == len(windows)
    # the whole track at 32 kHz is 23 MB; the rolling buffer needs about two windows (0.5 MB)
    assert peak < 3_000_000, f"peak {peak} bytes"


# ----------------------------------------------------------------------------- real clips


def test_real_clips_probe_and_decode():
    folder = real_videos()
    bbb = probe_video(folder / "bigbuckbunny.mp4")
    assert (bbb.fps, bbb.num_frames, bbb.width, bbb.height, bbb.has_audio) == (25.0, 132, 1280, 720, True)
    (_, frames), = iter_segment_frames(folder / "bigbuckbunny.mp4", [(0, 132)], 4, short_side=72)
    assert frames.shape == (4, 72, 128, 3) and frames.std() > 5
    bikes = probe_video(folder / "bikes.mp4")
    assert (bikes.width, bikes.height, bikes.has_audio, bikes.num_frames) == (640, 272, False, 250)
    (_, frames), = iter_segment_frames(folder / "carphone_pristine.mp4", [(100, 140)], 3)
    assert frames.shape == (3, 144, 176, 3)


def test_real_six_channel_audio_and_silent_clips():
    folder = real_videos()
    windows = [(0.0, 2.0), (1.0, 3.0), (4.5, 5.0)]
    out = [x for _, x in iter_audio_windows(folder / "bigbuckbunny.mp4", windows)]
    assert [len(x) for x in out] == [64000, 64000, 32000]
    assert all(np.sqrt(np.mean(x**2)) > 1e-3 for x in out)  # 6-channel 48 kHz AAC -> audible mono
    np.testing.assert_array_equal(out[0][32000:], out[1][:32000])
    for name in ("bikes.mp4", "carphone_distorted.mp4"):
        with pytest.raises(NoAudioError, match=name):
            next(iter_audio_windows(folder / name, [(0.0, 1.0)]))
