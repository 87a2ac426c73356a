"""Canvases of the translated and cluttered tasks: placement, clutter, keys, the fixed split."""

import hashlib

import gymnasium as gym
import pytest
import torch

import ram_env  # noqa: F401  (registers the ids)
from ram_env.canvas import CanvasSpec, fixed_key, hash_uniform, make_canvases


def digit_images(count=6):
    """Images that are all 255 inside [4, 24) x [4, 24) (known extent), else 0."""
    images = torch.zeros(count, 28, 28, dtype=torch.uint8)
    images[:, 4:24, 4:24] = 255
    return images


def test_plain_canvas_is_the_image():
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    canvases = make_canvases(images, torch.tensor([3, 1]), None, CanvasSpec())
    torch.testing.assert_close(canvases, images[[3, 1]])


def test_centred_placement_on_a_larger_canvas():
    images = digit_images()
    canvases = make_canvases(images, torch.tensor([0]), None, CanvasSpec(60, 60, "center"))
    assert canvases.shape == (1, 60, 60)
    torch.testing.assert_close(canvases[0, 16:44, 16:44], images[0])
    assert canvases.sum() == images[0].sum()


@pytest.mark.parametrize(("height", "width"), [(60, 60), (100, 100), (45, 71)])
def test_random_placement_keeps_the_image_inside_and_covers_the_range(height, width):
    images = digit_images()
    keys = torch.arange(4000)
    spec = CanvasSpec(height, width, "random")
    canvases = make_canvases(images, torch.zeros(4000, dtype=torch.long), keys, spec)
    assert (canvases.flatten(1).sum(1) == images[0].sum()).all()  # nothing cut off
    lit = canvases > 0
    rows = lit.any(2).float().argmax(1) - 4  # first lit row minus the image's margin
    cols = lit.any(1).float().argmax(1) - 4
    assert rows.min() == 0 and rows.max() == height - 28
    assert cols.min() == 0 and cols.max() == width - 28


@pytest.mark.parametrize("count", [1, 4, 8])
def test_clutter_pieces_come_from_the_split_and_never_darken_the_digit(count, sensor_path):
    images = torch.zeros(3, 28, 28, dtype=torch.uint8)
    images[:, 10:18, 10:18] = 200  # any 8x8 crop is a part of this square or empty
    spec = CanvasSpec(100, 100, "random", clutter_count=count, clutter_size=8)
    keys = torch.arange(50)
    plain = make_canvases(
        images, torch.zeros(50, dtype=torch.long), keys, CanvasSpec(100, 100, "random")
    )
    cluttered = make_canvases(images, torch.zeros(50, dtype=torch.long), keys, spec)
    assert (cluttered >= plain).all()
    extra = (cluttered > plain).flatten(1).sum(1)
    assert extra.max() <= count * 64 and extra.sum() > 0
    assert set(cluttered.unique().tolist()) <= {0, 200}


def test_keys_are_deterministic_and_uniform():
    keys = torch.arange(100_000)
    draws = hash_uniform(keys, 3, 10)
    torch.testing.assert_close(draws, hash_uniform(keys, 3, 10))
    counts = torch.bincount(draws, minlength=10).float()
    assert (counts / counts.mean() - 1).abs().max() < 0.05
    assert not torch.equal(draws, hash_uniform(keys, 4, 10))
    assert fixed_key(keys).min() >= 0 and fixed_key(keys).max() < 2**31


def test_fixed_split_is_pinned(sensor_path):
    """Changing these bytes changes every published test score: do it only on purpose."""
    images = torch.arange(3 * 28 * 28, dtype=torch.int64).remainder(251).to(torch.uint8)
    images = images.view(3, 28, 28)
    spec = CanvasSpec(60, 60, "random", clutter_count=4)
    indices = torch.tensor([0, 1, 2, 1])
    canvases = make_canvases(images, indices, fixed_key(indices), spec)
    torch.testing.assert_close(canvases[1], canvases[3])  # the same index, the same picture
    digest = hashlib.sha256(canvases.numpy().tobytes()).hexdigest()[:16]
    assert digest == "5a5de7c2e5176f1f"


