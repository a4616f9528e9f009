"""Expected errors: which they are, and the one line a stage prints for them (issue 9)."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

from pipeline.annotations import AnnotationError, write_segment_table
from pipeline.errors import DiskFullError, disk_full, free_space, is_disk_full, is_expected, message


def test_which_errors_are_expected():
    assert is_expected(AnnotationError("x.json: video 'v': bad"))
    assert is_expected(FileNotFoundError("weights.json"))
    assert is_expected(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError("Can't write data (file write failed: errno = 28, error message = 'No space')"))
    assert not is_expected(KeyError("bug")) and not is_expected(TypeError("bug"))


def test_disk_full_names_the_file_the_free_space_and_what_is_kept(tmp_path):
    err = disk_full(tmp_path / "out" / "features.h5", OSError(errno.ENOSPC, "x"), "the 3 videos are kept in parts/")
    assert isinstance(err, DiskFullError) and err.errno == errno.ENOSPC
    text = message(err)
    assert text.startswith(f"{tmp_path / 'out' / 'features.h5'}: disk full while writing it (")
    assert f"free on {tmp_path}" in text and "the 3 videos are kept in parts/" in text and "rerun" in text
    assert "free on" in free_space(tmp_path / "not" / "there")


def test_a_full_disk_while_writing_the_segment_table_names_it(tmp_path, monkeypatch):
    import pandas as pd

    from pipeline.annotations import SEGMENT_COLUMNS

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with pytest.raises(DiskFullError, match=r"segments.csv: disk full while writing it"):
        write_segment_table(pd.DataFrame(columns=list(SEGMENT_COLUMNS)), tmp_path / "segments.csv")
    assert list(tmp_path.iterdir()) == []  # no temporary file left


HANDLER = """
import sys
sys.path.insert(0, {root!r})
from pipeline.errors import install_stage_handler
from pipeline.annotations import AnnotationError
install_stage_handler("demo_stage", {logs!r})
raise {exc}
"""


@pytest.mark.parametrize("exc, expected, traceback", [
    ("AnnotationError(\"a.json: video 'v1': match[0] = 2 is not one of -1, 0, 1\")",
     "ERROR demo_stage: a.json: video 'v1': match[0] = 2 is not one of -1, 0, 1", False),
    ("KeyError('a bug')", "KeyError: 'a bug'", True),
])
def test_the_stage_handler_prints_one_line_for_expected_errors_only(tmp_path, exc, expected, traceback):
    from pipeline.paths import REPO_ROOT

    script = tmp_path / "stage.py"
    script.write_text(HANDLER.format(root=str(REPO_ROOT), logs=str(tmp_path / "logs"), exc=exc))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert expected in proc.stderr
    assert ("Traceback" in proc.stderr) == traceback
    if not traceback:
        assert "AnnotationError" in (tmp_path / "logs" / "demo_stage.log").read_text()
