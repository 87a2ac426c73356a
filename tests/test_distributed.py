"""Data-parallel training with torchrun (agents/distributed.py, Shards in agents/reinforce.py).

The tests marked ``distributed`` launch ``torchrun --standalone --nproc_per_node=2`` (Gloo on
the CPU, one thread per process) on the tiny synthetic dataset; ``-m "not distributed"``
leaves them out. One module-scoped 2-process run (1 epoch) is shared by the tests; each run
lives in ``<working folder>/run`` (``--ckpt-dir run``), so a copied folder resumes as itself.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import torch

import train_reinforce
from agents.checkpoint import load_checkpoint
from agents.distributed import SINGLE, Group
from agents.reinforce import Shards, shard_seeds

ROOT = pathlib.Path(__file__).resolve().parents[1]
TIMING = {"seconds", "images_per_second", "elapsed_seconds"}
FLAGS = (
    "--train-subset", "96", "--batch-size", "16", "--eval-batch-size", "40", "--M", "2",
    "--core-size", "64", "--glimpse-features", "64", "--lr", "3e-3", "--threads", "1",
    "--plot-every", "0", "--device", "cpu", "--lr-schedule", "plateau",
)  # fmt: skip


def launch(cwd, *program, processes=2):
    """``torchrun --standalone --nproc_per_node=processes *program`` in the working folder
    ``cwd`` (made if missing), one thread per process; its standard output."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={processes}", *program,
    ]  # fmt: skip
    cwd.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def torchrun(cwd, *extra, processes=2):
    """``train_reinforce.py`` with the tests' flags under ``launch``; its standard output."""
    return launch(
        cwd, str(ROOT / "train_reinforce.py"), *FLAGS, "--ckpt-dir", "run", *extra,
        processes=processes,
    )  # fmt: skip


def one_process(cwd, monkeypatch, *extra):
    """The same run in this process (no torchrun), in the working folder ``cwd``."""
    cwd.mkdir(parents=True, exist_ok=True)
    with monkeypatch.context() as patch:
        patch.chdir(cwd)
        return train_reinforce.main([*FLAGS, "--ckpt-dir", "run", *extra])


def history(cwd):
    rows = json.loads((cwd / "run" / "metrics.json").read_text())
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def assert_same_history(a, b):
    """The same metrics per epoch, up to float rounding: each process adds up its own batches'
    statistics before they are summed over the processes, in another order than one process."""
    assert len(history(a)) == len(history(b))
    for row, other in zip(history(a), history(b), strict=True):
        assert row == pytest.approx(other, rel=1e-5, abs=1e-6)


def scores(cwd):
    return json.loads((cwd / "run" / "test.json").read_text())["test_error"]


def assert_same_weights(a, b, exact):
    a, b = load_checkpoint(a / "run" / "last.pt"), load_checkpoint(b / "run" / "last.pt")
    tolerance = {"rtol": 0, "atol": 0} if exact else {"rtol": 1e-5, "atol": 1e-6}
    for name, tensor in a["model"].items():
        torch.testing.assert_close(tensor, b["model"][name], **tolerance)


#: Run by 2 torchrun processes: join the group, build an optimizer (its first use imports
#: torch._dynamo), sum a tensor, leave the group, then write the names of this process's
#: threads to threads_<rank>.json.
CLOSE_SCRIPT = """
import json, os, sys, torch
sys.path.insert(0, sys.argv[1])
from agents.distributed import Group
group = Group.from_environment()
group.start(torch.device("cpu"))
torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
assert group.sum_(torch.ones(2)).tolist() == [2.0, 2.0]
group.close(finished=True)
names = [open(f"/proc/self/task/{task}/comm").read().strip()
         for task in os.listdir("/proc/self/task")]
open(f"threads_{group.rank}.json", "w").write(json.dumps(names))
"""


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """A 2-process run of 1 epoch (plateau schedule, so it may go on): ``(working folder,
    stdout)``."""
    cwd = tmp_path_factory.mktemp("torchrun") / "two"
    return cwd, torchrun(cwd, "--epochs", "1")