def test_test_split_is_the_same_for_any_seed_and_batch():
    single = gym.make("GlimpseClutteredMNIST-v0", split="test").unwrapped
    single.reset(seed=1, options={"index": 5})
    first = single.core.canvases[0].clone()
    single.reset(seed=2, options={"index": 5})
    torch.testing.assert_close(single.core.canvases[0], first)
    vector = gym.make_vec(
        "GlimpseClutteredMNIST-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        split="test",
    ).unwrapped
    vector.reset(seed=9, options={"indices": torch.tensor([2, 5, 0])})
    torch.testing.assert_close(vector.core.canvases[1], first)


def test_train_split_draws_new_canvases_each_episode():
    env = gym.make("GlimpseTranslatedMNIST-v0").unwrapped
    env.reset(seed=0, options={"index": 5})
    first = env.core.canvases[0].clone()
    env.reset(options={"index": 5})
    assert not torch.equal(env.core.canvases[0], first)


def reference_canvas(images, index, key, spec):
    """One canvas the slow way: loops, each piece pasted in turn with max (the module's rules)."""
    num_images, size, _ = images.shape
    keys = torch.tensor([key])

    def draw(stream, high):
        return int(hash_uniform(keys, stream, high)[0])

    canvas = torch.zeros(spec.height, spec.width, dtype=torch.uint8)
    if spec.placement == "random":
        row, col = draw(0, spec.height - size + 1), draw(1, spec.width - size + 1)
    else:
        row, col = (spec.height - size) // 2, (spec.width - size) // 2
    canvas[row : row + size, col : col + size] = images[index]
    side = spec.clutter_size
    for piece in range(spec.clutter_count):
        stream = 2 + 5 * piece
        source = draw(stream, num_images)
        crop_row, crop_col = draw(stream + 1, size - side + 1), draw(stream + 2, size - side + 1)
        row, col = draw(stream + 3, spec.height - side + 1), draw(stream + 4, spec.width - side + 1)
        cut = images[source, crop_row : crop_row + side, crop_col : crop_col + side]
        window = canvas[row : row + side, col : col + side]
        canvas[row : row + side, col : col + side] = torch.maximum(window, cut)
    return canvas


@pytest.mark.parametrize(
    "spec",
    [
        CanvasSpec(60, 60, "random", clutter_count=4),
        CanvasSpec(100, 100, "random", clutter_count=8),
        CanvasSpec(41, 33, "random", clutter_count=30, clutter_size=13),
        CanvasSpec(60, 60, "center", clutter_count=3, clutter_size=28),
        CanvasSpec(29, 28, "random"),
    ],
)
def test_batched_canvases_match_the_loop_reference(spec, sensor_path):
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (7, 28, 28), generator=generator, dtype=torch.uint8)
    indices = torch.randint(7, (16,), generator=generator)
    keys = torch.randint(2**31, (16,), generator=generator)
    canvases = make_canvases(images, indices, keys, spec)
    for b in range(16):
        want = reference_canvas(images, int(indices[b]), int(keys[b]), spec)
        torch.testing.assert_close(canvases[b], want, rtol=0, atol=0)


def test_an_index_outside_the_split_is_refused_on_both_paths(sensor_path):
    images = digit_images(3)
    spec = CanvasSpec(60, 60, "random", clutter_count=4)
    for bad in ([0, 3], [-1, 0]):
        indices = torch.tensor(bad)
        with pytest.raises(IndexError):
            make_canvases(images, indices, fixed_key(indices), spec)


def test_shapes_that_would_reach_outside_an_image_are_refused(sensor_path):
    images, indices = digit_images(3), torch.tensor([0, 2])
    keys = fixed_key(indices)
    cases = [
        (images, indices, CanvasSpec(28, 28, "random", 3, 30), "pieces of at most its side"),
        (images, indices, CanvasSpec(60, 20, "random", 2), "must hold the 28x28 image"),
        (images[:, :, :1], indices, CanvasSpec(60, 60, "random", 2), r"\[N, S, S\]"),
        (images, indices[:, None], CanvasSpec(60, 60, "random", 2), "1-D int64 or int32"),
        (images, indices.to(torch.uint8), CanvasSpec(60, 60, "random", 2), "1-D int64 or int32"),
    ]
    for imgs, idx, spec, message in cases:
        with pytest.raises(ValueError, match=message):
            make_canvases(imgs, idx, keys, spec)
