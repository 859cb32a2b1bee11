"""Trust checks for attribution maps: the model-randomisation sanity check and the deletion curve."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from visualizations._model import NO_GRAD_BATCH_BUDGET, Progress, as_clip_input, auto_batch, forward_logits, time_dim
from visualizations.explain import explain
from visualizations.explanation import AttributionExplanation, DeletionCurve, SanityCheck
from visualizations.methods.gradcam import family_blocks

__all__ = ["deletion_curve", "layer_groups", "randomize_model", "rank_correlation", "sanity_check"]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of two maps' absolute values (NaN when either map is constant)."""
    x, y = np.abs(np.asarray(a, np.float64)).ravel(), np.abs(np.asarray(b, np.float64)).ravel()
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def _redraw_(param: torch.Tensor, gen: torch.Generator) -> None:
    """Re-draw a tensor from a normal with the same mean and std (its learned structure is gone, its
    scale is kept so activations stay in range); constant tensors (norm gains, zero biases) are kept."""
    if param.numel() < 2:
        return
    std = float(param.std())
    if std == 0:
        return
    noise = torch.randn(param.shape, generator=gen, dtype=torch.float32).to(param)
    param.copy_(float(param.mean()) + std * noise)


def randomize_model(model: nn.Module, seed: int = 0, prefixes: Sequence[str] | None = None) -> nn.Module:
    """A copy of ``model`` with its parameters (all, or those under ``prefixes``) re-drawn at random.

    Buffers (BatchNorm statistics) are kept, so the copy still runs in eval mode on the same inputs.
    """
    clone = copy.deepcopy(model).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in clone.named_parameters():
            if prefixes is None or any(name == p or name.startswith(p + ".") for p in prefixes):
                _redraw_(param, gen)
    clear = getattr(clone, "clear_text_cache", None)
    if callable(clear):  # ILA caches text features computed with the trained weights
        clear()
    return clone


