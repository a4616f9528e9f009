"""Decoder error codes in words (issue 9): FFmpeg's numbers never reach the user alone."""

from __future__ import annotations

import errno

from pipeline.decode_errors import END_OF_FILE, INVALID_DATA, code_words, describe, error_code, mp4_without_index
from test_decoding import write_video


def test_ffmpeg_tags_are_computed_as_ffmpeg_does():
    assert INVALID_DATA == -1094995529  # FFERRTAG('I','N','D','A')
    assert END_OF_FILE == -541478725  # FFERRTAG('E','O','F',' ')


def test_codes_are_found_in_decord_and_pyav_messages():
    assert error_code("video_reader.cc:486: Error: av_read_frame failed with 1094995529") == INVALID_DATA
    assert error_code("Check failed: avcodec_send_packet(...) >= 0 (-1094995529 vs. 0) Thread worker") == INVALID_DATA
    assert error_code("[Errno 1094995529] Invalid data found when processing input: 'x.mp4'") == INVALID_DATA
    assert error_code("[Errno -541478725] End of file") == END_OF_FILE
    assert error_code("[Errno 12] Cannot allocate memory") == -errno.ENOMEM
    assert error_code("something else entirely") is None
    assert code_words(INVALID_DATA) == "FFmpeg found invalid data"
    assert code_words(-errno.ENOMEM) == "out of memory"


def test_describe_tells_a_cut_mp4_from_corrupt_data(tmp_path):
    path = write_video(tmp_path / "v.mp4", 30, 32, 24, fps=25)
    assert not mp4_without_index(path)
    raw = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(raw[: len(raw) // 2])
    assert mp4_without_index(cut)
    message = describe(cut, RuntimeError("av_read_frame failed with 1094995529"))
    assert message.startswith("truncated file: the .mp4 has no index (moov box)") and "1094995529" not in message
    text = tmp_path / "text.mp4"
    text.write_text("hello\n")
    assert describe(text, RuntimeError("[Errno 1094995529] Invalid data")) == "corrupt data in the file (FFmpeg found invalid data)"
    trace = "[10:00:00] /github/workspace/src/video/video_reader.cc:151: Error opening the file"
    assert describe(path, RuntimeError(trace)) == "Error opening the file"
