"""Many videos at once: dataset evaluation and batch inference, sharded with ``torchrun``.

```bash
python -m tada batch LIST --model NAME --out results.jsonl [--views official] [--summary s.json]
torchrun --nproc_per_node 8 -m tada batch LIST --model NAME --out results.jsonl
```

Modules: :mod:`~tada.batch.lists` (LIST formats -> entries, label names -> indices),
:mod:`~tada.batch.data` (DataLoader decoding with :func:`tada.video.load_clip`),
:mod:`~tada.batch.distributed` (torchrun process group, disjoint shards),
:mod:`~tada.batch.results` (part files, atomic merge, resume, features file),
:mod:`~tada.batch.summary` (accuracies, confusion matrix), :mod:`~tada.batch.runner` (the loop),
:mod:`~tada.batch.cli` (the command).
"""

from __future__ import annotations

from tada.batch.lists import Entry, ListError, read_list, resolve_labels
from tada.batch.runner import BatchOptions, run_batch

__all__ = ["BatchOptions", "Entry", "ListError", "read_list", "resolve_labels", "run_batch"]
