"""The SB3 VecEnv adapter, tiny learning runs, the evaluation and the train_sb3.py CLI."""

from __future__ import annotations

import json
import os

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import ram_env  # noqa: F401  (registers the ids)
import train_sb3
from agents.sb3 import (
    GlimpseSB3VecEnv,
    ValidationCallback,
    algorithm_class,
    evaluate_sb3,
    evaluate_sb3_episodes,
    grid_of,
    make_sb3_vec_env,
    sample_actions,
    save_model,
)
from ram_env.atomic import atomic_write
from ram_env.datasets import holdout_split, load_split
from ram_env.wrappers import grid_centres, make_discrete_env, make_discrete_vec

ENV_ID = "GlimpseMNIST-v0"
T = 6
G = 4
FIX = G * G
N = 5


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def check_obs(vec, obs, n):
    assert set(obs) == {"glimpse", "location", "time"}
    for key, space in vec.observation_space.spaces.items():
        assert obs[key].shape == (n, *space.shape) and obs[key].dtype == np.float32
        assert all(obs[key][i] in space for i in range(n))


def test_contract_shapes_dtypes_and_infos():
    vec = make_sb3_vec_env(ENV_ID, N, G, seed=0)
    assert vec.num_envs == N and vec.action_space == gym.spaces.Discrete(FIX + 10)
    assert vec.observation_space == make_discrete_env(ENV_ID, G).observation_space
    obs = vec.reset()
    check_obs(vec, obs, N)
    assert np.allclose(obs["time"], 1 / T)
    assert vec.reset_infos == [{}] * N
    obs, rewards, dones, infos = vec.step(np.arange(N))
    check_obs(vec, obs, N)
    assert rewards.shape == (N,) and rewards.dtype == np.float32
    assert dones.shape == (N,) and dones.dtype == bool and not dones.any()
    assert isinstance(infos, list) and infos == [{}] * N
    np.testing.assert_array_equal(obs["location"], grid_centres(G)[:N].numpy())
    assert np.allclose(obs["time"], 2 / T)


def test_same_step_autoreset_and_terminal_observation():
    vec = make_sb3_vec_env(ENV_ID, N, G, seed=1)
    vec.reset()
    vec.step(np.full(N, 3))
    actions = np.array([FIX + 0, 2, FIX + 9, 7, FIX + 4])
    obs, rewards, dones, infos = vec.step(actions)
    assert dones.tolist() == [True, False, True, False, True]
    for i in range(N):
        if dones[i]:
            info = infos[i]
            assert set(info) >= {"terminal_observation", "label", "index", "is_success"}
            assert info["TimeLimit.truncated"] is False and info["glimpses"] == 2
            assert rewards[i] == float(info["label"] == actions[i] - FIX) == info["is_success"]
            terminal = info["terminal_observation"]
            # The answer did not move the fixation; the new episode starts at glimpse 1.
            np.testing.assert_array_equal(terminal["location"], grid_centres(G)[3].numpy())
            assert terminal["time"].tolist() == [1.0]  # a final observation: the episode is over
            assert obs["time"][i].tolist() == pytest.approx([1 / T])
            assert vec.reset_infos[i] == {}
        else:
            assert infos[i] == {} and rewards[i] == 0.0
            assert obs["time"][i].tolist() == pytest.approx([3 / T])


def test_the_cap_ends_every_episode_after_n_glimpses():
    vec = make_sb3_vec_env(ENV_ID, N, G, seed=2)
    vec.reset()
    for t in range(1, T + 1):
        obs, rewards, dones, infos = vec.step(np.full(N, 5))
        assert not rewards.any()
        assert dones.all() == (t == T) and dones.any() == (t == T)
    assert all(info["glimpses"] == T and info["is_success"] is False for info in infos)
    assert all(info["terminal_observation"]["time"].tolist() == [1.0] for info in infos)
    assert np.allclose(obs["time"], 1 / T)


def test_matches_the_single_env_wrapper():
    """One sub-env plays exactly like DiscreteGlimpseActions (same seed, same actions)."""
    vec = make_sb3_vec_env(ENV_ID, 1, G, seed=11)
    dummy = DummyVecEnv([lambda: make_discrete_env(ENV_ID, grid=G)])
    dummy.seed(11)
    rng = np.random.default_rng(0)
    a, b = vec.reset(), dummy.reset()
    for _ in range(40):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
        actions = rng.integers(FIX + 10, size=1)
        a, ra, da, ia = vec.step(actions)
        b, rb, db, ib = dummy.step(actions)
        assert (ra.tolist(), da.tolist()) == (rb.tolist(), db.tolist())
        if da[0]:
            for key in ("label", "index", "glimpses", "is_success"):
                assert ia[0][key] == ib[0][key]
            for key, value in ia[0]["terminal_observation"].items():
                np.testing.assert_array_equal(value, ib[0]["terminal_observation"][key])


