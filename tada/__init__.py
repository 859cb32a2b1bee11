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
