"""params.yaml: read as DVC reads it (YAML 1.2) and validated before any work (issue 9, items 2 and 4).

Each bad-params case asserts that the error names the key path and the value.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from pipeline.model import ModelConfig
from pipeline.params import ParamsError, read_params, section
from pipeline.train import TrainConfig

REPO_ROOT = Path(__file__).resolve().parent.parent


def repo_params() -> dict:
    return YAML(typ="safe").load((REPO_ROOT / "params.yaml").read_text())


def write(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with open(path, "w") as fh:
        yaml.dump(params, fh)
    return path


def error_of(tmp_path: Path, params: dict) -> str:
    with pytest.raises(ParamsError) as info:
        read_params(write(tmp_path, params))
    return str(info.value)


def test_the_repository_params_are_valid():
    params = read_params()
    assert params["dataset"] in ("demo", "youtube_highlights", "tvsum")


def test_floats_in_exponent_form_are_floats_as_for_dvc(tmp_path):
    text = (REPO_ROOT / "params.yaml").read_text()
    text = text.replace("lr: 0.001", "lr: 1e-4").replace("weight_decay: 0.0001", "weight_decay: 1e-05")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    train = section("train", read_params(path))
    assert train["lr"] == 1e-4 and isinstance(train["lr"], float)  # PyYAML (YAML 1.1) read the string "1e-4"
    assert train["weight_decay"] == 1e-5 and isinstance(train["weight_decay"], float)
    TrainConfig.from_sections(train, section("loss", read_params(path)))  # no TypeError downstream


def _set(params: dict, dotted: str, value) -> dict:
    params = copy.deepcopy(params)
    *parents, last = dotted.split(".")
    node = params
    for key in parents:
        node = node.setdefault(key, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return params


_DELETE = object()

# (key path, value, what the message must contain besides the key path)
BAD = [
    ("extract_visual.batch_size", 0, "extract_visual.batch_size = 0: must be >= 1"),
    ("extract_audio.batch_size", -3, "extract_audio.batch_size = -3: must be >= 1"),
    ("extract_visual.crop_size", -8, "extract_visual.crop_size = -8: must be >= 8"),
    ("train.per_domain", "false", "train.per_domain = 'false': must be a boolean"),
    ("extract_visual.frames_per_segmnt", 8, "extract_visual.frames_per_segmnt = 8: unknown key"),
    ("prepare.anotations", ["x.json"], "prepare.anotations = ['x.json']: unknown key"),
    ("extract_audio.max_failures", _DELETE, "extract_audio.max_failures: missing"),
    ("train.lr", "1e-4", "train.lr = '1e-4': must be a number"),
    ("dataset", "youtube", "dataset = 'youtube': must be one of"),
    ("extract_visual.device", "gpu", "extract_visual.device = 'gpu': must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ("extract_audio.autocast", "fp32", "extract_audio.autocast = 'fp32': must be one of"),
    ("model.variant", "co_avv", "co_avv"),
    ("model.d_model", 0, "model.d_model = 0: must be >= 1"),
    ("model.dropout", 1.5, "model.dropout = 1.5: must be < 1"),
    ("model.num_layer", 2, "model.num_layer = 2: unknown key"),
    ("train.epochs", 2.5, "train.epochs = 2.5: must be an integer"),
    ("train.val_fraction", 1.0, "train.val_fraction = 1.0: must be < 1"),
    ("loss.tau", 0, "loss.tau = 0: must be > 0"),
    ("loss.list_tau", 0, "loss.list_tau = 0: must be > 0"),
    ("presets.tvsum.loss.lambda_list", -1, "presets.tvsum.loss.lambda_list = -1: must be >= 0"),
    ("presets.tvsum.train.cv_smooth", -1, "presets.tvsum.train.cv_smooth = -1: must be >= 0"),
    ("train.cv_smooth", 1.5, "train.cv_smooth = 1.5: must be an integer"),
    ("loss.lambda_hpcl", _DELETE, "loss.lambda_hpcl): missing"),
    ("prepare.annotations", [], "prepare.annotations = []: must not be empty"),
    ("prepare.format", "json", "prepare.format = 'json': must be one of"),
    ("features.source", "published", "features.source = 'published': must be one of"),
    ("weights.visual.source", "http", "weights.visual.source = 'http': must be one of"),
    ("align.tvsum_label", "max", "align.tvsum_label = 'max': must be one of"),
    ("evaluate.timelines", "4", "evaluate.timelines = '4': must be an integer"),
    ("demo.preset", "huge", "demo.preset = 'huge': must be one of"),
    ("trian", {"lr": 0.1}, "trian = {'lr': 0.1}: unknown section"),
    ("presets.tvsum.train.per_domain", "no", "presets.tvsum.train.per_domain = 'no': must be a boolean"),
    ("presets.tvsum.train.selection_scope", "category",
     "presets.tvsum.train.selection_scope = 'category': must be one of"),
    ("train.selection", "best", "train.selection = 'best': must be one of"),
    ("presets.tvsum.extract_visual.batch_size", 0, "presets.tvsum.extract_visual.batch_size = 0: must be >= 1"),
    ("presets.demo.backbones.visual", "resnet", "presets.demo.backbones.visual = 'resnet': must be one of"),
    ("presets.demo.extract_visual.crop", 112, "presets.demo.extract_visual.crop = 112: unknown key"),
    ("presets.imagenet", {"backbones": {"visual": "i3d", "audio": "logmel"}}, "presets.imagenet = "),
    ("presets.tvsum.evaluate", {"timelines": 2}, "presets.tvsum.evaluate = {'timelines': 2}: not a section a preset may override"),
    ("loss.epochs", 3, "set in both train and loss; keep one"),
]


@pytest.mark.parametrize("dotted, value, expected", BAD, ids=[b[0] + ("-del" if b[1] is _DELETE else "") for b in BAD])
def test_bad_params_name_the_key_path_and_the_value(tmp_path, dotted, value, expected):
    message = error_of(tmp_path, _set(repo_params(), dotted, value))
    assert expected in message, message
    assert str(tmp_path / "params.yaml") in message


def test_every_problem_is_listed_at_once(tmp_path):
    params = _set(_set(repo_params(), "extract_visual.batch_size", 0), "train.per_domain", "false")
    message = error_of(tmp_path, params)
    assert "2 problem(s)" in message and "extract_visual.batch_size" in message and "train.per_domain" in message


def test_a_base_error_is_not_blamed_on_a_preset(tmp_path):
    message = error_of(tmp_path, _set(repo_params(), "train.epochs", 0))
    assert "train.epochs = 0: must be >= 1" in message and "presets." not in message


def test_the_selected_dataset_needs_its_preset(tmp_path):
    params = repo_params()
    del params["presets"][params["dataset"]]
    assert f"presets.{params['dataset']}: missing" in error_of(tmp_path, params)


@pytest.mark.parametrize("cls, sections", [(ModelConfig, ("model",)), (TrainConfig, ("train", "loss"))])
def test_every_dataclass_field_is_required_and_typed(tmp_path, cls, sections):
    """model / train / loss keys come from the dataclasses: removing any field's key is an error."""
    params = repo_params()
    for f in dataclasses.fields(cls):
        holder = next(s for s in sections if f.name in params[s])
        message = error_of(tmp_path, _set(params, f"{holder}.{f.name}", _DELETE))
        assert f"{f.name}" in message and "missing" in message, message
        message = error_of(tmp_path, _set(params, f"{holder}.{f.name}", {"not": "a value"}))
        assert f"{holder}.{f.name} = {{'not': 'a value'}}" in message, message