def _play(vec, steps=15):
    rng = np.random.default_rng(0)
    out = [vec.reset()]
    for _ in range(steps):
        obs, rewards, dones, infos = vec.step(rng.integers(FIX + 10, size=vec.num_envs))
        out.append((obs, rewards, dones, [info.get("index") for info in infos]))
    return repr(out)


def test_seeding_is_reproducible():
    def run(seed, pool=None):
        vec = make_sb3_vec_env(ENV_ID, N, G, index_pool=pool)
        assert vec.seed(seed) == [seed + i for i in range(N)]
        return _play(vec)

    assert run(3) == run(3)
    assert run(3) != run(4)
    pool = torch.arange(100, 200)
    assert run(3, pool) == run(3, pool)
    assert run(3, pool) != run(4, pool)
    # A seed is used by the next reset only; reset() again continues the stream.
    vec = make_sb3_vec_env(ENV_ID, N, G, seed=3)
    first, second = vec.reset(), vec.reset()
    assert not np.array_equal(first["location"], second["location"])


def test_set_options_picks_images_and_index_pool_and_holdout():
    vec = make_sb3_vec_env(ENV_ID, 3, G, split="test", seed=0)
    vec.set_options([{"index": 7}, {"index": 0}, {"index": 127}])
    vec.reset()
    _, _, dones, infos = vec.step(np.full(3, FIX))
    assert dones.all() and [info["index"] for info in infos] == [7, 0, 127]
    labels = load_split("mnist", "test")[1]
    assert [info["label"] for info in infos] == labels[[7, 0, 127]].tolist()
    vec.set_options([{"index": 1}, {}, {}])
    with pytest.raises(ValueError, match="index"):
        vec.reset()

    pool = torch.tensor([3, 9, 12])
    vec = make_sb3_vec_env(ENV_ID, 4, G, index_pool=pool, seed=0)
    vec.reset()
    seen = set()
    for _ in range(10):
        _, _, _, infos = vec.step(np.full(4, FIX + 1))
        seen |= {info["index"] for info in infos}
    assert seen == {3, 9, 12}

    vec = make_sb3_vec_env(ENV_ID, 64, G, holdout=0.1, seed=0)
    n_train = len(load_split("mnist", "train")[1])
    cut = n_train - round(0.1 * n_train)
    train, held = holdout_split(n_train, 0.1)
    assert train.tolist() == list(range(cut)) and held.tolist() == list(range(cut, n_train))
    vec.reset()
    for _ in range(5):
        _, _, _, infos = vec.step(np.full(64, FIX))
        assert max(info["index"] for info in infos) < cut


def test_attributes_methods_and_errors():
    vec = make_sb3_vec_env(ENV_ID, N, G, seed=0)
    assert vec.get_attr("grid") == [G] * N
    assert vec.get_attr("n_glimpses", indices=[0, 2]) == [T, T]
    assert vec.get_attr("action_space")[0] == gym.spaces.Discrete(FIX + 10)
    assert vec.get_attr("render_mode") == [None] * N
    assert vec.has_attr("config") and not vec.has_attr("no_such_attribute")
    assert vec.env_is_wrapped(gym.Wrapper) == [False] * N
    state = vec.env_method("get_rng_state")[0]
    vec.env_method("set_rng_state", state)
    with pytest.raises(ValueError, match="all of them"):
        vec.set_attr("validate_actions", True, indices=[0])
    vec.reset()
    with pytest.raises(ValueError, match="discrete actions"):
        vec.step(np.full(N, FIX + 10))
    with pytest.raises(ValueError, match="actions"):
        vec.step(np.zeros(N + 1, dtype=np.int64))
    with pytest.raises(TypeError, match="DiscreteGlimpseVectorActions"):
        GlimpseSB3VecEnv(gym.make_vec(ENV_ID, 2, vectorization_mode="vector_entry_point"))
    with pytest.raises(ValueError, match="SAME_STEP"):
        GlimpseSB3VecEnv(make_discrete_vec(ENV_ID, 2, G))
    assert grid_of(vec.action_space) == G
    with pytest.raises(ValueError, match="Discrete"):
        grid_of(gym.spaces.Discrete(FIX + 11))


def test_vec_monitor_reports_episodes():
    vec = VecMonitor(make_sb3_vec_env(ENV_ID, N, G, seed=0))
    vec.reset()
    _, _, dones, infos = vec.step(np.full(N, FIX + 2))
    assert dones.all() and all(info["episode"]["l"] == 1 for info in infos)


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn", "recurrent-ppo"])
def test_tiny_learn(algo):
    cls, policy = algorithm_class(algo)
    env = VecMonitor(make_sb3_vec_env(ENV_ID, 4, G))
    kwargs = {"learning_starts": 50, "buffer_size": 1000} if algo == "dqn" else {"n_steps": 32}
    if algo in ("ppo", "recurrent-ppo"):
        kwargs.update(batch_size=64, n_epochs=2)
    model = cls(policy, env, seed=0, device="cpu", **kwargs).learn(256)
    assert model.num_timesteps >= 256
    assert len(model.ep_info_buffer) > 0


