"""train.average_epochs: an exponential moving average of the weights, scored and kept instead
of the last step's weights, without changing how the live model trains."""

from __future__ import annotations

import pytest
import torch

from pipeline.model import ModelConfig
from pipeline.train import TrainConfig, train_dataset
from pipeline.weight_average import WeightAverage
from test_train import CPU, TINY, planted_items

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Scalar(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.register_buffer("stat", torch.zeros(1))


def _averages(horizon: float, weights: list[float], stats: list[float]) -> tuple[list[float], float]:
    live = _Scalar()
    avg = WeightAverage(live, horizon)
    seen = []
    for w, s in zip(weights, stats):
        with torch.no_grad():
            live.w.fill_(w)
            live.stat.fill_(s)
        avg.update(live)
        seen.append(round(float(avg.model.w), 6))
    return seen, float(avg.model.stat)


def test_average_is_a_running_mean_up_to_the_horizon_then_exponential():
    # horizon 2 (decay 1/2): 1 -> 1, (1+3)/2 = 2, (2+7)/2 = 4.5, (4.5+15)/2 = 9.75
    assert _averages(2, [1, 3, 7, 15], [0, 0, 0, 0])[0] == [1.0, 2.0, 4.5, 9.75]
    # horizon 4 (decay 3/4): running means 1, 2, 11/3, 26/4 up to step 4, then 0.75*6.5 + 0.25*31
    seen, stat = _averages(4, [1, 3, 7, 15, 31], [5, 5, 5, 5, 9])
    assert seen == [1.0, 2.0, round(11 / 3, 6), 6.5, 12.625]
    assert stat == 9.0  # buffers (fitted input statistics) are copied, not averaged
    # horizon 1: the average is the live model
    assert _averages(1, [1, 3, 7], [0, 0, 0])[0] == [1.0, 3.0, 7.0]
    with pytest.raises(ValueError, match="at least one step"):
        WeightAverage(_Scalar(), 0.5)


def _train(tmp_path, name: str, average_epochs: float) -> tuple[dict, dict]:
    items = planted_items(6, 2)
    h = train_dataset(items, ModelConfig(**TINY), TrainConfig(epochs=3, batch_size=2, seeds=[0], test_every=1,
                      average_epochs=average_epochs, **CPU), tmp_path / name, "youtube_highlights", progress=False)
    group = h["groups"]["dog"]
    state = torch.load(tmp_path / name / group["checkpoints"][0], weights_only=True)
    return group, state


def test_averaging_changes_what_is_scored_and_kept_not_how_the_model_trains(tmp_path):
    off, off_state = _train(tmp_path, "off", 0.0)
    one, one_state = _train(tmp_path, "one_step", 1e-6)  # a horizon of one step: the live weights
    avg, avg_state = _train(tmp_path, "avg", 2.0)
    # the same live training: identical losses in the cross-validation and the final runs
    assert [r["loss"] for r in avg["runs"][0]["epochs"]] == [r["loss"] for r in off["runs"][0]["epochs"]]
    # a one-step horizon keeps exactly the live weights and scores
    assert all(torch.equal(one_state[k], off_state[k]) for k in off_state)
    assert one["runs"][0]["cv"]["curves"] == off["runs"][0]["cv"]["curves"]
    # a longer horizon keeps other weights (input statistics unchanged), and validation and test score them
    changed = [k for k in off_state if not torch.equal(avg_state[k], off_state[k])]
    assert changed and not any(".inputs." in k for k in changed), changed
    assert avg["runs"][0]["cv"]["curves"] != off["runs"][0]["cv"]["curves"]
    assert [r["test_mAP"] for r in avg["runs"][0]["epochs"]] != [r["test_mAP"] for r in off["runs"][0]["epochs"]]


def test_negative_average_epochs_is_an_error():
    with pytest.raises(ValueError, match="average_epochs"):
        TrainConfig(average_epochs=-1)
