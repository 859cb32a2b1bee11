"""Plotly renderers: explanation objects in, ``plotly.graph_objects.Figure`` out (no maths here)."""

from __future__ import annotations

from visualizations.figures.attribution import attribution_figure
from visualizations.figures.calibration import (
    TOP_CHANNELS,
    calibrated_kernel_figure,
    calibration_channels,
    calibration_heatmap,
    calibration_summary,
    channels_reading,
    depth_reading,
    kernel_reading,
    layer_title,
)
from visualizations.figures.counterfactuals import counterfactual_figure
from visualizations.figures.points import points_figure, trajectories_figure
from visualizations.figures.trust import deletion_figure, sanity_figure

__all__ = [
    "TOP_CHANNELS",
    "attribution_figure",
    "calibrated_kernel_figure",
    "calibration_channels",
    "calibration_heatmap",
    "calibration_summary",
    "channels_reading",
    "counterfactual_figure",
    "deletion_figure",
    "depth_reading",
    "kernel_reading",
    "layer_title",
    "points_figure",
    "sanity_figure",
    "trajectories_figure",
]
