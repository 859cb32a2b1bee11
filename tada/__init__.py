"""TAda Lab model library: the TAdaConv family and ILA, faithful to the official releases.

```python
import tada
tada.list_models("tadaconvnextv2*")
model = tada.create_model("tadaconvnextv2_tiny.k400_16f", pretrained=True)
with tada.trace(model) as tr:
    logits = model(clip)
```
"""

from __future__ import annotations

import torch

from tada.registry import (
    PretrainedCfg,
    create_model,
    get_pretrained_cfg,
    list_architectures,
    list_models,
    register_model,
    register_pretrained,
)
from tada.trace import Trace, active_trace, trace

__all__ = [
    "PretrainedCfg",
    "create_model_and_transforms",
    "create_transform",
    "Trace",
    "active_trace",
    "create_model",
    "get_pretrained_cfg",
    "list_architectures",
    "list_models",
    "probabilities",
    "register_model",
    "register_pretrained",
    "trace",
]

__version__ = "0.1.0"


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax class scores, what the official code returns from ``model(x)`` in eval mode."""
    return torch.softmax(logits.float(), dim=-1)


def create_transform(model_or_cfg: torch.nn.Module | PretrainedCfg, views: str = "single"):
    """The preprocessing that matches a model (open_clip style): uint8 frames -> model tensor.

    ``views="official"`` gives the official multi-view test protocol (clips x crops).
    """
    from tada.video import VideoTransform

    cfg = getattr(model_or_cfg, "pretrained_cfg", model_or_cfg)
    return VideoTransform(cfg, views=views)


def create_model_and_transforms(name: str, pretrained: bool = False, views: str = "single", **kwargs):
    """``(model, transform)`` travelling together, like ``open_clip.create_model_and_transforms``."""
    model = create_model(name, pretrained=pretrained, **kwargs)
    return model, create_transform(model, views=views)
