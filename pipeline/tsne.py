"""The paper's Figure 3: t-SNE of the test segments' embeddings, one plot per domain.

``segment_embeddings`` runs a trained model over whole videos and returns, per segment, the
embedding the contrastive losses shape (``emb``: the concatenated intra-modality outputs of the
HPCL variants); the per-segment baselines have no embedding and give their normalised inputs
instead. ``plot_tsne`` maps one domain's test segments to 2-D with scikit-learn's t-SNE (seeded,
perplexity capped below the number of segments) and colours them highlight / not, so each
`dvc exp run` of a variant leaves its own picture of how well the classes separate.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .align import VideoItem  # noqa: E402
from .batching import collate  # noqa: E402
from .paths import check_id  # noqa: E402


@torch.no_grad()
def segment_embeddings(model: torch.nn.Module, items: list[VideoItem], domain_index: dict[str, int],
                       device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Embeddings [N, D] and binary labels [N] of every segment of ``items`` (videos one by one)."""
    model.eval()
    embs, labels = [], []
    for it in items:
        b = collate([it], domain_index, torch.device(device))
        out = model(b["visual"], b["audio"], b["mask"], b["audio_mask"], b["domain"])
        if out["emb"] is not None:
            e = out["emb"][0]  # [T, D]
        else:  # baselines: their normalised inputs
            e = torch.cat([model.in_v(b["visual"][0]), model.in_a(b["audio"][0]) * b["audio_mask"][0, :, None]], -1)
        embs.append(e.float().cpu().numpy())
        labels.append(it.labels)
    return np.concatenate(embs), np.concatenate(labels)


def tsne_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """[N, D] -> [N, 2] with scikit-learn's Barnes-Hut t-SNE, PCA start, seeded."""
    from sklearn.manifold import TSNE

    n = x.shape[0]
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 segments, got {n}")
    perplexity = float(min(30.0, (n - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        x.astype(np.float64))


def plot_tsne(points: np.ndarray, labels: np.ndarray, path: str | os.PathLike, title: str) -> Path:
    """Scatter [N, 2] points coloured by label (1 = highlight) into ``path`` (PNG, 500 x 500 px)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    for lab, colour, name in ((0, "tab:blue", "not highlight"), (1, "tab:red", "highlight")):
        sel = labels == lab
        ax.scatter(points[sel, 0], points[sel, 1], s=6, c=colour, alpha=0.7, label=f"{name} ({int(sel.sum())})")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_tsne_plots(models_by_group: dict[str, tuple[torch.nn.Module, dict[str, int]]], test_items: list[VideoItem],
                     out_dir: str | os.PathLike, variant: str, device: torch.device | str = "cpu") -> list[Path]:
    """``out_dir/tsne_<domain>.png`` for each domain with test videos; ``models_by_group`` maps a
    group's domains to (its first seed's model, its domain index)."""
    out = []
    for domain in sorted({it.domain for it in test_items}):
        check_id(domain, "t-SNE plot (domain)")
        if domain not in models_by_group:
            continue
        model, domain_index = models_by_group[domain]
        items = [it for it in test_items if it.domain == domain]
        emb, labels = segment_embeddings(model, items, domain_index, device)
        if emb.shape[0] < 4:
            continue
        title = f"{domain}: t-SNE of {emb.shape[0]} test segments ({variant}, seed 0)"
        out.append(plot_tsne(tsne_2d(emb), labels, Path(out_dir) / f"tsne_{domain}.png", title))
    return out
