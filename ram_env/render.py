"""Pictures of where the agent looks: frames, PNG figures and GIF animations.

Everything here is drawn with Pillow (``ImageDraw``) on a nearest-neighbour enlargement of the
canvas, so one canvas pixel is an exact ``f x f`` block of picture pixels (``f =
enlargement(H, W)``). The retina's squares are placed with ``ram_env.sensor.square_origin``:
each box covers exactly the pixels the sensor reads (its outline is drawn inside them); a box
may run past the canvas, where the sensor reads zeros, and is then cut at the canvas border.

Pure functions:

* ``draw_frame(canvas, path, glimpse, config, answer=None, truth=None)``: one episode at one
  moment; the frames of ``GlimpseEnv.render()`` and of the GIF.
* ``draw_fixations(canvas, path, config, answer=None, truth=None)``: every fixation's fovea box,
  numbered (the README's "bbox" figure, one episode).
* ``draw_glimpses(glimpses, config, answer=None, truth=None)``: every glimpse of an episode, one
  column per glimpse, one row per scale (the README's "glimpses" figure, one episode).
* ``tile(frames, columns)``: a grid of pictures.

Episodes and files (still no agent: playing one is ``agents.figures``'s job, which also has
the command line ``python -m agents.figures``):

* ``Episodes``: a batch of finished episodes as numpy arrays, everything a picture needs;
  ``figures_of(episodes)`` -> ``{"bbox", "glimpses", "gif"}`` (arrays, and a list of arrays
  for the GIF).
* ``save_figures(figures, prefix)`` writes ``PREFIX_bbox.png``, ``PREFIX_glimpses.png`` and
  ``PREFIX.gif`` (``write_png``, ``write_gif``).
* ``vector_frames(env)``/``vector_frame(env)``: the current frames of a vector env's sub-envs,
  from its public state, and their grid.

Render modes: the envs offer ``render_mode="rgb_array"`` only. ``"human"`` (a window) is not
offered: it would need a GUI toolkit such as pygame, a heavy dependency for a task whose
pictures are better saved or logged. ``gymnasium.wrappers.HumanRendering`` (with pygame
installed) turns the ``rgb_array`` frames into a window, and ``gymnasium.wrappers.RecordVideo``
(with the ``video`` extra, moviepy) records them as MP4.
"""

from __future__ import annotations

import colorsys
import functools
import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ram_env.core import GlimpseConfig
from ram_env.sensor import glimpse as sense
from ram_env.sensor import square_origin

__all__ = [
    "PATH_COLOUR",
    "SCALE_COLOURS",
    "Episodes",
    "draw_fixations",
    "draw_frame",
    "draw_glimpses",
    "enlargement",
    "figures_of",
    "is_game",
    "save_figures",
    "tile",
    "vector_frame",
    "vector_frames",
    "write_gif",
    "write_png",
]

#: Outline colour of retina scale ``i`` (cycled when there are more scales).
SCALE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),  # red: the fovea
    (60, 180, 75),  # green
    (0, 130, 200),  # blue
    (245, 130, 48),  # orange
    (145, 30, 180),  # purple
    (70, 240, 240),  # cyan
)
#: Colour of the path through the earlier fixations.
PATH_COLOUR = (255, 225, 25)
BACKGROUND = (32, 32, 32)
TEXT_COLOUR = (235, 235, 235)
RIGHT_COLOUR = (80, 220, 100)
WRONG_COLOUR = (255, 80, 80)
MIN_SIZE = 224
MARGIN = 6
BAND = 26  # height of the text band under a frame


class GlimpseGeometry(Protocol):
    """What the drawing functions read of a config (``GlimpseConfig`` has it all)."""

    patch_size: int
    n_scales: int
    scale_factor: int
    n_glimpses: int


# --------------------------------------------------------------------------- drawing helpers


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # old Pillow or no FreeType: the bitmap font
        return ImageFont.load_default()


def _scale_colour(scale: int) -> tuple[int, int, int]:
    return SCALE_COLOURS[scale % len(SCALE_COLOURS)]


