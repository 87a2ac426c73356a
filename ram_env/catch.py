"""``GlimpseCatch-v0``: the paper's Catch game (section 4.2), seen only through glimpses.

A ``screen_size`` x ``screen_size`` screen of binary pixels. A one-pixel ball falls one row per
step from the top row, drifting sideways by ``vx`` pixels per step (``|vx| <= max_drift``) and
bouncing off the side walls; a ``paddle_width``-pixel paddle on the bottom row moves by the
agent's ``move`` (0: left, 1: stay, 2: right) every step. When the ball reaches the bottom row
(after ``screen_size - 1`` steps) the episode terminates with reward 1 if the paddle is under
the ball, else 0. The agent sees the screen only through a glimpse at the fixation it chooses
(observation and action ``location`` as in the digit tasks): attention must follow the ball.

Games are pure functions of their index: game ``i``'s start column and drift come from a hash
of ``(i, split)`` (``ram_env.canvas``). ``split="test"`` is the 1,000 fixed test games (indices
0-999, every agent plays the same ones); ``split="train"`` draws game indices at random from the
env's seeded generator among ``2**31``.

``CatchCore`` is the batched game (the single source of truth); ``CatchEnv`` (numpy, one game)
and ``CatchVectorEnv`` (torch, N games on a device, the vector env's three autoreset modes) are
its faces, on the pattern of ``GlimpseCore``/``GlimpseEnv``/``GlimpseVectorEnv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from ram_env.canvas import episode_key, fixed_key, hash_unit
from ram_env.core import (
    EpisodeBatch,
    check_flag,
    check_int,
    config_from_kwargs,
    resolve_device,
)
from ram_env.datasets import check_choice
from ram_env.env import OneEpisode, check_render_mode, checked_choice, checked_location
from ram_env.sensor import glimpse_from_integral, integral_image, table_dtype
from ram_env.vector import (
    GlimpseVectorEnv,
    _as_tensor,
    check_choice_action,
    check_location_action,
)

__all__ = [
    "MOVES",
    "NUM_TEST_GAMES",
    "VALIDATION_GAMES",
    "CatchConfig",
    "CatchCore",
    "CatchEnv",
    "CatchVectorEnv",
]

#: Paddle moves: ``move - 1`` pixels (left, stay, right).
MOVES = 3
#: Games of the fixed test split.
NUM_TEST_GAMES = 1000
#: Game indices of the training split (drawn at random).
NUM_TRAIN_GAMES = 2**31
#: Training games an agent's validation holds out (the last ones of the training split).
VALIDATION_GAMES = 1000
_SPLIT_SALT = {"train": 0x51ED, "test": 0x7E57}


@dataclass(frozen=True)
class CatchConfig:
    """Every setting of the Catch game; the ``gymnasium.make("GlimpseCatch-v0")`` keywords.

    Attributes:
        screen_size: screen side in pixels (the paper: 24), at least 4.
        paddle_width: paddle width in pixels (the paper: 2), in ``[1, screen_size]``.
        max_drift: the ball's largest sideways speed, pixels per row fallen (0 falls straight;
            1 is 45 degrees), in ``[0, 2]``.
        split: ``"train"`` (random games) or ``"test"`` (the 1,000 fixed games).
        patch_size, n_scales, scale_factor: the retina (the paper: 6x6 at 3 scales).
        start: the first fixation, ``"random"`` or ``"center"``.
        fixed_games: random start fixations keyed by game, sample and seed (as on the test
            split) rather than drawn from the generator, e.g. for validation games of the
            training split; ``None`` means ``split == "test"``.
    """

    screen_size: int = 24
    paddle_width: int = 2
    max_drift: float = 1.0
    split: str = "train"
    patch_size: int = 6
    n_scales: int = 3
    scale_factor: int = 2
    start: str = "random"
    fixed_games: bool | None = None

    def __post_init__(self) -> None:
        check_int("screen_size", self.screen_size, low=4)
        check_int("paddle_width", self.paddle_width, 1, self.screen_size)
        for name in ("patch_size", "n_scales", "scale_factor"):
            check_int(name, getattr(self, name), low=1)
        drift = self.max_drift
        if isinstance(drift, bool) or not isinstance(drift, (int, float, np.floating)):
            raise ValueError(f"max_drift must be a number in [0, 2], got {drift!r}")
        if not 0 <= drift <= 2:
            raise ValueError(f"max_drift must be a number in [0, 2], got {drift!r}")
        check_flag("fixed_games", self.fixed_games, allow_none=True)
        side = self.patch_size * self.scale_factor ** (self.n_scales - 1)
        if side > 2 * self.screen_size:
            raise ValueError(
                f"the retina's largest square is {side} px, more than twice the "
                f"{self.screen_size}-pixel screen: lower n_scales, patch_size or scale_factor"
            )
        check_choice("split", self.split, ("train", "test"))
        check_choice("start", self.start, ("random", "center"))

    @classmethod
    def from_kwargs(cls, kwargs: dict, owner: str = "CatchEnv.__init__()") -> CatchConfig:
        """Build from keywords; an unknown one is a ``TypeError`` in Python's own wording."""
        return config_from_kwargs(cls, kwargs, owner)

    @property
    def n_glimpses(self) -> int:
        """Steps (= glimpses) per game: the rows the ball falls."""
        return self.screen_size - 1

    @property
    def canvas_shape(self) -> tuple[int, int]:
        return self.screen_size, self.screen_size

    @property
    def glimpse_shape(self) -> tuple[int, int, int]:
        return self.n_scales, self.patch_size, self.patch_size

    @property
    def pixel_stats(self) -> tuple[float, float]:
        """``(mean, std)`` of a screen's pixels in ``[0, 1]``: one ball and the paddle lit
        (for standardising glimpses, as the digit tasks use their datasets' statistics)."""
        lit = (1 + self.paddle_width) / self.screen_size**2
        return round(lit, 6), round((lit * (1 - lit)) ** 0.5, 6)

    @property
    def uses_fixed_canvases(self) -> bool:
        return self.split == "test" if self.fixed_games is None else self.fixed_games


