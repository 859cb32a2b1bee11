"""Presenters: a prediction or an explanation -> what a component shows (Markdown, gallery items,
label scores, plotly figures).  No Gradio events and no computing here: handlers call these."""

from __future__ import annotations

import functools
import textwrap
from typing import Any

import numpy as np
import plotly.graph_objects as go

from app import hosting
from app.catalogue import ModelInfo, catalogue, how_to_get_weights
from app.service import MAX_FRAMES, Analysis

__all__ = [
    "CALIBRATION_VIEWS",
    "CROP_RGB",
    "FRAME_VIEWS",
    "LAST_LAYER",
    "POINTS_VIEWS",
    "PREDICTED",
    "attribution_figure",
    "attribution_note",
    "calibration_figure",
    "counterfactual_figure",
    "counterfactual_markdown",
    "crop_box",
    "details_markdown",
    "domain_note",
    "gallery_items",
    "message_figure",
    "model_status_markdown",
    "model_view_frame",
    "picker_choices",
    "points_figure",
    "sampling_fields",
    "sampling_warnings",
    "top5",
    "view_choices",
]


CALIBRATION_VIEWS = [
    ("Heatmap of one layer", "heatmap"),
    ("Across depth", "summary"),
    ("Channels over time", "channels"),
    ("Calibrated kernel over time", "kernel"),
]

POINTS_VIEWS = [("Frame pairs of one layer", "pairs"), ("Trajectories of every layer", "trajectories")]

PREDICTED = "predicted class"

LAST_LAYER = "last layer"


@functools.lru_cache(maxsize=32)
def message_figure(text: str, height: int = 260) -> go.Figure:
    """An empty figure that says why there is nothing to draw (renders like any other plot; cached,
    since building a plotly figure costs tens of milliseconds)."""
    # Plotly does not wrap annotations: short lines keep the message inside a phone-wide plot.
    text = "<br>".join(line for part in text.split("<br>") for line in textwrap.wrap(part, 40) or [""])
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 15})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10}, template="plotly_white")
    return fig


