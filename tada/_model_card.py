"""The model card (Hugging Face ``README.md``) of a model folder: one module for every writer.

``convert`` describes where a checkpoint came from (provenance); ``train`` and ``evaluate --record``
describe how a bundled model was trained and how it scores.  Both use :func:`model_card`.
"""

from __future__ import annotations

import json
from typing import Any

from tada._pretrained import PretrainedCfg

__all__ = ["LAB_NOTES", "lab_notes", "model_card", "total_minutes"]

#: Heading of the hand-written section of a trained model's card (what the training runs taught); the
#: writers carry it over when they rewrite a card, so it lives in the card and nowhere else.
LAB_NOTES = "## Lab notes"


def lab_notes(card: str | None) -> str | None:
    """The *Lab notes* section of an existing card (heading included), or None."""
    if not card or f"\n{LAB_NOTES}\n" not in card:
        return None
    start = card.index(f"\n{LAB_NOTES}\n") + 1
    end = card.find("\n## ", start + len(LAB_NOTES))
    return card[start : end if end >= 0 else len(card)].rstrip() + "\n"


def model_card(
    cfg: PretrainedCfg,
    *,
    provenance: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    notes: str | None = None,
) -> str:
    """The card of a converted checkpoint (``provenance``) or of a trained model (``training``, with its
    ``evaluation`` when there is one, and the *Lab notes* section ``notes`` of the card it replaces)."""
    if (provenance is None) == (training is None):
        raise ValueError("a model card describes either a conversion (provenance) or a training run")
    if provenance is not None:
        return _converted_card(cfg, provenance)
    card = _trained_card(cfg.name, cfg, training)
    if notes:  # the lab notes go before the input description, where the bundled cards keep them
        cut = card.index("\n## Input\n")
        card = card[:cut] + "\n" + notes.rstrip() + "\n" + card[cut:]
    return card


def _gdrive_view_url(file_id: str) -> str:
    return f"https://drive.google.com/file/d/{file_id}"


_DATASET_NAMES = {"kinetics400": "Kinetics-400", "ssv2": "Something-Something-v2"}


def _converted_card(cfg: PretrainedCfg, provenance: dict[str, Any]) -> str:
    lines = ["---", "library_name: tada"]
    if cfg.license:
        lines.append(f"license: {cfg.license}")
    lines += ["pipeline_tag: video-classification", "tags:"]
    lines += [f"- {t}" for t in ("video-classification", "action-recognition", cfg.family or "tadaconv", "safetensors")]
    if cfg.label_set in _DATASET_NAMES:
        lines += ["datasets:", f"- {_DATASET_NAMES[cfg.label_set]}"]
    lines.append("---")
    title = cfg.name
    lines += ["", f"# {title}", ""]
    what = f"`{cfg.architecture}` video classifier, {cfg.num_classes} classes"
    if cfg.label_set:
        what += f" (label set `{cfg.label_set}`)"
    lines += [what + ", converted from the official checkpoint to safetensors by TAda Lab.", ""]
    lines += ["## Provenance", ""]
    lines.append(f"- source file: `{provenance['source_file']}` ({provenance['source_format']})")
    lines.append(f"- source sha256: `{provenance['source_sha256']}`")
    if cfg.gdrive_id:
        lines.append(f"- official download: {_gdrive_view_url(cfg.gdrive_id)}")
    if cfg.source:
        lines.append(f"- source: {cfg.source}")
    if cfg.reported_top1 is not None:
        views = f" ({cfg.reported_views} views)" if cfg.reported_views else ""
        lines.append(f"- reported top-1: {cfg.reported_top1}%{views}")
    if provenance.get("overrides"):
        lines.append(f"- construction overrides: `{json.dumps(provenance['overrides'])}`")
    lines.append(f"- converted with {provenance['converted_with']}")
    lines += _input_and_usage(
        cfg,
        [
            'model = tada.create_model("hf-hub:<org>/<repo>")  # or "local-dir:<this folder>"',
            "probs = tada.probabilities(model(clip))",
        ],
    )
    return "\n".join(lines)


