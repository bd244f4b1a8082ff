"""curves.png: training loss and held-out accuracy (raw and EMA weights) per epoch."""
from __future__ import annotations

from pathlib import Path

from nas.plotting import save_plot
from nas.retrain.progress import read_metrics


def save_curves(metrics: Path, path: Path, title: str) -> None:
    """Plot metrics.csv: accuracy on the left axis, loss on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics)
    if not rows:
        return
    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(epochs, [r["val_accuracy"] for r in rows], "o-", ms=3, label="held-out accuracy (raw)")
    ax.plot(epochs, [r["ema_val_accuracy"] for r in rows], "s-", ms=3, label="held-out accuracy (EMA)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("top-1 accuracy")
    ax.set_title(title)
    loss_ax = ax.twinx()
    loss_ax.plot(epochs, [r["loss"] for r in rows], color="grey", alpha=0.6)
    loss_ax.set_ylabel("training loss")
    ax.plot([], [], color="grey", alpha=0.6, label="training loss")  # in the accuracy axis's legend
    save_plot(fig, ax, path)
