"""DVC stage `demo`: generate the embedded synthetic audio-visual dataset in data/raw/demo."""

from _common import ROOT

from pipeline.demo import demo_preset, generate_demo
from pipeline.params import read_params

cfg = read_params()["demo"]
out = ROOT / "data" / "raw" / "demo"
kwargs = {**demo_preset(cfg["preset"]), "seed": cfg["seed"]}
summary = generate_demo(out, overwrite=True, progress=True, **kwargs)
print(f"demo: {summary}")
