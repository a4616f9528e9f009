"""Device selection, mixed precision and CPU thread count, from the strings in ``params.yaml``."""

from __future__ import annotations

import contextlib
import os
import re

import torch

from .errors import PipelineError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(PipelineError, RuntimeError):
    """The device named in params.yaml is not on this machine."""


def resolve_device(spec: str = "auto") -> torch.device:
    """"auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N" -> torch.device.

    Asking for CUDA on a machine without it is an error, not a silent fallback.
    """
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise ValueError(f"device {spec!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {spec!r} requested but CUDA is not available on this machine (use 'auto' or 'cpu')")
    if match.group(1) is not None and int(match.group(1)) >= torch.cuda.device_count():
        raise DeviceError(f"device {spec!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(text)


def autocast_context(device: torch.device | str, dtype: str = "none") -> contextlib.AbstractContextManager:
    """Mixed-precision context for inference on CUDA: "none" (float32), "bf16" or "fp16".

    Autocast is a GPU setting (as in ``params.yaml``): on any other device the run stays in
    float32 whatever ``dtype`` says, so one configuration serves GPU and CPU machines.
    """
    if dtype not in ("none", *AUTOCAST_DTYPES):
        raise ValueError(f"autocast {dtype!r}: use 'none', 'bf16' or 'fp16'")
    device = torch.device(device)
    if dtype == "none" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=AUTOCAST_DTYPES[dtype])


def set_cpu_threads(n: int | None) -> int:
    """Set torch's intra-op thread count (``n`` <= 0 or None: all cores) -> the count set."""
    count = int(n) if n is not None and int(n) > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(count)
    return count
