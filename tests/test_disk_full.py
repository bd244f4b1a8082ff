"""A disk that fills up in the middle of a search and of a training: one line on stderr, exit 1, every record
written before intact, and --resume completes once there is space again. On a real, small filesystem (a tmpfs
mounted for the test); skipped where this machine does not let the test mount one (mounting needs root)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # a search and a training each filled up and resumed: about three minutes

DATA = "synthetic:classes=3,images=1000"  # 200 held-out images: no warning about a small split


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs at tmp_path/disk; ``grow(mb)`` makes room; unmounted at the end."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount)")

    def grow(megabytes: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={megabytes}m", str(disk)], check=True)

    yield disk, grow
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _command(name: str, *argv: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / name
    return subprocess.run([str(script), *argv], capture_output=True, text=True, timeout=900)


def test_a_search_on_a_full_disk_stops_in_one_line_keeps_its_rows_and_resumes(small_disk):
    disk, grow = small_disk
    run = disk / "run"
    done = _command("nas-search", "--target-flops", "20M", "--resolution", "64", "--space", "mnasnet", "--flops-window", "0,inf",
                    "--data", DATA, "--proxy-resolution", "16", "--trials", "30", "--steps", "2", "--batch-size", "16",
                    "--concurrency", "1", "--cpus-per-trial", "1", "--no-cache", "--out", str(run))
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "no space left on device" in done.stderr and "Traceback" not in done.stderr
    before = pd.read_csv(run / "trials.csv")
    assert 0 < len(before) < 30 and before["trial"].is_unique and set(before["status"]) <= {"ok", "stopped"}
    grow(30)
    resumed = _command("nas-search", "--resume", "--out", str(run))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = pd.read_csv(run / "trials.csv")
    assert len(after) == 30 and after["trial"].is_unique
    pd.testing.assert_frame_equal(after.head(len(before)), before)  # every row written before, unchanged


def test_a_training_on_a_full_disk_stops_in_one_line_and_resumes(small_disk):
    disk, grow = small_disk
    out = disk / "train"
    spec = Path(__file__).resolve().parents[1] / "search_spaces/references/mobilenet_v2.json"
    done = _command("nas-train", str(spec), "--data", DATA, "--resolution", "32", "--epochs", "2",
                    "--batch-size", "32", "--out", str(out))
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "no space left on device" in done.stderr and "Traceback" not in done.stderr
    grow(300)  # three checkpoints of MobileNetV2 with its optimizer state: about 110 MB
    resumed = _command("nas-train", "--resume", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (out / "result.json").is_file() and len(pd.read_csv(out / "metrics.csv")) == 2