class AlwaysAnswer:
    """A stand-in model that answers ``label`` at once (or fixates until the cap)."""

    def __init__(self, label: int | None):
        self.label = label
        self.action_space = gym.spaces.Discrete(FIX + 10)
        self.calls = 0

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        n = obs["time"].shape[0]
        assert episode_start.shape == (n,)
        if self.calls == 0:
            assert episode_start.all()
        self.calls += 1
        action = 0 if self.label is None else FIX + self.label
        return np.full(n, action), state


@pytest.mark.parametrize("n_envs", [7, 32, 500])
def test_evaluation_plays_every_test_image_once(n_envs):
    labels = load_split("mnist", "test")[1].numpy()
    correct = evaluate_sb3_episodes(AlwaysAnswer(3), ENV_ID, {}, "test", None, n_envs, "cpu")
    assert correct.shape == labels.shape
    np.testing.assert_array_equal(correct, labels == 3)
    indices = [5, 9, 9, 100]
    correct = evaluate_sb3_episodes(AlwaysAnswer(3), ENV_ID, {}, "test", indices, n_envs, "cpu")
    np.testing.assert_array_equal(correct, labels[indices] == 3)
    assert evaluate_sb3(AlwaysAnswer(None), ENV_ID, {}, "test", None, n_envs) == 0.0


@pytest.mark.parametrize("algo", ["ppo", "recurrent-ppo", "dqn"])
def test_a_sampled_score_does_not_depend_on_the_number_of_envs(algo):
    """Sampled actions are keyed by image and seed (``sample_actions``), not drawn from the
    global RNG in batch order: one score per seed for 8, 13 or 40 envs, and the draws vary."""
    cls, policy = algorithm_class(algo)
    kwargs = {"buffer_size": 100} if algo == "dqn" else {"n_steps": 16, "batch_size": 32}
    model = cls(policy, make_sb3_vec_env(ENV_ID, 2, G), seed=0, device="cpu", **kwargs)
    if algo == "dqn":
        model.exploration_rate = 0.5
    scores = set()
    for n_envs in (8, 13, 40):
        torch.manual_seed(n_envs)  # the global RNG must not matter
        np.random.seed(n_envs)  # noqa: NPY002  (the legacy RNG that DQN.predict draws from)
        correct = evaluate_sb3_episodes(model, ENV_ID, {}, "test", range(40), n_envs,
                                        deterministic=False, seed=3)  # fmt: skip
        scores.add(tuple(correct.tolist()))
    assert len(scores) == 1
    obs = make_sb3_vec_env(ENV_ID, 40, G, seed=0).reset()
    keys = torch.arange(40)
    first, _ = sample_actions(model, obs, None, np.ones(40, dtype=bool), keys, 0)
    again, _ = sample_actions(model, obs, None, np.ones(40, dtype=bool), keys, 0)
    later, _ = sample_actions(model, obs, None, np.ones(40, dtype=bool), keys, 1)
    assert first.shape == (40,) and np.array_equal(first, again)
    assert len(set(first.tolist())) > 3 and not np.array_equal(first, later)


def test_sampled_actions_follow_the_policys_distribution():
    """The keyed Gumbel-max draw is a sample of the policy's categorical distribution: over
    20,000 keys the action frequencies match softmax(logits) (chi-square test)."""
    cls, policy = algorithm_class("ppo")
    model = cls(policy, make_sb3_vec_env(ENV_ID, 2, G), n_steps=16, batch_size=32, seed=0)
    logits = torch.linspace(-2.0, 2.0, model.action_space.n)
    with torch.no_grad():  # the policy's logits are these, whatever the observation
        model.policy.action_net.weight.zero_()
        model.policy.action_net.bias.copy_(logits)
    obs = make_sb3_vec_env(ENV_ID, 1, G, seed=0).reset()
    count = 20_000
    batch = {key: np.repeat(value, count, axis=0) for key, value in obs.items()}
    actions, _ = sample_actions(model, batch, None, np.ones(count, bool), torch.arange(count), 0)
    observed = np.bincount(actions, minlength=len(logits))
    expected = torch.softmax(logits, 0).numpy() * count
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert len(logits) == 26 and chi2 < 52.6  # chi-square's 0.999 quantile, 25 dof


