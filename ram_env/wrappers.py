"""Action/observation adapters for libraries that take no Dict actions (Stable-Baselines3, ...).

``DiscreteGlimpseVectorActions`` (a Gymnasium ``VectorWrapper`` over the native
``GlimpseVectorEnv``, torch in and out) and ``DiscreteGlimpseActions`` (its one-episode numpy
twin over ``GlimpseEnv``) give each episode ``Discrete(G*G + 10)`` actions:

* action ``a < G*G`` fixates the centre of cell ``(row, col) = divmod(a, G)`` of a ``G x G`` grid
  laid over the canvas: ``x = (2 * col + 1) / G - 1`` (column, to the right) and
  ``y = (2 * row + 1) / G - 1`` (row, down), in the sensor's ``[-1, 1]`` coordinates (see
  ``ram_env.sensor``). For ``G = 4`` the centres are at ``-0.75, -0.25, 0.25, 0.75``; for odd ``G``
  the middle cell is the canvas centre ``(0, 0)``. Action 0 is the top-left cell.
* action ``G*G + c`` answers class ``c`` and ends the episode at once: reward 1 if ``c`` is the
  true class, else 0 (an adaptive number of glimpses). It is sent to the env with its
  ``"answer"`` mask and the current fixation, so the final observation repeats the last glimpse.
* the cap: after ``n_glimpses`` glimpses the agent must answer. A fixation action sent then (the
  ``n_glimpses``-th step) ends the episode unanswered: the env scores only answers, so reward
  0. An episode has at most ``n_glimpses`` steps and glimpses, as the underlying env's.

The observation is the underlying one, the glimpse flattened, plus the time; all float32 1-D
Boxes, which SB3's ``MultiInputPolicy`` concatenates (a 3-D float glimpse would make SB3 take it
for an image and warn)::

    Dict(glimpse=Box(0, 1, (k*g*g,)), location=Box(-1, 1, (2,)), time=Box(0, 1, (1,)))

``glimpse`` is the ``(k, g, g)`` glimpse in C order (``.reshape(k, g, g)`` restores it).
``time`` is the share of the glimpse budget seen (``discrete_observation``, from the faces'
public ``episode_steps``): ``1 / n_glimpses`` after ``reset``, ``1.0`` when the next action must
be a label and in a final observation. A memoryless policy (PPO, A2C, DQN) needs it to know the
deadline.

The episode's rules (ending, scoring, the end-of-episode info ``label``, ``index``,
``glimpses``) are the env's; the adapters add ``is_success`` (SB3 logs it as
``rollout/success_rate``). The SB3 ``VecEnv`` in ``agents.sb3`` is a numpy bridge over
``DiscreteGlimpseVectorActions`` on a SAME_STEP env.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from ram_env.core import NUM_CLASSES, check_int

__all__ = [
    "DiscreteGlimpseActions",
    "DiscreteGlimpseVectorActions",
    "check_grid",
    "decode_discrete_actions",
    "decode_game_actions",
    "discrete_action_space",
    "discrete_observation",
    "discrete_observation_space",
    "grid_centres",
    "make_discrete_env",
    "make_discrete_vec",
]


def grid_centres(grid: int, device: str | torch.device | None = None) -> torch.Tensor:
    """Centres ``(x, y)`` of the ``grid x grid`` cells, float32 ``[grid * grid, 2]``.

    Row-major: entry ``a`` is cell ``(row, col) = divmod(a, grid)``, at
    ``x = (2 * col + 1) / grid - 1``, ``y = (2 * row + 1) / grid - 1``.
    """
    grid = check_grid(grid)
    centres = (2 * torch.arange(grid, dtype=torch.float32, device=device) + 1) / grid - 1
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=1)


def discrete_action_space(
    grid: int, num_classes: int = NUM_CLASSES, moves: int | None = None
) -> spaces.Discrete:
    """Digit tasks: ``Discrete(grid * grid + num_classes)``, fixations first, then labels.
    A game with ``moves`` paddle moves (Catch): ``Discrete(grid * grid * moves)``, every action
    a fixation and a move (``decode_game_actions``)."""
    grid = check_grid(grid)
    return spaces.Discrete(grid * grid * moves if moves else grid * grid + num_classes)


def decode_game_actions(
    actions: torch.Tensor, grid: int, moves: int, centres: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Catch's Discrete actions: action ``a`` fixates the centre of cell ``a // moves`` of the
    ``grid x grid`` grid (``grid_centres``) and moves the paddle by ``a % moves``.

    Args:
        actions: int ``[N]`` in ``[0, grid * grid * moves)`` (validated; the error names them).

    Returns:
        The env action ``{"location": float32 [N, 2], "move": int64 [N]}``.
    """
    actions = torch.as_tensor(actions)
    high = grid * grid * moves
    if actions.dtype.is_floating_point or actions.dtype == torch.bool or actions.ndim != 1:
        raise ValueError(
            f"discrete actions must be a 1-D integer tensor, got dtype {actions.dtype} "
            f"shape {tuple(actions.shape)}"
        )
    bad = ((actions < 0) | (actions >= high)).nonzero().squeeze(1)
    if bad.numel():
        raise ValueError(
            f"discrete actions must be in [0, {high}) ({grid}x{grid} fixations x {moves} "
            f"moves); got {actions[bad].tolist()[:10]} at positions {bad.tolist()[:10]}"
        )
    actions = actions.long()
    if centres is None:
        centres = grid_centres(grid, actions.device)
    return {"location": centres[actions // moves], "move": actions % moves}


def discrete_observation_space(config: Any) -> spaces.Dict:
    """The flat glimpse, its location and the time (glimpses seen / ``n_glimpses``), float32."""
    k, g, _ = config.glimpse_shape
    return spaces.Dict(
        glimpse=spaces.Box(0.0, 1.0, (k * g * g,), np.float32),
        location=spaces.Box(-1.0, 1.0, (2,), np.float32),
        time=spaces.Box(0.0, 1.0, (1,), np.float32),
    )


def decode_discrete_actions(
    actions: torch.Tensor,
    grid: int,
    current_location: torch.Tensor,
    num_classes: int = NUM_CLASSES,
    centres: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Map discrete actions to the core's ``(location, label)`` and an ``answer`` mask.

    Args:
        actions: int ``[N]`` in ``[0, grid * grid + num_classes)`` (validated; the error names
            the offending entries).
        grid: ``G``, side of the fixation grid.
        current_location: float ``[N, 2]``, the fixations now (sent with an answer, so the
            glimpse does not move when an episode ends).
        centres: ``grid_centres(grid)`` on the actions' device, to skip rebuilding it.

    Returns:
        ``location`` float32 ``[N, 2]``, ``label`` int64 ``[N]`` (0 for fixation actions) and
        ``answer`` bool ``[N]`` (the action names a class).
    """
    n_fix = grid * grid
    actions = torch.as_tensor(actions)
    if actions.dtype.is_floating_point or actions.dtype == torch.bool or actions.ndim != 1:
        raise ValueError(
            f"discrete actions must be a 1-D integer tensor, got dtype {actions.dtype} "
            f"shape {tuple(actions.shape)}"
        )
    bad = ((actions < 0) | (actions >= n_fix + num_classes)).nonzero().squeeze(1)
    if bad.numel():
        raise ValueError(
            f"discrete actions must be in [0, {n_fix + num_classes}) (grid {grid}x{grid} "
            f"fixations, then {num_classes} labels); got {actions[bad].tolist()[:10]} at "
            f"positions {bad.tolist()[:10]}"
        )
    actions = actions.long()
    if centres is None:
        centres = grid_centres(grid, actions.device)
    answer = actions >= n_fix
    label = (actions - n_fix).clamp(min=0)
    location = torch.where(
        answer[:, None], current_location.to(torch.float32), centres[actions.clamp(max=n_fix - 1)]
    )
    return location, label, answer


#: The finest fixation grid: 64 x 64 fixations (4,096 actions) is already finer than a pixel
#: on every task's canvas but the 100 x 100 one.
MAX_GRID = 64


def check_grid(grid: Any) -> int:
    """``grid`` as an ``int`` if it is an integer in ``[1, MAX_GRID]`` (no float, no bool), else
    ``ValueError``.

    The one grid check of the wrapper, the action space and the SB3 adapter: ``4.5`` is an
    error, never silently ``4``.
    """
    return check_int("grid", grid, 1, MAX_GRID)


def discrete_observation(
    observation: Mapping[str, torch.Tensor], episode_steps: torch.Tensor, n_glimpses: int
) -> dict[str, torch.Tensor]:
    """The Discrete faces' observation of N episodes, from an env face's.

    Args:
        observation: ``{"glimpse": float32 [N, k, g, g], "location": float32 [N, 2]}``.
        episode_steps: int ``[N]``, steps taken in each episode (the faces' ``episode_steps``).
        n_glimpses: the glimpse budget.

    Returns:
        ``{"glimpse": float32 [N, k*g*g], "location": float32 [N, 2], "time": float32 [N, 1]}``
        on the observation's device, ``time = min(episode_steps + 1, n_glimpses) / n_glimpses``
        (the share of the budget seen; 1.0 when the next action must be a label and once the
        episode is over). The one place the time feature is computed.
    """
    glimpse = observation["glimpse"]
    n = glimpse.shape[0]
    seen = (episode_steps.to(glimpse.device) + 1).clamp(max=n_glimpses)
    return {
        "glimpse": glimpse.reshape(n, -1).float(),
        "location": observation["location"].float(),
        "time": (seen.float() / n_glimpses)[:, None],
    }


class DiscreteGlimpseVectorActions(VectorWrapper):
    """A ``GlimpseVectorEnv`` with ``Discrete(G*G + 10)`` actions per sub-env, torch in and out.

    Actions: int ``[N]`` (a tensor, or anything ``torch.as_tensor`` takes), decoded by
    ``decode_discrete_actions``; observations: the Dict of ``discrete_observation_space`` as
    torch tensors ``[N, ...]`` on the env's device. Rewards, flags and autoreset are the
    wrapped env's (any of Gymnasium's three modes): an answer is sent with the env's
    ``"answer"`` mask, so the env scores answers only and ends those episodes now. At an
    episode's end the info (``final_info`` under SAME_STEP, whose ``final_obs`` is mapped
    like an observation) has the env's ``label``, ``index`` and ``glimpses`` plus
    ``is_success`` (bool ``[N]``, the answer was right), each with its ``_`` mask.

    Raises:
        TypeError: ``env`` is not a (wrapped) ``GlimpseVectorEnv``.
        ValueError: a bad ``grid`` or bad actions (the error names them).
    """

    def __init__(self, env: VectorEnv, grid: int = 4) -> None:
        super().__init__(env)
        base = env.unwrapped
        if not hasattr(base, "episode_steps") or not hasattr(base, "single_action_space"):
            raise TypeError(
                f"DiscreteGlimpseVectorActions wraps a GlimpseVectorEnv, got {type(base).__name__}"
            )
        self.grid = check_grid(grid)
        self.n_glimpses = base.config.n_glimpses
        self.device = base.device
        self.moves = _moves(base.single_action_space)
        self.single_action_space = discrete_action_space(self.grid, moves=self.moves)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = discrete_observation_space(base.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._centres = grid_centres(self.grid, self.device)
        self._location: torch.Tensor | None = None

    @property
    def autoreset_mode(self) -> Any:
        """The wrapped env's ``AutoresetMode`` (also ``metadata["autoreset_mode"]``)."""
        return self.env.unwrapped.autoreset_mode

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        self._location = observation["location"]
        return self._observation(observation), info

    def step(
        self, actions: Any
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        if self._location is None:
            raise RuntimeError("step() called before reset(): call reset() first")
        actions = torch.as_tensor(actions, device=self.device).reshape(-1)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected {self.num_envs} discrete actions, got {actions.numel()}")
        if self.moves:
            action = decode_game_actions(actions, self.grid, self.moves, self._centres)
        else:
            location, label, answer = decode_discrete_actions(
                actions, self.grid, self._location, centres=self._centres
            )
            action = {"location": location, "label": label, "answer": answer}
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._location = observation["location"]
        if "final_info" in info:
            info = dict(info)
            info["final_info"] = _with_success(info["final_info"], reward)
            info["final_obs"] = self._observation(info["final_obs"], over=True)
        elif "_index" in info:
            info = _with_success(info, reward)
        return self._observation(observation), reward, terminated, truncated, info

    def _observation(
        self, observation: dict[str, torch.Tensor], over: bool = False
    ) -> dict[str, torch.Tensor]:
        steps = self.env.unwrapped.episode_steps
        if over:  # final observations: the episode is over
            steps = torch.full_like(steps, self.n_glimpses)
        return discrete_observation(observation, steps, self.n_glimpses)


def _moves(action_space: spaces.Dict) -> int | None:
    """The number of paddle moves of a game's action space (Catch), else ``None``."""
    move = action_space.spaces.get("move")
    return None if move is None else int(move.n)


def _with_success(info: dict[str, Any], reward: torch.Tensor) -> dict[str, Any]:
    ended = info["_index"]
    return {**info, "is_success": ended & (reward > 0), "_is_success": ended}


class DiscreteGlimpseActions(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A glimpse env with ``Discrete(G*G + 10)`` actions and an adaptive number of glimpses.

    See the module docstring for the action mapping, the cap and the observation (numpy, one
    episode: ``DiscreteGlimpseVectorActions``'s rules, with the same decoding and time
    feature). Wraps a ``GlimpseEnv`` (possibly inside Gymnasium's own wrappers, e.g. from
    ``gymnasium.make``). At the episode's end the info has the env's ``label``, ``index`` and
    ``glimpses`` and ``is_success`` (SB3 logs it as ``rollout/success_rate``).
    """

    def __init__(self, env: gym.Env, grid: int = 4) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, grid=grid)
        gym.Wrapper.__init__(self, env)
        base = env.unwrapped
        if not hasattr(base, "episode_steps") or getattr(base, "num_envs", 1) != 1:
            raise TypeError(f"DiscreteGlimpseActions wraps a GlimpseEnv, got {base!r}")
        self.grid = check_grid(grid)
        self.n_glimpses = base.config.n_glimpses
        self.moves = _moves(base.action_space)
        self.action_space = discrete_action_space(self.grid, moves=self.moves)
        self.observation_space = discrete_observation_space(base.config)
        self._centres = grid_centres(self.grid)
        self._location: np.ndarray | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        self._location = observation["location"]
        return self._observation(observation), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        action = _as_action_int(action, self.action_space.n)
        if self._location is None:
            raise RuntimeError("step() called before reset(): call reset() first")
        if self.moves:
            decoded = decode_game_actions(
                torch.tensor([action]), self.grid, self.moves, self._centres
            )
            env_action = {
                "location": decoded["location"][0].numpy(),
                "move": int(decoded["move"][0]),
            }
        else:
            location, label, answer = decode_discrete_actions(
                torch.tensor([action]),
                self.grid,
                torch.from_numpy(self._location[None]),
                centres=self._centres,
            )
            env_action = {
                "location": location[0].numpy(),
                "label": int(label[0]),
                "answer": bool(answer[0]),
            }
        observation, reward, terminated, truncated, info = self.env.step(env_action)
        self._location = observation["location"]
        if terminated or truncated:
            info = {**info, "is_success": bool(reward > 0)}
        return self._observation(observation), reward, terminated, truncated, info

    def _observation(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = {key: torch.from_numpy(value[None]) for key, value in observation.items()}
        steps = torch.tensor([self.env.unwrapped.episode_steps])
        return {
            key: value[0].numpy()
            for key, value in discrete_observation(batch, steps, self.n_glimpses).items()
        }


def _as_action_int(action: Any, n: int) -> int:
    if isinstance(action, np.ndarray) and action.size == 1:
        action = action.reshape(()).item()
    elif isinstance(action, torch.Tensor) and action.numel() == 1:
        action = action.item()
    return check_int("action", action, 0, n - 1)


def make_discrete_env(env_id: str, grid: int = 4, **kwargs: Any) -> DiscreteGlimpseActions:
    """``DiscreteGlimpseActions(gymnasium.make(env_id, **kwargs), grid)``."""
    return DiscreteGlimpseActions(gym.make(env_id, **kwargs), grid)


def make_discrete_vec(
    env_id: str, num_envs: int, grid: int = 4, **kwargs: Any
) -> DiscreteGlimpseVectorActions:
    """``DiscreteGlimpseVectorActions`` over ``gymnasium.make_vec(env_id, num_envs,
    vectorization_mode="vector_entry_point", **kwargs)`` (``device``, ``autoreset_mode``, ...)."""
    venv = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )
    return DiscreteGlimpseVectorActions(venv, grid)
