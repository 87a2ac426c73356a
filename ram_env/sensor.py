"""The glimpse sensor (the paper's "retina"): foveated multi-scale patches around a fixation.

Coordinate convention (used everywhere in ram_env):

* A fixation is ``(x, y)`` in ``[-1, 1]``; ``x`` grows to the right (columns), ``y`` grows down
  (rows). ``(-1, -1)`` is the top-left corner of the canvas, ``(1, 1)`` the bottom-right corner
  and ``(0, 0)`` the centre.
* In pixel units the fixation lies at ``px = (x + 1) / 2 * W`` and ``py = (y + 1) / 2 * H``,
  where pixel ``j`` spans ``[j, j + 1)``.
* A square of side ``P`` at the fixation is the ``P x P`` block of pixels whose first column is
  ``floor(px - P / 2 + 0.5)`` and whose first row is ``floor(py - P / 2 + 0.5)``. For an even
  ``P`` the fixation is the corner shared by the four middle pixels; for an odd ``P`` it lies in
  the middle pixel. Pixels outside the canvas read as 0.
* Scale ``i`` (``0 <= i < n_scales``) is the square of side ``patch_size * scale_factor**i``,
  average-pooled by ``scale_factor**i`` down to ``patch_size x patch_size``.

How it is computed: each pooled pixel is the sum of a ``s**i x s**i`` block divided by its
area, and a block sum is four reads of the canvas's summed-area table (integral image,
``integral_image``). So a glimpse costs ``k * (g + 1)**2`` reads whatever the scales' sides
(a 96 x 96 square costs what the 12 x 12 fovea costs), the table is built once per canvas (the
core keeps it for the whole episode), and the sums are exact integers for uint8 canvases.

The table is int32 for uint8 canvases, or int16 where every block of the retina holds at most
128 pixels (``table_dtype``): the int16 sums wrap modulo 2**16, but a block sum, under 2**15,
comes out exact, and the table is half the bytes (fewer cache lines a glimpse).

On a CPU, with numba installed (the ``fast`` extra, which ``make`` installs), the table and the
glimpse are each one compiled loop (``ram_env.kernels``) instead of a dozen PyTorch ops that each
pay a dispatch and a pass over memory. Both paths give the same values bit for bit (the same
sums, the same order of float operations); other devices, and tables that need a gradient,
take the PyTorch ops.
"""

from __future__ import annotations

import functools

import torch

from ram_env import kernels as cpu

__all__ = ["glimpse", "glimpse_from_integral", "integral_image", "square_origin", "table_dtype"]


