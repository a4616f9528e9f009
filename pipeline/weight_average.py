"""An exponential moving average of a model's weights (``train.average_epochs``; not in the paper).

With 4 training videos per TVSum category a model takes 4 optimiser steps per epoch, and its
top-5 ranking of a test video changes from one epoch to the next far more than its loss does
(README, TVSum-like results: the test-selected figure sits 0.13 above the honest one). Scoring
an average of the recent weights instead of the last step's smooths those jumps at no training
cost: the averaged copy is what validation, test and the kept checkpoints see, while the
optimiser keeps stepping the live model.

The average after step ``n`` is ``avg <- d_n * avg + (1 - d_n) * w`` with
``d_n = min(1 - 1 / horizon, (n - 1) / n)``: a plain running mean of the first ``horizon``
steps (the first step copies the weights; no bias towards the initialisation), then an
exponential average whose weights decay with a time constant of ``horizon`` steps. Buffers (the
input stage's fitted statistics) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """An averaged copy of ``model`` over about the last ``horizon`` optimiser steps."""

    def __init__(self, model: torch.nn.Module, horizon: float) -> None:
        if horizon < 1:
            raise ValueError(f"the averaging horizon must be at least one step, got {horizon}")
        self.decay = 1.0 - 1.0 / horizon
        self.steps = 0
        self.model = copy.deepcopy(model)
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the weights of ``model`` (the same architecture) in after one optimiser step."""
        self.steps += 1
        d = min(self.decay, (self.steps - 1) / self.steps)
        for avg, live in zip(self.model.parameters(), model.parameters(), strict=True):
            avg.lerp_(live.detach(), 1.0 - d)
        for avg, live in zip(self.model.buffers(), model.buffers(), strict=True):
            avg.copy_(live)
