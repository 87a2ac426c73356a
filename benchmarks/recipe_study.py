"""What moves validation error on a fixed CPU-time budget: one training run per recipe row.

    python benchmarks/recipe_study.py --env GlimpseTranslatedMNIST-v0 --minutes 8
    python benchmarks/recipe_study.py --env GlimpseClutteredMNIST-v0 --rows base lstm k4

Every row is ``train_reinforce.py`` with the row's flags on top of the common ones. Each row
gets the same CPU time: its training speed (images/s) is measured first on a few batches, and
its ``--epochs`` (and so its cosine schedule) is set to what fits in ``--minutes``. The figure
of a row is its best validation error (mean policy, fixed validation canvases, the last 10% of
the training images; never the test split). Rows write their runs under ``--out`` and a
Markdown table row each to ``--out/<env>.md`` (appended as they finish, so a study can span
sittings: finished rows are skipped).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import time

import torch

import train_reinforce
from agents.checkpoint import load_checkpoint
from agents.reinforce import train_epoch

#: Recipe rows: name -> flags added to the common ones.
ROWS: dict[str, list[str]] = {
    "base": ["--std", "0.05"],
    "lstm": ["--core", "lstm"],
    "std0.1": ["--std", "0.1"],
    "std0.17": ["--std", "0.17"],
    "std0.25": ["--std", "0.25"],
    "k2": ["--samples-per-image", "2"],
    "k4": ["--samples-per-image", "4", "--batch-size", "64"],
    "w0.5": ["--reinforce-weight", "0.5"],
    "w2": ["--reinforce-weight", "2"],
    "b512": ["--batch-size", "512", "--lr", "3e-3"],
    "b256": ["--batch-size", "256", "--lr", "2e-3"],
    "lr3e-3": ["--lr", "3e-3"],
    "plateau": ["--lr-schedule", "plateau", "--lr", "3e-4"],
    "mnist-stats": ["--glimpse-stats", "mnist"],
    "lstm-std0.1-k2": ["--core", "lstm", "--std", "0.1", "--samples-per-image", "2"],
    "lstm-b256": ["--core", "lstm", "--batch-size", "256", "--lr", "2e-3"],
    "what256": ["--glimpse-hidden", "256"],
    "wide": (
        "--glimpse-hidden 256 --location-hidden 256 --glimpse-features 512 --core-size 512"
    ).split(),
}


def images_per_second(argv: list[str], seconds: float = 20.0) -> tuple[float, int]:
    """Training speed of the row's settings, measured on batches of its own task, and the
    number of training images of an epoch."""
    config = train_reinforce.run_config(train_reinforce.parse_args(argv))
    device = torch.device("cpu")
    batch, samples = config["batch_size"], config["samples_per_image"]
    env = train_reinforce.make_env(config, "train", batch * samples, device).unwrapped
    env.reset(seed=0)
    model = train_reinforce.build_model(config, device)
    optimizer = train_reinforce.build_optimizer(model, config)
    noise = torch.Generator().manual_seed(0)
    order = torch.randperm(env.num_images)
    images, start, position = 0, time.perf_counter(), 0
    train_epoch(model, env, optimizer, order[:batch], config["std"], noise, samples=samples)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        chunk = order[position : position + 4 * batch]
        train_epoch(model, env, optimizer, chunk, config["std"], noise, samples=samples)
        images, position = images + len(chunk), (position + 4 * batch) % (len(order) - 4 * batch)
    train_images, _ = train_reinforce.split_train_validation(env.num_images, config)
    return images / (time.perf_counter() - start), len(train_images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="GlimpseTranslatedMNIST-v0")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--minutes", type=float, default=8.0, help="training time per row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="runs/study")
    parser.add_argument("--extra", default="", help="flags added to every row (quoted)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    table = out / f"{args.env}.md"
    out.mkdir(parents=True, exist_ok=True)
    done = table.read_text() if table.exists() else ""
    common = ["--env", args.env, "--threads", str(args.threads), "--seed", str(args.seed)]
    common += ["--plot-every", "0", "--device", "cpu", *shlex.split(args.extra)]
    for name in args.rows:
        if f"| {name} |" in done:
            print(f"{name}: done, skipped")
            continue
        argv = [*common, *ROWS[name]]
        run = out / f"{args.env.removesuffix('-v0')}_{name}"
        if (run / "last.pt").exists():  # an interrupted row: its epochs are fixed
            saved = load_checkpoint(run / "last.pt")
            epochs = saved["config"]["epochs"]
            rate = saved["history"][-1]["images_per_second"] if saved["history"] else 0.0
            argv += ["--resume"]
        else:
            rate, train_images = images_per_second(argv)
            epochs = max(1, round(args.minutes * 60 * rate / train_images))
        argv += ["--epochs", str(epochs), "--ckpt-dir", str(run), "--run-name", name]
        start = time.perf_counter()
        config = train_reinforce.run_config(train_reinforce.parse_args(argv))
        train_reinforce.train(config, torch.device("cpu"))
        minutes = (time.perf_counter() - start) / 60
        history = json.loads((run / "metrics.json").read_text())
        best = max(history, key=lambda row: row["valid_accuracy"])
        last = history[-1]
        flags = " ".join(ROWS[name]) or "(defaults)"
        line = (
            f"| {name} | `{flags}` | {rate:,.0f} | {epochs} | {minutes:.1f} | "
            f"{100 * (1 - best['valid_accuracy']):.2f} (epoch {best['epoch']}) | "
            f"{100 * (1 - last['valid_accuracy']):.2f} |\n"
        )
        if not table.exists():
            table.write_text(
                f"Study on {args.env}, {args.minutes:g} min of training per row, "
                f"{args.threads} thread(s), seed {args.seed}; common flags: "
                f"`{shlex.join(common)}`\n\n"
                "| row | flags | images/s | epochs | minutes | best valid error % | "
                "last valid error % |\n|---|---|--:|--:|--:|--:|--:|\n"
            )
        with table.open("a") as file:
            file.write(line)
        print(line, end="")


if __name__ == "__main__":
    main()
