"""The batched glimpse episode: the single source of truth behind both env faces.

``GlimpseCore`` holds ``num_episodes`` episodes on one torch device: their canvases, true labels,
fixations, latest glimpses and step counts. ``GlimpseEnv`` (numpy, one episode) and
``GlimpseVectorEnv`` (torch, N episodes) are thin faces over it, so they cannot drift apart.

An episode: ``reset`` shows glimpse 1 at the start fixation. Each ``step(location, label)``
moves the fixation (clamped to ``[-1, 1]``, as the paper's policy clamps its samples) and shows
the next glimpse; the label is ignored until step ``n_glimpses``, which scores it (reward 1 if
right, else 0) and terminates. So an episode has ``n_glimpses`` steps and the agent sees
``n_glimpses`` glimpses; the location sent with the final label feeds no decision (its glimpse
is only the final observation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from ram_env.canvas import CanvasSpec, episode_key, fixed_key, hash_unit, make_canvases
from ram_env.datasets import DATASET_NAMES, NUM_CLASSES, SPLITS, check_choice, load_split
from ram_env.sensor import glimpse_from_integral, integral_image, table_dtype

__all__ = [
    "NUM_CLASSES",
    "EpisodeBatch",
    "GlimpseConfig",
    "GlimpseCore",
    "check_flag",
    "check_int",
    "check_number",
    "resolve_device",
]


@dataclass(frozen=True)
class GlimpseConfig:
    """Every setting of a glimpse task; the ``gymnasium.make`` keyword arguments of each id.

    Attributes:
        dataset: ``"mnist"`` or ``"fashion-mnist"``.
        split: ``"train"`` (60k images) or ``"test"`` (the official 10k).
        canvas_size: canvas side in pixels, or ``(height, width)``; at least 28.
        placement: ``"center"`` or ``"random"`` (uniform, the image wholly inside).
        clutter_count: clutter pieces per canvas, cut from other random images of the split.
        clutter_size: side of each clutter piece in pixels (1 to 28).
        n_glimpses: glimpses (= steps) per episode, at least 1.
        patch_size: ``g``, side of each retina patch in pixels.
        n_scales: ``k``, number of retina scales.
        scale_factor: ``s``, integer growth of the patch side per scale.
        start: first fixation, ``"random"`` (uniform in ``[-1, 1]^2``) or ``"center"``. On
            fixed canvases a random start is a pure function of the image, the sample number
            and the seed (see ``GlimpseCore.reset``).
        fixed_canvases: canvas ``i`` is always the same picture (see ``ram_env.canvas``);
            ``None`` means ``split == "test"``.
        data_root: folder of the dataset cache; ``None`` means ``$RAM_ENV_DATA`` or
            ``~/.cache/ram_env``.
    """

    dataset: str = "mnist"
    split: str = "train"
    canvas_size: int | tuple[int, int] = 28
    placement: str = "center"
    clutter_count: int = 0
    clutter_size: int = 8
    n_glimpses: int = 6
    patch_size: int = 8
    n_scales: int = 1
    scale_factor: int = 2
    start: str = "random"
    fixed_canvases: bool | None = None
    data_root: str | None = None

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASET_NAMES)
        check_choice("split", self.split, SPLITS)
        check_choice("placement", self.placement, ("center", "random"))
        check_choice("start", self.start, ("random", "center"))
        size = self.canvas_size
        sides = [size] if _is_int(size) else list(size) if isinstance(size, (tuple, list)) else []
        if len(sides) != (1 if _is_int(size) else 2) or not all(_is_int(side) for side in sides):
            raise ValueError(f"canvas_size must be an int or (height, width) ints, got {size!r}")
        check_flag("fixed_canvases", self.fixed_canvases, allow_none=True)
        height, width = self.canvas_shape
        if height < 28 or width < 28:
            raise ValueError(
                f"canvas_size must be at least 28 on each side, got {self.canvas_size}"
            )
        for name, low in (
            ("n_glimpses", 1),
            ("patch_size", 1),
            ("n_scales", 1),
            ("scale_factor", 1),
            ("clutter_count", 0),
            ("clutter_size", 1),
        ):
            check_int(name, getattr(self, name), low)
        if self.clutter_size > 28:
            raise ValueError(f"clutter_size must be at most 28, got {self.clutter_size}")
        side = self.patch_size * self.scale_factor ** (self.n_scales - 1)
        if side > 2 * max(height, width):
            raise ValueError(
                f"the retina's largest square is {side} px (patch_size {self.patch_size} x "
                f"scale_factor {self.scale_factor}**(n_scales - 1), n_scales {self.n_scales}), "
                f"more than twice the {height}x{width} canvas: at most {2 * max(height, width)} "
                "px is useful (it sees the whole canvas from any fixation); lower n_scales, "
                "patch_size or scale_factor"
            )

    @classmethod
    def from_kwargs(cls, kwargs: dict, owner: str = "GlimpseEnv.__init__()") -> GlimpseConfig:
        """Build from keyword arguments; an unknown one raises ``TypeError`` in Python's own
        wording (``owner got an unexpected keyword argument 'x'``, which libraries such as
        TorchRL probe for), followed by the known ones."""
        return config_from_kwargs(cls, kwargs, owner)

    @property
    def canvas_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the canvas in pixels."""
        if _is_int(self.canvas_size):
            return self.canvas_size, self.canvas_size
        height, width = self.canvas_size
        return height, width

    @property
    def canvas_spec(self) -> CanvasSpec:
        height, width = self.canvas_shape
        return CanvasSpec(height, width, self.placement, self.clutter_count, self.clutter_size)

    @property
    def glimpse_shape(self) -> tuple[int, int, int]:
        """``(k, g, g)``: shape of one glimpse."""
        return self.n_scales, self.patch_size, self.patch_size

    @property
    def uses_fixed_canvases(self) -> bool:
        return self.split == "test" if self.fixed_canvases is None else self.fixed_canvases


