"""``hpcl``: the command line. It only parses arguments and calls the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .paths import REPO_ROOT

DEFAULT_VISUAL_WEIGHTS = REPO_ROOT / "data" / "weights" / "visual" / "weights.pt"
DEFAULT_AUDIO_WEIGHTS = REPO_ROOT / "data" / "weights" / "audio" / "weights.pt"


def _print_json(obj: dict, out: str | None = None) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n", encoding="utf-8")


def _default_weights(given: str | None, default: Path) -> str | None:
    if given:
        return given
    return str(default) if default.exists() else None


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .metrics import evaluate_files

    result = evaluate_files(args.dataset, args.annotations, args.predictions, protocol=args.protocol,
                            splits_file=args.splits_file)
    _print_json(result, args.out)


def cmd_table(args: argparse.Namespace) -> None:
    from .evaluation import format_table
    from .skipped import table_note

    with open(args.metrics, encoding="utf-8") as fh:
        metrics = json.load(fh)
    print(format_table(metrics))
    print(table_note(metrics))


def cmd_make_bench(args: argparse.Namespace) -> None:
    from .synthbench import SynthConfig, calibrate, plant_tvsum, plant_youtube, write_planted

    cfg = SynthConfig(**json.loads(args.config)) if args.config else SynthConfig()
    if args.dataset == "youtube_highlights":
        if len(args.labels) != 1:
            raise ValueError("youtube_highlights: --labels is one folder (the authors' release)")
        planted = plant_youtube(args.labels[0], args.splits, args.domains, seed=args.seed, cfg=cfg,
                                rotation=args.rotation)
    else:
        planted = plant_tvsum(args.labels, args.splits, seed=args.seed, cfg=cfg, rotation=args.rotation)
    result = {"written": write_planted(planted, args.out, cfg, args.seed) if args.out else None}
    if args.calibrate:
        result["calibration"] = calibrate(planted)
    _print_json(result)


def _parse_value(text: str):
    """A ``-S``-style value as DVC reads it (YAML 1.2): numbers (``1e-4`` too), booleans, lists, else the string."""
    from .params import parse_value

    return parse_value(text)


def cmd_ablate(args: argparse.Namespace) -> None:
    from .ablation import SETTINGS, ablation_table, paired_comparison, run_setting

    if args.compare:
        if args.settings or args.table:
            raise ValueError("ablate --compare takes run folders only, no setting names or --table")
        print(paired_comparison(args.compare))
        return
    if not args.out:
        raise ValueError("ablate: --out is required (the results folder), except with --compare")
    if args.table:
        print(ablation_table(args.out, args.settings or None))
        return
    from .align import load_aligned
    from .annotations import read_segment_table
    from .params import read_params, section

    params = read_params(args.params)
    params["dataset"] = args.dataset
    sections = {name: section(name, params) for name in ("model", "train", "loss")}
    extra = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected section.key=value")
        extra[key] = _parse_value(value)
    unknown = [n for n in args.settings if n not in SETTINGS]
    if unknown:
        raise ValueError(f"unknown settings {unknown}; known: {sorted(SETTINGS)}")
    root = Path(args.root)
    items = load_aligned(root / "data" / "aligned" / args.dataset / "aligned.h5")
    table = read_segment_table(root / "data" / "prepared" / args.dataset / "segments.csv")
    suffix = args.suffix or ""
    for name in args.settings:
        overrides = {**SETTINGS[name][0], **extra}
        res = run_setting(name + suffix, overrides, items, table, args.dataset, sections, args.out, progress=True,
                          keep_cv_curves=args.keep_cv_curves, keep_predictions=args.keep_predictions)
        print(f"{name + suffix}: umt {res['umt']['mAP']:.3f} +- {res['umt']['std']:.3f} "
              f"(cv {res['cv']['mAP'] if res['cv']['mAP'] is not None else float('nan'):.3f}, "
              f"{res['seconds_per_epoch']:.2f} s/epoch)", flush=True)
    print(ablation_table(args.out))


def _visual(args: argparse.Namespace):
    from .backbones import build_visual_backbone
    from .device import resolve_device

    weights = _default_weights(args.visual_weights, DEFAULT_VISUAL_WEIGHTS)
    if weights is None:
        raise SystemExit(
            f"no weights for visual backbone {args.visual!r}: run `dvc repro weights_visual` "
            f"(writes {DEFAULT_VISUAL_WEIGHTS}) or pass --visual-weights PATH"
        )
    kwargs = {"crop_size": args.crop_size} if args.crop_size else {}
    return build_visual_backbone(args.visual, weights_path=weights, device=resolve_device(args.device), **kwargs)


def _audio(args: argparse.Namespace):
    from .backbones import build_audio_backbone
    from .device import resolve_device

    if args.audio == "logmel":
        return build_audio_backbone("logmel", device=resolve_device(args.device))
    weights = _default_weights(args.audio_weights, DEFAULT_AUDIO_WEIGHTS)
    return build_audio_backbone(args.audio, weights_path=weights, device=resolve_device(args.device))


def cmd_check_backbones(args: argparse.Namespace) -> None:
    from .extract import check_backbones

    _print_json(check_backbones(args.video, _visual(args), _audio(args), topk=args.topk))


def cmd_bench_extract(args: argparse.Namespace) -> None:
    from .device import resolve_device
    from .extract import bench_extract, resolve_workers

    result = bench_extract(
        args.video,
        _visual(args),
        segments=args.segments,
        batch_size=args.batch_size,
        frames_per_segment=args.frames_per_segment,
        device=resolve_device(args.device),
        autocast=args.autocast,
        num_workers=resolve_workers(args.num_workers, resolve_device(args.device)),
        rounds=args.rounds,
        decoders=[d.strip() for d in args.decoders.split(",") if d.strip()],
    )
    _print_json(result)


def cmd_highlight(args: argparse.Namespace) -> None:
    from .annotations import read_segment_table
    from .highlight.run import highlight_videos

    labels = read_segment_table(args.labels) if args.labels else None
    result = highlight_videos(args.videos, args.model, args.out, top_seconds=args.top_seconds, top_k=args.top_k,
                              segment_seconds=args.segment_seconds, device=args.device, domain=args.domain,
                              labels=labels, visual_weights=args.visual_weights, audio_weights=args.audio_weights)
    for r in result["videos"]:
        best = ", ".join(f"{a:.1f}-{b:.1f} s ({s:.2f})" for a, b, s in r["windows"][:3])
        print(f"{r['vid']}: reel {r['reel']['duration_s']:.1f} s from {len(r['windows'])} window(s); best: {best}")
    for f in result["failures"]:
        print(f"FAILED {f['video']}: {f['error']}", file=sys.stderr)
    if result["index"]:
        print(f"page: {result['index']}")
    if result["failures"]:
        raise SystemExit(1)


def cmd_export(args: argparse.Namespace) -> None:
    from .highlight.export import export_dataset, model_params
    from .params import read_params, section

    params = read_params(args.params)
    dataset = args.dataset or params["dataset"]
    params = {**params, "dataset": dataset}
    index = export_dataset(REPO_ROOT, dataset, unit=(params.get("export") or {}).get("segment_unit", "auto"),
                           params=model_params(params, dataset, section), out_dir=args.out)
    _print_json(index)


def cmd_highlight_proof(args: argparse.Namespace) -> None:
    from .highlight.proof import demo_proof

    result = demo_proof(args.highlights, args.demo)
    if not args.per_video:
        result.pop("per_video")
    _print_json(result)


def cmd_highlight_figures(args: argparse.Namespace) -> None:
    from .highlight.figures import page_screenshot, reel_strip

    out = Path(args.out)
    shot = page_screenshot(Path(args.highlights) / "index.html", out / "highlight_page.png")
    run = json.loads((Path(args.highlights) / "run.json").read_text(encoding="utf-8"))
    vid = args.vid or run["videos"][0]
    strip = reel_strip(Path(args.highlights) / f"{vid}_reel.mp4", out / "highlight_reel_strip.png")
    print(f"{shot}\n{strip}  ({vid})")


def cmd_bench_highlight(args: argparse.Namespace) -> None:
    from .highlight.proof import bench_memory

    _print_json(bench_memory(args.model, args.work_dir, durations_s=args.seconds or [60.0, 3600.0], device=args.device,
                             visual_weights=args.visual_weights, keep=args.keep))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpcl",
        description="Audio-visual video highlight detection (HPCL): evaluation protocols and backbone tools. "
        "The pipeline itself runs with `dvc repro`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("evaluate", help="score predictions with the benchmark protocols",
                       description="Evaluate PRED.jsonl ({'vid', 'scores'} per line, one score per annotated "
                       "segment in annotation order) against benchmark annotations.")
    p.add_argument("--dataset", required=True, choices=["youtube_highlights", "tvsum", "demo"])
    p.add_argument("--annotations", required=True, action="append",
                   help="annotation file or folder (authors' layout, UMT json, lighthouse jsonl, TVSum tsv, "
                   "or a prepared segments.csv); repeat to concatenate several")
    p.add_argument("--predictions", required=True, help="predictions jsonl")
    p.add_argument("--protocol", default="umt", choices=["umt", "standard"],
                   help="umt: as the published code computes it (default); standard: textbook AP")
    p.add_argument("--splits-file", help="UMT's umt_splits.json: categories for annotations that have none "
                   "(UMT's tvsum_anno.json)")
    p.add_argument("--out", help="also write the result JSON here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("table", help="a metrics/<dataset>.json file as a per-domain table",
                       description="Prints the evaluate stage's metrics as the paper's tables read: one row "
                       "per domain and the mean; umt and standard mAP (mean +- std over the seeds, epochs chosen "
                       "without the test split), umt of the seeds' ensemble, and umt at the test-selected "
                       "epoch (optimistic, as published code reports).")
    p.add_argument("metrics", help="metrics JSON written by the evaluate stage, e.g. metrics/demo.json")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("make-bench", help="a benchmark-like dataset: real labels, planted synthetic features",
                       description="Writes the real YouTube Highlights (UMT layout) or TVSum (lighthouse layout) "
                       "label sequences with synthetic 2048-d visual and audio features (cues planted in part of "
                       "the highlights, audio delayed up to a segment, single-modality distractors) under OUT "
                       "(data/raw/<dataset>), for `dvc repro` with features.source umt | lighthouse. "
                       "--calibrate prints the test mAP of random scores (chance), a per-segment linear probe, a "
                       "context probe (visual only and both modalities) and the cue oracle. --config "
                       "'{\"train_draws\": K}' plants each training video K times (a data-size study).")
    p.add_argument("dataset", choices=["youtube_highlights", "tvsum"])
    p.add_argument("--labels", required=True, nargs="+",
                   help="youtube_highlights: the authors' release folder; tvsum: lighthouse jsonl file(s)")
    p.add_argument("--splits", required=True, help="UMT's umt_splits.json")
    p.add_argument("--domains", nargs="+", default=None, help="youtube_highlights: the domains to write")
    p.add_argument("--out", help="output folder, e.g. data/raw/youtube_highlights (omit to only calibrate)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", help="JSON overriding the difficulty knobs of pipeline.synthbench.SynthConfig")
    p.add_argument("--rotation", type=int, default=0,
                   help="hold out other videos of the same planted set: per domain, train + val turned by "
                   "ROTATION x len(val) (0 = UMT's split; TVSum: 0-4, each category's videos in turn)")
    p.add_argument("--calibrate", action="store_true")
    p.set_defaults(func=cmd_make_bench)

    p = sub.add_parser("ablate", help="train and evaluate named settings on an aligned dataset; print the table",
                       description="For each named setting (pipeline.ablation.SETTINGS: linear, linear_ctx, v_only, "
                       "a_only, av, cr_av, co_av, co_av_ce, ...), trains and evaluates exactly as the train and "
                       "evaluate stages do with params.yaml's model/train/loss sections (the dataset's preset "
                       "merged) plus the setting's overrides, on data/aligned/<dataset>/aligned.h5; writes "
                       "OUT/<setting>/metrics.json and prints a markdown table.")
    p.add_argument("settings", nargs="*", help="setting names (with --table: the row order)")
    p.add_argument("--dataset", default="youtube_highlights", choices=["demo", "youtube_highlights", "tvsum"])
    p.add_argument("--out", help="results folder, e.g. ablations/youtube_highlights")
    p.add_argument("--set", action="append", help="extra override for every setting, e.g. train.lr=0.001")
    p.add_argument("--suffix", help="appended to each setting's name in OUT (e.g. _lr1e-3)")
    p.add_argument("--keep-cv-curves", action="store_true",
                   help="write OUT/<setting>/cv_curves.json (the validation curves selection read, per seed; "
                        "benchmarks/selection_cross_seed.py reads it)")
    p.add_argument("--keep-predictions", action="store_true",
                   help="keep OUT/<setting>/predictions.jsonl (test scores of the seeds' ensemble, per video; "
                        "what `hpcl evaluate` and the evaluate stage read)")
    p.add_argument("--params", help="params.yaml (default: the repository's)")
    p.add_argument("--root", default=".", help="repository root holding data/ (default: .)")
    p.add_argument("--table", action="store_true", help="only print the table of the results in OUT")
    p.add_argument("--compare", nargs=2, action="append", metavar=("A", "B"),
                   help="only compare run folders OUT/<setting> seed by seed (repeat for several draws or "
                   "rotations): per pair and pooled, A - B umt mAP and textbook AP")
    p.set_defaults(func=cmd_ablate)

    def backbone_args(q: argparse.ArgumentParser, audio: bool) -> None:
        q.add_argument("video", help="a video file")
        q.add_argument("--visual", default="i3d", help="visual backbone (default i3d)")
        q.add_argument("--visual-weights", help=f"converted weights (default {DEFAULT_VISUAL_WEIGHTS})")
        q.add_argument("--crop-size", type=int, help="input crop size (default: the backbone's)")
        if audio:
            q.add_argument("--audio", default="pann_cnn14", help="audio backbone (pann_cnn14 | logmel)")
            q.add_argument("--audio-weights", help=f"PANN checkpoint (default {DEFAULT_AUDIO_WEIGHTS})")
        q.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")

    p = sub.add_parser("check-backbones", help="top-5 Kinetics-400 / AudioSet classes of a video, as JSON",
                       description="Shows that real weights are loaded: top classes with probabilities.")
    backbone_args(p, audio=True)
    p.add_argument("--topk", type=int, default=5)
    p.set_defaults(func=cmd_check_backbones)

    p = sub.add_parser("bench-extract", help="visual extraction speed: decode-only, model-only, end-to-end segments/s",
                       description="Runs N segments of VIDEO (cycled if the video is short) decode-only, model-only "
                       "(the same pre-decoded batches) and end to end, for CPU (decord) and GPU (NVDEC) decoding "
                       "side by side; prints JSON (a decoder that cannot run here says why).")
    backbone_args(p, audio=False)
    p.add_argument("--segments", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--frames-per-segment", type=int, default=16)
    p.add_argument("--autocast", default="bf16", choices=["none", "bf16", "fp16"], help="GPU only")
    p.add_argument("--num-workers", type=int, default=0,
                   help="decoder threads (default 0 = auto: 1 on CPU, all cores but one on GPU)")
    p.add_argument("--rounds", type=int, default=2,
                   help="repeat both measurements, alternating their order, to even out load drift (default 2)")
    p.add_argument("--decoders", default="cpu,nvdec", help="comma-separated: cpu, nvdec (default both)")
    p.set_defaults(func=cmd_bench_extract)

    p = sub.add_parser("highlight", help="ranked moments, a timeline, a highlight reel and a page for any video",
                       description="Scores VIDEO... with a model file (`hpcl export` / the export stage writes them) "
                       "using the backbones it was trained with, and writes into --out: <vid>.json (segment scores, "
                       "ranked windows), <vid>_timeline.png, <vid>_reel.mp4 and index.html (opens from disk). A "
                       "video that fails is reported and the others are done (exit status 1 if any failed).")
    p.add_argument("videos", nargs="+", help="video files (any container PyAV or decord reads)")
    p.add_argument("--model", required=True, help="model file, e.g. data/export/demo/stadium.pt")
    p.add_argument("--out", default="highlights/run", help="output folder (default highlights/run)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--top-seconds", type=float, help="reel length budget (default: min(30 s, 15%% of the video))")
    g.add_argument("--top-k", type=int, help="the K best segments instead (adjacent ones merged)")
    p.add_argument("--segment-seconds", type=float,
                   help="override the window length of a time-based segmentation (TVSum, demo models)")
    p.add_argument("--domain", help="domain to score as (models trained on several domains)")
    p.add_argument("--labels", help="a segments.csv: ground truth drawn on the timelines of the videos it contains")
    p.add_argument("--visual-weights", help=f"visual backbone weights (default {DEFAULT_VISUAL_WEIGHTS})")
    p.add_argument("--audio-weights", help=f"audio backbone weights (default {DEFAULT_AUDIO_WEIGHTS})")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.set_defaults(func=cmd_highlight)

    p = sub.add_parser("export", help="write the model files of a trained run (as the export stage does)",
                       description="data/models/<dataset>/ + feature stores + segment table + metrics -> "
                       "data/export/<dataset>/<group>.pt and models.json.")
    p.add_argument("--dataset", help="default: params.yaml's dataset")
    p.add_argument("--params", help="params file (default: the repository's params.yaml)")
    p.add_argument("--out", help="output folder (default data/export/<dataset>)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("highlight-proof", help="reel precision on the demo's planted highlights",
                       description="Reads a highlight run on demo videos (the highlight stage writes highlights/demo) "
                       "and the demo's ground truth; prints precision of the reels' segments, highlight recall and "
                       "the share of single-modality distractor segments in the reels.")
    p.add_argument("--highlights", default="highlights/demo")
    p.add_argument("--demo", default="data/raw/demo", help="the demo dataset folder (demo.json, annotations/)")
    p.add_argument("--per-video", action="store_true", help="also print the counts per video")
    p.set_defaults(func=cmd_highlight_proof)

    p = sub.add_parser("highlight-figures", help="README figures: a screenshot of index.html and a reel's frame strip",
                       description="Writes OUT/highlight_page.png (headless Chromium) and OUT/highlight_reel_strip.png "
                       "from a highlight run.")
    p.add_argument("--highlights", default="highlights/demo")
    p.add_argument("--vid", help="whose reel (default: the run's first video)")
    p.add_argument("--out", default="docs")
    p.set_defaults(func=cmd_highlight_figures)

    p = sub.add_parser("bench-highlight", help="peak memory of `hpcl highlight` on generated long videos",
                       description="Generates low-resolution videos of the given lengths (64x64, 8 fps, with audio), "
                       "runs a whole highlight run on each in a fresh process and prints its peak RSS.")
    p.add_argument("--model", required=True)
    p.add_argument("--seconds", type=float, action="append", help="video length; repeat (default 60 and 3600)")
    p.add_argument("--work-dir", default="/tmp/hpcl-bench-highlight")
    p.add_argument("--visual-weights")
    p.add_argument("--device", default="cpu")
    p.add_argument("--keep", action="store_true", help="keep the generated videos")
    p.set_defaults(func=cmd_bench_highlight)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"hpcl {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
