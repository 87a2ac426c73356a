"""Train, resume or test the built-in RAM agent with hybrid REINFORCE on a Glimpse env.

    python train_reinforce.py                          # GlimpseMNIST-v0, the paper's setting
    python train_reinforce.py --resume                 # continue the run from its last checkpoint
    python train_reinforce.py --test                   # score the run's best checkpoint on test
    python train_reinforce.py --env GlimpseClutteredMNIST-v0 --epochs 200
    torchrun --standalone --nproc_per_node=4 train_reinforce.py --batch-size 32   # 4 GPUs

Every option of the original implementation's ``config.py`` has a flag here. The run folder
(``--ckpt-dir``, default ``runs/<run name>``) holds ``last.pt`` and ``best.pt`` (atomic
writes), ``metrics.csv``/``metrics.json`` (one row per epoch) and, in ``--log-dir``, the
TensorBoard events and the episode figures. Ctrl-C stops cleanly: ``--resume`` continues from
the last completed epoch, bit-exactly on the CPU.

Started by ``torchrun`` (``agents.distributed``), each process trains on its own device and
plays ``--batch-size`` images of every global batch, the gradients are summed over the
processes, and rank 0 alone validates, logs and writes the run folder; ``--test`` splits the
test images over the processes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import pathlib
import signal
import sys
import textwrap
import time
import warnings
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from typing import Any, Literal

import gymnasium as gym
import torch
import tyro
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

import ram_env
from agents.checkpoint import (
    CheckpointError,
    atomic_write,
    load_agent,
    load_checkpoint,
    save_checkpoint,
)
from agents.distributed import SINGLE, DistributedError, Group
from agents.figures import episode_figures
from agents.game import evaluate_game, train_games
from agents.ram import RAM, RAMConfig
from agents.reinforce import Shards, compile_step, correct_answers, evaluate, train_epoch
from ram_env.catch import MOVES, NUM_TEST_GAMES, VALIDATION_GAMES, CatchConfig
from ram_env.core import NUM_CLASSES, GlimpseConfig, check_int, check_number, check_path
from ram_env.datasets import PIXEL_STATS, holdout_split, load_split
from ram_env.render import save_figures
from ram_env.vector import GlimpseVectorEnv

#: Settings that may change when a run is resumed; any other difference is an error. The run
#: folder may have moved (``ckpt_dir``, ``log_dir``); a run may continue on another kind of device
#: (``device``: trained on a GPU, continued on a CPU), then with fresh random streams (``train``).
RESUMABLE_CHANGES = {
    "epochs", "train_patience", "threads", "plot_every", "resume", "compile", "M", "accumulate",
    "world_size", "ckpt_dir", "log_dir", "device",
}  # fmt: skip
#: Each task's recipe: the defaults that differ from the flags' own (which are GlimpseMNIST-v0's).
#: Catch: the paper's LSTM core (section 4.2), an entropy bonus on the moves, no weight decay.
#: A flag given on the command line wins. Why these values: docs/recipe.md.
TASK_RECIPES: dict[str, dict[str, Any]] = {
    "GlimpseTranslatedMNIST-v0": {"std": 0.17, "epochs": 300},
    "GlimpseClutteredMNIST-v0": {"std": 0.17, "epochs": 300},
    "GlimpseClutteredMNIST100-v0": {"std": 0.17, "epochs": 300},
    "GlimpseCatch-v0": {
        "core": "lstm",
        "epochs": 100,
        "eval_batch_size": 500,
        "entropy_weight": 0.02,
        "location_init": "center",
        "weight_decay": 0.0,
    },
}
#: Files of a run folder that a new run (without ``--resume``) must never overwrite.
RUN_FILES = ("last.pt", "best.pt", "metrics.json", "metrics.csv")
#: Flags a ``--test`` run applies: how the checkpoint is found, scored and on what.
TEST_FLAGS = {
    "test", "checkpoint", "run_name", "ckpt_dir", "M", "eval_batch_size", "seed", "device",
    "threads", "std", "n_glimpses",
}  # fmt: skip
#: The settings that are the network's (``RAMConfig`` fields, saved under ``config["model"]``).
MODEL_FLAGS = (
    "core", "glimpse_hidden", "location_hidden", "glimpse_features", "core_size", "policy_hidden",
    "location_init",
)  # fmt: skip
#: The retina flags, which default to the task's own values (``ram_env.TASKS``).
RETINA = ("n_glimpses", "patch_size", "n_scales", "scale_factor")
#: The mode flags: how this invocation runs, never a setting of the run.
MODE_FLAGS = ("resume", "test", "checkpoint")


class SettingsError(ValueError):
    """Settings that cannot make this run, found once its data is known (before its folder)."""


EnvId = Literal[ram_env.ENV_IDS]  # type: ignore[valid-type]
#: A game's epoch: this many random training games (its 2**31 games are never all played).
GAMES_PER_EPOCH = 25_600


def is_game(env: str) -> bool:
    """Whether ``env`` is a game (Catch: pure REINFORCE, ``agents.game``), not a digit task."""
    return env in ram_env.GAMES


@dataclass
class Args:
    """Train, resume or test the built-in RAM agent with hybrid REINFORCE on a Glimpse env.

    python train_reinforce.py                          # GlimpseMNIST-v0, the paper's setting
    python train_reinforce.py --resume                 # continue the run from its last checkpoint
    python train_reinforce.py --test                   # score the run's best checkpoint on test
    python train_reinforce.py --env GlimpseClutteredMNIST-v0 --epochs 200
    torchrun --standalone --nproc_per_node=4 train_reinforce.py --batch-size 32   # 4 GPUs

    Defaults: the task's own retina (``ram_env.TASKS``) and recipe (``TASK_RECIPES``, why in
    docs/recipe.md); with --resume or --test, the saved run's settings (a flag given wins, and
    is checked: --resume refuses settings that would change the run, --test applies --std and
    --n-glimpses and refuses the others).
    """

    env: EnvId = "GlimpseMNIST-v0"
    """the task (a registered Glimpse id)"""
    n_glimpses: int = 6
    """glimpses per episode (num_glimpses; default: the task's)"""
    patch_size: int = 8
    """retina patch side g in pixels (default: the task's)"""
    n_scales: int = 1
    """retina scales k (num_patches; default: the task's)"""
    scale_factor: int = 2
    """patch growth per scale s (glimpse_scale; default: the task's)"""
    glimpse_hidden: int = RAMConfig.glimpse_hidden
    """'what' hidden size of the glimpse network"""
    location_hidden: int = RAMConfig.location_hidden
    """'where' hidden size of the glimpse network"""
    glimpse_features: int = RAMConfig.glimpse_features
    """glimpse vector size"""
    core_size: int = RAMConfig.core_size
    """core network state size (hidden_size)"""
    policy_hidden: int = RAMConfig.policy_hidden
    """location network hidden size"""
    core: Literal["rnn", "lstm"] = "rnn"
    """core network: the paper's ReLU RNN or an LSTM"""
    location_init: Literal["random", "center"] = "random"
    """the location network's output layer: PyTorch's random init, or zero so that the first
    fixations it picks are the centre (task recipes)"""
    std: float = 0.1
    """location policy standard deviation, a fraction of the half-width (task recipes)"""
    glimpse_stats: Literal["dataset", "mnist"] = "dataset"
    """standardise glimpses with the task dataset's pixel statistics or MNIST's"""
    batch_size: int = 128
    """images per batch, per process under torchrun (the global batch is batch-size x processes
    x accumulate)"""
    accumulate: int = 1
    """batches each process plays per optimizer step, gradients added up; with several batches
    per step in all (processes x accumulate > 1) each is seeded by (seed, epoch, step, batch),
    so a run trains the same on any split of them, e.g. 2 processes or 1 with --accumulate 2"""
    samples_per_image: int = 1
    """episodes per image in a batch (K); K > 1 uses the leave-one-out mean reward of the
    image's other episodes as REINFORCE baseline"""
    reinforce_weight: float = 1.0
    """weight of the REINFORCE term in the hybrid loss"""
    entropy_weight: float = 0.0
    """a game's entropy bonus: weight of the move policy's entropy (nats, summed over steps) in
    the loss (task recipes)"""
    epochs: int = 100
    """training epochs (task recipes)"""
    lr: float = 1e-3
    """initial Adam learning rate"""
    weight_decay: float = 0.05
    """decoupled weight decay (AdamW, Loshchilov & Hutter 2019): each step shrinks every weight
    by lr x weight-decay of itself; 0 is plain Adam (task recipes)"""
    init_from: str | None = None
    """a new run's starting weights: a checkpoint (.pt) of a run with the same network (any
    task), loaded safely (tensors only); its optimizer, schedule and history are not used, so
    this starts another learning-rate cycle from a trained agent (a warm restart)"""
    lr_schedule: Literal["plateau", "cosine"] = "cosine"
    """cosine: anneal to lr/100 over --epochs; plateau: lr/10 after --lr-patience epochs
    without validation gain (the original implementation's, with --lr 3e-4)"""
    lr_patience: int = 20
    """plateau epochs before lr/10"""
    train_patience: int = 50
    """early stop after this many epochs without validation gain (after --init-from, on the
    run's own epochs: its starting weights compete for best.pt only)"""
    valid_size: float = 0.1
    """validation fraction of the training split, in (0, 1)"""
    train_subset: int | None = None
    """use only this many training images (default: all); a game: games per epoch (default
    25,600 random training games)"""
    M: int = 10
    """sampled episodes per image at test"""
    eval_batch_size: int = 1000
    """images per evaluation batch"""
    seed: int = 1
    """seed of everything (in [0, 2**63))"""
    device: str = "auto"
    """auto (CUDA if present), cpu, cuda or cuda:N; under torchrun auto or cuda mean each
    process's cuda:LOCAL_RANK"""
    threads: int | None = None
    """torch CPU threads (default: torch's)"""
    compile: Literal["auto", "on", "off"] = "auto"
    """torch.compile the per-glimpse network (CUDA graphs on CUDA); auto: on for CUDA,
    falling back to eager with a warning if compiling fails"""
    run_name: str | None = None
    """default: ram_<env>_<glimpses>x<patch>_<core>"""
    ckpt_dir: str | None = None
    """checkpoints and metrics (default: runs/<run name>)"""
    log_dir: str | None = None
    """TensorBoard events and figures (default: the checkpoint folder)"""
    plot_every: int = 10
    """figures every N epochs (0: never)"""
    resume: bool = False
    """continue the run from its last.pt (exactly; the folder may have moved; on another kind
    of device the fixation noise and training canvases restart as new seeded streams)"""
    test: bool = False
    """score a checkpoint on the test split"""
    checkpoint: str | None = None
    """with --test: a .pt path (default: the run's best.pt)"""

    @classmethod
    def for_task(cls, env: str) -> Args:
        """The defaults of task ``env``: its retina and its recipe."""
        if is_game(env):
            game = CatchConfig(**ram_env.GAMES[env])
            retina = {name: getattr(game, name) for name in RETINA}
        else:
            task = ram_env.TASKS[env]
            retina = {name: task[name] for name in RETINA if name in task}
        return cls(env=env, **retina, **TASK_RECIPES.get(env, {}))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Args:
        """The settings of a saved run (a checkpoint's ``"config"``), mode flags off."""
        saved = {**trained_with(config), "checkpoint": None}
        saved.update({name: saved["env_kwargs"].get(name, 1 if name == "n_scales" else 2)
                      for name in RETINA})  # fmt: skip
        if is_game(saved["env"]):  # a game's length is its own
            saved["n_glimpses"] = CatchConfig(**saved["env_kwargs"]).n_glimpses
        known = {field.name for field in fields(cls)}
        model = saved.get("model") or {}
        saved.update({name: model[name] for name in MODEL_FLAGS if name in model})
        values = {name: saved[name] for name in known if name in saved}
        return cls(**{**values, "resume": False, "test": False})

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        for name in POSITIVE_INTS:
            value = getattr(self, name)
            if value is not None:
                check_int(f"--{name.replace('_', '-')}", value, low=1)
        check_int("--plot-every", self.plot_every, low=0)
        check_int("--seed", self.seed, low=0, high=2**63 - 1)
        check_number("--lr", self.lr, 0)
        check_number("--weight-decay", self.weight_decay, 0, inclusive=True)
        check_number("--std", self.std, 0)
        check_number("--reinforce-weight", self.reinforce_weight, 0, inclusive=True)
        check_number("--entropy-weight", self.entropy_weight, 0, inclusive=True)
        if self.checkpoint is not None and not self.test:
            raise ValueError(
                "--checkpoint names the checkpoint that --test scores; a training run tests "
                "its own best.pt (to start from another run's weights: --init-from)"
            )
        if (
            self.lr_schedule == "cosine"
            and self.lr_patience != Args.lr_patience
            and not (self.resume or self.test)  # those take the saved run's settings
        ):
            raise ValueError(
                f"--lr-patience {self.lr_patience}: a setting of --lr-schedule plateau, "
                "which this run does not use (cosine)"
            )
        if self.resume and self.test:
            raise ValueError("give --resume or --test, not both")
        for name, what in PATH_FLAGS.items():
            check_path(f"--{name.replace('_', '-')}", getattr(self, name), what)
        if not 0 < self.valid_size < 1:
            raise ValueError(
                "--valid-size must be in (0, 1): validation picks the best checkpoint, "
                f"got {self.valid_size}"
            )
        if not is_game(self.env):
            GlimpseConfig.from_kwargs(task_kwargs(self))
            if self.entropy_weight:
                raise ValueError(
                    f"--entropy-weight: a setting of the games (its moves), not of {self.env}"
                )
            return
        game = CatchConfig.from_kwargs(task_kwargs(self))
        if self.n_glimpses != game.n_glimpses:
            raise ValueError(
                f"--n-glimpses {self.n_glimpses}: a {self.env} game lasts {game.n_glimpses} "
                "steps (the ball's fall), one glimpse each"
            )
        digits_only = ("accumulate", "samples_per_image", "valid_size", "glimpse_stats",
                       "reinforce_weight", "M")  # fmt: skip
        changed = [name for name in digits_only if getattr(self, name) != getattr(Args, name)]
        if changed:
            flags = ", ".join("--" + name.replace("_", "-") for name in changed)
            raise ValueError(f"{flags}: settings of the digit tasks, not of {self.env}")


#: Settings that name a file or folder (``None``: the default one), and what they name.
PATH_FLAGS = {
    "init_from": "a checkpoint file, e.g. runs/NAME/best.pt",
    "checkpoint": "the checkpoint file to test, e.g. runs/NAME/best.pt",
    "run_name": "the run (its folder under runs/)",
    "ckpt_dir": "the run's folder",
    "log_dir": "the TensorBoard folder",
}
#: Integer settings that must be >= 1 (``None``, where allowed, means "the default").
POSITIVE_INTS = (
    "glimpse_hidden", "location_hidden", "glimpse_features", "core_size", "policy_hidden",
    "batch_size", "accumulate", "samples_per_image", "epochs", "lr_patience", "train_patience",
    "train_subset", "M", "eval_batch_size", "threads",
)  # fmt: skip


def _cli(argv: list[str] | None, default: Args) -> Args:
    recipes = "; ".join(
        f"{env}: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in recipe.items())
        for env, recipe in TASK_RECIPES.items()
    )
    return tyro.cli(
        Args,
        args=argv,
        default=default,
        prog="train_reinforce.py",
        description=f"{textwrap.dedent(Args.__doc__ or '')}\nTask recipes: {recipes}.",
    )


def parse_args(argv: list[str] | None = None) -> Args:
    """The settings of this invocation (``tyro`` over ``Args``), checked.

    Defaults come in three layers: ``Args``'s own, then the task's (``Args.for_task``), then,
    with ``--resume`` or ``--test``, the saved run's (``Args.from_config``): the command line is
    parsed against each in turn, so a flag given always wins and an absent one means "as the
    run was". Bad settings exit with status 2 and a message naming them.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    # --help shows the last layer's defaults (the task's, or the saved run's): not before.
    quiet = [arg for arg in argv if arg not in ("-h", "--help")]
    args = _cli(quiet, Args())
    args = _cli(quiet, Args.for_task(args.env))  # the task decides the run folder's name
    saved = saved_config(args) if args.resume or args.test else None
    if saved is None:
        args = _cli(argv, Args.for_task(args.env))
    else:
        mode = {name: getattr(args, name) for name in MODE_FLAGS}
        defaults = replace(Args.from_config(saved), **mode)
        if args.resume and saved.get("log_dir") == saved.get("ckpt_dir"):
            defaults = replace(defaults, log_dir=None)  # the default: it follows the run folder
        args = _cli(argv, defaults)
    try:
        args.check()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    return args


def saved_config(args: Args) -> dict[str, Any] | None:
    """The settings saved with the run ``args`` names: ``--checkpoint`` (with ``--test``), else
    the run folder's ``best.pt`` (``--test``) or ``last.pt`` (``--resume``); ``None`` if there
    is no such file or it cannot be read (the caller then reports the problem)."""
    folder = pathlib.Path(run_folder(args))
    path = (
        pathlib.Path(args.checkpoint)
        if args.test and args.checkpoint
        else folder / ("best.pt" if args.test else "last.pt")
    )
    if not path.is_file():
        return None
    try:
        with warnings.catch_warnings():  # the real load warns (a checkpoint without a digest)
            warnings.simplefilter("ignore")
            return load_checkpoint(path)["config"]
    except CheckpointError:
        return None


def run_name(args: Args) -> str:
    """``--run-name``, or ``ram_<env>_<glimpses>x<patch>_<core>``."""
    return args.run_name or (
        f"ram_{args.env.removesuffix('-v0')}_{args.n_glimpses}x{args.patch_size}_{args.core}"
    )


def run_folder(args: Args) -> str:
    return args.ckpt_dir or f"runs/{run_name(args)}"


def task_kwargs(args: Args) -> dict[str, Any]:
    """The task's ``gymnasium.make`` kwargs: the env id's, with the retina settings (a game's
    length is its own: no ``n_glimpses``)."""
    if is_game(args.env):
        retina = {name: getattr(args, name) for name in RETINA if name != "n_glimpses"}
        return {**ram_env.GAMES[args.env], **retina}
    return {**ram_env.TASKS[args.env], **{name: getattr(args, name) for name in RETINA}}


def run_config(args: Args, world_size: int = 1) -> dict[str, Any]:
    """Every setting of the run as plain values, stored in checkpoints: ``Args`` without the
    mode flags, plus what follows from it (``env_kwargs``, the ``RAMConfig`` as ``model``, the
    run name and folders) and the number of processes (``world_size``)."""
    env_kwargs = task_kwargs(args)
    patch = env_kwargs["patch_size"]
    if is_game(args.env):  # the screen's pixel statistics; the action network moves
        (mean, std), outputs = CatchConfig(**env_kwargs).pixel_stats, MOVES
    else:
        dataset = env_kwargs["dataset"] if args.glimpse_stats == "dataset" else "mnist"
        (mean, std), outputs = PIXEL_STATS[dataset], NUM_CLASSES
    model = RAMConfig(
        glimpse_shape=(env_kwargs["n_scales"], patch, patch),
        num_classes=outputs,
        glimpse_hidden=args.glimpse_hidden,
        location_hidden=args.location_hidden,
        glimpse_features=args.glimpse_features,
        core_size=args.core_size,
        core=args.core,
        policy_hidden=args.policy_hidden,
        glimpse_mean=mean,
        glimpse_std=std,
        location_init=args.location_init,
    )
    config = {key: value for key, value in asdict(args).items() if key not in MODE_FLAGS[1:]}
    config.update(run_name=run_name(args), env_kwargs=env_kwargs, model=model.to_dict())
    config["world_size"] = world_size
    config["ckpt_dir"] = run_folder(args)
    config["log_dir"] = args.log_dir or config["ckpt_dir"]
    return config


def make_env(
    config: dict, split: str, num_envs: int, device: torch.device, fixed_canvases: bool = False
) -> GlimpseVectorEnv:
    """A vector env of the run's task (the test split is always fixed canvases or games;
    ``fixed_canvases`` fixes them on the training split too: validation)."""
    key = "fixed_games" if is_game(config["env"]) else "fixed_canvases"
    fixed = {key: fixed_canvases or None}
    return gym.make_vec(
        config["env"],
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        device=device,
        validate_actions=False,
        **{**config["env_kwargs"], "split": split, **fixed},
    )


def test_size(config: dict) -> int:
    """Images (or games) of the run's test split: what one test pass plays."""
    if is_game(config["env"]):
        return NUM_TEST_GAMES
    dataset = config["env_kwargs"].get("dataset", ram_env.TASKS[config["env"]]["dataset"])
    return len(load_split(dataset, "test", config["env_kwargs"].get("data_root"))[1])


