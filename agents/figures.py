"""Pictures of an agent's episodes: play a RAM checkpoint (or a random policy) and draw it.

The drawing is ``ram_env.render``'s (pure functions of arrays, no agent in it); this module
plays the episodes: a RAM agent through ``agents.reinforce.rollout`` with its mean policy
(``noise=None``), exactly as it is scored, and a random policy with uniform fixations and labels.

* ``play_episodes(model, env_id, env_kwargs, num_episodes, device, seed)`` -> ``Episodes``.
* ``episode_figures(model, env_id, env_kwargs, device, seed)`` -> ``{"bbox", "glimpses",
  "gif"}`` (what ``train_reinforce.py`` writes every ``--plot-every`` epochs).
* ``python -m agents.figures --env ID [--checkpoint PATH] [--seed S] [--split test] --out
  PREFIX`` writes ``PREFIX_bbox.png``, ``PREFIX_glimpses.png`` and ``PREFIX.gif``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import ram_env
from agents.checkpoint import CheckpointError, load_agent
from agents.game import game_rollout
from agents.ram import RAM
from agents.reinforce import rollout
from ram_env.catch import MOVES
from ram_env.core import NUM_CLASSES, resolve_device
from ram_env.render import Episodes, figures_of, is_game, save_figures

__all__ = ["episode_figures", "main", "play_episodes"]


@torch.no_grad()
def play_episodes(
    model: RAM | None,
    env_id: str,
    env_kwargs: Mapping[str, Any] | None = None,
    num_episodes: int = 9,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> Episodes:
    """Play ``num_episodes`` episodes of ``env_id`` on images chosen by ``seed``.

    ``model``: a RAM agent, played with its mean policy by ``agents.reinforce.rollout``, or
    ``None`` for a random policy (uniform fixations in ``[-1, 1]^2`` and labels). The images are
    a seeded random choice of the split and the env is reset with ``seed``, so the same ``seed``
    shows the same images (and, on fixed canvases, the same canvases and first glimpses) every
    time. Only private generators are used: the global random states are left alone.

    Raises:
        ValueError: ``num_episodes`` is below 1.
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be at least 1, got {num_episodes}")
    kwargs = {k: v for k, v in (env_kwargs or {}).items() if k not in ("device", "render_mode")}
    device = torch.device(device)
    env = gym.make_vec(
        env_id, num_envs=num_episodes, vectorization_mode="vector_entry_point", device=device,
        **kwargs,
    )  # fmt: skip
    base = env.unwrapped
    try:
        choice = torch.Generator().manual_seed(seed)
        game = "move" in base.single_action_space.spaces
        if num_episodes <= base.num_images <= 10**7:
            indices = torch.randperm(base.num_images, generator=choice)[:num_episodes]
        else:
            indices = torch.randint(base.num_images, (num_episodes,), generator=choice)
        indices = indices.to(device)
        env.reset(seed=seed)  # keys the start fixations of fixed canvases
        screens = None
        if model is None:
            fixations, glimpses, answers, truths, screens = _random_episodes(base, indices, seed)
        elif game:  # the screen changes every step; "answer" 1 is a catch (truth: 1)
            played = game_rollout(model, base, indices, 1.0, noise=None, keep_frames=True)
            fixations, glimpses, screens = played.fixations, played.glimpses, played.screens
            answers, truths = played.reward.long(), torch.ones_like(played.reward).long()
        else:
            played = rollout(model, base, indices, 1.0, noise=None, keep_glimpses=True)
            fixations, glimpses = played.fixations, played.glimpses
            answers, truths = played.log_probs.argmax(dim=-1), played.targets
        return Episodes(
            canvases=(base.canvases if screens is None else screens).cpu().numpy().copy(),
            fixations=fixations.cpu().numpy(),
            glimpses=glimpses.cpu().numpy(),
            answers=answers.cpu().numpy().astype(np.int64),
            truths=truths.cpu().numpy().astype(np.int64),
            indices=indices.cpu().numpy().astype(np.int64),
            config=base.config,
        )
    finally:
        env.close()


