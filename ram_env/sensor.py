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
"""

from __future__ import annotations

import torch

__all__ = ["glimpse", "square_origin"]


def square_origin(
    fixations: torch.Tensor, side: int, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """First row and column of the ``side x side`` square at each fixation.

    Args:
        fixations: float tensor ``[B, 2]`` of ``(x, y)`` in ``[-1, 1]`` (values beyond are allowed).
        side: side of the square in pixels.
        height, width: canvas size in pixels.

    Returns:
        ``(rows, cols)``: two int64 tensors ``[B]`` (may be negative or past the canvas).
    """
    px = (fixations[:, 0] + 1.0) * (0.5 * width)
    py = (fixations[:, 1] + 1.0) * (0.5 * height)
    cols = torch.floor(px - side / 2 + 0.5).long()
    rows = torch.floor(py - side / 2 + 0.5).long()
    return rows, cols


def glimpse(
    canvases: torch.Tensor,
    fixations: torch.Tensor,
    patch_size: int,
    n_scales: int = 1,
    scale_factor: int = 2,
) -> torch.Tensor:
    """Extract a foveated glimpse at each fixation, batched, on the canvases' device.

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
    batch, height, width = canvases.shape
    device = canvases.device
    flat = canvases.reshape(batch, height * width)
    scales = []
    for scale in range(n_scales):
        factor = scale_factor**scale
        side = patch_size * factor
        rows0, cols0 = square_origin(fixations, side, height, width)
        offsets = torch.arange(side, device=device)
        rows = rows0[:, None] + offsets  # [B, side]
        cols = cols0[:, None] + offsets  # [B, side]
        inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[
            :, None, :
        ]
        pixel = rows.clamp(0, height - 1)[:, :, None] * width + cols.clamp(0, width - 1)[:, None, :]
        patch = flat.gather(1, pixel.view(batch, side * side)).view(batch, side, side).float()
        if canvases.dtype == torch.uint8:
            patch = patch / 255.0
        patch = patch * inside
        if factor > 1:
            patch = patch.view(batch, patch_size, factor, patch_size, factor).mean(dim=(2, 4))
        scales.append(patch)
    return torch.stack(scales, dim=1)
