"""The glimpse sensor against a slow, obviously correct reference."""

import math

import numpy as np
import pytest
import torch

from ram_env import kernels
from ram_env.sensor import glimpse, glimpse_from_integral, integral_image, table_dtype


def reference_glimpse(canvas, fixation, patch_size, n_scales, scale_factor):
    """One canvas [H, W] float64, one fixation (x, y): loops over pixels, as DESIGN.md states."""
    height, width = canvas.shape
    x, y = float(fixation[0]), float(fixation[1])
    px, py = (x + 1) / 2 * width, (y + 1) / 2 * height
    out = np.zeros((n_scales, patch_size, patch_size))
    for scale in range(n_scales):
        factor = scale_factor**scale
        side = patch_size * factor
        col0 = math.floor(px - side / 2 + 0.5)
        row0 = math.floor(py - side / 2 + 0.5)
        for i in range(patch_size):
            for j in range(patch_size):
                total = 0.0
                for di in range(factor):
                    for dj in range(factor):
                        r, c = row0 + i * factor + di, col0 + j * factor + dj
                        if 0 <= r < height and 0 <= c < width:
                            total += canvas[r, c]
                out[scale, i, j] = total / factor**2
    return out


@pytest.mark.parametrize(
    ("height", "width", "patch_size", "n_scales", "scale_factor"),
    [
        (28, 28, 8, 1, 2),
        (60, 60, 12, 3, 2),
        (100, 100, 12, 4, 2),
        (29, 17, 5, 2, 3),
        (31, 40, 3, 3, 2),
        (7, 9, 4, 1, 1),
    ],
)
def test_matches_reference_on_random_inputs(
    height, width, patch_size, n_scales, scale_factor, sensor_path
):
    rng = np.random.default_rng(height * 1000 + width)
    batch = 12
    canvases = rng.integers(0, 256, size=(batch, height, width), dtype=np.uint8)
    fixations = rng.uniform(-1.3, 1.3, size=(batch, 2)).astype(np.float32)
    fixations[:4] = [[-1, -1], [1, 1], [1, -1], [0, 0]]  # corners and centre, exactly
    got = glimpse(
        torch.from_numpy(canvases), torch.from_numpy(fixations), patch_size, n_scales, scale_factor
    )
    assert got.shape == (batch, n_scales, patch_size, patch_size)
    assert got.dtype == torch.float32
    for b in range(batch):
        want = reference_glimpse(
            canvases[b] / 255.0, fixations[b], patch_size, n_scales, scale_factor
        )
        np.testing.assert_allclose(got[b].numpy(), want, atol=1e-5)


def test_uint8_and_float_canvases_agree(sensor_path):
    rng = np.random.default_rng(0)
    canvases = rng.integers(0, 256, size=(5, 30, 30), dtype=np.uint8)
    fixations = torch.from_numpy(rng.uniform(-1, 1, size=(5, 2)).astype(np.float32))
    as_uint8 = glimpse(torch.from_numpy(canvases), fixations, 6, 2, 2)
    as_float = glimpse(torch.from_numpy(canvases).float() / 255, fixations, 6, 2, 2)
    torch.testing.assert_close(as_uint8, as_float)


def test_convention_centre_and_top_left():
    canvas = torch.zeros(1, 28, 28)
    canvas[0, 10, 3] = 1.0  # row 10, column 3
    # An 8x8 patch at (x, y) starts at column px - 4 and row py - 4: put the pixel at (2, 6).
    x = (3 - 2 + 4) / 28 * 2 - 1
    y = (10 - 6 + 4) / 28 * 2 - 1
    patch = glimpse(canvas, torch.tensor([[x, y]]), 8)
    assert patch[0, 0, 6, 2] == 1.0
    assert patch.sum() == 1.0
    # The top-left corner sees the top-left 4x4 pixels in the bottom-right quarter of the patch.
    ones = torch.ones(1, 28, 28)
    corner = glimpse(ones, torch.tensor([[-1.0, -1.0]]), 8)[0, 0]
    assert corner[4:, 4:].eq(1).all() and corner[:4].eq(0).all() and corner[:, :4].eq(0).all()


def test_far_outside_reads_zero(sensor_path):
    patch = glimpse(torch.ones(2, 28, 28), torch.tensor([[5.0, 0.0], [0.0, -7.0]]), 8, 2, 2)
    assert patch.abs().sum() == 0


