"""The finishing of every plot the commands write: grid, legend, layout, an atomic write."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

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


def pareto_front(points: Iterable[tuple[float, float]]) -> list[int]:
    """Indices of the points (flops, accuracy) not dominated by another (fewer FLOPs and higher accuracy)."""
    points = list(points)
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -float("inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front
