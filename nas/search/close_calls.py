"""How sure a search's pick is: the trained candidates whose proxy reward lies within one standard error of the
winner's, where the proxy's held-out split cannot tell them from it.

On small held-out splits this is most of the top of a search (clothing10: 341 photos, a standard error of 2.7
points; docs/results-real-data.md), and then the pick among them is better made by training them
for real (nas-train) than by the proxy.
"""
from __future__ import annotations

import math
from typing import Mapping

import pandas as pd


def standard_error(accuracy: float, images: int) -> float:
    """The binomial standard error of an accuracy measured on ``images`` held-out images."""
    p = min(max(float(accuracy), 0.0), 1.0)
    return math.sqrt(p * (1 - p) / max(int(images), 1))


def close_to_best(trials: pd.DataFrame, held_out_images: int) -> tuple[pd.DataFrame, float]:
    """The fully trained candidates (status ok) whose reward is within one standard error of the best
    candidate's, best first (the best itself included), and that standard error in accuracy. The error is the
    best's accuracy's, carried to reward by its reward/accuracy factor (the FLOPs term)."""
    ok = trials[trials["status"] == "ok"].sort_values(["reward", "trial"], ascending=[False, True])
    if ok.empty:
        return ok, 0.0
    best = ok.iloc[0]
    error = standard_error(best["accuracy"], held_out_images)
    factor = best["reward"] / best["accuracy"] if best["accuracy"] > 0 else 1.0
    return ok[ok["reward"] >= best["reward"] - error * factor], error


def close_call_line(trials: pd.DataFrame, held_out_images: int,
                    start_points: Mapping[tuple[int, ...], str] | None = None, listed: int = 5,
                    train_command: str | None = None) -> str | None:
    """The lines for the end of a search when other candidates lie within one standard error of the winner
    (None when none does): how many, the error, the trials (start points named), and with ``train_command``
    (``nas-train RUN --trial N ...``) how to train them for real."""
    close, error = close_to_best(trials, held_out_images)
    if len(close) < 2:
        return None
    names = []
    for _, row in close.head(listed + 1).iterrows():
        start = (start_points or {}).get(tuple(row["choices"]))
        names.append(f"{int(row['trial'])}" + (f" ({start})" if start else ""))
    more = f" and {len(close) - len(names)} more" if len(close) > len(names) else ""
    trained = int((trials["status"] == "ok").sum())
    line = (f"close call: {len(close) - 1} of the other {trained - 1} trained candidates lie within one standard "
            f"error of the winner (+-{100 * error:.1f} points of accuracy on {held_out_images} held-out images), "
            f"where the proxy cannot tell them apart: trials {', '.join(names)}{more}")
    if train_command:
        line += f"\n  judge them by real training before choosing: {train_command}"
    return line
