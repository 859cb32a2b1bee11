"""Label sets shipped with the package (``id,name`` CSV files in ``tada/labels/``)."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

__all__ = ["get_labels", "list_label_sets"]

_DIR = Path(__file__).with_name("labels")


def list_label_sets() -> list[str]:
    """Names of the bundled label sets (``kinetics400``, ``ssv2``, ``motion`` ...)."""
    return sorted(p.stem for p in _DIR.glob("*.csv"))


@cache
def _read(name: str) -> tuple[str, ...]:
    path = _DIR / f"{name}.csv"
    if not path.is_file():
        raise KeyError(f"Unknown label set '{name}'. Known: {', '.join(list_label_sets())}")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ids = [int(r["id"]) for r in rows]
    if ids != list(range(len(ids))):
        raise ValueError(f"{path} must list ids 0..N-1 in order")
    return tuple(r["name"] for r in rows)


def get_labels(name: str) -> list[str]:
    """The class names of a label set, index = class id."""
    return list(_read(name))