def _time_colour(step: int, steps: int) -> tuple[int, int, int]:
    """Cyan for the first fixation through green and yellow to red for the last."""
    hue = 0.5 * (1.0 - step / max(steps - 1, 1))
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return round(255 * red), round(255 * green), round(255 * blue)


def _as_numpy(array: Any) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def _canvas_uint8(canvas: Any) -> np.ndarray:
    """``[H, W]`` uint8 from uint8 or float-in-[0, 1] input (numpy or torch)."""
    canvas = _as_numpy(canvas)
    if canvas.ndim != 2:
        raise ValueError(f"canvas must have shape (H, W), got {canvas.shape}")
    if canvas.dtype == np.uint8:
        return canvas
    return np.clip(np.rint(canvas.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def _path_array(path: Any) -> np.ndarray:
    """Fixations ``[t, 2]`` float32 from a list of ``(x, y)`` or an array (may be empty)."""
    if isinstance(path, torch.Tensor):
        return path.detach().cpu().float().numpy().reshape(-1, 2)
    if len(path) == 0:
        return np.zeros((0, 2), np.float32)
    return np.stack([_as_numpy(point) for point in path]).astype(np.float32).reshape(-1, 2)


def enlargement(height: int, width: int, min_size: int = MIN_SIZE) -> int:
    """The integer nearest-neighbour factor that makes the shorter canvas side >= ``min_size``."""
    return max(1, math.ceil(min_size / min(height, width)))


def _even(size: int) -> int:
    return size + size % 2


def _enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def _square(fixation: np.ndarray, side: int, height: int, width: int) -> tuple[int, int]:
    """``(row, col)`` of the first pixel of the sensor's ``side`` square at ``fixation``."""
    rows, cols = square_origin(torch.from_numpy(fixation.reshape(1, 2)), side, height, width)
    return int(rows[0]), int(cols[0])


def _box(draw: ImageDraw.ImageDraw, row: int, col: int, side: int, factor: int, **style) -> None:
    """Outline the ``side x side`` canvas pixels from ``(row, col)``, inside those pixels."""
    x0, y0 = col * factor, row * factor
    draw.rectangle((x0, y0, x0 + side * factor - 1, y0 + side * factor - 1), **style)


def _point(fixation: np.ndarray, height: int, width: int, factor: int) -> tuple[float, float]:
    """Picture coordinates of a fixation on the enlarged canvas."""
    x, y = float(fixation[0]), float(fixation[1])
    return (x + 1.0) / 2.0 * width * factor, (y + 1.0) / 2.0 * height * factor


def _text(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fill, size: int, anchor: str
) -> None:
    font = _font(size)
    stroke = 2 if isinstance(font, ImageFont.FreeTypeFont) else 0
    draw.text(xy, text, fill=fill, font=font, anchor=anchor, stroke_width=stroke, stroke_fill=0)


def is_game(config: Any) -> bool:
    """Whether ``config`` is a game's (``CatchConfig``: its answer is 1 for a caught ball), not
    a digit task's ``GlimpseConfig``."""
    return hasattr(config, "paddle_width")


def _label_text(
    answer: int | None, truth: int | None, config: Any
) -> tuple[str, tuple[int, int, int]]:
    if is_game(config):
        if answer is None or truth is None:
            return "", TEXT_COLOUR
        caught = int(answer) == int(truth)
        return ("caught" if caught else "missed"), RIGHT_COLOUR if caught else WRONG_COLOUR
    parts, colour = [], TEXT_COLOUR
    if answer is not None:
        parts.append(f"answer {int(answer)}")
    if truth is not None:
        parts.append(f"true {int(truth)}")
    if answer is not None and truth is not None:
        colour = RIGHT_COLOUR if int(answer) == int(truth) else WRONG_COLOUR
    return "  ".join(parts), colour


def _band(width: int, left: str, right: str, right_colour) -> Image.Image:
    band = Image.new("RGB", (width, BAND), BACKGROUND)
    draw = ImageDraw.Draw(band)
    if left:
        _text(draw, (MARGIN, BAND // 2), left, TEXT_COLOUR, 15, "lm")
    if right:
        _text(draw, (width - MARGIN, BAND // 2), right, right_colour, 15, "rm")
    return band


def _patch_image(patch: np.ndarray, factor: int) -> Image.Image:
    pixels = np.clip(np.rint(patch.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(_enlarge(pixels, factor)).convert("RGB")


def _canvas_image(canvas: np.ndarray, factor: int) -> Image.Image:
    return Image.fromarray(_enlarge(canvas, factor)).convert("RGB")


# --------------------------------------------------------------------------- pictures


def draw_frame(
    canvas: Any,
    path: Any,
    glimpse: Any,
    config: GlimpseGeometry,
    answer: int | None = None,
    truth: int | None = None,
    *,
    step: int | None = None,
    min_size: int = MIN_SIZE,
) -> np.ndarray:
    """One moment of an episode as a uint8 RGB picture ``[h, w, 3]``.

    Left: the canvas enlarged by nearest neighbour (``enlargement``) with one box per retina
    scale around the current fixation (``SCALE_COLOURS``, scale 0 = the fovea) and the earlier
    fixations as a numbered path (``PATH_COLOUR``). Right: the glimpse, one enlarged patch per
    scale, framed in its scale's colour. Below: ``glimpse t/T`` and, when given, the answer and
    the true class (green when they agree, red when not). The size depends on the canvas shape
    and the retina only, so the frames of an episode make a video.

    Args:
        canvas: ``[H, W]`` uint8, or float in ``[0, 1]`` (numpy or torch).
        path: the fixations ``(x, y)`` so far, oldest first, the current one last (a list of
            pairs or an array ``[t, 2]``); empty before the first reset (then no box).
        glimpse: ``[k, g, g]`` in ``[0, 1]`` taken at ``path[-1]``, or ``None`` to compute it
            with the sensor.
        config: the retina and episode settings (``GlimpseConfig``, or ``CatchConfig``).
        answer, truth: the answered and the true class; callers pass ``truth`` only once the
            episode has ended. A game (``CatchConfig``) shows "caught" where they agree (its
            answer is 1 for a caught ball, its truth 1), else "missed".
        step: the glimpse number shown (default ``len(path)``).
        min_size: the shorter side of the enlarged canvas is at least this.
    """
    canvas = _canvas_uint8(canvas)
    height, width = canvas.shape
    fixations = _path_array(path)
    factor = enlargement(height, width, min_size)
    k, g = config.n_scales, config.patch_size
    if glimpse is None:
        if len(fixations):
            glimpse = sense(
                torch.from_numpy(canvas)[None],
                torch.from_numpy(fixations[-1:]),
                g,
                k,
                config.scale_factor,
            )[0]
        else:
            glimpse = np.zeros((k, g, g), np.float32)
    glimpse = _as_numpy(glimpse)
    if glimpse.shape != (k, g, g):
        raise ValueError(f"glimpse must have shape {(k, g, g)}, got {glimpse.shape}")

    panel = _canvas_image(canvas, factor)
    draw = ImageDraw.Draw(panel)
    points = [_point(fixation, height, width, factor) for fixation in fixations]
    if len(points) > 1:
        draw.line(points, fill=PATH_COLOUR, width=2)
    for x, y in points[:-1]:
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=PATH_COLOUR)
    if len(fixations):
        thick = 2 if factor >= 3 else 1
        for scale in reversed(range(k)):
            side = g * config.scale_factor**scale
            row, col = _square(fixations[-1], side, height, width)
            _box(draw, row, col, side, factor, outline=_scale_colour(scale), width=thick)
        x, y = points[-1]
        draw.line((x - 5, y, x + 5, y), fill=_scale_colour(0), width=2)
        draw.line((x, y - 5, x, y + 5), fill=_scale_colour(0), width=2)
    for number, (x, y) in enumerate(points, start=1):
        _text(draw, (x + 5, y - 4), str(number), PATH_COLOUR, 13, "lb")

    panel_height = height * factor
    fit = (panel_height - (k - 1) * 2 - k * 4) // (k * g)  # k framed tiles, 2 px apart
    tile_factor = max(1, min(fit, panel_height // (2 * g)))
    tile_side = g * tile_factor
    strip_width = tile_side + 4
    # Even sides: video encoders (H.264 in yuv420p, as RecordVideo writes) need them.
    frame_width = _even(MARGIN + width * factor + MARGIN + strip_width + MARGIN)
    frame_height = _even(MARGIN + panel_height + BAND)
    frame = Image.new("RGB", (frame_width, frame_height), BACKGROUND)
    frame.paste(panel, (MARGIN, MARGIN))
    strip_x = MARGIN + width * factor + MARGIN
    frame_draw = ImageDraw.Draw(frame)
    for scale in range(k):
        y0 = MARGIN + scale * (tile_side + 6)
        frame_draw.rectangle(
            (strip_x, y0, strip_x + tile_side + 3, y0 + tile_side + 3), fill=_scale_colour(scale)
        )
        frame.paste(_patch_image(glimpse[scale], tile_factor), (strip_x + 2, y0 + 2))

    shown = len(fixations) if step is None else step
    label, colour = _label_text(answer, truth, config)
    frame.paste(
        _band(frame_width, f"glimpse {shown}/{config.n_glimpses}", label, colour),
        (0, MARGIN + panel_height),
    )
    return np.asarray(frame, dtype=np.uint8).copy()


def draw_fixations(
    canvas: Any,
    path: Any,
    config: GlimpseGeometry,
    answer: int | None = None,
    truth: int | None = None,
    *,
    min_size: int = MIN_SIZE,
) -> np.ndarray:
    """Every fixation's fovea box on the enlarged canvas, numbered in order (uint8 ``[h, w, 3]``).

    Box ``t`` is coloured from cyan (first) through green and yellow to red (last); a thin
    line joins the fixations. Below: the answer and the true class when given.
    """
    canvas = _canvas_uint8(canvas)
    height, width = canvas.shape
    fixations = _path_array(path)
    factor = enlargement(height, width, min_size)
    panel = _canvas_image(canvas, factor)
    draw = ImageDraw.Draw(panel)
    points = [_point(fixation, height, width, factor) for fixation in fixations]
    if len(points) > 1:
        draw.line(points, fill=(200, 200, 200), width=1)
    g = config.patch_size
    corners = []
    for t, fixation in enumerate(fixations):
        row, col = _square(fixation, g, height, width)
        _box(draw, row, col, g, factor, outline=_time_colour(t, len(fixations)), width=2)
        corners.append((row, col))
    for t, (row, col) in enumerate(corners):
        x = min(max(col * factor + 4, 2), width * factor - 12)
        y = min(max(row * factor + 3, 2), height * factor - 14)
        _text(draw, (x, y), str(t + 1), _time_colour(t, len(fixations)), 13, "la")
    frame_width = width * factor + 2 * MARGIN
    frame = Image.new("RGB", (frame_width, MARGIN + height * factor + BAND), BACKGROUND)
    frame.paste(panel, (MARGIN, MARGIN))
    label, colour = _label_text(answer, truth, config)
    frame.paste(_band(frame_width, "", label, colour), (0, MARGIN + height * factor))
    return np.asarray(frame, dtype=np.uint8).copy()


def draw_glimpses(
    glimpses: Any,
    config: GlimpseGeometry,
    answer: int | None = None,
    truth: int | None = None,
    *,
    tile_size: int = 48,
) -> np.ndarray:
    """The glimpses of one episode (``[T, k, g, g]``): column ``t`` is glimpse ``t + 1``, row
    ``i`` is scale ``i`` framed in its scale's colour (uint8 ``[h, w, 3]``)."""
    glimpses = _as_numpy(glimpses)
    steps, k, g = glimpses.shape[0], config.n_scales, config.patch_size
    if glimpses.shape[1:] != (k, g, g):
        raise ValueError(f"glimpses must have shape (T, {k}, {g}, {g}), got {glimpses.shape}")
    factor = max(1, round(tile_size / g))
    cell = g * factor + 4
    header = 18
    width = MARGIN + steps * (cell + 2) + MARGIN
    height = MARGIN + header + k * (cell + 2)
    picture = Image.new("RGB", (width, height + BAND), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    for t in range(steps):
        x0 = MARGIN + t * (cell + 2)
        _text(draw, (x0 + cell // 2, MARGIN + header // 2), str(t + 1), TEXT_COLOUR, 13, "mm")
        for scale in range(k):
            y0 = MARGIN + header + scale * (cell + 2)
            draw.rectangle((x0, y0, x0 + cell - 1, y0 + cell - 1), fill=_scale_colour(scale))
            picture.paste(_patch_image(glimpses[t, scale], factor), (x0 + 2, y0 + 2))
    label, colour = _label_text(answer, truth, config)
    picture.paste(_band(width, "", label, colour), (0, height))
    return np.asarray(picture, dtype=np.uint8).copy()


def tile(
    frames: Sequence[np.ndarray], columns: int, pad: int = 4, background=(16, 16, 16)
) -> np.ndarray:
    """A grid of uint8 ``[h, w, 3]`` pictures, row by row, ``columns`` per row.

    Cells are as large as the largest picture; smaller ones sit in their cell's top-left.
    """
    if not frames:
        raise ValueError("tile() needs at least one frame")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    columns = min(columns, len(frames))
    rows = math.ceil(len(frames) / columns)
    cell_h = max(frame.shape[0] for frame in frames)
    cell_w = max(frame.shape[1] for frame in frames)
    grid = np.empty((pad + rows * (cell_h + pad), pad + columns * (cell_w + pad), 3), np.uint8)
    grid[:] = background
    for index, frame in enumerate(frames):
        row, col = divmod(index, columns)
        y, x = pad + row * (cell_h + pad), pad + col * (cell_w + pad)
        grid[y : y + frame.shape[0], x : x + frame.shape[1]] = frame
    return grid


def vector_frames(env: Any, max_episodes: int | None = None) -> list[np.ndarray]:
    """The current frame of each sub-env of a vector env (the first ``max_episodes``; ``None``:
    all), uint8 ``[h, w, 3]`` each.

    The vector env keeps no history, so each frame shows the current fixation and glimpse
    only (no path) and no labels; after a sub-env's last step, its fixation is the location
    sent with the answer.
    """
    count = env.num_envs if max_episodes is None else min(max_episodes, env.num_envs)
    canvases = env.canvases[:count].cpu().numpy()
    fixations = env.fixations[:count].cpu().numpy()
    glimpses = env.glimpses[:count].cpu().numpy()
    steps = (env.episode_steps[:count] + 1).clamp(max=env.config.n_glimpses).tolist()
    return [
        draw_frame(canvases[i], fixations[i : i + 1], glimpses[i], env.config, step=steps[i])
        for i in range(count)
    ]


def vector_frame(env: Any, max_episodes: int = 9, columns: int = 3) -> np.ndarray:
    """A grid of the current frames (``vector_frames``) of the first ``max_episodes`` sub-envs."""
    return tile(vector_frames(env, max_episodes), columns)


# --------------------------------------------------------------------------- episodes


@dataclass
class Episodes:
    """A batch of finished episodes (numpy), everything a picture needs.

    Attributes:
        canvases: uint8 ``[B, H, W]``, or ``[B, T, H, W]`` when the picture changes during an
            episode (a game: the screen at each glimpse).
        fixations: float32 ``[B, T, 2]``, the fixation of each glimpse.
        glimpses: float32 ``[B, T, k, g, g]``, each glimpse as the agent saw it.
        answers: int64 ``[B]``, the labels given at the last step (a game: 1 caught, 0 not).
        truths: int64 ``[B]``, the true classes (the env's final ``info["label"]``; a game: 1).
        indices: int64 ``[B]``, the images of the split the canvases were made from.
        config: the task's ``GlimpseConfig``.
    """

    canvases: np.ndarray
    fixations: np.ndarray
    glimpses: np.ndarray
    answers: np.ndarray
    truths: np.ndarray
    indices: np.ndarray
    config: GlimpseConfig


def _canvas(episodes: Episodes, b: int, t: int) -> np.ndarray:
    """The picture of episode ``b`` at glimpse ``t`` (the same one throughout, but in a game)."""
    canvases = episodes.canvases
    return canvases[b, t] if canvases.ndim == 4 else canvases[b]


def figures_of(episodes: Episodes, columns: int = 3) -> dict[str, Any]:
    """``{"bbox": image, "glimpses": image, "gif": [frames]}`` (uint8 ``[h, w, 3]`` arrays).

    ``gif`` has ``T + 1`` frames: frame ``t < T`` shows glimpse ``t + 1`` of every episode, the
    last frame the final fixation again with the answered and the true class.
    """
    config = episodes.config
    batch, steps = episodes.fixations.shape[:2]
    answers, truths = episodes.answers.tolist(), episodes.truths.tolist()
    bbox = tile(
        [
            draw_fixations(
                _canvas(episodes, b, -1), episodes.fixations[b], config, answers[b], truths[b]
            )
            for b in range(batch)
        ],
        columns,
    )
    glimpses = tile(
        [draw_glimpses(episodes.glimpses[b], config, answers[b], truths[b]) for b in range(batch)],
        columns,
    )
    gif = []
    for t in range(steps + 1):
        now, end = min(t, steps - 1), t == steps
        frames = [
            draw_frame(
                _canvas(episodes, b, now),
                episodes.fixations[b, : now + 1],
                episodes.glimpses[b, now],
                config,
                answer=answers[b] if end else None,
                truth=truths[b] if end else None,
            )
            for b in range(batch)
        ]
        gif.append(tile(frames, columns))
    return {"bbox": bbox, "glimpses": glimpses, "gif": gif}


# --------------------------------------------------------------------------- files


def _rgb(image: Any) -> np.ndarray:
    image = _as_numpy(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 [h, w, 3] picture, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def write_png(image: np.ndarray, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write a uint8 ``[h, w, 3]`` picture as PNG (folders are created)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_rgb(image)).save(path, format="PNG")
    return path


def write_gif(
    frames: Sequence[np.ndarray],
    path: str | os.PathLike[str],
    fps: float = 2.0,
    hold_last: float = 2.0,
) -> pathlib.Path:
    """Write frames (uint8 ``[h, w, 3]``, same size) as a looping GIF with Pillow.

    Each frame lasts ``1 / fps`` seconds, the last one ``hold_last`` seconds.
    """
    if not frames:
        raise ValueError("write_gif() needs at least one frame")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(_rgb(frame)) for frame in frames]
    durations = [round(1000 / fps)] * (len(images) - 1) + [round(1000 * hold_last)]
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=durations,
        loop=0,
        optimize=False,
        disposal=1,
    )
    return path


def save_figures(figures: Mapping[str, Any], prefix: str | os.PathLike[str]) -> list[pathlib.Path]:
    """Write ``episode_figures``' dict as ``PREFIX_bbox.png``, ``PREFIX_glimpses.png``,
    ``PREFIX.gif``; returns the paths. A prefix ending in ``.gif`` or ``.png`` names the GIF
    itself (``x.gif`` writes ``x.gif``, ``x_bbox.png`` and ``x_glimpses.png``)."""
    prefix = str(prefix)
    if prefix.lower().endswith((".gif", ".png")):
        prefix = prefix[:-4]
    return [
        write_png(figures["bbox"], f"{prefix}_bbox.png"),
        write_png(figures["glimpses"], f"{prefix}_glimpses.png"),
        write_gif(figures["gif"], f"{prefix}.gif"),
    ]
