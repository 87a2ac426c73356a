"""The env's three hot loops on a CPU, compiled by numba (the ``fast`` extra).

On a CPU, a canvas, its summed-area table and a glimpse are each one compiled loop here instead
of a dozen PyTorch ops, each of which pays a dispatch and a pass over memory. ``compiled()``
returns them, or ``None`` where numba is not installed; ``ram_env.canvas`` and
``ram_env.sensor`` then take their PyTorch ops, which every other device takes too. Each loop
gives its caller's PyTorch result bit for bit (the same integer sums, the same order of float
operations), which the tests check path against path.

The loops trust their inputs (numba does not check bounds): their callers check the shapes
and indices that could reach outside an array before they call (``make_canvases``,
``integral_image``, ``glimpse_from_integral``).
"""

from __future__ import annotations

import functools
import importlib.util
import types

import numpy as np

__all__ = ["compiled"]


@functools.cache
def compiled() -> types.SimpleNamespace | None:
    """``SimpleNamespace(compose, integral, glimpse)`` of compiled loops, or ``None`` without
    numba. Compiled on first use of each argument type, and cached on disk by numba."""
    if importlib.util.find_spec("numba") is None:
        return None
    import numba

    @numba.njit(cache=True, nogil=True)
    def compose(images, indices, rows, cols, pieces, side, out):  # pragma: no cover (compiled)
        """``out`` uint8 ``[B, H, W]`` (written): image ``indices[b]`` of ``images`` uint8
        ``[N, S, S]`` at row ``rows[b]``, column ``cols[b]`` on a zero canvas (``indices``,
        ``rows``, ``cols``: int ``[B]``), then each clutter piece ``pieces[b, p] = (source,
        crop row, crop column, row, column)`` (int ``[B, P, 5]``), a ``side x side`` crop,
        composited with ``max``."""
        size = images.shape[1]
        for b in range(out.shape[0]):
            canvas, image = out[b], images[indices[b]]
            canvas[:, :] = 0
            canvas[rows[b] : rows[b] + size, cols[b] : cols[b] + size] = image
            for p in range(pieces.shape[1]):
                source, crop_row, crop_col, row, col = pieces[b, p]
                piece = images[source]
                for r in range(side):
                    for c in range(side):
                        value = piece[crop_row + r, crop_col + c]
                        if value > canvas[row + r, col + c]:
                            canvas[row + r, col + c] = value

    @numba.njit(cache=True, nogil=True)
    def integral(canvases, out):  # pragma: no cover (compiled)
        """``out`` ``[B, H + 1, W + 1]`` (int16 or int32, written): the summed-area tables of
        uint8 ``canvases`` ``[B, H, W]``, row by row (each row the one above plus its own
        running sum; an int16 table wraps modulo 2**16, as PyTorch's ops do)."""
        batch, height, width = canvases.shape
        for b in range(batch):
            out[b, 0, :] = 0
            for r in range(height):
                above, row, pixels = out[b, r], out[b, r + 1], canvases[b, r]
                row[0] = 0
                running = 0
                for c in range(width):
                    running += pixels[c]
                    row[c + 1] = above[c + 1] + running

    @numba.njit(cache=True, nogil=True)
    def glimpse(table, origins, factors, norm, bits, out):  # pragma: no cover (compiled)
        """``out[b, i, a, c]`` (float32 ``[B, k, g, g]``, written): the mean of block ``(a, c)``
        of scale ``i``, as ``ram_env.sensor`` computes it (corners clamped to the canvas, the
        differences along a row, then between rows, float32 times ``norm[i]``). ``table``
        ``[B, H + 1, W + 1]``, ``origins`` int64 ``[B, k, 2]`` (column, row of each scale's
        square), ``factors`` int64 ``[k]`` (``s**i``), ``norm`` float32 ``[k]``, ``bits``: 16 or
        32 for an int16 or int32 table (a block sum is its difference modulo ``2**bits``, as
        PyTorch's integer ops wrap), 0 for a float table."""
        batch, n_scales, patch, _ = out.shape
        height, width = table.shape[1] - 1, table.shape[2] - 1
        rows = np.empty(patch + 1, np.int64)
        cols = np.empty(patch + 1, np.int64)
        for b in range(batch):
            for i in range(n_scales):
                for a in range(patch + 1):
                    rows[a] = min(max(origins[b, i, 1] + a * factors[i], 0), height)
                    cols[a] = min(max(origins[b, i, 0] + a * factors[i], 0), width)
                for a in range(patch):
                    top, bottom = table[b, rows[a]], table[b, rows[a + 1]]
                    left_top, left_bottom = top[cols[0]], bottom[cols[0]]
                    for c in range(patch):
                        right_top, right_bottom = top[cols[c + 1]], bottom[cols[c + 1]]
                        block = (right_bottom - left_bottom) - (right_top - left_top)
                        if bits == 16:
                            block = np.int16(block)
                        elif bits == 32:
                            block = np.int32(block)
                        out[b, i, a, c] = np.float32(block) * norm[i]
                        left_top, left_bottom = right_top, right_bottom

    return types.SimpleNamespace(compose=compose, integral=integral, glimpse=glimpse)
