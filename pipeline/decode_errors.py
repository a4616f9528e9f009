"""Decoder errors in words: "truncated file: the stream ends at 4.8 s of 10.0 s", not
"av_read_frame failed with 1094995529".

FFmpeg reports errors as negative four-letter tags (``AVERROR_INVALIDDATA`` = -MKTAG('I','N','D','A')
= -1094995529) or negative errno values; decord and PyAV pass them on in their messages, sometimes
with the sign dropped. :func:`describe` finds such a code in an exception's text, names it, and
for invalid data or an early end of file looks at the file itself: an .mp4 whose index (``moov``
box) is missing was cut before its end; otherwise the packets are read up to the first error to
say where the stream ends and how long it should be.
"""

from __future__ import annotations

import errno
import os
import re
import struct
from pathlib import Path

import av


def _tag(a: str, b: str, c: str, d: str) -> int:
    """FFmpeg's FFERRTAG: -(a | b << 8 | c << 16 | d << 24)."""
    return -(ord(a) | ord(b) << 8 | ord(c) << 16 | ord(d) << 24)


INVALID_DATA = _tag("I", "N", "D", "A")
END_OF_FILE = _tag("E", "O", "F", " ")
FFMPEG_ERRORS = {
    INVALID_DATA: "FFmpeg found invalid data",
    END_OF_FILE: "FFmpeg reached the end of the file early",
    _tag("\xf8", "D", "E", "C"): "no decoder for this codec",
    _tag("\xf8", "D", "E", "M"): "no demuxer for this container format",
    _tag("\xf8", "S", "T", "R"): "stream not found",
    _tag("P", "A", "W", "E"): "a feature FFmpeg does not implement",
    _tag("B", "U", "G", "!"): "an internal FFmpeg bug",
    _tag("B", "U", "G", " "): "an internal FFmpeg bug",
    _tag("U", "N", "K", "N"): "an unknown FFmpeg error",
    _tag("E", "X", "T", " "): "an error in an external library",
    _tag("E", "X", "I", "T"): "decoding was stopped",
}
ERRNO_WORDS = {
    errno.ENOMEM: "out of memory",
    errno.EIO: "input/output error (disk or network)",
    errno.EACCES: "permission denied",
    errno.ENOENT: "file not found",
    errno.EAGAIN: "resource temporarily unavailable",
    errno.EINVAL: "invalid argument (often an unsupported stream layout)",
    errno.ENOSPC: "no space left on device",
}
_NUMBER = re.compile(r"-?\b\d{1,10}\b")


def error_code(text: str) -> int | None:
    """The FFmpeg error code in ``text`` (``-1094995529``, ``1094995529``, ``[Errno 13]``), or None."""
    for token in _NUMBER.findall(text):
        value = int(token)
        for code in (value, -value):
            if code in FFMPEG_ERRORS:
                return code
    match = re.search(r"\[Errno (-?\d+)\]", text)
    if match:
        value = abs(int(match.group(1)))
        if value in ERRNO_WORDS:
            return -value
    if "Invalid data found" in text:
        return INVALID_DATA
    if "End of file" in text:
        return END_OF_FILE
    return None


def code_words(code: int) -> str:
    if code in FFMPEG_ERRORS:
        return FFMPEG_ERRORS[code]
    return ERRNO_WORDS.get(-code, os.strerror(-code) if code < 0 else f"error {code}")


def mp4_without_index(path: Path) -> bool:
    """True for an ISO-BMFF file (.mp4/.mov/.m4v) whose top-level boxes hold no ``moov`` (its index)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 8 or head[4:8] != b"ftyp":
                return False
            pos, found = 0, False
            while pos + 8 <= size:
                fh.seek(pos)
                box_size, kind = struct.unpack(">I4s", fh.read(8))
                if kind == b"moov":
                    found = True
                    break
                if box_size == 1:  # 64-bit size follows
                    box_size = struct.unpack(">Q", fh.read(8))[0]
                elif box_size == 0:  # to the end of the file
                    break
                if box_size < 8:
                    break
                pos += box_size
            return not found
    except OSError:
        return False


def stream_end(path: Path) -> tuple[float | None, float | None]:
    """(seconds of video readable before the first demuxing error, declared duration) or Nones."""
    try:
        container = av.open(str(path))
    except Exception:
        return None, None
    with container:
        streams = container.streams.video or container.streams.audio
        if not streams:
            return None, None
        stream = streams[0]
        base = stream.time_base
        declared = None
        if stream.duration is not None and base is not None:
            declared = float(stream.duration * base)
        elif container.duration is not None:
            declared = container.duration / 1_000_000
        start = float(stream.start_time * base) if stream.start_time is not None and base is not None else 0.0
        end = None
        try:
            for packet in container.demux(stream):
                if packet.pts is None or base is None:
                    continue
                t = float((packet.pts + (packet.duration or 0)) * base) - start
                end = t if end is None else max(end, t)
        except Exception:
            pass
        return end, declared


def describe(path: str | os.PathLike, exc: BaseException) -> str:
    """A decoder exception about ``path`` -> one line in words (with the code's words in brackets)."""
    path = Path(path)
    text = " ".join(str(exc).split())
    code = error_code(text)
    if code in (INVALID_DATA, END_OF_FILE):
        if mp4_without_index(path):
            return ("truncated file: the .mp4 has no index (moov box), as when a download or copy stopped "
                    f"before the end ({path.stat().st_size} bytes)")
        end, declared = stream_end(path)
        if end is not None and declared is not None and end < declared - 0.5:
            return f"truncated file: the stream ends at {end:.1f} s of {declared:.1f} s ({code_words(code)})"
        return f"corrupt data in the file ({code_words(code)})"
    if code is not None:
        return code_words(code)
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else type(exc).__name__
    return re.sub(r"\[[0-9:]+\] \S+\.(cc|cpp|h):\d+: ", "", first)  # decord's C++ source locations
