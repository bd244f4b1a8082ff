"""The versions of the toolkit and of the libraries that decide its results, recorded with every run."""
from __future__ import annotations

import platform

import numpy

from nas import __version__


def versions() -> dict[str, str]:
    """Versions of the toolkit and the libraries that decide its results."""
    import fvcore
    import ray
    import torch

    return {"nas-toolkit": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "ray": ray.__version__, "numpy": numpy.__version__,
            "fvcore": getattr(fvcore, "__version__", "unknown")}
