"""Stable-Baselines3 / sb3-contrib glue: a fast ``VecEnv`` adapter, algorithms, evaluation.

SB3 takes neither Dict actions nor Gymnasium's ``VectorEnv``. ``GlimpseSB3VecEnv`` is an SB3
``VecEnv`` over ``ram_env.wrappers.DiscreteGlimpseVectorActions`` on one native vector env (N
episodes batched on a torch device): ``Discrete(G*G + 10)`` actions on the digit tasks,
``Discrete(G*G*3)`` on Catch, the adapters' float32 Dict observations, and SB3's VecEnv contract:
numpy at the boundary, same-step autoreset with ``infos[i]["terminal_observation"]``,
``reset_infos``, ``seed``, ``set_options``.
One step costs one batched core step (plus a batched reset of the finished sub-envs), not N Python
env steps as ``DummyVecEnv`` over N wrapped envs does.

    vec = make_sb3_vec_env("GlimpseMNIST-v0", n_envs=64, grid=4)
    model = RecurrentPPO("MultiInputLstmPolicy", VecMonitor(vec)).learn(100_000)
    accuracy = evaluate_sb3(model, "GlimpseMNIST-v0", {}, "test", None, n_envs=256, device="cpu")
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import load_env_creator
from gymnasium.vector import AutoresetMode
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from ram_env import GAMES
from ram_env.atomic import atomic_write
from ram_env.canvas import episode_key, hash_uniform
from ram_env.catch import MOVES, VALIDATION_GAMES
from ram_env.core import NUM_CLASSES, check_int
from ram_env.datasets import holdout_split
from ram_env.env import check_render_mode
from ram_env.vector import index_sweep
from ram_env.wrappers import DiscreteGlimpseVectorActions, make_discrete_vec

__all__ = [
    "ALGORITHMS",
    "GlimpseSB3VecEnv",
    "ValidationCallback",
    "algorithm_class",
    "evaluate_sb3",
    "evaluate_sb3_episodes",
    "grid_of",
    "make_sb3_vec_env",
    "save_model",
    "validation_split",
]


def _recurrent_ppo() -> tuple[type[BaseAlgorithm], str]:
    from sb3_contrib import RecurrentPPO

    return RecurrentPPO, "MultiInputLstmPolicy"


#: CLI name -> (algorithm class, policy), the class imported on demand.
ALGORITHMS = {
    "recurrent-ppo": _recurrent_ppo,
    "ppo": lambda: (PPO, "MultiInputPolicy"),
    "a2c": lambda: (A2C, "MultiInputPolicy"),
    "dqn": lambda: (DQN, "MultiInputPolicy"),
}


def algorithm_class(name: str) -> tuple[type[BaseAlgorithm], str]:
    """``(class, policy name)`` of an algorithm named as in ``ALGORITHMS``."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; known: {sorted(ALGORITHMS)}")
    return ALGORITHMS[name]()


#: The end-of-episode info fields the bridge hands to SB3 (those the env reports).
END_FIELDS = ("label", "index", "glimpses", "is_success")


