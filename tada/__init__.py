"""TAda Lab model library: the TAdaConv family and ILA, faithful to the official releases.

```python
import tada
tada.list_models("tadaconvnextv2*")
model = tada.create_model("tadaconvnextv2_tiny.k400_16f", pretrained=True)
with tada.trace(model) as tr:
    logits = model(clip)
```

The model factory (:mod:`tada._factory`, which imports every model file) loads on first use of one
of its names, so ``import tada`` stays light for the video worker and the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from tada._pretrained import PretrainedCfg
from tada._registry import deregister_pretrained, register_model, register_pretrained
from tada.trace import Trace, active_trace, trace

__all__ = [
    "PretrainedCfg",
    "create_model_and_transforms",
    "create_transform",
    "Trace",
    "active_trace",
    "create_model",
    "deregister_pretrained",
    "get_pretrained_cfg",
    "list_architectures",
    "list_models",
    "probabilities",
    "register_model",
    "register_pretrained",
    "trace",
]

__version__ = "0.1.0"

#: Names served by the factory (importing it registers every model).
_FACTORY_NAMES = {
    "create_model",
    "deregister_pretrained",
    "create_model_and_transforms",
    "create_transform",
    "get_pretrained_cfg",
    "list_architectures",
    "list_models",
}


def __getattr__(name: str) -> Any:
    if name in _FACTORY_NAMES:
        return getattr(importlib.import_module("tada._factory"), name)
    raise AttributeError(f"module 'tada' has no attribute {name!r}")


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax class scores, what the official code returns from ``model(x)`` in eval mode."""
    return torch.softmax(logits.float(), dim=-1)
