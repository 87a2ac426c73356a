"""Train, resume or test a Stable-Baselines3 baseline on a glimpse task.

The agent plays ``DiscreteGlimpseActions``'s episodes (``Discrete(G*G + 10)``: fixate a grid
cell or answer a class; see ``ram_env.wrappers``) through the batched SB3 adapter
``agents.sb3.GlimpseSB3VecEnv``. The last ``--val-fraction`` of the training images are held
out: training never draws them, and every ``--eval-freq`` timesteps the model is scored on them
(fixed canvases, each image once) and checkpointed in ``<save-dir>/<run-name>/``: ``last.zip``,
``best.zip`` (on a new best) and ``run.json`` (the run's settings, ``best_val_accuracy``,
``timesteps``), each written atomically, ``run.json`` after every checkpoint. TensorBoard logs
go to ``--log-dir``.

``--resume`` continues in the checkpoint's folder with the run's settings from its
``run.json`` (algorithm, task, ``--env-kwargs``, grid, ``--val-fraction``, ``--val-size``) and
its best validation accuracy, so an interrupted run neither changes its validation images nor
overwrites ``best.zip`` with a worse model; a flag that contradicts ``run.json`` (or the
model's ``--n-steps``, ``--batch-size``, ``--learning-rate``) is an error.

    python train_sb3.py                                      # RecurrentPPO on GlimpseMNIST-v0
    python train_sb3.py --algo ppo --env GlimpseTranslatedMNIST-v0 --timesteps 2000000
    python train_sb3.py --resume ckpt/sb3/GlimpseMNIST-v0-recurrent-ppo-s0/last.zip
    python train_sb3.py --test ckpt/sb3/GlimpseMNIST-v0-recurrent-ppo-s0/best.zip

``--test`` scores a saved model on the whole fixed test split, each image exactly once, and
prints the test error; the algorithm, task and env settings come from ``run.json`` beside the
checkpoint unless given on the command line (``--env-kwargs`` add to them); a training flag
(``--timesteps``, ``--learning-rate``, ...) is refused, as it could not change the score.
``--resume`` continues from the run's ``last.zip``, which it rewrites: from ``best.zip`` only
once ``last.zip`` is moved away.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import sys
import textwrap
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Annotated, Any, Literal

import numpy as np
import torch
import tyro

import ram_env

#: Settings that define a run (its task, model and validation images), saved in ``run.json``.
#: A resume takes them from there; a flag with another value is a ``SettingsError``.
RUN_KEYS = ("algo", "env", "env_kwargs", "grid", "val_fraction", "val_size")
DEFAULT_SAVE_DIR = "ckpt/sb3"
DEFAULT_N_STEPS = {"recurrent-ppo": 128, "ppo": 128, "a2c": 5}
#: The algorithms that take each of --n-steps and --batch-size (a flag an algorithm has no
#: setting for is refused, never silently dropped).
ALGOS_WITH = {"n_steps": tuple(DEFAULT_N_STEPS), "batch_size": ("recurrent-ppo", "ppo", "dqn")}

AlgoName = Literal["a2c", "dqn", "ppo", "recurrent-ppo"]
EnvId = Literal[ram_env.ENV_IDS]  # type: ignore[valid-type]


#: A run folder's models, which a new run (without ``--resume``) must never overwrite. (A
#: ``run.json`` alone is a run stopped before its first checkpoint: a new run may start there.)
RUN_FILES = ("best.zip", "last.zip")
#: Settings that name a file or folder (``None``: the default one), and what they name.
PATH_FLAGS = {
    "resume": "a model zip (a run's last.zip)", "test": "a model zip", "save_dir": "a folder",
    "run_name": "a run folder",
}  # fmt: skip
#: What ``--test`` applies; every other setting is the training's, refused with ``--test``
#: (the task and env settings come from run.json; ``--env-kwargs`` may add to them).
TEST_FLAGS = {
    "algo", "env", "env_kwargs", "grid", "device", "env_device", "seed", "threads", "eval_envs",
    "verbose", "test", "trust_model",
}  # fmt: skip


class SettingsError(ValueError):
    """Command-line settings that contradict the run being resumed (or a missing ``run.json``)."""


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--env-kwargs must be JSON: {error}") from None
    if not isinstance(value, dict):
        raise ValueError(f"--env-kwargs must be a JSON object, got {text!r}")
    return value


#: A ``dict`` flag written as one JSON object (``--env-kwargs '{"n_glimpses": 4}'``).
JSON_OBJECT = tyro.constructors.PrimitiveConstructorSpec(
    nargs=1,
    metavar="JSON",
    instance_from_str=lambda strings: _json_object(strings[0]),
    is_instance=lambda value: isinstance(value, dict),
    str_from_instance=lambda value: [json.dumps(value)],
)


@dataclass
class Args:
    """Train, resume or test a Stable-Baselines3 baseline on a glimpse task.

    python train_sb3.py                                      # RecurrentPPO on GlimpseMNIST-v0
    python train_sb3.py --algo ppo --env GlimpseTranslatedMNIST-v0 --timesteps 2000000
    python train_sb3.py --resume ckpt/sb3/GlimpseMNIST-v0-recurrent-ppo-s0/last.zip
    python train_sb3.py --test ckpt/sb3/GlimpseMNIST-v0-recurrent-ppo-s0/best.zip

    With --resume or --test the run's settings in run.json beside the model are the defaults: a
    flag that contradicts them is an error (--test may add --env-kwargs).
    """

    algo: AlgoName = "recurrent-ppo"
    """the SB3 / sb3-contrib algorithm"""
    env: EnvId = "GlimpseMNIST-v0"
    """the task (a registered Glimpse id)"""
    env_kwargs: Annotated[dict[str, Any], JSON_OBJECT] = field(default_factory=dict)
    """extra gymnasium.make arguments as a JSON object, e.g. '{"n_glimpses": 4}'"""
    grid: int = 4
    """side G of the fixation grid (G*G fixation actions)"""
    timesteps: int = 1_000_000
    """total env steps"""
    n_envs: int = 16
    """parallel episodes (may change on --resume)"""
    n_steps: int | None = None
    """rollout length per env (default: 128; a2c: 5); refused with dqn, which has none"""
    batch_size: int | None = None
    """minibatch of PPO (default: a quarter of the rollout, at least min(64, rollout)) and DQN
    (default: SB3's 32); refused with a2c, which has none"""
    learning_rate: float | None = None
    """default: the algorithm's"""
    device: str = "auto"
    """model device: auto, cpu, cuda, cuda:N"""
    env_device: str | None = None
    """env device (default: the model's)"""
    seed: int = 0
    """seed of the run; a resumed run is reseeded from it and the steps done (another value
    reseeds it differently)"""
    threads: int | None = None
    """torch CPU threads (default: torch's)"""
    log_dir: str = "runs/sb3"
    """TensorBoard root ('' to disable)"""
    save_dir: str | None = None
    """checkpoint root (default: ckpt/sb3)"""
    run_name: str | None = None
    """default: <env>-<algo>-s<seed>"""
    eval_freq: int = 50_000
    """validate every N timesteps (0: at the end only)"""
    val_fraction: float = 0.1
    """held-out tail of the training images, in (0, 1)"""
    val_size: int | None = None
    """validate on the first N held-out images (default: all)"""
    eval_envs: int = 256
    """parallel evaluation episodes"""
    verbose: int = 0
    """SB3 verbosity (0, 1, 2)"""
    resume: str | None = None
    """continue training a saved model (PATH), with the run's settings from run.json beside it"""
    test: str | None = None
    """score a saved model (PATH) on the test split"""
    trust_model: bool = False
    """load a model zip whose sha256 is not the one recorded in run.json beside it. SB3 zips
    hold pickles, which can run any code when loaded: only for files you trust"""

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        from ram_env.core import check_int, check_number, check_path
        from ram_env.wrappers import check_grid

        for name in ("timesteps", "n_envs", "eval_envs", "val_size", "n_steps", "batch_size"):
            if getattr(self, name) is not None:
                check_int(f"--{name.replace('_', '-')}", getattr(self, name), low=1)
        check_int("--eval-freq", self.eval_freq, low=0)
        check_int("--seed", self.seed, low=0, high=2**32 - 1)
        try:
            check_grid(self.grid)
        except ValueError as error:
            raise ValueError(f"--{error}") from None
        if not 0 < self.val_fraction < 1:
            raise ValueError(
                "--val-fraction must be in (0, 1): validation picks the best model, "
                f"got {self.val_fraction}"
            )
        if "split" in self.env_kwargs:
            raise ValueError(
                "--env-kwargs may not set 'split' (training uses train, --test uses test)"
            )
        if self.env_kwargs:  # (agents.sb3 imports SB3: only when there is something to check)
            from agents.sb3 import check_env_kwargs

            try:
                check_env_kwargs(self.env_kwargs, self.env)
            except (TypeError, ValueError) as error:
                raise ValueError(f"--env-kwargs: {error}") from None
        if self.resume and self.test:
            raise ValueError("give --resume or --test, not both")
        for name, what in PATH_FLAGS.items():
            check_path(f"--{name.replace('_', '-')}", getattr(self, name), what)
        if self.learning_rate is not None:
            check_number("--learning-rate", self.learning_rate, 0)
        for flag, value, takers in (
            ("--n-steps", self.n_steps, ALGOS_WITH["n_steps"]),
            ("--batch-size", self.batch_size, ALGOS_WITH["batch_size"]),
        ):
            if value is not None and self.algo not in takers:
                raise ValueError(
                    f"{flag}: --algo {self.algo} has no such setting (it is one of "
                    f"{', '.join(takers)})"
                )
        if self.env in ram_env.GAMES and self.val_fraction != 0.1:
            raise ValueError(
                f"--val-fraction: {self.env} validates on its last 1,000 training games "
                "(its 2**31 games make a fraction meaningless); use --val-size to play fewer"
            )


def _cli(argv: Sequence[str] | None, default: Args) -> Args:
    return tyro.cli(
        Args,
        args=argv,
        default=default,
        prog="train_sb3.py",
        description=textwrap.dedent(__doc__ or ""),
    )


def parse_args(argv: Sequence[str] | None = None) -> Args:
    """The settings of this invocation (``tyro`` over ``Args``), checked.

    With ``--resume``/``--test`` the command line is parsed a second time against the run's
    ``run.json`` settings as defaults, so an absent flag means "as the run was" and
    ``train_settings``/``_run_settings`` can name a flag that contradicts the run. Bad settings
    exit with status 2 and a message naming them.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _cli(argv, Args())
    if args.resume and (args.save_dir is not None or args.run_name is not None):
        _exit("--resume continues in the checkpoint's folder: drop --save-dir/--run-name")
    path = args.resume or args.test
    try:
        stored = _read_run_json(path) if path else None
    except SettingsError:
        stored = None  # train/test report it
    base = Args()
    if stored:
        known = {item.name for item in fields(Args)}
        saved = {key: stored[key] for key in (*RUN_KEYS, "seed", "n_envs") if key in stored}
        base = replace(base, **{k: v for k, v in saved.items() if k in known})
        args = _cli(argv, replace(base, resume=args.resume, test=args.test))
    try:
        args.check()
    except ValueError as error:
        _exit(str(error))
    if args.test:  # a training setting cannot change a test: refused, never ignored
        given = [
            item.name
            for item in fields(Args)
            if item.name not in TEST_FLAGS and getattr(args, item.name) != getattr(base, item.name)
        ]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            _exit(f"{flags}: training settings, which --test does not apply (drop them)")
    return args


def _exit(message: str) -> None:
    print(f"train_sb3.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _read_run_json(checkpoint: str) -> dict[str, Any] | None:
    path = pathlib.Path(checkpoint).parent / "run.json"
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SettingsError(f"{path} is not a readable run.json: {error}") from error
    if not isinstance(stored, dict):
        raise SettingsError(f"{path} is not a run.json (not a JSON object)")
    return stored


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(cls: Any, path: str, trusted: bool, **kwargs: Any) -> Any:
    """``cls.load`` of the model zip at ``path``, refused unless its sha256 is the one recorded
    in ``run.json`` beside it (``model_sha256``, written with every checkpoint) or the user
    said ``--trust-model``; a file SB3 cannot read is a ``SettingsError`` naming it.

    An SB3 zip holds pickled objects that run code when loaded. The recorded digest shows that
    the zip is the one saved with that ``run.json``: a zip dropped into a run folder or
    changed since is refused (a whole run folder from elsewhere is only as trustworthy as its
    source). The bytes are read once, checked and loaded from memory, so the file cannot
    change between the check and the load.
    """
    data = _checked_model_bytes(path, trusted)
    try:
        return cls.load(io.BytesIO(data), **kwargs)
    except Exception as error:
        raise SettingsError(
            f"cannot load {path} as a {cls.__name__} model (corrupt, truncated, or saved by "
            f"another algorithm): {type(error).__name__}: {error}"
        ) from error


def _is_sb3_zip(data: bytes) -> bool:
    """Whether ``data`` is a zip with SB3's ``data`` entry (a torch ``.pt`` is a zip too)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "data" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _checked_model_bytes(path: str, trusted: bool) -> bytes:
    if not pathlib.Path(path).is_file():
        raise SettingsError(f"no model at {path}")
    data = pathlib.Path(path).read_bytes()
    if not _is_sb3_zip(data):
        raise SettingsError(
            f"{path} is not an SB3 model zip (a RAM checkpoint .pt is tested with "
            "train_reinforce.py --test)"
        )
    if trusted:
        return data
    stored = _read_run_json(path)
    if stored is None:
        raise SettingsError(
            f"refusing to load {path}: no run.json beside it, so nothing shows ram-env saved "
            "it. SB3 model zips hold pickles, which run code when loaded. If you trust this "
            "file (you made it), pass --trust-model."
        )
    recorded = (stored.get("model_sha256") or {}).get(pathlib.Path(path).name)
    actual = hashlib.sha256(data).hexdigest()
    if recorded != actual:
        why = (
            "no digest of it is recorded in run.json beside it"
            if recorded is None
            else f"its sha256 {actual[:16]}... differs from the {recorded[:16]}... in run.json"
        )
        raise SettingsError(
            f"refusing to load {path}: {why}. SB3 model zips hold pickles, which run code when "
            "loaded, so ram-env loads only the zips it saved itself. If you trust this file "
            "(you made it), pass --trust-model."
        )
    return data


def write_run_json(run_dir: pathlib.Path, meta: dict[str, Any]) -> None:
    """Write ``<run_dir>/run.json`` atomically (a crash leaves the old or the new file)."""
    from ram_env.atomic import atomic_write

    text = json.dumps(meta, indent=2).encode()
    atomic_write(run_dir / "run.json", lambda file: file.write(text))


def _settings_of(args: Args) -> dict[str, Any]:
    """The run's defining settings (``RUN_KEYS``, ``seed``, ``n_envs``) of ``args``."""
    return {key: getattr(args, key) for key in (*RUN_KEYS, "seed", "n_envs")}


def _run_settings(args: Args, checkpoint: str) -> dict[str, Any]:
    """``--test``: the settings in ``run.json`` beside ``checkpoint`` (the defaults of
    ``args``). ``--algo``, ``--env`` or ``--grid`` with another value than the model was trained
    with is a ``SettingsError`` naming both; ``--env-kwargs`` are applied on top of the trained
    ones and printed."""
    stored = _read_run_json(checkpoint) or {}
    settings = {**_settings_of(args), **stored}
    for key in ("algo", "env", "grid"):
        given = getattr(args, key)
        if key in stored and given != stored[key]:
            raise SettingsError(
                f"--{key} {given!r} contradicts {checkpoint}: it was trained with --{key} "
                f"{stored[key]!r} (drop the flag)"
            )
        settings[key] = given
    trained = dict(stored.get("env_kwargs") or {})
    if args.env_kwargs != trained:
        settings["env_kwargs"] = {**trained, **args.env_kwargs}
        print(
            f"testing with env kwargs {settings['env_kwargs']} (trained with {trained})",
            flush=True,
        )
    return settings


def train_settings(args: Args) -> dict[str, Any]:
    """The run's settings (``RUN_KEYS``, ``seed``, ``n_envs``).

    A new run's come from ``args``; a resumed run's from ``run.json`` beside the checkpoint,
    with anything else it recorded (``best_val_accuracy``, ...); ``--n-envs`` may change on
    resume.

    On resume a setting of ``args`` (whose defaults were ``run.json``'s) must agree with
    ``run.json`` (``--env-kwargs`` may repeat saved entries, not change or add any), else
    ``SettingsError``; settings a ``run.json`` lacks (written by an older version) come from
    ``args``.
    """
    if not args.resume:
        return _settings_of(args)
    stored = _read_run_json(args.resume)
    if stored is None:
        raise SettingsError(
            f"--resume {args.resume}: no run.json beside it, so the run's settings (task, "
            "grid, validation split, best accuracy) are unknown"
        )
    settings = {**_settings_of(args), **stored}
    conflicts = []
    for key in RUN_KEYS:
        value, flag = getattr(args, key), f"--{key.replace('_', '-')}"
        if key not in stored:
            settings[key] = value
        elif key == "env_kwargs":
            changed = {k: v for k, v in value.items() if stored[key].get(k, object()) != v}
            if changed:
                saved = {k: stored[key].get(k, "<unset>") for k in changed}
                conflicts.append(f"{flag} {json.dumps(changed)} (run.json: {saved})")
        elif value != stored[key]:
            conflicts.append(f"{flag} {value!r} (run.json: {stored[key]!r})")
    if conflicts:
        raise SettingsError(
            f"--resume {args.resume}: the command line contradicts the run's settings: "
            f"{'; '.join(conflicts)}. A resume keeps the settings in run.json: drop these "
            "flags, or start a new run"
        )
    settings["n_envs"] = args.n_envs  # not part of the run's definition: may change on resume
    return settings


def resolve_devices(args: Args) -> tuple[str, str]:
    """``(model device, env device)`` from ``--device`` and ``--env-device`` (``parse_args``).

    ``"auto"`` is CUDA when present, else CPU (``ram_env.core.resolve_device``; asking for an
    absent CUDA device is an error, not a silent CPU run); the env device defaults to the
    model's.
    """
    from ram_env.core import resolve_device

    try:
        model_device = str(resolve_device(args.device))
        env_device = str(resolve_device(args.env_device)) if args.env_device else model_device
    except (ValueError, RuntimeError) as error:
        raise SettingsError(f"--device/--env-device: {error}") from None
    return model_device, env_device


def algorithm_kwargs(algo: str, args: Args) -> dict[str, Any]:
    """Constructor keyword arguments of algorithm ``algo`` for the run ``args`` (``parse_args``).

    ``learning_rate`` if given; DQN: a replay buffer of ``min(100k, max(timesteps, 1k))``,
    ``learning_starts = min(1000, timesteps // 10)`` and ``batch_size`` if given; on-policy:
    ``n_steps`` (``--n-steps``, or ``DEFAULT_N_STEPS``) and for PPO/RecurrentPPO
    ``batch_size`` (``--batch-size``, or a quarter of the rollout ``n_steps * n_envs``, at
    least ``min(64, rollout)``; ``n_envs`` defaults to 16).
    """
    kwargs: dict[str, Any] = {}
    if args.learning_rate is not None:
        kwargs["learning_rate"] = args.learning_rate
    if algo == "dqn":
        kwargs["buffer_size"] = min(100_000, max(args.timesteps, 1_000))
        kwargs["learning_starts"] = min(1_000, args.timesteps // 10)
    if algo in ALGOS_WITH["n_steps"]:
        kwargs["n_steps"] = args.n_steps or DEFAULT_N_STEPS[algo]
    if algo in ALGOS_WITH["batch_size"] and "n_steps" in kwargs:  # a rollout to split
        rollout = kwargs["n_steps"] * args.n_envs
        kwargs["batch_size"] = args.batch_size or max(min(64, rollout), rollout // 4)
    elif algo in ALGOS_WITH["batch_size"] and args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size  # DQN: SB3's own default otherwise
    return kwargs


def _check_resumed_hyperparameters(model: Any, algo: str, args: Args) -> None:
    """An explicit ``--n-steps``/``--batch-size``/``--learning-rate`` must match the model's."""
    applied = algorithm_kwargs(algo, args)
    conflicts = [
        f"--{key.replace('_', '-')} {value} (the model has {getattr(model, key)})"
        for key in ("n_steps", "batch_size", "learning_rate")
        if (value := getattr(args, key)) is not None
        and key in applied
        and getattr(model, key, value) != value
    ]
    if conflicts:
        raise SettingsError(
            f"--resume {args.resume}: {'; '.join(conflicts)}; a resumed model keeps its "
            "hyperparameters: drop these flags"
        )


def resume_seed(seed: int, timesteps: int) -> int:
    """The seed of a run resumed at ``timesteps`` (a 32-bit int from both): a function of the
    run's seed and where it stopped, so resuming is reproducible and no stream repeats the
    start's."""
    return int(np.random.SeedSequence([seed, timesteps]).generate_state(1)[0])


def _best_of_old_run(
    run_dir: pathlib.Path, cls: Any, model_device: str, evaluate: Any, trusted: bool
) -> float | None:
    """The validation accuracy of ``best.zip`` when ``run.json`` did not record it."""
    best_path = run_dir / "best.zip"
    if not best_path.exists():
        return None
    print(f"run.json has no best validation accuracy: scoring {best_path}", flush=True)
    return evaluate(load_model(cls, str(best_path), trusted, device=model_device))


def train(args: Args) -> float:
    """Train (or resume); return the final validation accuracy.

    ``run.json`` (the settings, ``best_val_accuracy``, ``timesteps``, ...) is rewritten
    atomically after every checkpoint, so an interrupted run resumes with its best.
    """
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.sb3 import (
        ValidationCallback,
        algorithm_class,
        evaluate_sb3,
        make_sb3_vec_env,
        validation_split,
    )

    settings = train_settings(args)
    algo, env_id, grid = settings["algo"], settings["env"], settings["grid"]
    n_envs = settings["n_envs"]
    env_kwargs = dict(settings["env_kwargs"])
    val_fraction, val_size = settings["val_fraction"], settings["val_size"]
    model_device, env_device = resolve_devices(args)
    if args.resume:
        run_dir = pathlib.Path(args.resume).parent
        run_name = run_dir.name
        if pathlib.Path(args.resume).name != "last.zip" and (run_dir / "last.zip").exists():
            raise SettingsError(
                f"--resume {args.resume}: a resumed run writes {run_dir / 'last.zip'}, which "
                "holds the run's latest model; resume from it, or move it away first to "
                f"continue from {pathlib.Path(args.resume).name}"
            )
    else:
        run_name = args.run_name or f"{env_id}-{algo}-s{settings['seed']}"
        run_dir = pathlib.Path(args.save_dir or DEFAULT_SAVE_DIR) / run_name
        taken = [name for name in RUN_FILES if (run_dir / name).exists()]
        if taken:
            resume = (
                f"continue it with --resume {run_dir / 'last.zip'}, or "
                if "last.zip" in taken
                else ""
            )
            raise SettingsError(
                f"{run_dir} holds another run ({', '.join(taken)}): {resume}give another "
                "--run-name / --save-dir"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir = args.log_dir or None

    vec = make_sb3_vec_env(env_id, n_envs, grid, env_device, holdout=val_fraction, **env_kwargs)
    num_images = vec.num_images
    train_pool, val_indices = validation_split(env_id, num_images, val_fraction)
    if val_size is not None:
        val_indices = val_indices[:val_size]
    env = VecMonitor(vec)

    def validate(model: Any) -> float:
        return evaluate_sb3(
            model, env_id, env_kwargs, "train", val_indices, args.eval_envs, env_device
        )

    cls, policy = algorithm_class(algo)
    best = -1.0
    if args.resume:
        model = load_model(
            cls,
            args.resume,
            args.trust_model,
            env=env,
            device=model_device,
            tensorboard_log=log_dir,
        )
        _check_resumed_hyperparameters(model, algo, args)
        # SB3's zips keep no RNG state: reseed every stream (torch, numpy, the action space,
        # the env) from the seed and the steps done, so the same resume trains the same way.
        model.set_random_seed(resume_seed(args.seed, model.num_timesteps))
        recorded = settings.get("best_val_accuracy")
        if recorded is None:
            recorded = _best_of_old_run(run_dir, cls, model_device, validate, args.trust_model)
        best = -1.0 if recorded is None else float(recorded)
        print(
            f"resumed {args.resume} at {model.num_timesteps} timesteps (best validation "
            f"accuracy so far {best:.4f})",
            flush=True,
        )
    else:
        model = cls(
            policy,
            env,
            seed=settings["seed"],
            device=model_device,
            tensorboard_log=log_dir,
            verbose=args.verbose,
            **algorithm_kwargs(algo, args),
        )
    meta = {
        **settings,
        "algo": algo,
        "env": env_id,
        "grid": grid,
        "env_kwargs": env_kwargs,
        "val_fraction": val_fraction,
        "val_size": val_size,
        "val_indices": [int(val_indices[0]), int(val_indices[-1]) + 1] if len(val_indices) else [],
        "n_envs": n_envs,
        "best_val_accuracy": best if best >= 0 else None,
        "timesteps": model.num_timesteps,
    }
    write_run_json(run_dir, meta)

    def record_checkpoint(callback: ValidationCallback) -> None:
        meta["model_sha256"] = {
            name: file_sha256(run_dir / name)
            for name in ("last.zip", "best.zip")
            if (run_dir / name).exists()
        }
        meta["best_val_accuracy"] = callback.best_accuracy if callback.best_accuracy >= 0 else None
        if callback.best_timesteps is not None:
            meta["best_timesteps"] = callback.best_timesteps
        meta["last_val_accuracy"] = callback.last_accuracy
        meta["timesteps"] = callback.num_timesteps
        write_run_json(run_dir, meta)

    callback = ValidationCallback(
        env_id,
        env_kwargs,
        val_indices,
        args.eval_freq,
        n_envs=args.eval_envs,
        device=env_device,
        save_dir=str(run_dir),
        best_accuracy=best,
        on_checkpoint=record_checkpoint,
    )
    remaining = args.timesteps - model.num_timesteps
    unit = "games" if env_id in ram_env.GAMES else "images"
    print(
        f"training {algo} on {env_id} (grid {grid}, {n_envs} envs, model on "
        f"{model_device}, env on {env_device}) for {max(remaining, 0)} timesteps; "
        f"{len(train_pool)} training {unit}, {len(val_indices)} validation; "
        f"checkpoints in {run_dir}",
        flush=True,
    )
    start = time.perf_counter()
    if remaining > 0:
        model.learn(
            remaining,
            callback=callback,
            reset_num_timesteps=not args.resume,
            tb_log_name=run_name,
        )
    else:  # nothing left to train: validate and checkpoint once more
        from stable_baselines3.common.logger import configure

        model.set_logger(configure(None, ["stdout"] if args.verbose else []))
        callback.init_callback(model)
    seconds = time.perf_counter() - start
    if callback.last_accuracy is None or callback.last_eval_timesteps != model.num_timesteps:
        callback.evaluate()
        model.logger.dump(model.num_timesteps)
    print(
        f"done: {model.num_timesteps} timesteps in {seconds:.0f} s "
        f"({max(remaining, 0) / max(seconds, 1e-9):.0f} steps/s); validation accuracy "
        f"{callback.last_accuracy:.4f} (best {callback.best_accuracy:.4f}); "
        f"saved {run_dir / 'last.zip'} and {run_dir / 'best.zip'}",
        flush=True,
    )
    env.close()
    return float(callback.last_accuracy)


def test(args: Args) -> float:
    """Score the model at ``args.test`` on the whole test split; print and return accuracy."""
    from agents.sb3 import algorithm_class, evaluate_sb3_episodes

    settings = _run_settings(args, args.test)
    model_device, env_device = resolve_devices(args)
    cls, _ = algorithm_class(settings["algo"])
    model = load_model(cls, args.test, args.trust_model, device=model_device)
    start = time.perf_counter()
    correct = evaluate_sb3_episodes(
        model,
        settings["env"],
        settings["env_kwargs"],
        "test",
        None,
        n_envs=args.eval_envs,
        device=env_device,
        seed=args.seed,
    )
    accuracy = float(correct.mean())
    score = (
        f"catch rate {100 * accuracy:.2f}% ({int(correct.sum())}/{correct.size} caught)"
        if settings["env"] in ram_env.GAMES
        else f"test error {100 * (1 - accuracy):.2f}% (accuracy {accuracy:.4f}, "
        f"{int(correct.sum())}/{correct.size} right)"
    )
    print(
        f"{score} of {settings['algo']} on "
        f"{settings['env']}'s test split, {args.test}, in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    return accuracy


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        if args.test:
            test(args)
        else:
            train(args)
    except SettingsError as error:
        print(f"train_sb3.py: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