def split_train_validation(
    num_images: int, config: dict
) -> tuple[torch.Tensor | range, torch.Tensor]:
    """``(train, validation)`` image indices: the last ``valid_size`` of the training split are
    held out (``ram_env.datasets.holdout_split``, the same for every agent), and
    ``train_subset`` keeps only the first training images. A game holds out its last
    ``VALIDATION_GAMES`` training games and trains on a ``range`` of the others."""
    if is_game(config["env"]):
        cut = num_images - VALIDATION_GAMES
        return range(0, cut), torch.arange(cut, num_images)
    try:
        train, valid = holdout_split(num_images, config["valid_size"])
    except ValueError as error:
        raise SettingsError(f"--valid-size {config['valid_size']}: {error}") from None
    if config["train_subset"] is not None:
        train = train[: config["train_subset"]]
    return train, valid


def check_training_images(count: int, num_images: int, config: dict) -> None:
    """``SettingsError`` unless the ``count`` training images left (of the split's
    ``num_images``, after ``--valid-size`` and ``--train-subset``) hold ``--train-subset`` and
    one optimizer step's global batch (``--batch-size`` x ``--accumulate`` x processes),
    naming the flag that leaves too few: the one check of the training images' count."""
    subset = config["train_subset"]
    held_out = f"{num_images} less --valid-size {config['valid_size']}"
    if subset is not None and count < subset:
        raise SettingsError(f"--train-subset {subset}: only {count} training images ({held_out})")
    batch = config["batch_size"] * shard_count(config)
    if count < batch:
        source = (
            f"--train-subset {subset}"
            if count == subset
            else f"the {count} training images ({held_out})"
        )
        raise SettingsError(
            f"no global batch of {batch} images (--batch-size {config['batch_size']} x "
            f"--accumulate {config['accumulate']} x {config['world_size']} processes) fits in "
            f"{source}"
        )