def catch_spaces(config: CatchConfig) -> tuple[spaces.Dict, spaces.Dict]:
    """``(observation_space, action_space)`` of one game."""
    observation_space = spaces.Dict(
        glimpse=spaces.Box(0.0, 1.0, config.glimpse_shape, np.float32),
        location=spaces.Box(-1.0, 1.0, (2,), np.float32),
    )
    action_space = spaces.Dict(
        location=spaces.Box(-1.0, 1.0, (2,), np.float32), move=spaces.Discrete(MOVES)
    )
    return observation_space, action_space


class CatchCore(EpisodeBatch):
    """``num_episodes`` Catch games on one device, stepped together.

    State (on ``device``): ``ball_row`` int64 ``[N]``, ``ball_col`` and ``ball_vx`` float32
    ``[N]`` (column in pixels, drift in pixels per step), ``paddle`` int64 ``[N]`` (its left
    column), ``canvases`` uint8 ``[N, H, W]`` (the screens, 0 or 255) and their summed-area
    tables ``integral``, ``fixations`` float32 ``[N, 2]``, ``glimpses`` float32 ``[N, k, g, g]``,
    ``steps`` int64 ``[N]``, ``image_indices`` int64 ``[N]`` (the game indices); ``uniform_steps``
    as in ``GlimpseCore``.
    """

    def __init__(self, config: CatchConfig, num_episodes: int, device: torch.device) -> None:
        check_int("num_episodes", num_episodes, low=1)
        self.config, self.num_episodes, self.device = config, num_episodes, device
        self.generator = torch.Generator(device=device)
        self.seeded, self.start_seed = False, 0
        n, side = num_episodes, config.screen_size
        self.num_images = NUM_TEST_GAMES if config.split == "test" else NUM_TRAIN_GAMES
        self.ball_row = torch.zeros(n, dtype=torch.int64, device=device)
        self.ball_col = torch.zeros(n, device=device)
        self.ball_vx = torch.zeros(n, device=device)
        self.paddle = torch.zeros(n, dtype=torch.int64, device=device)
        self.canvases = torch.zeros(n, side, side, dtype=torch.uint8, device=device)
        dtype = table_dtype(torch.uint8, config.n_scales, config.scale_factor, device)
        self.integral = integral_image(self.canvases, dtype=dtype)
        self.fixations = torch.zeros(n, 2, device=device)
        self.glimpses = torch.zeros(n, *config.glimpse_shape, device=device)
        self.steps = torch.zeros(n, dtype=torch.int64, device=device)
        self.image_indices = torch.zeros(n, dtype=torch.int64, device=device)
        self.uniform_steps: int | None = None
        self.image_pool: torch.Tensor | range | None = None

    def reset(
        self,
        mask: torch.Tensor | None = None,
        indices: torch.Tensor | None = None,
        check: bool = True,
        samples: torch.Tensor | int = 0,
    ) -> None:
        """Start new games in the rows of ``mask`` (``None``: all), as ``GlimpseCore.reset``:
        ``indices`` choose the games (default: random ones), ``samples`` number the episodes
        played on one fixed game (they key the random start fixation of test games)."""
        config, device = self.config, self.device
        rows = None if mask is None else mask.nonzero().squeeze(1)
        count = self.num_episodes if rows is None else rows.numel()
        samples = self._samples(samples, count, check)
        if indices is None:
            indices = self._draw_indices(count)
        else:
            try:
                indices = torch.as_tensor(indices, device=device)
            except (TypeError, ValueError, RuntimeError, OverflowError) as error:
                raise ValueError(
                    f"game indices must be integers in [0, {self.num_images}), got {error}"
                ) from None
            if check:
                self._check_indices(indices, count)
            indices = indices.long()
        keys = fixed_key(indices ^ _SPLIT_SALT[config.split])
        side = config.screen_size
        column = (hash_unit(keys, 0) * side).floor().clamp(max=side - 1)
        drift = (2 * hash_unit(keys, 1) - 1) * config.max_drift
        if config.start == "center":
            fixations = torch.zeros(count, 2, device=device)
        elif config.uses_fixed_canvases:
            episode = episode_key(indices, samples.long(), self.start_seed)
            fixations = torch.stack([hash_unit(episode, 0), hash_unit(episode, 1)], dim=1) * 2 - 1
        else:
            fixations = torch.rand(count, 2, generator=self.generator, device=device) * 2 - 1
        paddle = torch.full((count,), (side - config.paddle_width) // 2, device=device)
        if rows is None:
            self.ball_row = torch.zeros(count, dtype=torch.int64, device=device)
            self.ball_col, self.ball_vx, self.paddle = column, drift, paddle.long()
            self.image_indices, self.fixations = indices, fixations
            self.steps = torch.zeros_like(self.steps)
            self.uniform_steps = 0
        else:
            self.ball_row = self.ball_row.index_put((rows,), torch.zeros_like(rows))
            self.ball_col = self.ball_col.index_put((rows,), column)
            self.ball_vx = self.ball_vx.index_put((rows,), drift)
            self.paddle = self.paddle.index_put((rows,), paddle.long())
            self.image_indices = self.image_indices.index_put((rows,), indices)
            self.fixations = self.fixations.index_put((rows,), fixations)
            self.steps = self.steps.index_put((rows,), torch.zeros_like(rows))
            self.uniform_steps = None
        self._draw_and_sense()

    def step(self, locations: torch.Tensor, moves: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Move the paddles (``moves`` int64 ``[N]`` in ``{0, 1, 2}``) and the balls one row,
        look at ``locations`` (float ``[N, 2]``, clamped to ``[-1, 1]``). Inputs are trusted.

        Returns ``(reward, terminated)``: float32 ``[N]`` (1.0 for a caught ball on the last
        step) and bool ``[N]``.
        """
        config, side = self.config, self.config.screen_size
        self.steps = self.steps + 1
        if self.uniform_steps is not None:
            self.uniform_steps += 1
        self.paddle = (self.paddle + moves.long() - 1).clamp(0, side - config.paddle_width)
        self.ball_row = self.ball_row + 1
        column = self.ball_col + self.ball_vx
        # Bounce off the side walls: reflect the column and reverse the drift.
        low, high = column < 0, column > side - 1
        column = torch.where(low, -column, torch.where(high, 2 * (side - 1) - column, column))
        self.ball_vx = torch.where(low | high, -self.ball_vx, self.ball_vx)
        self.ball_col = column
        self.fixations = locations.detach().to(torch.float32).clamp(-1.0, 1.0)
        terminated = self.steps >= config.n_glimpses
        ball = self.ball_column()
        caught = (ball >= self.paddle) & (ball < self.paddle + config.paddle_width)
        reward = (terminated & caught).float()
        self._draw_and_sense()
        return reward, terminated

    def ball_column(self) -> torch.Tensor:
        """int64 ``[N]``: the pixel column of each ball."""
        return self.ball_col.round().long().clamp(0, self.config.screen_size - 1)

    def _draw_and_sense(self) -> None:
        config, side, n = self.config, self.config.screen_size, self.num_episodes
        screens = torch.zeros(n, side, side, dtype=torch.uint8, device=self.device)
        rows = torch.arange(n, device=self.device)
        screens[rows, self.ball_row.clamp(max=side - 1), self.ball_column()] = 255
        columns = self.paddle[:, None] + torch.arange(config.paddle_width, device=self.device)
        screens[rows[:, None], side - 1, columns] = 255
        self.canvases = screens
        self.integral = integral_image(screens, out=self.integral)
        self.glimpses = glimpse_from_integral(
            self.integral, self.fixations, config.patch_size, config.n_scales, config.scale_factor
        )


class CatchVectorEnv(GlimpseVectorEnv):
    """N Catch games as torch tensors on one device (``gymnasium.make_vec("GlimpseCatch-v0",
    num_envs=N, vectorization_mode="vector_entry_point", device=...)``).

    Observations ``{"glimpse": float32 [N, k, g, g], "location": float32 [N, 2]}``; actions
    ``{"location": float [N, 2], "move": int [N]}`` (``move`` in ``{0, 1, 2}``: left, stay,
    right); rewards float32 ``[N]`` (1.0 for a caught ball, on the last step only). The
    autoreset modes, reset options (``reset_mask``, ``indices`` = game indices, ``samples``),
    seeding and validation are ``GlimpseVectorEnv``'s; at a game's end the info gives its
    ``index`` (the game) and ``glimpses`` with their masks.
    """

    metadata = {**GlimpseVectorEnv.metadata, "render_fps": 8}

    @classmethod
    def make_config(cls, kwargs: dict[str, Any]) -> CatchConfig:
        return CatchConfig.from_kwargs(kwargs, f"{cls.__name__}.__init__()")

    def _make_core(self, num_envs: int) -> CatchCore:
        return CatchCore(self.config, num_envs, self.device)

    def _spaces(self) -> tuple[Any, Any]:
        return catch_spaces(self.config)

    def _final_info(self, ended: torch.Tensor, glimpses: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "index": torch.where(ended, self.core.image_indices, -1),
            "_index": ended,
            "glimpses": torch.where(ended, glimpses.clamp(max=self.config.n_glimpses), 0),
            "_glimpses": ended,
        }

    def _actions_as_tensors(self, actions: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(actions, Mapping) or set(actions) != {"location", "move"}:
            raise ValueError("actions must be a dict with keys 'location' and 'move'")
        location = _as_tensor(actions["location"], "actions['location']", self.device)
        move = _as_tensor(actions["move"], "actions['move']", self.device)
        if not self.validate_actions:
            return location, move
        check_location_action(location, self.num_envs)
        check_choice_action(move, "move", self.num_envs, MOVES)
        return location, move


class CatchEnv(OneEpisode, gym.Env[dict[str, np.ndarray], dict[str, Any]]):
    """One Catch game with numpy at the boundary (``gymnasium.make("GlimpseCatch-v0")``).

    The game, spaces and rules of ``CatchVectorEnv`` with ``N = 1`` (see the module docstring):
    action ``{"location": (x, y), "move": 0 | 1 | 2}``; observation ``{"glimpse", "location"}``;
    reward 1.0 when the ball is caught on the last of ``screen_size - 1`` steps; the info of the
    last step gives ``index`` (the game) and ``glimpses``. Reset options: ``{"index": i}`` plays
    game ``i`` of the split, ``{"sample": m}`` numbers the episode (it keys the start fixation
    of test games). ``render()`` (``render_mode="rgb_array"``): the screen with the ball, the
    paddle, the retina's squares and the glimpse (``ram_env.render.draw_frame``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(
        self, render_mode: str | None = None, device: str | torch.device = "cpu", **config: Any
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        self.render_mode = render_mode
        self.config = CatchConfig.from_kwargs(config, f"{type(self).__name__}.__init__()")
        self.core = CatchCore(self.config, 1, resolve_device(device))
        self.observation_space, self.action_space = catch_spaces(self.config)
        self._finished = True
        self._path: list[np.ndarray] = []

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.core.seed(seed, self.np_random)
        self._reset_core(options)
        self._finished = False
        self._path = [self.core.fixations[0].cpu().numpy().copy()]
        return self._observation(), {}

    def step(
        self, action: Mapping[str, Any]
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._finished:
            raise RuntimeError("step() called on a finished game: call reset() first")
        if not isinstance(action, Mapping) or set(action) != {"location", "move"}:
            raise ValueError(
                f"action must be a dict with keys 'location' and 'move', got {action!r}"
            )
        location = checked_location(action["location"])
        move = checked_choice(action["move"], "move", MOVES)
        device = self.core.device
        reward, terminated = self.core.step(
            torch.as_tensor(location, device=device)[None], torch.tensor([move], device=device)
        )
        self._finished = bool(terminated[0])
        info: dict[str, Any] = {}
        if self._finished:
            info = {"index": int(self.core.image_indices[0]), "glimpses": len(self._path)}
        else:
            self._path.append(self.core.fixations[0].cpu().numpy().copy())
        return self._observation(), float(reward[0]), self._finished, False, info

    def render(self) -> np.ndarray | None:
        """The screen now as a uint8 RGB frame ``[h, w, 3]``: ball, paddle, the fixation path,
        the retina's squares and the glimpse (``ram_env.render.draw_frame``)."""
        if self.render_mode is None:
            gym.logger.warn(
                'render() was called without a render_mode; use render_mode="rgb_array"'
            )
            return None
        from ram_env.render import draw_frame

        return draw_frame(self.core.canvases[0], self._path, self.core.glimpses[0], self.config)
