"""Shared fixtures.

``shared_data``: the read-only ``../shared/data`` folder (``$HPCL_SHARED_DATA`` overrides); tests that
need the real annotations skip with a clear reason where it is absent (CI always has it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.paths import shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared data folder, or skip the test when it is not there."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"shared data folder {root} not found (set HPCL_SHARED_DATA to its path)")
    return root