def test_evaluation_of_a_recurrent_model_is_deterministic():
    cls, policy = algorithm_class("recurrent-ppo")
    model = cls(policy, make_sb3_vec_env(ENV_ID, 2, G), n_steps=16, batch_size=32, seed=0)
    scores = [evaluate_sb3(model, ENV_ID, {}, "test", range(40), 16, "cpu") for _ in range(2)]
    assert scores[0] == scores[1]


def test_cli_train_resume_then_test(tmp_path, capsys):
    tested = ["--threads", "1", "--device", "cpu", "--eval-envs", "64"]  # --test's settings
    common = ["--n-envs", "4", *tested]
    train_args = [
        *common,
        "--timesteps", "256",
        "--n-steps", "32",
        "--eval-freq", "128",
        "--save-dir", str(tmp_path / "ckpt"),
        "--log-dir", str(tmp_path / "tb"),
        "--env-kwargs", '{"n_glimpses": 4}',
    ]  # fmt: skip
    assert train_sb3.main(train_args) == 0
    run_dir = tmp_path / "ckpt" / f"{ENV_ID}-recurrent-ppo-s0"
    assert {p.name for p in run_dir.iterdir()} == {"run.json", "last.zip", "best.zip"}
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["algo"] == "recurrent-ppo" and meta["env_kwargs"] == {"n_glimpses": 4}
    n_train = len(load_split("mnist", "train")[1])
    assert meta["val_indices"] == [n_train - round(0.1 * n_train), n_train]
    assert meta["timesteps"] >= 256
    assert any((tmp_path / "tb").iterdir())
    out = capsys.readouterr().out
    assert "validation accuracy" in out

    resume = [*common, "--resume", str(run_dir / "last.zip"), "--timesteps", "384"]
    assert train_sb3.main([*resume, "--n-steps", "32", "--log-dir", ""]) == 0
    assert json.loads((run_dir / "run.json").read_text())["timesteps"] >= 384

    assert train_sb3.main([*tested, "--test", str(run_dir / "best.zip")]) == 0
    out = capsys.readouterr().out
    assert "test error" in out and f"/{len(load_split('mnist', 'test')[1])} right" in out
    assert set(json.loads((run_dir / "run.json").read_text())["model_sha256"]) == {
        "last.zip",
        "best.zip",
    }
    best = str(run_dir / "best.zip")
    for flags, named in (
        (["--env", "GlimpseFashionMNIST-v0"], "trained with --env 'GlimpseMNIST-v0'"),
        (["--algo", "ppo"], "trained with --algo 'recurrent-ppo'"),
        (["--grid", "5"], "trained with --grid 4"),
    ):
        assert train_sb3.main([*tested, "--test", best, *flags]) == 2
        assert named in capsys.readouterr().err
    assert train_sb3.main([*tested, "--test", best, "--env-kwargs", '{"n_glimpses": 3}']) == 0
    assert "{'n_glimpses': 3} (trained with {'n_glimpses': 4})" in capsys.readouterr().out
    # Training settings cannot change a test: refused by name, never silently ignored.
    with pytest.raises(SystemExit) as exited:
        train_sb3.main([*tested, "--test", best, "--learning-rate", "0.5", "--timesteps", "3"])
    assert exited.value.code == 2
    assert "--timesteps, --learning-rate: training settings" in capsys.readouterr().err
    # Resuming from best.zip would overwrite last.zip, the run's latest model: refused.
    latest = (run_dir / "last.zip").read_bytes()
    assert train_sb3.main([*common, "--resume", best]) == 2
    assert "holds the run's latest model" in capsys.readouterr().err
    assert (run_dir / "last.zip").read_bytes() == latest
    ram_checkpoint = tmp_path / "ram.pt"
    torch.save({"model": {}}, ram_checkpoint)
    assert train_sb3.main([*tested, "--test", str(ram_checkpoint)]) == 2
    assert "is not an SB3 model zip" in capsys.readouterr().err
    truncated = run_dir / "truncated.zip"
    truncated.write_bytes((run_dir / "best.zip").read_bytes()[:-200])
    assert train_sb3.main([*tested, "--test", str(truncated), "--trust-model"]) == 2
    assert str(truncated) in capsys.readouterr().err

    # A zip ram-env did not write (here: one whose pickle runs a command) is never loaded.
    marker = tmp_path / "pwned"
    evil = run_dir / "best.zip"
    evil.write_bytes(_zip_with_code(evil.read_bytes(), marker))
    assert train_sb3.main([*tested, "--test", str(evil)]) == 2
    err = capsys.readouterr().err
    assert "refusing to load" in err and "--trust-model" in err and "run code" in err
    assert not marker.exists()
    (run_dir / "run.json").write_text("{broken")
    assert train_sb3.main([*tested, "--test", str(run_dir / "last.zip")]) == 2
    assert "not a readable run.json" in capsys.readouterr().err
    (run_dir / "run.json").unlink()
    assert train_sb3.main([*tested, "--test", str(run_dir / "last.zip")]) == 2
    assert "no run.json beside it" in capsys.readouterr().err
    assert train_sb3.main([*common, "--resume", str(run_dir / "last.zip")]) == 2
    assert train_sb3.main([*tested, "--test", str(tmp_path / "nothing.zip")]) == 2
    assert "no model at" in capsys.readouterr().err


