"""``csv:FILE``: a CSV of image paths and labels. Columns: path (relative to the CSV's folder, or absolute),
label (a class name or an integer), and optionally split (train, val or test; empty or absent: train).
Classes are the training rows' labels, sorted (integers as they are); rows marked val are held out as given
(without any, a random share of the training rows); rows marked test are read only by nas-train, once.
Images are decoded like an image folder's and cached; one that is missing or broken is skipped with a warning."""
from __future__ import annotations

import csv
from pathlib import Path

from nas.data.decode_cache import decode_files
from nas.data.images import DataError, median_short_side
from nas.data.sources.base import Source, TestSplit, sample
from nas.data.splits import ImageSplits, held_out


class CsvSource(Source):
    prefix, argument = "csv", "FILE"

    def load(self, text: str, rest: str, resolution: int, val_fraction: float, seed: int) -> ImageSplits:
        """The training rows, and the held-out ones as given (or a random share of the training rows)."""
        folder, rows = _csv_rows(rest)
        classes = _csv_classes(rows, rest)
        count = max(classes.values()) + 1
        where = f"csv:{rest}"
        x, y, notes = decode_files(_csv_files(rows, folder, classes, "train"), resolution, where, folder)
        val = _csv_files(rows, folder, classes, "val")
        if not val:
            return held_out(text, x, y, count, notes, resolution, val_fraction, seed)
        x_val, y_val, val_notes = decode_files(val, resolution, where, folder)
        return ImageSplits(text, x, y, x_val, y_val, count, notes + val_notes)

    def load_test(self, rest: str, resolution: int, train: ImageSplits) -> TestSplit | None:
        """The rows marked test, labelled by the training classes (a label the training rows lack: left out, with
        a warning)."""
        folder, rows = _csv_rows(rest)
        classes = _csv_classes(rows, rest)
        tests = [row for row in rows if _csv_split(row) == "test"]
        if not tests:
            return None
        unknown = sorted({row["label"].strip() for row in tests} - set(classes))
        notes = [f"warning: csv:{rest}: test labels {', '.join(unknown)} are not among the training labels: their "
                 f"images are left out"] if unknown else []
        files = _csv_files(rows, folder, classes, "test")
        if not files:
            return None
        x, y, skipped = decode_files(files, resolution, f"csv:{rest} (test)", folder)
        return x, y, notes + skipped

    def stored_resolution(self, rest: str) -> int | None:
        folder, rows = _csv_rows(rest)
        files = [Path(r["path"].strip()) if Path(r["path"].strip()).is_absolute() else folder / r["path"].strip()
                 for r in rows if _csv_split(r) == "train"]
        return median_short_side(sample(files))


CSV_SPLITS = ("train", "val", "test")


def _csv_rows(path: str) -> tuple[Path, list[dict[str, str]]]:
    file = Path(path)
    if not file.is_file():
        raise DataError(f"csv:{path}: no such file")
    try:
        with open(file, newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"csv:{path}: not a readable CSV ({exc})") from None
    missing = [c for c in ("path", "label") if c not in columns]
    if missing:
        raise DataError(f"csv:{path}: needs columns path and label (missing {', '.join(missing)}; found "
                        f"{', '.join(columns) or 'none'})")
    for number, row in enumerate(rows, start=2):
        if (row.get("split") or "train").strip() not in CSV_SPLITS:
            raise DataError(f"csv:{path}: line {number}: split {row.get('split')!r} is not one of "
                            f"{', '.join(CSV_SPLITS)}")
    return file.parent, rows


def _csv_classes(rows: list[dict[str, str]], path: str) -> dict[str, int]:
    """Label text -> class index: the training rows' labels, integers as they are, names sorted."""
    labels = sorted({row["label"].strip() for row in rows if _csv_split(row) != "test"})
    if not labels:
        raise DataError(f"csv:{path}: no training rows")
    if all(label.isdigit() for label in labels):
        return {label: int(label) for label in labels}
    return {label: index for index, label in enumerate(labels)}


def _csv_split(row: dict[str, str]) -> str:
    return (row.get("split") or "train").strip()


def _csv_files(rows: list[dict[str, str]], folder: Path, classes: dict[str, int], which: str) -> list[tuple[int, Path]]:
    files = []
    for row in rows:
        if _csv_split(row) == which and row["label"].strip() in classes:
            image = Path(row["path"].strip())
            files.append((classes[row["label"].strip()], image if image.is_absolute() else folder / image))
    return files
