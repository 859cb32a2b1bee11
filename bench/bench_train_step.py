"""Training-step cost of a bundled motion model, eager vs ``torch.compile`` (prints figures only).

.venv/bin/python bench/bench_train_step.py [--model ila_motion] [--threads 2] [--steps 20] [--batch-size 32]

Times ``tada.motion.train.train_step`` as ``python -m tada train`` runs it (the object-mask and motion
auxiliary loss where the model uses one, ILA's alignment loss for ILA, reverse-pair batches), on three
pre-generated batches so that clip generation is not counted: first eager, then through
``torch.compile`` (a fresh copy of the same weights).  Prints the one-off compilation time and the
mean step time after warm-up, and their ratio.  Timings on a shared machine vary; compare the ratio.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ila_motion")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)

    import tada
    from tada.motion.batches import make_batch
    from tada.motion.objectives import AUX_FLOW_DEFAULT, AUX_MASK_DEFAULT, ObjectMaskAux
    from tada.motion.train import train_step

    torch.manual_seed(0)
    base = tada.create_model(args.model)
    cfg = base.pretrained_cfg
    arch = cfg.architecture
    aux_mask, aux_flow = AUX_MASK_DEFAULT.get(arch, 0.0), AUX_FLOW_DEFAULT.get(arch, 0.0)
    align = 1.0 if hasattr(base, "alignment_losses") else 0.0
    batches = [
        make_batch(
            cfg, 0, i * args.batch_size, args.batch_size, masks=bool(aux_mask), flow=bool(aux_flow), reverse_pairs=True
        )
        for i in range(3)
    ]
    print(
        f"{cfg.name}: batch {args.batch_size}, {args.threads} thread(s), {args.steps} timed steps "
        f"(aux mask {aux_mask:g}, flow {aux_flow:g}, alignment {align:g})"
    )

    def run(compiled: bool) -> tuple[float, float]:
        model = copy.deepcopy(base)
        aux = ObjectMaskAux(model, cfg.num_frames, flow=aux_flow) if aux_mask else None
        params = list(model.parameters()) + (list(aux.parameters()) if aux else [])
        opt = torch.optim.AdamW(params, lr=1e-4)
        stepper = torch.compile(model) if compiled else model

        def step(i: int) -> None:
            x, y, *truth = batches[i % 3]
            train_step(
                stepper,
                opt,
                x,
                y,
                aux=aux,
                masks=truth[0] if truth else None,
                flow=truth[1] if len(truth) > 1 else None,
                align_weight=align,
            )

        t = time.perf_counter()
        for i in range(3):  # warm-up (and, compiled, the compilation)
            step(i)
        warm = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(args.steps):
            step(i)
        return warm, (time.perf_counter() - t) / args.steps

    eager_warm, eager = run(False)
    compiled_warm, compiled = run(True)
    print(f"eager:    {eager:.3f} s/step (warm-up 3 steps: {eager_warm:.1f} s)")
    print(f"compiled: {compiled:.3f} s/step (warm-up 3 steps, compilation included: {compiled_warm:.1f} s)")
    print(
        f"ratio eager/compiled: {eager / compiled:.2f}x; steps in 30 min: {1800 / eager:.0f} eager, "
        f"{(1800 - compiled_warm) / compiled:.0f} compiled"
    )


if __name__ == "__main__":
    main()