def _random_episodes(env: Any, indices: torch.Tensor, seed: int) -> tuple[Any, ...]:
    """A uniform random policy's episodes: fixations, glimpses, answers, true classes and, for
    a game, the screens at each step (a game's answer is 1 for a catch, its truth 1)."""
    # A stream of its own: a generator seeded with ``seed`` itself would repeat the env's.
    stream = int(np.random.SeedSequence([seed, 0x5EED]).generate_state(1, np.uint64)[0])
    generator = torch.Generator(device=env.device).manual_seed(stream)
    batch, device = env.num_envs, env.device
    game = "move" in env.single_action_space.spaces
    key, high = ("move", MOVES) if game else ("label", NUM_CLASSES)
    obs, _ = env.reset(options={"indices": indices})
    fixations, glimpses, screens = [], [], []
    for _ in range(env.config.n_glimpses):
        fixations.append(obs["location"])
        glimpses.append(obs["glimpse"])
        screens.append(env.canvases)
        other = torch.randint(high, (batch,), generator=generator, device=device)
        location = torch.rand(batch, 2, generator=generator, device=device) * 2 - 1
        obs, reward, _, _, info = env.step({"location": location, key: other})
    if game:
        caught = reward.long()
        stacked = torch.stack(screens, 1)
        return torch.stack(fixations, 1), torch.stack(glimpses, 1), caught, caught * 0 + 1, stacked
    return torch.stack(fixations, 1), torch.stack(glimpses, 1), other, info["label"], None


def episode_figures(
    model: RAM | None,
    env_id: str,
    env_kwargs: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    *,
    num_episodes: int = 9,
    split: str | None = "test",
) -> dict[str, Any]:
    """The three figures (``ram_env.render.figures_of``) of ``num_episodes`` episodes of
    ``model`` (``None``: a random policy).

    ``split`` overrides ``env_kwargs["split"]`` (``None`` keeps it); the default, the fixed
    test canvases, shows the same pictures at every call with the same ``seed``, so calls
    every few epochs show the policy change. A model's train/eval mode is restored afterwards.
    """
    kwargs = dict(env_kwargs or {})
    if split is not None:
        kwargs["split"] = split
    training = None if model is None else model.training
    if model is not None:
        model.eval()
    try:
        episodes = play_episodes(model, env_id, kwargs, num_episodes, device, seed)
    finally:
        if model is not None:
            model.train(training)
    return figures_of(episodes)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agents.figures",
        description="Draw where an agent looks: PREFIX_bbox.png (every fixation's fovea box), "
        "PREFIX_glimpses.png (every glimpse) and PREFIX.gif (the episodes step by step), for "
        "a random policy or a trained RAM agent (--checkpoint; its mean policy).",
    )
    parser.add_argument("--env", help="env id, e.g. GlimpseMNIST-v0 (default: the checkpoint's)")
    parser.add_argument("--checkpoint", help="a RAM checkpoint written by train_reinforce.py")
    parser.add_argument("--seed", type=int, default=0, help="chooses the images (default 0)")
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--episodes", type=int, default=9, help="episodes drawn (default 9)")
    parser.add_argument("--columns", type=int, default=3, help="pictures per row (default 3)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--out", required=True, help="file prefix of the three pictures (or the GIF's name)"
    )
    return parser


#: The most episodes one set of pictures holds (a grid of frames per GIF step).
MAX_EPISODES = 100


def _bare_id(env_id: str) -> str:
    return env_id.split(":", 1)[-1]


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("episodes", "columns"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.episodes > MAX_EPISODES:
        parser.error(f"--episodes {args.episodes}: at most {MAX_EPISODES} fit in one picture")
    if args.env is not None and _bare_id(args.env) not in ram_env.ENV_IDS:
        known = ", ".join(ram_env.ENV_IDS)
        parser.error(f"--env {args.env!r} is not a glimpse env; known: {known}")
    if args.out.endswith(("/", os.sep)) or os.path.isdir(args.out):
        parser.error(
            f"--out {args.out!r} is a folder; give a file prefix in it, e.g. "
            f"{os.path.join(args.out, 'episodes')}"
        )
    if not 0 <= args.seed < 2**63:  # the range of train_reinforce.py --seed
        parser.error(f"--seed must be in [0, 2**63), got {args.seed}")
    try:
        args.device = str(resolve_device(args.device))
    except (ValueError, RuntimeError) as error:
        parser.error(f"--device: {error}")
    model, env_id, env_kwargs = None, args.env, {}
    if args.checkpoint is not None:
        try:
            model, payload = load_agent(args.checkpoint, args.device)
        except CheckpointError as error:
            parser.error(str(error))
        config = payload["config"]
        env_kwargs = dict(config.get("env_kwargs") or {})
        if env_id is not None and _bare_id(env_id) != _bare_id(config["env"]):
            parser.error(
                f"--env {env_id} differs from the checkpoint's env {config['env']}; "
                "leave --env out to use the checkpoint's"
            )
        env_id = config["env"]
        model.eval()
    if env_id is None:
        parser.error("--env is required without --checkpoint")
    kwargs = {**env_kwargs, "split": args.split}
    episodes = play_episodes(model, env_id, kwargs, args.episodes, args.device, args.seed)
    paths = save_figures(figures_of(episodes, args.columns), args.out)
    right = int((episodes.answers == episodes.truths).sum())
    verdict = "caught" if is_game(episodes.config) else "right"
    print(f"{right}/{len(episodes.answers)} {verdict}; wrote " + ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
