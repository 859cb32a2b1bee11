"""Behaviour shared by every video classifier in the library."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from tada._pretrained import PretrainedCfg
from tada.labels import get_labels

__all__ = ["VideoClassifier", "cfg_get", "conv_temporal_positions", "route_kernels_from", "route_ratio_from"]


def cfg_get(cfg: dict | None, *path: str):
    """A value deep inside an official config dict (``cfg_get(cfg, "VIDEO", "HEAD", "NUM_CLASSES")``), or None."""
    node = cfg
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def route_ratio_from(official_cfg: dict | None, widths: list[tuple[int, int]]) -> int:
    """The routing reduction ratio: the official config's ``ROUTE_FUNC_R``, checked against the weights.

    ``widths`` are ``(channels in, routing width)`` of every routing function.  Without a config, the
    smallest ratio that gives every routing width (``c // r == routed``) is taken: one narrow stage
    alone cannot tell (6 -> 1 fits 4, 5 and 6), the stages together do.

    Raises:
        ValueError: the config's ratio does not give the weights' routing widths, or no ratio does.
    """

    def fits(r: int) -> bool:
        return all(c // r == routed for c, routed in widths)

    declared = cfg_get(official_cfg, "VIDEO", "BACKBONE", "BRANCH", "ROUTE_FUNC_R")
    if declared:
        ratio = int(declared)
        if not fits(ratio):
            shown = ", ".join(f"{c} -> {routed}" for c, routed in widths[:4])
            raise ValueError(
                f"the checkpoint's config says ROUTE_FUNC_R={ratio}, but its routing widths ({shown}) do not fit it"
            )
        return ratio
    for ratio in range(1, max(c for c, _ in widths) + 1):
        if fits(ratio):
            return ratio
    raise ValueError(f"no routing reduction ratio gives the routing widths of this checkpoint ({widths[:4]})")


def route_kernels_from(official_cfg: dict | None, kernels: tuple[int, int]) -> tuple[int, int]:
    """The routing kernels: the config's ``ROUTE_FUNC_K`` when it has one (checked), else the weights'."""
    declared = cfg_get(official_cfg, "VIDEO", "BACKBONE", "BRANCH", "ROUTE_FUNC_K")
    if declared and tuple(int(k) for k in declared) != tuple(kernels):
        raise ValueError(f"the checkpoint's config says ROUTE_FUNC_K={list(declared)}, its weights {list(kernels)}")
    return tuple(kernels)


def conv_temporal_positions(num_frames: int, kernel: int, stride: int, padding: int) -> list[list[int]]:
    """Input frames covered by each output position of a temporal conv (kernel, stride, padding)."""
    out = (num_frames + 2 * padding - kernel) // stride + 1
    return [
        [f for f in range(t * stride - padding, t * stride - padding + kernel) if 0 <= f < num_frames]
        for t in range(out)
    ]


class VideoClassifier(nn.Module):
    """Base class: ``forward(x) -> logits``, plus a pretrained config and the temporal mapping.

    Subclasses override :meth:`temporal_positions` when their stem changes the temporal resolution,
    and :meth:`default_pretrained_cfg` to describe their own input (family, layout, normalisation).
    ``pretrained_cfg`` is the config attached by :func:`tada._builder.build_model_with_cfg`, or the
    model's own description when it was built without one (e.g. by calling the class).
    """

    #: The family of the class (see :data:`tada._pretrained.FAMILIES`).
    family: ClassVar[str] = "tadaconv"

    def default_pretrained_cfg(self) -> PretrainedCfg:
        """What the model knows about its own input, for a model built without a variant."""
        return PretrainedCfg(
            architecture=type(self).__name__.lower(),
            num_classes=getattr(self, "num_classes", 400),
            num_frames=getattr(self, "num_frames", 16),
            family=self.family,
        )

    @property
    def pretrained_cfg(self) -> PretrainedCfg:
        cfg = self.__dict__.get("_pretrained_cfg")
        return cfg if cfg is not None else self.default_pretrained_cfg()

    @pretrained_cfg.setter
    def pretrained_cfg(self, cfg: PretrainedCfg) -> None:
        self.__dict__["_pretrained_cfg"] = cfg

    def temporal_positions(self, num_input_frames: int) -> list[list[int]]:
        """For each temporal position inside the network, the input frame indices it covers."""
        return [[t] for t in range(num_input_frames)]

    @property
    def labels(self) -> list[str]:
        """Class names of the attached label set (index = class id); ``class <i>`` where the package
        has no list of that length (e.g. K710)."""
        num_classes = getattr(self, "num_classes", None)
        name = self.pretrained_cfg.label_set
        if name:
            try:
                names = get_labels(name)
                if num_classes is None or len(names) == num_classes:
                    return names
            except KeyError:
                pass
        return [f"class {i}" for i in range(num_classes or 0)]
