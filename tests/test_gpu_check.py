"""benchmarks/gpu_check.py, the one-call GPU check, runs end to end here in its CPU dry run."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # a benchmark's dry run: 20-40 s here
def test_gpu_check_dry_run_on_cpu():
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--device", "cpu", "--quick", "--parts", "a,b,c"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env={"PYTHONPATH": str(ROOT),
                                                                                      "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "(a) training at 64 px" in out and "ours efficientnet-b0" in out
    assert "(b) one default proxy candidate" in out
    assert "1 at once:" in out and "2 at once:" in out and "candidates/hour" in out
