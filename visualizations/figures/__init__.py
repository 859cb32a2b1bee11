"""Plotly renderers: explanation objects in, ``plotly.graph_objects.Figure`` out (no maths here)."""

from __future__ import annotations

from visualizations.figures.attribution import attribution_figure
from visualizations.figures.calibration import (
    calibrated_kernel_figure,
    calibration_channels,
    calibration_heatmap,
    calibration_summary,
)
from visualizations.figures.counterfactuals import counterfactual_figure
from visualizations.figures.points import points_figure, trajectories_figure
from visualizations.figures.trust import deletion_figure, sanity_figure

__all__ = [
    "attribution_figure",
    "calibrated_kernel_figure",
    "calibration_channels",
    "calibration_heatmap",
    "calibration_summary",
    "counterfactual_figure",
    "deletion_figure",
    "points_figure",
    "sanity_figure",
    "trajectories_figure",
]