def write_metrics(history: list[dict], folder: pathlib.Path) -> None:
    """``metrics.json`` and ``metrics.csv``: one record per epoch, each replaced atomically."""
    table = io.StringIO()
    fieldnames = list(dict.fromkeys(key for record in history for key in record))
    writer = csv.DictWriter(table, fieldnames=fieldnames, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    for name, text in (
        ("metrics.json", json.dumps(history, indent=1)),
        ("metrics.csv", table.getvalue()),
    ):
        atomic_write(folder / name, lambda file, text=text: file.write(text.encode()))


#: What a run saved before a setting existed trained with (so such runs still resume).
LEGACY_SETTINGS = {
    "samples_per_image": 1, "reinforce_weight": 1.0, "glimpse_stats": "mnist", "accumulate": 1,
    "world_size": 1, "entropy_weight": 0.0, "init_from": None, "weight_decay": 0.0,
}  # fmt: skip


def trained_with(saved: dict) -> dict:
    """A saved run's settings, with ``LEGACY_SETTINGS`` for those it predates."""
    return {**LEGACY_SETTINGS, **saved}


def last_gain(history: list[dict]) -> int:
    """The epoch of the run's best validation among its own epochs (the first, on a tie; 0
    before any): ``--train-patience`` counts from it. It is ``best_epoch`` except after
    ``--init-from``, whose starting weights (epoch 0) compete for best.pt only: a new
    learning-rate cycle first loses accuracy, then gains it."""
    return max(history, key=lambda row: row["valid_accuracy"])["epoch"] if history else 0


def shard_count(config: dict) -> int:
    """Batches of ``--batch-size`` images per optimizer step: processes x ``--accumulate``."""
    return config["world_size"] * config["accumulate"]


def check_resumable(saved: dict, current: dict, path: pathlib.Path) -> None:
    """Raise ``CheckpointError`` naming every setting that differs from the saved run.

    ``--epochs`` may change only under the plateau schedule: the cosine schedule is fixed by it.
    The number of processes and ``--accumulate`` may change if their product (``shard_count``)
    does not: the global batch and every batch's randomness stay the same.
    Settings a checkpoint predates count with the values it was trained with
    (``LEGACY_SETTINGS``, ``RAMConfig``'s defaults for the model).
    """
    saved = trained_with(saved)
    saved["model"] = RAMConfig.from_dict(saved["model"]).to_dict() if "model" in saved else None
    for name in MODEL_FLAGS:  # a network setting the run predates as a flag: its model's
        if saved["model"] is not None and name not in saved:
            saved[name] = saved["model"][name]
    resumable = RESUMABLE_CHANGES - ({"epochs"} if saved.get("lr_schedule") == "cosine" else set())
    keys = (set(saved) | set(current)) - resumable - set(RETINA)  # env_kwargs holds the retina
    differ = sorted(key for key in keys if saved.get(key) != current.get(key))
    details = [f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}" for k in differ]
    shards, processes = shard_count(saved), current["world_size"]
    if shards != shard_count(current):
        hint = (
            f"give --accumulate {shards // processes}"
            if shards % processes == 0
            else f"{shards} batches do not split over {processes} processes"
        )
        details.append(
            f"batches per step (processes x --accumulate): saved {saved['world_size']} x "
            f"{saved['accumulate']}, now {processes} x {current['accumulate']}: {hint}"
        )
    if details:
        raise CheckpointError(f"{path} was trained with other settings ({'; '.join(details)})")


#: The flags that set each ``RAMConfig`` field (for messages about a network that differs).
NETWORK_FLAGS = {
    "glimpse_shape": "--env / --n-scales / --patch-size",
    "num_classes": "--env",
    "glimpse_mean": "--env / --glimpse-stats",
    "glimpse_std": "--env / --glimpse-stats",
}
#: Settings that say nothing about how a run trains (compared with ``--init-from``'s run only
#: to report the differences).
BOOKKEEPING = {
    "run_name", "ckpt_dir", "log_dir", "resume", "threads", "device", "compile", "plot_every",
    "init_from", "world_size", "env_kwargs", "model", "eval_batch_size", "M",
}  # fmt: skip


def initial_weights(config: dict, path: pathlib.Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The network weights of ``--init-from``'s checkpoint (a new run's start) and where they
    came from (``path``, the run's name and task, epoch and digest).

    The checkpoint may come from another task with the same network (``RAMConfig``: retina
    shape, layer sizes, core, classes, glimpse statistics; ``location_init`` does not count,
    as it only initialises), e.g. the translated task's agent as the start of a cluttered run.
    Training settings that differ from that run's (``--std``, ``--batch-size``...) are printed.
    Raises ``CheckpointError`` if ``path`` is not a readable ram-env checkpoint or its weights
    do not fit this run's network, naming each difference and its flags."""
    payload = load_checkpoint(path)
    saved = payload["config"]
    source = f"{path} ({saved.get('env', 'an unknown task')}, epoch {payload['epoch']})"
    if not isinstance(saved.get("model"), dict):
        raise CheckpointError(f"--init-from {source} records no network (no config['model'])")
    try:
        theirs = RAMConfig.from_dict(saved["model"]).to_dict()
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"--init-from {source}: unreadable network: {error}") from None
    details = [
        f"{name} ({NETWORK_FLAGS.get(name, '--' + name.replace('_', '-'))}): "
        f"{theirs.get(name)!r} there, {value!r} here"
        for name, value in config["model"].items()
        if name != "location_init" and theirs.get(name) != value
    ]
    if details:
        raise CheckpointError(
            f"--init-from {source}: its network differs from this run's ({'; '.join(details)})"
        )
    try:  # the weights must fit the network their config describes
        RAM(RAMConfig.from_dict(config["model"])).load_state_dict(payload["model"])
    except (RuntimeError, TypeError, KeyError, AttributeError) as error:
        reason = str(error).splitlines()[0]
        raise CheckpointError(f"--init-from {source}: its weights do not fit: {reason}") from None
    print(f"initialising the network from {source}")
    trained = trained_with(saved)
    differ = [
        f"--{name.replace('_', '-')} {trained[name]!r} there, {config[name]!r} here"
        for name in sorted(set(trained) & set(config) - BOOKKEEPING)
        if trained[name] != config[name]
    ]
    if differ:
        print("  settings that differ from that run's: " + "; ".join(differ))
    origin = {
        "path": str(path), "run_name": saved.get("run_name"), "env": saved.get("env"),
        "epoch": payload["epoch"], "digest": payload.get("digest"),
    }  # fmt: skip
    return payload["model"], origin


def build_model(config: dict, device: torch.device) -> RAM:
    return RAM(RAMConfig.from_dict(config["model"])).to(device)


def build_optimizer(model: RAM, config: dict) -> torch.optim.AdamW:
    """The run's Adam (``--lr``) with ``--weight-decay`` decoupled from the gradient (AdamW);
    at 0, the default and every earlier run's, it steps exactly as plain Adam."""
    return torch.optim.AdamW(
        model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"]
    )


def maybe_compile(model: RAM, setting: str, device: torch.device, batch: int) -> None:
    """Apply ``compile_step`` as ``--compile`` says; ``auto`` falls back to eager on failure."""
    if setting == "off" or (setting == "auto" and device.type != "cuda"):
        return
    try:
        compile_step(model, device, batch)
    except Exception as error:
        if setting == "on":
            raise
        warnings.warn(f"torch.compile failed, training without it: {error}", stacklevel=2)


def test_settings(args: Args, saved: dict, path: pathlib.Path) -> dict[str, Any]:
    """The checkpoint's run settings with the test settings of ``args`` applied (``--std``,
    ``--n-glimpses``); any other setting whose value differs from the checkpoint's raises
    ``CheckpointError`` naming both (it could not change what is scored). After training
    (no ``--test``) the settings are the run's own and are not checked again."""
    if args.test:
        trained = Args.from_config(saved)
        for name in sorted({field.name for field in fields(Args)} - TEST_FLAGS - set(MODE_FLAGS)):
            if getattr(args, name) != getattr(trained, name):
                flag = "--" + name.replace("_", "-")
                raise CheckpointError(
                    f"{flag} {getattr(args, name)!r} cannot apply to --test of {path}: it was "
                    f"trained with {flag} {getattr(trained, name)!r} (drop the flag, or test "
                    "another checkpoint)"
                )
    settings = {**saved, "env_kwargs": dict(saved["env_kwargs"])}
    if args.test:
        settings["std"] = args.std
        if not is_game(saved["env"]):
            settings["env_kwargs"]["n_glimpses"] = args.n_glimpses
    return settings


def test(args: Args, config: dict, device: torch.device, group: Group = SINGLE) -> dict[str, float]:
    """Test error (%) of a checkpoint over the whole test split, each image exactly once:
    sampled policy with M=1 and M=--M (probabilities averaged), and the mean policy.

    One number per ``--seed``: start fixations and policy noise are keyed by image, sample and
    seed (``agents.reinforce.evaluate``), whatever ``--M`` and ``--eval-batch-size``, and
    whatever the processes: each plays its part of the images (``Group.shard``) and the right
    answers are summed. Rank 0 prints and writes the result."""
    path = pathlib.Path(args.checkpoint or pathlib.Path(config["ckpt_dir"]) / "best.pt")
    model, payload = load_agent(path, device)
    saved = test_settings(args, payload["config"], path)
    if is_game(saved["env"]):
        return test_game(args, saved, model, payload, path, device)
    batch = min(args.eval_batch_size, test_size(saved))  # no more than the images
    env = make_env(saved, "test", batch * args.M, device)
    indices = torch.arange(env.unwrapped.num_images, device=device)
    mine = group.shard(indices)
    # One sampled pass scores M=1 (each image's episode m = 0) and M=--M; then the mean policy.
    sampled = correct_answers(model, env, mine, args.M, saved["std"], args.seed)
    mean = correct_answers(model, env, mine, 1, saved["std"], args.seed, mean_policy=True)
    counts = group.sum_(torch.cat([sampled, mean[1:]])).tolist()
    labels = ("M=1", f"M={args.M}", "mean policy")  # M=1 twice when --M 1: one entry
    errors = {
        label: round(100.0 * (1.0 - right / len(indices)), 3)
        for label, right in zip(labels, counts, strict=True)
    }
    if not group.is_main:
        return errors
    glimpses = saved["env_kwargs"]["n_glimpses"]
    print(
        f"{saved['env']}: test error (%) over {len(indices)} images, {path} "
        f"(epoch {payload['epoch']}), {glimpses} glimpses, std {saved['std']}, seed {args.seed}:"
    )
    for label, error in errors.items():
        print(f"  {label:>12}  {error:.2f}")
    trained = payload["config"]
    trained_glimpses = trained["env_kwargs"]["n_glimpses"]
    name = test_file(
        (saved["std"], glimpses, args.seed, args.M),
        (trained["std"], trained_glimpses, trained["seed"], trained.get("M", 10)),
        path,
    )
    result = {
        "checkpoint": str(path),
        "epoch": payload["epoch"],
        "n_glimpses": glimpses,
        "std": saved["std"],
        "seed": args.seed,
        "test_error": errors,
    }
    (path.parent / name).write_text(json.dumps(result, indent=1))
    return errors


def test_file(
    tested: tuple[float, int, int, int], trained: tuple[float, int, int, int], path: pathlib.Path
) -> str:
    """``test.json`` for the run's own (std, glimpses, seed, M) on its ``best.pt``; any other
    test gets its own file (``test_std.._glimpses.._seed..[_M..][_<checkpoint>].json``), so no
    test overwrites another's result."""
    if tested == trained and path.name == "best.pt":
        return "test.json"
    std, glimpses, seed, M = tested
    name = f"test_std{std:g}_glimpses{glimpses}_seed{seed}"
    name += f"_M{M}" if M != trained[3] else ""
    return name + ("" if path.name == "best.pt" else f"_{path.stem}") + ".json"


def test_game(
    args: Args, saved: dict, model: RAM, payload: dict, path: pathlib.Path, device: torch.device
) -> dict[str, float]:
    """A game's test: the catch rate (%) over the 1,000 fixed test games, with the mean policy
    and with sampled fixations and moves (noise keyed by game and ``--seed``); one process."""
    env = make_env(saved, "test", min(args.eval_batch_size, test_size(saved)), device)
    games = torch.arange(env.unwrapped.num_images, device=device)
    rates = {
        label: round(100.0 * evaluate_game(model, env, games, saved["std"], args.seed, mean), 3)
        for label, mean in (("mean policy", True), ("sampled", False))
    }
    print(
        f"{saved['env']}: catch rate (%) over {len(games)} test games, {path} "
        f"(epoch {payload['epoch']}), std {saved['std']}, seed {args.seed}:"
    )
    for label, rate in rates.items():
        print(f"  {label:>12}  {rate:.2f}")
    result = {"checkpoint": str(path), "epoch": payload["epoch"], "std": saved["std"],
              "seed": args.seed, "catch_rate": rates}  # fmt: skip
    trained = payload["config"]
    name = test_file((saved["std"], 0, args.seed, 0), (trained["std"], 0, trained["seed"], 0), path)
    (path.parent / name).write_text(json.dumps(result, indent=1))
    return rates


def train(config: dict, device: torch.device, group: Group = SINGLE) -> None:
    """Train the run ``config`` on ``device``, resuming it with ``config["resume"]``.

    With several processes (``group``, started by torchrun) every process runs this function:
    each plays its batches of every optimizer step (``agents.reinforce.Shards``) and they add
    up their gradients; rank 0 alone validates (and hands the accuracy to the others, which
    wait for it), logs and writes the run folder; every process reads ``last.pt`` on resume.
    """
    ckpt_dir, log_dir = pathlib.Path(config["ckpt_dir"]), pathlib.Path(config["log_dir"])
    last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    earlier = [name for name in RUN_FILES if (ckpt_dir / name).exists()]
    if config["resume"] and not last_path.is_file():  # before the run folder is made
        raise CheckpointError(f"--resume: no checkpoint to continue, {last_path} does not exist")
    if earlier and not config["resume"]:
        raise CheckpointError(
            f"{ckpt_dir} holds another run ({', '.join(earlier)}): continue it with --resume, "
            "test it with --test, or start another run with --run-name or --ckpt-dir"
        )
    initial, origin = None, None  # --init-from: checked before the run folder is made
    if config.get("init_from") is not None and not config["resume"]:
        initial, origin = initial_weights(config, pathlib.Path(config["init_from"]))
    group.barrier()  # every process has looked at the folder before rank 0 writes in it
    main = group.is_main
    torch.manual_seed(config["seed"])
    episodes = config["batch_size"] * config["samples_per_image"]
    train_env = make_env(config, "train", episodes, device)
    train_env.reset(seed=config["seed"])
    num_images = train_env.unwrapped.num_images
    train_images, valid_images = split_train_validation(num_images, config)
    check_training_images(len(train_images), num_images, config)  # before the run folder
    valid_batch = min(config["eval_batch_size"], len(valid_images))  # no more than the images
    valid_env = (  # rank 0 alone validates
        make_env(config, "train", valid_batch, device, fixed_canvases=True) if main else None
    )
    if valid_env is not None:
        valid_env.reset(seed=config["seed"] + 1)
    if main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    valid_images = valid_images.to(device)
    model = build_model(config, device)
    maybe_compile(model, config["compile"], device, episodes)
    optimizer = build_optimizer(model, config)
    if config["lr_schedule"] == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config["epochs"], eta_min=config["lr"] / 100
        )
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=0.1, patience=config["lr_patience"]
        )
    if initial is not None:
        model.load_state_dict(initial)
    noise = torch.Generator(device).manual_seed(config["seed"])
    shuffle = torch.Generator().manual_seed(config["seed"])  # the same order in every process
    epoch, best, best_epoch, history = 0, -1.0, 0, []
    if config["resume"]:
        payload = load_checkpoint(last_path)  # on the CPU: generator states must be there
        check_resumable(payload["config"], config, last_path)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])  # moves the moments to the device
        scheduler.load_state_dict(payload["scheduler"])
        rng = payload["rng"]
        torch.set_rng_state(rng["torch"])
        shuffle.set_state(rng["shuffle"])
        epoch, best, best_epoch = payload["epoch"], payload["best_accuracy"], payload["best_epoch"]
        # The device generators' states fit this device's generators when the run was saved on
        # the same kind of device (``--device auto`` resolves on each machine).
        if rng["noise"].numel() == noise.get_state().numel():  # exact: as if never stopped
            noise.set_state(rng["noise"])
            train_env.unwrapped.set_rng_state(rng["train_env"])
            if valid_env is not None:
                valid_env.unwrapped.set_rng_state(rng["valid_env"])
        else:  # a CUDA generator's state means nothing to a CPU one: fresh streams, seeded
            fresh = (config["seed"] * 1_000_003 + epoch) % 2**63
            noise.manual_seed(fresh)
            train_env.reset(seed=fresh)
            print(
                f"continuing on {device.type} a run whose random generators were saved on "
                f"another kind of device (--device {payload['config']['device']} there): the "
                "model, optimizer, schedule and history carry over; the fixation noise and the "
                f"training canvases are new streams (seed {config['seed']}, epoch {epoch})"
            )
        history, origin = payload["history"], payload.get("initial_weights")
        if history and main:  # a crash between the checkpoint and the metrics files loses no row
            write_metrics(history, ckpt_dir)
        print(f"resumed {last_path} after epoch {epoch} (best validation {100 * best:.2f}%)")
    group.broadcast_parameters(model)
    writer = SummaryWriter(log_dir, purge_step=epoch + 1) if main else None
    shards = shard_count(config)
    global_batch = config["batch_size"] * shards
    game = is_game(config["env"])
    per_epoch = (config["train_subset"] or GAMES_PER_EPOCH) if game else len(train_images)
    data = (
        f"{per_epoch} random training games per epoch (of {len(train_images)}) / "
        f"{len(valid_images)} validation games"
        if game
        else f"{len(train_images)} train / {len(valid_images)} validation images"
    )
    print(
        f"{config['env']} on {device}: {data}, batch {config['batch_size']}"
        + (f" x {shards} = {global_batch}" if shards > 1 else "")
        + f", {sum(p.numel() for p in model.parameters())} params"
        + (f", {group.world_size} processes" if group.parallel else "")
    )
    if game and group.parallel:
        raise DistributedError(f"{config['env']} trains on one process (no torchrun yet)")
    images_per_epoch = per_epoch // global_batch * global_batch

    def validate() -> float:
        """Validation accuracy of the mean policy (rank 0 plays, every process gets it)."""
        score = evaluate_game if game else partial(evaluate, samples=1)
        return group.broadcast_float(
            score(
                model,
                valid_env,
                valid_images,
                std=config["std"],
                seed=config["seed"] + 1,
                mean_policy=True,
            )
            if valid_env is not None
            else math.nan,
            device,
        )

    def snapshot() -> dict[str, Any]:
        """The checkpoint of the run as it stands (rank 0)."""
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "noise": noise.get_state(),
                "shuffle": shuffle.get_state(),
                "train_env": train_env.unwrapped.get_rng_state(),
                "valid_env": valid_env.unwrapped.get_rng_state(),
            },
            "epoch": epoch,
            "best_accuracy": best,
            "best_epoch": best_epoch,
            "history": history,
            "config": config,
            **({"initial_weights": origin} if origin is not None else {}),
        }

    if initial is not None:  # the starting weights are epoch 0: best.pt is never worse
        best = validate()
        print(f"the starting weights validate at {100 * best:.2f}% (epoch 0 of this run)")
        if main:  # a stop in epoch 1 leaves a run that --resume continues
            save_checkpoint(snapshot(), best_path)
            save_checkpoint(snapshot(), last_path)
    epochs_bar = tqdm(
        total=config["epochs"], initial=epoch, unit="epoch", desc="epochs", disable=not main
    )
    while epoch < config["epochs"] and epoch - last_gain(history) < config["train_patience"]:
        if game:  # fresh random games from the training range (the same in every process)
            low, high = train_images.start, train_images.stop
            order = torch.randint(low, high, (per_epoch,), generator=shuffle).to(device)
        else:
            order = train_images[torch.randperm(len(train_images), generator=shuffle)].to(device)
        start = time.perf_counter()
        with tqdm(
            total=images_per_epoch,
            unit="img",
            unit_scale=True,
            leave=False,
            desc=f"epoch {epoch + 1}",
            disable=not main,
        ) as batches_bar:
            played = (model, train_env, optimizer, order, config["std"], noise)
            if game:
                stats = train_games(
                    *played, batches_bar.update, entropy_weight=config["entropy_weight"]
                )
            else:
                stats = train_epoch(
                    *played,
                    on_batch=lambda images: batches_bar.update(images * group.world_size),
                    samples=config["samples_per_image"],
                    reinforce_weight=config["reinforce_weight"],
                    shards=(
                        Shards.of_process(group, config["accumulate"], config["seed"], epoch)
                        if shards > 1
                        else None
                    ),
                )
        seconds = time.perf_counter() - start
        elapsed = history[-1].get("elapsed_seconds", 0.0) if history else 0.0
        valid_accuracy = validate()
        if config["lr_schedule"] == "cosine":
            scheduler.step()
        else:
            scheduler.step(valid_accuracy)
        epoch += 1
        improved = valid_accuracy > best
        if improved:
            best, best_epoch = valid_accuracy, epoch
        record = {
            "epoch": epoch,
            **{f"train_{name}": round(value, 6) for name, value in stats.items()},
            "valid_accuracy": valid_accuracy,
            "lr": optimizer.param_groups[0]["lr"],
            "std": config["std"],
            "seconds": round(seconds, 2),
            # Wall-clock of the run so far (training and validation, summed over sittings):
            # the time to reach a validation error can be read off the metrics.
            "elapsed_seconds": round(elapsed + time.perf_counter() - start, 2),
            "images_per_second": round(images_per_epoch / seconds, 1),
        }
        history.append(record)
        if main:
            for name, value in record.items():
                if name != "epoch":
                    writer.add_scalar(name.replace("_", "/", 1), value, epoch)
            payload = snapshot()
            if improved:
                save_checkpoint(payload, best_path)
            save_checkpoint(payload, last_path)
            write_metrics(history, ckpt_dir)
            if config["plot_every"] and epoch % config["plot_every"] == 0:
                figures = episode_figures(
                    model, config["env"], config["env_kwargs"], device, seed=config["seed"]
                )
                save_figures(figures, log_dir / "figures" / f"epoch_{epoch:03d}")
                writer.add_image("episodes/fixations", figures["bbox"], epoch, dataformats="HWC")
                writer.add_image("episodes/glimpses", figures["glimpses"], epoch, dataformats="HWC")
        epochs_bar.update(1)
        epochs_bar.set_postfix(
            loss=f"{stats['loss']:.3f}",
            train=f"{100 * stats['accuracy']:.2f}%",
            valid=f"{100 * valid_accuracy:.2f}%",
            best=f"{100 * best:.2f}%@{best_epoch}",
            img_s=f"{record['images_per_second']:.0f}",
        )
    epochs_bar.close()
    if writer is not None:
        writer.close()
    group.barrier()  # best.pt and last.pt are written before any process reads them
    print(
        f"best validation accuracy {100 * best:.2f}% at epoch {best_epoch}; "
        f"checkpoints in {ckpt_dir}"
    )


