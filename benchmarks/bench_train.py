"""Training speed of the RAM agent per task: images/s and the env's share of a step (not a test).

    python benchmarks/bench_train.py                                  # every task, CPU, batch 128
    python benchmarks/bench_train.py --env GlimpseClutteredMNIST100-v0 --batch-sizes 128 1024
    python benchmarks/bench_train.py --device cuda --batch-sizes 1024 8192 --compile

Times ``agents.reinforce.train_epoch`` (rollout on ``GlimpseVectorEnv``, hybrid loss, backward,
Adam) over ``--images`` training images per task and batch size, median of ``--repeats``
passes after a warm-up. The env's share is the time spent inside the env's ``reset`` (canvases,
their summed-area tables, the first glimpse) and ``step`` (the next glimpses) over the whole
pass; on CUDA each env call is synchronised for that, which slows the pass slightly.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import torch

import ram_env
from agents.ram import RAM, RAMConfig
from agents.reinforce import compile_step, train_epoch


class EnvClock:
    """Seconds spent in an env's ``reset`` and ``step`` (instance methods wrapped in place)."""

    def __init__(self, env: gym.vector.VectorEnv, device: str) -> None:
        self.seconds = 0.0
        sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        for name in ("reset", "step"):
            method = getattr(env, name)

            def timed(*args, method=method, **kwargs):
                sync()
                start = time.perf_counter()
                out = method(*args, **kwargs)
                sync()
                self.seconds += time.perf_counter() - start
                return out

            setattr(env, name, timed)


def measure(args: argparse.Namespace, env_id: str, batch_size: int) -> tuple[float, float]:
    """``(images per second, env share of the time)`` of training on ``env_id``."""
    torch.manual_seed(0)
    envs = gym.make_vec(
        env_id, num_envs=batch_size, vectorization_mode="vector_entry_point",
        device=args.device, validate_actions=False,
    ).unwrapped  # fmt: skip
    envs.reset(seed=0)
    config = envs.config
    model = RAM(RAMConfig(glimpse_shape=config.glimpse_shape, core=args.core)).to(args.device)
    if args.compile:
        compile_step(model, torch.device(args.device), batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    noise = torch.Generator(args.device).manual_seed(0)
    images = max(batch_size, args.images // batch_size * batch_size)
    indices = torch.randint(envs.num_images, (images,), device=args.device)
    clock = EnvClock(envs, args.device)
    rates, shares = [], []
    for repeat in range(args.repeats + 1):
        clock.seconds = 0.0
        start = time.perf_counter()
        train_epoch(model, envs, optimizer, indices, 0.05, noise)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if repeat:  # the first pass is a warm-up
            rates.append(images / seconds)
            shares.append(clock.seconds / seconds)
    return statistics.median(rates), statistics.median(shares)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", nargs="+", default=list(ram_env.TASKS), choices=ram_env.TASKS)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--core", choices=("rnn", "lstm"), default="rnn")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--images", type=int, default=10_240, help="images per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network step")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{args.core} core on {args.device} ({torch.get_num_threads()} threads), "
        f"median of {args.repeats} passes of {args.images} images"
    )
    print(f"| {'env':<28} | batch | images/s | env share |")
    print(f"|{'-' * 30}|------:|---------:|----------:|")
    for env_id in args.env:
        for batch in args.batch_sizes:
            rate, share = measure(args, env_id, batch)
            print(f"| {env_id:<28} | {batch:>5} | {rate:>8,.0f} | {100 * share:>8.1f}% |")


if __name__ == "__main__":
    main()