def config_from_kwargs(cls: type, kwargs: dict, owner: str) -> Any:
    """``cls(**kwargs)`` for a config dataclass; an unknown keyword raises ``TypeError`` in
    Python's own wording (``owner got an unexpected keyword argument 'x'``, ``owner`` being
    the constructor called, e.g. ``GlimpseVectorEnv.__init__()``; libraries such as TorchRL
    probe for it), followed by the known ones. The one rule of both env kinds."""
    known = {field.name for field in fields(cls)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(
            f"{owner} got an unexpected keyword argument {unknown[0]!r} "
            f"(known: {', '.join(sorted(known))})"
        )
    return cls(**kwargs)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` as a Python ``int`` if it is an integer (not a bool, not a float such as
    ``4.0``) in ``[low, high]``, else ``ValueError`` naming ``name``: the one integer check of
    settings, options and flags."""
    too_low = low is not None and _is_int(value) and value < low
    if not _is_int(value) or too_low or (high is not None and value > high):
        bounds = "" if low is None else f" >= {low}" if high is None else f" in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer{bounds}, got {value!r}")
    return int(value)


#: The largest float32: rates and weights become float32 tensors, so beyond it they are inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_number(name: str, value: object, low: float, inclusive: bool = False) -> float:
    """``value`` as a float if it is a finite real number (not a bool) above ``low`` (or equal
    to it when ``inclusive``) and finite as a float32 (at most ``FLOAT32_MAX``, about 3.4e38),
    else ``ValueError`` naming ``name``: the one check of rates and weights (``inf``, ``nan``
    and float32 overflows are refused; they would only fail later, mid-run)."""
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not (
        real
        and math.isfinite(value)
        and abs(value) <= FLOAT32_MAX
        and (value > low or (inclusive and value == low))
    ):
        bound = f">= {low:g}" if inclusive else f"> {low:g}"
        raise ValueError(
            f"{name} must be a finite number {bound} (a float32: at most {FLOAT32_MAX:.4g}), "
            f"got {value!r}"
        )
    return float(value)


def check_path(name: str, value: str | None, what: str) -> None:
    """``ValueError`` if ``value`` (a path setting; ``None`` means its default) is empty or
    blank: an empty path (an unset shell variable) names nothing, never "the default". The one
    check of the trainers' path flags; ``what`` says what the flag must name."""
    if value is not None and not value.strip():
        raise ValueError(f"{name} is empty: it must name {what}")


def check_flag(name: str, value: object, allow_none: bool = False) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is a bool (``numpy.bool_`` too), or
    ``None`` where allowed: ``1`` or ``0.0`` are not flags (``1 in (True, False)`` is true in
    Python, so a membership test would let them through)."""
    if not (isinstance(value, (bool, np.bool_)) or (allow_none and value is None)):
        allowed = "True, False or None" if allow_none else "True or False"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device`` from a string or device (``"auto"``: CUDA if present, else CPU).

    A clear error when CUDA is asked for but absent.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except (TypeError, RuntimeError) as error:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from (
            error
        )
    if device.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {str(device)!r} (the glimpse "
            "envs hold real tensors on a CPU or a CUDA GPU)"
        )
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {str(device)!r} was requested but CUDA is not available")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {str(device)!r} was requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist"
            )
    return device


class EpisodeBatch:
    """What every batched episode core shares: the seeded generator, the image (or game)
    pool and the checks of reset indices and sample numbers. A subclass sets ``generator``,
    ``seeded``, ``start_seed``, ``image_pool``, ``device`` and ``num_images``."""

    generator: torch.Generator
    seeded: bool
    start_seed: int
    image_pool: torch.Tensor | range | None
    device: torch.device
    num_images: int

    def seed(self, seed: int | None, entropy: np.random.Generator) -> None:
        """Seed the generator behind image choice, canvas keys and start fixations.

        The faces call this on every ``reset(seed=...)``: an int seeds it; ``None`` seeds it
        from ``entropy`` (the face's ``np_random``) the first time only, so later resets go on
        with the same stream, as Gymnasium expects. The same seed also keys the start fixations
        of fixed canvases (``start_seed``).
        """
        if seed is not None and (
            not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0
        ):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        if seed is not None and seed >= 2**64:
            raise ValueError(f"seed must be below 2**64, got {seed}")
        if seed is not None:
            seed = int(seed)
        elif not self.seeded:
            seed = int(entropy.integers(2**63 - 1))
        if seed is not None:
            self.generator.manual_seed(seed)
            self.start_seed = seed
        self.seeded = True

    def set_rng_state(self, state: torch.Tensor) -> None:
        """Restore a state from ``generator.get_state()`` (exact resumption of a seeded run)."""
        self.generator.set_state(state)
        self.seeded = True

    def set_image_pool(self, indices: torch.Tensor | range | None) -> None:
        """Draw later random images from ``indices`` (int ``[M]``, or a ``range`` with step 1,
        which holds no tensor: a game's ``2**31`` training games) instead of the whole split."""
        if isinstance(indices, range):
            if indices.step != 1 or len(indices) == 0:
                raise ValueError(f"the image pool range must be non-empty with step 1: {indices}")
            if indices.start < 0 or indices.stop > self.num_images:
                raise ValueError(f"the image pool {indices} is outside [0, {self.num_images})")
            self.image_pool = indices
            return
        if indices is None:
            self.image_pool = None
            return
        try:
            pool = torch.as_tensor(indices, device=self.device)
        except (TypeError, ValueError, RuntimeError, OverflowError) as error:
            raise ValueError(f"the image pool must be integer indices, got {error}") from None
        if pool.ndim != 1 or pool.numel() == 0:
            raise ValueError(
                f"the image pool must be a non-empty 1-D tensor, got shape {tuple(pool.shape)}"
            )
        self._check_indices(pool, pool.numel())
        self.image_pool = pool.long()

    def _draw_indices(self, count: int) -> torch.Tensor:
        """``count`` random image indices (int64), uniform over the pool or the split."""
        pool, generator, device = self.image_pool, self.generator, self.device
        if pool is None:
            return torch.randint(self.num_images, (count,), generator=generator, device=device)
        if isinstance(pool, range):
            return torch.randint(
                pool.start, pool.stop, (count,), generator=generator, device=device
            )
        picks = torch.randint(pool.numel(), (count,), generator=generator, device=device)
        return pool[picks]

    def _samples(self, samples: object, count: int, check_range: bool) -> torch.Tensor:
        """The ``samples`` reset option as a tensor on the device, checked (``ValueError``)."""
        try:
            samples = torch.as_tensor(samples, device=self.device)
        except (TypeError, ValueError, RuntimeError, OverflowError) as error:
            raise ValueError(f"samples must be integers >= 0, got {error}") from None
        if samples.ndim not in (0, 1) or (samples.ndim == 1 and samples.shape != (count,)):
            raise ValueError(
                f"samples must be an int or have shape ({count},), got {tuple(samples.shape)}"
            )
        dtype = samples.dtype
        if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
            raise ValueError(f"samples must be integers, got dtype {samples.dtype}")
        samples = _comparable(samples)
        if check_range and samples.numel() and int(samples.min()) < 0:
            raise ValueError(f"samples must be >= 0, got {samples.min().item()}")
        return samples

    def _check_indices(self, indices: torch.Tensor, count: int) -> None:
        if indices.shape != (count,):
            raise ValueError(f"indices must have shape ({count},), got {tuple(indices.shape)}")
        if indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise ValueError(f"indices must be integers, got dtype {indices.dtype}")
        indices = _comparable(indices)
        bad = ((indices < 0) | (indices >= self.num_images)).nonzero().squeeze(1)
        if bad.numel():
            raise ValueError(
                f"image indices out of range [0, {self.num_images}) at positions "
                f"{bad.tolist()[:10]}: {indices[bad].tolist()[:10]}"
            )


#: Integer dtypes that torch stores but cannot compare or reduce (``lt``, ``min``) on a CPU.
_UNSIGNED = (torch.uint16, torch.uint32, torch.uint64)


def _comparable(values: torch.Tensor) -> torch.Tensor:
    """Integer ``values`` in a dtype that torch compares: int64 for its wide unsigned types
    (numpy's ``uint64`` indices; one past ``2**63 - 1`` wraps negative, out of every range)."""
    return values.long() if values.dtype in _UNSIGNED else values


class GlimpseCore(EpisodeBatch):
    """``num_episodes`` glimpse episodes on one device, stepped together.

    State (all on ``device``): ``canvases`` uint8 ``[N, H, W]`` and their summed-area tables
    ``integral`` int16 or int32 ``[N, H + 1, W + 1]`` (``table_dtype``; built once per episode,
    read by every glimpse),
    ``targets`` int64 ``[N]`` (true classes), ``image_indices`` int64 ``[N]``, ``fixations``
    float32 ``[N, 2]``, ``glimpses`` float32 ``[N, k, g, g]``, ``steps`` int64 ``[N]`` (steps
    taken in the current episode).
    ``uniform_steps`` is the common step count when every episode was reset together (known on
    the host, so fixed-horizon loops need no device-to-host sync), else ``None``.
    """

    def __init__(self, config: GlimpseConfig, num_episodes: int, device: torch.device) -> None:
        check_int("num_episodes", num_episodes, low=1)
        self.config = config
        self.num_episodes = num_episodes
        self.device = device
        images, labels = load_split(config.dataset, config.split, config.data_root)
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.generator = torch.Generator(device=device)
        self.seeded = False
        self.start_seed = 0
        height, width = config.canvas_shape
        n = num_episodes
        self.canvases = torch.zeros(n, height, width, dtype=torch.uint8, device=device)
        dtype = table_dtype(torch.uint8, config.n_scales, config.scale_factor, device)
        self.integral = integral_image(self.canvases, dtype=dtype)
        self.targets = torch.zeros(n, dtype=torch.int64, device=device)
        self.image_indices = torch.zeros(n, dtype=torch.int64, device=device)
        self.fixations = torch.zeros(n, 2, device=device)
        self.glimpses = torch.zeros(n, *config.glimpse_shape, device=device)
        self.steps = torch.zeros(n, dtype=torch.int64, device=device)
        self.uniform_steps: int | None = None
        self.image_pool: torch.Tensor | range | None = None

    @property
    def num_images(self) -> int:
        """Number of images in the split."""
        return self.images.shape[0]

    @property
    def fixations(self) -> torch.Tensor:
        """float32 ``[N, 2]``: the current fixations (handed out as observations)."""
        return self._fixations

    @fixations.setter
    def fixations(self, value: torch.Tensor) -> None:
        self._fixations = value
        # In-place changes bump a tensor's version (_unchanged_fixations); tensors made under
        # torch.inference_mode() keep none, and then every step senses.
        self._fixations_version = None if value.is_inference() else value._version

    def _unchanged_fixations(self, locations: torch.Tensor) -> bool:
        """Whether ``locations`` is the current fixations tensor itself, not changed in place
        since it was set (an agent's final step answers without moving): then the fixations
        and glimpses stay as they are, with no read."""
        return (
            locations is self._fixations
            and self._fixations_version is not None
            and locations._version == self._fixations_version
        )

    def _sense(self, integral: torch.Tensor, fixations: torch.Tensor) -> torch.Tensor:
        config = self.config
        return glimpse_from_integral(
            integral, fixations, config.patch_size, config.n_scales, config.scale_factor
        )

    def reset(
        self,
        mask: torch.Tensor | None = None,
        indices: torch.Tensor | None = None,
        check: bool = True,
        samples: torch.Tensor | int = 0,
    ) -> None:
        """Start new episodes in the rows selected by ``mask`` (bool ``[N]``; ``None``: all).

        ``indices`` (int64, one per selected row, in ``[0, num_images)``) chooses the images;
        ``None`` draws them uniformly at random (from ``image_pool``
        when one is set, see ``set_image_pool``). ``check`` validates the indices and samples
        (a host sync).

        Start fixations (``start="random"``): on training canvases they come from the seeded
        generator. On fixed canvases (the test split, fixed validation canvases) the start of
        image ``i`` in its sampled episode ``m`` (``samples``: an int or int64 ``[count]``, the
        number of the episode among the ``M`` played on that image, default 0) is a pure
        function of ``(i, m, start_seed)`` (``ram_env.canvas.episode_key``), like the canvas:
        a score is one number for a given seed, whatever the batch size, ``M``, order of
        evaluation or agent, and the ``M`` episodes of one image still start apart.
        """
        rows = None if mask is None else mask.nonzero().squeeze(1)
        if rows is not None and rows.numel() == self.num_episodes:
            rows = None  # every row: a full reset, so the host knows the episodes run in step
        count = self.num_episodes if rows is None else rows.numel()
        samples = self._samples(samples, count, check)
        if indices is None:
            indices = self._draw_indices(count)
        else:
            try:
                indices = torch.as_tensor(indices, device=self.device)
            except (TypeError, ValueError, RuntimeError, OverflowError) as error:
                raise ValueError(
                    f"image indices must be integers in [0, {self.num_images}), got {error}"
                ) from None
            if check:
                self._check_indices(indices, count)
            indices = indices.long()
        keys = None
        if self.config.uses_fixed_canvases:
            keys = fixed_key(indices)
        elif self.config.canvas_spec.needs_keys:
            keys = torch.randint(2**31, (count,), generator=self.generator, device=self.device)
        canvases = make_canvases(self.images, indices, keys, self.config.canvas_spec)
        if self.config.start == "center":
            fixations = torch.zeros(count, 2, device=self.device)
        elif self.config.uses_fixed_canvases:
            episode = episode_key(indices, samples.long(), self.start_seed)
            fixations = torch.stack([hash_unit(episode, 0), hash_unit(episode, 1)], dim=1) * 2 - 1
        else:
            fixations = torch.rand(count, 2, generator=self.generator, device=self.device) * 2 - 1
        if rows is None:
            integral = integral_image(canvases, out=self.integral)  # the table is ours alone
            self.canvases, self.image_indices, self.fixations = canvases, indices, fixations
            self.targets = self.labels.index_select(0, indices)
            self.steps = torch.zeros_like(self.steps)
            self.uniform_steps = 0
            self.glimpses = self._sense(integral, fixations)
        else:
            integral = integral_image(canvases, dtype=self.integral.dtype)
            self.canvases[rows] = canvases
            self.integral[rows] = integral
            self.image_indices[rows] = indices
            self.targets[rows] = self.labels.index_select(0, indices)
            self.steps[rows] = 0
            self.uniform_steps = None
            # Only the new rows are sensed; out of place, as the previous fixations and
            # glimpses were handed out as an observation.
            self.fixations = self.fixations.index_put((rows,), fixations)
            self.glimpses = self.glimpses.index_put((rows,), self._sense(integral, fixations))

    def step(
        self, locations: torch.Tensor, labels: torch.Tensor, answer: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance every episode by one step. Inputs are trusted (faces validate them).

        Args:
            locations: float ``[N, 2]`` next fixations; clamped to ``[-1, 1]``. Passing the
                current ``fixations`` tensor itself (an agent's final step, which answers
                without moving) keeps the fixations and glimpses as they are, with no read.
            labels: int64 ``[N]`` answered classes; scored only on an episode's last step.
            answer: optional bool ``[N]``: these episodes answer now, so this step is their
                last (adaptive glimpse counts, as the Discrete action adapter offers). With
                a mask, only answers are scored: an episode that reaches the cap
                (``n_glimpses`` steps) without answering gets reward 0.

        Returns:
            ``(reward, terminated)``: float32 ``[N]`` (1.0 for a right final answer, else 0.0)
            and bool ``[N]`` (the step was the episode's last).
        """
        self.steps = self.steps + 1
        if answer is not None:
            self.steps = torch.where(answer, self.config.n_glimpses, self.steps)
            self.uniform_steps = None
        elif self.uniform_steps is not None:
            self.uniform_steps += 1
        terminated = self.steps >= self.config.n_glimpses
        scored = terminated if answer is None else answer
        reward = (scored & (labels == self.targets)).float()
        if not self._unchanged_fixations(locations):
            self.fixations = locations.detach().to(torch.float32).clamp(-1.0, 1.0)
            self.glimpses = self._sense(self.integral, self.fixations)
        return reward, terminated
