"""Audio backbones: PANN Cnn14 (AudioSet) and weight-free log-mel statistics.

Both map a batch of mono 32 kHz waveforms to one feature vector per segment:

    audio = build_pann_cnn14(weights_path)     # or build_logmel()
    feats = audio(waveforms)                   # [B, N] float32 in [-1, 1] -> [B, D]
    probs = audio.classify(waveforms)          # [B, 527] AudioSet probabilities (Cnn14 only)

Windows shorter than ``min_samples`` are zero-padded at the end, so every segment gets a feature.

``panns_inference`` is imported lazily and only after ``~/panns_data/class_labels_indices.csv``
has been written from the bundled label list: its ``config.py`` otherwise runs ``wget`` on import.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..weights import PANN_CNN14_URL, load_state_checked, load_torch_checkpoint, sha256_file

LABELS_RESOURCE = Path(__file__).resolve().parent.parent / "resources" / "audioset_labels.json"
NUM_AUDIOSET_CLASSES = 527

# Where the PANN checkpoint goes; the message names the params keys that point at it.
PANN_CHECKPOINT_NAME = "Cnn14_mAP=0.431.pth"
PANN_WEIGHTS_HINT = (
    f"the PANN Cnn14 checkpoint is required: download {PANN_CHECKPOINT_NAME} (about 327 MB) from "
    f"{PANN_CNN14_URL} (Zenodo record 3987831) and give its path in params.yaml as "
    "`weights.audio.local_path`; without it use the weight-free audio backbone `logmel` "
    "(`presets.<dataset>.backbones.audio: logmel`)"
)

# Cnn14 at 32 kHz as released (panns_inference.models.Cnn14 arguments).
CNN14_CONFIG = dict(
    sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000,
    classes_num=NUM_AUDIOSET_CLASSES,
)
CNN14_TIME_POOLS = 5  # conv blocks 1-5 each halve time (2x2 avg pool); block 6 pools 1x1

# ----------------------------------------------------------------------------- labels


def audioset_classes() -> list[tuple[str, str]]:
    """The 527 AudioSet classes in model output order as ``(mid, display_name)`` pairs."""
    with open(LABELS_RESOURCE, encoding="utf-8") as fh:
        pairs = json.load(fh)
    if len(pairs) != NUM_AUDIOSET_CLASSES or not all(len(p) == 2 for p in pairs):
        raise ValueError(f"{LABELS_RESOURCE}: expected {NUM_AUDIOSET_CLASSES} [mid, name] pairs")
    return [(str(mid), str(name)) for mid, name in pairs]


def audioset_labels() -> list[str]:
    """The 527 AudioSet display names in model output order."""
    return [name for _, name in audioset_classes()]


def _labels_csv_text() -> str:
    """``class_labels_indices.csv`` as AudioSet publishes it: ``index,mid,display_name``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "mid", "display_name"])
    for index, (mid, name) in enumerate(audioset_classes()):
        writer.writerow([index, mid, name])
    return buf.getvalue()


def _csv_is_complete(path: Path) -> bool:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError):
        return False
    return len(rows) == NUM_AUDIOSET_CLASSES + 1 and all(len(r) == 3 for r in rows)


def ensure_panns_labels_csv(home: str | os.PathLike | None = None) -> Path:
    """Write ``<home>/panns_data/class_labels_indices.csv`` unless a complete one is there.

    ``panns_inference/config.py`` downloads this file with ``wget`` when it is absent (and reads
    back an empty file offline). Written atomically (temp file + rename), so concurrent
    processes never see half a file. ``home`` defaults to ``Path.home()``, as in that config.
    """
    path = Path(home if home is not None else Path.home()) / "panns_data" / "class_labels_indices.csv"
    if path.is_file() and _csv_is_complete(path):
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".labels-", suffix=".csv", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(_labels_csv_text())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise OSError(
            f"cannot write {path}, which panns_inference reads at import (it would otherwise "
            f"try to download it): {exc}"
        ) from exc
    return path


def _import_cnn14() -> type[nn.Module]:
    """``panns_inference.models.Cnn14``, imported without letting the import touch the network."""
    ensure_panns_labels_csv()
    from panns_inference.models import Cnn14

    return Cnn14


# ----------------------------------------------------------------------------- checkpoints


def load_pann_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The Cnn14 state dict in ``path``: the official ``{"model": state_dict, ...}`` or a bare one.

    Loaded with ``torch.load(weights_only=True)`` (:func:`pipeline.weights.load_torch_checkpoint`):
    numpy arrays beside the weights are admitted, anything that would need code to unpickle is
    refused with an error naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PANN checkpoint {path} does not exist: {PANN_WEIGHTS_HINT}")
    return load_torch_checkpoint(path, key="model")


def load_pann_weights(cnn14: nn.Module, path: str | os.PathLike) -> str:
    """Load the checkpoint at ``path`` into ``cnn14``; return the file's sha256."""
    load_state_checked(cnn14, load_pann_state_dict(path), path, "PANN Cnn14")
    return sha256_file(path)


# ----------------------------------------------------------------------------- PANN Cnn14


def _pad_to(waveforms: torch.Tensor, min_samples: int) -> torch.Tensor:
    """Zero-pad ``waveforms [B, N]`` at the end to at least ``min_samples``."""
    if waveforms.ndim != 2:
        raise ValueError(f"waveforms must be [B, N], got shape {tuple(waveforms.shape)}")
    short = min_samples - waveforms.shape[1]
    return F.pad(waveforms, (0, short)) if short > 0 else waveforms


