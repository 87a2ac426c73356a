"""``GlimpseEnv``: one glimpse episode with numpy at the boundary (the core with N = 1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from ram_env.core import NUM_CLASSES, GlimpseConfig, GlimpseCore, check_int, resolve_device

__all__ = ["GlimpseEnv", "OneEpisode", "check_render_mode", "glimpse_spaces"]


def glimpse_spaces(config: GlimpseConfig) -> tuple[spaces.Dict, spaces.Dict]:
    """``(observation_space, action_space)`` of one episode of the task ``config``."""
    observation_space = spaces.Dict(
        glimpse=spaces.Box(0.0, 1.0, config.glimpse_shape, np.float32),
        location=spaces.Box(-1.0, 1.0, (2,), np.float32),
    )
    action_space = spaces.Dict(
        location=spaces.Box(-1.0, 1.0, (2,), np.float32),
        label=spaces.Discrete(NUM_CLASSES),
    )
    return observation_space, action_space


def check_render_mode(render_mode: str | None, metadata: dict[str, Any]) -> None:
    """Raise if ``render_mode`` is neither ``None`` nor one of ``metadata["render_modes"]``."""
    if render_mode is not None and render_mode not in metadata["render_modes"]:
        raise ValueError(
            f"render_mode must be one of {metadata['render_modes']} or None, got {render_mode!r}"
        )


class OneEpisode:
    """What the one-episode numpy faces share over their core with ``N = 1`` (``GlimpseEnv``,
    ``ram_env.catch.CatchEnv``): the public state adapters read, and the observation."""

    core: Any

    @property
    def num_images(self) -> int:
        """Number of images (or games) in the split: valid ``options["index"]`` are
        ``[0, num_images)``."""
        return self.core.num_images

    @property
    def episode_steps(self) -> int:
        """Steps taken in the current episode (``n_glimpses`` once it is over); the glimpses
        seen so far are ``episode_steps + 1``, at most ``n_glimpses``."""
        return int(self.core.steps[0])

    def _reset_core(self, options: dict[str, Any] | None) -> None:
        """Start the core's episode as the reset ``options`` say: ``{"index": i}`` (an int in
        ``[0, num_images)``) and ``{"sample": m}`` (an int in ``[0, 2**63)``, default 0);
        ``ValueError`` naming an unknown option or a bad value."""
        options = dict(options or {})
        index, sample = options.pop("index", None), options.pop("sample", 0)
        if options:
            raise ValueError(
                f"unknown reset option(s) {sorted(options)}; known: ['index', 'sample']"
            )
        indices = None
        if index is not None:
            indices = torch.tensor(
                [check_int("options['index']", index, 0, self.core.num_images - 1)]
            )
        sample = check_int("options['sample']", sample, 0, 2**63 - 1)
        self.core.reset(indices=indices, samples=sample)

    def _observation(self) -> dict[str, np.ndarray]:
        return {
            "glimpse": _to_numpy(self.core.glimpses[0]),
            "location": _to_numpy(self.core.fixations[0]),
        }


class GlimpseEnv(OneEpisode, gym.Env[dict[str, np.ndarray], dict[str, Any]]):
    """Classify an image that can only be seen through a few foveated glimpses.

    ## Description

    The task of Mnih et al. (2014), "Recurrent Models of Visual Attention". A canvas holds one
    image of a dataset (MNIST by default), possibly moved to a random place and surrounded by
    clutter. The agent never sees the canvas: it sees a glimpse (a retina of ``n_scales``
    concentric patches of ``patch_size`` pixels, the outer ones coarser) around its fixation,
    chooses where to look next, and after ``n_glimpses`` glimpses names the class.

    ## Action Space

    ``Dict(location=Box(-1, 1, (2,), float32), label=Discrete(10))``. ``location`` is the next
    fixation ``(x, y)``: x to the right, y down, ``(-1, -1)`` the top-left corner, ``(1, 1)``
    the bottom-right (see ``ram_env.sensor``). A location outside ``[-1, 1]`` is clamped, as
    the paper's Gaussian policy is; a NaN or a wrong shape is an error. ``label`` is ignored
    until the last step. An optional ``"answer"`` bool entry (not part of the space; the
    Discrete adapter of ``ram_env.wrappers`` uses it): ``True`` makes this step the last, the
    label scored now (an adaptive number of glimpses); once it is given, only answers are
    scored, so reaching the cap with ``"answer": False`` scores 0.

    ## Observation Space

    ``Dict(glimpse=Box(0, 1, (k, g, g), float32), location=Box(-1, 1, (2,), float32))``: the
    "what" (scale 0 is the sharpest) and the "where" (the fixation the glimpse was taken at).

    ## Rewards

    0 on every step but the last; on the last, 1 if ``label`` is the true class, else 0.

    ## Starting State

    A random image of the split (or ``options={"index": i}``), a fresh canvas, and the first
    glimpse at a uniform random fixation (``start="center"``: at the centre). On a fixed split
    (the test split) the canvas is a function of the image index alone, and the random start a
    function of the image index, the sample number (``options={"index": i, "sample": m}``,
    default 0) and the last seed given to ``reset``, so every agent is scored on the very same
    pictures from the very same first glimpses.

    ## Episode End

    Terminated after exactly ``n_glimpses`` steps (or at an ``"answer"``), the last of which
    is scored; the info of that step carries ``"label"`` (the true class, never shown earlier),
    ``"index"`` (the image's index in the split) and ``"glimpses"`` (glimpses seen when
    answering). Never truncated. Stepping a finished episode is an error.

    ## Arguments

    ``gymnasium.make(id, render_mode=None, device="cpu", **config)`` where ``config`` is any
    field of ``ram_env.core.GlimpseConfig``: ``dataset``, ``split``, ``canvas_size``,
    ``placement``, ``clutter_count``, ``clutter_size``, ``n_glimpses``, ``patch_size``,
    ``n_scales``, ``scale_factor``, ``start``, ``fixed_canvases``, ``data_root``. Each
    registered id sets the paper's values for its task.

    ## Vectorized environment

    ``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point",
    device="cuda")`` returns ``ram_env.vector.GlimpseVectorEnv``: the same core with N episodes
    as torch tensors on the device.

    ## Version History

    * v0: Initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(
        self,
        render_mode: str | None = None,
        device: str | torch.device = "cpu",
        **config: Any,
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        self.render_mode = render_mode
        self.config = GlimpseConfig.from_kwargs(config, f"{type(self).__name__}.__init__()")
        self.core = GlimpseCore(self.config, 1, resolve_device(device))
        self.observation_space, self.action_space = glimpse_spaces(self.config)
        self._finished = True
        self._path: list[np.ndarray] = []
        self._answer: int | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode. ``options``: ``{"index": i}`` shows image ``i`` of the split;
        ``{"sample": m}`` (an int >= 0, default 0) numbers the episode among those played on
        one fixed image (it keys the start fixation on fixed canvases)."""
        super().reset(seed=seed)
        self.core.seed(seed, self.np_random)
        self._reset_core(options)
        self._finished = False
        self._path = [_to_numpy(self.core.fixations[0])]
        self._answer = None
        return self._observation(), {}

    def step(
        self, action: Mapping[str, Any]
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._finished:
            raise RuntimeError("step() called on a finished episode: call reset() first")
        location, label, answer = self._checked_action(action)
        reward, terminated = self.core.step(
            torch.as_tensor(location, device=self.core.device)[None],
            torch.tensor([label], device=self.core.device),
            None if answer is None else torch.tensor([answer], device=self.core.device),
        )
        self._finished = bool(terminated[0])
        info: dict[str, Any] = {}
        if self._finished:
            info = {
                "label": int(self.core.targets[0]),
                "index": int(self.core.image_indices[0]),
                "glimpses": len(self._path),  # the fixations seen, this step's not among them
            }
            self._answer = label
        else:
            self._path.append(_to_numpy(self.core.fixations[0]))
        return self._observation(), float(reward[0]), self._finished, False, info

    def render(self) -> np.ndarray | None:
        """The episode now as a uint8 RGB frame ``[h, w, 3]`` (``render_mode="rgb_array"``).

        The canvas enlarged, the retina's squares at the current fixation, the earlier
        fixations as a numbered path, the glimpse beside it and, once the episode has ended
        (never earlier), the answered and the true class; see ``ram_env.render.draw_frame``.
        Returns ``None`` (with a warning) when the env was made without a ``render_mode``.
        """
        if self.render_mode is None:
            gym.logger.warn(
                "render() was called without a render_mode; make the env with "
                'render_mode="rgb_array"'
            )
            return None
        from ram_env.render import draw_frame  # lazy: `python -m ram_env.render` stays clean

        ended = self._finished and self._answer is not None
        return draw_frame(
            self.core.canvases[0],
            self._path,
            None if ended else self.core.glimpses[0],  # at the end: recomputed at path[-1]
            self.config,
            answer=self._answer if ended else None,
            truth=int(self.core.targets[0]) if ended else None,
        )

    def _checked_action(self, action: Mapping[str, Any]) -> tuple[np.ndarray, int, bool | None]:
        if not isinstance(action, Mapping) or not (
            {"location", "label"} <= set(action) <= {"location", "label", "answer"}
        ):
            raise ValueError(
                "action must be a dict with keys 'location' and 'label' (and optionally "
                f"'answer'), got {action!r}"
            )
        answer = action.get("answer")
        if answer is not None and not isinstance(answer, (bool, np.bool_)):
            raise ValueError(f"action['answer'] must be a bool, got {answer!r}")
        location = checked_location(action["location"])
        label = checked_choice(action["label"], "label", NUM_CLASSES)
        return location, label, None if answer is None else bool(answer)


def _host(value: Any) -> Any:
    """A torch tensor as a numpy array (detached, on the CPU; bfloat16, which numpy lacks, as
    float32); anything else as it is."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return value


def checked_location(value: Any) -> np.ndarray:
    """A single env's ``action["location"]`` (a sequence, numpy array or torch tensor of 2
    real numbers) as float32 ``(2,)`` clipped to ``[-1, 1]``; ``ValueError`` naming what is
    wrong otherwise (not real numbers, another shape, inf or nan). The one check of the
    numpy faces (``GlimpseEnv``, ``ram_env.catch.CatchEnv``)."""
    location = np.asarray(_host(value))
    if location.dtype.kind not in "fiu":  # not bool, complex, str, bytes or object
        raise ValueError(
            f"action['location'] must hold real numbers, got dtype {location.dtype}: {value!r}"
        )
    if location.shape != (2,):
        raise ValueError(f"action['location'] must have shape (2,), got {location.shape}")
    location = location.astype(np.float64)
    if not np.isfinite(location).all():
        raise ValueError(f"action['location'] must be finite, got {location}")
    return np.clip(location, -1.0, 1.0).astype(np.float32)  # huge values: the border


def checked_choice(value: Any, name: str, high: int) -> int:
    """A single env's discrete ``action[name]`` (an int, or a 0-d numpy array or torch tensor
    of one) as an int in ``[0, high)``; ``ValueError`` naming ``name`` otherwise."""
    value = _host(value)
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    return check_int(f"action[{name!r}]", value, 0, high - 1)


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A host copy, on every device: observations never alias the env's state."""
    return tensor.to("cpu", copy=True).numpy()
