"""Checkpoints of the RAM agent: written atomically, loaded safely (``weights_only=True``).

A checkpoint is a dict of tensors and plain Python values only (so ``torch.load`` can refuse
anything else): ``model``, ``optimizer``, ``scheduler`` (state dicts), ``rng`` (generator
states), ``epoch`` (epochs completed), ``best_accuracy``, ``best_epoch``, ``history`` (one dict
per epoch) and ``config`` (every training setting, see ``train_reinforce.py``).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import torch

from agents.ram import RAM, RAMConfig
from ram_env.atomic import atomic_write

__all__ = ["CheckpointError", "load_agent", "load_checkpoint", "save_checkpoint"]

REQUIRED_KEYS = ("model", "config", "epoch")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, unsafe or from another setting."""


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``payload`` to ``path`` atomically (``atomic_write``): a crash at any moment leaves
    either the old or the new checkpoint."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda file: torch.save(payload, file))


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint``; ``CheckpointError`` if unusable."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"cannot read checkpoint {path} (corrupt, truncated or not a ram-env checkpoint): "
            f"{error}"
        ) from error
    if not isinstance(payload, dict) or any(key not in payload for key in REQUIRED_KEYS):
        raise CheckpointError(
            f"{path} is not a ram-env checkpoint (it needs the keys {list(REQUIRED_KEYS)})"
        )
    return payload


def load_agent(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[RAM, dict[str, Any]]:
    """A trained RAM agent, in eval mode on ``device``, and its whole checkpoint.

    ``payload["config"]`` holds at least ``env`` (a Glimpse id), ``env_kwargs`` (the retina
    and episode settings it was trained with), ``std`` (its policy's standard deviation) and
    ``model`` (``RAMConfig.to_dict()``); ``payload["epoch"]`` the epochs it was trained.
    """
    payload = load_checkpoint(path)
    model = RAM(RAMConfig.from_dict(payload["config"]["model"]))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise CheckpointError(
            f"{path}: weights do not fit the saved model config: {error}"
        ) from error
    return model.to(device).eval(), payload
