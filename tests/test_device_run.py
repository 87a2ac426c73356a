"""benchmarks/device_run.sh cannot rot: its CPU smoke mode runs every stage on tiny data, and
its resume mode continues the runs a first call returned, and its warm mode starts new runs
from their weights."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def device_run(mode, env):
    return subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "device_run.sh"), mode],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_device_script_runs_every_stage_on_the_cpu_then_resumes_and_warm_starts_its_runs(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = device_run("cpu-smoke", env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "GlimpseVectorEnv  num_envs=64" in (out / "bench_env.txt").read_text()
    assert "GlimpseClutteredMNIST100-v0" in (out / "bench_train.txt").read_text()
    assert "mean policy" in (out / "train.log").read_text()
    with tarfile.open(out / "runs.tgz") as archive:
        names = archive.getnames()
        assert "runs/GlimpseMNIST-v0/best.pt" in names and "runs/GlimpseMNIST-v0/test.json" in names
        assert "runs/GlimpseMNIST-v0/last.pt" not in names  # it comes back apart: last.tgz
        archive.extractall(tmp_path / "back", filter="data")
    with tarfile.open(out / "last.tgz") as archive:
        assert archive.getnames() == ["runs/GlimpseMNIST-v0/last.pt"]
        archive.extractall(tmp_path / "back", filter="data")

    # The second call: what came back, unpacked, continued under the same (emptied) $OUT path.
    shutil.rmtree(out)
    env |= {"SMOKE": "1", "RUNS": str(tmp_path / "back" / "runs"), "LIMIT_S": "200"}
    done = device_run("resume", env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = (out / "train.log").read_text()
    assert "resumed" in log and "after epoch 1" in log and "mean policy" in log
    assert "== stage 1" not in log and not (out / "bench_env.txt").exists()
    with tarfile.open(out / "runs.tgz") as archive:
        metrics = archive.extractfile("runs/GlimpseMNIST-v0/metrics.json")
        assert [row["epoch"] for row in json.load(metrics)] == [1, 2]

    # The warm mode: new runs from the weights of what came back (the resumed run's best.pt).
    with tarfile.open(out / "runs.tgz") as archive:
        archive.extractall(tmp_path / "again", filter="data")
    shutil.rmtree(out)
    env |= {"RUNS": str(tmp_path / "again" / "runs"), "WARM_LR": "1e-3"}
    done = device_run("warm", env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = (out / "train.log").read_text()
    assert "initialising the network from" in log and "mean policy" in log
    assert not (out / "init").exists()  # the copies of the starting weights do not come back
    with tarfile.open(out / "runs.tgz") as archive:
        metrics = archive.extractfile("runs/GlimpseMNIST-v0/metrics.json")
        rows = json.load(metrics)
        assert [row["epoch"] for row in rows] == [1] and rows[0]["lr"] == 1e-3