def _zip_with_code(original: bytes, marker) -> bytes:
    """``original`` (an SB3 zip) with a ``data`` entry whose pickle would run a command."""
    import base64
    import io
    import pickle
    import zipfile

    class RunsCode:
        def __reduce__(self):
            return (os.system, (f"echo pwned > {marker}",))

    payload = base64.b64encode(pickle.dumps(RunsCode())).decode()
    data = json.dumps({"policy_class": {":type:": "x", ":serialized:": payload}})
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            target.writestr(item, data if item.filename == "data" else source.read(item))
    return out.getvalue()


def test_cli_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        train_sb3.parse_args(["--grid", "1000"])
    with pytest.raises(SystemExit):
        train_sb3.parse_args(["--algo", "sac"])
    with pytest.raises(SystemExit):
        train_sb3.parse_args(["--env-kwargs", '{"split": "test"}'])
    with pytest.raises(SystemExit):
        train_sb3.parse_args(["--test", "a.zip", "--resume", "b.zip"])
    for bad in (["--val-fraction", "0"], ["--val-fraction", "1"], ["--eval-freq", "-1"]):
        with pytest.raises(SystemExit):
            train_sb3.parse_args(bad)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--learning-rate", "inf"], "--learning-rate"),
        (["--learning-rate", "nan"], "--learning-rate"),
        (["--learning-rate", "-1e-3"], "--learning-rate"),
        (["--algo", "dqn", "--n-steps", "8"], "--n-steps"),  # DQN has no rollout
        (["--algo", "a2c", "--batch-size", "7"], "--batch-size"),  # A2C has no minibatch
        (["--env-kwargs", '{"device": "cpu"}'], "--env-device"),  # the adapter's own settings
        (["--env-kwargs", '{"autoreset_mode": "NextStep"}'], "autoreset_mode"),
        # The env's own check of its arguments, before any run folder is made.
        (["--env-kwargs", '{"n_glimpses": 0}'], "n_glimpses must be an integer >= 1"),
        (["--env-kwargs", '{"render_mode": "human"}'], "render_mode must be one of"),
        (["--env", "GlimpseCatch-v0", "--env-kwargs", '{"frameskip": 1}'], "'frameskip'"),
        # An empty path names nothing (an unset shell variable): never "not given".
        (["--test", ""], "--test is empty"),
        (["--resume", ""], "--resume is empty"),
        (["--run-name", " "], "--run-name is empty"),
    ],
)
def test_flags_that_cannot_apply_are_refused_by_name(flags, named, capsys):
    with pytest.raises(SystemExit):
        train_sb3.parse_args(flags)
    assert named in capsys.readouterr().err


def test_the_adapters_own_settings_are_refused_in_env_kwargs():
    with pytest.raises(ValueError, match=r"'autoreset_mode' .always SAME_STEP.*'num_envs'"):
        make_sb3_vec_env(ENV_ID, 2, G, num_envs=3, autoreset_mode="NextStep")
    for key, value in (("holdout", 0.2), ("seed", 3), ("grid", 3), ("index_pool", [1])):
        with pytest.raises(SystemExit):  # not a duplicate-keyword traceback at make time
            train_sb3.parse_args(["--env-kwargs", json.dumps({key: value})])


def test_dqn_takes_batch_size():
    args = train_sb3.parse_args(["--algo", "dqn", "--batch-size", "7"])
    assert train_sb3.algorithm_kwargs("dqn", args)["batch_size"] == 7


def test_a_new_run_never_overwrites_another_runs_files(tmp_path, capsys):
    tiny = ["--timesteps", "64", "--n-envs", "4", "--n-steps", "16", "--eval-freq", "0",
            "--val-size", "16", "--eval-envs", "16", "--threads", "1", "--device", "cpu",
            "--log-dir", "", "--save-dir", str(tmp_path), "--run-name", "r"]  # fmt: skip
    assert train_sb3.main(["--algo", "ppo", *tiny]) == 0
    before = {path.name: path.read_bytes() for path in (tmp_path / "r").iterdir()}
    assert set(before) == {"best.zip", "last.zip", "run.json"}
    assert train_sb3.main(["--algo", "a2c", *tiny]) == 2
    assert "holds another run (best.zip, last.zip): continue it with --resume" in (
        capsys.readouterr().err
    )
    assert before == {path.name: path.read_bytes() for path in (tmp_path / "r").iterdir()}
    for name in ("best.zip", "last.zip"):  # a run stopped before its first checkpoint
        (tmp_path / "r" / name).unlink()
    assert train_sb3.main(["--algo", "a2c", *tiny]) == 0  # starts there: nothing to lose


