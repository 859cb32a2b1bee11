"""Video input: any clip a user has -> the exact tensor each model expects, plus the frames a person sees.

```python
from tada.video import load_clip, average_view_scores
clip = load_clip("walk.mp4", model.pretrained_cfg)            # single centred view
probs = average_view_scores(model(clip.tensor))               # (K,)
clip.display_frames, clip.indices, clip.timestamps, clip.info.fps
```

Modules: :mod:`~tada.video.errors` (``VideoError``), :mod:`~tada.video.info` (``VideoInfo``,
``VideoLimits``), :mod:`~tada.video.decode` (PyAV/decord decoding, runs in the worker),
:mod:`~tada.video.worker` (isolated decoder processes), :mod:`~tada.video.reading` (``probe``,
``read_frames``), :mod:`~tada.video.sampling` (official sampling protocols),
:mod:`~tada.video.transforms` (``VideoTransform``), :mod:`~tada.video.clip` (``load_clip``),
:mod:`~tada.video.examples` (bundled example clips).
"""

from __future__ import annotations

from tada.video.clip import Clip, average_view_scores, display_frame, load_clip
from tada.video.errors import ERROR_CODES, VideoError
from tada.video.info import VideoInfo, VideoLimits
from tada.video.reading import probe, read_frames, read_frames_with_info
from tada.video.sampling import SAMPLING_PROTOCOLS, sample_clips, sample_indices
from tada.video.transforms import VideoTransform
from tada.video.worker import run_isolated, warm_up

__all__ = [
    "Clip",
    "ERROR_CODES",
    "SAMPLING_PROTOCOLS",
    "VideoError",
    "VideoInfo",
    "VideoLimits",
    "VideoTransform",
    "average_view_scores",
    "display_frame",
    "load_clip",
    "probe",
    "read_frames",
    "read_frames_with_info",
    "run_isolated",
    "sample_clips",
    "sample_indices",
    "warm_up",
]
