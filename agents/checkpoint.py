"""Checkpoints of the RAM agent: written atomically, loaded safely (``weights_only=True``).

A checkpoint is a dict of tensors and plain Python values only (so ``torch.load`` can refuse
anything else): ``model``, ``optimizer``, ``scheduler`` (state dicts), ``rng`` (generator
states), ``epoch`` (epochs completed), ``best_accuracy``, ``best_epoch``, ``history`` (one dict
per epoch) and ``config`` (every training setting, see ``train_reinforce.py``), plus
``digest``: the SHA-256 of every value in it (tensor bytes, dtypes, shapes and plain values),
checked on load, so flipped bytes in a weight are an error instead of a silently worse agent.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import warnings
from typing import Any

import torch

from agents.ram import RAM, RAMConfig
from ram_env.atomic import atomic_write

__all__ = ["CheckpointError", "load_agent", "load_checkpoint", "payload_digest", "save_checkpoint"]

REQUIRED_KEYS = ("model", "config", "epoch")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, unsafe or from another setting."""


def payload_digest(payload: Any) -> str:
    """SHA-256 (hex) of a checkpoint's contents, ``digest`` entry excluded: every tensor's dtype,
    shape and bytes and every plain value, walked in order (dict keys sorted)."""
    digest = hashlib.sha256()

    def visit(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"tensor {value.dtype} {tuple(value.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            keys = sorted(value, key=repr)
            if value is payload:
                keys = [key for key in keys if key != "digest"]
            digest.update(f"dict {len(keys)}".encode())
            for key in keys:
                digest.update(repr(key).encode())
                visit(value[key])
        elif isinstance(value, (list, tuple)):
            digest.update(f"{type(value).__name__} {len(value)}".encode())
            for item in value:
                visit(item)
        else:
            digest.update(f"{type(value).__name__} {value!r}".encode())

    visit(payload)
    return digest.hexdigest()


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``payload`` (with its ``digest``) to ``path`` atomically (``atomic_write``): a crash
    at any moment leaves either the old or the new checkpoint."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "digest": payload_digest(payload)}
    atomic_write(path, lambda file: torch.save(payload, file))


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint``; ``CheckpointError`` if unusable."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a folder: give a checkpoint file, e.g. {path / 'best.pt'}"
        )
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"cannot read checkpoint {path} (corrupt, truncated or not a ram-env checkpoint; "
            f"ram-env loads only tensors and plain values, never code): {_reason(error)}"
        ) from error
    if not isinstance(payload, dict) or any(key not in payload for key in REQUIRED_KEYS):
        raise CheckpointError(
            f"{path} is not a ram-env checkpoint (it needs the keys {list(REQUIRED_KEYS)})"
        )
    problems = _layout_problems(payload)
    if problems:
        raise CheckpointError(f"{path} is not a ram-env checkpoint ({'; '.join(problems)})")
    if "digest" not in payload:
        warnings.warn(
            f"{path} carries no digest (written by an older ram-env): its contents cannot be "
            "checked; the next save adds one",
            stacklevel=2,
        )
    elif payload["digest"] != payload_digest(payload):
        raise CheckpointError(
            f"{path} does not match its digest: its contents were changed or corrupted after "
            "it was written (use another checkpoint, e.g. last.pt or best.pt)"
        )
    return payload


def _layout_problems(payload: dict[str, Any]) -> list[str]:
    """What makes ``payload`` unlike a ram-env checkpoint (another project's file with the
    common ``model``/``config``/``epoch`` keys): ``model`` a state dict of tensors, ``config``
    the run's settings with its ``env`` and ``model`` (``RAMConfig``), ``epoch`` an int."""
    model, config, epoch = payload["model"], payload["config"], payload["epoch"]
    problems = []
    if not isinstance(model, dict) or not all(
        isinstance(value, torch.Tensor) for value in model.values()
    ):
        problems.append("'model' is not a state dict of tensors")
    if not (
        isinstance(config, dict)
        and isinstance(config.get("env"), str)
        and isinstance(config.get("model"), dict)
    ):
        problems.append("'config' lacks the run's settings ('env' and the network's 'model')")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        problems.append(f"'epoch' is not a count of epochs: {epoch!r}")
    return problems


def _reason(error: Exception) -> str:
    """The cause in torch's load error, without its advice to load unsafely."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    reason = lines[0] if lines else type(error).__name__
    return reason.split(" Re-running `torch.load`")[0]


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
