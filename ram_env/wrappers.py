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
``time = glimpses seen / n_glimpses``, the glimpses seen counted by the core (``core.steps + 1``,
at most ``n_glimpses``): ``1 / n_glimpses`` after ``reset``, ``1.0`` when the next action must
be a label. A terminal observation counts the ending step as one glimpse more (so ``1.0`` after
the cap). A memoryless policy (PPO, A2C, DQN) needs it to know the deadline.

Infos: at the episode's end ``info["label"]`` (true class), ``info["index"]`` (the image index
in its split), ``info["glimpses"]`` (glimpses seen) and ``info["is_success"]`` (right answer;
SB3 logs it as ``rollout/success_rate``).

A step is one torch function, :func:`discrete_step` (decode the actions with
:func:`decode_discrete_actions`, step the env with the ``"answer"`` mask, keep the reward of
answers only, add the time feature and the end-of-episode infos), shared by this wrapper (one
episode) and the SB3 ``VecEnv`` adapter in ``agents.sb3`` (N episodes on a device).

Early answers are sent to the env with ``"answer": True``, which makes that step the scored
last one; the location sent with the answer is the current fixation, so the terminal
observation repeats the last glimpse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from ram_env.core import NUM_CLASSES, GlimpseConfig, GlimpseCore

__all__ = [
    "DiscreteGlimpseActions",
    "DiscreteStep",
    "check_grid",
    "decode_discrete_actions",
    "discrete_action_space",
    "discrete_observation",
    "discrete_observation_space",
    "discrete_step",
    "grid_centres",
    "make_discrete_env",
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


def discrete_action_space(grid: int, num_classes: int = NUM_CLASSES) -> spaces.Discrete:
    """``Discrete(grid * grid + num_classes)``: fixations first, then labels."""
    grid = check_grid(grid)
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


#: The finest fixation grid: 64 x 64 fixations (4,096 actions) is already finer than a pixel
#: on every task's canvas but the 100 x 100 one.
MAX_GRID = 64


def check_grid(grid: Any) -> int:
    """``grid`` as an ``int`` if it is an integer in ``[1, MAX_GRID]`` (no float, no bool), else
    ``ValueError``.

    The one grid check of the wrapper, the action space and the SB3 adapter: ``4.5`` is an
    error, never silently ``4``.
    """
    if not isinstance(grid, (int, np.integer)) or isinstance(grid, bool) or not 1 <= grid:
        raise ValueError(f"grid must be an integer in [1, {MAX_GRID}], got {grid!r}")
    if grid > MAX_GRID:
        raise ValueError(f"grid must be an integer in [1, {MAX_GRID}], got {grid!r}")
    return int(grid)


def discrete_observation(
    observation: dict[str, Any], glimpses_seen: torch.Tensor, n_glimpses: int
) -> dict[str, np.ndarray]:
    """The Discrete faces' observations of N episodes as numpy ``[N, ...]`` (one host copy).

    ``observation`` is an env face's ``{"glimpse": [N, k, g, g], "location": [N, 2]}``;
    ``glimpses_seen`` int ``[N]`` gives the time feature ``min(glimpses_seen, n) / n``.
    """
    columns = _observation_columns(observation, glimpses_seen, n_glimpses)
    return _split_columns(_to_host(list(columns.values())), columns)


class DiscreteStep(NamedTuple):
    """One step of N Discrete-action episodes, numpy at the boundary (see ``discrete_step``)."""

    #: ``glimpse`` float32 ``[N, k*g*g]``, ``location`` ``[N, 2]``, ``time`` ``[N, 1]``.
    observation: dict[str, np.ndarray]
    #: float32 ``[N]``: 1 for a right answer, else 0 (a fixation stopped by the cap scores 0).
    reward: np.ndarray
    #: bool ``[N]``: the episode ended on this step (an answer or the cap).
    terminated: np.ndarray
    #: bool ``[N]``: the env face's truncations.
    truncated: np.ndarray
    #: per episode: ``{"label", "index", "glimpses", "is_success"}`` if it ended, else ``{}``.
    infos: list[dict[str, Any]]
    #: the env face's own info of the step.
    env_info: dict[str, Any]


#: An env face's step on tensors: ``{"location": float32 [N, 2], "label": int64 [N],
#: "answer": bool [N]}`` (on the core's device) -> Gymnasium's ``(observation, reward,
#: terminated, truncated, info)``, the first four anything ``torch.as_tensor`` takes, ``[N]``.
EnvStep = Callable[[dict[str, torch.Tensor]], tuple[dict[str, Any], Any, Any, Any, dict]]


def discrete_step(
    env_step: EnvStep,
    core: GlimpseCore,
    actions: torch.Tensor,
    grid: int,
    centres: torch.Tensor | None = None,
) -> DiscreteStep:
    """One step of N episodes with Discrete actions: the logic both Discrete faces share.

    Decodes ``actions`` (``decode_discrete_actions``), sends the env action with its
    ``"answer"`` mask through ``env_step`` (the face's step over ``core``), keeps the reward of
    answers only, adds the time feature and, for the episodes that ended, the info fields
    ``label``, ``index``, ``glimpses`` (glimpses seen when answering) and ``is_success``.
    The counts come from ``core.steps`` (steps taken before this one, + 1, glimpses seen), so
    nothing is counted twice. One device-to-host copy for everything.
    """
    n_glimpses = core.config.n_glimpses
    location, label, answer = decode_discrete_actions(
        actions, grid, core.fixations, centres=centres
    )
    glimpses = core.steps + 1
    observation, reward, terminated, truncated, env_info = env_step(
        {"location": location, "label": label, "answer": answer}
    )
    device = answer.device
    reward = torch.as_tensor(reward, device=device).float() * answer
    terminated = torch.as_tensor(terminated, device=device)
    truncated = torch.as_tensor(truncated, device=device)
    # After this step the episode has seen one glimpse more (the cap keeps ``time`` at 1).
    columns = _observation_columns(observation, glimpses + 1, n_glimpses)
    scalars = [reward, terminated, truncated, glimpses, core.targets, core.image_indices]
    host = _to_host([*columns.values(), *(value[:, None] for value in scalars)])
    obs = _split_columns(host[:, : -len(scalars)], columns)
    reward_np, terminated_np, truncated_np, glimpses_np, label_np, index_np = host[
        :, -len(scalars) :
    ].T
    done = terminated_np > 0
    infos: list[dict[str, Any]] = [{} for _ in range(host.shape[0])]
    for i in np.flatnonzero(done):
        infos[i] = {
            "label": int(label_np[i]),
            "index": int(index_np[i]),
            "glimpses": int(glimpses_np[i]),
            "is_success": bool(reward_np[i] > 0),
        }
    return DiscreteStep(obs, reward_np.astype(np.float32), done, truncated_np > 0, infos, env_info)


def _observation_columns(
    observation: dict[str, Any], glimpses_seen: torch.Tensor, n_glimpses: int
) -> dict[str, torch.Tensor]:
    glimpse = torch.as_tensor(observation["glimpse"])
    n = glimpse.shape[0]
    time = glimpses_seen.clamp(max=n_glimpses).float() / n_glimpses
    return {
        "glimpse": glimpse.reshape(n, -1).float(),
        "location": torch.as_tensor(observation["location"], device=glimpse.device).float(),
        "time": time.to(glimpse.device)[:, None],
    }


def _to_host(columns: Sequence[torch.Tensor]) -> np.ndarray:
    """float32 ``[N, sum of widths]``: the ``[N, width]`` columns in one device-to-host copy."""
    device = columns[0].device
    return torch.cat([column.to(device, torch.float32) for column in columns], 1).cpu().numpy()


def _split_columns(host: np.ndarray, columns: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for key, column in columns.items():
        out[key] = host[:, start : start + column.shape[1]]
        start += column.shape[1]
    return out


class DiscreteGlimpseActions(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A glimpse env with ``Discrete(G*G + 10)`` actions and an adaptive number of glimpses.

    See the module docstring for the action mapping, the cap and the observation. Wraps a
    ``GlimpseEnv`` (possibly inside Gymnasium's own wrappers, e.g. from ``gymnasium.make``).
    A step is ``discrete_step`` with one episode.
    """

    def __init__(self, env: gym.Env, grid: int = 4) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, grid=grid)
        gym.Wrapper.__init__(self, env)
        core = getattr(env.unwrapped, "core", None)
        if not isinstance(core, GlimpseCore) or core.num_episodes != 1:
            raise TypeError(f"DiscreteGlimpseActions wraps a GlimpseEnv, got {env.unwrapped!r}")
        self.grid = check_grid(grid)
        self.n_glimpses = core.config.n_glimpses
        self.action_space = discrete_action_space(self.grid)
        self.observation_space = discrete_observation_space(core.config)
        self._centres = grid_centres(self.grid, core.device)

    @property
    def core(self) -> GlimpseCore:
        return self.env.unwrapped.core

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        batched = {key: value[None] for key, value in observation.items()}
        observation = discrete_observation(batched, self.core.steps + 1, self.n_glimpses)
        return {key: value[0] for key, value in observation.items()}, info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        core = self.core
        action = _as_action_int(action, self.action_space.n)
        step = discrete_step(
            self._env_step,
            core,
            torch.tensor([action], device=core.device),
            self.grid,
            self._centres,
        )
        info = {**step.env_info, **step.infos[0]}
        observation = {key: value[0] for key, value in step.observation.items()}
        return (
            observation,
            float(step.reward[0]),
            bool(step.terminated[0]),
            bool(step.truncated[0]),
            info,
        )

    def _env_step(
        self, action: dict[str, torch.Tensor]
    ) -> tuple[dict[str, Any], list[float], list[bool], list[bool], dict[str, Any]]:
        """The wrapped env's step, as ``discrete_step`` wants it (a batch of one)."""
        observation, reward, terminated, truncated, info = self.env.step(
            {
                "location": action["location"][0].cpu().numpy(),
                "label": int(action["label"][0]),
                "answer": bool(action["answer"][0]),
            }
        )
        batched = {key: value[None] for key, value in observation.items()}
        return batched, [float(reward)], [bool(terminated)], [bool(truncated)], info


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
