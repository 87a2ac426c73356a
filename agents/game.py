"""The RAM agent on a game (Catch, paper section 4.2): pure REINFORCE, no labels.

At every step the agent folds its glimpse into the core state ``h_t``, then the location network
picks the next fixation ``l_t ~ N(mu_t, std^2)`` and the action network (``RAM.classify`` with
``num_classes`` = the game's moves) a paddle move ``a_t ~ softmax(W_a h_t)``. The only reward is
the catch at the end, ``R`` (1 or 0); the loss (``game_loss``) is REINFORCE for both policies
with the learned baseline ``b_t``, ``-(sum_t log pi(l_t) + log pi(a_t)) (R - b_t)``, plus the
baseline's squared error, minus ``beta`` times the moves' entropy ``sum_t H(pi(. | h_t))`` (an
entropy bonus, Williams & Peng 1991, as in A3C: without it the move policy collapses onto one
move long before the catches tell it where the ball is). The move's REINFORCE gradient trains
the core and glimpse networks (the location network and baseline read ``h_t`` through a
stop-gradient, as in the digit tasks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.distributions import Normal
from torch.nn import functional as F

from agents.ram import RAM
from agents.reinforce import NOISE_STREAM, begin_episode, sample_location
from ram_env.canvas import episode_key, hash_unit

__all__ = ["GameRollout", "evaluate_game", "game_loss", "game_rollout", "train_games"]


@dataclass
class GameRollout:
    """One batch of finished games (``B`` games of ``T`` steps).

    Attributes:
        log_pi: ``[B, T]`` log-probability of each step's chosen move plus the log-density of
            the fixation chosen with it (none for the last step: no glimpse follows it).
        baselines: ``[B, T]`` the baseline at each step.
        reward: ``[B]`` 1.0 for a caught ball.
        fixations: ``[B, T, 2]`` where each glimpse was taken.
        moves: ``[B, T]`` the paddle moves.
        entropy: ``[B, T]`` the entropy (nats) of the move policy at each step.
        glimpses, screens: ``[B, T, k, g, g]`` and uint8 ``[B, T, H, W]`` at each step, with
            ``game_rollout(keep_frames=True)`` (pictures), else ``None``.
    """

    log_pi: torch.Tensor
    baselines: torch.Tensor
    reward: torch.Tensor
    fixations: torch.Tensor
    moves: torch.Tensor
    entropy: torch.Tensor
    glimpses: torch.Tensor | None = None
    screens: torch.Tensor | None = None


def game_rollout(
    model: RAM,
    env,
    indices: torch.Tensor,
    std: float,
    noise: torch.Generator | torch.Tensor | None,
    samples: torch.Tensor | int = 0,
    keep_frames: bool = False,
) -> GameRollout:
    """Play one game in every sub-env of ``env`` (a ``CatchVectorEnv``) on games ``indices``.

    ``noise``: a ``torch.Generator`` (training), int64 ``[B]`` episode keys (evaluation: the
    noise of game ``b`` at step ``t`` is a pure function of its key), or ``None`` (the mean
    policy: ``mu_t`` and the most likely move).
    """
    batch, device = env.num_envs, env.device
    begin_episode(device)
    obs, _ = env.reset(options={"indices": indices, "samples": samples})
    state = model.initial_state(batch, device)
    steps = env.config.n_glimpses
    log_pi, baselines, fixations, moves, entropy = [], [], [], [], []
    glimpses, screens = [], []
    reward = torch.zeros(batch, device=device)
    for t in range(steps):
        fixations.append(obs["location"])
        if keep_frames:
            glimpses.append(obs["glimpse"])
            screens.append(env.canvases)
        state = model.step(obs["glimpse"], obs["location"], state)
        hidden = state[0]
        log_moves = model.classify(hidden)
        mean = model.location_mean(hidden)
        stream = NOISE_STREAM + 3 * t  # two for the fixation, one for the move
        location = sample_location(mean, std, noise, stream)
        if isinstance(noise, torch.Generator):
            uniform = torch.rand(batch, 1, generator=noise, device=device)
        elif noise is not None:
            uniform = hash_unit(noise, 2 * (stream + 2))[:, None]
        if noise is None:
            move = log_moves.argmax(dim=-1)
        else:  # inverse-CDF sampling: one uniform per game and step
            cdf = log_moves.detach().exp().cumsum(dim=-1)
            move = (uniform > cdf[:, :-1]).sum(dim=-1)
        step_log_pi = log_moves.gather(1, move[:, None]).squeeze(1)
        if t < steps - 1:  # the last fixation is never looked at
            step_log_pi = step_log_pi + Normal(mean, std).log_prob(location).sum(dim=-1)
        log_pi.append(step_log_pi)
        baselines.append(model.baseline(hidden))
        moves.append(move)
        entropy.append(-(log_moves.exp() * log_moves).sum(dim=-1))
        obs, reward, _, _, _ = env.step({"location": location, "move": move})
    return GameRollout(
        log_pi=torch.stack(log_pi, dim=1),
        baselines=torch.stack(baselines, dim=1),
        reward=reward,
        fixations=torch.stack(fixations, dim=1),
        moves=torch.stack(moves, dim=1),
        entropy=torch.stack(entropy, dim=1),
        glimpses=torch.stack(glimpses, dim=1) if keep_frames else None,
        screens=torch.stack(screens, dim=1) if keep_frames else None,
    )


def game_loss(rollout: GameRollout, entropy_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """``{"loss", "reinforce", "baseline", "entropy"}``: REINFORCE of moves and fixations with
    the learned baseline (advantage ``R - b_t``, summed over steps, mean over games) + the
    baseline's MSE - ``entropy_weight`` x the moves' entropy (summed over steps, mean over
    games; reported as the mean per step)."""
    reward = rollout.reward[:, None]
    advantage = (reward - rollout.baselines).detach()
    reinforce = -(rollout.log_pi * advantage).sum(dim=1).mean()
    baseline = F.mse_loss(rollout.baselines, reward.expand_as(rollout.baselines))
    entropy = rollout.entropy.sum(dim=1).mean()
    loss = reinforce + baseline - entropy_weight * entropy
    return {
        "loss": loss,
        "reinforce": reinforce,
        "baseline": baseline,
        "entropy": entropy / rollout.entropy.shape[1],
    }


def train_games(
    model: RAM,
    env,
    optimizer: torch.optim.Optimizer,
    indices: torch.Tensor,
    std: float,
    generator: torch.Generator,
    on_batch: Callable[[int], None] | None = None,
    entropy_weight: float = 0.0,
) -> dict[str, float]:
    """One pass over the games ``indices``, ``env.num_envs`` per batch (a last partial batch is
    dropped), each batch one Adam step on ``game_loss(entropy_weight)``. Returns the means of
    the loss terms and ``accuracy`` (the catch rate of the sampled policy)."""
    model.train()
    batch = env.num_envs
    batches = len(indices) // batch
    if batches == 0:
        raise ValueError(f"{len(indices)} games make no batch of {batch}")
    totals: dict[str, torch.Tensor] = {}
    for start in range(0, batches * batch, batch):
        played = game_rollout(model, env, indices[start : start + batch], std, generator)
        losses = game_loss(played, entropy_weight)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        stats = {**{k: v.detach() for k, v in losses.items()}, "accuracy": played.reward.mean()}
        for name, value in stats.items():
            totals[name] = totals.get(name, 0) + value
        if on_batch is not None:
            on_batch(batch)
    return {name: float(total) / batches for name, total in totals.items()}


@torch.no_grad()
def evaluate_game(
    model: RAM, env, indices: torch.Tensor, std: float, seed: int, mean_policy: bool = True
) -> float:
    """Catch rate over the games ``indices``, each played once (``env.num_envs`` at a time; the
    last chunk padded with repeats whose results are dropped). The env is reset with ``seed``;
    a sampled policy draws its noise from each game's key, so the score does not depend on
    the batch layout."""
    from ram_env.vector import index_sweep

    model.eval()
    indices = torch.as_tensor(indices, device=env.device)
    env.reset(seed=seed)
    caught = torch.zeros((), device=env.device)
    for games, valid in index_sweep(indices, env.num_envs):
        keys = None if mean_policy else episode_key(games, torch.zeros_like(games), seed)
        played = game_rollout(model, env, games, std, keys)
        caught += played.reward[:valid].sum()
    return float(caught) / len(indices)
