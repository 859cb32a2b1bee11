"""Temporal counterfactuals: play the clip backwards, shuffled, frozen or at half the frame rate.

The simplest honest answer to "does this model use time?": a model that only looks at frames one by
one (and averages) gives the same answer on the reversed and shuffled clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from visualizations._model import as_clip_input, forward_logits, label_of, resolve_target
from visualizations.explanation import CounterfactualResult, CounterfactualVariant

__all__ = ["VARIANTS", "counterfactuals", "frame_orders"]

VARIANTS = ("reverse", "shuffle", "freeze", "drop_alternate")


def frame_orders(num_frames: int, seed: int = 0, freeze_frame: int | None = None) -> dict[str, tuple[list[int], str]]:
    """For each variant, the input frame shown at each position and a description. T is always kept
    (the TAdaFormer and ILA models are built for a fixed number of frames)."""
    t = num_frames
    rng = np.random.default_rng(seed)
    shuffle = list(range(t))
    while t > 1 and shuffle == list(range(t)):
        shuffle = [int(i) for i in rng.permutation(t)]
    m = t // 2 if freeze_frame is None else int(freeze_frame)
    if not 0 <= m < t:
        raise ValueError(f"freeze_frame {m} outside 0..{t - 1}")
    drop = [min(2 * (i // 2), t - 1) for i in range(t)]
    return {
        "reverse": (list(range(t - 1, -1, -1)), "frames in reverse order"),
        "shuffle": (shuffle, f"frames in a random order (seed {seed})"),
        "freeze": ([m] * t, f"input frame {m} repeated {t} times (no motion)"),
        "drop_alternate": (drop, "every other frame dropped, each kept frame shown twice to keep T (half frame rate)"),
    }


def _variant(
    model: nn.Module, name: str, description: str, order: list[int], probs: torch.Tensor, ref: int, k: int
) -> CounterfactualVariant:
    top = torch.topk(probs, min(k, probs.numel()))
    predicted = int(probs.argmax())
    return CounterfactualVariant(
        name=name,
        description=description,
        frame_order=order,
        predicted=predicted,
        predicted_label=label_of(model, predicted),
        top_k=[(int(i), label_of(model, int(i)), float(p)) for p, i in zip(top.values, top.indices)],
        target_prob=float(probs[ref]),
        changed=predicted != ref,
    )


def counterfactuals(
    model: nn.Module,
    clip: Any,
    target: int | str | None = None,
    variants: Sequence[str] = VARIANTS,
    k: int = 5,
    seed: int = 0,
    freeze_frame: int | None = None,
) -> CounterfactualResult:
    """Predictions on the original clip and each temporal edit (one batched forward pass).

    ``target`` is the class whose probability is followed (default: the original prediction);
    ``changed`` always compares with the original prediction.
    """
    ci = as_clip_input(model, clip)
    t = ci.num_frames
    orders = frame_orders(t, seed=seed, freeze_frame=freeze_frame)
    unknown = [v for v in variants if v not in orders]
    if unknown:
        raise ValueError(f"unknown counterfactual(s) {unknown}; choose from {VARIANTS}")
    rows = [list(range(t))] + [orders[v][0] for v in variants]
    index = torch.tensor(rows, device=ci.tensor.device)  # (V, T)
    batch = torch.cat([ci.tensor.index_select(ci.time_dim, idx) for idx in index], 0)
    with torch.no_grad():
        probs = torch.softmax(forward_logits(model)(batch).float(), -1).cpu()
    original_pred = int(probs[0].argmax())
    ref = original_pred if target is None else resolve_target(model, probs[:1], target)
    original = _variant(model, "original", "the clip as sampled", rows[0], probs[0], ref, k)
    original.changed = False
    result = [_variant(model, v, orders[v][1], orders[v][0], probs[i + 1], ref, k) for i, v in enumerate(variants)]
    for v in result:
        v.changed = v.predicted != original_pred
    return CounterfactualResult(
        original=original,
        variants=result,
        k=k,
        frame_indices=ci.frame_indices,
        timestamps=ci.frame_timestamps,
        meta={"followed_class": ref, "followed_label": label_of(model, ref), "seed": seed},
    )