def test_without_torchrun_the_group_is_this_process_alone():
    assert Group.from_environment({}) is SINGLE
    assert SINGLE.is_main and not SINGLE.parallel and not SINGLE.launched
    launched = Group.from_environment({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"})
    assert (launched.rank, launched.local_rank, launched.world_size) == (3, 1, 4)
    assert launched.launched and launched.parallel and not launched.is_main
    with pytest.raises(ValueError, match="RANK, LOCAL_RANK, WORLD_SIZE"):
        Group.from_environment({"RANK": "0"})
    with pytest.raises(ValueError, match="not in"):
        Group.from_environment({"RANK": "2", "LOCAL_RANK": "0", "WORLD_SIZE": "2"})
    assert launched.device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="cuda:LOCAL_RANK"):
        launched.device("cuda:0")  # every process of a machine would take the same GPU
    gradient = torch.ones(3)
    assert SINGLE.sum_(gradient) is gradient and SINGLE.broadcast_float(0.5, "cpu") == 0.5


def test_shards_split_every_index_once_and_seed_each_batch_apart():
    indices = torch.arange(10)
    parts = [Group(rank=r, world_size=3).shard(indices) for r in range(3)]
    assert torch.equal(torch.cat(parts), indices) and [len(p) for p in parts] == [4, 3, 3]
    assert len(Group(rank=2, world_size=3).shard(torch.arange(2))) == 0
    shards = [Shards.of_process(Group(rank=r, world_size=2), 3, 1, 0) for r in range(2)]
    assert [s.mine for s in shards] == [range(0, 3), range(3, 6)] and shards[0].count == 6
    seeds = {shard_seeds(1, epoch, step, shard) for epoch in range(2) for step in range(2)
             for shard in range(2)}  # fmt: skip
    assert len(seeds) == 8 and shard_seeds(1, 0, 0, 0) == shard_seeds(1, 0, 0, 0)
    assert all(0 <= seed < 2**63 for pair in seeds for seed in pair)


@pytest.mark.distributed
@pytest.mark.skipif(not pathlib.Path("/proc/self/task").is_dir(), reason="reads Linux /proc")
def test_closing_the_group_ends_its_gloo_threads(tmp_path):
    """``Group.close`` frees the process group, so that no Gloo worker thread outlives it into
    the interpreter's exit, where one could abort the process (agents/distributed.py)."""
    script = tmp_path / "close.py"
    script.write_text(CLOSE_SCRIPT)
    launch(tmp_path, str(script), str(ROOT))
    for rank in range(2):
        threads = json.loads((tmp_path / f"threads_{rank}.json").read_text())
        assert "python" in threads and not any("gloo" in name for name in threads), threads


@pytest.mark.distributed
def test_two_processes_train_as_one_process_with_the_same_global_batch(
    two_processes, tmp_path, monkeypatch
):
    two, out = two_processes
    assert "batch 16 x 2 = 32" in out and "2 processes" in out
    one = tmp_path / "one"
    assert one_process(one, monkeypatch, "--epochs", "1", "--accumulate", "2") == 0
    assert_same_history(two, one)
    assert_same_weights(two, one, exact=False)
    assert scores(two) == scores(one)  # test images split over the processes


@pytest.mark.distributed
def test_only_rank_0_writes_files_and_prints(two_processes):
    two, out = two_processes
    assert [path.name for path in two.iterdir()] == ["run"]
    names = sorted(path.name for path in (two / "run").iterdir())
    events = [name for name in names if name.startswith("events.out.tfevents.")]
    assert len(events) == 1
    assert sorted(set(names) - set(events)) == [
        "best.pt", "last.pt", "metrics.csv", "metrics.json", "test.json",
    ]  # fmt: skip
    assert out.count("test error (%)") == 1 and out.count("best validation accuracy") == 1


@pytest.mark.distributed
def test_a_two_process_run_resumes_exactly_and_on_one_process_with_accumulate(
    two_processes, tmp_path, monkeypatch, capsys
):
    two, _ = two_processes
    straight, resumed, moved = tmp_path / "straight", tmp_path / "resumed", tmp_path / "moved"
    shutil.copytree(two, resumed)
    shutil.copytree(two, moved)
    torchrun(straight, "--epochs", "2")
    torchrun(resumed, "--epochs", "2", "--resume")
    assert history(straight) == history(resumed) and len(history(resumed)) == 2
    assert_same_weights(straight, resumed, exact=True)
    # Another number of processes: the run goes on if the batches per step stay 2.
    assert one_process(moved, monkeypatch, "--epochs", "2", "--resume") == 2
    assert "saved 2 x 1, now 1 x 1: give --accumulate 2" in capsys.readouterr().err
    assert one_process(moved, monkeypatch, "--epochs", "2", "--resume", "--accumulate", "2") == 0
    assert_same_history(moved, straight)
    assert_same_weights(straight, moved, exact=False)
