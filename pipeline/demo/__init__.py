"""The embedded demo dataset: synthetic audio-visual videos whose highlights need both modalities.

``generate_demo(out_dir, ...)`` writes, deterministically from a seed, a small dataset in the
YouTube Highlights on-disk layout (Sun et al., ECCV 2014)::

    out_dir/annotations/<domain>/vlist.json              [[[vids], "TraiTightL"], [[vids], "TraiLooseL"],
                                                          [[vids], "TestTightL"], [[vids], "TestLooseL"]]
    out_dir/annotations/<domain>/<vid>/clip.json         [[f0, f1], ...]   frames, f1 exclusive
    out_dir/annotations/<domain>/<vid>/match_label.json  [clips, labels]   labels in {-1, 0, 1}
    out_dir/videos/<vid>.mp4                             H.264 video + AAC mono audio (PyAV, no ffmpeg)
    out_dir/demo.json                                    parameters, fps, and every video's events

What a video contains (the paper's point: highlights need both modalities and tolerate asynchrony):

- background: a slowly drifting, desaturated, periodic noise texture; quiet ambience (pink-ish
  noise and a faint hum);
- highlight: a visual event (camera shake, fast saturated objects, a colour flash) AND an audio
  event (domain style: a crowd-like roar or a rising whistle). The sound is one segment shorter
  than the picture, centred on it and then shifted by a uniform random offset of up to
  ``max_audio_shift_segments`` segment durations, so with the default shift of up to one segment
  a highlight segment may be silent itself while its neighbour is loud;
- distractors, one modality alone: the same visual event in silence, or the same loud sound with
  nothing to see. Their visual/audio events are drawn from exactly the distributions of the
  highlights' ones, so a single modality cannot tell a highlight from a distractor.

Events are separated by at least one segment duration of plain background (audio extents
included), so the ground truth is exactly the rule "visual event in this segment AND an audio
event within one segment of it", which a model must learn from both modalities with temporal
context (per-segment fusion misses the silent highlight segments).

Segments follow YouTube Highlights' clips: windows of ``frames_per_segment`` frames every
``stride`` frames (``stride`` must divide ``frames_per_segment``). The timeline is cut into
units of ``stride`` frames; a segment spans ``m = frames_per_segment // stride`` units and is
labelled 1 when more than half of its units show a highlight's visual event, 0 (borderline) when
exactly half do, -1 otherwise. The default preset uses 2-second non-overlapping segments
(8 fps, 16 frames, stride 16); the ``tiny`` preset for tests uses half-overlapping ones (like the
real data's 100-frame windows with stride 50), which produces a few borderline 0 labels.

Everything random comes from ``numpy.random.default_rng([seed, domain_index, video_index])`` so
a video does not change when other videos are added. Frames go to the encoder as YUV 4:2:0
converted here (BT.601, limited range), and x264 runs single-threaded on its C code paths
(``X264_OPTIONS``), so the same seed gives byte-identical mp4 files with the same PyAV/FFmpeg
build (and identical decoded frames and audio).

The package: ``plan`` (presets, domain styles, event layout, segment labels), ``render`` (frames
and soundtrack as arrays), ``encode`` (YUV conversion, H.264 + AAC mp4 with PyAV) and
``generate`` (``generate_demo``: the on-disk layout); the names other code uses are re-exported
here.
"""

from __future__ import annotations

from .encode import AAC_RATES, X264_OPTIONS, encode_mp4, rgb_to_yuv420p
from .generate import VLIST_SETS, generate_demo
from .plan import DEMO_PRESETS, DOMAIN_STYLES, DemoEvent, demo_preset, plan_events, segment_labels
from .render import render_audio, render_frames

__all__ = [
    "AAC_RATES",
    "DEMO_PRESETS",
    "DOMAIN_STYLES",
    "VLIST_SETS",
    "X264_OPTIONS",
    "DemoEvent",
    "demo_preset",
    "encode_mp4",
    "generate_demo",
    "plan_events",
    "render_audio",
    "render_frames",
    "rgb_to_yuv420p",
    "segment_labels",
]
