"""One module per attribution algorithm; each exposes ``attribute(model, clip, target, progress, **opts)``.

They return :class:`MethodResult` (maps on the input grid plus a per-frame curve); :func:`visualizations.explain`
wraps that into an :class:`~visualizations.explanation.AttributionExplanation`.
"""

from __future__ import annotations

from visualizations.methods._common import MethodResult

__all__ = ["MethodResult"]