def layer_groups(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Prefixes to randomise in a cascade, top first: the head (everything after the last block), then
    each block from the last to the first, then the stem (everything before the first block)."""
    blocks = family_blocks(model)
    params = [n for n, _ in model.named_parameters()]
    inside = [next((b for b in blocks if p.startswith(b + ".")), None) for p in params]
    first = next((i for i, b in enumerate(inside) if b is not None), len(params))
    last = max((i for i, b in enumerate(inside) if b is not None), default=-1)
    head, stem = params[last + 1 :], params[:first]
    groups: list[tuple[str, list[str]]] = []
    if head:
        groups.append(("head", head))
    groups += [(b, [b]) for b in reversed(blocks)]
    if stem:
        groups.append(("stem", stem))
    return groups


def sanity_check(
    model: nn.Module,
    clip: Any,
    method: str = "integrated_gradients",
    target: int | str | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    cascade: bool = False,
    **opts: Any,
) -> SanityCheck:
    """Explain the clip with the trained model and with a weight-randomised copy (same target index);
    a trustworthy method gives maps with a low rank correlation (Adebayo et al. 2018).

    With ``cascade=True`` the weights are also randomised progressively from the head down (one
    correlation per step), which shows which layers the maps depend on.
    """

    def sub(lo: float, hi: float) -> Progress | None:
        if progress is None:
            return None
        return lambda f, m: progress(lo + (hi - lo) * f, m)

    meta: dict[str, Any] = {
        "seed": seed,
        "randomisation": "every parameter re-drawn from N(mean, std) of its trained values",
    }
    if method in ("gradcam", "grad_cam") and "relu" not in opts:
        # A randomised model's ReLU'd Grad-CAM is often all zero (rank correlation undefined): compare
        # the maps before the ReLU, by absolute value, as for the other methods.
        opts = {**opts, "relu": False}
        meta["gradcam"] = "compared before the ReLU (absolute values)"
    groups = layer_groups(model) if cascade else []
    steps = 2 + len(groups)
    trained = explain(model, clip, method, target=target, progress=sub(0, 1 / steps), **opts)
    random_model = randomize_model(model, seed=seed)
    randomised = explain(random_model, clip, method, target=trained.target, progress=sub(1 / steps, 2 / steps), **opts)
    assert isinstance(trained, AttributionExplanation) and isinstance(randomised, AttributionExplanation)
    rows: list[tuple[str, float]] = []
    done: list[str] = []
    for i, (label, prefixes) in enumerate(groups):
        done += prefixes
        partial = randomize_model(model, seed=seed, prefixes=done)
        e = explain(
            partial, clip, method, target=trained.target, progress=sub((2 + i) / steps, (3 + i) / steps), **opts
        )
        rows.append((label, rank_correlation(trained.heatmaps, e.heatmaps)))
    return SanityCheck(
        method=trained.method,
        trained=trained,
        randomised=randomised,
        rank_correlation=rank_correlation(trained.heatmaps, randomised.heatmaps),
        cascade=rows,
        frame_indices=trained.frame_indices,
        timestamps=trained.timestamps,
        meta=meta,
    )


def _cells(heatmaps: np.ndarray, cell: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    t, h, w = heatmaps.shape
    gh, gw = -(-h // cell), -(-w // cell)
    padded = np.zeros((t, gh * cell, gw * cell), np.float64)
    padded[:, :h, :w] = heatmaps
    scores = padded.reshape(t, gh, cell, gw, cell).sum((2, 4))
    return scores.ravel(), (t, gh, gw)


def deletion_curve(
    model: nn.Module,
    clip: Any,
    explanation: AttributionExplanation,
    steps: int = 10,
    cell_px: int | None = None,
    baseline: float = 0.0,
    seed: int = 0,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> DeletionCurve:
    """Remove space-time cells (one frame x ``cell_px`` square, set to ``baseline`` = the mean colour)
    in order of attribution, most important first, and follow the target probability; the same along a
    random order is the reference (Petsiuk et al. 2018, RISE)."""
    ci = as_clip_input(model, clip)
    x = ci.tensor
    h, w = x.shape[-2:]
    cell = cell_px or max(2, min(h, w) // 14)
    scores, (t, gh, gw) = _cells(explanation.heatmaps, cell)
    n = scores.size
    order = np.argsort(-scores, kind="stable")
    rand = np.random.default_rng(seed).permutation(n)
    fractions = np.linspace(0, 1, steps + 1)
    counts = np.round(fractions * n).astype(int)

    def masked(ranking: np.ndarray, count: int) -> torch.Tensor:
        keep = np.ones(n, np.float32)
        keep[ranking[:count]] = 0
        grid = torch.from_numpy(keep.reshape(t, gh, gw)).to(x)
        m = grid.repeat_interleave(cell, 1).repeat_interleave(cell, 2)[:, :h, :w]  # (T, H, W)
        m = m[:, None] if time_dim(model) == 1 else m[None]  # broadcast over colour channels
        return x * m + baseline * (1 - m)

    inputs = [masked(order, c) for c in counts] + [masked(rand, c) for c in counts]
    batch_size = auto_batch(x, len(inputs), batch_size, NO_GRAD_BATCH_BUDGET)
    probs = []
    fwd = forward_logits(model)
    with torch.no_grad():
        for i in range(0, len(inputs), batch_size):
            batch = torch.cat(inputs[i : i + batch_size], 0)
            probs.append(torch.softmax(fwd(batch).float(), -1)[:, explanation.target].cpu())
            if progress is not None:
                progress(min(1.0, (i + batch_size) / len(inputs)), "deletion curve")
    p = torch.cat(probs).numpy()
    ranked, random_curve = p[: steps + 1], p[steps + 1 :]
    return DeletionCurve(
        method=explanation.method,
        target=explanation.target,
        target_label=explanation.target_label,
        fractions=fractions.astype(np.float32),
        scores=ranked.astype(np.float32),
        random_scores=random_curve.astype(np.float32),
        auc=float(np.trapezoid(ranked, fractions)),
        random_auc=float(np.trapezoid(random_curve, fractions)),
        frame_indices=ci.frame_indices,
        timestamps=ci.frame_timestamps,
        meta={"cell_px": cell, "cells": int(n), "baseline": baseline, "seed": seed},
    )
