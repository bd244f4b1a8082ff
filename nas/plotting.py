"""The finishing of every plot the commands write: grid, legend, layout, an atomic write."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.files import atomic_path


def save_plot(fig: Any, ax: Any, path: Path) -> None:
    """Grid, legend, tight layout, then write the figure atomically and free it."""
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