def grid_of(action_space: gym.spaces.Space, moves: int | None = None) -> int:
    """The grid side ``G`` of a ``Discrete(G*G + 10)`` action space (digit tasks), or of a
    ``Discrete(G*G*moves)`` one (a game such as Catch)."""
    n = getattr(action_space, "n", None)
    if moves:
        grid = math.isqrt(int(n) // moves) if n is not None else 0
        if grid < 1 or grid * grid * moves != n:
            raise ValueError(f"not a Discrete(G*G*{moves}) action space: {action_space}")
        return grid
    grid = math.isqrt(int(n) - NUM_CLASSES) if n is not None and n > NUM_CLASSES else 0
    if grid < 1 or grid * grid + NUM_CLASSES != n:
        raise ValueError(f"not a Discrete(G*G + {NUM_CLASSES}) action space: {action_space}")
    return grid


class GlimpseSB3VecEnv(VecEnv):
    """SB3 ``VecEnv``: a numpy bridge over ``DiscreteGlimpseVectorActions`` on a SAME_STEP env.

    Args:
        venv: a ``ram_env.wrappers.DiscreteGlimpseVectorActions`` over a ``GlimpseVectorEnv``
            made with ``autoreset_mode=AutoresetMode.SAME_STEP`` (SB3 resets finished envs in
            the same step); ``make_sb3_vec_env`` builds it.
        index_pool: optional int ``[M]`` image indices of the split (or a ``range``: a game's
            training games); every reset (but those
            given by ``set_options``) draws its images uniformly from the pool, e.g. the training
            images without a held-out validation part (``GlimpseVectorEnv.set_image_pool``).
            ``None``: the whole split.

    All rules live below it: this class moves each step's tensors to the host in one copy and
    renames Gymnasium's ``final_obs`` to SB3's ``terminal_observation``.

    Seeding: ``seed(s)`` seeds the next ``reset()``: the env's generator gets ``s`` (the batch is
    one generator, so SB3's per-env seeds ``s + i`` collapse to ``s``). Options: ``set_options``
    takes, per sub-env, ``{"index": i}`` (all sub-envs or none) for the next ``reset()`` only:
    sub-env ``j`` then shows image ``i_j``.

    Infos of a finished episode: ``terminal_observation``, ``label``, ``index``, ``glimpses``,
    ``is_success`` and ``TimeLimit.truncated`` (always ``False``: episodes end by an answer or by
    the cap, both terminations). ``get_attr``/``set_attr``/``env_method`` reach the shared
    ``GlimpseVectorEnv`` (``grid``, ``n_glimpses``, ``observation_space`` and ``action_space``
    answer per sub-env); there are no per-sub-env objects, so ``set_attr``/``env_method`` apply
    to all sub-envs at once.
    """

    def __init__(
        self, venv: DiscreteGlimpseVectorActions, index_pool: torch.Tensor | range | None = None
    ) -> None:
        if not isinstance(venv, DiscreteGlimpseVectorActions):
            raise TypeError(
                f"venv must be a DiscreteGlimpseVectorActions, got {type(venv).__name__} "
                "(make_sb3_vec_env builds one)"
            )
        base = venv.unwrapped
        if base.autoreset_mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                "venv must be made with autoreset_mode=AutoresetMode.SAME_STEP (SB3 resets "
                f"finished envs in the same step), got {base.autoreset_mode}"
            )
        self.venv = venv
        self.base = base
        self.device = base.device
        self.grid = venv.grid
        self.n_glimpses = venv.n_glimpses
        self.num_images = base.num_images
        if index_pool is not None:
            base.set_image_pool(index_pool)
        self._actions: np.ndarray | None = None
        super().__init__(base.num_envs, venv.single_observation_space, venv.single_action_space)
        self.render_mode = base.render_mode  # "rgb_array" for SB3's render and VecVideoRecorder

    # --- the VecEnv API ---------------------------------------------------------------------

    def reset(self) -> dict[str, np.ndarray]:
        seed = self._seeds[0]
        indices = self._indices_from_options(self._options)
        options = None if indices is None else {"indices": indices}
        observation, _ = self.venv.reset(seed=seed, options=options)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        self._actions = None
        return _to_host_dict(observation)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(): call step(actions)")
        actions = np.asarray(self._actions).reshape(-1)
        self._actions = None
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected {self.num_envs} discrete actions, got {actions.shape}")
        observation, reward, terminated, truncated, info = self.venv.step(
            torch.from_numpy(actions).to(self.device)
        )
        final = info.get("final_info", {})
        final_obs = info.get("final_obs", {})
        ended = terminated | truncated
        scalars = {"reward": reward, "done": ended, "truncated": truncated}
        fields = [key for key in END_FIELDS if key in final]  # Catch has no label
        host = _to_host_dict(
            {**observation, **{f"final_{k}": v for k, v in final_obs.items()}, **scalars}
        )
        if fields:  # integers: game indices reach 2**31, past float32's exact range
            host.update(_to_host_dict({key: final[key] for key in fields}, torch.int64))
        obs = {key: host[key] for key in observation}
        dones = host["done"][:, 0] > 0
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i] = {
                "terminal_observation": {key: host[f"final_{key}"][i] for key in observation},
                **{key: int(host[key][i, 0]) for key in fields if key != "is_success"},
                "is_success": bool(host["is_success"][i, 0]),
                "TimeLimit.truncated": bool(host["truncated"][i, 0]),
            }
            self.reset_infos[i] = {}
        return obs, host["reward"][:, 0].copy(), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> list[np.ndarray]:
        """The current frame of every sub-env (uint8 ``[h, w, 3]``; ``ram_env.render``), which
        SB3's ``render()`` tiles and ``VecVideoRecorder`` records; needs the env made with
        ``render_mode="rgb_array"``."""
        if self.render_mode != "rgb_array":
            raise ValueError(
                'get_images() needs the env made with render_mode="rgb_array" '
                f'(make_sb3_vec_env(..., render_mode="rgb_array")), got {self.render_mode!r}'
            )
        return list(self.base.render())

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = self._single_attr(attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._check_all(indices, "set_attr")
        setattr(self.base, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        self._check_all(indices, "env_method")
        result = getattr(self.base, method_name)(*method_args, **method_kwargs)
        return [result for _ in range(self.num_envs)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None):
        return [False for _ in self._get_indices(indices)]

    # --- helpers ----------------------------------------------------------------------------

    def _single_attr(self, attr_name: str) -> Any:
        if attr_name == "observation_space":
            return self.observation_space  # SB3's spaces are one sub-env's
        if attr_name == "action_space":
            return self.action_space
        if attr_name in ("grid", "n_glimpses"):
            return getattr(self, attr_name)
        return getattr(self.base, attr_name)

    def _check_all(self, indices: VecEnvIndices, what: str) -> None:
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise ValueError(f"{what}: the sub-envs share one GlimpseVectorEnv; target all of them")

    def _indices_from_options(self, options: Sequence[dict[str, Any]]) -> torch.Tensor | None:
        keys = {key for option in options for key in option}
        if not keys:
            return None
        if keys != {"index"} or not all("index" in option for option in options):
            raise ValueError(
                "set_options takes {'index': i} for every sub-env (or no options); "
                f"got {list(options)[:4]}..."
            )
        indices = []
        for i, option in enumerate(options):
            name = f"set_options: sub-env {i}'s 'index'"
            indices.append(check_int(name, option["index"], 0, self.num_images - 1))
        return torch.tensor(indices, device=self.device)


def _to_host_dict(
    columns: dict[str, torch.Tensor], dtype: torch.dtype = torch.float32
) -> dict[str, np.ndarray]:
    """``[N, width]`` numpy views (``dtype``) of the ``[N, ...]`` tensors, in one host copy."""
    flat = {key: value.reshape(value.shape[0], -1) for key, value in columns.items()}
    device = next(iter(flat.values())).device
    host = torch.cat([value.to(device, dtype) for value in flat.values()], 1).cpu().numpy()
    out, start = {}, 0
    for key, value in flat.items():
        out[key] = host[:, start : start + value.shape[1]]
        start += value.shape[1]
    return out


def validation_split(
    env_id: str, num_images: int, fraction: float
) -> tuple[torch.Tensor | range, torch.Tensor]:
    """``(training pool, held-out indices)`` of a training split: the digit tasks hold out the
    last ``fraction`` of the images (``holdout_split``); a game (Catch) holds out its last
    ``VALIDATION_GAMES`` games and draws training games from a ``range`` of the others."""
    if env_id.split(":")[-1] in GAMES:
        cut = num_images - VALIDATION_GAMES
        return range(0, cut), torch.arange(cut, num_images)
    return holdout_split(num_images, fraction)


#: What the SB3 adapter sets itself (``make_sb3_vec_env``'s arguments and the vector env
#: settings it makes), and how to choose each: env kwargs may not set them.
ADAPTER_SETTINGS = {
    "device": "the device argument (train_sb3.py --env-device)",
    "autoreset_mode": "always SAME_STEP, which SB3's VecEnv API needs",
    "validate_actions": "off: the adapter builds only valid actions",
    "num_envs": "the n_envs argument (train_sb3.py --n-envs)",
    "n_envs": "the n_envs argument (train_sb3.py --n-envs)",
    "vectorization_mode": "always the native vector env",
    "env_id": "the env_id argument (train_sb3.py --env)",
    "grid": "the grid argument (train_sb3.py --grid)",
    "seed": "the seed argument (train_sb3.py --seed)",
    "holdout": "the holdout argument (train_sb3.py --val-fraction)",
    "index_pool": "the index_pool argument (training draws from the split less validation)",
}


def check_env_kwargs(env_kwargs: dict[str, Any], env_id: str | None = None) -> None:
    """``ValueError`` naming every key of ``env_kwargs`` that the SB3 adapter sets itself
    (``ADAPTER_SETTINGS``) and how to set it instead; the one check of ``make_sb3_vec_env``
    and ``train_sb3.py --env-kwargs``.

    With ``env_id`` the task's vector env also checks the arguments as it would when made
    (its config and render mode), so a bad value is refused before a run starts: ``TypeError``
    for an unknown keyword (Python's wording, as the env raises it), ``ValueError`` for a bad
    value."""
    reserved = [key for key in ADAPTER_SETTINGS if key in env_kwargs]
    if reserved:
        raise ValueError(
            "env kwargs may not set what the SB3 adapter sets: "
            + "; ".join(f"{key!r} ({ADAPTER_SETTINGS[key]})" for key in reserved)
        )
    if env_id is not None:
        spec = gym.spec(env_id)
        vector_env = load_env_creator(spec.vector_entry_point)
        kwargs = {**spec.kwargs, **env_kwargs}
        check_render_mode(kwargs.pop("render_mode", None), vector_env.metadata)
        vector_env.make_config(kwargs)


def make_sb3_vec_env(
    env_id: str = "GlimpseMNIST-v0",
    n_envs: int = 16,
    grid: int = 4,
    device: str | torch.device = "cpu",
    index_pool: torch.Tensor | range | None = None,
    seed: int | None = None,
    holdout: float = 0.0,
    **env_kwargs: Any,
) -> GlimpseSB3VecEnv:
    """``GlimpseSB3VecEnv`` over ``make_discrete_vec(env_id, n_envs, grid, ...)`` on ``device``.

    ``env_kwargs`` are the task's ``gymnasium.make`` arguments (``split``, ``n_glimpses``,
    ``render_mode``, ...). The adapter builds only valid actions, so the vector env skips its
    action checks. ``seed`` seeds the first ``reset()``. ``holdout`` in ``[0, 1)``: the last
    ``round(holdout * N)`` images of the split are never drawn (a validation part, see
    ``holdout_split``); it cannot be combined with ``index_pool``. ``env_kwargs`` may not set
    what the adapter sets (``check_env_kwargs``).
    """
    check_env_kwargs(env_kwargs)
    venv = make_discrete_vec(
        env_id,
        n_envs,
        grid,
        autoreset_mode=AutoresetMode.SAME_STEP,
        validate_actions=False,
        device=device,
        **env_kwargs,
    )
    if holdout:
        if index_pool is not None:
            raise ValueError("give either index_pool or holdout, not both")
        index_pool, _ = validation_split(env_id, venv.unwrapped.num_images, holdout)
    vec = GlimpseSB3VecEnv(venv, index_pool=index_pool)
    if seed is not None:
        vec.seed(seed)
    return vec


def evaluate_sb3_episodes(
    model: BaseAlgorithm,
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    split: str,
    indices: Sequence[int] | torch.Tensor | None,
    n_envs: int = 256,
    device: str | torch.device = "cpu",
    deterministic: bool = True,
    seed: int = 0,
    vec_wrapper: Callable[[VecEnv], VecEnv] | None = None,
) -> np.ndarray:
    """Play one episode on each image ``indices`` of ``split``; bool ``[len(indices)]`` right.

    Images go in batches of ``n_envs``, each sub-env reset on its image with
    ``reset(options={"indices": ...})`` (via ``set_options``); only that first episode of each
    sub-env counts. Canvases are fixed (``fixed_canvases=True`` unless ``env_kwargs`` says
    otherwise) and the env is seeded with ``seed``, so the start fixations (random unless
    ``start="center"``) are a function of the image and ``seed``; with
    ``deterministic=False`` the actions are sampled with noise keyed by the image and
    ``seed`` too (``sample_actions``): either score is one number for a given seed, whatever
    ``n_envs``. Recurrent policies get their LSTM state and ``episode_start`` as
    sb3-contrib requires. ``indices=None``: the whole split. The grid comes from the model's
    action space. ``vec_wrapper`` wraps the adapter as the model was trained (e.g.
    ``lambda vec: VecFrameStack(vec, 4)``).
    """
    game = env_id.split(":")[-1] in GAMES
    fixed = {"fixed_games": True} if game else {"fixed_canvases": True}
    env_kwargs = {**fixed, **(env_kwargs or {}), "split": split}
    grid = grid_of(model.action_space, MOVES if game else None)
    if indices is None:
        probe = gym.make_vec(
            env_id, num_envs=1, vectorization_mode="vector_entry_point", **env_kwargs
        )
        indices = torch.arange(probe.unwrapped.num_images)
        probe.close()
    indices = torch.as_tensor(indices).long().cpu()
    total = indices.numel()
    if total == 0:
        raise ValueError("evaluate_sb3: no images to evaluate (empty indices)")
    n_envs = min(n_envs, total)
    vec = make_sb3_vec_env(env_id, n_envs, grid, device, seed=seed, **env_kwargs)
    if vec_wrapper is not None:
        vec = vec_wrapper(vec)
    correct = np.zeros(total, dtype=bool)
    for number, (batch, count) in enumerate(index_sweep(indices, n_envs)):
        start, padded = number * n_envs, batch.tolist()
        vec.set_options([{"index": index} for index in padded])
        obs = vec.reset()
        state = None
        episode_start = np.ones(n_envs, dtype=bool)
        pending = np.arange(n_envs) < count
        keys = episode_key(batch, torch.zeros_like(batch), seed)  # the noise of each image
        for step in range(vec.n_glimpses):
            if deterministic:
                action, state = model.predict(
                    obs, state=state, episode_start=episode_start, deterministic=True
                )
            else:
                action, state = sample_actions(model, obs, state, episode_start, keys, step)
            obs, _, dones, infos = vec.step(action)
            for i in np.flatnonzero(dones & pending):
                if infos[i]["index"] != padded[i]:  # pragma: no cover - a broken contract
                    raise RuntimeError(f"sub-env {i} played image {infos[i]['index']}")
                correct[start + i] = infos[i]["is_success"]
            pending &= ~dones
            episode_start = dones
            if not pending.any():
                break
        if pending.any():  # pragma: no cover - episodes end by n_glimpses steps
            raise RuntimeError("episodes did not end within n_glimpses steps")
    vec.close()
    return correct


#: First noise stream of ``sample_actions``: step ``t`` of an episode with ``A`` actions uses
#: the ``A + 1`` streams from ``SAMPLE_STREAM + t * (A + 1)``.
SAMPLE_STREAM = 5000


def sample_actions(
    model: BaseAlgorithm,
    obs: Any,
    state: tuple[np.ndarray, ...] | None,
    episode_start: np.ndarray,
    keys: torch.Tensor,
    step: int,
) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
    """Actions sampled from ``model``'s policy as ``model.predict(deterministic=False)`` does,
    but with the noise of sub-env ``b`` a pure function of ``(keys[b], step)`` (int64 keys,
    ``ram_env.canvas.episode_key``) instead of the global RNG in batch order: a sampled score
    does not depend on the number of envs or the order of the images (as RAM's does not).

    Actor-critic policies (A2C, PPO, RecurrentPPO, whose ``state`` is the LSTM's and is
    returned as ``predict`` returns it): a Gumbel-max draw from the ``Discrete`` action
    distribution, the same distribution ``predict`` samples. DQN: epsilon-greedy with
    ``model.exploration_rate`` per sub-env (``DQN.predict`` makes one draw for the whole
    batch; each action has the same distribution either way).

    Returns ``(actions int64 [n_envs], state)``. Raises ``ValueError`` for other action spaces.
    """
    policy = model.policy
    if not isinstance(model.action_space, gym.spaces.Discrete):
        raise ValueError(f"sampled evaluation needs Discrete actions, got {model.action_space}")
    count = int(model.action_space.n)
    streams = SAMPLE_STREAM + step * (count + 1) + torch.arange(count + 1)
    uniform = (hash_uniform(keys.cpu()[:, None], streams, 1 << 24) + 0.5) / (1 << 24)
    policy.set_training_mode(False)
    obs_tensor, _ = policy.obs_to_tensor(obs)
    with torch.no_grad():
        if isinstance(model, DQN):
            greedy = policy.q_net(obs_tensor).argmax(dim=1).cpu()
            explore = uniform[:, count] < model.exploration_rate
            return torch.where(explore, (uniform[:, 0] * count).long(), greedy).numpy(), None
        if hasattr(policy, "lstm_hidden_state_shape"):  # sb3-contrib's recurrent policies
            if state is None:
                zeros = np.zeros((*policy.lstm_hidden_state_shape[:1], len(keys),
                                  *policy.lstm_hidden_state_shape[2:]))  # fmt: skip
                state = (zeros, zeros)
            lstm = tuple(
                torch.as_tensor(s, dtype=torch.float32, device=policy.device) for s in state
            )
            starts = torch.as_tensor(episode_start, dtype=torch.float32, device=policy.device)
            distribution, lstm = policy.get_distribution(obs_tensor, lstm, starts)
            state = (lstm[0].cpu().numpy(), lstm[1].cpu().numpy())
        else:
            distribution = policy.get_distribution(obs_tensor)
        logits = distribution.distribution.logits.cpu()
    gumbel = -torch.log(-torch.log(uniform[:, :count].double()))
    return (logits.double() + gumbel).argmax(dim=1).numpy(), state


def evaluate_sb3(
    model: BaseAlgorithm,
    env_id: str,
    env_kwargs: dict[str, Any] | None,
    split: str,
    indices: Sequence[int] | torch.Tensor | None,
    n_envs: int = 256,
    device: str | torch.device = "cpu",
    deterministic: bool = True,
    seed: int = 0,
    vec_wrapper: Callable[[VecEnv], VecEnv] | None = None,
) -> float:
    """Accuracy of ``model`` on images ``indices`` of ``split``, each played exactly once.

    See ``evaluate_sb3_episodes``; ``indices=None`` scores the whole split.
    """
    correct = evaluate_sb3_episodes(
        model, env_id, env_kwargs, split, indices, n_envs, device, deterministic, seed, vec_wrapper
    )
    return float(correct.mean())


def save_model(model: BaseAlgorithm, path: str | os.PathLike[str]) -> pathlib.Path:
    """``model.save`` to ``path`` atomically (see ``atomic_write``); returns the path written.

    As ``model.save`` does, ``.zip`` is appended to a path without a suffix.
    """
    path = pathlib.Path(path)
    if path.suffix == "":
        path = path.with_name(f"{path.name}.zip")
    atomic_write(path, model.save)
    return path


class ValidationCallback(BaseCallback):
    """Every ``eval_freq`` timesteps (at a rollout's end): validation accuracy and checkpoints.

    Logs ``eval/val_accuracy`` and saves ``<save_dir>/last.zip`` and, on a new best,
    ``<save_dir>/best.zip`` (when ``save_dir`` is given), each atomically (``save_model``); then
    calls ``on_checkpoint(self)`` (if given), e.g. to record ``best_accuracy`` beside them.
    ``best_accuracy``: the best so far (a resumed run's), which a new best must beat.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict[str, Any],
        indices: torch.Tensor,
        eval_freq: int,
        n_envs: int = 256,
        device: str | torch.device = "cpu",
        save_dir: str | None = None,
        verbose: int = 1,
        best_accuracy: float = -1.0,
        on_checkpoint: Callable[[ValidationCallback], None] | None = None,
    ) -> None:
        super().__init__(verbose)
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        self.indices = indices
        self.eval_freq = eval_freq
        self.n_envs = n_envs
        self.env_device = device
        self.save_dir = save_dir
        self.best_accuracy = best_accuracy
        self.best_timesteps: int | None = None
        self.on_checkpoint = on_checkpoint
        self.last_accuracy: float | None = None
        self.last_eval_timesteps = 0

    def _on_training_start(self) -> None:
        self.last_eval_timesteps = self.model.num_timesteps

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        steps = self.model.num_timesteps
        if self.eval_freq > 0 and steps - self.last_eval_timesteps >= self.eval_freq:
            self.evaluate()

    def evaluate(self) -> float:
        """Score the model on the validation images now; log and checkpoint."""
        self.num_timesteps = self.model.num_timesteps
        self.last_eval_timesteps = self.num_timesteps
        accuracy = evaluate_sb3(
            self.model,
            self.env_id,
            self.env_kwargs,
            "train",
            self.indices,
            self.n_envs,
            self.env_device,
        )
        self.last_accuracy = accuracy
        self.logger.record("eval/val_accuracy", accuracy)
        self.logger.record("eval/val_error", 1.0 - accuracy)
        best = accuracy > self.best_accuracy
        if self.save_dir is not None:
            save_model(self.model, pathlib.Path(self.save_dir, "last.zip"))
            if best:
                save_model(self.model, pathlib.Path(self.save_dir, "best.zip"))
        if best:  # only once best.zip holds it
            self.best_accuracy = accuracy
            self.best_timesteps = self.num_timesteps
        if self.save_dir is not None and self.on_checkpoint is not None:
            self.on_checkpoint(self)
        if self.verbose:
            print(
                f"[{self.num_timesteps} steps] validation accuracy {accuracy:.4f} "
                f"(best {self.best_accuracy:.4f}, {self.indices.numel()} images)",
                flush=True,
            )
        return accuracy
