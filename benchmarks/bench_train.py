"""Training speed of the RAM agent: images/s of hybrid-REINFORCE training (not a test).

    python benchmarks/bench_train.py                               # CPU, batch 128 and larger
    python benchmarks/bench_train.py --device cuda --batch-sizes 128 1024 8192

Times ``agents.reinforce.train_epoch`` (rollout on ``GlimpseVectorEnv``, loss, backward, Adam)
over ``--images`` training images per batch size and reports the median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import torch

import ram_env  # noqa: F401  (registers the ids)
from agents.ram import RAM, RAMConfig
from agents.reinforce import compile_step, train_epoch


def images_per_second(args: argparse.Namespace, batch_size: int) -> float:
    torch.manual_seed(0)
    envs = gym.make_vec(
        args.env, num_envs=batch_size, vectorization_mode="vector_entry_point",
        device=args.device, validate_actions=False,
    )  # fmt: skip
    envs.reset(seed=0)
    config = envs.unwrapped.config
    model = RAM(RAMConfig(glimpse_shape=config.glimpse_shape, core=args.core)).to(args.device)
    if args.compile:
        compile_step(model, torch.device(args.device), batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    noise = torch.Generator(args.device).manual_seed(0)
    images = max(batch_size, args.images // batch_size * batch_size)
    indices = torch.randint(envs.unwrapped.core.num_images, (images,), device=args.device)
    rates = []
    for repeat in range(args.repeats + 1):
        start = time.perf_counter()
        train_epoch(model, envs.unwrapped, optimizer, indices, 0.05, noise)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        if repeat:  # the first pass is a warm-up
            rates.append(images / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="GlimpseMNIST-v0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--core", choices=("rnn", "lstm"), default="rnn")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128, 256, 512, 1024])
    parser.add_argument("--images", type=int, default=20_000, help="images per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network step")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{args.env}, {args.core} core, on {args.device} ({torch.get_num_threads()} threads), "
        f"median of {args.repeats}"
    )
    results = {batch: images_per_second(args, batch) for batch in args.batch_sizes}
    best = max(results, key=results.get)
    for batch, rate in results.items():
        mark = "  <- best" if batch == best else ""
        print(f"  batch {batch:>6}: {rate:>12,.0f} images/s{mark}")


if __name__ == "__main__":
    main()
