"""GlimpseEnv: registration, spaces, episodes, determinism, Gymnasium's checker, bad input."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import ram_env
from ram_env.datasets import load_split


def play(env, seed, actions):
    """Reset with ``seed`` and play ``actions``; return every observation, reward and info."""
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs, reward, terminated, truncated, info))
    return trace


def fixed_actions(n, label=3, seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"location": rng.uniform(-1, 1, 2).astype(np.float32), "label": label} for _ in range(n)
    ]


@pytest.mark.parametrize("env_id", sorted(ram_env.TASKS))
def test_check_env_passes_without_warnings(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


def test_make_with_module_prefix_and_kwargs():
    env = gym.make("ram_env:GlimpseMNIST-v0", n_glimpses=3, patch_size=5, n_scales=2)
    assert env.observation_space["glimpse"].shape == (2, 5, 5)
    assert env.action_space["label"].n == 10
    assert env.action_space["location"].shape == (2,)


@pytest.mark.parametrize("env_id", sorted(ram_env.TASKS))
def test_task_defaults_match_the_paper(env_id):
    env = gym.make(env_id).unwrapped
    config = env.config
    expected = {
        "GlimpseMNIST-v0": (28, 6, (1, 8, 8), 0),
        "GlimpseFashionMNIST-v0": (28, 6, (2, 8, 8), 0),
        "GlimpseTranslatedMNIST-v0": (60, 8, (3, 12, 12), 0),
        "GlimpseClutteredMNIST-v0": (60, 8, (3, 12, 12), 4),
        "GlimpseClutteredMNIST100-v0": (100, 8, (4, 12, 12), 8),
    }[env_id]
    assert (config.canvas_shape[0], config.n_glimpses, config.glimpse_shape) == expected[:3]
    assert config.clutter_count == expected[3]


def test_episode_length_reward_and_label_only_at_the_end():
    env = gym.make("GlimpseMNIST-v0").unwrapped
    _, train_labels = load_split("mnist", "train")
    _, info = env.reset(seed=0, options={"index": 7})
    assert info == {}
    true_label = int(train_labels[7])
    for step in range(1, 7):
        label = true_label if step == 6 else (true_label + 1) % 10
        _obs, reward, terminated, truncated, info = env.step(
            {"location": [0.0, 0.0], "label": label}
        )
        assert not truncated
        assert terminated == (step == 6)
        if step < 6:
            assert reward == 0.0 and info == {}
    assert reward == 1.0 and info == {"label": true_label, "index": 7, "glimpses": 6}
    env.reset(options={"index": 7})
    for _ in range(6):
        *_, info = env.step({"location": [0.0, 0.0], "label": (true_label + 1) % 10})
    assert info["label"] == true_label


def test_same_seed_same_episode_and_different_seed_differs():
    env = gym.make("GlimpseClutteredMNIST-v0").unwrapped
    first = play(env, 123, fixed_actions(8))
    second = play(env, 123, fixed_actions(8))
    other = play(env, 124, fixed_actions(8))
    np.testing.assert_array_equal(first[0]["glimpse"], second[0]["glimpse"])
    for a, b in zip(first[1:], second[1:], strict=True):
        np.testing.assert_array_equal(a[0]["glimpse"], b[0]["glimpse"])
        assert a[1:] == b[1:]
    assert not np.array_equal(first[0]["location"], other[0]["location"])


def test_observations_are_copies_not_views_of_the_env_state():
    env = gym.make("GlimpseMNIST-v0").unwrapped
    obs, _ = env.reset(seed=0)
    start = obs["location"].copy()
    obs["location"][:] = 0.5
    obs["glimpse"][:] = 1.0
    assert not np.array_equal(env.core.fixations[0].numpy(), obs["location"])
    np.testing.assert_array_equal(env._path[0], start)
    assert not env.core.glimpses.eq(1.0).all()


def test_location_is_clamped_and_start_can_be_the_centre():
    env = gym.make("GlimpseMNIST-v0", start="center").unwrapped
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["location"], [0.0, 0.0])
    obs, *_ = env.step({"location": np.array([3.0, -7.5], np.float32), "label": 0})
    np.testing.assert_array_equal(obs["location"], [1.0, -1.0])


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"location": [0.0, 0.0, 0.0], "label": 1}, r"shape \(2,\)"),
        ({"location": [np.nan, 0.0], "label": 1}, "finite"),
        ({"location": [0.0, 0.0], "label": 10}, r"label'\] must be an integer in \[0, 9\]"),
        ({"location": [0.0, 0.0], "label": -1}, r"label'\] must be an integer in \[0, 9\]"),
        ({"location": [0.0, 0.0], "label": 1.5}, "must be an int"),
        ({"location": [0.0, 0.0]}, "keys 'location' and 'label'"),
    ],
)
def test_bad_actions_raise_clear_errors(action, message):
    env = gym.make("GlimpseMNIST-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_step_after_the_end_and_before_reset_raise():
    env = gym.make("GlimpseMNIST-v0", n_glimpses=1).unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"location": [0.0, 0.0], "label": 0})
    env.reset(seed=0)
    env.step({"location": [0.0, 0.0], "label": 0})
    with pytest.raises(RuntimeError, match="finished episode"):
        env.step({"location": [0.0, 0.0], "label": 0})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "valid"}, "split must be one of"),
        ({"dataset": "cifar"}, "dataset must be one of"),
        ({"patch_size": 0}, "patch_size must be an integer >= 1"),
        ({"canvas_size": 20}, "at least 28"),
        ({"canvas_size": (60.7, 60)}, "canvas_size must be an int"),
        ({"canvas_size": 60.0}, "canvas_size must be an int"),
        ({"fixed_canvases": "false"}, "fixed_canvases must be"),
        ({"fixed_canvases": 1}, "fixed_canvases must be"),  # 1 in (True, False) is true
        ({"fixed_canvases": 0.0}, "fixed_canvases must be"),
        ({"start": "left"}, "start must be one of"),
        ({"n_glimpse": 3}, "unexpected keyword argument .n_glimpse."),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        gym.make("GlimpseMNIST-v0", **kwargs)


def test_bad_reset_options_raise():
    env = gym.make("GlimpseMNIST-v0").unwrapped
    with pytest.raises(ValueError, match=r"index'\] must be an integer in \[0, \d+\]"):
        env.reset(options={"index": 10**6})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"indx": 1})


def test_missing_dataset_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RAM_ENV_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="mnist"):
        gym.make("GlimpseMNIST-v0", data_root=str(tmp_path / "nothing-here"))


def test_an_answer_entry_ends_the_episode_early_and_is_scored():
    env = gym.make("GlimpseMNIST-v0").unwrapped
    env.reset(seed=0, options={"index": 3})
    true_label = int(load_split("mnist", "train")[1][3])
    env.step({"location": [0.0, 0.0], "label": 0})
    _, reward, terminated, _, info = env.step(
        {"location": [0.0, 0.0], "label": true_label, "answer": True}
    )
    assert terminated and reward == 1.0
    assert info == {"label": true_label, "index": 3, "glimpses": 2}
    with pytest.raises(RuntimeError, match="finished episode"):
        env.step({"location": [0.0, 0.0], "label": 0})
    # Once "answer" is given, only answers are scored: the cap without one scores 0.
    env.reset(seed=0, options={"index": 3})
    for _ in range(6):
        *_, reward, terminated, _, info = env.step(
            {"location": [0.0, 0.0], "label": true_label, "answer": False}
        )
    assert terminated and reward == 0.0 and info["glimpses"] == 6
    with pytest.raises(RuntimeError, match="finished episode"):
        env.step({"location": [0.0, 0.0], "label": 0})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="must be a bool"):
        env.step({"location": [0.0, 0.0], "label": 0, "answer": 1})


BAD_LOCATIONS = [
    [True, False],
    ["0.2", "-0.1"],
    np.array([1 + 2j, 0j]),
    np.array([0.1, None], dtype=object),
]


@pytest.mark.parametrize("location", BAD_LOCATIONS)
def test_locations_that_are_not_real_numbers_are_refused_by_both_faces(location):
    env = gym.make("GlimpseMNIST-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action\['location'\]"):
        env.step({"location": location, "label": 3})
    vector = gym.make_vec("GlimpseMNIST-v0", num_envs=1, vectorization_mode="vector_entry_point")
    vector.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions\['location'\]"):
        vector.step({"location": np.asarray([location]), "label": torch.zeros(1, dtype=torch.long)})


def test_a_huge_finite_location_is_clamped_to_the_border_by_both_faces():
    env = gym.make("GlimpseMNIST-v0")
    env.reset(seed=0)
    obs, *_ = env.step({"location": np.array([1e39, -1e300]), "label": 3})
    np.testing.assert_array_equal(obs["location"], [1.0, -1.0])
    vector = gym.make_vec("GlimpseMNIST-v0", num_envs=1, vectorization_mode="vector_entry_point")
    vector.reset(seed=0)
    obs, *_ = vector.step(
        {
            "location": torch.tensor([[1e39, -1e300]], dtype=torch.float64),
            "label": torch.zeros(1, dtype=torch.long),
        }
    )
    torch.testing.assert_close(obs["location"], torch.tensor([[1.0, -1.0]]))


@pytest.mark.parametrize(
    ("make", "owner"),
    [
        (lambda **kw: gym.make("GlimpseMNIST-v0", **kw), "GlimpseEnv"),
        (lambda **kw: gym.make("GlimpseCatch-v0", **kw), "CatchEnv"),
        (lambda **kw: gym.make_vec("GlimpseTranslatedMNIST-v0", 2, "sync", **kw), "GlimpseEnv"),
        (
            lambda **kw: gym.make_vec("GlimpseMNIST-v0", 2, "vector_entry_point", **kw),
            "GlimpseVectorEnv",
        ),
        (
            lambda **kw: gym.make_vec("GlimpseCatch-v0", 2, "vector_entry_point", **kw),
            "CatchVectorEnv",
        ),
    ],
)
def test_unknown_keyword_uses_pythons_wording(make, owner):
    """Python's own words, naming the constructor that was called: TorchRL's GymEnv drops a
    keyword it probes (frameskip) only on this message."""
    with pytest.raises(
        TypeError,
        match=rf"^{owner}\.__init__\(\) got an unexpected keyword argument 'frameskip' \(known: ",
    ):
        make(frameskip=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"canvas_size": [60]}, "canvas_size must be an int or"),
        ({"n_scales": 12}, "retina's largest square is 16384 px"),
        ({"device": "meta"}, "device must be 'auto', 'cpu', 'cuda'"),
        ({"device": "xyz"}, "device must be 'auto', 'cpu', 'cuda'"),
    ],
)
def test_bad_config_names_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make("GlimpseMNIST-v0", **kwargs)


def test_seeds_and_indices_out_of_range_are_range_errors():
    env = gym.make("GlimpseMNIST-v0")
    for seed in (2**64, 2**100, True):
        with pytest.raises(ValueError, match="seed must be"):
            env.reset(seed=seed)
    with pytest.raises(ValueError, match=r"in \[0, \d+\]"):
        env.reset(options={"index": 2**63})
    vector = gym.make_vec("GlimpseMNIST-v0", num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(ValueError, match="seed must be below 2"):
        vector.reset(seed=2**64)
    with pytest.raises(ValueError, match="image indices must be integers"):
        vector.reset(seed=0, options={"indices": [2**63, 1]})
    for num_envs in (2.5, "3", True, 0):
        with pytest.raises(ValueError, match="num_envs must be an int"):
            gym.make_vec(
                "GlimpseMNIST-v0", num_envs=num_envs, vectorization_mode="vector_entry_point"
            )
    numpy_count = gym.make_vec(
        "GlimpseMNIST-v0", num_envs=np.int64(2), vectorization_mode="vector_entry_point"
    )
    assert numpy_count.num_envs == 2 and type(numpy_count.num_envs) is int
    with pytest.raises(ValueError, match="validate_actions must be True or False"):
        gym.make_vec(
            "GlimpseMNIST-v0", num_envs=2, vectorization_mode="vector_entry_point",
            validate_actions="no",  # a non-empty string is truthy: it would have checked
        )  # fmt: skip


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseCatch-v0"])
def test_both_numpy_faces_take_torch_actions_as_they_take_numpy_ones(env_id):
    """A torch location (any float dtype, bfloat16 too, or one that requires grad) and a 0-d
    torch choice act as their numpy values do, in ``GlimpseEnv`` and ``CatchEnv`` alike."""
    choice = "label" if env_id in ram_env.TASKS else "move"
    weight = torch.zeros(2, requires_grad=True)
    torch_actions = [
        {"location": torch.tensor([0.25, -0.5], dtype=torch.bfloat16), choice: torch.tensor(1)},
        {"location": torch.tanh(weight + 0.5), choice: torch.tensor(2, dtype=torch.int32)},
    ]
    numpy_actions = [
        {"location": np.array([0.25, -0.5]), choice: 1},
        {"location": np.tanh(np.full(2, 0.5)), choice: 2},
    ]
    traces = [play(gym.make(env_id), 3, actions) for actions in (torch_actions, numpy_actions)]
    for (obs_t, *rest_t), (obs_n, *rest_n) in zip(traces[0][1:], traces[1][1:], strict=True):
        np.testing.assert_array_equal(obs_t["location"], obs_n["location"])
        np.testing.assert_array_equal(obs_t["glimpse"], obs_n["glimpse"])
        assert rest_t[:3] == rest_n[:3]
    env = gym.make(env_id)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=rf"action\['{choice}'\] must be an integer"):
        env.step({"location": [0.0, 0.0], choice: torch.tensor([1, 2])})


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseCatch-v0"])
def test_a_sample_option_past_int64_is_named(env_id):
    env = gym.make(env_id)
    with pytest.raises(ValueError, match=r"options\['sample'\] must be an integer"):
        env.reset(seed=0, options={"sample": 2**63})
    env.reset(seed=0, options={"sample": 2**63 - 1})
