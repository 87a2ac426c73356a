"""Frames, figures, GIFs and the render command (``ram_env.render``) and the envs' ``render()``."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from PIL import Image

import ram_env
from agents import figures
from ram_env import render
from ram_env.core import GlimpseConfig

MULTISCALE = GlimpseConfig(canvas_size=60, n_glimpses=4, patch_size=12, n_scales=3)


def expected_square(x: float, y: float, side: int, height: int, width: int) -> tuple[int, int]:
    """The sensor's convention written out again: (first row, first column) of the square."""
    px, py = (x + 1) / 2 * width, (y + 1) / 2 * height
    return math.floor(py - side / 2 + 0.5), math.floor(px - side / 2 + 0.5)


def band_right_half(frame: np.ndarray) -> np.ndarray:
    """The part of a frame's text band where the answer and the true class are written."""
    return frame[-render.BAND :, frame.shape[1] // 2 :]


@pytest.mark.parametrize("env_id", sorted(ram_env.TASKS))
def test_frame_shape_dtype_and_constant_size(env_id):
    config = GlimpseConfig(**ram_env.TASKS[env_id])
    height, width = config.canvas_shape
    canvas = np.random.default_rng(0).integers(0, 256, (height, width), dtype=np.uint8)
    path = np.random.default_rng(1).uniform(-1, 1, (config.n_glimpses, 2)).astype(np.float32)
    sizes = set()
    for t in range(1, config.n_glimpses + 1):
        frame = render.draw_frame(canvas, path[:t], None, config)
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
        sizes.add(frame.shape)
    final = render.draw_frame(canvas, path, None, config, answer=3, truth=4)
    sizes.add(final.shape)
    assert len(sizes) == 1, sizes  # one size for the whole episode: the frames make a video
    (frame_height, frame_width, _) = sizes.pop()
    factor = render.enlargement(height, width)
    assert min(height, width) * factor >= 224
    assert frame_height >= height * factor and frame_width > width * factor
    assert frame_height % 2 == 0 and frame_width % 2 == 0


@pytest.mark.parametrize("fixation", [(0.07, -0.04), (-0.3, 0.2), (-1.0, -1.0), (0.93, 1.0)])
def test_boxes_are_the_pixels_the_sensor_reads(fixation):
    config = MULTISCALE
    height, width = config.canvas_shape
    canvas = np.zeros((height, width), np.uint8)
    frame = render.draw_frame(canvas, [np.array(fixation, np.float32)], None, config)
    factor = render.enlargement(height, width)
    panel = frame[render.MARGIN : render.MARGIN + height * factor]
    panel = panel[:, render.MARGIN : render.MARGIN + width * factor]

    def quarter(low: int, high: int) -> int:
        return low + (high - low) // 4

    def in_panel(y: int, x: int) -> bool:
        return 0 <= y < height * factor and 0 <= x < width * factor

    for scale in range(config.n_scales):
        side = config.patch_size * config.scale_factor**scale
        colour = np.array(render.SCALE_COLOURS[scale])
        row, col = expected_square(*fixation, side, height, width)
        top, left = row * factor, col * factor
        bottom, right = (row + side) * factor - 1, (col + side) * factor - 1
        # A point a quarter along the visible part of each edge (boxes may run off the canvas).
        along_x = quarter(max(left, 0), min(right, width * factor - 1))
        along_y = quarter(max(top, 0), min(bottom, height * factor - 1))
        edges = [(top, along_x), (bottom, along_x), (along_y, left), (along_y, right)]
        visible = [(y, x) for y, x in edges if in_panel(y, x)]
        assert len(visible) >= 2 or scale > 0  # every test fixation shows two fovea edges
        for y, x in visible:
            assert (panel[y, x] == colour).all(), (scale, y, x, panel[y, x])
        if scale == 0:  # the outline lies inside the square, not around it
            for y, x in [(top - 1, along_x), (bottom + 1, along_x), (along_y, left - 1)]:
                if in_panel(y, x):
                    assert not (panel[y, x] == colour).all(), (y, x)


def test_box_matches_a_known_fixation_pixel_by_pixel():
    # 28 x 28 canvas, factor 8; fixation (0, 0): px = py = 14, the 8 x 8 square starts at 10.
    config = GlimpseConfig(patch_size=8, n_scales=1)
    frame = render.draw_frame(np.zeros((28, 28), np.uint8), [(0.0, 0.0)], None, config)
    red = np.array(render.SCALE_COLOURS[0])
    y0 = x0 = render.MARGIN + 10 * 8
    assert (frame[y0, x0 + 20] == red).all() and (frame[y0 + 63, x0 + 20] == red).all()
    assert (frame[y0 + 20, x0] == red).all() and (frame[y0 + 20, x0 + 63] == red).all()
    assert (frame[y0 - 1, x0 + 20] == 0).all() and (frame[y0 + 64, x0 + 20] == 0).all()


def test_tile_grid_shape():
    frames = [np.full((10, 20, 3), i, np.uint8) for i in range(5)]
    grid = render.tile(frames, columns=3, pad=2)
    assert grid.shape == (2 + 2 * 12, 2 + 3 * 22, 3) and grid.dtype == np.uint8
    assert (grid[2:12, 2 + 22 : 2 + 22 + 20] == 1).all()  # frame 1: row 0, column 1
    assert (grid[14:24, 2:22] == 3).all()  # frame 3: row 1, column 0
    with pytest.raises(ValueError, match="at least one"):
        render.tile([], 3)


def test_single_env_render_and_truth_only_at_the_end(monkeypatch):
    env = gym.make("GlimpseMNIST-v0", render_mode="rgb_array", n_glimpses=3)
    calls = []
    draw = render.draw_frame

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return draw(*args, **kwargs)

    monkeypatch.setattr(render, "draw_frame", spy)
    empty = env.unwrapped.render()  # before the first reset: a frame with no fixation
    env.reset(seed=3)
    frames = [env.render()]
    for _ in range(3):
        _, _, terminated, _, _ = env.step({"location": np.zeros(2, np.float32), "label": 7})
        frames.append(env.render())
    assert terminated
    assert all(frame.shape == empty.shape and frame.dtype == np.uint8 for frame in frames)
    truth = int(env.unwrapped.core.targets[0])
    assert [call["truth"] for call in calls] == [None, None, None, None, truth]
    assert [call["answer"] for call in calls] == [None, None, None, None, 7]
    background = np.array(render.BACKGROUND)
    for frame in [empty, *frames[:-1]]:  # nothing is written where the labels go
        assert (band_right_half(frame) == background).all()
    assert not (band_right_half(frames[-1]) == background).all()
    assert len(env.unwrapped._path) == 3  # the final frame shows the last looked-at fixation


def test_render_without_mode_returns_none():
    env = gym.make("GlimpseMNIST-v0").unwrapped
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_check_env_with_render_checks_has_no_warnings():
    env = gym.make("GlimpseTranslatedMNIST-v0", render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("num_envs, cells", [(4, 4), (12, 9)])
def test_vector_render_gives_every_sub_envs_frame_and_a_grid_helper(num_envs, cells):
    envs = gym.make_vec(
        "GlimpseMNIST-v0",
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        render_mode="rgb_array",
    )
    envs.reset(seed=0)
    envs.step({"location": torch.zeros(num_envs, 2), "label": torch.zeros(num_envs).long()})
    frames = envs.render()  # Gymnasium's convention: one frame per sub-env
    one = render.draw_frame(
        envs.canvases[0], envs.fixations[:1], envs.glimpses[0], envs.config, step=2
    )
    assert isinstance(frames, tuple) and len(frames) == num_envs
    np.testing.assert_array_equal(frames[0], one)
    grid = envs.render_grid()
    columns = min(3, cells)
    rows = math.ceil(cells / columns)
    assert grid.dtype == np.uint8
    assert grid.shape == (4 + rows * (one.shape[0] + 4), 4 + columns * (one.shape[1] + 4), 3)
    np.testing.assert_array_equal(grid[4 : 4 + one.shape[0], 4 : 4 + one.shape[1]], one)


def test_figures_and_gif_frame_count(tmp_path):
    episodes = figures.play_episodes(
        None, "GlimpseTranslatedMNIST-v0", {"n_glimpses": 3}, 4, "cpu", seed=1
    )
    assert episodes.fixations.shape == (4, 3, 2)
    assert episodes.glimpses.shape == (4, 3, 3, 12, 12)
    assert not np.allclose(episodes.fixations[:, 0], episodes.fixations[:, 1])
    drawn = render.figures_of(episodes, columns=2)
    assert len(drawn["gif"]) == 3 + 1
    paths = render.save_figures(drawn, tmp_path / "sub" / "run")
    assert [path.name for path in paths] == ["run_bbox.png", "run_glimpses.png", "run.gif"]
    with Image.open(paths[2]) as gif:
        assert gif.n_frames == 3 + 1
        assert gif.size == drawn["gif"][0].shape[1::-1]
    for name, path in zip(("bbox", "glimpses"), paths[:2], strict=True):
        with Image.open(path) as png:
            np.testing.assert_array_equal(np.asarray(png.convert("RGB")), drawn[name])


def test_same_seed_same_pictures():
    first = figures.episode_figures(None, "GlimpseMNIST-v0", {"n_glimpses": 2}, seed=5)
    second = figures.episode_figures(None, "GlimpseMNIST-v0", {"n_glimpses": 2}, seed=5)
    np.testing.assert_array_equal(first["bbox"], second["bbox"])
    assert set(first) == {"bbox", "glimpses", "gif"}


def small_ram(glimpse_shape=(1, 8, 8)):
    from agents.ram import RAM, RAMConfig

    torch.manual_seed(0)
    sizes = {"glimpse_hidden": 16, "location_hidden": 16, "glimpse_features": 32}
    return RAM(RAMConfig(glimpse_shape=glimpse_shape, core_size=32, policy_hidden=16, **sizes))


def test_a_ram_agent_is_drawn_with_its_mean_policy_as_rollout_plays_it():
    from agents.reinforce import rollout

    model = small_ram().train()
    kwargs = {"n_glimpses": 4, "split": "test"}
    episodes = figures.play_episodes(model, "GlimpseMNIST-v0", kwargs, 5)
    env = ram_env.GlimpseVectorEnv(num_envs=5, **{**ram_env.TASKS["GlimpseMNIST-v0"], **kwargs})
    env.reset(seed=0)
    with torch.no_grad():
        played = rollout(model, env, torch.from_numpy(episodes.indices), 0.1, noise=None)
    np.testing.assert_allclose(episodes.fixations, played.fixations.numpy(), atol=1e-6)
    np.testing.assert_array_equal(episodes.canvases, env.canvases.numpy())
    np.testing.assert_array_equal(episodes.answers, played.log_probs.argmax(-1).numpy())
    np.testing.assert_array_equal(episodes.truths, played.targets.numpy())
    drawn = figures.episode_figures(model, "GlimpseMNIST-v0", kwargs, "cpu", seed=0)
    assert model.training  # the trainer's mode is restored
    assert len(drawn["gif"]) == 4 + 1


def test_the_env_package_imports_nothing_from_the_agents():
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, pkgutil, importlib, ram_env\n"
        "names = [m.name for m in pkgutil.iter_modules(ram_env.__path__)]\n"
        "for name in names: importlib.import_module('ram_env.' + name)\n"
        "ours = ('agents', 'train_reinforce', 'train_sb3')\n"
        "print(json.dumps([names, [m for m in sys.modules if m.split('.')[0] in ours]]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, imported = json.loads(out.stdout)
    assert {"core", "render", "vector", "wrappers"} <= set(names) and imported == []
    with pytest.raises(ValueError, match="num_episodes"):
        figures.play_episodes(None, "GlimpseMNIST-v0", {}, 0)


def test_command_with_random_policy(tmp_path, capsys):
    prefix = tmp_path / "random"
    status = figures.main(
        ["--env", "GlimpseMNIST-v0", "--seed", "2", "--episodes", "4", "--out", str(prefix)]
    )
    assert status == 0
    assert "wrote" in capsys.readouterr().out
    with Image.open(f"{prefix}.gif") as gif:
        assert gif.n_frames == ram_env.TASKS["GlimpseMNIST-v0"]["n_glimpses"] + 1
    with Image.open(f"{prefix}_bbox.png") as png:
        assert png.mode == "RGB" and min(png.size) >= 224
    with Image.open(f"{prefix}_glimpses.png") as png:
        assert png.mode == "RGB"


def test_command_with_a_checkpoint(tmp_path):
    from agents.checkpoint import save_checkpoint

    model = small_ram()
    env_kwargs = {**ram_env.TASKS["GlimpseMNIST-v0"], "n_glimpses": 2}
    config = {
        "env": "GlimpseMNIST-v0",
        "env_kwargs": env_kwargs,
        "std": 0.1,
        "model": model.config.to_dict(),
    }
    path = tmp_path / "ram.pt"
    save_checkpoint({"model": model.state_dict(), "config": config, "epoch": 1}, path)
    prefix = tmp_path / "trained"
    assert figures.main(["--checkpoint", str(path), "--episodes", "2", "--out", str(prefix)]) == 0
    with Image.open(f"{prefix}.gif") as gif:
        assert gif.n_frames == 2 + 1
    with pytest.raises(SystemExit):
        figures.main(["--checkpoint", str(path), "--env", "GlimpseClutteredMNIST-v0", "--out", "x"])
    with pytest.raises(SystemExit):
        figures.main(["--out", str(prefix)])  # neither --env nor --checkpoint
    for seed in (str(2**64), "-1"):  # refused by name, not a torch overflow traceback
        with pytest.raises(SystemExit):
            figures.main(["--env", "GlimpseMNIST-v0", "--seed", seed, "--out", str(prefix)])
    for bad in (
        ["--env", "GlimpseMNST-v0"],  # a typo: not gymnasium's NameNotFound traceback
        ["--env", "CartPole-v1"],
        ["--env", "GlimpseMNIST-v0", "--episodes", str(10**8)],  # not a huge allocation
    ):
        with pytest.raises(SystemExit):
            figures.main([*bad, "--out", str(prefix)])
    with pytest.raises(SystemExit):  # a folder, not a prefix: no hidden ".gif" inside it
        figures.main(["--env", "GlimpseMNIST-v0", "--out", str(tmp_path) + "/"])
    assert not (tmp_path / ".gif").exists()


def test_out_naming_the_gif_writes_that_gif(tmp_path):
    argv = ["--env", "GlimpseMNIST-v0", "--episodes", "2", "--out", str(tmp_path / "x.gif")]
    assert figures.main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.gif", "x_bbox.png", "x_glimpses.png"]


def test_a_game_frame_says_caught_or_missed_not_a_class():
    from ram_env.catch import CatchConfig

    config = CatchConfig()
    canvas = np.zeros(config.canvas_shape, np.uint8)
    path = np.zeros((config.n_glimpses, 2), np.float32)
    assert render._label_text(1, 1, config) == ("caught", render.RIGHT_COLOUR)
    assert render._label_text(0, 1, config) == ("missed", render.WRONG_COLOUR)
    assert render._label_text(3, 4, MULTISCALE) == ("answer 3  true 4", render.WRONG_COLOUR)
    for answer, colour in ((1, render.RIGHT_COLOUR), (0, render.WRONG_COLOUR)):
        frame = render.draw_frame(canvas, path, None, config, answer=answer, truth=1)
        band = band_right_half(frame).reshape(-1, 3)
        assert (band == colour).all(axis=1).any()  # the verdict is written in its colour
