"""RAM against Stable-Baselines3 on one glimpse task: learning curves, several seeds, two budgets.

    python benchmarks/compare_agents.py                                   # 200k env steps each
    python benchmarks/compare_agents.py --budget seconds --seconds 120    # equal wall-clock
    python benchmarks/compare_agents.py --agents ram ppo --seeds 0 1 2 3 --steps 1000000

Every run (one agent, one seed: a *cell*) trains on the task's training split and is scored at
``--points`` evenly spaced points of its budget (env steps, or seconds of training wall-clock)
on the same fixed test images or games (the first ``--eval-images`` of the test split; on
``GlimpseCatch-v0`` the error is the share of missed balls; fixed canvases,
and start fixations keyed by image and the evaluation seed 0, so every agent and every point
sees the very same first glimpses). Evaluation time is outside the budget.

* ``ram``: the built-in RAM agent, ``train_reinforce.py``'s task defaults (model, std, batch,
  Adam lr) at a constant learning rate (the trainer's cosine schedule is set in epochs, not in
  a budget); hybrid loss (labels supervise the classifier, REINFORCE the fixations). Env steps
  = episodes x ``n_glimpses``. Scored with the mean policy and with sampled fixations (M=1).
* ``recurrent-ppo``, ``ppo``, ``ppo-stack`` (PPO on the last ``FRAME_STACK`` observations,
  SB3's ``VecFrameStack``: a memory that is not an LSTM), ``a2c``, ``dqn``: SB3 on the batched
  Discrete adapter (``agents.sb3.make_sb3_vec_env``) with the hyperparameters of
  ``SB3_HYPERPARAMS`` (the sweep's winners, docs/sb3_sweep.md); pure reward (1 for a right
  answer). Env steps = ``model.num_timesteps``. Scored with deterministic and sampled actions
  (``agents.sb3.sample_actions``: noise keyed by image and seed, as RAM's).
* ``random``: the chance level, uniform random fixations and labels (or moves), never trained
  (a flat curve).

Outputs in ``--out/<env>/<budget>/``: ``<agent>_s<seed>.csv`` (one row per point), the summary
``table.md`` and ``summary.csv`` (final point: mean and min-max over seeds), and with the
``bench`` extra (matplotlib) ``curves.png`` (test error against env steps and against seconds,
mean and min-max band over seeds). Resumable: each cell saves its state after every point
(``<agent>_s<seed>.state/``), so an interrupted benchmark continues from the last point, and a
finished cell is reused (re-running a finished benchmark only redraws). A cell's settings are
checked against the ones it was started with.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import pathlib
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
import tyro

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecFrameStack, VecMonitor

import ram_env
import train_reinforce
import train_sb3
from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.game import evaluate_game, train_games
from agents.reinforce import evaluate, train_epoch
from agents.sb3 import algorithm_class, evaluate_sb3, make_sb3_vec_env, save_model
from ram_env.atomic import atomic_write
from ram_env.canvas import episode_key, hash_unit
from ram_env.catch import MOVES, NUM_TEST_GAMES
from ram_env.core import resolve_device
from ram_env.datasets import NUM_CLASSES, load_split
from ram_env.vector import index_sweep

AgentName = Literal["ram", "recurrent-ppo", "ppo", "ppo-stack", "a2c", "dqn", "random"]
EnvId = Literal[ram_env.ENV_IDS]  # type: ignore[valid-type]
AGENTS: tuple[str, ...] = ("ram", "recurrent-ppo", "ppo", "ppo-stack", "a2c", "dqn", "random")
#: Observations ``ppo-stack`` sees at once.
FRAME_STACK = 4
#: The seed that keys the test episodes' start fixations: one for every agent and point.
EVAL_SEED = 0
#: The first hash stream of the random agent's draws.
RANDOM_STREAM = 1000
#: RAM trains in chunks of batches of about this many seconds between clock checks.
RAM_CHUNK_SECONDS = 1.0
#: SB3 hyperparameters per task and algorithm, RL-Zoo style: the winners of the sweep
#: (benchmarks/sb3_sweep.py, docs/sb3_sweep.md) over ``SB3_BASE``. ``n_envs`` and ``grid`` set
#: the adapter; everything else goes to the algorithm's constructor.
SB3_BASE: dict[str, Any] = {"n_envs": 64, "grid": 4}
#: PPO's winners also serve RecurrentPPO and PPO with frame stacking (not swept: RecurrentPPO
#: runs at a few hundred steps/s on one CPU thread); DQN keeps SB3's defaults (not swept).
_PPO = {"learning_rate": 1e-2, "n_steps": 128, "batch_size": 2048, "ent_coef": 0.0,
        "grid": 4, "n_envs": 16}  # fmt: skip
SB3_HYPERPARAMS: dict[str, dict[str, dict[str, Any]]] = {
    "GlimpseMNIST-v0": {
        "ppo": _PPO,
        "ppo-stack": _PPO,
        "recurrent-ppo": _PPO,
        "a2c": {"learning_rate": 2e-3, "n_steps": 5, "ent_coef": 0.01, "grid": 4, "n_envs": 64},
    },
}
COLUMNS = ("env_steps", "seconds", "test_error", "test_error_sampled")


@dataclass
class Args:
    """RAM against Stable-Baselines3 on one glimpse task: learning curves over seeds."""

    env: EnvId = "GlimpseMNIST-v0"
    """the task"""
    agents: tuple[AgentName, ...] = AGENTS  # type: ignore[assignment]
    """agents to run"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """training seeds (one cell per agent and seed)"""
    budget: Literal["steps", "seconds"] = "steps"
    """equal env steps (--steps) or equal training wall-clock (--seconds) for every agent"""
    steps: int = 200_000
    """env steps per cell with --budget steps"""
    seconds: float = 120.0
    """training seconds per cell with --budget seconds"""
    points: int = 8
    """evaluation points per cell, evenly spaced over the budget"""
    eval_images: int = 2000
    """test images scored at each point (the first N of the fixed test split)"""
    eval_envs: int = 256
    """parallel SB3 evaluation episodes"""
    device: str = "cpu"
    """device of the networks and envs: auto, cpu, cuda, cuda:N"""
    threads: int | None = 1
    """torch CPU threads (None: torch's default)"""
    out: str = "benchmarks/results"
    """results root (a folder per task and budget)"""

    def check(self) -> None:
        from ram_env.core import check_int

        for name in ("steps", "points", "eval_images", "eval_envs"):
            check_int(f"--{name.replace('_', '-')}", getattr(self, name), low=1)
        if not self.seconds > 0:
            raise ValueError(f"--seconds must be > 0, got {self.seconds}")
        if not self.agents or not self.seeds:
            raise ValueError("give at least one agent and one seed")
        if len(set(self.seeds)) != len(self.seeds) or len(set(self.agents)) != len(self.agents):
            raise ValueError(f"repeated agents or seeds: {self.agents} {self.seeds}")
        for seed in self.seeds:  # the seeds every agent takes (SB3's are 32-bit)
            check_int("--seeds", seed, low=0, high=2**32 - 1)

    @property
    def amount(self) -> float:
        return self.steps if self.budget == "steps" else self.seconds

    def folder(self) -> pathlib.Path:
        return pathlib.Path(self.out) / self.env.removesuffix("-v0") / self.budget

    def cell_settings(self) -> dict[str, Any]:
        """What a cell's numbers depend on (checked when a cell is resumed)."""
        skip = ("agents", "seeds", "out", "threads", "eval_envs")
        return {key: value for key, value in asdict(self).items() if key not in skip}


# --- learners: one interface for RAM and SB3 ---------------------------------------------


class RamLearner:
    """RAM trained as ``train_reinforce.py`` does, resumable at any batch boundary."""

    def __init__(self, args: Args, seed: int) -> None:
        ram_args = replace(train_reinforce.Args.for_task(args.env), seed=seed, device=args.device)
        ram_args.check()
        self.config = config = train_reinforce.run_config(ram_args)
        self.device = resolve_device(args.device)
        self.batch, self.std = config["batch_size"], config["std"]
        self.entropy_weight = config["entropy_weight"]
        self.glimpses = ram_args.n_glimpses
        self.game = train_reinforce.is_game(args.env)
        torch.manual_seed(seed)
        self.env = train_reinforce.make_env(config, "train", self.batch, self.device)
        self.env.reset(seed=seed)
        num_images = self.env.unwrapped.num_images
        # No validation part; a game plays GAMES_PER_EPOCH random games per "epoch".
        self.train_images = range(num_images) if self.game else torch.arange(num_images)
        self.model = train_reinforce.build_model(config, self.device)
        self.optimizer = train_reinforce.build_optimizer(self.model, config)
        self.noise = torch.Generator(self.device).manual_seed(seed)
        self.shuffle = torch.Generator().manual_seed(seed)
        per_epoch = train_reinforce.GAMES_PER_EPOCH if self.game else num_images
        self.per_epoch = per_epoch // self.batch
        self.order = torch.zeros(0, dtype=torch.int64)
        self.position = self.per_epoch  # a fresh shuffle first
        self.steps, self.seconds = 0, 0.0
        self.test_env = train_reinforce.make_env(config, "test", 500, self.device)

    def train_until(self, kind: str, target: float) -> None:
        start, base = time.perf_counter(), self.seconds
        per_batch = None
        while True:
            now = base + time.perf_counter() - start
            left = target - (self.steps if kind == "steps" else now)
            if left <= 0:
                break
            if self.position == self.per_epoch and self.game:
                count = self.per_epoch * self.batch
                self.order = torch.randint(len(self.train_images), (count,), generator=self.shuffle)
                self.position = 0
            elif self.position == self.per_epoch:
                shuffled = torch.randperm(len(self.train_images), generator=self.shuffle)
                self.order, self.position = self.train_images[shuffled], 0
            if kind == "steps":
                count = -(-int(left) // (self.batch * self.glimpses))  # ceil
            else:
                count = 1 if per_batch is None else int(min(RAM_CHUNK_SECONDS, left) / per_batch)
            count = max(1, min(count, self.per_epoch - self.position))
            chunk = self.order[self.position * self.batch : (self.position + count) * self.batch]
            tick = time.perf_counter()
            chunk = chunk.to(self.device)
            if self.game:
                train_games(self.model, self.env, self.optimizer, chunk, self.std, self.noise,
                            entropy_weight=self.entropy_weight)  # fmt: skip
            else:
                train_epoch(self.model, self.env, self.optimizer, chunk, self.std, self.noise)
            per_batch = (time.perf_counter() - tick) / count
            self.position += count
            self.steps += count * self.batch * self.glimpses
        self.seconds = base + time.perf_counter() - start

    def evaluate(self, indices: torch.Tensor) -> tuple[float, float]:
        indices = indices.to(self.device)
        if self.game:  # the error of a game: the share of missed balls
            mean = evaluate_game(self.model, self.test_env, indices, self.std, EVAL_SEED, True)
            sampled = evaluate_game(self.model, self.test_env, indices, self.std, EVAL_SEED, False)
        else:
            mean = evaluate(self.model, self.test_env, indices, 1, self.std, EVAL_SEED, True)
            sampled = evaluate(self.model, self.test_env, indices, 1, self.std, EVAL_SEED)
        return 100 * (1 - mean), 100 * (1 - sampled)

    def save(self, folder: pathlib.Path) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "noise": self.noise.get_state(),
                "shuffle": self.shuffle.get_state(),
                "env": self.env.unwrapped.get_rng_state(),
            },
            "config": self.config,
            "epoch": self.steps // (self.batch * self.glimpses * self.per_epoch),
            "order": self.order,
            "position": self.position,
            "steps": self.steps,
            "seconds": self.seconds,
        }
        save_checkpoint(state, folder / "ram.pt")

    def load(self, folder: pathlib.Path) -> None:
        state = load_checkpoint(folder / "ram.pt")
        if state["config"] != self.config:  # e.g. a cell saved under an older task recipe
            changed = sorted(
                key
                for key in set(state["config"]) | set(self.config)
                if state["config"].get(key) != self.config.get(key)
            )
            raise RuntimeError(
                f"{folder / 'ram.pt'} was trained with other RAM settings ({', '.join(changed)});"
                " use another --out or remove the cell"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        self.noise.set_state(state["rng"]["noise"])
        self.shuffle.set_state(state["rng"]["shuffle"])
        self.env.unwrapped.set_rng_state(state["rng"]["env"])
        self.order, self.position = state["order"], state["position"]
        self.steps, self.seconds = state["steps"], state["seconds"]


class TimeBudget(BaseCallback):
    """Stops ``learn`` at the first env step after ``seconds`` of training."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = 0.0

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()

    def _on_step(self) -> bool:
        return time.perf_counter() - self.start < self.seconds


def sb3_settings(env: str, agent: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The SB3 settings of ``agent`` on ``env``: ``SB3_BASE``, the task's tuned values, then
    ``overrides`` (the sweep's)."""
    tuned = SB3_HYPERPARAMS.get(env, {}).get(agent, {})
    return {**SB3_BASE, **tuned, **(overrides or {})}


class SB3Learner:
    """An SB3 algorithm on the batched Discrete adapter, resumable at evaluation points."""

    def __init__(self, args: Args, seed: int, agent: str, overrides: dict | None = None) -> None:
        self.args, self.agent, self.seed = args, agent, seed
        settings = sb3_settings(args.env, agent, overrides)
        self.n_envs, self.grid = settings.pop("n_envs"), settings.pop("grid")
        algo = "ppo" if agent == "ppo-stack" else agent
        self.cls, self.policy = algorithm_class(algo)
        budget = args.steps if args.budget == "steps" else 10**9
        defaults = train_sb3.algorithm_kwargs(
            algo, train_sb3.Args(algo=algo, n_envs=self.n_envs, timesteps=budget)
        )
        self.kwargs = {**defaults, **settings}
        self.device = str(resolve_device(args.device))
        self.wrapper = None
        if agent == "ppo-stack":
            self.wrapper = lambda vec: VecFrameStack(vec, FRAME_STACK)
        self.env = self._make_env()
        self.model = self.cls(
            self.policy, self.env, seed=seed, device=self.device, verbose=0, **self.kwargs
        )
        self.seconds = 0.0

    def _make_env(self) -> Any:
        args = self.args
        vec = make_sb3_vec_env(args.env, self.n_envs, self.grid, self.device, seed=self.seed)
        vec = VecMonitor(vec)
        return vec if self.wrapper is None else self.wrapper(vec)

    @property
    def steps(self) -> int:
        return int(self.model.num_timesteps)

    def train_until(self, kind: str, target: float) -> None:
        start = time.perf_counter()
        if kind == "steps":
            left = int(target) - self.steps
            if left > 0:
                self.model.learn(left, reset_num_timesteps=False)
        else:
            left = target - self.seconds
            if left > 0:
                self.model.learn(10**12, callback=TimeBudget(left), reset_num_timesteps=False)
        self.seconds += time.perf_counter() - start

    def evaluate(self, indices: torch.Tensor) -> tuple[float, float]:
        scores = [
            evaluate_sb3(
                self.model,
                self.args.env,
                {},
                "test",
                indices,
                self.args.eval_envs,
                self.device,
                deterministic,
                EVAL_SEED,
                self.wrapper,
            )
            for deterministic in (True, False)
        ]
        return 100 * (1 - scores[0]), 100 * (1 - scores[1])

    def save(self, folder: pathlib.Path) -> None:
        path = save_model(self.model, folder / "model.zip")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        text = json.dumps({"seconds": self.seconds, "model_sha256": digest}).encode()
        atomic_write(folder / "state.json", lambda file: file.write(text))

    def load(self, folder: pathlib.Path) -> None:
        """Our own saved model only: its bytes must match the digest saved beside them (an SB3
        zip holds pickles). The replay buffer (DQN) and the episodes in progress start afresh."""
        state = json.loads((folder / "state.json").read_text())
        data = (folder / "model.zip").read_bytes()
        if hashlib.sha256(data).hexdigest() != state["model_sha256"]:
            raise RuntimeError(f"{folder / 'model.zip'} is not the model saved there: refusing it")
        self.model = self.cls.load(io.BytesIO(data), env=self.env, device=self.device)
        self.seconds = state["seconds"]


class RandomLearner:
    """The chance level: uniform random fixations and labels (or moves), never trained.

    Its budget passes without learning (the curve is flat); its episodes' draws are a pure
    function of (test item, step, ``EVAL_SEED``), so its score is one number whatever the
    batch. Deterministic and sampled are the same policy here."""

    def __init__(self, args: Args, seed: int) -> None:
        config = train_reinforce.run_config(train_reinforce.Args.for_task(args.env))
        self.device = resolve_device(args.device)
        self.env = train_reinforce.make_env(config, "test", 500, self.device).unwrapped
        self.game = train_reinforce.is_game(args.env)
        self.steps, self.seconds = 0, 0.0

    def train_until(self, kind: str, target: float) -> None:
        if kind == "steps":
            self.steps = max(self.steps, int(target))
        else:
            self.seconds = max(self.seconds, float(target))

    def evaluate(self, indices: torch.Tensor) -> tuple[float, float]:
        env, (key, choices) = self.env, ("move", MOVES) if self.game else ("label", NUM_CLASSES)
        indices = indices.to(self.device)
        env.reset(seed=EVAL_SEED)
        right = 0.0
        for items, valid in index_sweep(indices, env.num_envs):
            env.reset(options={"indices": items})
            keys = episode_key(items, torch.zeros_like(items), EVAL_SEED)
            for step in range(env.config.n_glimpses):
                # Streams of their own (the env's start fixation reads streams 0 and 1).
                draws = [hash_unit(keys, RANDOM_STREAM + 3 * step + i) for i in range(3)]
                location = torch.stack(draws[:2], dim=1) * 2 - 1
                other = (draws[2] * choices).long().clamp(max=choices - 1)
                _, reward, _, _, _ = env.step({"location": location, key: other})
            right += float(reward[:valid].sum())
        error = 100 * (1 - right / len(indices))
        return error, error

    def save(self, folder: pathlib.Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        state = {"steps": self.steps, "seconds": self.seconds}
        atomic_write(folder / "random.json", lambda file: file.write(json.dumps(state).encode()))

    def load(self, folder: pathlib.Path) -> None:
        state = json.loads((folder / "random.json").read_text())
        self.steps, self.seconds = state["steps"], state["seconds"]


def make_learner(args: Args, agent: str, seed: int, overrides: dict | None = None) -> Any:
    if agent == "ram":
        return RamLearner(args, seed)
    if agent == "random":
        return RandomLearner(args, seed)
    return SB3Learner(args, seed, agent, overrides)


# --- cells, summary, figures ------------------------------------------------------------


def read_curve(path: pathlib.Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with path.open() as file:
        return [
            {key: int(value) if key == "env_steps" else float(value) for key, value in row.items()}
            for row in csv.DictReader(file)
        ]


def write_curve(path: pathlib.Path, rows: list[dict[str, float]]) -> None:
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda file: file.write(table.getvalue().encode()))


#: How an SB3 agent's sampled actions are drawn (``agents.sb3.sample_actions``), recorded in
#: its cells: cells scored before the noise was keyed drew it from the global RNG.
SB3_SAMPLING = "noise keyed by image and seed"


def cell_settings(args: Args, agent: str, seed: int, overrides: dict | None) -> dict[str, Any]:
    """What one cell's numbers depend on: ``Args.cell_settings``, the agent, seed, overrides
    and, for an SB3 agent, how its sampled score is drawn (``SB3_SAMPLING``)."""
    settings = {**args.cell_settings(), "agent": agent, "seed": seed, "overrides": overrides}
    if agent not in ("ram", "random"):
        settings["sampling"] = SB3_SAMPLING
    return settings


class CellSettingsError(RuntimeError):
    """A cell's folder holds a cell started with other settings."""


def finished_cells(args: Args, folder: pathlib.Path) -> list[tuple[str, int, list[dict]]]:
    """``(agent, seed, curve)`` of every finished cell in ``folder`` with this call's settings
    (``cell_settings``, no overrides), e.g. the agents of an earlier call on the same budget:
    the summary covers them all, not only this call's."""
    cells = []
    for settings_path in sorted(folder.glob("*_s*.json")):
        try:
            settings = json.loads(settings_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        agent, seed = settings.get("agent"), settings.get("seed")
        if agent not in AGENTS or not isinstance(seed, int) or settings.get("overrides"):
            continue
        if settings != cell_settings(args, agent, seed, None):
            continue
        curve = read_curve(folder / f"{agent}_s{seed}.csv")
        if len(curve) >= args.points:
            cells.append((agent, seed, curve[: args.points]))
    return cells


def run_cell(
    args: Args, agent: str, seed: int, folder: pathlib.Path, overrides: dict | None = None,
    name: str | None = None,
) -> list[dict[str, float]]:  # fmt: skip
    """Train one agent with one seed to the budget, scoring at each point; resumable.

    Returns the curve (``--points`` rows of ``COLUMNS``). A finished cell is read back, an
    unfinished one continues from its last point; a cell started with other settings is an
    error naming the file.
    """
    name = name or f"{agent}_s{seed}"
    curve_path, state = folder / f"{name}.csv", folder / f"{name}.state"
    settings = cell_settings(args, agent, seed, overrides)
    settings_path = folder / f"{name}.json"
    if settings_path.exists() and json.loads(settings_path.read_text()) != settings:
        raise CellSettingsError(
            f"{settings_path} was started with other settings; use another --out or remove it"
        )
    curve = read_curve(curve_path)
    if len(curve) >= args.points:
        return curve[: args.points]
    folder.mkdir(parents=True, exist_ok=True)
    settings_text = json.dumps(settings, indent=1).encode()
    atomic_write(settings_path, lambda file: file.write(settings_text))
    learner = make_learner(args, agent, seed, overrides)
    if curve and state.exists():
        learner.load(state)
    else:
        curve = []
    indices = torch.arange(args.eval_images)
    for point in range(len(curve) + 1, args.points + 1):
        learner.train_until(args.budget, args.amount * point / args.points)
        error, sampled = learner.evaluate(indices)
        curve.append(
            {
                "env_steps": learner.steps,
                "seconds": round(learner.seconds, 2),
                "test_error": round(error, 3),
                "test_error_sampled": round(sampled, 3),
            }
        )
        state.mkdir(parents=True, exist_ok=True)
        learner.save(state)
        write_curve(curve_path, curve)
        print(
            f"  {name} point {point}/{args.points}: {learner.steps} steps, "
            f"{learner.seconds:.1f} s, test error {error:.2f}% (sampled {sampled:.2f}%)",
            flush=True,
        )
    return curve


def summarise(curves: dict[str, dict[int, list[dict[str, float]]]]) -> list[dict[str, Any]]:
    """Final-point mean and min-max over seeds, per agent."""
    rows = []
    for agent, by_seed in curves.items():
        finals = [curve[-1] for curve in by_seed.values()]
        row: dict[str, Any] = {"agent": agent, "seeds": len(finals)}
        for key in COLUMNS:
            values = np.array([final[key] for final in finals])
            row[f"{key}_mean"] = round(float(values.mean()), 3)
            row[f"{key}_min"] = round(float(values.min()), 3)
            row[f"{key}_max"] = round(float(values.max()), 3)
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    def cell(row: dict[str, Any], key: str, fmt: str) -> str:
        mean, low, high = (row[f"{key}_{part}"] for part in ("mean", "min", "max"))
        return f"{fmt.format(mean)} ({fmt.format(low)}-{fmt.format(high)})"

    lines = [
        "| agent | seeds | env steps | train wall-clock (s) | test error (%) | sampled (%) |",
        "|:--|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['agent']} | {row['seeds']} | {cell(row, 'env_steps', '{:,.0f}')} | "
            f"{cell(row, 'seconds', '{:.0f}')} | {cell(row, 'test_error', '{:.2f}')} | "
            f"{cell(row, 'test_error_sampled', '{:.2f}')} |"
        )
    return "\n".join(lines)


def plot_curves(curves: dict, path: pathlib.Path, title: str) -> pathlib.Path | None:
    """Test error against env steps and against seconds: the deterministic (mean) policy's
    mean over seeds with its min-max band, and the sampled policy's mean, dashed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no figure", flush=True)
        return None
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for agent, by_seed in curves.items():
        stacked = {
            key: np.array([[row[key] for row in curve] for curve in by_seed.values()])
            for key in COLUMNS
        }
        for axis, x_key in zip(axes, ("env_steps", "seconds"), strict=True):
            x = stacked[x_key].mean(axis=0)
            error = stacked["test_error"]
            (line,) = axis.plot(x, error.mean(axis=0), marker="o", markersize=3, label=agent)
            band = (error.min(axis=0), error.max(axis=0))
            axis.fill_between(x, *band, alpha=0.2, color=line.get_color())
            sampled = stacked["test_error_sampled"].mean(axis=0)  # dashed: sampled actions
            axis.plot(x, sampled, linestyle="--", linewidth=1, color=line.get_color())
    for axis, label in zip(axes, ("env steps", "training wall-clock (s)"), strict=True):
        axis.set_xlabel(label)
        axis.set_ylabel("test error (%)")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    figure.suptitle(f"{title}; solid: mean / deterministic policy, dashed: sampled")
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(Args, args=argv, prog="compare_agents.py", description=__doc__)
    try:
        args.check()
    except ValueError as error:
        print(f"compare_agents.py: error: {error}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.env in ram_env.GAMES:
        test_images = NUM_TEST_GAMES
    else:
        test_images = load_split(ram_env.TASKS[args.env]["dataset"], "test")[1].numel()
    if args.eval_images > test_images:
        print(f"compare_agents.py: error: --eval-images {args.eval_images}: the test split has "
              f"{test_images} images", file=sys.stderr)  # fmt: skip
        return 2
    folder = args.folder()
    budget = f"{args.steps:,} env steps" if args.budget == "steps" else f"{args.seconds:g} s"
    print(
        f"{args.env}: {budget} per cell, seeds {list(args.seeds)}, {args.points} points, "
        f"{args.eval_images} test images, {resolve_device(args.device)}, "
        f"{torch.get_num_threads()} torch threads -> {folder}",
        flush=True,
    )
    curves: dict[str, dict[int, list[dict[str, float]]]] = {}
    try:
        for agent in args.agents:
            for seed in args.seeds:
                print(f"{agent}, seed {seed}:", flush=True)
                curves.setdefault(agent, {})[seed] = run_cell(args, agent, seed, folder)
    except CellSettingsError as error:
        print(f"compare_agents.py: error: {error}", file=sys.stderr)
        return 2
    for agent, seed, curve in finished_cells(args, folder):  # earlier calls' agents and seeds
        curves.setdefault(agent, {}).setdefault(seed, curve)
    rows = summarise(curves)
    table = markdown_table(rows)
    print(table)
    text = (
        f"{args.env}, {budget} per cell, final point, mean (min-max) over each agent's seeds "
        f"(the seeds column); {args.eval_images} fixed test images.\n\n{table}\n"
    )
    atomic_write(folder / "table.md", lambda file: file.write(text.encode()))
    summary = io.StringIO()
    writer = csv.DictWriter(summary, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(folder / "summary.csv", lambda file: file.write(summary.getvalue().encode()))
    figure = plot_curves(curves, folder / "curves.png", f"{args.env}, budget: {budget} per run")
    if figure is not None:
        print(f"wrote {figure}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
