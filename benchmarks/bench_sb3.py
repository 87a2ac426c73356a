"""Steps/s of SB3 rollout collection: the batched adapter vs DummyVecEnv over wrapped envs.

For each algorithm (PPO, RecurrentPPO) and number of envs, times ``collect_rollouts`` (the
acting half of ``model.learn``: policy forward, env step, rollout buffer) on

* ``GlimpseSB3VecEnv`` (``agents.sb3``): one ``GlimpseVectorEnv`` with N episodes, and
* ``DummyVecEnv`` over N ``DiscreteGlimpseActions(gymnasium.make(env_id))``,

both under ``VecMonitor`` as in training, plus the bare env stepping with random actions.

    python benchmarks/bench_sb3.py                       # 16 and 256 envs, CPU, 1 thread
    python benchmarks/bench_sb3.py --n-envs 16 256 1024 --device cuda
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import ram_env  # noqa: F401
from agents.sb3 import algorithm_class, make_sb3_vec_env
from ram_env.wrappers import make_discrete_env


def make_env(kind: str, env_id: str, n_envs: int, grid: int, device: str):
    if kind == "adapter":
        return VecMonitor(make_sb3_vec_env(env_id, n_envs, grid, device))
    return VecMonitor(
        DummyVecEnv([lambda: make_discrete_env(env_id, grid, device=device)] * n_envs)
    )


def env_steps_per_second(env, transitions: int) -> float:
    n = env.num_envs
    rng = np.random.default_rng(0)
    actions = rng.integers(env.action_space.n, size=(max(transitions // n, 1) + 2, n))
    env.seed(0)
    env.reset()
    env.step(actions[0])
    start = time.perf_counter()
    for a in actions[2:]:
        env.step(a)
    return (len(actions) - 2) * n / (time.perf_counter() - start)


def collect_steps_per_second(algo: str, env, transitions: int, device: str) -> float:
    cls, policy = algorithm_class(algo)
    n_steps = max(transitions // env.num_envs, 4)
    model = cls(policy, env, n_steps=n_steps, batch_size=64, seed=0, device=device)
    _, callback = model._setup_learn(10**9, callback=None)
    callback.on_training_start(locals(), globals())
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=4)  # warm-up
    start = time.perf_counter()
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=n_steps)
    return n_steps * env.num_envs / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="GlimpseMNIST-v0")
    parser.add_argument("--n-envs", type=int, nargs="+", default=[16, 256])
    parser.add_argument(
        "--algos",
        nargs="+",
        default=["ppo", "recurrent-ppo"],
        choices=["ppo", "recurrent-ppo"],
        help="on-policy algorithms (their rollout collection is what is timed)",
    )
    parser.add_argument("--grid", type=int, default=4)
    parser.add_argument("--transitions", type=int, default=4096, help="per measurement")
    parser.add_argument("--device", default="cpu", help="model device")
    parser.add_argument("--env-device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    print(
        f"{args.env}, grid {args.grid}, model on {args.device}, env on {args.env_device}, "
        f"torch threads {args.threads}, {args.transitions} transitions per measurement"
    )
    header = f"{'what':<22}{'n_envs':>7}{'adapter':>12}{'DummyVecEnv':>13}{'ratio':>8}"
    print(header + "   (steps/s)")
    print("-" * len(header))
    for n_envs in args.n_envs:
        rows = [("env.step (random)", None), *[(f"collect {a}", a) for a in args.algos]]
        for label, algo in rows:
            rates = []
            for kind in ("adapter", "dummy"):
                env = make_env(kind, args.env, n_envs, args.grid, args.env_device)
                if algo is None:
                    rates.append(env_steps_per_second(env, args.transitions))
                else:
                    rates.append(collect_steps_per_second(algo, env, args.transitions, args.device))
                env.close()
            print(
                f"{label:<22}{n_envs:>7}{rates[0]:>12.0f}{rates[1]:>13.0f}"
                f"{rates[0] / rates[1]:>7.1f}x",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
