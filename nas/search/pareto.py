"""pareto.png: accuracy against FLOPs (or predicted latency) of a search's candidates, the front highlighted."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from nas.plotting import pareto_front, save_plot

AXES = {"flops": (1e6, "M", "FLOPs (M, multiply-adds at the target resolution)"),
        "latency_ms": (1.0, " ms", "latency (ms, predicted by the latency table)")}


def plot_pareto(frame: pd.DataFrame, target: float, path: Path, title: str = "",
                window: tuple[float, float] | None = None, x: str = "flops") -> Path | None:
    """Accuracy against FLOPs (or, ``x="latency_ms"``, predicted latency) of the trained candidates, the target
    marked and the Pareto front highlighted; candidates stopped early drawn apart, screened ones as ticks
    along the bottom, the pre-screen's window shaded."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale, unit, label = AXES[x]
    cost = pd.to_numeric(ok[x], errors="coerce").fillna(0).to_numpy() / scale
    accuracy = ok["accuracy"].astype(float).to_numpy()
    front = pareto_front(zip(cost, accuracy))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.scatter(cost, accuracy, s=22, color="#9aa7b8", label="trained")
    stopped = frame[frame["status"] == "stopped"]
    if not stopped.empty:
        ax.scatter(pd.to_numeric(stopped[x], errors="coerce") / scale, stopped["accuracy"].astype(float), s=22,
                   marker="x", color="#8c6bb1", label="stopped early (last rung)")
    screened = frame[frame["status"] == "screened"]
    if not screened.empty:
        ax.scatter(pd.to_numeric(screened[x], errors="coerce") / scale, [0.0] * len(screened), s=30, marker="|",
                   color="#bbbbbb", label=f"screened, not trained ({len(screened)})", clip_on=False)
    if window is not None and window != (0.0, float("inf")):
        largest = float(pd.to_numeric(frame[x], errors="coerce").max())
        right = min(window[1] * target, max(largest, target) * 1.1)
        ax.axvspan(window[0] * target / scale, right / scale, color="#2e4057", alpha=0.06, label="window")
    ordered = sorted(front, key=lambda i: cost[i])
    ax.plot(cost[ordered], accuracy[ordered], "-o", color="#d1495b", ms=6, label="Pareto front")
    ax.axvline(target / scale, color="#2e4057", ls="--", lw=1.2, label=f"target {target / scale:g}{unit}")
    best = ok["reward"].astype(float).idxmax()
    ax.scatter([float(ok.loc[best, x] or 0) / scale], [float(ok.loc[best, "accuracy"])], s=140, marker="*",
               color="#edae49", edgecolor="black", zorder=5, label="best reward")
    ax.set_xlabel(label)
    ax.set_ylabel("proxy accuracy (held out)")
    ax.set_title(title or "Search results")
    save_plot(fig, ax, path)
    return path
