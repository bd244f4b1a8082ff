"""report.html of a proxy check (its scatter, taus with intervals, verdict) and of a nas-train run (its curves and
final accuracies), each from the run directory's own files."""
from __future__ import annotations

import json
import time
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from nas.files import read_number_rows
from nas.report.diagram import network_svg
from nas.report.page import facts, section, table, write_page
from nas.report.svg import Chart, Series
from search_spaces.spec import load_spec


def _tau(figure: dict[str, Any] | None) -> str:
    if not figure or figure.get("value") is None:
        return "–"
    low, high = figure.get("interval90") or (None, None)
    interval = f" (90% interval {low:.2f} to {high:.2f})" if low is not None and high is not None else ""
    return f"{figure['value']:.3f}{interval}"


def write_proxy_check_report(run_dir: str | Path, live: bool = False) -> Path:
    """(Re)write a proxy check's report.html from proxy_check.csv and (when finished) proxy_check.json;
    ``live``: the check is running (the page reloads itself)."""
    run_dir = Path(run_dir)
    rows = pd.read_csv(run_dir / "proxy_check.csv", keep_default_na=False, na_values=[""])
    figures_path = run_dir / "proxy_check.json"
    figures = json.loads(figures_path.read_text()) if figures_path.is_file() else {}
    state = "finished" if figures else "running" if live else "running or interrupted"
    proxy = rows[(rows["budget"] == "proxy") & (rows["repeat"] == 1) & (rows["status"] == "ok")].set_index("model")
    reference = rows[(rows["budget"] == "reference") & (rows["status"] == "ok")].set_index("model")
    both = proxy.index.intersection(reference.index)
    chart = Chart("proxy against reference accuracy", "proxy accuracy (seed 1)", "reference accuracy")
    for kind in ("sampled", "reference", "from-run"):
        models = [m for m in both if proxy.loc[m, "kind"] == kind]
        if models:
            chart.series.append(Series(kind, proxy.loc[models, "accuracy"].astype(float).tolist(),
                                       reference.loc[models, "accuracy"].astype(float).tolist(),
                                       kind="reference" if kind == "reference" else "ok", radius=4,
                                       titles=[f"{proxy.loc[m, 'name']}: {proxy.loc[m, 'flops'] / 1e6:.0f}M FLOPs, "
                                               f"proxy {proxy.loc[m, 'accuracy']:.3f}, reference "
                                               f"{reference.loc[m, 'accuracy']:.3f}" for m in models]))
    config = figures.get("config", {})
    budget = config.get("proxy", {})
    items = [("status", state), ("models ranked", figures.get("ranked", len(both))),
             ("proxy", f"{budget.get('steps')} steps at {budget.get('proxy_resolution')} px, batch "
                       f"{budget.get('batch_size')}, {budget.get('optimizer')}" if budget else "–"),
             ("reference", (f"the real trainings of {config['reference_table']}" if config.get("reference_table")
                            else f"{config.get('reference_steps')} steps at {config.get('reference_resolution')} px")
              if config else "–"),
             ("data", budget.get("data", "–")),
             ("Kendall tau (accuracy)", _tau(figures.get("accuracy", {}).get("kendall_tau_b"))),
             ("Spearman rho (accuracy)", _tau(figures.get("accuracy", {}).get("spearman_rho"))),
             ("Kendall tau (reward)", _tau(figures.get("reward", {}).get("kendall_tau_b"))),
             ("tau per proxy seed", ", ".join(f"{t:.3f}" for t in figures.get("per_seed_kendall_tau_b") or [] if t
                                              is not None) or "–"),
             ("averaged proxy tau", _tau(figures.get("averaged_proxy", {}).get("kendall_tau_b"))),
             ("seed-to-seed tau", _tau(figures.get("seed_to_seed", {}).get("kendall_tau_b"))),
             ("Kendall tau (table's held-out accuracy)",
              _tau(figures.get("held_out_accuracy", {}).get("kendall_tau_b"))),
             ("cost", _cost(figures.get("seconds"))),
             ("verdict", figures.get("verdict", "not yet: the check has not finished")),
             ("page written", time.strftime("%Y-%m-%d %H:%M:%S"))]
    columns = [c for c in ("model", "name", "kind", "budget", "repeat", "steps", "train_resolution", "flops",
                           "params", "accuracy", "reward", "status", "seconds", "reason") if c in rows.columns]
    sections = [f"<h1>nas-proxy-check: {escape(run_dir.name)}</h1>", facts(items),
                section("Proxy against reference", chart.svg(),
                        note="a faithful proxy puts the points on a rising line; hover a point for its model"),
                section(f"All trainings ({len(rows)})", table(rows.to_dict("records"), columns, "trainings",
                                                              row_class="status"))]
    return write_page(run_dir, f"nas-proxy-check {run_dir.name}", sections, live)


