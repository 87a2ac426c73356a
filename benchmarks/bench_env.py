"""Environment speed: single-env steps/s and vector-env glimpses/s (not a test).

    python benchmarks/bench_env.py                       # CPU, the issue's sizes
    python benchmarks/bench_env.py --device cuda --vector-sizes 1024 16384 65536

Single env: ``GlimpseEnv`` with random actions against Gymnasium's ``CartPole-v1`` for scale.
Vector env: ``GlimpseVectorEnv`` with random actions generated on the device, against
``gymnasium.vector.SyncVectorEnv`` over single ``GlimpseEnv`` copies. One glimpse is one
sub-env step. Every figure is the median of ``--repeats`` timed runs after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch

import ram_env  # noqa: F401  (registers the ids)


def median_rate(run, count: int, repeats: int) -> float:
    """Median of ``count / seconds`` over ``repeats`` calls of ``run()`` (after one warm-up)."""
    run()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def single_env_rate(env_id: str, steps: int, repeats: int) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]

    def run():
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()

    return median_rate(run, steps, repeats)


def vector_env_rate(env_id: str, num_envs: int, steps: int, repeats: int, device: str) -> float:
    envs = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", device=device,
        validate_actions=False,
    )  # fmt: skip
    envs.reset(seed=0)
    generator = torch.Generator(device).manual_seed(0)
    location = torch.rand(steps, num_envs, 2, generator=generator, device=device) * 2 - 1
    # The second action: a label (digit tasks) or a paddle move (Catch).
    key, high = ("move", 3) if "move" in envs.single_action_space.spaces else ("label", 10)
    other = torch.randint(high, (steps, num_envs), generator=generator, device=device)

    def run():
        for t in range(steps):
            envs.step({"location": location[t], key: other[t]})
        if envs.device.type == "cuda":
            torch.cuda.synchronize(envs.device)

    return median_rate(run, steps * num_envs, repeats)


def sync_vector_rate(env_id: str, num_envs: int, steps: int, repeats: int) -> float:
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync")
    envs.reset(seed=0)
    envs.action_space.seed(0)
    actions = [envs.action_space.sample() for _ in range(steps)]

    def run():
        for action in actions:
            envs.step(action)

    return median_rate(run, steps * num_envs, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="GlimpseMNIST-v0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--vector-sizes", type=int, nargs="+", default=[1, 64, 1024, 16384])
    parser.add_argument("--sync-sizes", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--single-steps", type=int, default=2000, help="steps per single-env run")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{args.env} on {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print("\nsingle env, random actions (steps/s)")
    for env_id in (args.env, "CartPole-v1"):
        print(f"  {env_id:<28} {single_env_rate(env_id, args.single_steps, args.repeats):>14,.0f}")
    print("\nvector env, random actions (glimpses/s = sub-env steps/s)")
    vector = {}
    for num_envs in args.vector_sizes:
        steps = max(12, min(600, 200_000 // num_envs))
        vector[num_envs] = vector_env_rate(args.env, num_envs, steps, args.repeats, args.device)
        print(f"  GlimpseVectorEnv  num_envs={num_envs:<6} {vector[num_envs]:>14,.0f}")
    if args.device == "cpu":
        for num_envs in args.sync_sizes:
            steps = max(6, 6000 // num_envs)
            rate = sync_vector_rate(args.env, num_envs, steps, args.repeats)
            ratio = (
                f"  (GlimpseVectorEnv is {vector[num_envs] / rate:,.0f}x)"
                if num_envs in vector
                else ""
            )
            print(f"  SyncVectorEnv     num_envs={num_envs:<6} {rate:>14,.0f}{ratio}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
