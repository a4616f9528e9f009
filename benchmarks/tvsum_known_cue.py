"""Does `co_av` beat `linear` on the TVSum-like top-5 figure when the cue need not be found?
(a diagnosis, not a benchmark of the honest figures)

    python benchmarks/tvsum_known_cue.py --root BENCH --rotation R [--seeds 0 1 2] [--dims 16] \\
        [--inputs raw known_cue estimated_cue] [--models co_av linear probe] [--seed 0] [--cue 0.45] \\
        [--work /tmp/known_cue] [--json OUT.json]
    python benchmarks/tvsum_known_cue.py summary ROT0.json ROT1.json ...   # README's table

``BENCH`` is a worktree whose ``data/aligned/tvsum`` and ``data/prepared/tvsum`` were made from
``hpcl make-bench tvsum ... --config '{"cue": CUE}' --rotation R --seed SEED`` and ``dvc repro
align``, with its params file at ``BENCH/params_exp.yaml`` (else ``BENCH/params.yaml``).

Up to three kinds of inputs (``--inputs``), the same for every model:

- ``raw``: the bench's 2048-d features, as the pipeline reads them;
- ``known_cue``: per category and modality, ``dims``-d features: the segments' features, centred
  on the category's training mean, projected on the planted cue direction (re-planted in memory
  from the bench's seed) and on the top ``dims - 1`` principal directions of the category's
  training segments, orthogonalised to the cue (``pipeline.synthbench.known_cue_items``);
- ``estimated_cue``: the same with the direction estimated from the training labels instead of
  the planted one (``pipeline.synthbench.lda_direction``).

With the cue given, the models still have to find which of the ``dims`` inputs carries it, from
the same 4 training videos, but no longer a direction in 2048-d.

On each, ``co_av`` trains a fixed 20 epochs with the fusion weights ``model.w_*`` and ``linear``
a fixed 60 (``train.selection: fixed``: the same protocol for every cell, not the honest
selection), one model per seed, and the test videos' top-5 umt mAP is printed per seed; ``probe``
is a converged scikit-learn logistic regression on the same inputs (:func:`probe_predictions`),
the bar for what a per-segment linear model can reach on them (``linear``, Adam for 60 epochs,
falls short of it on the 16-d inputs, so it is not the bar there). If every model gains when the
cue is given, finding it is what holds them down; if `co_av` then pulls ahead of the probe, its
structure (context, the second modality) uses what the data holds; if it is level with the
probe, it adds nothing a per-segment linear model does not (README "With the cue given": level).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.metrics import evaluate  # noqa: E402
from pipeline.synthbench import known_cue_items  # noqa: E402
from rotation_bench import MODELS, add_bench_args, load_bench, replant, train_sketch  # noqa: E402


def probe_predictions(items: list, C: float = 0.1) -> dict[str, list[float]]:
    """A converged per-segment probe on the same inputs: per category, scikit-learn's logistic
    regression (L2, ``C``, lbfgs to convergence; the calibration probe's recipe) on the training
    segments' ``[visual; audio]`` features standardised per dimension; returns the test videos'
    scores (deterministic: no seed)."""
    from sklearn.linear_model import LogisticRegression

    out = {}
    for domain in sorted({it.domain for it in items}):
        train = [it for it in items if it.split == "train" and it.domain == domain]
        x = np.concatenate([np.concatenate([it.visual, it.audio], 1) for it in train]).astype(np.float64)
        mean, std = x.mean(0), x.std(0) + 1e-9
        clf = LogisticRegression(C=C, max_iter=10000).fit((x - mean) / std, np.concatenate([it.labels for it in train]))
        for it in items:
            if it.split == "test" and it.domain == domain:
                f = np.concatenate([it.visual, it.audio], 1).astype(np.float64)
                out[it.vid] = clf.decision_function((f - mean) / std).tolist()
    return out


KINDS = ("raw", "known_cue", "estimated_cue")
SCORERS = ("co_av", "linear", "probe")
# the paired differences README reads: (a, b) -> a - b per rotation
PAIRS = [*((f"{k}/co_av", f"{k}/{b}") for k in KINDS for b in ("linear", "probe")),
         *((f"known_cue/{m}", f"raw/{m}") for m in SCORERS),
         ("estimated_cue/co_av", "raw/co_av"), ("estimated_cue/co_av", "raw/linear")]


def summary(files: list[str]) -> None:
    """Several rotations' ``--json`` files -> per input kind and scorer the mean over rotations of
    each rotation's mean over seeds (top-5 umt mAP, textbook AP), and the paired differences
    (per rotation, mean +- std, standard error)."""
    if len(files) < 2:
        raise SystemExit("summary needs the --json files of at least 2 rotations")
    runs = [json.loads(Path(f).read_text(encoding="utf-8")) for f in files]

    def per_rotation(key: str, field: str = "per_seed") -> np.ndarray | None:
        if not all(key in r for r in runs):
            return None
        return np.array([np.mean(r[key][field]) for r in runs])

    print(f"rotations {[r['rotation'] for r in runs]}: top-5 umt mAP (textbook AP), mean over rotations")
    for kind in KINDS:
        cells = []
        for name in SCORERS:
            top5, textbook = per_rotation(f"{kind}/{name}"), per_rotation(f"{kind}/{name}", "textbook_per_seed")
            cells.append("-" if top5 is None else f"{top5.mean():.3f} ({textbook.mean():.3f})")
        print(f"{kind:13s} " + "  ".join(f"{n} {c}" for n, c in zip(SCORERS, cells)))
    for a, b in PAIRS:
        x, y = per_rotation(a), per_rotation(b)
        if x is None or y is None:
            continue
        d = x - y
        print(f"{a} - {b}: " + ", ".join(f"{v:+.3f}" for v in d)
              + f" = {d.mean():+.3f} +- {d.std(ddof=1):.3f} (SE {d.std(ddof=1) / np.sqrt(len(d)):.3f})")


def main() -> None:
    if sys.argv[1:2] == ["summary"]:
        summary(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_args(ap, "/tmp/known_cue")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the models' seeds")
    ap.add_argument("--dims", type=int, default=16)
    ap.add_argument("--inputs", nargs="+", choices=KINDS, default=list(KINDS),
                    help="estimated_cue: the known-cue inputs with the direction estimated from the training "
                         "labels (lda_direction) instead of the planted one")
    ap.add_argument("--models", nargs="+", choices=SCORERS, default=list(SCORERS),
                    help="probe: the converged scikit-learn probe (probe_predictions), one figure, no seeds")
    ap.add_argument("--json", type=Path, help="also write the figures here (merged into an existing file)")
    args = ap.parse_args()

    sections, raw, table = load_bench(args.root)
    make = {"raw": lambda: raw, "known_cue": lambda: known_cue_items(raw, replant(args).cue_dirs, args.dims),
            "estimated_cue": lambda: known_cue_items(raw, None, args.dims)}
    inputs = {kind: make[kind]() for kind in args.inputs}
    result: dict = {"rotation": args.rotation, "dims": args.dims, "seeds": args.seeds}
    if args.json and args.json.is_file():  # merge: refuse figures of another rotation or width
        before = json.loads(args.json.read_text(encoding="utf-8"))
        for key in ("rotation", "dims"):
            if before.get(key, result[key]) != result[key]:
                raise SystemExit(f"{args.json}: holds {key} {before[key]}, this run has {result[key]}; "
                                 "choose another --json file")
        result = {**before, **result}
    for kind, items in inputs.items():
        if "probe" in args.models:
            preds = probe_predictions(items)
            figs = {p: evaluate("tvsum", table, preds, protocol=p)["mAP"] for p in ("umt", "standard")}
            result[f"{kind}/probe"] = {"per_seed": [figs["umt"]], "textbook_per_seed": [figs["standard"]]}
            print(f"rotation {args.rotation} {kind:9s} probe  top-5 umt {figs['umt']:.3f} (textbook AP "
                  f"{figs['standard']:.3f})", flush=True)
        for name in (n for n in MODELS if n in args.models):
            m = train_sketch(items, sections, name, args.seeds, table, args.work / f"r{args.rotation}" / kind / name)
            result[f"{kind}/{name}"] = {"per_seed": m["umt"]["per_seed"], "textbook_per_seed": m["standard"]["per_seed"]}
            print(f"rotation {args.rotation} {kind:9s} {name:6s} top-5 umt per seed "
                  + " ".join(f"{v:.3f}" for v in m["umt"]["per_seed"])
                  + f"  mean {np.mean(m['umt']['per_seed']):.3f}", flush=True)
        if f"{kind}/co_av" in result and f"{kind}/linear" in result:
            d = np.subtract(result[f"{kind}/co_av"]["per_seed"], result[f"{kind}/linear"]["per_seed"])
            result[f"{kind}/co_av-linear"] = float(d.mean())
            print(f"rotation {args.rotation} {kind:9s} co_av - linear {d.mean():+.3f} (per seed "
                  + " ".join(f"{v:+.3f}" for v in d) + ")", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
