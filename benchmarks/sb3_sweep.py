"""A small sweep of SB3 hyperparameters on a glimpse task, one factor at a time from a base.

    python benchmarks/sb3_sweep.py                         # PPO and A2C on GlimpseMNIST-v0
    python benchmarks/sb3_sweep.py --algos ppo --steps 200000 --seeds 0 1

Each trial is a ``compare_agents`` cell (same training, same fixed test images, resumable and
reused when re-run) with one setting changed from ``BASE`` (learning rate, rollout length,
minibatch, entropy coefficient, fixation grid, number of envs). The table (``docs/sb3_sweep.md``
by default) gives one command and one test error per row; ``compare_agents.SB3_HYPERPARAMS``
holds the winners, so the benchmark's SB3 agents are not a straw man.
"""

from __future__ import annotations

import pathlib
import sys
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import tyro

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import compare_agents

#: The starting point of every algorithm: SB3's defaults but the batch-friendly ones below.
BASE: dict[str, dict[str, Any]] = {
    "ppo": {"learning_rate": 3e-4, "n_steps": 128, "batch_size": 2048, "ent_coef": 0.0,
            "grid": 4, "n_envs": 64},
    "a2c": {"learning_rate": 7e-4, "n_steps": 5, "ent_coef": 0.0, "grid": 4, "n_envs": 64},
    "recurrent-ppo": {"learning_rate": 3e-4, "n_steps": 128, "batch_size": 2048,
                      "ent_coef": 0.0, "grid": 4, "n_envs": 64},
}  # fmt: skip
#: The other values tried for each setting (one at a time).
TRIALS: dict[str, dict[str, list[Any]]] = {
    "ppo": {"learning_rate": [1e-3, 3e-3], "n_steps": [32], "batch_size": [512],
            "ent_coef": [0.01], "grid": [7], "n_envs": [16]},
    "a2c": {"learning_rate": [2e-3], "n_steps": [16], "ent_coef": [0.01], "grid": [7],
            "n_envs": [16]},
    "recurrent-ppo": {"learning_rate": [1e-3], "n_steps": [32]},
}  # fmt: skip


@dataclass
class Args:
    """A small one-factor-at-a-time sweep of SB3 hyperparameters."""

    env: compare_agents.EnvId = "GlimpseMNIST-v0"
    """the task"""
    algos: tuple[Literal["ppo", "a2c", "recurrent-ppo"], ...] = ("ppo", "a2c")
    """algorithms to sweep"""
    steps: int = 100_000
    """env steps per trial"""
    seeds: tuple[int, ...] = (0,)
    """seeds per trial (the table gives their mean)"""
    eval_images: int = 1000
    """fixed test images scored at the end of each trial"""
    threads: int | None = 1
    """torch CPU threads"""
    device: str = "cpu"
    """device of the networks and envs"""
    out: str = "benchmarks/results"
    """results root (trials go to <out>/<env>/sweep)"""
    table: str = "docs/sb3_sweep.md"
    """where the table is written"""


def trials(algo: str) -> list[tuple[str, dict[str, Any]]]:
    """``(label, settings)``: the base, then each setting changed alone."""
    out = [("base", dict(BASE[algo]))]
    for key, values in TRIALS[algo].items():
        for value in values:
            out.append((f"{key}={value}", {**BASE[algo], key: value}))
    return out


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(Args, args=argv, prog="sb3_sweep.py", description=__doc__)
    bench = compare_agents.Args(
        env=args.env, seeds=args.seeds, budget="steps", steps=args.steps, points=1,
        eval_images=args.eval_images, device=args.device, threads=args.threads, out=args.out,
    )  # fmt: skip
    bench.check()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    folder = pathlib.Path(args.out) / args.env.removesuffix("-v0") / "sweep"
    lines = [
        f"# SB3 hyperparameter sweep on {args.env}",
        "",
        f"`python benchmarks/sb3_sweep.py --algos {' '.join(args.algos)} --steps {args.steps}"
        f" --seeds {' '.join(map(str, args.seeds))}` ({args.steps:,} env steps per trial, "
        f"test error on the first {args.eval_images} fixed test images, deterministic policy, "
        f"mean over seeds {list(args.seeds)}; CPU, {args.threads} thread). One setting changes "
        "per row from the algorithm's base row; the benchmark's defaults "
        "(`benchmarks/compare_agents.py`, `SB3_HYPERPARAMS`) take the winners.",
        "",
        "| algorithm | trial | test error (%) | sampled (%) | env steps/s |",
        "|:--|:--|--:|--:|--:|",
    ]
    for algo in args.algos:
        for label, settings in trials(algo):
            finals = []
            for seed in args.seeds:
                name = f"{algo}_{label}_s{seed}"
                print(f"{name}:", flush=True)
                # ``overrides`` replace SB3_HYPERPARAMS too: the sweep starts from its BASE.
                overrides = {**settings}
                curve = compare_agents.run_cell(bench, algo, seed, folder, overrides, name)
                finals.append(curve[-1])
            error = np.mean([final["test_error"] for final in finals])
            sampled = np.mean([final["test_error_sampled"] for final in finals])
            speed = np.mean([final["env_steps"] / final["seconds"] for final in finals])
            lines.append(f"| {algo} | {label} | {error:.2f} | {sampled:.2f} | {speed:,.0f} |")
            print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    pathlib.Path(args.table).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.table).write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
