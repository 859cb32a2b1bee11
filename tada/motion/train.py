"""``python -m tada train``: train a bundled motion model on freshly generated clips, CPU only.

Every step draws a new batch from the seeded clip stream (clip ``i`` of stream ``--seed``), so the
model never sees a clip twice and cannot overfit; the held-out set of ``python -m tada evaluate``
uses a different stream (:data:`tada.motion.evaluate.EVAL_SEED`).  The learning rate follows a
linear warm-up then a cosine decay over ``--steps``, or over ``--max-minutes`` when that comes first
(progress is then measured in wall time, and the log and model card record the steps actually run;
re-running with ``--steps <that number>`` and no time limit replays the same data and schedule).

Batches are made in :mod:`tada.motion.batches`, the auxiliary objectives live in
:mod:`tada.motion.objectives`; this module holds the step, the schedule, the loop and the CLI.

The output is a model folder (``config.json`` + ``model.safetensors`` + ``README.md``), rewritten every
``--save-every`` seconds, so an interrupted run still leaves loadable weights.
"""

from __future__ import annotations

import argparse
import math
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tada._model_card import lab_notes, model_card
from tada._model_folder import CARD_NAME, folder_config, read_model_config, read_weights, write_model_folder
from tada.checkpoints import load_state_dict_strict
from tada.motion.batches import focus_labels, make_batch
from tada.motion.evaluate import EVAL_SEED, evaluate_model
from tada.motion.objectives import AUX_FLOW_DEFAULT, AUX_MASK_DEFAULT, AUX_POINTS_DEFAULT, ObjectMaskAux, PointAux

HELP = "train a bundled motion model (tiny TAdaConvNeXtV2 / TAdaFormer / ILA / 2-D baseline) on CPU"

__all__ = ["HELP", "configure", "run", "train", "train_step", "save_model_folder"]


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    label_smoothing: float = 0.1,
    aux: ObjectMaskAux | None = None,
    masks: torch.Tensor | None = None,
    aux_weight: float = 1.0,
    flow: torch.Tensor | None = None,
    align_weight: float = 0.0,
    points: PointAux | None = None,
    centers: torch.Tensor | None = None,
    points_weight: float = 1.0,
) -> tuple[float, float]:
    """One optimisation step; returns (classification loss, batch accuracy).

    With ``aux`` (and the batch's ``masks``, and ``flow`` if it predicts motion) its loss is added with
    weight ``aux_weight``.  ``align_weight`` adds an ILA's own alignment losses (summed over layers, as the
    official training does with weight 1).
    """
    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    total = loss + aux_weight * aux.loss(masks, flow) if aux is not None else loss
    if align_weight:
        total = total + align_weight * sum(model.alignment_losses())
    if points is not None:
        total = total + points_weight * points.loss(centers)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    return float(loss.detach()), float((logits.detach().argmax(1) == y).float().mean())


# The text tower of the CLIP-style models (ILA): its class texts are the classifier's weights.
_TEXT_TOWER = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")


def _text_tower(model: nn.Module, named: list[tuple[str, nn.Parameter]]) -> set[str]:
    """Names of the text-tower parameters of a model with class texts (``--text-lr``); raises for others."""
    if not hasattr(model, "encode_text"):
        raise ValueError(f"--text-lr applies to models with class texts (ILA), not {type(model).__name__}")
    return {n for n, _ in named if n.split(".")[0] in _TEXT_TOWER}


def _lr_factor(progress: float, warmup: float) -> float:
    if progress < warmup:
        return max(progress / warmup, 1e-3)
    p = min(1.0, (progress - warmup) / max(1e-8, 1 - warmup))
    return 0.5 * (1 + math.cos(math.pi * p))


