"""RAM vs Stable-Baselines3 baselines on one glimpse task, each for the same wall-clock budget.

    python benchmarks/compare_agents.py                                  # 60 s per agent
    python benchmarks/compare_agents.py --budget 600 --agents ram recurrent-ppo ppo a2c dqn
    python benchmarks/compare_agents.py --env GlimpseTranslatedMNIST-v0 --device cuda

Every agent trains on the task's training split (all of it: no validation part) for
``--budget`` seconds of training wall-clock, then plays every image of the fixed test split
exactly once; it is a benchmark, not a test.

* ``ram``: the built-in RAM agent with ``train_reinforce.py``'s defaults for the model, std,
  batch size and Adam learning rate (hybrid loss via ``agents.reinforce.train_epoch``), but at
  a constant learning rate: the trainer's cosine schedule is set by a number of epochs, not a
  wall-clock budget. Training runs in chunks of
  batches (about a second each, the last one fitted to the time left) with the clock checked
  between chunks. Env steps: episodes x ``n_glimpses``. Scored with the mean policy
  (``test error``) and with sampled locations, M=1 (``sampled``).
* ``recurrent-ppo``, ``ppo``, ``a2c``, ``dqn``: SB3 on the batched adapter
  (``agents.sb3.make_sb3_vec_env``) with ``train_sb3.py``'s settings for ``--n-envs``;
  ``learn`` stops at the first env step after the budget (a PPO update in progress then
  finishes first). Env steps: ``model.num_timesteps``. Scored by ``evaluate_sb3`` with
  deterministic (``test error``) and sampled (``sampled``) actions. DQN's epsilon decays over
  its first 100k env steps (SB3's default for a 1M-step run).

Model construction (and ``torch.compile`` of RAM on CUDA) is outside the budget. Seeded: the
same command gives the same table up to timing (how many steps fit in the budget).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from dataclasses import replace
from typing import Any

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor

import ram_env
import train_reinforce
import train_sb3
from agents.reinforce import evaluate, train_epoch
from agents.sb3 import ALGORITHMS, algorithm_class, evaluate_sb3, make_sb3_vec_env
from ram_env.core import resolve_device

AGENTS = ("ram", *ALGORITHMS)
DEFAULT_AGENTS = ("ram", "recurrent-ppo", "ppo", "a2c")
#: ``total_timesteps`` handed to SB3's ``learn``: the time budget stops it long before.
UNBOUNDED_TIMESTEPS = 10**9
DQN_EXPLORATION_STEPS = 100_000
#: RAM trains in chunks of batches of about this many seconds between clock checks.
RAM_CHUNK_SECONDS = 1.0
COLUMNS = {
    "agent": "agent",
    "env_steps": "env steps",
    "train_seconds": "train wall-clock (s)",
    "steps_per_second": "env steps/s",
    "test_error": "test error (%)",
    "test_error_sampled": "sampled (%)",
}
FORMATS = {
    "agent": "{}",
    "env_steps": "{}",
    "train_seconds": "{:.1f}",
    "steps_per_second": "{:.0f}",
    "test_error": "{:.2f}",
    "test_error_sampled": "{:.2f}",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="GlimpseMNIST-v0", choices=sorted(ram_env.TASKS))
    parser.add_argument(
        "--agents", nargs="+", choices=AGENTS, default=list(DEFAULT_AGENTS), metavar="AGENT",
        help=f"any of {', '.join(AGENTS)} (default: {' '.join(DEFAULT_AGENTS)})",
    )  # fmt: skip
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per agent")
    parser.add_argument("--n-envs", type=int, default=64, help="SB3 parallel episodes")
    parser.add_argument("--grid", type=int, default=4, help="SB3 fixation grid side G")
    parser.add_argument("--eval-envs", type=int, default=256, help="SB3 parallel test episodes")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda:N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", metavar="PATH", help="also write the settings and rows here")
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error("--budget must be > 0")
    for name in ("n_envs", "grid", "eval_envs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def _row(agent: str, steps: int, seconds: float, error: float, sampled: float) -> dict[str, Any]:
    return {
        "agent": agent,
        "env_steps": int(steps),
        "train_seconds": round(seconds, 2),
        "steps_per_second": round(steps / seconds, 1),
        "test_error": round(error, 2),
        "test_error_sampled": round(sampled, 2),
    }


def run_ram(args: argparse.Namespace) -> dict[str, Any]:
    """Train RAM as ``train_reinforce.py`` does for ``args.budget`` seconds; score on test."""
    ram_args = replace(train_reinforce.Args.for_task(args.env), seed=args.seed, device=args.device)
    ram_args.check()
    config = train_reinforce.run_config(ram_args)
    device = resolve_device(args.device)
    seed, batch, std = config["seed"], config["batch_size"], config["std"]
    torch.manual_seed(seed)
    env = train_reinforce.make_env(config, "train", batch, device)
    env.reset(seed=seed)
    train_images = torch.arange(env.unwrapped.num_images)  # all of them: no validation
    model = train_reinforce.build_model(config, device)
    train_reinforce.maybe_compile(model, config["compile"], device, batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    noise = torch.Generator(device).manual_seed(seed)
    shuffle = torch.Generator().manual_seed(seed)
    per_epoch = len(train_images) // batch
    order, position, batches, stats = None, per_epoch, 0, {}
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < args.budget:
        if position == per_epoch:  # a fresh shuffle per epoch, as train_reinforce.py does
            order = train_images[torch.randperm(len(train_images), generator=shuffle)]
            order, position = order.to(device), 0
        count = 1
        if batches:  # about RAM_CHUNK_SECONDS of batches, and no more than the time left
            per_batch = elapsed / batches
            count = int(min(RAM_CHUNK_SECONDS, args.budget - elapsed) / per_batch)
        count = max(1, min(count, per_epoch - position))
        chunk = order[position * batch : (position + count) * batch]
        stats = train_epoch(model, env, optimizer, chunk, std, noise)  # floats: synchronised
        position += count
        batches += count
    seconds = time.perf_counter() - start
    env.close()
    test_env = train_reinforce.make_env(config, "test", ram_args.eval_batch_size, device)
    test_env.reset(seed=seed)
    indices = torch.arange(test_env.unwrapped.num_images, device=device)
    mean = evaluate(model, test_env, indices, 1, std, seed, mean_policy=True)
    sampled = evaluate(model, test_env, indices, 1, std, seed)
    test_env.close()
    episodes = batches * batch
    steps = episodes * config["env_kwargs"]["n_glimpses"]
    row = _row("ram", steps, seconds, 100 * (1 - mean), 100 * (1 - sampled))
    return {
        **row,
        "episodes": episodes,
        "epochs": round(batches / per_epoch, 3),
        "last_chunk_train_accuracy": round(stats["accuracy"], 4),
        "test_images": len(indices),
    }


class TimeBudget(BaseCallback):
    """Stops ``learn`` at the first env step after ``seconds`` of training."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = 0.0

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()

    def _on_step(self) -> bool:
        return time.perf_counter() - self.start < self.seconds


