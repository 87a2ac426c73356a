"""Train, resume or test a Stable-Baselines3 baseline on a glimpse task.

The agent plays ``DiscreteGlimpseActions``'s episodes (``Discrete(G*G + 10)``: fixate a grid
cell or answer a class; see ``ram_env.wrappers``) through the batched SB3 adapter
``agents.sb3.GlimpseSB3VecEnv``. The last ``--val-fraction`` of the training images are held
out: training never draws them, and every ``--eval-freq`` timesteps the model is scored on them
(fixed canvases, each image once) and checkpointed (``last.zip``, ``best.zip``, plus
``run.json`` with the settings) in ``<save-dir>/<run-name>/``. TensorBoard logs go to
``--log-dir``.

    python train_sb3.py                                      # RecurrentPPO on GlimpseMNIST-v0
    python train_sb3.py --algo ppo --env GlimpseTranslatedMNIST-v0 --timesteps 2000000
    python train_sb3.py --resume ckpt/sb3/GlimpseMNIST-v0-recurrent-ppo-s0/last.zip
    python train_sb3.py --test ckpt/sb3/GlimpseMNIST-v0-recurrent-ppo-s0/best.zip

``--test`` scores a saved model on the whole fixed test split, each image exactly once, and
prints the test error; the algorithm, task and env settings come from ``run.json`` beside the
checkpoint unless given on the command line.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch

DEFAULTS = {"algo": "recurrent-ppo", "env": "GlimpseMNIST-v0", "grid": 4}
DEFAULT_N_STEPS = {"recurrent-ppo": 128, "ppo": 128, "a2c": 5}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    import ram_env
    from agents.sb3 import ALGORITHMS

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algo", choices=sorted(ALGORITHMS), help="default: recurrent-ppo")
    parser.add_argument("--env", choices=sorted(ram_env.TASKS), help="default: GlimpseMNIST-v0")
    parser.add_argument(
        "--env-kwargs",
        type=json.loads,
        default=None,
        help="extra gymnasium.make arguments as JSON, e.g. '{\"n_glimpses\": 4}'",
    )
    parser.add_argument("--grid", type=int, help="side G of the fixation grid (default 4)")
    parser.add_argument("--timesteps", type=int, default=1_000_000, help="total env steps")
    parser.add_argument("--n-envs", type=int, default=16, help="parallel episodes")
    parser.add_argument(
        "--n-steps", type=int, help="rollout length per env (default 128; a2c: 5; not dqn)"
    )
    parser.add_argument(
        "--batch-size", type=int, help="PPO minibatch (default: a quarter of the rollout)"
    )
    parser.add_argument("--learning-rate", type=float, help="default: the algorithm's")
    parser.add_argument("--device", default="auto", help="model device: auto, cpu, cuda, ...")
    parser.add_argument("--env-device", help="env device (default: the model's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--log-dir", default="runs/sb3", help="TensorBoard root ('' to disable; default runs/sb3)"
    )
    parser.add_argument("--save-dir", default="ckpt/sb3", help="checkpoint root")
    parser.add_argument("--run-name", help="default: <env>-<algo>-s<seed>")
    parser.add_argument(
        "--eval-freq", type=int, default=50_000, help="validate every N timesteps (0: at the end)"
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.1, help="held-out tail of the training images"
    )
    parser.add_argument("--val-size", type=int, help="validate on the first N held-out images")
    parser.add_argument("--eval-envs", type=int, default=256, help="parallel evaluation episodes")
    parser.add_argument("--verbose", type=int, default=0, help="SB3 verbosity (0, 1, 2)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", metavar="PATH", help="continue training a saved model")
    mode.add_argument("--test", metavar="PATH", help="score a saved model on the test split")
    args = parser.parse_args(argv)
    for name in ("timesteps", "n_envs", "eval_envs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.env_kwargs is not None and not isinstance(args.env_kwargs, dict):
        parser.error("--env-kwargs must be a JSON object")
    if args.env_kwargs and "split" in args.env_kwargs:
        parser.error("--env-kwargs may not set 'split' (training uses train, --test uses test)")
    return args


def _run_settings(args: argparse.Namespace, checkpoint: str | None) -> dict[str, Any]:
    """Settings from ``run.json`` beside ``checkpoint`` (if any), overridden by the CLI."""
    settings: dict[str, Any] = {**DEFAULTS, "env_kwargs": {}}
    if checkpoint is not None:
        meta = pathlib.Path(checkpoint).parent / "run.json"
        if meta.exists():
            settings.update(json.loads(meta.read_text()))
    for key in ("algo", "env", "grid"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.env_kwargs:
        settings["env_kwargs"] = {**settings["env_kwargs"], **args.env_kwargs}
    return settings


def _devices(args: argparse.Namespace) -> tuple[str, str]:
    from stable_baselines3.common.utils import get_device

    model_device = str(get_device(args.device))
    return model_device, args.env_device or model_device


def _algo_kwargs(algo: str, args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if args.learning_rate is not None:
        kwargs["learning_rate"] = args.learning_rate
    if algo == "dqn":
        kwargs["buffer_size"] = min(100_000, max(args.timesteps, 1_000))
        kwargs["learning_starts"] = min(1_000, args.timesteps // 10)
        return kwargs
    n_steps = args.n_steps or DEFAULT_N_STEPS[algo]
    kwargs["n_steps"] = n_steps
    if algo in ("ppo", "recurrent-ppo"):
        rollout = n_steps * args.n_envs
        kwargs["batch_size"] = args.batch_size or max(min(64, rollout), rollout // 4)
    return kwargs


def train(args: argparse.Namespace) -> float:
    """Train (or resume); return the final validation accuracy."""
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.sb3 import ValidationCallback, algorithm_class, make_sb3_vec_env
    from ram_env.datasets import holdout_split

    settings = _run_settings(args, args.resume)
    algo, env_id, grid = settings["algo"], settings["env"], int(settings["grid"])
    env_kwargs = dict(settings["env_kwargs"])
    model_device, env_device = _devices(args)
    run_name = args.run_name or f"{env_id}-{algo}-s{args.seed}"
    run_dir = pathlib.Path(args.resume).parent if args.resume else pathlib.Path(args.save_dir)
    if not args.resume:
        run_dir = run_dir / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir = args.log_dir or None

    vec = make_sb3_vec_env(
        env_id, args.n_envs, grid, env_device, holdout=args.val_fraction, **env_kwargs
    )
    num_images = vec.venv.core.num_images
    _, val_indices = holdout_split(num_images, args.val_fraction)
    if args.val_size is not None:
        val_indices = val_indices[: args.val_size]
    env = VecMonitor(vec)

    cls, policy = algorithm_class(algo)
    best = -1.0
    if args.resume:
        model = cls.load(args.resume, env=env, device=model_device, tensorboard_log=log_dir)
        best = float(settings.get("best_val_accuracy", -1.0))
        print(f"resumed {args.resume} at {model.num_timesteps} timesteps", flush=True)
    else:
        model = cls(
            policy,
            env,
            seed=args.seed,
            device=model_device,
            tensorboard_log=log_dir,
            verbose=args.verbose,
            **_algo_kwargs(algo, args),
        )
    meta = {
        "algo": algo,
        "env": env_id,
        "grid": grid,
        "env_kwargs": env_kwargs,
        "val_fraction": args.val_fraction,
        "val_indices": [int(val_indices[0]), int(val_indices[-1]) + 1] if len(val_indices) else [],
        "seed": args.seed,
        "n_envs": args.n_envs,
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2))
    callback = ValidationCallback(
        env_id,
        env_kwargs,
        val_indices,
        args.eval_freq,
        n_envs=args.eval_envs,
        device=env_device,
        save_dir=str(run_dir),
        best_accuracy=best,
    )
    remaining = args.timesteps - model.num_timesteps
    print(
        f"training {algo} on {env_id} (grid {grid}, {args.n_envs} envs, model on "
        f"{model_device}, env on {env_device}) for {max(remaining, 0)} timesteps; "
        f"{num_images - len(val_indices)} training images, {len(val_indices)} validation; "
        f"checkpoints in {run_dir}",
        flush=True,
    )
    start = time.perf_counter()
    if remaining > 0:
        model.learn(
            remaining,
            callback=callback,
            reset_num_timesteps=not args.resume,
            tb_log_name=run_name,
        )
    else:
        callback.init_callback(model)
    seconds = time.perf_counter() - start
    if callback.last_accuracy is None or callback.last_eval_timesteps != model.num_timesteps:
        callback.evaluate()
        model.logger.dump(model.num_timesteps)
    meta["best_val_accuracy"] = callback.best_accuracy
    meta["timesteps"] = model.num_timesteps
    (run_dir / "run.json").write_text(json.dumps(meta, indent=2))
    print(
        f"done: {model.num_timesteps} timesteps in {seconds:.0f} s "
        f"({max(remaining, 0) / max(seconds, 1e-9):.0f} steps/s); validation accuracy "
        f"{callback.last_accuracy:.4f} (best {callback.best_accuracy:.4f}); "
        f"saved {run_dir / 'last.zip'} and {run_dir / 'best.zip'}",
        flush=True,
    )
    env.close()
    return float(callback.last_accuracy)


def test(args: argparse.Namespace) -> float:
    """Score the model at ``args.test`` on the whole test split; print and return accuracy."""
    from agents.sb3 import algorithm_class, evaluate_sb3_episodes

    settings = _run_settings(args, args.test)
    model_device, env_device = _devices(args)
    cls, _ = algorithm_class(settings["algo"])
    model = cls.load(args.test, device=model_device)
    start = time.perf_counter()
    correct = evaluate_sb3_episodes(
        model,
        settings["env"],
        settings["env_kwargs"],
        "test",
        None,
        n_envs=args.eval_envs,
        device=env_device,
        seed=args.seed,
    )
    accuracy = float(correct.mean())
    print(
        f"test error {100 * (1 - accuracy):.2f}% (accuracy {accuracy:.4f}, "
        f"{int(correct.sum())}/{correct.size} right) of {settings['algo']} on "
        f"{settings['env']}'s test split, {args.test}, in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    return accuracy


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.test:
        test(args)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