def test_integral_image_and_reading_from_it(sensor_path):
    rng = np.random.default_rng(1)
    canvases = torch.from_numpy(rng.integers(0, 256, size=(3, 9, 7), dtype=np.uint8))
    table = integral_image(canvases)
    assert table.shape == (3, 10, 8) and table.dtype == torch.int32
    for r in range(10):
        for c in range(8):
            assert torch.equal(table[:, r, c], canvases[:, :r, :c].sum(dim=(1, 2)).int())
    reused = torch.full((3, 10, 8), 7, dtype=torch.int32)
    assert integral_image(canvases, out=reused) is reused and torch.equal(reused, table)
    with pytest.raises(ValueError, match=r"contiguous torch\.int32 tensor of shape"):
        integral_image(canvases, out=torch.zeros(3, 9, 8, dtype=torch.int32))
    fixations = torch.from_numpy(rng.uniform(-1.2, 1.2, size=(3, 2)).astype(np.float32))
    got = glimpse_from_integral(table, fixations, 3, 2, 2)
    for b in range(3):
        want = reference_glimpse(canvases[b].numpy() / 255.0, fixations[b].numpy(), 3, 2, 2)
        np.testing.assert_allclose(got[b].numpy(), want, atol=1e-5)
    floats = integral_image(canvases.double() / 255)
    assert floats.dtype == torch.float64
    torch.testing.assert_close(floats, table.double() / 255)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_integral_image_of_a_large_batch_takes_the_row_path_with_the_same_sums(dtype, sensor_path):
    """On a CPU, 2**18 pixels or more take the row-by-row prefix (see ``integral_image``)."""
    generator = torch.Generator().manual_seed(4)
    canvases = torch.randint(0, 256, (27, 100, 100), dtype=torch.uint8, generator=generator)
    canvases = canvases if dtype == torch.uint8 else canvases.float() / 255
    assert canvases.numel() >= 1 << 18
    table = integral_image(canvases)
    wide = torch.int32 if dtype == torch.uint8 else torch.float64
    want = torch.nn.functional.pad(
        canvases.to(wide).cumsum(1, dtype=wide).cumsum(2, dtype=wide), (1, 0, 1, 0)
    )
    torch.testing.assert_close(table, want, rtol=0, atol=1e-9)


def test_glimpse_from_integral_reads_a_strided_table_as_its_contiguous_copy(sensor_path):
    canvases = torch.randint(
        0, 256, (6, 30, 30), dtype=torch.uint8, generator=torch.Generator().manual_seed(3)
    )
    tables = integral_image(canvases)[::2]  # every other table: not contiguous
    fixations = torch.tensor([[0.1, -0.3], [0.9, 0.9], [-1.0, 0.2]])
    strided = glimpse_from_integral(tables, fixations, 6, 3, 2)
    assert torch.equal(strided, glimpse(canvases[::2], fixations, 6, 3, 2))


def test_table_dtype_is_int16_where_every_block_sum_fits():
    assert table_dtype(torch.uint8, 4, 2) == torch.int16  # blocks of 64 pixels: under 2**15 / 255
    assert table_dtype(torch.uint8, 3, 3) == torch.int16  # 81 pixels
    assert table_dtype(torch.uint8, 5, 2) == torch.int32  # 256 pixels: 65,280 needs 17 bits
    assert table_dtype(torch.uint8, 2, 12) == torch.int32  # 144 pixels
    assert table_dtype(torch.uint8, 4, 2, "meta") == torch.int32  # int16 on CPUs only
    assert table_dtype(torch.float32, 1, 2) == torch.float64


@pytest.mark.parametrize(("n_scales", "scale_factor"), [(4, 2), (3, 3), (1, 1)])
def test_an_int16_table_gives_the_int32_tables_glimpses_bit_for_bit(
    n_scales, scale_factor, sensor_path
):
    """The int16 sums wrap modulo 2**16 (the full-canvas sums of white 100x100 canvases do),
    yet every block sum comes out exact."""
    generator = torch.Generator().manual_seed(5)
    canvases = torch.randint(0, 256, (9, 100, 100), dtype=torch.uint8, generator=generator)
    canvases[0] = 255
    narrow = integral_image(canvases, dtype=torch.int16)
    wide = integral_image(canvases)
    assert narrow.dtype == torch.int16 and wide.dtype == torch.int32
    assert torch.equal(narrow, wide.to(torch.int16))  # the sums modulo 2**16, wrapped
    assert wide[0, -1, -1] == 255 * 100 * 100  # far past int16
    fixations = torch.rand(9, 2, generator=generator) * 2.6 - 1.3
    fixations[1:4] = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]])
    got = glimpse_from_integral(narrow, fixations, 12, n_scales, scale_factor)
    assert torch.equal(got, glimpse_from_integral(wide, fixations, 12, n_scales, scale_factor))
    assert got[0].max() == 1.0  # the white canvas's blocks inside it: 255 * area, exactly