class PannCnn14(nn.Module):
    """PANN Cnn14 (Kong et al. 2020) around ``panns_inference.models.Cnn14``.

    forward(waveforms [B, N] 32 kHz mono) -> embedding [B, 2048]  (ReLU(fc1), pre-classifier)
    classify(waveforms [B, N]) -> clipwise_output [B, 527]  (sigmoid AudioSet probabilities)

    ``min_samples``: the log-mel has ``N // hop + 1`` frames and five 2x average pools over time
    need at least 32 of them, so N >= 31 * hop = 9920 samples (0.31 s). Shorter windows are
    zero-padded at the end.
    """

    name = "pann_cnn14"
    feature_dim = 2048
    sample_rate = CNN14_CONFIG["sample_rate"]
    min_samples = (2**CNN14_TIME_POOLS - 1) * CNN14_CONFIG["hop_size"]  # 9920

    def __init__(self, cnn14: nn.Module, weights_sha256: str | None = None):
        super().__init__()
        self.cnn14 = cnn14
        self.labels = audioset_labels()
        self.weights_sha256 = weights_sha256  # of the checkpoint file used; None = random init

    def _outputs(self, waveforms: torch.Tensor) -> dict[str, torch.Tensor]:
        x = _pad_to(waveforms.float(), self.min_samples)  # [B, N'] N' >= min_samples
        return self.cnn14(x)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self._outputs(waveforms)["embedding"]  # [B, 2048]

    def classify(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self._outputs(waveforms)["clipwise_output"]  # [B, 527]


def build_pann_cnn14(
    weights_path: str | os.PathLike | None = None, allow_random_init: bool = False
) -> PannCnn14:
    """PANN Cnn14 at 32 kHz in eval mode, with the checkpoint at ``weights_path``.

    ``weights_path=None`` raises ``ValueError`` (features of a random network are meaningless)
    unless ``allow_random_init=True`` (tests, benchmarks of speed).
    """
    if weights_path is None and not allow_random_init:
        raise ValueError(PANN_WEIGHTS_HINT)
    cnn14 = _import_cnn14()(**CNN14_CONFIG)
    sha256 = load_pann_weights(cnn14, weights_path) if weights_path is not None else None
    return PannCnn14(cnn14, weights_sha256=sha256).eval()


# ----------------------------------------------------------------------------- log-mel


class LogMelStats(nn.Module):
    """Weight-free segment feature: mean and std over time of the log-mel spectrogram.

    forward(waveforms [B, N]) -> [B, 2 * n_mels]: ``[mean_t(L), std_t(L)]`` with
    ``L = 10 log10(max(mel_power, 1e-10))`` in dB (silence is exactly -100 dB), the same log-mel
    as Cnn14's front end (Hann window, centred reflect-padded STFT, Slaney mel filters).
    Windows shorter than ``n_fft`` samples are zero-padded at the end.
    """

    name = "logmel"
    labels = None
    amin = 1e-10

    def __init__(self, sample_rate: int, n_mels: int, n_fft: int, hop: int, fmin: float, fmax: float):
        super().__init__()
        import librosa  # only here: its first import is slow and Cnn14 users do not need it

        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop = hop
        self.n_mels = n_mels
        self.feature_dim = 2 * n_mels
        self.min_samples = n_fft
        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("mel_fb", torch.from_numpy(mel).float(), persistent=False)  # [M, F]
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)  # [n_fft]

    def log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """waveforms [B, N] -> log-mel in dB [B, M, T], T = N' // hop + 1."""
        x = _pad_to(waveforms.float(), self.min_samples)  # [B, N']
        spec = torch.stft(
            x, self.n_fft, self.hop, window=self.window, center=True, pad_mode="reflect",
            return_complex=True,
        )  # [B, F, T] F = n_fft // 2 + 1
        power = spec.real**2 + spec.imag**2  # [B, F, T]
        mel = self.mel_fb @ power  # [B, M, T]
        return 10.0 * torch.log10(mel.clamp_min(self.amin))  # [B, M, T]

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        logmel = self.log_mel(waveforms)  # [B, M, T]
        mean = logmel.mean(dim=2)  # [B, M]
        std = logmel.std(dim=2, correction=0)  # [B, M]
        return torch.cat([mean, std], dim=1)  # [B, 2M]

    def classify(self, waveforms: torch.Tensor) -> torch.Tensor:
        raise ValueError(
            "audio backbone 'logmel' has no classifier (it is weight-free log-mel statistics); "
            "use 'pann_cnn14' with its checkpoint to get AudioSet classes"
        )


def build_logmel(
    sample_rate: int = 32000,
    n_mels: int = 64,
    n_fft: int = 1024,
    hop: int = 320,
    fmin: float = 50,
    fmax: float = 14000,
) -> LogMelStats:
    """Log-mel statistics (``2 * n_mels`` dims, 128 by default) in eval mode; no weights."""
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"logmel: need 0 <= fmin < fmax <= sample_rate / 2, got {fmin}, {fmax}, {sample_rate}")
    return LogMelStats(sample_rate, n_mels, n_fft, hop, fmin, fmax).eval()
