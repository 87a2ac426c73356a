"""Action/observation adapters for libraries that take no Dict actions (Stable-Baselines3, ...).

``DiscreteGlimpseActions`` turns a ``GlimpseEnv`` into an env with ``Discrete(G*G + 10)`` actions:

* action ``a < G*G`` fixates the centre of cell ``(row, col) = divmod(a, G)`` of a ``G x G`` grid
  laid over the canvas: ``x = (2 * col + 1) / G - 1`` (column, to the right) and
  ``y = (2 * row + 1) / G - 1`` (row, down), in the sensor's ``[-1, 1]`` coordinates (see
  ``ram_env.sensor``). For ``G = 4`` the centres are at ``-0.75, -0.25, 0.25, 0.75``; for odd ``G``
  the middle cell is the canvas centre ``(0, 0)``. Action 0 is the top-left cell.
* action ``G*G + c`` answers class ``c`` and ends the episode at once: reward 1 if ``c`` is the
  true class, else 0 (an adaptive number of glimpses).
* the cap: after ``n_glimpses`` glimpses the agent must answer. A fixation action sent then (the
  ``n_glimpses``-th step) is scored as a wrong answer: reward 0 and the episode terminates. So an
  episode has at most ``n_glimpses`` steps and shows at most ``n_glimpses`` glimpses, as the
  underlying env does.

The observation is the underlying one, the glimpse flattened, plus the time; all float32 1-D
Boxes, which SB3's ``MultiInputPolicy`` concatenates (a 3-D float glimpse would make SB3 take it
for an image and warn)::

    Dict(glimpse=Box(0, 1, (k*g*g,)), location=Box(-1, 1, (2,)), time=Box(0, 1, (1,)))

``glimpse`` is the ``(k, g, g)`` glimpse in C order (``.reshape(k, g, g)`` restores it).
``time = glimpses seen / n_glimpses``: ``1 / n_glimpses`` after ``reset``, ``1.0`` when the next
action must be a label (and on a terminal observation). A memoryless policy (PPO, A2C, DQN)
needs it to know the deadline.

Infos: at the episode's end ``info["label"]`` (true class), ``info["index"]`` (the image index
in its split), ``info["glimpses"]`` (glimpses seen) and ``info["is_success"]`` (right answer;
SB3 logs it as ``rollout/success_rate``).

The grid/label mapping is one torch function, :func:`decode_discrete_actions`, shared by this
wrapper (one episode) and the SB3 ``VecEnv`` adapter in ``agents.sb3`` (N episodes on a device).

Early answers are sent to the env with ``"answer": True``, which makes that step the scored
last one; the location sent with the answer is the current fixation, so the terminal
observation repeats the last glimpse.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from ram_env.core import NUM_CLASSES, GlimpseConfig, GlimpseCore

__all__ = [
    "DiscreteGlimpseActions",
    "decode_discrete_actions",
    "discrete_action_space",
    "discrete_observation_space",
    "grid_centres",
    "make_discrete_env",
]


def grid_centres(grid: int, device: str | torch.device | None = None) -> torch.Tensor:
    """Centres ``(x, y)`` of the ``grid x grid`` cells, float32 ``[grid * grid, 2]``.

    Row-major: entry ``a`` is cell ``(row, col) = divmod(a, grid)``, at
    ``x = (2 * col + 1) / grid - 1``, ``y = (2 * row + 1) / grid - 1``.
    """
    _check_grid(grid)
    centres = (2 * torch.arange(grid, dtype=torch.float32, device=device) + 1) / grid - 1
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=1)


def discrete_action_space(grid: int, num_classes: int = NUM_CLASSES) -> spaces.Discrete:
    """``Discrete(grid * grid + num_classes)``: fixations first, then labels."""
    _check_grid(grid)
    return spaces.Discrete(grid * grid + num_classes)


def discrete_observation_space(config: GlimpseConfig) -> spaces.Dict:
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


def _check_grid(grid: int) -> None:
    if not isinstance(grid, (int, np.integer)) or isinstance(grid, bool) or grid < 1:
        raise ValueError(f"grid must be an integer >= 1, got {grid!r}")


class DiscreteGlimpseActions(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A glimpse env with ``Discrete(G*G + 10)`` actions and an adaptive number of glimpses.

    See the module docstring for the action mapping, the cap and the observation. Wraps a
    ``GlimpseEnv`` (possibly inside Gymnasium's own wrappers, e.g. from ``gymnasium.make``).
    """

    def __init__(self, env: gym.Env, grid: int = 4) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, grid=grid)
        gym.Wrapper.__init__(self, env)
        core = getattr(env.unwrapped, "core", None)
        if not isinstance(core, GlimpseCore) or core.num_episodes != 1:
            raise TypeError(f"DiscreteGlimpseActions wraps a GlimpseEnv, got {env.unwrapped!r}")
        _check_grid(grid)
        self.grid = int(grid)
        self.n_glimpses = core.config.n_glimpses
        self.action_space = discrete_action_space(self.grid)
        self.observation_space = discrete_observation_space(core.config)
        self._centres = grid_centres(self.grid, core.device)
        self._glimpses = 0

    @property
    def core(self) -> GlimpseCore:
        return self.env.unwrapped.core

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        self._glimpses = 1
        return self._observation(observation), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._glimpses == 0:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        core = self.core
        action = _as_action_int(action, self.action_space.n)
        location, label, answer = decode_discrete_actions(
            torch.tensor([action], device=core.device),
            self.grid,
            core.fixations,
            centres=self._centres,
        )
        answered = bool(answer[0])
        observation, reward, terminated, truncated, info = self.env.step(
            {"location": location[0].cpu().numpy(), "label": int(label[0]), "answer": answered}
        )
        glimpses = self._glimpses
        self._glimpses = min(glimpses + 1, self.n_glimpses)
        expected_end = answered or glimpses >= self.n_glimpses
        if bool(terminated) != expected_end:  # pragma: no cover - a broken core contract
            raise RuntimeError(f"core terminated={terminated}, expected {expected_end}")
        reward = float(reward) if answered else 0.0
        observation = self._observation(observation)
        if terminated:
            info = {
                **info,
                "index": int(core.image_indices[0]),
                "glimpses": glimpses,
                "is_success": reward > 0,
            }
            self._glimpses = 0
        return observation, reward, bool(terminated), bool(truncated), info

    def _observation(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time = np.array([self._glimpses / self.n_glimpses], dtype=np.float32)
        return {
            "glimpse": observation["glimpse"].reshape(-1),
            "location": observation["location"],
            "time": time,
        }


def _as_action_int(action: Any, n: int) -> int:
    if isinstance(action, np.ndarray) and action.size == 1:
        action = action.reshape(()).item()
    elif isinstance(action, torch.Tensor) and action.numel() == 1:
        action = action.item()
    if not isinstance(action, (int, np.integer)) or isinstance(action, bool):
        raise ValueError(f"action must be an int in [0, {n}), got {action!r}")
    if not 0 <= action < n:
        raise ValueError(f"action must be in [0, {n}), got {action}")
    return int(action)


def make_discrete_env(env_id: str, grid: int = 4, **kwargs: Any) -> DiscreteGlimpseActions:
    """``DiscreteGlimpseActions(gymnasium.make(env_id, **kwargs), grid)``."""
    return DiscreteGlimpseActions(gym.make(env_id, **kwargs), grid)
