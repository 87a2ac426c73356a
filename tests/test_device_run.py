"""benchmarks/device_run.sh cannot rot: its CPU smoke mode runs every stage on tiny data."""

import os
import pathlib
import subprocess
import sys
import tarfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_device_script_runs_every_stage_on_the_cpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_run.sh"), "cpu-smoke"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "GlimpseVectorEnv  num_envs=64" in (tmp_path / "bench_env.txt").read_text()
    assert "GlimpseClutteredMNIST100-v0" in (tmp_path / "bench_train.txt").read_text()
    assert "mean policy" in (tmp_path / "train.log").read_text()
    with tarfile.open(tmp_path / "runs.tgz") as archive:
        names = archive.getnames()
    assert "runs/GlimpseMNIST-v0/best.pt" in names and "runs/GlimpseMNIST-v0/test.json" in names