def square_origin(
    fixations: torch.Tensor, side: int | torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """First row and column of the ``side x side`` square at each fixation.

    Args:
        fixations: float tensor ``[B, 2]`` of ``(x, y)`` in ``[-1, 1]`` (values beyond are allowed).
        side: side of the square in pixels, an int or a float tensor ``[k]`` of sides (then
            the results are ``[B, k]``, one square per side).
        height, width: canvas size in pixels.

    Returns:
        ``(rows, cols)``: two int64 tensors ``[B]`` (``[B, k]`` for ``k`` sides); they may be
        negative or past the canvas.
    """
    sides = torch.as_tensor(side, dtype=torch.float32, device=fixations.device).reshape(-1)
    half = torch.tensor([0.5 * width, 0.5 * height], device=fixations.device)
    origin = _origins(fixations, half, (sides / 2 - 0.5)[:, None])  # [B, k, 2]
    if not isinstance(side, torch.Tensor):
        origin = origin[:, 0]
    return origin[..., 1], origin[..., 0]


def _origins(fixations: torch.Tensor, half: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """int64 ``[B, k, 2]``: ``(column, row)`` of each square's first pixel, i.e.
    ``floor(p - side / 2 + 0.5)`` with ``p = (fixation + 1) * half`` the fixation in pixels
    (``half = [W / 2, H / 2]``, ``shift = side / 2 - 0.5`` as ``[k, 1]``): the one place of the
    module docstring's rule."""
    return (((fixations + 1.0) * half)[:, None, :] - shift).floor_().long()


def table_dtype(
    canvas_dtype: torch.dtype,
    n_scales: int = 1,
    scale_factor: int = 2,
    device: torch.device | str = "cpu",
) -> torch.dtype:
    """The dtype of the summed-area tables that ``integral_image`` builds for a retina.

    float64 for canvases of any dtype but uint8 (as ``integral_image`` builds them). For uint8
    canvases on a CPU, int16 when the largest block, ``scale_factor**(n_scales - 1)`` squared
    pixels, sums to under 2**15 (at most 128 pixels: 4 scales of factor 2 have blocks of 64),
    else int32; int32 on other devices (int16 was measured and tested on CPUs only).
    """
    if canvas_dtype != torch.uint8:
        return torch.float64
    small = _largest_block(n_scales, scale_factor) <= _INT16_BLOCK
    return torch.int16 if small and torch.device(device).type == "cpu" else torch.int32


_INT16_BLOCK = 128  # pixels: the largest block whose uint8 sum, up to 255 * 128, is under 2**15


def _largest_block(n_scales: int, scale_factor: int) -> int:
    """Pixels in a block of the coarsest scale: ``(scale_factor**(n_scales - 1))**2``."""
    return (scale_factor ** (n_scales - 1)) ** 2


def integral_image(
    canvases: torch.Tensor, out: torch.Tensor | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Summed-area tables of canvases: ``out[b, r, c] = canvases[b, :r, :c].sum()``.

    Args:
        canvases: ``[B, H, W]``, uint8 (0-255) or float32 intensities in ``[0, 1]``.
        out: optional contiguous tensor of the result's shape and dtype to write into (a
            buffer kept across episodes saves a fresh allocation's page faults on a CPU); its
            dtype is the table's when ``dtype`` is not given.
        dtype: for uint8 canvases, torch.int32 (the default: exact for canvases of up to 8
            million pixels) or torch.int16 (the sums modulo 2**16, which give exact block sums
            of up to 128 pixels: see ``table_dtype``); float canvases always give float64.

    Returns:
        ``[B, H + 1, W + 1]`` of ``dtype`` (a zero first row and column).

    Raises:
        ValueError: ``dtype`` is not one of those, or ``out`` has the wrong shape or dtype.
    """
    batch, height, width = canvases.shape
    allowed = (torch.int32, torch.int16) if canvases.dtype == torch.uint8 else (torch.float64,)
    if dtype is None:
        dtype = allowed[0] if out is None else out.dtype
    if dtype not in allowed:
        raise ValueError(
            f"dtype must be one of {allowed} for {canvases.dtype} canvases, got {dtype}"
        )
    shape = (batch, height + 1, width + 1)
    table = torch.empty(shape, dtype=dtype, device=canvases.device) if out is None else out
    if table.shape != shape or table.dtype != dtype or not table.is_contiguous():
        raise ValueError(f"out must be a contiguous {dtype} tensor of shape {shape}")
    on_cpu = canvases.device.type == table.device.type == "cpu"
    kernels = cpu.compiled() if on_cpu else None
    if kernels is not None and canvases.dtype == torch.uint8:
        kernels.integral(canvases.numpy(), table.numpy())  # bounds: the shapes checked above
        return table
    table[:, 0, :] = 0
    table[:, 1:, 0] = 0
    table[:, 1:, 1:] = canvases
    if table.device.type == "cpu" and canvases.numel() >= 1 << 18:
        # PyTorch's CPU cumsum over a non-last dim is a scalar strided loop; adding each row
        # to the next (vectorised along the row, one op per row) gives the same sums faster
        # on large batches: 128 canvases of 100 x 100 in 1.1 ms instead of 1.6 ms, 512 of
        # 60 x 60 in 1.9 instead of 3.2. Below about 2**18 pixels the ops' overhead loses.
        rows = table.unbind(1)
        for row in range(2, height + 1):
            rows[row].add_(rows[row - 1])
        return table.cumsum_(dim=2)
    return table.cumsum_(dim=2).cumsum_(dim=1)  # the zero first row and column stay zero


def glimpse_from_integral(
    integral: torch.Tensor,
    fixations: torch.Tensor,
    patch_size: int,
    n_scales: int = 1,
    scale_factor: int = 2,
) -> torch.Tensor:
    """The glimpse of ``glimpse`` read from precomputed ``integral_image`` tables.

    Args:
        integral: ``[B, H + 1, W + 1]`` from ``integral_image`` (an integer table means uint8
            canvases, read as ``value / 255``).
        fixations, patch_size, n_scales, scale_factor: as for ``glimpse``.

    Returns:
        float32 ``[B, k, g, g]`` of intensities in ``[0, 1]``; scale 0 is the fovea.

    Raises:
        ValueError: ``fixations`` is not ``[B, 2]`` for the ``B`` tables, or an int16 table
            has blocks too large for it (see ``table_dtype``).
    """
    batch, rows_plus, cols_plus = integral.shape
    height, width = rows_plus - 1, cols_plus - 1
    if fixations.shape != (batch, 2):
        raise ValueError(
            f"fixations must have shape ({batch}, 2) for {batch} tables, "
            f"got {tuple(fixations.shape)}"
        )
    peak = 1.0 if integral.dtype.is_floating_point else 255.0
    if integral.dtype == torch.int16 and _largest_block(n_scales, scale_factor) > _INT16_BLOCK:
        raise ValueError(
            f"an int16 table holds block sums of up to {_INT16_BLOCK} pixels, and {n_scales} "
            f"scales of factor {scale_factor} have blocks of "
            f"{_largest_block(n_scales, scale_factor)}: build the table with "
            "integral_image(..., dtype=table_dtype(...))"
        )
    half, shift, factors, steps, limit, norm = _retina_constants(
        patch_size, n_scales, scale_factor, peak, height, width, integral.device
    )
    origins = _origins(fixations, half, shift)  # [B, k, 2 (col, row)]
    kernels = cpu.compiled() if integral.device.type == "cpu" else None
    bits = _TABLE_BITS.get(integral.dtype)
    if kernels is not None and bits is not None and not integral.requires_grad:
        out = torch.empty(batch, n_scales, patch_size, patch_size, dtype=torch.float32)
        tables, scales = integral.numpy(), norm.view(-1).numpy()
        kernels.glimpse(tables, origins.numpy(), factors.numpy(), scales, bits, out.numpy())
        return out
    # Block (a, b) of scale i spans rows [r0 + a f, r0 + (a + 1) f) with f = s**i; clamping its
    # corners to the canvas drops exactly the outside pixels, which read as 0.
    corners = (origins[..., None] + steps).clamp_(min=0)
    corners = torch.minimum(corners, limit, out=corners)  # [B, k, 2 (col, row), g + 1]
    index = corners[:, :, 1, :, None] * cols_plus + corners[:, :, 0, None, :]  # [B, k, g+1, g+1]
    side = patch_size + 1
    flat = integral.reshape(batch, rows_plus * cols_plus)
    corners = flat.gather(1, index.view(batch, n_scales * side * side))
    corners = corners.view(batch, n_scales, side, side)
    sums = corners.diff(dim=3).diff(dim=2)  # S[a+1,b+1] - S[a,b+1] - S[a+1,b] + S[a,b]
    return sums.to(torch.float32).mul_(norm)


#: What integral_image builds, and the width its integer sums wrap at (0: float, no wrap).
_TABLE_BITS = {torch.int16: 16, torch.int32: 32, torch.float64: 0}


@functools.lru_cache(maxsize=64)
def _retina_constants(
    patch_size: int,
    n_scales: int,
    scale_factor: int,
    peak: float,
    height: int,
    width: int,
    device: torch.device,
) -> tuple[torch.Tensor, ...]:
    """Tensors a glimpse needs that depend on the retina and canvas only (built once per
    device), so that a glimpse is a handful of batched ops.

    Returns ``(half [2], shift [k, 1], factors [k], steps [k, 1, g + 1], limit [2, 1],
    norm [k, 1, 1])``: ``[W / 2, H / 2]``; each scale's ``side / 2 - 0.5``; ``s**i``; the corner
    offsets ``a * s**i``;
    ``[W, H]`` (the last corner); ``1 / (peak * s**(2 i))`` (a block sum to a mean intensity).
    """
    factors = torch.tensor([scale_factor**scale for scale in range(n_scales)], device=device)
    sides = (patch_size * factors).float()
    half = torch.tensor([0.5 * width, 0.5 * height], device=device)
    steps = torch.arange(patch_size + 1, device=device)[None, :] * factors[:, None]
    limit = torch.tensor([width, height], device=device)[:, None]
    norm = (1.0 / (peak * (factors * factors).to(torch.float32)))[:, None, None]
    return half, (sides / 2 - 0.5)[:, None], factors, steps[:, None, :], limit, norm


def glimpse(
    canvases: torch.Tensor,
    fixations: torch.Tensor,
    patch_size: int,
    n_scales: int = 1,
    scale_factor: int = 2,
) -> torch.Tensor:
    """Extract a foveated glimpse at each fixation, batched, on the canvases' device.

    Builds the canvases' summed-area tables and reads the glimpse from them; when the same
    canvases are sensed several times, build the tables once (``integral_image``) and call
    ``glimpse_from_integral``.

    Args:
        canvases: ``[B, H, W]``, either float32 intensities in ``[0, 1]`` or uint8 (read as
            ``value / 255``). Any ``H`` and ``W``, square or not, odd or even.
        fixations: ``[B, 2]`` float ``(x, y)`` in the convention of this module's docstring.
        patch_size: ``g``, the side of every returned patch in pixels (>= 1).
        n_scales: ``k``, the number of concentric scales (>= 1).
        scale_factor: ``s``, the integer growth of the side from one scale to the next (>= 1).

    Returns:
        float32 tensor ``[B, k, g, g]`` of intensities in ``[0, 1]``; scale 0 is the fovea.
    """
    dtype = table_dtype(canvases.dtype, n_scales, scale_factor, canvases.device)
    integral = integral_image(canvases, dtype=dtype)
    return glimpse_from_integral(integral, fixations, patch_size, n_scales, scale_factor)