def test_bad_grid_and_reset_indices_are_errors_not_rounded():
    for grid in (4.5, 0, True, "4"):
        with pytest.raises(ValueError, match="grid must be an integer"):
            make_sb3_vec_env(ENV_ID, 2, grid)
    with pytest.raises(ValueError, match="grid must be an integer"):
        make_discrete_vec(ENV_ID, 2, grid=4.5, autoreset_mode="SAME_STEP")
    vec = make_sb3_vec_env(ENV_ID, 2, G, split="test", seed=0)
    for bad, match in ((3.7, "must be an int"), (True, "must be an int"), ("3", "must be an int"),
                       (-1, r"in \[0, \d+\]"), (10_000, r"in \[0, \d+\]")):  # fmt: skip
        vec.set_options([{"index": 1}, {"index": bad}])
        with pytest.raises(ValueError, match=f"sub-env 1's 'index'.*{match}"):
            vec.reset()
    vec.set_options([{"index": np.int64(3)}, {"index": 4}])  # numpy integers are fine
    vec.reset()
    infos = vec.step(np.full(2, FIX))[3]
    assert [info["index"] for info in infos] == [3, 4]


def _tiny_model():
    from stable_baselines3.common.logger import configure

    cls, policy = algorithm_class("ppo")
    env = make_sb3_vec_env(ENV_ID, 2, G, seed=0)
    model = cls(policy, env, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.set_logger(configure(None, []))
    return model


def test_a_crash_during_a_checkpoint_keeps_the_previous_files(tmp_path, monkeypatch):
    import agents.sb3

    scores = iter([0.5, 0.75])
    monkeypatch.setattr(agents.sb3, "evaluate_sb3", lambda *args, **kwargs: next(scores))
    recorded = []
    callback = ValidationCallback(
        ENV_ID, {}, torch.arange(8), 0, save_dir=str(tmp_path), verbose=0,
        on_checkpoint=lambda cb: recorded.append((cb.best_accuracy, cb.num_timesteps)),
    )  # fmt: skip
    callback.init_callback(_tiny_model())
    assert callback.evaluate() == 0.5 and recorded == [(0.5, 0)]
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert set(before) == {"last.zip", "best.zip"}

    def crash(*args, **kwargs):  # torch.save inside SB3's zip writer: the zip is half written
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        callback.evaluate()  # a new best: both zips were being rewritten
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert after == before  # old zips intact, no temporary file left
    assert callback.best_accuracy == 0.5 and recorded == [(0.5, 0)]
    monkeypatch.undo()
    cls, _ = algorithm_class("ppo")
    cls.load(tmp_path / "best.zip")  # still a readable model


def test_atomic_write_keeps_the_old_file_on_a_crash(tmp_path):
    path = tmp_path / "run.json"
    train_sb3.write_run_json(tmp_path, {"best_val_accuracy": 0.5})

    def half_then_crash(file):
        file.write(b'{"best_val_')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_crash)
    assert json.loads(path.read_text()) == {"best_val_accuracy": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    model = _tiny_model()
    assert save_model(model, tmp_path / "model") == tmp_path / "model.zip"  # as model.save does
    assert (tmp_path / "model.zip").is_file()


def _fake_scores(monkeypatch, scores):
    """Validation returns ``scores`` in turn; returns the list of index tensors it was given."""
    import agents.sb3

    seen = []

    def fake(model, env_id, env_kwargs, split, indices, *args, **kwargs):
        seen.append(torch.as_tensor(indices).clone())
        return scores.pop(0)

    monkeypatch.setattr(agents.sb3, "evaluate_sb3", fake)
    return seen


def test_cli_resume_after_an_interruption_keeps_best_and_validation_split(
    tmp_path, monkeypatch, capsys
):
    import agents.sb3

    common = ["--n-envs", "4", "--n-steps", "16", "--threads", "1", "--device", "cpu",
              "--log-dir", "", "--eval-freq", "64"]  # fmt: skip
    first = [*common, "--algo", "ppo", "--timesteps", "100000", "--save-dir", str(tmp_path),
             "--val-fraction", "0.05", "--val-size", "40",
             "--env-kwargs", '{"n_glimpses": 4}']  # fmt: skip
    seen = _fake_scores(monkeypatch, [0.5])
    original = agents.sb3.ValidationCallback.evaluate

    def evaluate_then_interrupt(self):
        original(self)
        raise KeyboardInterrupt  # Ctrl-C just after the first checkpoint

    monkeypatch.setattr(agents.sb3.ValidationCallback, "evaluate", evaluate_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_sb3.main(first)
    monkeypatch.setattr(agents.sb3.ValidationCallback, "evaluate", original)
    run_dir = tmp_path / f"{ENV_ID}-ppo-s0"
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["best_val_accuracy"] == 0.5 and meta["timesteps"] == 64
    assert meta["val_fraction"] == 0.05 and meta["val_size"] == 40
    n_train = len(load_split("mnist", "train")[1])
    held = holdout_split(n_train, 0.05)[1][:40]
    assert torch.equal(seen[0], held)
    best = (run_dir / "best.zip").read_bytes()

    # The flags that define the run must agree with run.json; no file is touched otherwise.
    resume = [*common, "--resume", str(run_dir / "last.zip"), "--timesteps", "128"]
    for flags, named in (
        (["--val-fraction", "0.1"], "--val-fraction 0.1 (run.json: 0.05)"),
        (["--grid", "5"], "--grid 5 (run.json: 4)"),
        (["--algo", "a2c"], "--algo 'a2c'"),
        (["--env-kwargs", '{"n_glimpses": 6}'], '--env-kwargs {"n_glimpses": 6}'),
        (["--env-kwargs", '{"start": "center"}'], "'start': '<unset>'"),
        (["--learning-rate", "0.5"], "--learning-rate 0.5 (the model has 0.0003)"),
    ):
        capsys.readouterr()
        assert train_sb3.main([*resume, *flags]) == 2
        error = capsys.readouterr().err
        assert "contradicts" in error or "drop these flags" in error
        assert named in error, error
    assert json.loads((run_dir / "run.json").read_text()) == meta
    assert train_sb3.main([*common, "--resume", str(tmp_path / "nowhere" / "last.zip")]) == 2
    assert "no run.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_sb3.parse_args([*resume, "--save-dir", str(tmp_path)])

    # A worse score after resuming must not replace best.zip; the split is run.json's even
    # though the CLI default is 0.1; repeating a saved setting is fine.
    seen = _fake_scores(monkeypatch, [0.25])
    assert train_sb3.main([*resume, "--algo", "ppo", "--val-fraction", "0.05"]) == 0
    assert "best validation accuracy so far 0.5000" in capsys.readouterr().out
    assert len(seen) == 1 and torch.equal(seen[0], held)
    assert (run_dir / "best.zip").read_bytes() == best
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["best_val_accuracy"] == 0.5 and meta["last_val_accuracy"] == 0.25
    assert meta["timesteps"] == 128 and meta["best_timesteps"] == 64
    assert meta["env_kwargs"] == {"n_glimpses": 4} and meta["val_fraction"] == 0.05

    # A better one does; run.json follows.
    _fake_scores(monkeypatch, [0.75])
    resume[resume.index("128")] = "192"
    assert train_sb3.main(resume) == 0
    assert (run_dir / "best.zip").read_bytes() != best
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["best_val_accuracy"] == 0.75 and meta["best_timesteps"] == 192

    # A run.json of an older version, without the best: best.zip is scored first.
    del meta["best_val_accuracy"]
    (run_dir / "run.json").write_text(json.dumps(meta))
    best = (run_dir / "best.zip").read_bytes()
    seen = _fake_scores(monkeypatch, [0.75, 0.5])
    resume[resume.index("192")] = "256"
    assert train_sb3.main(resume) == 0
    assert len(seen) == 2 and (run_dir / "best.zip").read_bytes() == best
    assert json.loads((run_dir / "run.json").read_text())["best_val_accuracy"] == 0.75


def test_public_helpers_for_the_benchmark():
    args = train_sb3.parse_args(["--device", "cpu", "--n-envs", "8", "--algo", "ppo"])
    assert train_sb3.resolve_devices(args) == ("cpu", "cpu")
    assert train_sb3.algorithm_kwargs("ppo", args) == {"n_steps": 128, "batch_size": 256}
    assert train_sb3.algorithm_kwargs("a2c", args) == {"n_steps": 5}


def test_cli_device_that_cannot_work_fails_before_any_run_folder(tmp_path, capsys):
    argv = ["--device", "meta", "--save-dir", str(tmp_path / "ckpt"), "--timesteps", "64"]
    assert train_sb3.main(argv) == 2
    assert "--device" in capsys.readouterr().err
    assert not (tmp_path / "ckpt").exists()


def test_two_policies_get_the_same_first_glimpse_of_each_test_image(monkeypatch):
    """An agent that answers early and one that keeps looking: the sub-envs' later resets must
    not change the first fixation of any test image (it is keyed by image and seed)."""
    import agents.sb3 as sb3

    class Agent:
        action_space = gym.spaces.Discrete(16 + 10)

        def __init__(self, answer_now):
            self.answer_now = answer_now

        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            ink = obs["glimpse"].reshape(len(obs["glimpse"]), -1).sum(1) > 0
            return np.where(ink & self.answer_now, 16 + 3, 5), state

    firsts = {}
    reset = sb3.GlimpseSB3VecEnv.reset
    for answer_now in (True, False):
        seen = []

        def recording_reset(self, seen=seen):
            observation = reset(self)
            seen.append(observation["location"].copy())
            return observation

        monkeypatch.setattr(sb3.GlimpseSB3VecEnv, "reset", recording_reset)
        sb3.evaluate_sb3_episodes(Agent(answer_now), ENV_ID, {}, "test", torch.arange(8), n_envs=4)
        firsts[answer_now] = np.concatenate(seen)[:8]
    np.testing.assert_array_equal(firsts[True], firsts[False])


def test_sb3_evaluate_policy_on_the_bridge():
    """SB3's own ``evaluate_policy`` over the bridge (under ``VecMonitor``): a policy that looks
    twice and then answers class 0 scores 1 on a pool of zeros and 0 on a pool of ones, in
    episodes of 3 steps, the count asked for."""
    from stable_baselines3.common.evaluation import evaluate_policy

    class LookTwiceThenSayZero:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            answer = obs["time"][:, 0] > 2.5 / T  # the third step: two glimpses seen before
            return np.where(answer, FIX + 0, 5), state

    _, labels = load_split("mnist", "test")
    for label, score in ((0, 1.0), (1, 0.0)):
        pool = torch.nonzero(labels == label).squeeze(1)[:50]
        vec = VecMonitor(make_sb3_vec_env(ENV_ID, 4, G, index_pool=pool, seed=0, split="test"))
        rewards, lengths = evaluate_policy(
            LookTwiceThenSayZero(), vec, n_eval_episodes=10, return_episode_rewards=True
        )
        assert rewards == [score] * 10 and lengths == [3] * 10


def test_sb3_render_and_video_recorder(tmp_path):
    from stable_baselines3.common.vec_env import VecVideoRecorder

    vec = make_sb3_vec_env(ENV_ID, 4, 4, seed=0, render_mode="rgb_array")
    frames = vec.get_images()  # before any reset too (VecVideoRecorder renders when made)
    assert len(frames) == 4 and all(f.dtype == np.uint8 and f.shape[2] == 3 for f in frames)
    assert vec.render().shape[0] > frames[0].shape[0]  # SB3 tiles the 4 frames
    recorder = VecVideoRecorder(
        vec, str(tmp_path), record_video_trigger=lambda step: step == 0, video_length=6
    )
    recorder.reset()
    for _ in range(8):
        recorder.step(np.full(4, 5))
    recorder.close()
    assert [p.suffix for p in tmp_path.iterdir()] == [".mp4"]
    with pytest.raises(ValueError, match="render_mode"):
        make_sb3_vec_env(ENV_ID, 2, 4, seed=0).get_images()


def test_the_same_resume_trains_the_same_way(tmp_path, monkeypatch):
    """SB3 zips keep no RNG state (and SB3's load reseeds a model with the run's seed, which
    would replay the start's random streams): a resumed run is reseeded from its seed and the
    steps done (``train_sb3.resume_seed``), so two resumes of one checkpoint give the same
    model."""
    from stable_baselines3.common.base_class import BaseAlgorithm

    seeds = []
    reseed = BaseAlgorithm.set_random_seed
    monkeypatch.setattr(
        BaseAlgorithm,
        "set_random_seed",
        lambda self, seed=None: (seeds.append(seed), reseed(self, seed)),
    )
    common = ["--algo", "ppo", "--n-envs", "4", "--n-steps", "16", "--threads", "1",
              "--device", "cpu", "--log-dir", "", "--eval-freq", "0", "--val-size", "8",
              "--eval-envs", "8"]  # fmt: skip
    assert train_sb3.main([*common, "--timesteps", "64", "--save-dir", str(tmp_path / "a")]) == 0
    first = tmp_path / "a" / f"{ENV_ID}-ppo-s0"
    second = tmp_path / "b"
    second.mkdir()
    for name in ("last.zip", "run.json"):
        (second / name).write_bytes((first / name).read_bytes())
    weights = []
    for run in (first, second):
        assert (
            train_sb3.main([*common, "--timesteps", "128", "--resume", str(run / "last.zip")]) == 0
        )
        cls, _ = algorithm_class("ppo")
        weights.append(cls.load(run / "last.zip", device="cpu").policy.state_dict())
    for key, value in weights[0].items():
        torch.testing.assert_close(value, weights[1][key], rtol=0, atol=0)
    assert seeds.count(train_sb3.resume_seed(0, 64)) == 2 and train_sb3.resume_seed(0, 64) != 0
