"""Tasks built from a dataset: plain, translated and cluttered canvases, batched and seeded.

A canvas is a uint8 image ``[H, W]`` holding one dataset image (the "digit", 28 x 28) and,
optionally, clutter: square pieces cut from other random images of the same split. Every random
choice for a canvas is a pure function of its *key* (an int in ``[0, 2**31)``), computed with a
counter-based integer hash on the canvases' device. So:

* the training split draws a fresh key per episode from the env's seeded generator (new
  placement and clutter every episode, reproducible under the seed), and
* a fixed split (the test split by default) uses the key ``fixed_key(index)``: canvas ``i`` is
  the same picture for every agent, batch size, device and order of evaluation.

For a key, random stream 0 and 1 place the digit (row, column); for clutter piece ``p`` the
streams ``2 + 5p ... 6 + 5p`` give its source image, crop row, crop column, canvas row and
canvas column. Clutter is composited with ``max`` so it never darkens the digit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ram_env import kernels as cpu

__all__ = [
    "FIXED_CANVAS_SEED",
    "CanvasSpec",
    "episode_key",
    "fixed_key",
    "fold_seed",
    "hash_normal",
    "hash_uniform",
    "hash_unit",
    "make_canvases",
]

#: Seed of the fixed canvases (the test split). Changing it changes every published test score.
FIXED_CANVAS_SEED = 20141406

_MASK32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer finaliser on int64 tensors holding values in ``[0, 2**32)``.

    Every product stays below ``2**63``, so the int64 arithmetic never overflows.
    """
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK32
    return (x >> 16) ^ x


def hash_uniform(keys: torch.Tensor, stream: int, high: int | torch.Tensor) -> torch.Tensor:
    """Uniform integers in ``[0, high)``, a pure function of ``(key, stream)``.

    Args:
        keys: int64 ``[B]`` in ``[0, 2**31)``.
        stream: which independent draw of the key (a small non-negative int).
        high: exclusive upper bound, an int or an int64 tensor broadcastable to ``[B]``.

    Returns:
        int64 ``[B]``. (The modulo bias is below ``high / 2**32``.)
    """
    x = _mix32((keys * 0x2545F49 + stream * 0x27D4EB2F + 1) & _MASK32)
    return _mix32(x ^ 0x5BD1E995) % high


def hash_unit(keys: torch.Tensor, stream: int) -> torch.Tensor:
    """Uniform floats in ``[0, 1)`` on a grid of ``2**-24``, a pure function of ``(key, stream)``.

    Args:
        keys: int64 ``[...]`` in ``[0, 2**31)``.
        stream: which independent draw of the key (a non-negative int).

    Returns:
        float32 ``[...]`` (exact: 24-bit integers scaled by ``2**-24``).
    """
    return hash_uniform(keys, stream, 1 << 24).to(torch.float32) * (1.0 / (1 << 24))


def hash_normal(keys: torch.Tensor, stream: int) -> torch.Tensor:
    """Standard normal floats, a pure function of ``(key, stream)`` (Box-Muller).

    Uses the uniform streams ``2 * stream`` and ``2 * stream + 1`` of each key.

    Returns:
        float32, the shape of ``keys``.
    """
    radius = torch.sqrt(-2.0 * torch.log1p(-hash_unit(keys, 2 * stream)))  # 1 - u in (0, 1]
    return radius * torch.cos((2.0 * torch.pi) * hash_unit(keys, 2 * stream + 1))


def fixed_key(indices: torch.Tensor) -> torch.Tensor:
    """The key of fixed canvas ``i`` (int64 ``[B]`` -> int64 ``[B]`` in ``[0, 2**31)``)."""
    return _mix32((indices * 0x9E3779B + FIXED_CANVAS_SEED) & _MASK32) >> 1


def fold_seed(seed: int) -> int:
    """A non-negative int seed folded to 32 bits (both halves of a 64-bit seed count)."""
    if seed < 0 or seed >= 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return (seed ^ (seed >> 32)) & _MASK32


def episode_key(indices: torch.Tensor, samples: torch.Tensor, seed: int) -> torch.Tensor:
    """The key of sampled episode ``m`` of fixed image ``i`` under ``seed``.

    A pure function of ``(i, m, seed)``: on a fixed split the start fixation of an episode
    (and an evaluation's policy noise) is drawn from it, so a score does not depend on the
    batch size, the number of samples ``M``, the order of evaluation or the agent.

    Args:
        indices: int64 ``[B]`` image indices.
        samples: int64 ``[B]`` (or broadcastable) sample numbers ``m >= 0``.
        seed: a non-negative int (folded with ``fold_seed``).

    Returns:
        int64 ``[B]`` in ``[0, 2**31)``.
    """
    salt = _mix32((samples * 0x27D4EB2F + fold_seed(seed) * 0x165667B1 + 0x3C6EF372) & _MASK32)
    return _mix32((fixed_key(indices) ^ salt) & _MASK32) >> 1


@dataclass(frozen=True)
class CanvasSpec:
    """How a canvas is made from a dataset image.

    Attributes:
        height, width: canvas size in pixels (at least the image size).
        placement: ``"center"`` (the image in the middle, as MNIST is) or ``"random"`` (uniform
            over every position that keeps the whole image inside the canvas).
        clutter_count: number of clutter pieces (0 for none).
        clutter_size: side in pixels of each clutter piece (at most the image size).
    """

    height: int = 28
    width: int = 28
    placement: str = "center"
    clutter_count: int = 0
    clutter_size: int = 8

    @property
    def needs_keys(self) -> bool:
        """Whether canvases depend on a random key (translated or cluttered)."""
        return self.placement == "random" or self.clutter_count > 0


