"""``--override KEY=VALUE`` construction arguments: parsing and checking them against a builder."""

from __future__ import annotations

import ast
import inspect
import json
from typing import Any

from tada._registry import model_entrypoint
from tada.errors import ConversionError, quote

__all__ = ["MAX_OVERRIDE_CHARS", "parse_overrides", "check_overrides"]

#: Longest ``key=value`` accepted (the longest real one, a list of four widths, is ~30 characters).
MAX_OVERRIDE_CHARS = 200


def parse_overrides(items: list[str] | tuple[str, ...] | dict[str, Any] | None) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are JSON/Python literals when they parse, else strings.

    ``route_head_dim=48`` -> 48, ``dims=[16,32]`` -> [16, 32], ``temp_enhance=true`` -> True.
    """
    if items is None:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        if len(item) > MAX_OVERRIDE_CHARS:
            raise ConversionError(
                f"override {quote(item)} is too long: at most {MAX_OVERRIDE_CHARS} characters (key=value)"
            )
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConversionError(f"override {quote(item)} is not of the form key=value")
        out[key] = _parse_value(text.strip())
    return out


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            continue
    return text


def check_overrides(architecture: str, overrides: dict[str, Any]) -> None:
    """Fail when an override is not a parameter of the architecture's builder (builders taking
    ``**kwargs`` accept anything; the build then decides)."""
    builder = model_entrypoint(architecture)
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in overrides if k not in params]
    if unknown:
        raise ConversionError(
            f"override {', '.join(quote(k, 40) for k in unknown)} is not a parameter of {architecture} "
            f"(parameters: {', '.join(p for p in params if p != 'kwargs')})"
        )