def test_the_compiled_loops_and_the_torch_ops_agree_bit_for_bit(monkeypatch):
    """Random canvases of odd sizes, fixations far outside, every table dtype, strided tables."""
    generator = torch.Generator().manual_seed(6)
    assert kernels.compiled() is not None, "numba is missing: pip install -e '.[fast]'"
    cases = [(28, 28, 8, 1, 2), (100, 100, 12, 4, 2), (17, 23, 5, 3, 3), (33, 9, 4, 5, 2)]
    for height, width, patch_size, n_scales, scale_factor in cases:
        pixels = torch.randint(0, 256, (10, height, width), dtype=torch.uint8, generator=generator)
        fixations = torch.rand(10, 2, generator=generator) * 4 - 2
        for canvases in (pixels, pixels.float() / 255, pixels[::2], pixels.transpose(1, 2)):
            fix = fixations[: len(canvases)]
            dtypes = [torch.float64] if canvases.is_floating_point() else [torch.int32]
            if table_dtype(canvases.dtype, n_scales, scale_factor) == torch.int16:
                dtypes.append(torch.int16)
            for dtype in dtypes:
                compiled_table = integral_image(canvases, dtype=dtype)
                compiled = glimpse_from_integral(
                    compiled_table, fix, patch_size, n_scales, scale_factor
                )
                with monkeypatch.context() as patch:
                    patch.setattr(kernels, "compiled", lambda: None)
                    table = integral_image(canvases, dtype=dtype)
                    ops = glimpse_from_integral(table, fix, patch_size, n_scales, scale_factor)
                assert torch.equal(compiled_table, table)
                assert torch.equal(compiled, ops), (height, width, dtype)


def test_tables_refuse_a_dtype_that_cannot_hold_their_sums():
    canvases = torch.zeros(2, 10, 10, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"dtype must be one of .*int32.*int16.* for torch\.uint8"):
        integral_image(canvases, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"dtype must be one of .*float64.* for torch\.float32"):
        integral_image(canvases.float(), dtype=torch.int16)
    narrow = integral_image(canvases, dtype=torch.int16)
    with pytest.raises(ValueError, match=r"int16 table holds block sums of up to 128 pixels"):
        glimpse_from_integral(narrow, torch.zeros(2, 2), 4, 5, 2)  # blocks of 256 pixels


def test_fixations_must_match_the_tables_batch(sensor_path):
    tables = integral_image(torch.zeros(4, 10, 10, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"fixations must have shape \(4, 2\) for 4 tables"):
        glimpse_from_integral(tables, torch.zeros(1, 2), 2, 1, 2)


def test_int32_sums_past_2_31_wrap_as_pytorchs_do(sensor_path):
    """A white 3000x3000 canvas sums to 2.3e9: the table's running sums wrap, the blocks don't."""
    canvases = torch.full((1, 3000, 3000), 255, dtype=torch.uint8)
    table = integral_image(canvases)
    assert table.dtype == torch.int32 and table[0, -1, -1] < 0  # wrapped
    patch = glimpse_from_integral(table, torch.tensor([[0.872, 1.0]]), 4, 2, 2)
    assert set(patch.unique().tolist()) <= {0.0, 1.0}  # inside: white; past the edge: 0


def test_glimpses_are_float32_whatever_the_default_dtype(sensor_path):
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        patch = glimpse(torch.zeros(2, 28, 28, dtype=torch.uint8), torch.zeros(2, 2), 8, 2, 2)
    finally:
        torch.set_default_dtype(default)
    assert patch.dtype == torch.float32


def test_canvases_of_other_integer_dtypes_read_as_float_values(sensor_path):
    """Only uint8 means 0-255 intensities; an int32 canvas is summed as it is (float64 table)."""
    assert table_dtype(torch.int32) == torch.float64
    patch = glimpse(torch.full((1, 28, 28), 255, dtype=torch.int32), torch.zeros(1, 2), 8)
    assert patch.max() == 255.0
