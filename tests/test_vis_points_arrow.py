"""The ILA pairs view draws each pair's displacement: an arrow on the later frame from the earlier frame's
interactive point to the later frame's, whose ends are the points the bundled ILA really traced."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

import tada
from tada.motion import generate_clip
from tada.motion.dataset import to_tensor
from visualizations import figures
from visualizations.points import points_explanation

ILA = "ila_motion.tiny_8f"


@pytest.fixture(scope="module")
def traced() -> tuple:
    """The bundled ILA's points explanation of one generated clip, and the clip's frames."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = tada.create_model(ILA, pretrained=True)
        cfg = model.pretrained_cfg
        clip = generate_clip(7, "moving right", num_frames=cfg.num_frames, size=cfg.crop_size)
        x = cfg.to_model_layout(to_tensor(clip.frames)[None]).contiguous()
        return points_explanation(model, x), clip.frames
    finally:
        torch.set_num_threads(before)


def _arrows(fig) -> list:
    return [a for a in fig.layout.annotations if a.showarrow]


@pytest.mark.parametrize("with_frames", [False, True])
@pytest.mark.parametrize("layer", [0, -1])
def test_arrow_ends_are_the_traced_points(traced, with_frames: bool, layer: int) -> None:
    expl, frames = traced
    display = [np.ascontiguousarray(f) for f in frames] if with_frames else None
    fig = figures.points_figure(expl, layer, display)
    la = expl.layer(layer)
    arrows = _arrows(fig)
    assert len(arrows) == la.pairs
    # Without display frames the figure is in model-input pixels; the generator's frames are the input crop.
    for p, arrow in enumerate(arrows):
        assert (arrow.xref, arrow.yref, arrow.axref, arrow.ayref) == ("x2", "y2", "x2", "y2")  # later frame
        tail, head = la.points_px[p, 0:2], la.points_px[p, 2:4]
        assert (arrow.ax, arrow.ay) == pytest.approx(tuple(float(v) for v in tail), abs=1e-4)
        assert (arrow.x, arrow.y) == pytest.approx(tuple(float(v) for v in head), abs=1e-4)
    # The arrow's ends coincide with the two point markers of its pair.
    markers = [d for d in fig.data if isinstance(d, go.Scatter)]
    assert len(markers) == 2 * la.pairs
    for p, arrow in enumerate(arrows):
        earlier, later = markers[2 * p], markers[2 * p + 1]
        assert (arrow.ax, arrow.ay) == pytest.approx((earlier.x[0], earlier.y[0]))
        assert (arrow.x, arrow.y) == pytest.approx((later.x[0], later.y[0]))


def test_the_slider_shows_only_the_current_pairs_arrow(traced) -> None:
    expl, _ = traced
    fig = figures.points_figure(expl, 0)
    arrows = _arrows(fig)
    assert [bool(a.visible) for a in arrows] == [p == 0 for p in range(len(arrows))]
    index = {id(a): i for i, a in enumerate(fig.layout.annotations)}
    positions = [index[id(a)] for a in arrows]
    for p, step in enumerate(fig.layout.sliders[0].steps):
        shown = [q for q, i in enumerate(positions) if step.args[1][f"annotations[{i}].visible"]]
        assert shown == [p]
