"""A disk that fills up in the middle of a search and of a training: one line on stderr, exit 1, every record
written before intact, and --resume completes once there is space again. On a real, small filesystem: a tmpfs
mounted for the test in a mount namespace of its own (``unshare``, which needs no root where user namespaces
are allowed, as here); skipped only where neither works."""
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # a search and a training each filled up and resumed: about three minutes

DATA = "synthetic:classes=3,images=1000"  # 200 held-out images: no warning about a small split
UNSHARE = ["unshare", "--user", "--map-root-user", "--mount"]


def _can_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run([*UNSHARE, "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


def _on_a_small_disk(tmp_path: Path, size_mb: int, grown_mb: int, first: list[str], then: list[str],
                     keep: list[str]) -> dict[str, str]:
    """Run ``first`` on a ``size_mb`` tmpfs mounted at tmp_path/disk, grow it to ``grown_mb``, run ``then``;
    copy the disk's ``keep`` paths out after each step (to ``<path>.first`` and ``<path>.then``). Returns each
    command's stdout/stderr/exit status, read from files beside the disk."""
    disk, logs = tmp_path / "disk", tmp_path / "logs"
    disk.mkdir()
    logs.mkdir()

    def step(name: str, argv: list[str]) -> str:
        copies = "; ".join(f"cp -r {shlex.quote(str(disk / p))} {shlex.quote(str(logs / (p.replace('/', '_') + '.' + name)))}"
                           f" 2>/dev/null || true" for p in keep)
        return (f"{shlex.join(argv)} > {logs}/{name}.out 2> {logs}/{name}.err; echo $? > {logs}/{name}.rc; "
                f"{copies}")

    script = "; ".join([f"mount -t tmpfs -o size={size_mb}m tmpfs {shlex.quote(str(disk))}", step("first", first),
                        f"mount -o remount,size={grown_mb}m {shlex.quote(str(disk))}", step("then", then)])
    subprocess.run([*UNSHARE, "bash", "-c", script], cwd=tmp_path, timeout=1200, check=True)
    return {f"{name}.{kind}": (logs / f"{name}.{kind}").read_text()
            for name in ("first", "then") for kind in ("out", "err", "rc")} | {"logs": str(logs)}


def _command(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.fixture
def can_mount():
    if not _can_mount():
        pytest.skip("cannot mount a small tmpfs here (unshare with user namespaces, or root, is needed)")


def test_a_search_on_a_full_disk_stops_in_one_line_keeps_its_rows_and_resumes(tmp_path, can_mount):
    run = tmp_path / "disk" / "run"
    done = _on_a_small_disk(
        tmp_path, 1, 30,
        [_command("nas-search"), "--target-flops", "20M", "--resolution", "64", "--space", "mnasnet", "--flops-window",
         "0,inf", "--data", DATA, "--proxy-resolution", "16", "--trials", "30", "--steps", "2", "--batch-size", "16",
         "--concurrency", "1", "--cpus-per-trial", "1", "--no-cache", "--out", str(run)],
        [_command("nas-search"), "--resume", "--out", str(run)], keep=["run/trials.csv"])
    assert done["first.rc"].strip() == "1", done["first.err"][-2000:]
    err = done["first.err"]
    assert err.count("\n") == 1 and "no space left on device" in err and "Traceback" not in err
    logs = Path(done["logs"])
    before = pd.read_csv(logs / "run_trials.csv.first")
    assert 0 < len(before) < 30 and before["trial"].is_unique and set(before["status"]) <= {"ok", "stopped"}
    assert done["then.rc"].strip() == "0", done["then.err"][-2000:]
    after = pd.read_csv(logs / "run_trials.csv.then")
    assert len(after) == 30 and after["trial"].is_unique
    pd.testing.assert_frame_equal(after.head(len(before)), before)  # every row written before, unchanged


def test_a_training_on_a_full_disk_stops_in_one_line_and_resumes(tmp_path, can_mount):
    out = tmp_path / "disk" / "train"
    spec = Path(__file__).resolve().parents[1] / "search_spaces/references/mobilenet_v2.json"
    done = _on_a_small_disk(
        tmp_path, 1, 300,  # three checkpoints of MobileNetV2 with its optimizer state: about 110 MB
        [_command("nas-train"), str(spec), "--data", DATA, "--resolution", "32", "--epochs", "2", "--batch-size", "32",
         "--out", str(out)],
        [_command("nas-train"), "--resume", "--out", str(out)], keep=["train/result.json", "train/metrics.csv"])
    assert done["first.rc"].strip() == "1", done["first.err"][-2000:]
    err = done["first.err"]
    assert err.count("\n") == 1 and "no space left on device" in err and "Traceback" not in err
    assert done["then.rc"].strip() == "0", done["then.err"][-2000:]
    logs = Path(done["logs"])
    assert (logs / "train_result.json.then").is_file() and len(pd.read_csv(logs / "train_metrics.csv.then")) == 2
