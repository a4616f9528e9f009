"""The paper's Figure 3: t-SNE of the test segments' embeddings, per domain."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.model import ModelConfig, build_model
from pipeline.tsne import plot_tsne, segment_embeddings, tsne_2d, write_tsne_plots
from test_train import TINY, planted_items

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _fitted(variant: str):
    torch.manual_seed(0)
    model = build_model(ModelConfig(**{**TINY, "variant": variant}), 8, 8)
    g = torch.Generator().manual_seed(0)
    model.fit_inputs(torch.randn(60, 8, generator=g), torch.randn(60, 8, generator=g), torch.ones(60, dtype=torch.bool))
    return model


def test_segment_embeddings_are_the_contrastive_embedding():
    items = planted_items(0, 3)
    model = _fitted("co_av")
    emb, labels = segment_embeddings(model, items, {"dog": 0})
    n = sum(it.num_segments for it in items)
    assert emb.shape == (n, 2 * TINY["d_model"]) and labels.shape == (n,)
    np.testing.assert_array_equal(labels, np.concatenate([it.labels for it in items]))
    # the first video's rows are the model's "emb" output on that video alone
    it = items[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(it.visual)[None], torch.from_numpy(it.audio)[None],
                    torch.ones(1, it.num_segments, dtype=torch.bool), torch.ones(1, it.num_segments, dtype=torch.bool))
    np.testing.assert_allclose(emb[: it.num_segments], ref["emb"][0].numpy(), rtol=1e-5, atol=1e-6)
    # the baselines have no embedding: their normalised inputs stand in (2 x input_dim wide)
    lin, _ = segment_embeddings(_fitted("linear"), items, {"dog": 0})
    assert lin.shape == (n, 2 * TINY["input_dim"])


def test_tsne_separates_two_clusters_and_writes_one_png_per_domain(tmp_path):
    g = np.random.default_rng(0)
    x = np.concatenate([g.normal(0, 1, (30, 10)), g.normal(8, 1, (30, 10))])
    pts = tsne_2d(x)
    assert pts.shape == (60, 2)
    a, b = pts[:30].mean(0), pts[30:].mean(0)
    spread = max(pts[:30].std(0).max(), pts[30:].std(0).max())
    assert np.linalg.norm(a - b) > 2 * spread  # the two groups stay apart
    path = plot_tsne(pts, np.repeat([0, 1], 30), tmp_path / "t.png", "title")
    assert Image.open(path).size == (500, 500)
    items = planted_items(0, 2, domains=("dog", "surfing"))
    model = _fitted("co_av")
    paths = write_tsne_plots({"dog": (model, {"dog": 0}), "surfing": (model, {"surfing": 0})}, items, tmp_path / "out",
                             "co_av")
    assert sorted(p.name for p in paths) == ["tsne_dog.png", "tsne_surfing.png"]
    with pytest.raises(ValueError, match="at least 4"):
        tsne_2d(x[:3])
