"""The ``train:`` and ``loss:`` sections of params.yaml as one flat, validated config.

``TrainConfig`` is what ``pipeline.train`` trains with, ``pipeline.objective`` computes the loss
from, and ``pipeline.params_schema`` checks params.yaml against (``pipeline.train``'s module
docstring describes the selection procedures the keys choose between).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .model import check_fusion_weights

SELECTIONS = ("kfold", "holdout", "fixed")
SELECTION_SCOPES = ("group", "pooled")


@dataclass
class TrainConfig:
    """The ``train:`` and ``loss:`` sections of params.yaml, flat.

    train: optimizer (adam | adamw), lr, weight_decay, epochs (the longest run: the epoch budget
    that selection chooses within, or the fixed budget), batch_size (videos per batch),
    selection (kfold | holdout | fixed, see ``pipeline.train``), selection_scope (group |
    pooled: kfold's epoch count per model group or one for all groups), folds (K of kfold),
    val_fraction (holdout), seeds (one model per seed; metrics report mean and std),
    test_every (final runs score the test split every n epochs for the optimistic figure; 0 =
    never), per_domain (true: one model per domain; false: one shared model with a domain
    embedding), device (auto | cpu | cuda | cuda:N), num_threads (CPU threads, 0 = all cores;
    1 is fastest for these small models on a shared 2-core machine), average_epochs (0 = off;
    > 0: validation, test and the kept checkpoints use an exponential moving average of the
    weights over about this many epochs, ``pipeline.weight_average``; not in the paper),
    fusion_grid (kfold only: late-fusion weightings ``[w_co, w_v, w_a]`` that cross-validation
    chooses among, jointly with the epoch, beside the model's own ``model.w_*``, which wins ties;
    [] = the model's own only. The heads train the same under any weighting, so every weighting is
    scored from the same runs; not in the paper), cv_smooth (kfold only: each mean validation
    curve is averaged over +-cv_smooth epochs before its best point is chosen,
    ``selection.smooth_curve``; 0 = off; not in the paper).
    loss: lambda_ce, lambda_hpcl, lambda_rank (eq. 6 weights), tau (HPCL temperature, not
    stated in the paper), margin and region (hard-pair hinge margin and L), ce_target
    (binary: the labels; regression: the TVSum targets (sum - 20) / 80 as soft CE targets),
    lambda_av and av_window (a label-free audio-visual correspondence term, not in the paper:
    ``losses.av_agreement_loss``; 0 = off; only where the streams train jointly, as with
    ``model.stream_training: joint``), lambda_list and list_tau (a top-heavy listwise ranking term
    within each video, ``losses.listwise_loss``, its target distribution ``softmax(targets /
    list_tau)``; 0 = off; not in the paper).
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 25
    batch_size: int = 4
    selection: str = "kfold"
    selection_scope: str = "group"
    folds: int = 3
    val_fraction: float = 0.2
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    test_every: int = 1
    per_domain: bool = True
    device: str = "auto"
    num_threads: int = 1
    average_epochs: float = 0.0
    fusion_grid: list = field(default_factory=list)
    cv_smooth: int = 0
    lambda_ce: float = 1.0
    lambda_hpcl: float = 0.3
    lambda_rank: float = 0.1
    tau: float = 0.1
    margin: float = 0.7
    region: int = 3
    ce_target: str = "binary"
    lambda_av: float = 0.0
    av_window: int = 1
    lambda_list: float = 0.0
    list_tau: float = 0.1

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"train.optimizer must be adam or adamw, got {self.optimizer!r}")
        if self.ce_target not in ("binary", "regression"):
            raise ValueError(f"loss.ce_target must be binary or regression, got {self.ce_target!r}")
        if self.lambda_list < 0 or self.list_tau <= 0:
            raise ValueError(f"loss.lambda_list must be >= 0 and loss.list_tau > 0, got {self.lambda_list}, "
                             f"{self.list_tau}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"train.selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("train.epochs and train.batch_size must be >= 1")
        if self.selection_scope not in SELECTION_SCOPES:
            raise ValueError(f"train.selection_scope must be one of {SELECTION_SCOPES}, got {self.selection_scope!r}")
        if self.folds < 2:
            raise ValueError(f"train.folds must be >= 2, got {self.folds}")
        if isinstance(self.cv_smooth, bool) or not isinstance(self.cv_smooth, int) or self.cv_smooth < 0:
            raise ValueError(f"train.cv_smooth must be an integer >= 0, got {self.cv_smooth!r}")
        if self.average_epochs < 0:
            raise ValueError(f"train.average_epochs must be >= 0, got {self.average_epochs}")
        if self.test_every < 0:
            raise ValueError(f"train.test_every must be >= 0, got {self.test_every}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"train.val_fraction must be in [0, 1), got {self.val_fraction}")
        if not isinstance(self.seeds, (list, tuple)) or not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"train.seeds must be a non-empty list of distinct integers, got {self.seeds!r}")
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.seeds):
            raise ValueError(f"train.seeds must be integers >= 0, got {self.seeds!r}")
        self.seeds = list(self.seeds)
        if not isinstance(self.fusion_grid, (list, tuple)):
            raise ValueError(f"train.fusion_grid must be a list of [w_co, w_v, w_a], got {self.fusion_grid!r}")
        for i, weights in enumerate(self.fusion_grid):
            check_fusion_weights(weights, f"train.fusion_grid[{i}]")
        self.fusion_grid = [[float(w) for w in weights] for weights in self.fusion_grid]

    @classmethod
    def from_sections(cls, train: dict, loss: dict) -> "TrainConfig":
        """Build from the params.yaml ``train:`` and ``loss:`` sections; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        merged = {**(train or {}), **(loss or {})}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ValueError(f"unknown train/loss params {unknown}; known: {sorted(known)}")
        return cls(**merged)
