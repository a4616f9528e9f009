"""One writer per feature store: a second run on the same output is refused with a clear message;
a finished or killed holder releases the lock."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.extract import extract_visual
from pipeline.run_lock import StoreLockedError, exclusive_run, lock_path
from test_extract import GOOD_ROWS, TinyVisual, media, segment_table  # noqa: F401  (media is a fixture)


def test_second_run_is_refused_and_names_the_holder(tmp_path):
    parts = tmp_path / "visual.h5.parts"
    with exclusive_run(parts):
        with pytest.raises(StoreLockedError, match=r"visual\.h5\.parts\.lock: another run is already writing") as err:
            with exclusive_run(parts):
                pass
        assert '"pid"' in str(err.value) and '"host"' in str(err.value)
    with exclusive_run(parts):  # released at the end of the block
        pass
    assert lock_path(parts).exists()  # the file stays; only the lock matters


def test_extraction_refused_while_another_run_holds_the_store(media, tmp_path):  # noqa: F811
    store = tmp_path / "v.h5"
    with exclusive_run(tmp_path / "v.h5.parts"):
        with pytest.raises(StoreLockedError, match="another run is already writing this feature store"):
            extract_visual(segment_table(GOOD_ROWS), media, TinyVisual(), store, frames_per_segment=4, progress=False)
    assert not store.exists()


HOLD = """
import sys, time
from pipeline.run_lock import exclusive_run
with exclusive_run(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_killed_holder_releases_the_lock(tmp_path):
    parts = tmp_path / "audio.h5.parts"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(parts)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreLockedError):
            with exclusive_run(parts):
                pass
        holder.kill()  # SIGKILL: no cleanup code runs in the holder
        holder.wait(timeout=30)
        with exclusive_run(parts):  # the kernel dropped its lock
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