@functools.lru_cache(maxsize=64)
def _square_offsets(side: int, width: int, device: torch.device) -> torch.Tensor:
    """Flat offsets ``[side * side]`` of a ``side x side`` square in rows of ``width`` pixels."""
    offsets = torch.arange(side, device=device)
    return ((offsets * width)[:, None] + offsets[None, :]).reshape(-1)


@functools.lru_cache(maxsize=64)
def _draw_plan(
    spec: CanvasSpec, num_images: int, size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(streams, highs)``, int64 ``[2 + 5 * clutter_count]``: every random draw of a canvas.

    Streams 0 and 1 place the digit (row, column); streams ``2 + 5p ... 6 + 5p`` give clutter
    piece ``p``'s source image, crop row, crop column, canvas row and canvas column.
    """
    side = spec.clutter_size
    piece = [num_images, size - side + 1, size - side + 1]
    piece += [spec.height - side + 1, spec.width - side + 1]
    highs = [spec.height - size + 1, spec.width - size + 1] + piece * spec.clutter_count
    return torch.arange(len(highs), device=device), torch.tensor(highs, device=device)


def make_canvases(
    images: torch.Tensor, indices: torch.Tensor, keys: torch.Tensor | None, spec: CanvasSpec
) -> torch.Tensor:
    """Build the canvases of ``images[indices]``.

    One batched op per kind of work, whatever the number of clutter pieces: the digit is
    scattered onto zero canvases, then every piece of every canvas is cut with one gather and
    max-composited with one ``scatter_reduce`` (``amax``; max compositing does not depend on
    the order of the pieces). On a CPU with numba, one compiled loop does the same
    (``ram_env.kernels``), bit for bit.

    Args:
        images: uint8 ``[N, S, S]``, the whole split, on the target device.
        indices: int64 ``[B]`` in ``[0, N)``, the image shown on each canvas.
        keys: int64 ``[B]`` in ``[0, 2**31)`` (see the module docstring); may be ``None`` when
            ``spec.needs_keys`` is false.
        spec: the task's canvas settings.

    Returns:
        uint8 ``[B, H, W]`` on ``images.device``.

    Raises:
        IndexError: an index outside ``[0, N)``.
        ValueError: images not ``[N, S, S]``, indices not a 1-D integer tensor, or a canvas
            smaller than an image or clutter pieces larger than one.
    """
    if images.dim() != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must have shape [N, S, S], got {tuple(images.shape)}")
    if indices.dim() != 1 or indices.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            "indices must be a 1-D int64 or int32 tensor, "
            f"got {indices.dtype} of shape {tuple(indices.shape)}"
        )
    num_images, size, _ = images.shape
    height, width = spec.height, spec.width
    if min(height, width) < size or not 0 <= spec.clutter_size <= size:
        raise ValueError(
            f"a canvas must hold the {size}x{size} image and clutter pieces of at most its side, "
            f"got {height}x{width} with pieces of {spec.clutter_size}"
        )
    if not spec.needs_keys and (height, width) == (size, size):
        return images.index_select(0, indices)
    batch, device = indices.shape[0], images.device
    count, side = spec.clutter_count, spec.clutter_size
    draws = None
    if keys is not None and spec.needs_keys:  # every draw of every canvas in one hash
        streams, highs = _draw_plan(spec, num_images, size, device)
        draws = hash_uniform(keys[:, None], streams, highs)  # [B, 2 + 5 * count]
        draws = draws.view(batch, len(highs))
    if spec.placement == "random":
        rows, cols = draws[:, 0], draws[:, 1]
    else:
        rows = torch.full((batch,), (height - size) // 2, device=device)
        cols = torch.full((batch,), (width - size) // 2, device=device)
    kernels = cpu.compiled() if device.type == "cpu" else None
    if kernels is not None and images.dtype == torch.uint8:
        if batch and not 0 <= int(indices.min()) <= int(indices.max()) < num_images:
            raise IndexError(f"image indices must lie in [0, {num_images})")  # as index_select
        pieces = draws[:, 2:].reshape(batch, count, 5) if count else indices.new_zeros(batch, 0, 5)
        canvas = torch.empty(batch, height, width, dtype=torch.uint8)
        arrays = [t.contiguous().numpy() for t in (images, indices, rows, cols, pieces)]
        kernels.compose(*arrays, side, canvas.numpy())
        return canvas
    canvas = torch.zeros(batch, height * width, dtype=torch.uint8, device=device)
    digit = (rows * width + cols)[:, None] + _square_offsets(size, width, device)
    canvas.scatter_(1, digit, images.index_select(0, indices).view(batch, size * size))
    if count:
        pieces = draws[:, 2:].reshape(batch, count, 5)
        source, crop_row, crop_col, row, col = pieces.unbind(dim=-1)  # each [B, count]
        offsets = _square_offsets(side, size, device)
        crop = ((source * size + crop_row) * size + crop_col)[:, :, None] + offsets
        area = count * side * side
        pieces = images.view(1, -1).expand(batch, -1).gather(1, crop.view(batch, area))
        target = (row * width + col)[:, :, None] + _square_offsets(side, width, device)
        canvas.scatter_reduce_(1, target.view(batch, area), pieces, reduce="amax")
    return canvas.view(batch, height, width)
