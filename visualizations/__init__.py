"""Explanations of temporal video models and their plotly figures.

```python
from visualizations import explain, figures
e = explain(model, clip, "integrated_gradients", n_steps=32)     # -> AttributionExplanation
fig = figures.attribution_figure(e, clip.display_frames)         # -> plotly Figure (works in gr.Plot)
```
Maths (``explain``, ``trust``) and rendering (``figures``) are separate, as in Captum.
"""

from __future__ import annotations

from visualizations import figures
from visualizations.counterfactuals import counterfactuals
from visualizations.explain import METHODS, explain, list_methods
from visualizations.explanation import (
    AttributionExplanation,
    CalibrationExplanation,
    CalibrationLayer,
    CounterfactualResult,
    CounterfactualVariant,
    DeletionCurve,
    Explanation,
    PointsExplanation,
    PointsLayer,
    SanityCheck,
)
from visualizations.methods.gradcam import default_layer as default_gradcam_layer
from visualizations.methods.gradcam import layer_candidates as gradcam_layers
from visualizations.trust import deletion_curve, randomize_model, sanity_check

__all__ = [
    "METHODS",
    "AttributionExplanation",
    "CalibrationExplanation",
    "CalibrationLayer",
    "CounterfactualResult",
    "CounterfactualVariant",
    "DeletionCurve",
    "Explanation",
    "PointsExplanation",
    "PointsLayer",
    "SanityCheck",
    "counterfactuals",
    "default_gradcam_layer",
    "deletion_curve",
    "explain",
    "figures",
    "gradcam_layers",
    "list_methods",
    "randomize_model",
    "sanity_check",
]