def run_sb3(algo: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train an SB3 algorithm with ``train_sb3.py``'s settings for ``args.budget`` seconds."""
    sb3_args = train_sb3.Args(
        algo=algo, env=args.env, grid=args.grid, seed=args.seed, device=args.device,
        n_envs=args.n_envs, timesteps=UNBOUNDED_TIMESTEPS, eval_envs=args.eval_envs,
    )  # fmt: skip
    sb3_args.check()
    model_device, env_device = train_sb3.resolve_devices(sb3_args)
    kwargs = train_sb3.algorithm_kwargs(algo, sb3_args)
    if algo == "dqn":
        kwargs["exploration_fraction"] = DQN_EXPLORATION_STEPS / UNBOUNDED_TIMESTEPS
    vec = make_sb3_vec_env(
        args.env, args.n_envs, args.grid, env_device, seed=args.seed, split="train"
    )
    cls, policy = algorithm_class(algo)
    model = cls(policy, VecMonitor(vec), seed=args.seed, device=model_device, verbose=0, **kwargs)
    budget = TimeBudget(args.budget)
    model.learn(UNBOUNDED_TIMESTEPS, callback=budget)
    seconds = time.perf_counter() - budget.start
    model.env.close()
    scores = {
        deterministic: evaluate_sb3(
            model, args.env, {}, "test", None, args.eval_envs, env_device, deterministic, args.seed
        )
        for deterministic in (True, False)
    }
    row = _row(
        algo, model.num_timesteps, seconds, 100 * (1 - scores[True]), 100 * (1 - scores[False])
    )
    return {**row, "model_device": model_device, "env_device": env_device}


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS.values()) + " |",
        "|" + "|".join(":--" if key == "agent" else "--:" for key in COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(FORMATS[key].format(row[key]) for key in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{args.env}: {args.budget:g} s of training per agent on {resolve_device(args.device)}, "
        f"seed {args.seed}, {torch.get_num_threads()} torch threads, SB3 n_envs {args.n_envs}",
        flush=True,
    )
    rows = []
    for agent in args.agents:
        print(f"training {agent} ...", flush=True)
        rows.append(run_ram(args) if agent == "ram" else run_sb3(agent, args))
        row = rows[-1]
        print(
            f"  {row['env_steps']} env steps in {row['train_seconds']:.1f} s, test error "
            f"{row['test_error']:.2f}% (sampled {row['test_error_sampled']:.2f}%)",
            flush=True,
        )
    print(markdown_table(rows))
    if args.json:
        settings = {key: value for key, value in vars(args).items() if key != "json"}
        payload = {"settings": settings, "threads": torch.get_num_threads(), "rows": rows}
        pathlib.Path(args.json).write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
