"""The versions of the toolkit and of the libraries that decide its results, recorded with every run."""
from __future__ import annotations

import platform
from importlib import metadata

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


def version_line(prog: str) -> str:
    """What ``--version`` prints: the command, the toolkit's version and the libraries it runs on (read from
    the installed packages' metadata: nothing heavy is imported)."""
    def installed(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    libraries = ", ".join(f"{name} {installed(name)}" for name in ("torch", "ray", "onnxruntime"))
    return f"{prog} {__version__} ({libraries}; python {platform.python_version()})"
