"""``GlimpseVectorEnv``: N glimpse episodes as torch tensors on one device (the core, batched)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from ram_env.core import (
    NUM_CLASSES,
    GlimpseConfig,
    GlimpseCore,
    check_flag,
    check_int,
    resolve_device,
)
from ram_env.env import check_render_mode, glimpse_spaces

__all__ = ["GlimpseVectorEnv", "index_sweep"]


class GlimpseVectorEnv(VectorEnv):
    """A natively batched glimpse env: every tensor lives on ``device``, no per-step host copy.

    Observations are ``{"glimpse": float32 [N, k, g, g], "location": float32 [N, 2]}``;
    rewards float32 ``[N]``; terminations and truncations bool ``[N]``; actions
    ``{"location": float [N, 2], "label": int [N]}`` (torch tensors, or anything
    ``torch.as_tensor`` takes), plus an optional ``"answer"`` (bool ``[N]``: those sub-envs
    answer now, as in ``GlimpseEnv``). The episode of each sub-env is that of ``GlimpseEnv``.
    When episodes end, the info gives, for those sub-envs, ``"label"`` (true class),
    ``"index"`` (image index in the split) and ``"glimpses"`` (glimpses seen when answering),
    each int64 ``[N]`` with its ``"_label"``/``"_index"``/``"_glimpses"`` bool mask
    (Gymnasium's vector info convention) and -1 / 0 elsewhere: a running episode's class is
    never shown. On steps where the host knows no episode ends, the info is ``{}``.

    Autoreset (``autoreset_mode``, Gymnasium's three modes through one mask-driven path):

    * ``NEXT_STEP`` (default): the step after an episode's last step resets that sub-env and
      ignores its action (reward 0, not terminated). Episodes reset together stay in step and
      all end together, every ``n_glimpses`` steps, and this is known on the host, so no
      device-to-host sync happens. After a partial reset the sub-envs run out of step; then
      each step checks on the device which ones to reset, which costs one sync.
    * ``SAME_STEP``: a sub-env whose episode ends is reset within the same step: the
      observation returned is the new episode's first, and ``infos["final_obs"]`` (the ended
      episodes' last observation, the same dict of ``[N, ...]`` tensors as an observation:
      batched on the device rather than Gymnasium's host array of objects) and
      ``infos["final_info"]`` (the end-of-episode fields above) hold the old one, with the
      ``"_final_obs"``/``"_final_info"`` bool ``[N]`` masks.
    * ``DISABLED``: stepping a finished sub-env is an error; restart sub-envs with
      ``reset(options={"reset_mask": bool [N]})``.

    Gymnasium's numpy vector wrappers (``RecordEpisodeStatistics``, ``NormalizeReward``, ...)
    need numpy: put Gymnasium's ``ArrayConversion(env, env_xp=torch, target_xp=numpy)``
    (``gymnasium.wrappers.vector``) between them and this env (README, "Gymnasium wrappers").

    Reset options: ``"reset_mask"`` (bool ``[N]``, which sub-envs to reset; default all),
    ``"indices"`` (int ``[M]``, the images for the ``M`` reset sub-envs, in order; default
    random), so an evaluation can sweep a split exactly once, and ``"samples"`` (an int or int
    ``[M]``, default 0: the number of each episode among those played on its image). On fixed
    canvases a random start fixation is a pure function of ``(index, sample, seed)``, the seed
    being the last one given to ``reset`` (``GlimpseCore.reset``): the ``M`` sampled episodes
    of one image start apart, and a score does not depend on the batch layout.

    ``validate_actions=True`` checks every action (shape, dtype, NaN, label range, finished
    sub-envs) and every ``indices`` option, and names the offending sub-envs; the checks cost a
    sync per step, so a trusted agent on a GPU may turn them off.
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "render_fps": 2,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        validate_actions: bool = True,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        **config: Any,
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        autoreset_mode = _autoreset_mode(autoreset_mode)
        self.config = self.make_config(config)
        if max_episode_steps is not None and max_episode_steps < self.config.n_glimpses:
            raise ValueError(
                f"episodes last exactly n_glimpses={self.config.n_glimpses} steps; "
                f"max_episode_steps={max_episode_steps} would cut them short"
            )
        self.num_envs = check_int("num_envs", num_envs, low=1)
        self.device = resolve_device(device)
        self.core = self._make_core(self.num_envs)
        self._needs_reset = True
        self.render_mode = render_mode
        check_flag("validate_actions", validate_actions)
        self.validate_actions = bool(validate_actions)
        self.metadata = {**self.metadata, "autoreset_mode": autoreset_mode}
        self.single_observation_space, self.single_action_space = self._spaces()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    # --- the task: what a subclass on the same pattern (ram_env.catch) replaces -------------

    @classmethod
    def make_config(cls, kwargs: dict[str, Any]) -> Any:
        """The task's config from ``make``'s keyword arguments (``TypeError`` for an unknown
        one, ``ValueError`` for a bad value); a classmethod, so that a caller can check
        arguments before it builds anything (``agents.sb3.check_env_kwargs``)."""
        return GlimpseConfig.from_kwargs(kwargs, f"{cls.__name__}.__init__()")

    def _make_core(self, num_envs: int) -> Any:
        return GlimpseCore(self.config, num_envs, self.device)

    def _spaces(self) -> tuple[Any, Any]:
        return glimpse_spaces(self.config)

    @property
    def autoreset_mode(self) -> AutoresetMode:
        return self.metadata["autoreset_mode"]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Reset all sub-envs, or those in ``options["reset_mask"]``; see the class docstring."""
        super().reset(seed=seed)
        self.core.seed(seed, self.np_random)
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        indices = options.pop("indices", None)
        samples = options.pop("samples", 0)
        if options:
            raise ValueError(
                f"unknown reset option(s) {sorted(options)}; "
                "known: ['indices', 'reset_mask', 'samples']"
            )
        if mask is not None:
            mask = torch.as_tensor(mask, device=self.device)
            if mask.shape != (self.num_envs,) or mask.dtype != torch.bool:
                raise ValueError(
                    f"options['reset_mask'] must be a bool tensor of shape ({self.num_envs},), "
                    f"got dtype {mask.dtype} shape {tuple(mask.shape)}"
                )
        if mask is not None and self._needs_reset:
            raise RuntimeError("reset() with a reset_mask needs a full reset() first")
        self.core.reset(mask=mask, indices=indices, check=self.validate_actions, samples=samples)
        self._needs_reset = False
        return self._observation(), {}

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """Step every sub-env; autoreset as ``autoreset_mode`` says (see the class docstring).

        One path for the three modes, driven by one mask: the sub-envs whose episode is over.
        NEXT_STEP resets them before stepping (their action is ignored: reward 0, not
        terminated); SAME_STEP resets those that end now, after stepping, and reports their
        last observation and info in ``infos["final_obs"]``/``infos["final_info"]``; DISABLED
        refuses them. Whether the mask is all, none or some is known on the host while the
        sub-envs run in step (``core.uniform_steps``), so that case costs no device sync.
        """
        if self._needs_reset:
            raise RuntimeError("step() called before reset(): call reset() first")
        parsed = self._actions_as_tensors(actions)
        core, mode, n = self.core, self.autoreset_mode, self.config.n_glimpses
        over = self._episodes_over()  # True: all; False: none; else a bool [N] tensor
        if mode == AutoresetMode.DISABLED and over is not False and self.validate_actions:
            self._check_not_finished()
        if mode == AutoresetMode.NEXT_STEP and over is True:
            core.reset()
            zeros = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
            return self._observation(), zeros.float(), zeros, zeros.clone(), {}
        glimpses = core.steps + 1  # glimpses seen when acting: the count of an episode ending now
        reward, terminated = core.step(*parsed)
        if mode == AutoresetMode.NEXT_STEP and over is not False:
            core.reset(mask=over)
            reward = reward.masked_fill(over, 0.0)
            terminated = terminated & ~over
        truncated = torch.zeros_like(terminated)
        if core.uniform_steps is not None and core.uniform_steps < n:  # host: none ended
            return self._observation(), reward, terminated, truncated, {}
        ended = terminated.clone()  # the info's masks, apart from ``terminated``
        info = self._final_info(ended, glimpses)
        if mode != AutoresetMode.SAME_STEP:
            return self._observation(), reward, terminated, truncated, info
        final_obs = self._observation()
        core.reset(mask=None if core.uniform_steps == n else terminated)
        infos = {"final_obs": final_obs, "_final_obs": ended, "final_info": info,
                 "_final_info": ended}  # fmt: skip
        return self._observation(), reward, terminated, truncated, infos

    def _episodes_over(self) -> bool | torch.Tensor:
        """Which episodes are over: ``True`` (all) or ``False`` (none) when the host knows it
        (every sub-env reset together), else a bool ``[N]`` tensor."""
        uniform = self.core.uniform_steps
        if uniform is not None:
            return uniform >= self.config.n_glimpses
        return self.core.steps >= self.config.n_glimpses

    def _final_info(self, ended: torch.Tensor, glimpses: torch.Tensor) -> dict[str, torch.Tensor]:
        """The info of the episodes that ended (bool ``[N]`` ``ended``), in Gymnasium's vector
        form: each field with its ``_field`` mask, and a neutral value elsewhere (a running
        episode's class is never shown)."""
        core = self.core
        return {
            "label": torch.where(ended, core.targets, -1),
            "_label": ended,
            "index": torch.where(ended, core.image_indices, -1),
            "_index": ended,
            "glimpses": torch.where(ended, glimpses.clamp(max=self.config.n_glimpses), 0),
            "_glimpses": ended,
        }

    # --- public state for adapters and drawing (read-only views of the episodes) ------------

    @property
    def num_images(self) -> int:
        """Number of images in the split (valid image indices are ``[0, num_images)``)."""
        return self.core.num_images

    @property
    def episode_steps(self) -> torch.Tensor:
        """int64 ``[N]``: steps taken in each sub-env's current episode (``n_glimpses`` once it
        is over); the glimpses seen so far are ``episode_steps + 1``, at most ``n_glimpses``."""
        return self.core.steps

    @property
    def image_indices(self) -> torch.Tensor:
        """int64 ``[N]``: the image (index in the split) of each sub-env's current episode."""
        return self.core.image_indices

    @property
    def canvases(self) -> torch.Tensor:
        """uint8 ``[N, H, W]``: each sub-env's canvas (intensities 0-255), for drawing."""
        return self.core.canvases

    def set_image_pool(self, indices: Any | None) -> None:
        """Draw the images of later resets without ``indices`` (autoresets included) uniformly
        from ``indices`` (int ``[M]``, in ``[0, num_images)``), e.g. the training images
        without a held-out validation part; ``None``: the whole split.

        Raises:
            ValueError: ``indices`` is empty, not 1-D integers, or out of range.
        """
        self.core.set_image_pool(indices)

    def render(self) -> tuple[np.ndarray, ...] | None:
        """The current frame of every sub-env, a tuple of uint8 ``[h, w, 3]`` arrays, as
        Gymnasium's vector envs render (``gymnasium.wrappers.vector.RecordVideo`` tiles them).

        The vector env keeps no history, so each frame shows the current fixation, its retina
        squares and glimpse, without the path or labels (``ram_env.render.vector_frames``; the
        single env's frames have both). Drawing costs host time per sub-env: render a few.
        ``render_grid`` gives one picture of the first few. ``None`` (with a warning) without a
        ``render_mode``. Before the first ``reset()`` the frames show blank canvases at the
        centre (SB3's ``VecVideoRecorder`` renders once when it is made).
        """
        from ram_env.render import vector_frames  # lazy: drawing is not needed to step

        if not self._can_render():
            return None
        return tuple(vector_frames(self))

    def render_grid(self, max_episodes: int = 9, columns: int = 3) -> np.ndarray | None:
        """One uint8 ``[h, w, 3]`` picture: the first ``max_episodes`` sub-envs' frames in a grid
        of ``columns`` columns (``ram_env.render.vector_frame``)."""
        from ram_env.render import vector_frame

        if not self._can_render():
            return None
        return vector_frame(self, max_episodes, columns)

    def _can_render(self) -> bool:
        if self.render_mode is None:
            from gymnasium import logger

            logger.warn('render() was called without a render_mode; use render_mode="rgb_array"')
            return False
        return True

    @property
    def fixations(self) -> torch.Tensor:
        """float32 ``[N, 2]``: each sub-env's current fixation ``(x, y)`` in ``[-1, 1]``."""
        return self.core.fixations

    @property
    def glimpses(self) -> torch.Tensor:
        """float32 ``[N, k, g, g]``: each sub-env's current glimpse."""
        return self.core.glimpses

    def get_rng_state(self) -> torch.Tensor:
        """State of the generator behind image choice, canvas keys and start fixations."""
        return self.core.generator.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        """Restore a state from ``get_rng_state`` (exact resumption of a seeded run)."""
        self.core.set_rng_state(state)

    def _actions_as_tensors(
        self, actions: Mapping[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if not isinstance(actions, Mapping) or not (
            {"location", "label"} <= set(actions) <= {"location", "label", "answer"}
        ):
            raise ValueError(
                "actions must be a dict with keys 'location' and 'label' (and optionally 'answer')"
            )
        if not self.validate_actions:
            answer = actions.get("answer")
            return (
                torch.as_tensor(actions["location"], device=self.device),
                torch.as_tensor(actions["label"], device=self.device),
                None if answer is None else torch.as_tensor(answer, device=self.device),
            )
        location = _as_tensor(actions["location"], "actions['location']", self.device)
        label = _as_tensor(actions["label"], "actions['label']", self.device)
        answer = actions.get("answer")
        if answer is not None:
            answer = _as_tensor(answer, "actions['answer']", self.device)
        n = self.num_envs
        check_location_action(location, n)
        check_choice_action(label, "label", n, NUM_CLASSES)
        if answer is not None and (answer.shape != (n,) or answer.dtype != torch.bool):
            raise ValueError(
                f"actions['answer'] must be a bool tensor of shape ({n},), "
                f"got dtype {answer.dtype} shape {tuple(answer.shape)}"
            )
        return location, label, answer

    def _check_not_finished(self) -> None:
        _raise_for_rows(
            self.core.steps >= self.config.n_glimpses,
            "step() on finished episodes (autoreset is DISABLED: reset them with "
            "options={'reset_mask': ...})",
        )

    def _observation(self) -> dict[str, torch.Tensor]:
        return {"glimpse": self.core.glimpses, "location": self.core.fixations}


def _autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """An ``AutoresetMode`` from itself, its value (``"NextStep"``) or name (``"next_step"``)."""
    if isinstance(mode, AutoresetMode):
        return mode
    for member in AutoresetMode:
        if str(mode).lower() in (member.value.lower(), member.name.lower()):
            return member
    raise ValueError(
        f"unknown autoreset_mode {mode!r}; use one of {[m.name for m in AutoresetMode]}"
    )


def _as_tensor(value: Any, name: str, device: torch.device) -> torch.Tensor:
    """``torch.as_tensor`` with an error that names the action entry (strings, objects)."""
    try:
        return torch.as_tensor(value, device=device)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{name} must be a numeric tensor, got {value!r} ({error})") from error


def check_location_action(location: torch.Tensor, n: int) -> None:
    """``ValueError`` unless ``actions['location']`` is a finite real ``[n, 2]`` tensor, float or
    integer as the single env takes (not bool or complex), naming the sub-envs where it is not
    finite; the one check of every native vector env's fixations."""
    dtype = location.dtype
    if location.shape != (n, 2) or dtype.is_complex or dtype == torch.bool:
        raise ValueError(
            f"actions['location'] must be a real (float or integer) tensor of shape ({n}, 2), "
            f"got dtype {location.dtype} shape {tuple(location.shape)}"
        )
    _raise_for_rows(~torch.isfinite(location).all(dim=1), "actions['location'] is not finite")


def check_choice_action(value: torch.Tensor, name: str, n: int, high: int) -> None:
    """``ValueError`` unless ``actions[name]`` is an integer ``[n]`` tensor in ``[0, high)``
    (a label, a paddle move), naming the sub-envs out of range."""
    dtype = value.dtype
    if value.shape != (n,) or dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
        raise ValueError(
            f"actions['{name}'] must be an integer tensor of shape ({n},), "
            f"got dtype {dtype} shape {tuple(value.shape)}"
        )
    _raise_for_rows((value < 0) | (value >= high), f"actions['{name}'] is outside [0, {high})")


def _raise_for_rows(bad: torch.Tensor, what: str) -> None:
    """Raise ``ValueError`` naming the sub-envs where the bool ``[N]`` tensor ``bad`` is true."""
    rows = bad.nonzero().squeeze(1)
    if rows.numel():
        shown = rows[:10].tolist()
        more = f" and {rows.numel() - 10} more" if rows.numel() > 10 else ""
        raise ValueError(f"{what} in sub-env(s) {shown}{more}")


def index_sweep(indices: torch.Tensor, batch: int) -> Iterator[tuple[torch.Tensor, int]]:
    """Play each image of ``indices`` (int64 ``[n]``) once with ``batch`` sub-envs.

    Yields ``(batch_indices, count)`` in order: ``batch_indices`` has exactly ``batch``
    entries (for ``reset(options={"indices": ...})``), of which the first ``count`` are the
    next images of ``indices``; the last batch is padded by repeating its last image, whose
    extra results the caller drops.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    for start in range(0, len(indices), batch):
        chunk = indices[start : start + batch]
        yield torch.cat([chunk, chunk[-1:].expand(batch - len(chunk))]), len(chunk)
