"""Videos left out along the pipeline, and why: never a silent drop.

Each stage that leaves a video of the train or test split out says so (``print_skips``) and the
record travels with the data:

- ``prepare``: a split-list video absent from the annotations (``missing_split_videos: skip``)
  is in ``report.json`` ``skipped`` with its split;
- ``extract_*``: a failed video is in ``<modality>/features_failures.csv`` (stage, error, message);
- ``align``: joins both into ``data/aligned/<dataset>/skipped.json`` (:func:`collect_skips`):
  one :class:`Skip` per video of the train or test split that is not in ``aligned.h5``;
- ``train`` prints the training-split ones; ``evaluate`` adds the test videos it could not score
  (no model for their domain) and writes them all, per split, into the metrics file under
  ``skipped_videos`` (:func:`skipped_by_split`); ``hpcl table`` prints the counts under the table
  (:func:`table_note`).

Videos in no split list (``unsplit``: the authors list 550 YouTube videos, UMT's split 419) are
outside the benchmark by design; ``prepare`` counts and prints them but they are not "skipped".
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence, TextIO

import pandas as pd

SPLITS = ("train", "test")
SKIPPED_FILE = "skipped.json"
LIST_LIMIT = 20  # ids printed per reason before "..."


@dataclass(frozen=True)
class Skip:
    """A video of the train or test split left out at ``stage``, and why."""

    vid: str
    split: str  # train | test
    domain: str
    stage: str  # prepare | extract_visual | extract_audio | align | evaluate
    reason: str


def failure_reasons(failures_csv: str | os.PathLike, modality: str) -> dict[str, str]:
    """``features_failures.csv`` -> {vid: "visual extraction failed at decode (OSError): ..."}."""
    path = Path(failures_csv)
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text = f"{modality} extraction failed at {row['stage']} ({row['error_type']}): {row['message']}"
            out[row["vid"]] = f"{out[row['vid']]}; {text}" if row["vid"] in out else text
    return out


def collect_skips(
    table: pd.DataFrame,
    align_summary: dict,
    failures: dict[str, str | os.PathLike],
    prepare_report: dict | None = None,
) -> list[Skip]:
    """Every train/test video left out before training: prepare's exclusions and align's skips.

    failures: {modality: features_failures.csv}; their messages explain the missing features.
    """
    reasons = {m: failure_reasons(p, m) for m, p in failures.items()}
    per_video = table.drop_duplicates("vid").set_index(table.drop_duplicates("vid")["vid"].astype(str))
    skips: list[Skip] = []
    for s in (prepare_report or {}).get("skipped", []):
        if s.get("split") in SPLITS:
            skips.append(Skip(str(s["vid"]), s["split"], str(s.get("domain") or ""), "prepare",
                              str(s.get("detail") or s.get("reason"))))
    skipped = align_summary.get("skipped", {})
    missing = dict.fromkeys([*skipped.get("missing_visual", []), *skipped.get("missing_audio", [])])
    for vid in missing:
        row = per_video.loc[vid]
        why = []
        for modality in ("visual", "audio"):
            if vid in skipped.get(f"missing_{modality}", []):
                why.append(reasons.get(modality, {}).get(vid) or f"no {modality} features")
        stage = "extract_" + ("visual" if vid in skipped.get("missing_visual", []) else "audio")
        skips.append(Skip(vid, str(row["split"]), str(row["domain"]), stage, "; ".join(why)))
    return skips


def write_skips(path: str | os.PathLike, skips: Sequence[Skip]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted((asdict(s) for s in skips), key=lambda r: (r["split"], r["vid"]))
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"videos": rows}, fh, indent=2, sort_keys=True)
        fh.write("\n")


def read_skips(path: str | os.PathLike) -> list[Skip]:
    """The skips written by :func:`write_skips` ([] when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as fh:
        return [Skip(**row) for row in json.load(fh)["videos"]]


def evaluation_skips(
    table: pd.DataFrame, skips: Sequence[Skip], no_features: Iterable[str], no_model: Iterable[str]
) -> list[Skip]:
    """``skips`` + the test videos evaluation could not score (reason known or stated here)."""
    out = list(skips)
    known = {(s.vid, s.split) for s in skips}
    per_video = table.drop_duplicates("vid").set_index(table.drop_duplicates("vid")["vid"].astype(str))
    for vid in no_features:
        if (vid, "test") not in known:
            out.append(Skip(vid, "test", str(per_video.loc[vid, "domain"]), "align", "no aligned features"))
    for vid in no_model:
        domain = str(per_video.loc[vid, "domain"])
        out.append(Skip(vid, "test", domain, "evaluate", f"no trained model for domain {domain!r} (no training videos)"))
    return out


def skipped_by_split(skips: Sequence[Skip]) -> dict[str, list[dict]]:
    """{"train": [{"vid", "domain", "stage", "reason"}], "test": [...]} for the metrics file."""
    out: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for s in sorted(skips, key=lambda s: (s.split, s.vid)):
        out.setdefault(s.split, []).append({"vid": s.vid, "domain": s.domain, "stage": s.stage, "reason": s.reason})
    return out


def print_skips(stage: str, skips: Sequence[Skip], what: str = "left out", file: TextIO | None = None) -> None:
    """One line per skipped video: ``<stage>: <n> video(s) left out`` then ``  vid (split, domain): reason``."""
    file = file or sys.stdout
    if not skips:
        return
    print(f"{stage}: {len(skips)} video(s) {what}:", file=file)
    for s in sorted(skips, key=lambda s: (s.split, s.vid)):
        print(f"  {s.vid} ({s.split}, {s.domain}) [{s.stage}]: {s.reason}", file=file)


def print_reasons(stage: str, items: Sequence[dict], file: TextIO | None = None) -> None:
    """Group ``[{"vid", "reason", ...}]`` by reason: ``<stage>: skipped <n> video(s): <reason>: ids``."""
    file = file or sys.stdout
    groups: dict[str, list[str]] = defaultdict(list)
    for item in items:
        groups[str(item.get("reason"))].append(str(item.get("vid")))
    for reason, vids in sorted(groups.items()):
        shown = ", ".join(vids[:LIST_LIMIT]) + (f", ... ({len(vids) - LIST_LIMIT} more)" if len(vids) > LIST_LIMIT else "")
        print(f"{stage}: skipped {len(vids)} video(s), {reason}: {shown}", file=file)


def table_note(metrics: dict) -> str:
    """The line under ``hpcl table``: how many videos were not evaluated / not trained on."""
    per_split = metrics.get("skipped_videos")
    if per_split is None:
        return "(this metrics file does not list skipped videos)"
    test, train = len(per_split.get("test", [])), len(per_split.get("train", []))
    if not test and not train:
        return "All test videos evaluated; no training video left out."
    parts = []
    if test:
        parts.append(f"{test} test video(s) not evaluated")
    if train:
        parts.append(f"{train} training video(s) left out of training")
    return "; ".join(parts) + " (ids and reasons: skipped_videos in the metrics file)."