def stop_cleanly_on_signals() -> None:
    """SIGINT (Ctrl-C, also when the process was started in the background, where it arrives
    ignored) and SIGTERM (``kill``, ``timeout``) raise ``KeyboardInterrupt``: the run stops
    after its last completed epoch and ``--resume`` continues it."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        group = Group.from_environment()  # SINGLE unless started by torchrun
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        device = group.device(args.device)
    except (ValueError, RuntimeError) as error:  # before any run folder exists
        print(f"error: --device: {error}", file=sys.stderr)
        return 2
    group.start(device)
    # Rank 0 alone speaks on stdout (every process reports its errors on stderr).
    quiet = contextlib.nullcontext() if group.is_main else contextlib.redirect_stdout(None)
    config = run_config(args, group.world_size)
    finished = False
    try:
        group.check_same(config, "settings")
        with quiet:
            if not args.test:
                train(config, device, group)
                print("testing the best checkpoint:")
            test(args, config, device, group)
        finished = True
    except KeyboardInterrupt:
        if group.is_main:
            print(f"\ninterrupted: continue with --resume (checkpoints in {config['ckpt_dir']})")
        return 130
    except (CheckpointError, DistributedError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        group.close(finished)
    return 0


if __name__ == "__main__":
    stop_cleanly_on_signals()
    sys.exit(main())