def test_yaml_problems_are_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((REPO_ROOT / "params.yaml").read_text() + "\ndataset: tvsum\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML: .*duplicate key \"dataset\""):
        read_params(path)
    path.write_text("dataset: [demo\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        read_params(path)
    with pytest.raises(ParamsError, match="missing.yaml: cannot read it"):
        read_params(tmp_path / "missing.yaml")


READER = """
import json, sys
sys.path.insert(0, {root!r})
from pipeline.params import read_params, section
train = section("train", read_params("params.yaml"))
json.dump({{"weight_decay": train["weight_decay"], "type": type(train["weight_decay"]).__name__}}, open("out.json", "w"))
"""


@pytest.mark.slow
def test_dvc_exp_run_set_param_round_trip(tmp_path):
    """`dvc exp run -S train.weight_decay=1e-5` writes 1e-05; the stage reads the float DVC records."""
    dvc = Path(sys.executable).with_name("dvc")
    if not dvc.exists():
        pytest.skip("dvc not installed in this environment")
    repo = tmp_path / "proj"
    repo.mkdir()
    shutil.copyfile(REPO_ROOT / "params.yaml", repo / "params.yaml")
    (repo / "read.py").write_text(READER.format(root=str(REPO_ROOT)))
    (repo / "dvc.yaml").write_text(
        "stages:\n  read:\n    cmd: " + sys.executable + " read.py\n    deps: [read.py]\n"
        "    params: [train.weight_decay]\n    outs: [out.json]\n"
    )

    def run(*args: str) -> str:
        proc = subprocess.run(args, cwd=repo, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    run("git", "init", "-q")
    run("git", "config", "user.email", "t@example.org")
    run("git", "config", "user.name", "t")
    run(str(dvc), "init", "-q")
    run(str(dvc), "config", "core.analytics", "false")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "init")
    run(str(dvc), "exp", "run", "-S", "train.weight_decay=1e-5")
    assert "weight_decay: 1e-05" in (repo / "params.yaml").read_text()  # what DVC wrote
    out = json.loads((repo / "out.json").read_text())
    assert out == {"weight_decay": 1e-05, "type": "float"}
    shown = json.loads(run(str(dvc), "params", "diff", "--json"))  # DVC's own reading agrees
    assert shown["params.yaml"]["train.weight_decay"]["new"] == 1e-05


def test_train_seeds_are_a_non_empty_list_of_non_negative_ints(tmp_path):
    for bad, words in ((["a"], "train.seeds.0 = 'a': must be an integer"), ([], "train.seeds = []: must not be empty"),
                       ([-1], "train.seeds.0 = -1: must be >= 0"), (0, "train.seeds = 0: must be a list")):
        assert words in error_of(tmp_path, _set(repo_params(), "train.seeds", bad))


def test_a_single_value_is_parsed_as_dvc_exp_run_set_does():
    from pipeline.cli import _parse_value

    assert _parse_value("1e-4") == 1e-4 and isinstance(_parse_value("1e-4"), float)  # PyYAML: the string "1e-4"
    assert _parse_value("[0, 1, 2]") == [0, 1, 2] and _parse_value("true") is True and _parse_value("adamw") == "adamw"
    with pytest.raises(ParamsError, match="not a YAML value"):
        _parse_value("[0, 1")
