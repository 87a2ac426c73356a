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

#: The starting point of every algorithm (SB3's defaults but a batch of 64 envs).
BASE: dict[str, dict[str, Any]] = {
    "ppo": {"learning_rate": 3e-4, "n_steps": 128, "batch_size": 2048, "ent_coef": 0.0,
            "grid": 4, "n_envs": 64},
    "a2c": {"learning_rate": 7e-4, "n_steps": 5, "ent_coef": 0.0, "grid": 4, "n_envs": 64},
}  # fmt: skip
#: Stage 1: the learning rates tried (the setting that moved the error most in a first look).
LEARNING_RATES: dict[str, list[float]] = {"ppo": [1e-3, 3e-3, 1e-2], "a2c": [2e-3, 5e-3, 1e-2]}
#: Stage 2, from the base with stage 1's best learning rate: each setting changed alone.
TRIALS: dict[str, dict[str, list[Any]]] = {
    "ppo": {"n_steps": [32], "batch_size": [512], "ent_coef": [0.01], "grid": [7],
            "n_envs": [16]},
    "a2c": {"n_steps": [16], "ent_coef": [0.01], "grid": [7], "n_envs": [16]},
}  # fmt: skip


@dataclass
class Args:
    """A small one-factor-at-a-time sweep of SB3 hyperparameters."""

    env: compare_agents.EnvId = "GlimpseMNIST-v0"
    """the task"""
    algos: tuple[Literal["ppo", "a2c"], ...] = ("ppo", "a2c")
    """algorithms to sweep"""
    steps: int = 300_000
    """env steps per trial"""
    seeds: tuple[int, ...] = (0, 1)
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


def stage_one(algo: str) -> list[tuple[str, dict[str, Any]]]:
    """``(label, settings)``: the base, then each other learning rate."""
    out = [("base", dict(BASE[algo]))]
    for rate in LEARNING_RATES[algo]:
        out.append((f"learning_rate={rate:g}", {**BASE[algo], "learning_rate": rate}))
    return out


def stage_two(algo: str, base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(label, settings)``: each setting of ``TRIALS`` changed alone from ``base``."""
    return [
        (f"lr {base['learning_rate']:g}, {key}={value}", {**base, key: value})
        for key, values in TRIALS[algo].items()
        for value in values
    ]


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
    folder = pathlib.Path(args.out) / args.env.removesuffix("-v0") / f"sweep_{args.steps}"
    lines = [
        f"# SB3 hyperparameter sweep on {args.env}",
        "",
        f"`python benchmarks/sb3_sweep.py --algos {' '.join(args.algos)} --steps {args.steps}"
        f" --seeds {' '.join(map(str, args.seeds))}` ({args.steps:,} env steps per trial, "
        f"test error on the first {args.eval_images} fixed test images, deterministic policy, "
        f"mean over seeds {list(args.seeds)}; CPU, {args.threads} thread). One setting changes "
        "per row: stage 1 tries learning rates from the base, stage 2 changes each other "
        "setting alone from the base with stage 1's best rate; the benchmark's defaults "
        "(`benchmarks/compare_agents.py`, `SB3_HYPERPARAMS`) take the winners.",
        "",
        "| algorithm | trial | test error (%) | sampled (%) | env steps/s |",
        "|:--|:--|--:|--:|--:|",
    ]

    def score(algo: str, label: str, settings: dict[str, Any]) -> float:
        finals = []
        for seed in args.seeds:
            name = f"{algo}_{label.replace(', ', '_').replace(' ', '')}_s{seed}"
            print(f"{name}:", flush=True)
            # ``overrides`` replace SB3_HYPERPARAMS too: the sweep starts from its BASE.
            curve = compare_agents.run_cell(bench, algo, seed, folder, settings, name)
            finals.append(curve[-1])
        error = float(np.mean([final["test_error"] for final in finals]))
        sampled = np.mean([final["test_error_sampled"] for final in finals])
        speed = np.mean([final["env_steps"] / final["seconds"] for final in finals])
        lines.append(f"| {algo} | {label} | {error:.2f} | {sampled:.2f} | {speed:,.0f} |")
        print(lines[-1], flush=True)
        return error

    for algo in args.algos:
        errors = {label: (score(algo, label, s), s) for label, s in stage_one(algo)}
        best = min(errors.values(), key=lambda pair: pair[0])[1]
        results = [(errors[label][0], label, s) for label, s in stage_one(algo)]
        for label, settings in stage_two(algo, best):
            results.append((score(algo, label, settings), label, settings))
        winner = min(results, key=lambda item: item[0])
        lines.append(f"| {algo} | **winner: {winner[1]}** | {winner[0]:.2f} | | |")
    table = "\n".join(lines) + "\n"
    pathlib.Path(args.table).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.table).write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
