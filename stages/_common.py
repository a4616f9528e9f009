"""Shared by the stage scripts: repository root on sys.path, JSON output, logging, error reporting.

An expected error (``pipeline.errors``: bad params, annotations, weights, videos, a full disk)
ends the stage with ``ERROR <stage>: <message>`` and exit status 1; its traceback goes to
``logs/<stage>.log`` (``HPCL_DEBUG=1`` prints it instead). Other errors keep their traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # as under DVC: relative paths in the stages' outputs are the same in every clone

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

from pipeline.errors import disk_full, install_stage_handler, is_disk_full  # noqa: E402 (needs ROOT on sys.path)

STAGE = Path(sys.argv[0]).stem + "".join(f"_{a}" for a in sys.argv[1:2] if not a.startswith("-"))
install_stage_handler(STAGE, ROOT / "logs")


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented JSON, creating the parent folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=str)
            fh.write("\n")
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(path, exc) from exc
        raise