def _cpp_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend (inductor) would call, if there is one."""
    import os
    import shutil

    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "c++", "clang++"]
    return next((path for c in candidates if (path := shutil.which(c))), None)


def save_model_folder(model: nn.Module, out_dir: str | Path, info: dict[str, Any], half: bool = False) -> Path:
    """Write the model folder of a trained model (the one writer of :mod:`tada._model_folder`)."""
    cfg = model.pretrained_cfg
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    ev = info.get("evaluation") or {}
    cfg = cfg.replace(reported_top1=ev.get("top1", cfg.reported_top1))
    training = {k: v for k, v in info.items() if k != "evaluation"}
    config = folder_config(cfg, training=training, evaluation=ev or None)
    old_card = Path(out_dir) / CARD_NAME  # a rewrite (every --save-every seconds, or into a bundled folder)
    notes = lab_notes(old_card.read_text(encoding="utf-8") if old_card.is_file() else None)
    return write_model_folder(out_dir, state, config, model_card(cfg, training=info, notes=notes))


def train(
    name: str,
    out_dir: str | Path,
    *,
    steps: int = 2000,
    batch_size: int = 32,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    warmup: float = 0.05,
    label_smoothing: float = 0.1,
    seed: int = 0,
    threads: int = 2,
    max_minutes: float | None = None,
    save_every: float = 120.0,
    log_every: int = 10,
    eval_clips: int = 0,
    curriculum: float = 0.0,
    aux_mask: float | None = None,
    aux_flow: float | None = None,
    aux_align: float = 0.0,
    aux_points: float | None = None,
    aux_points_until: float = 1.0,
    text_lr: float = 1.0,
    focus: Sequence[str] = (),
    focus_fraction: float = 0.0,
    focus_from: float = 0.0,
    reverse_pairs: bool = False,
    flush_denormals: bool = False,
    compile: bool = False,
    init: str | Path | None = None,
    half: bool | None = None,
    command: str = "",
    log=print,
) -> nn.Module:
    """Train variant ``name`` (e.g. ``tadaconvnextv2_motion.tiny_8f``) from scratch; returns the model.

    ``focus``/``focus_fraction``: that fraction of the clips is given to these classes (names), for a
    phase aimed at the classes an earlier phase confused; ``focus_from``: only from that fraction of
    training on (a focus phase inside one run).  ``aux_points_until``: the interactive-point loss only
    until that fraction of training (a warm start).  ``text_lr``: learning-rate factor of an ILA's text
    tower.  ``reverse_pairs``: half of every batch is the other half played backwards (see
    :func:`make_batch`).  ``compile``: the training steps run through
    ``torch.compile`` (same maths, fused kernels; the first step pays the compilation).
    """
    import tada
    from tada.motion.generator import CLASSES

    unknown = [c for c in focus if c not in CLASSES]
    if unknown:
        raise ValueError(f"unknown focus classes {unknown}; the classes are: {', '.join(CLASSES)}")
    focus_ids = [CLASSES.index(c) for c in focus]
    if focus_ids and not 0.0 < focus_fraction <= 1.0:
        raise ValueError("--focus needs a --focus-fraction in (0, 1]")
    if not 0.0 <= focus_from < 1.0:
        raise ValueError(f"--focus-from must lie in [0, 1), got {focus_from}")
    if text_lr <= 0.0:
        raise ValueError(f"--text-lr must be positive, got {text_lr}")
    if not 0.0 < aux_points_until <= 1.0:
        raise ValueError(f"--aux-points-until must lie in (0, 1], got {aux_points_until}")
    if compile and not _cpp_compiler():
        raise RuntimeError(
            "--compile needs a C++ compiler for torch.compile's CPU kernels (g++ or clang++ on PATH, or $CXX); "
            "install one (e.g. apt-get install g++) or train without --compile"
        )
    if reverse_pairs and batch_size % 2:
        raise ValueError(f"--reverse-pairs needs an even --batch-size, got {batch_size}")
    # Stream clips used per step: with reverse pairs the other half of the batch is their reversals.
    fresh = batch_size // 2 if reverse_pairs else batch_size
    torch.set_num_threads(threads)
    if flush_denormals:
        # Denormal floats (weights or activations drifting towards 0) made ILA steps 4x slower on CPU
        # (1.58 s vs 0.38 s per step on a 10-minute checkpoint); flushing only zeroes values below ~1e-38.
        # Off by default so that the shipped weights' commands replay exactly.
        torch.set_flush_denormal(True)
    torch.manual_seed(seed)
    model = tada.create_model(name)  # random init, seeded
    if aux_align and not hasattr(model, "alignment_losses"):
        raise ValueError("--aux-align is ILA's own alignment loss: only ILA models have it")
    cfg = model.pretrained_cfg
    previous: dict[str, Any] | None = None
    if init is not None:  # continue from a model folder (a second phase of training)
        load_state_dict_strict(model, read_weights(init))
        previous = read_model_config(init).get("training")
    if half is None:
        # float16 only where float32 would break the 10 MB budget of a bundled model
        half = 4 * sum(p.numel() for p in model.parameters()) > 10_000_000
    if aux_mask is None:
        aux_mask = AUX_MASK_DEFAULT.get(cfg.architecture, 0.0)
    if aux_flow is None:
        aux_flow = AUX_FLOW_DEFAULT.get(cfg.architecture, 0.0) if aux_mask else 0.0
    if aux_flow and not aux_mask:
        raise ValueError("--aux-flow needs the object-mask loss (--aux-mask > 0): the motion term rides on it")
    aux = ObjectMaskAux(model, cfg.num_frames, flow=aux_flow) if aux_mask else None
    if aux_points is None:
        aux_points = AUX_POINTS_DEFAULT.get(cfg.architecture, 0.0)
    point_aux = PointAux(model) if aux_points else None
    named = list(model.named_parameters()) + (list(aux.named_parameters("aux")) if aux else [])
    text = _text_tower(model, named) if text_lr != 1.0 else set()
    groups = []
    for in_text, scale in ((False, 1.0), (True, text_lr)):
        part = [(n, p) for n, p in named if (n in text) == in_text]
        groups += [
            {"params": [p for n, p in part if p.ndim > 1 and "embedding" not in n], "weight_decay": weight_decay},
            {"params": [p for n, p in part if not (p.ndim > 1 and "embedding" not in n)], "weight_decay": 0.0},
        ]
        for group in groups[-2:]:
            group["lr_scale"] = scale
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)
    params = sum(p.numel() for p in model.parameters())
    # The compiled wrapper shares the model's parameters, buffers and hooks; evaluation and saving use `model`.
    step_model: nn.Module = torch.compile(model) if compile else model
    log(
        f"training {cfg.name}: {params:,} parameters, {steps} steps x {batch_size} clips, seed {seed}, "
        f"{threads} thread(s)" + (f", at most {max_minutes:g} min" if max_minutes else "")
    )
    t0 = last_save = time.monotonic()
    ema_loss = ema_acc = None
    info: dict[str, Any] = {}
    step = 0

    def snapshot(evaluation: dict[str, Any] | None = None) -> None:
        info.update(
            command=command or f"python -m tada train --model {cfg.architecture}",
            seed=seed,
            steps=steps,
            steps_done=step,
            batch_size=batch_size,
            clips_seen=step * fresh,
            reverse_pairs=reverse_pairs,
            flush_denormals=flush_denormals,
            compiled=compile,
            lr=lr,
            weight_decay=weight_decay,
            warmup=warmup,
            label_smoothing=label_smoothing,
            threads=threads,
            minutes=(time.monotonic() - t0) / 60,
            train_acc=ema_acc or 0.0,
            train_loss=ema_loss,
            params=params,
            weights_dtype="float16" if half else "float32",
            curriculum=curriculum,
            aux_mask=aux_mask,
            aux_flow=aux_flow,
            aux_align=aux_align,
            aux_points=aux_points,
            aux_points_until=aux_points_until if aux_points else 1.0,
            text_lr=text_lr,
            focus=list(focus),
            focus_fraction=focus_fraction if focus else 0.0,
            focus_from=focus_from if focus else 0.0,
            initialised_from=previous,
            evaluation=evaluation,
        )
        save_model_folder(model, out_dir, info, half=half)

    while step < steps:
        elapsed = (time.monotonic() - t0) / 60
        progress = step / steps
        if max_minutes:
            progress = max(progress, elapsed / max_minutes)
        if progress >= 1.0:
            log(f"time budget reached after {step} steps")
            break
        factor = _lr_factor(progress, warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr * factor * group["lr_scale"]
        # Curriculum: during the first `curriculum` fraction, every other batch is rendered without nuisances.
        easy = progress < curriculum and step % 2 == 0
        start = step * fresh
        focusing = bool(focus_ids) and progress >= focus_from
        labels = focus_labels(seed, start, fresh, focus_ids, focus_fraction) if focusing else None
        # The point loss may only start the run (it gets ILA off chance, see the card); its hooks stay, so a
        # compiled step is not recompiled, and their outputs are dropped unused.
        pointing = point_aux is not None and progress < aux_points_until
        x, y, *truth = make_batch(
            cfg,
            seed,
            start,
            batch_size,
            easy=easy,
            masks=aux is not None,
            flow=bool(aux_flow),
            labels=labels,
            reverse_pairs=reverse_pairs,
            centers=pointing,
        )
        loss, acc = train_step(
            step_model,
            optimizer,
            x,
            y,
            label_smoothing,
            aux=aux,
            masks=truth[0] if truth else None,
            aux_weight=aux_mask,
            flow=truth[1] if aux_flow else None,
            align_weight=aux_align,
            points=point_aux if pointing else None,
            centers=truth[-1] if pointing else None,
            points_weight=aux_points,
        )
        if point_aux is not None and not pointing:
            point_aux.discard()
        step += 1
        ema_loss = loss if ema_loss is None else 0.95 * ema_loss + 0.05 * loss
        ema_acc = acc if ema_acc is None else 0.95 * ema_acc + 0.05 * acc
        if step % log_every == 0 or step == 1:
            log(
                f"step {step:5d}  loss {ema_loss:.3f}  acc {ema_acc:.3f}  lr {lr * factor:.2e}  "
                f"{(time.monotonic() - t0) / 60:.1f} min"
            )
        if time.monotonic() - last_save > save_every:
            snapshot()
            last_save = time.monotonic()
    if aux is not None:
        aux.remove()
    if point_aux is not None:
        point_aux.remove()
    model.eval()
    snapshot()  # the weights are safe before the (optional) evaluation
    if eval_clips:
        r = evaluate_model(model, num_clips=eval_clips, seed=EVAL_SEED)
        evaluation = {k: r[k] for k in ("top1", "pair_acc", "reversed_acc")}
        evaluation.update(seed=EVAL_SEED, num_clips=eval_clips)
        log(
            f"held-out ({eval_clips} clips, seed {EVAL_SEED}): top-1 {r['top1']:.1f} %, pairs {r['pair_acc']:.1f} %, "
            f"reversed {r['reversed_acc']:.1f} %"
        )
        snapshot(evaluation)
    log(f"saved {out_dir} after {step} steps, {(time.monotonic() - t0) / 60:.1f} min")
    return model


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="bundled architecture or variant, e.g. tadaconvnextv2_motion")
    p.add_argument("--out", help="output model folder (default: assets/models/<architecture>)")
    p.add_argument("--steps", type=int, default=2000, help="optimisation steps (default 2000)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0, help="data stream and init seed (default 0)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--max-minutes", type=float, help="stop (and finish the cosine schedule) by this wall time")
    p.add_argument("--save-every", type=float, default=120.0, help="seconds between checkpoints (default 120)")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--eval-clips", type=int, default=0, help="held-out clips scored at the end, for the model card")
    p.add_argument("--init", help="start from the weights of this model folder (continue an earlier run)")
    p.add_argument("--curriculum", type=float, default=0.0, help="fraction of training with half the batches easy")
    p.add_argument(
        "--aux-align",
        type=float,
        default=0.0,
        help="weight of ILA's own alignment loss (the official training uses 1; default 0, as when the option "
        "did not exist, so that earlier commands still reproduce their weights)",
    )
    p.add_argument(
        "--aux-points",
        type=float,
        help="weight of the training-only interactive-point loss: every ILA layer's points of each frame pair "
        "are pulled towards the moving object's true centre in those frames (default: 1 for ila_motion, else 0)",
    )
    p.add_argument(
        "--aux-points-until",
        type=float,
        default=1.0,
        help="use the interactive-point loss only until this fraction of training (default 1: throughout)",
    )
    p.add_argument(
        "--text-lr",
        type=float,
        default=1.0,
        help="learning-rate factor of an ILA's text tower (default 1; 0.1 keeps its class texts from collapsing "
        "onto one vector early in training, a state the run does not leave)",
    )
    p.add_argument(
        "--focus",
        default="",
        help="comma-separated class names that get --focus-fraction of the clips (a phase aimed at confused classes)",
    )
    p.add_argument("--focus-fraction", type=float, default=0.0, help="fraction of the clips given to --focus classes")
    p.add_argument(
        "--focus-from",
        type=float,
        default=0.0,
        help="start the focus at this fraction of training (default 0: from the start)",
    )
    p.add_argument(
        "--flush-denormals",
        action="store_true",
        help="flush denormal floats to zero (an ILA run slowed 4x without it; off by default so that the "
        "shipped weights' commands replay exactly)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="run the training steps through torch.compile (needs a C++ compiler; ILA: 0.31 s instead of 0.44 s "
        "per step on 2 threads, after about 70 s of compilation with a cold cache)",
    )
    p.add_argument(
        "--reverse-pairs",
        action="store_true",
        help="half of every batch is the other half played backwards (relabelled): minimal pairs that differ "
        "only in the order of the frames",
    )
    p.add_argument(
        "--aux-mask",
        type=float,
        help="weight of the training-only object-mask loss on early features (default: 1 for the two ConvNeXts "
        "and ILA, 0 for TAdaFormer)",
    )
    p.add_argument(
        "--aux-flow",
        type=float,
        help="weight of its motion term: the same head also predicts the object's motion per cell (default: 1 "
        "for TAdaConvNeXtV2 and ILA, else 0)",
    )


def run(args: argparse.Namespace) -> int:
    import tada

    cfg = tada.get_pretrained_cfg(args.model)
    out = args.out or f"assets/models/{cfg.architecture}"
    # The exact command, rebuilt from the parsed arguments (goes into the model card).
    command = (
        f"python -m tada train --model {cfg.architecture} --steps {args.steps} --batch-size {args.batch_size} "
        f"--lr {args.lr:g} --weight-decay {args.weight_decay:g} --seed {args.seed} --threads {args.threads}"
        + (f" --max-minutes {args.max_minutes:g}" if args.max_minutes else "")
        + (f" --eval-clips {args.eval_clips}" if args.eval_clips else "")
        + (f" --curriculum {args.curriculum:g}" if args.curriculum else "")
        + (f" --aux-mask {args.aux_mask:g}" if args.aux_mask is not None else "")
        + (f" --aux-flow {args.aux_flow:g}" if args.aux_flow is not None else "")
        + (f" --aux-align {args.aux_align:g}" if args.aux_align else "")
        + (f" --aux-points {args.aux_points:g}" if args.aux_points is not None else "")
        + (f" --aux-points-until {args.aux_points_until:g}" if args.aux_points_until != 1.0 else "")
        + (f" --text-lr {args.text_lr:g}" if args.text_lr != 1.0 else "")
        + (f" --focus {shlex.quote(args.focus)} --focus-fraction {args.focus_fraction:g}" if args.focus else "")
        + (f" --focus-from {args.focus_from:g}" if args.focus and args.focus_from else "")
        + (" --reverse-pairs" if args.reverse_pairs else "")
        + (" --flush-denormals" if args.flush_denormals else "")
        + (" --compile" if args.compile else "")
        + (f" --init {shlex.quote(args.init)}" if args.init else "")
        + (f" --out {shlex.quote(args.out)}" if args.out else "")
    )
    train(
        cfg.name,
        out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        seed=args.seed,
        threads=args.threads,
        max_minutes=args.max_minutes,
        save_every=args.save_every,
        log_every=args.log_every,
        eval_clips=args.eval_clips,
        curriculum=args.curriculum,
        aux_mask=args.aux_mask,
        aux_flow=args.aux_flow,
        aux_align=args.aux_align,
        aux_points=args.aux_points,
        aux_points_until=args.aux_points_until,
        text_lr=args.text_lr,
        focus=[c.strip() for c in args.focus.split(",") if c.strip()],
        focus_fraction=args.focus_fraction,
        focus_from=args.focus_from,
        reverse_pairs=args.reverse_pairs,
        flush_denormals=args.flush_denormals,
        compile=args.compile,
        init=args.init,
        command=command,
        log=lambda msg: print(msg, flush=True),
    )
    return 0
