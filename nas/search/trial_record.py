"""The record of one candidate of a search: one row of ``trials.csv``, its schema, and its CSV form.

``TrialRecord``'s keys, in order, are the file's columns (later keys are appended, never reordered:
shared/DESIGN.md). ``status``: ok | failed | stopped (by the scheduler, at ``steps``) | screened (by the
window, never trained); ``source``: trained | cache | screened; ``latency_ms``: the latency predicted by the
search's table (empty without one); ``final_loss``, ``train_loss`` (the mean training loss over every step):
empty when none was measured; ``resolution``: the input size the candidate runs at (empty in rows of older
versions: the search's ``resolution``); ``width_fit``: the factor its widths were fitted by (empty: not fitted).
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable, TypedDict

from nas.engine.job import Measurement
from search_spaces.spec import ArchSpec

EVALUATED = ("ok", "stopped")  # statuses with a measured accuracy (a stopped trial's is its last rung's)


class TrialRecord(TypedDict):
    trial: int
    trial_id: str
    choices: list[int]
    summary: str
    block_strings: list[str]
    flops: int
    params: int
    accuracy: float
    reward: float
    status: str
    reason: str
    seconds: float
    train_seconds: float
    images_per_second: float
    final_loss: float | str
    source: str
    steps: int
    latency_ms: float | str
    train_loss: float | str
    resolution: int | str
    width_fit: float | str


COLUMNS = list(TrialRecord.__annotations__)
Score = Callable[[float, float, float], float]  # (accuracy, FLOPs, latency ms) -> reward


def trial_record(trial: int, trial_id: str, choices: list[int], spec: ArchSpec, measured: Measurement, source: str,
                 score: Score, latency_ms: float | None = None, status: str | None = None) -> TrialRecord:
    """The record of candidate ``choices`` (decoded: ``spec``) from its measurement, scored on the driver with
    ``score``. A measurement
    that is not final became ``stopped`` (the scheduler ended it at a rung); ``status`` overrides (screened)."""
    status = status or ("stopped" if measured.ok and not measured.final else measured.status)
    accuracy = float(measured.accuracy or 0.0) if status in EVALUATED else 0.0
    flops = int(measured.flops or 0)
    latency = round(float(latency_ms or 0.0), 4)  # as recorded: rescoring the record gives the same reward
    reward = score(accuracy, flops, latency) if status in EVALUATED else 0.0
    return {
        "trial": trial, "trial_id": trial_id, "choices": list(choices),
        "summary": spec.notation(),
        "block_strings": list(spec.block_strings), "flops": flops, "params": int(measured.params or 0),
        "accuracy": accuracy, "reward": reward if math.isfinite(reward) else 0.0, "status": status,
        "reason": measured.reason or "", "seconds": round(float(measured.seconds or 0.0), 2),
        "train_seconds": round(float(measured.train_seconds or 0.0), 2),
        "images_per_second": round(float(measured.images_per_second or 0.0), 1),
        "final_loss": "" if measured.final_loss is None else measured.final_loss, "source": source,
        "steps": int(measured.steps or 0), "latency_ms": latency or "",
        "train_loss": "" if measured.train_loss is None else round(float(measured.train_loss), 5),
        "resolution": spec.resolution, "width_fit": spec.provenance.get("width_fit", ""),
    }


def csv_row(record: TrialRecord) -> dict[str, Any]:
    """The record as the CSV writer takes it: choices as JSON, block strings space-separated."""
    return dict(record, choices=json.dumps(list(record["choices"])),
                block_strings=" ".join(record.get("block_strings") or []))


def _number(text: str) -> float | str:
    return float(text) if text not in ("", None) else ""


def from_csv_row(row: dict[str, str]) -> TrialRecord:
    """A record from a row of trials.csv as ``csv.DictReader`` gives it; columns an older version did not
    write take their defaults (source ``trained``, no latency)."""
    def get(name: str) -> str:
        value = row.get(name)
        return "" if value is None else value

    return {
        "trial": int(get("trial")), "trial_id": get("trial_id"), "choices": list(json.loads(get("choices"))),
        "summary": get("summary"), "block_strings": get("block_strings").split(),
        "flops": int(float(get("flops") or 0)),
        "params": int(float(get("params") or 0)), "accuracy": float(get("accuracy") or 0.0),
        "reward": float(get("reward") or 0.0), "status": get("status"), "reason": get("reason"),
        "seconds": float(get("seconds") or 0.0), "train_seconds": float(get("train_seconds") or 0.0),
        "images_per_second": float(get("images_per_second") or 0.0), "final_loss": _number(get("final_loss")),
        "source": get("source") or "trained", "steps": int(float(get("steps") or 0)),
        "latency_ms": _number(get("latency_ms")), "train_loss": _number(get("train_loss")),
        "resolution": int(float(get("resolution"))) if get("resolution") else "",
        "width_fit": _number(get("width_fit")),
    }