def _input_and_usage(cfg: PretrainedCfg, usage: list[str]) -> list[str]:
    """The "Input" and "Usage" sections every card ends with (``usage``: the lines after ``import tada``)."""
    rate = f", rate {cfg.sampling_rate} at {cfg.target_fps} fps" if cfg.sampling_rate else ""
    lines = ["", "## Input", ""]
    lines.append(f"- {cfg.num_frames} frames, `{cfg.sampling}` sampling{rate}, layout `{cfg.input_layout}`")
    lines.append(f"- resize short side to {cfg.test_scale}, centre crop {cfg.crop_size}")
    lines.append(f"- normalise pixels in [0, {cfg.pixel_range:g}] with mean {list(cfg.mean)} and std {list(cfg.std)}")
    if cfg.notes:
        lines += ["", cfg.notes]
    return [*lines, "", "## Usage", "", "```python", "import tada", "", *usage, "```", ""]


def total_minutes(info: dict[str, Any]) -> float:
    """Wall time of a run and of every earlier phase it was initialised from (the training budget)."""
    total, phase = 0.0, info
    while phase:
        total += float(phase.get("minutes") or 0.0)
        phase = phase.get("initialised_from")
    return total


def _trained_card(name: str, cfg: PretrainedCfg, info: dict[str, Any]) -> str:
    ev = info.get("evaluation") or {}
    lines = [
        "---",
        "library_name: tada",
        f"license: {(cfg.license or 'cc0-1.0').lower()}",
        "pipeline_tag: video-classification",
        "tags:",
        "- video-classification",
        "- synthetic",
        "- safetensors",
        "---",
        "",
        f"# {name}",
        "",
        f"`{cfg.architecture}`: {info['params']:,} parameters, {cfg.num_classes} classes (label set "
        f"`{cfg.label_set}`), trained from scratch on CPU on the procedural motion task of TAda Lab "
        "(`tada.motion`: one irregular shape moving left/right/up/down, rotating, growing/shrinking, "
        "approaching then leaving, bouncing or still, over varied backgrounds with distractors, camera "
        "jitter and noise). Not a model of real videos.",
        "",
        "## Training",
        "",
        "```",
        info["command"],
        "```",
        "",
        f"- data: clip stream seed {info['seed']} (fresh clips every step, clip i = "
        f"`generate_clip(clip_seed({info['seed']}, i), clip_label({info['seed']}, i))`), "
        f"{info['steps_done']} steps x batch {info['batch_size']}"
        + (
            f" ({info['batch_size'] // 2} stream clips + the same played backwards) = "
            f"{info['clips_seen']:,} stream clips"
            if info.get("reverse_pairs")
            else f" = {info['clips_seen']:,} clips"
        ),
        f"- AdamW lr {info['lr']} weight decay {info['weight_decay']}, warm-up {info['warmup']:.0%} then cosine, "
        f"label smoothing {info['label_smoothing']}, gradient clipping 1.0"
        + (
            f"; the text tower at {info['text_lr']:g} x that learning rate (its class texts had collapsed onto "
            "one vector early in a run at the full rate, which then stayed at chance)"
            if info.get("text_lr", 1.0) != 1.0
            else ""
        ),
        *(
            [
                f"- curriculum: during the first {info['curriculum']:.0%} of training every other batch was rendered "
                "without distractors, noise and photo backgrounds (same clips otherwise)"
            ]
            if info.get("curriculum")
            else []
        ),
        *(
            [
                f"- auxiliary object-mask loss (weight {info['aux_mask']:g}, training only; the 1x1 conv head is "
                "discarded): early features (first stage / first vision block) predict the fraction of each cell the "
                "moving object covers, from the generator's masks. Without it this model stayed at chance."
            ]
            if info.get("aux_mask")
            else []
        ),
        *(
            [
                f"- the same head also predicts the object's mean motion in each cell (weight {info['aux_flow']:g}, "
                "smooth L1 against the generator's ground-truth flow, `tada.motion.generator.object_flow`)"
            ]
            if info.get("aux_flow")
            else []
        ),
        *(
            [
                f"- ILA's own alignment loss (weight {info['aux_align']:g}, training only, as in the official "
                "training): 1 - cosine between the pooled aligned tokens of each frame pair, summed over layers"
            ]
            if info.get("aux_align")
            else []
        ),
        *(
            [
                f"- interactive-point loss (weight {info['aux_points']:g}, training only, not in the official "
                "training; the model's code path is unchanged, the loss reads the point heads through hooks): "
                "every ILA layer's two points of each adjacent-frame pair are pulled towards the moving object's "
                "true centre in those frames (mean Euclidean distance, from the generator's centres)"
                + (
                    f", only for the first {info['aux_points_until']:.0%} of this phase"
                    if info.get("aux_points_until", 1.0) < 1.0
                    else ""
                )
            ]
            if info.get("aux_points")
            else []
        ),
        *(
            [
                f"- focus: {info['focus_fraction']:.0%} of the clips (evenly spaced in the stream) were given to "
                f"{', '.join(info['focus'])} in turn, the rest kept the stream's balanced labels"
                + (f", from {info['focus_from']:.0%} of training on" if info.get("focus_from") else "")
            ]
            if info.get("focus")
            else []
        ),
        *(
            [
                "- reverse pairs: each batch held half as many stream clips plus the same clips played backwards "
                "(relabelled: left <-> right, clockwise <-> anticlockwise, ...), pairs that differ only in frame order"
            ]
            if info.get("reverse_pairs")
            else []
        ),
        f"- {info['threads']} CPU thread(s), {info['minutes']:.1f} min wall time"
        + (" (training steps through `torch.compile`, compilation included)" if info.get("compiled") else "")
        + f"; final running train accuracy {info['train_acc']:.1%}",
    ]
    prev = info.get("initialised_from")
    while prev:  # every earlier phase, newest first (each one's folder was the next one's --init)
        lines.append(
            f"- initialised from an earlier run of {prev.get('steps_done')} steps x batch {prev.get('batch_size')} "
            f"({prev.get('minutes', 0):.1f} min): `{prev.get('command')}`"
        )
        prev = prev.get("initialised_from")
    if info.get("initialised_from"):
        lines.append(f"- all phases together: {total_minutes(info):.1f} min wall time")
    if info.get("weights_dtype") == "float16":
        lines.append("- weights stored as float16 (size budget); they load into a float32 model")
    if ev:
        lines += [
            "",
            "## Evaluation",
            "",
            f"Held-out clips: stream seed {ev['seed']}, {ev['num_clips']} clips (`python -m tada evaluate`).",
            "",
            f"- top-1: {ev['top1']:.1f} %",
            f"- direction pairs (left/right, cw/ccw, grow/shrink): {ev['pair_acc']:.1f} %",
            f"- frames reversed, scored against the reversed label: {ev['reversed_acc']:.1f} %",
        ]
        if ev.get("reversal_unchanged") is not None:
            lines.append(f"- prediction unchanged when the frames are reversed: {ev['reversal_unchanged']:.1f} %")
        if ev.get("point_dist") is not None:
            lines.append(
                f"- ILA interactive points: mean distance to the object centre {ev['point_dist']:.1f} px "
                f"(uniformly random points: {ev['random_point_dist']:.1f} px"
                + (
                    f"; a fixed point at the frame centre: {ev['centre_point_dist']:.1f} px"
                    if ev.get("centre_point_dist") is not None
                    else ""
                )
                + ")"
            )
        if ev.get("point_pairs_within_patch") is not None:
            lines.append(
                "- ILA adjacent-frame pairs with both points within one patch of the object centre: "
                f"{ev['point_pairs_within_patch']:.1f} % (a fixed point at the frame centre: "
                f"{ev['centre_pairs_within_patch']:.1f} %)"
            )
    lines += _input_and_usage(cfg, [f'model = tada.create_model("{name}", pretrained=True)  # bundled, offline'])
    lines += [
        "Licence: CC0-1.0 (weights trained by TAda Lab on generated data; background photos from "
        "scikit-image are public domain / CC0).",
        "",
    ]
    return "\n".join(lines)
