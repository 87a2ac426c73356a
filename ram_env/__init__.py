"""ram-env: the Recurrent Attention Model's glimpse tasks as Gymnasium environments.

Importing the package registers the ids of ``TASKS`` with Gymnasium, each with a single-env
``entry_point`` (``GlimpseEnv``) and a ``vector_entry_point`` (``GlimpseVectorEnv``)::

    import gymnasium, ram_env
    env = gymnasium.make("GlimpseMNIST-v0")
    envs = gymnasium.make_vec("GlimpseMNIST-v0", num_envs=4096,
                              vectorization_mode="vector_entry_point", device="cuda")
"""

from __future__ import annotations

import importlib
from typing import Any

from gymnasium.envs.registration import register, registry

__all__ = ["ENV_IDS", "GAMES", "TASKS", "CatchEnv", "CatchVectorEnv", "GlimpseConfig", "GlimpseEnv",
           "GlimpseVectorEnv"]  # fmt: skip
__version__ = "0.1.0"

_MULTISCALE_RETINA = {"n_glimpses": 8, "patch_size": 12, "n_scales": 3, "scale_factor": 2}

#: The paper's tasks (section 4.1): id -> ``GlimpseConfig`` keyword arguments.
TASKS: dict[str, dict] = {
    "GlimpseMNIST-v0": {"dataset": "mnist", "n_glimpses": 6, "patch_size": 8, "n_scales": 1},
    "GlimpseTranslatedMNIST-v0": {
        "dataset": "mnist",
        "canvas_size": 60,
        "placement": "random",
        **_MULTISCALE_RETINA,
    },
    "GlimpseClutteredMNIST-v0": {
        "dataset": "mnist",
        "canvas_size": 60,
        "placement": "random",
        "clutter_count": 4,
        "clutter_size": 8,
        **_MULTISCALE_RETINA,
    },
    "GlimpseClutteredMNIST100-v0": {
        "dataset": "mnist",
        "canvas_size": 100,
        "placement": "random",
        "clutter_count": 8,
        "clutter_size": 8,
        **_MULTISCALE_RETINA,
        "n_scales": 4,
    },
    # Not in the paper: MNIST's 6 glimpses of 8x8, with a second scale (16x16 at half
    # resolution), which a garment's outline needs (docs/recipe.md, "Fashion-MNIST's retina").
    "GlimpseFashionMNIST-v0": {
        "dataset": "fashion-mnist",
        "n_glimpses": 6,
        "patch_size": 8,
        "n_scales": 2,
        "scale_factor": 2,
    },
}

#: The paper's game (section 4.2): id -> ``ram_env.catch.CatchConfig`` keyword arguments.
GAMES: dict[str, dict] = {"GlimpseCatch-v0": {}}
#: Every id this package registers, sorted (the trainers' and CLIs' ``--env`` choices).
ENV_IDS: tuple[str, ...] = tuple(sorted({**TASKS, **GAMES}))

_FACES = {
    "ram_env.env:GlimpseEnv": ("ram_env.vector:GlimpseVectorEnv", TASKS),
    "ram_env.catch:CatchEnv": ("ram_env.catch:CatchVectorEnv", GAMES),
}
for _entry, (_vector_entry, _ids) in _FACES.items():
    for _env_id, _kwargs in _ids.items():
        if _env_id not in registry:
            register(_env_id, _entry, vector_entry_point=_vector_entry, kwargs=dict(_kwargs))


_LAZY = {
    "GlimpseConfig": "ram_env.core",
    "GlimpseEnv": "ram_env.env",
    "GlimpseVectorEnv": "ram_env.vector",
    "CatchEnv": "ram_env.catch",
    "CatchVectorEnv": "ram_env.catch",
}


def __getattr__(name: str) -> Any:
    """Import the env classes on first use, so ``import ram_env`` only registers the ids."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ram_env' has no attribute {name!r}")
