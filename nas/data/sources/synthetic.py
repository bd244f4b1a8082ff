"""``synthetic`` (default), or ``synthetic:classes=10,images=6000,seed=0``: procedural shapes and textures on
cluttered backgrounds (nas/data/synthetic.py), generated deterministically; 2 to 15 classes."""
from __future__ import annotations

from nas.data.images import DataError, check_size, data_options
from nas.data.sources.base import Source
from nas.data.splits import ImageSplits, held_out
from nas.data.synthetic import MAX_CLASSES as SYNTHETIC_CLASSES, generate


class SyntheticSource(Source):
    prefix, built_in = "synthetic", True

    def load(self, text: str, rest: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
        opts = data_options(rest)
        unknown = set(opts) - {"classes", "images", "seed"}
        if unknown:
            raise DataError(f"--data synthetic: unknown option {sorted(unknown)[0]!r} (classes, images, seed)")
        try:
            classes, images = int(opts.get("classes", 10)), int(opts.get("images", 6000))
            data_seed = int(opts.get("seed", seed))
        except ValueError:
            raise DataError(f"--data {text!r}: options must be integers") from None
        if not 2 <= classes <= SYNTHETIC_CLASSES or images < 2 * classes:
            raise DataError(f"--data {text!r}: classes must be 2..{SYNTHETIC_CLASSES} and images at least 2 per class")
        check_size(images, resolution, f"--data {text!r}")
        x, y = generate(images, resolution, classes, seed=data_seed)
        return held_out(text, x, y, classes, [], resolution, val_fraction, seed,
                         f"synthetic:classes={classes},images={images},seed={data_seed}")
