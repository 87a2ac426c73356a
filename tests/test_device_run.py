"""benchmarks/device_run.sh cannot rot: its CPU smoke mode runs every stage on tiny data, and
its warm mode starts new runs from the weights a first call returned, and its resume mode
continues those."""

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


def test_device_script_runs_every_stage_on_the_cpu_then_warm_starts_and_resumes_its_runs(tmp_path):
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

    # An $OUT that holds results (or a runs/ folder of the user's) is refused, untouched.
    (out / "runs" / "mine").mkdir(parents=True)
    before = sorted(path.name for path in out.rglob("*"))
    done = device_run("cpu-smoke", env)
    assert done.returncode == 2 and "already holds runs" in done.stderr
    assert sorted(path.name for path in out.rglob("*")) == before

    # The second call, warm: new runs from the weights that came back, under the same (emptied)
    # $OUT path, with their own learning rate.
    shutil.rmtree(out)
    env |= {"SMOKE": "1", "RUNS": str(tmp_path / "back" / "runs"), "LIMIT_S": "200"}
    done = device_run("warm", env | {"WARM_LR": "1e-3"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = (out / "train.log").read_text()
    assert "initialising the network from" in log and "validate at" in log
    assert "mean policy" in log and "== stage 1" not in log
    for name in ("runs.tgz", "last.tgz"):
        with tarfile.open(out / name) as archive:
            archive.extractall(tmp_path / "warm", filter="data")
    warm = tmp_path / "warm" / "runs" / "GlimpseMNIST-v0"
    assert [row["lr"] for row in json.loads((warm / "metrics.json").read_text())] == [1e-3]

    # The third call, resume: the warm runs continue (their saved lr and schedule) one epoch.
    shutil.rmtree(out)
    env["RUNS"] = str(tmp_path / "warm" / "runs")
    done = device_run("resume", env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = (out / "train.log").read_text()
    assert "resumed" in log and "after epoch 1" in log and "mean policy" in log
    assert "test failed" not in log and not (out / "bench_env.txt").exists()
    with tarfile.open(out / "runs.tgz") as archive:
        rows = json.load(archive.extractfile("runs/GlimpseMNIST-v0/metrics.json"))
        assert [(row["epoch"], row["lr"]) for row in rows] == [(1, 1e-3), (2, 1e-3)]
