"""Highlights for any video with a trained HPCL model (``hpcl highlight``).

Modules, one concern each:

- ``modelfile``: the self-contained model file (write from a training run, load with checks);
- ``export``: a finished pipeline run -> its model files (the ``export`` stage, ``hpcl export``);
- ``segmentation``: a new video cut into segments as the model's training data was;
- ``windows``: segment scores -> the chosen, merged highlight windows;
- ``reel``: the chosen windows cut from the source into one mp4 with PyAV;
- ``timeline``: the score timeline PNG;
- ``page``: the self-contained ``index.html``;
- ``run``: one run over several videos (features through ``pipeline.extract``, scoring,
  outputs, per-video failures);
- ``batch``: a folder of videos with a run's model files (the ``highlight`` stage);
- ``proof``: the demo measurement (reel precision on planted highlights) and the long-video
  memory benchmark;
- ``figures``: the README images (page screenshot, reel frame strip).
"""