def write_train_report(run_dir: str | Path, live: bool = False) -> Path:
    """(Re)write a nas-train run's report.html from metrics.csv, result.json (when finished) and spec.json;
    ``live``: the training is running (the page reloads itself)."""
    run_dir = Path(run_dir)
    metrics = pd.DataFrame(read_number_rows(run_dir / "metrics.csv"))  # whole rows only: training may be writing
    result_path = run_dir / "result.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    settings = json.loads((run_dir / "train.json").read_text()) if (run_dir / "train.json").is_file() else {}
    running = "running" if live else "running or interrupted: continue with nas-train --resume"
    items: list[tuple[str, Any]] = [("status", "finished" if result else f"{len(metrics)} epochs done ({running})")]
    if result:
        items += [("network", f"{result['spec']}: {result['flops'] / 1e6:.1f}M FLOPs at {result['resolution']} px, "
                              f"{result['params'] / 1e6:.2f}M params"),
                  ("data", result["data"]),
                  ("held-out accuracy", f"{result['val_accuracy']:.4f} (epoch {result['best_epoch']}, "
                                        f"{result['best_weights']} weights)"),
                  ("test accuracy", "–" if result.get("test_accuracy") is None else
                   f"{result['test_accuracy']:.4f} on {result.get('test_images')} images"),
                  ("recipe", ", ".join(f"{k} {v}" for k, v in result.get("recipe", {}).items())),
                  ("workers", result.get("workers"))]
    elif settings:
        items.append(("settings", json.dumps(settings)[:400]))
    items.append(("page written", time.strftime("%Y-%m-%d %H:%M:%S")))
    sections = [f"<h1>nas-train: {escape(run_dir.name)}</h1>", facts(items)]
    if len(metrics):
        epochs = metrics["epoch"].tolist()
        accuracy = Chart("held-out accuracy", "epoch", "accuracy", series=[
            Series("raw weights", epochs, metrics["val_accuracy"].tolist(), kind="line", line=True),
            Series("EMA weights", epochs, metrics["ema_val_accuracy"].tolist(), kind="rival", line=True)])
        loss = Chart("training loss", "epoch", "loss", series=[
            Series("loss", epochs, metrics["loss"].tolist(), kind="line", line=True)])
        sections.append(section("Curves", f'<div class="charts">{accuracy.svg()}{loss.svg()}</div>'))
        rows = [dict(row, epoch=int(row["epoch"])) for row in metrics.to_dict("records")]
        sections.append(section("Epochs", table(rows, list(metrics.columns), "epochs",
                                                decimals={"lr": 6, "images_per_second": 1, "seconds": 1})))
    if (run_dir / "spec.json").is_file():
        spec = load_spec(run_dir / "spec.json")
        resolution = int(result.get("resolution") or spec.resolution)
        sections.append(section("The network", f'<div class="scroll">{network_svg(spec, resolution)}</div>'))
    return write_page(run_dir, f"nas-train {run_dir.name}", sections, live)


def _cost(seconds: dict[str, float] | None) -> str:
    if not seconds:
        return "–"
    text = f"{seconds['proxy_mean']:.1f} s per proxy training"
    return text + (f", {seconds['reference_mean']:.1f} s per reference" if "reference_mean" in seconds else "")
