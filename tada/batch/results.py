"""Result files of a batch run: per-rank part files while it runs, one merged file at the end.

While running, rank ``r`` appends its rows to ``<out>.parts/rank<r>.jsonl``; every model batch is
one ``os.write`` of whole lines followed by ``fsync``, so a killed process leaves complete lines
(a line cut by a crash of the machine itself is recognised by its missing newline and ignored).
At the end rank 0 writes ``<out>`` (one row per video, in list order) through a temporary file and
``os.replace``, and with ``--features`` ``<out stem>.features.safetensors`` (tensor key = the row's
list index, as text; each row names its key in ``feature``).  ``--resume`` reads back every part
file and the merged file, and only videos without a row are run again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PartWriter",
    "features_path",
    "merge",
    "parts_dir",
    "read_done",
    "read_rows",
    "remove_parts",
    "write_atomic",
]


def parts_dir(out: str | os.PathLike) -> Path:
    return Path(f"{os.fspath(out)}.parts")


def features_path(out: str | os.PathLike) -> Path:
    p = Path(out)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(f"{stem}.features.safetensors")


class PartWriter:
    """Appends rows to one rank's part file, whole lines only."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_partial_tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        view = memoryview(data)
        while view:  # one write() in practice; a regular file only returns short on a full disk
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _drop_partial_tail(path: Path) -> None:
    """Cut a last line without its newline (a write cut short), so new rows start on a fresh line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        f.truncate(data.rfind(b"\n") + 1)


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The complete rows of a jsonl file (lines without a newline or unreadable ones are skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    data = path.read_bytes()
    for line in data.split(b"\n")[:-1]:  # the piece after the last newline is incomplete
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("index"), int):
            rows.append(row)
    return rows


def read_done(out: str | os.PathLike) -> list[dict[str, Any]]:
    """Every finished row visible here: the merged file (features restored) and all part files."""
    rows = read_rows(out)
    feats = features_path(out)
    if rows and feats.is_file() and any(isinstance(r.get("feature"), str) for r in rows):
        from safetensors.numpy import load_file

        table = load_file(str(feats))
        for r in rows:
            key = r.get("feature")
            if isinstance(key, str) and key in table:
                r["feature"] = table[key].tolist()
            elif isinstance(key, str):
                r.pop("feature")  # a key without its tensor: the row is redone (see _row_matches)
    for part in sorted(parts_dir(out).glob("rank*.jsonl")):
        rows.extend(read_rows(part))
    return rows


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``path`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def merge(out: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write ``out`` (and the features file) from ``rows``: one row per list index, in list order.

    Returns the merged rows as written (``feature`` holding the key, not the vector).
    """
    by_index: dict[int, dict[str, Any]] = {}
    for r in rows:
        by_index.setdefault(int(r["index"]), r)  # a row seen twice (merged file and a part) is one row
    merged, tensors = [], {}
    for index in sorted(by_index):
        row = dict(by_index[index])
        if isinstance(row.get("feature"), list):
            key = str(index)
            tensors[key] = np.asarray(row["feature"], dtype=np.float32)
            row["feature"] = key
        merged.append(row)
    if tensors:
        from safetensors.numpy import save

        write_atomic(features_path(out), save(tensors, metadata={"keys": "list index of the row in " + Path(out).name}))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in merged).encode("utf-8"))
    return merged


def remove_parts(out: str | os.PathLike) -> None:
    """Remove the part files once their rows are in the merged file."""
    shutil.rmtree(parts_dir(out), ignore_errors=True)
