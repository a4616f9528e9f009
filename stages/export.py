"""DVC stage `export`: the trained run -> one self-contained model file per group
(data/export/<dataset>/<group>.pt + models.json), ready for `hpcl highlight` and `dvc push`."""

from _common import ROOT

from pipeline.highlight.export import export_dataset, model_params
from pipeline.params import read_params, section

params = read_params()
dataset = params["dataset"]
index = export_dataset(ROOT, dataset, unit=params["export"]["segment_unit"],
                       params=model_params(params, dataset, section))
for group, entry in index["models"].items():
    print(f"export: {group} -> data/export/{dataset}/{entry['file']} (sha256 {entry['sha256'][:12]}...)")
