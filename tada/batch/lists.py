"""Read the video lists people already have into :class:`Entry` rows (path, optional label).

Formats (told apart by extension and content):

* text, one video per line: ``path label`` (the official TAdaConv/Kinetics lists, MMAction2
  ``VideoDataset`` files, X-CLIP/ILA lists), ``path`` alone, or ``path<TAB>label`` when the path holds
  spaces.  A label after the first space may be a class index or a class *name* with spaces
  (``abseiling/x.mp4 air drumming``).  Blank lines and lines starting with ``#`` are skipped.
* CSV with a header (``.csv``): a path column (``path``, ``video``, ``filename``, ``file``, ``video_path``)
  and optionally a label column (``label``, ``label_idx``, ``label_id``, ``class``, ``class_name``).
* the official Something-Something-V2 json (``.json``): a list of objects with ``id`` (video ``<id>.webm``,
  or ``<id>.mp4`` when only that exists) and ``label_idx``, or the ``template`` whose bracketed
  placeholders are the class name (``"Putting [something] on a surface"``); test lists have neither.
* a folder: every video file under it (recursively, sorted), no labels.

Relative paths are relative to the list file's folder (or ``root`` when given).  Labels stay as read
(``int`` index or ``str`` name) until :func:`resolve_labels` maps them onto a model's classes.
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tada.errors import UserError

__all__ = ["Entry", "ListError", "VIDEO_EXTENSIONS", "read_list", "resolve_labels"]

#: File name endings taken as videos when LIST is a folder.
VIDEO_EXTENSIONS = (
    ".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ogv", ".ts",
)  # fmt: skip
_PATH_COLUMNS = ("path", "video", "filename", "file", "video_path", "video_name")
_LABEL_COLUMNS = ("label", "label_idx", "label_id", "class", "class_name", "category")


class ListError(UserError, ValueError):
    """The list file cannot be read as one of the supported formats; the message says where and why."""


@dataclass(frozen=True)
class Entry:
    """One video of a list: its path (absolute) and label as written (index, name or None)."""

    path: str
    label: int | str | None = None


def read_list(source: str | os.PathLike, root: str | os.PathLike | None = None) -> list[Entry]:
    """The videos of ``source`` (a list file or a folder) in list order; see the module docstring."""
    src = Path(source)
    if not src.exists():
        raise ListError(f"The list {src} does not exist.")
    if src.is_dir():
        base = Path(root) if root is not None else src
        found = sorted(
            p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not _hidden(p, src)
        )
        if not found:
            raise ListError(f"The folder {src} holds no video file ({', '.join(VIDEO_EXTENSIONS)}).")
        return [Entry(str(p.resolve()) if root is None else _join(base, str(p.relative_to(src)))) for p in found]
    base = Path(root) if root is not None else src.resolve().parent
    text = src.read_text(encoding="utf-8-sig")
    suffix = src.suffix.lower()
    if suffix == ".json":
        entries = _read_ssv2_json(text, base, src)
    elif suffix == ".csv":
        entries = _read_csv(text, base, src)
    else:
        entries = _read_text(text, base, src)
    if not entries:
        raise ListError(f"The list {src} holds no video.")
    return entries


def _hidden(path: Path, top: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(top).parts)


def _join(base: Path, path: str) -> str:
    p = Path(os.path.expanduser(path))
    return str(p if p.is_absolute() else (base / p))


def _label(token: str) -> int | str:
    token = token.strip()
    return int(token) if re.fullmatch(r"[+-]?\d+", token) else token


def _read_text(text: str, base: Path, src: Path) -> list[Entry]:
    entries = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "\t" in line:  # path<TAB>label: the path may hold spaces
            path, _, label = line.partition("\t")
            entries.append(Entry(_join(base, path.strip()), _label(label) if label.strip() else None))
            continue
        whole = _join(base, line)
        if " " not in line or os.path.isfile(whole):  # path alone (also a path with spaces that exists)
            entries.append(Entry(whole))
            continue
        path, _, label = line.partition(" ")
        if not label.strip():
            raise ListError(f"{src}:{n}: cannot read '{raw}' as 'path label'.")
        entries.append(Entry(_join(base, path), _label(label)))
    return entries


def _read_csv(text: str, base: Path, src: Path) -> list[Entry]:
    reader = csv.DictReader(text.splitlines())
    fields = {f.strip().lower(): f for f in reader.fieldnames or []}
    path_col = next((fields[c] for c in _PATH_COLUMNS if c in fields), None)
    if path_col is None:
        raise ListError(
            f"{src}: the CSV header ({', '.join(reader.fieldnames or [])}) has no path column; "
            f"name it one of {', '.join(_PATH_COLUMNS)}."
        )
    label_col = next((fields[c] for c in _LABEL_COLUMNS if c in fields), None)
    entries = []
    for n, row in enumerate(reader, 2):
        path = (row.get(path_col) or "").strip()
        if not path:
            raise ListError(f"{src}:{n}: empty path.")
        label = (row.get(label_col) or "").strip() if label_col else ""
        entries.append(Entry(_join(base, path), _label(label) if label else None))
    return entries


def _read_ssv2_json(text: str, base: Path, src: Path) -> list[Entry]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ListError(f"{src} is not valid JSON ({exc}).") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
        raise ListError(f"{src}: expected the SSV2 format, a JSON list of objects each with an 'id'.")
    entries = []
    for item in items:
        stem = str(item["id"])
        path = _join(base, f"{stem}.webm")
        if not os.path.isfile(path) and os.path.isfile(_join(base, f"{stem}.mp4")):
            path = _join(base, f"{stem}.mp4")
        if item.get("label_idx") is not None:
            label: int | str | None = int(item["label_idx"])
        elif item.get("template"):
            label = str(item["template"]).replace("[", "").replace("]", "")  # the official class-name rule
        else:
            label = None
        entries.append(Entry(path, label))
    return entries


def _norm(name: str) -> str:
    # Kinetics lists write "air_drumming", "Air drumming", '"air drumming"': one spelling for all.
    return " ".join(name.strip().strip('"').replace("_", " ").lower().split())


def resolve_labels(entries: Sequence[Entry], class_names: Sequence[str]) -> list[int | None]:
    """Class index of each entry's label in ``class_names`` (None when the entry has no label).

    Raises ListError naming the labels that match no class (with close matches), or an index out of
    range: a label that silently counted as wrong would change every accuracy.
    """
    lookup = {_norm(n): i for i, n in enumerate(class_names)}
    out: list[int | None] = []
    bad: dict[str, None] = {}
    for e in entries:
        if e.label is None:
            out.append(None)
        elif isinstance(e.label, int):
            if not 0 <= e.label < len(class_names):
                bad[f"{e.label} (index outside 0..{len(class_names) - 1})"] = None
            out.append(e.label)
        else:
            idx = lookup.get(_norm(e.label))
            if idx is None:
                close = difflib.get_close_matches(_norm(e.label), list(lookup), n=1)
                bad[f"'{e.label}'" + (f" (did you mean '{class_names[lookup[close[0]]]}'?)" if close else "")] = None
            out.append(idx)
    if bad:
        shown = list(bad)
        more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""
        raise ListError(
            f"{len(shown)} label(s) of the list are not classes of the model: {'; '.join(shown[:5])}{more}. "
            "Give labels as class indices or names of the model's label set, or leave them out."
        )
    return out