def _fmt_s(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def details_markdown(a: Analysis) -> str:
    """What was run on what: model, device, clip, sampling, views, timings, warnings."""
    info = a.clip.info
    cfg = a.cfg
    lines = [
        *([note] if (note := domain_note(cfg)) else []),
        f"**Model** `{a.model_name}` · {a.device} · {a.precision}",
        f"**Clip** {info.width}×{info.height}, {info.fps:.3g} fps, {_fmt_s(info.duration)}, {info.codec}"
        + (f", rotated {info.rotation}°" if info.rotation else ""),
    ]
    ts = a.view.frame_timestamps
    if cfg.sampling == "interval":
        fps = cfg.target_fps or 30
        how = f"interval sampling: {cfg.num_frames} frames, one every {cfg.sampling_rate} at {fps:g} fps"
    elif cfg.sampling == "segment":
        how = f"segment sampling: {cfg.num_frames} frames, the middle of each of {cfg.num_frames} equal segments"
    else:
        how = f"uniform sampling: {cfg.num_frames} frames spread evenly over the clip"
    lines.append(f"**Frames** {how}; window {ts[0]:.2f}–{ts[-1]:.2f} s")
    n = a.clip.num_views
    crops = sorted({c for _, c in a.clip.views})
    lines.append(
        f"**Views** {n} ({len({c for c, _ in a.clip.views})} clip(s) × {len(crops)} crop(s), scores averaged); "
        f"internals and attributions use clip 1, {a.view.views[0][1]} crop"
        if n > 1
        else f"**Views** 1 (centre crop {cfg.crop_size}×{cfg.crop_size} of the short side resized to {cfg.test_scale})"
    )
    if a.class_names:
        lines.append(f"**Class phrases** {len(a.class_names)} (open vocabulary)")
    t = a.timings
    lines.append("**Time** " + " · ".join(f"{k} {_fmt_s(v)}" for k, v in t.items() if k != "load" or v > 0.05))
    for w in [*a.clip.warnings, *sampling_warnings(a)]:
        lines.append(f"⚠️ {w}")
    return "\n\n".join(lines)


def sampling_warnings(a: Analysis) -> list[str]:
    """What the sampling did that a user would not guess: a clip too short for the model's frames is
    padded by repeating frames, so the model sees a partly frozen clip."""
    idx = [int(i) for i in a.view.frame_indices]
    unique = sorted(set(idx))
    if len(unique) == len(idx):
        return []
    repeated = [f"f{i} ×{idx.count(i)}" for i in unique if idx.count(i) > 1]
    return [
        f"The clip gives only {len(unique)} distinct frame(s) for the {len(idx)} this model takes, so frames "
        f"are repeated ({', '.join(repeated[:4])}{' …' if len(repeated) > 4 else ''}): motion looks frozen to "
        "the model and its prediction means little. Use a longer clip."
    ]


def domain_note(cfg: Any) -> str:
    """A plain sentence for models trained on a narrow task (the bundled synthetic-motion models): they
    force any clip into their few classes, so a confident label on a natural clip means nothing."""
    if cfg.label_set != "motion":
        return ""
    from tada.labels import get_labels

    n = len(get_labels("motion"))
    return (
        f"ℹ️ This model was trained only on synthetic clips of one moving shape: it knows just {n} motion "
        "classes (moving left/right/up/down, rotating, growing …) and puts every clip into one of them, "
        "so on a natural clip its label and confidence say little."
    )


#: How frames are shown: the whole frame with the model's centre crop outlined, or only that crop.
FRAME_VIEWS = [("Whole frame, crop outlined", "outline"), ("Only what the model sees", "crop")]

#: Outline colour (visible on dark and light frames; the figures draw the same one).
CROP_RGB = (0, 229, 255)


def crop_box(frame_shape: tuple[int, ...], cfg: Any) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the square the model sees in a display frame: the short side is resized to
    ``test_scale`` and the centre ``crop_size`` square is cut (the main view's crop)."""
    h, w = int(frame_shape[0]), int(frame_shape[1])
    side = min(h, w) * min(1.0, float(cfg.crop_size) / float(cfg.test_scale or cfg.crop_size))
    x0, y0 = round((w - side) / 2), round((h - side) / 2)
    return x0, y0, round(x0 + side), round(y0 + side)


def model_view_frame(frame: np.ndarray, cfg: Any, view: str = "outline") -> np.ndarray:
    """A display frame as the user chose to see it: cropped to the model's square, or whole with the
    square outlined (nothing drawn when the model sees the whole frame)."""
    x0, y0, x1, y1 = crop_box(frame.shape, cfg)
    h, w = frame.shape[:2]
    if (x0, y0, x1, y1) == (0, 0, w, h):
        return frame
    if view == "crop":
        return np.ascontiguousarray(frame[y0:y1, x0:x1])
    out = frame.copy()
    t = max(2, round(min(h, w) / 90))  # about 2 px on a 180-px frame, thicker on large ones
    out[y0 : y0 + t, x0:x1] = CROP_RGB
    out[max(y1 - t, 0) : y1, x0:x1] = CROP_RGB
    out[y0:y1, x0 : x0 + t] = CROP_RGB
    out[y0:y1, max(x1 - t, 0) : x1] = CROP_RGB
    return out


def gallery_items(a: Analysis, view: str = "outline") -> list[tuple[Any, str]]:
    """The exact frames fed to the model (main view), each captioned with its source frame and time
    (the one numbering every tab uses: ``f37 · 1.23 s``), whole with the crop outlined or cropped."""
    v = a.view
    return [
        (model_view_frame(frame, a.cfg, view), f"f{int(idx)} · {float(ts):.2f} s")
        for frame, idx, ts in zip(v.display_frames, v.frame_indices, v.frame_timestamps)
    ]


def top5(a: Analysis) -> dict[str, float]:
    return dict(a.top(5))


def calibration_figure(a: Analysis, view: str = "heatmap", layer: str | None = None) -> go.Figure:
    """One of the calibration renderers for a prediction (a message figure when not applicable)."""
    from visualizations import figures

    expl = a.internals.get("calibration")
    if expl is None:
        why = a.internals.get("calibration_error") or f"{a.model_name} has no TAdaConv layers"
        hint = "Pick a TAdaConv model (TAda2D, TAdaConvNeXtV2, TAdaFormer)."
        return message_figure(f"No calibration to show: {why}.<br>{hint}")
    la: str | int = -1 if not layer or layer == LAST_LAYER else layer
    if view == "summary":
        return figures.calibration_summary(expl)
    if view == "channels":
        return figures.calibration_channels(expl, la)
    if view == "kernel":
        return figures.calibrated_kernel_figure(expl, la)
    return figures.calibration_heatmap(expl, la)


def points_figure(
    a: Analysis, view: str = "pairs", layer: str | None = None, frame_view: str | None = None
) -> go.Figure:
    """ILA interactive points of a prediction (a message figure when not applicable); ``frame_view``:
    whole frames with the model's crop outlined (``"outline"``) or only the crop (``"crop"``)."""
    from visualizations import figures

    expl = a.internals.get("points")
    if expl is None:
        why = a.internals.get("points_error") or f"{a.model_name} has no ILA modules"
        return message_figure(f"No interactive points to show: {why}.<br>Pick an ILA model.")
    frames = a.view.display_frames
    fv = frame_view or "outline"
    if view == "trajectories":
        return figures.trajectories_figure(expl, frames, view=fv)
    return figures.points_figure(expl, -1 if not layer or layer == LAST_LAYER else layer, frames, view=fv)


def view_choices(info: ModelInfo) -> list[tuple[str, str]]:
    """The Views radio's choices for a model."""
    # A model tested on one view has no multi-view protocol to offer ("official multi-view (1 views)").
    if info.num_views <= 1:
        return [("single view", "single")]
    return [("single view", "single"), (f"official multi-view ({info.num_views} views)", "official")]


def sampling_fields(info: ModelInfo | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Placeholder, label and interactivity of the Frames, Start and Stride fields for a model.  The
    fields are empty by default and the placeholder says what empty means; a field that does not apply
    to the model's sampling is disabled (and says why)."""
    if info is None:
        none = {"placeholder": "", "interactive": False}
        return none, dict(none), dict(none)
    interval = info.sampling == "interval"
    frames = {
        # The range the service accepts (MAX_FRAMES), so the field and its error message agree.
        "placeholder": f"{info.num_frames} (the model's own)"
        + ("" if info.family == "ila" else f"; a whole number, 1 to {MAX_FRAMES}"),
        "interactive": info.family != "ila",
        "label": "Frames" if info.family != "ila" else "Frames (fixed for ILA)",
    }
    # Any model takes a window "start-end" (what a click on the timeline puts here); a lone start is
    # for interval sampling only.
    start = {
        "placeholder": "centred, or a window 12-13" if interval else "whole clip, or a window 12-13",
        "interactive": True,
    }
    stride = {
        "placeholder": f"{info.sampling_rate} (the model's own)" if interval else f"n/a ({info.sampling} sampling)",
        "interactive": interval,
    }
    return frames, start, stride


#: How the page names a model family.
def model_status_markdown(info: ModelInfo) -> str:
    """One line about the chosen model, plus how to get its weights when they are missing."""
    head = info.summary()
    if info.bundled:
        return f"**Bundled model**, runs offline. {head}"
    if info.available:
        return f"**Weights found** on this machine. {head}"
    text = f"**Needs weights.** {head}\n\n" + how_to_get_weights(info.name, markdown=True)
    if hosting.model_uploads_allowed():
        text += (
            f"\n\nOn this page: open **Add a model** below and upload the official checkpoint as `{info.name}` "
            "(no restart)."
        )
    return text


def picker_choices(include_missing: bool = False) -> list[tuple[str, str]]:
    """Picker entries: the models that run here, plus (when asked) those that need weights."""
    return [(i.choice_label, i.name) for i in catalogue() if include_missing or i.available]


def attribution_figure(a: Analysis, expl: Any, frame_view: str | None = None) -> go.Figure:
    """An attribution explanation over the main view's display frames (whole with the crop outlined,
    or only the crop: ``frame_view``)."""
    from visualizations import figures

    return figures.attribution_figure(expl, a.view.display_frames, view=frame_view or "outline")


def attribution_note(expl: Any) -> str:
    """One line under the attribution figure: method, target class and its probability."""
    from visualizations import METHODS

    entry = METHODS.get(expl.method)
    label = entry.label if entry is not None else expl.method
    return f"**{label}** for “{expl.target_label}” (p = {expl.score:.2f}) on the main view."


def counterfactual_figure(result: Any) -> go.Figure:
    """Predictions on the edited clips (a plotly figure)."""
    from visualizations import figures

    return figures.counterfactual_figure(result)


def counterfactual_markdown(result: Any) -> str:
    """The original prediction and, per edit, whether the prediction survived."""
    lines = [f"Original prediction: **{result.original.predicted_label}**."]
    for v in result.variants:
        verdict = "prediction **changed**" if v.changed else "prediction kept"
        lines.append(f"- *{v.name}* ({v.description}): {v.predicted_label} — {verdict}")
    return "\n".join(lines)
