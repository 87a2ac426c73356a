"""The Discrete action adapter: grid centres, labels, early end, the cap, checkers."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import ram_env  # noqa: F401  (registers the ids)
from ram_env.wrappers import (
    DiscreteGlimpseActions,
    DiscreteGlimpseVectorActions,
    check_grid,
    decode_discrete_actions,
    discrete_action_space,
    grid_centres,
    make_discrete_env,
    make_discrete_vec,
)

ENV_ID = "GlimpseMNIST-v0"
T = 6  # GlimpseMNIST-v0's n_glimpses
G = 4
FIX = G * G  # first label action


def test_grid_centres_are_cell_centres_row_major():
    centres = grid_centres(4)
    assert centres.shape == (16, 2) and centres.dtype == torch.float32
    values = [-0.75, -0.25, 0.25, 0.75]
    for a in range(16):
        row, col = divmod(a, 4)
        assert centres[a].tolist() == [values[col], values[row]]  # (x, y): x is the column
    assert grid_centres(3)[4].tolist() == [0.0, 0.0]  # odd grid: the middle cell is the centre
    assert grid_centres(1).tolist() == [[0.0, 0.0]]
    with pytest.raises(ValueError, match="grid"):
        grid_centres(0)


def test_decode_maps_fixations_and_labels():
    current = torch.tensor([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [-0.1, -0.2]])
    actions = torch.tensor([0, 15, FIX + 7, FIX])
    location, label, answer = decode_discrete_actions(actions, G, current)
    assert answer.tolist() == [False, False, True, True]
    assert label[2:].tolist() == [7, 0]
    assert location[0].tolist() == [-0.75, -0.75]
    assert location[1].tolist() == [0.75, 0.75]
    # An answer keeps the fixation where it is.
    assert torch.equal(location[2:], current[2:])


@pytest.mark.parametrize("bad", [[-1], [FIX + 10], [0.5]])
def test_decode_rejects_bad_actions(bad):
    with pytest.raises(ValueError, match="discrete actions"):
        decode_discrete_actions(torch.tensor(bad), G, torch.zeros(1, 2))


@pytest.mark.parametrize("grid", [4.5, 4.0, 0, -2, True, "4"])
def test_a_bad_grid_is_an_error_not_rounded(grid):
    for make in (check_grid, discrete_action_space, grid_centres):
        with pytest.raises(ValueError, match="grid must be an integer in \\[1, 64\\]"):
            make(grid)
    with pytest.raises(ValueError, match="grid must be an integer in \\[1, 64\\]"):
        make_discrete_env(ENV_ID, grid=grid)


def test_check_grid_returns_a_python_int():
    assert check_grid(np.int64(3)) == 3 and type(check_grid(np.int64(3))) is int


def make_env(**kwargs):
    return make_discrete_env(ENV_ID, grid=G, **kwargs)


def test_spaces_and_observation():
    env = make_env()
    assert env.action_space == gym.spaces.Discrete(FIX + 10)
    obs, info = env.reset(seed=0)
    assert info == {}
    assert set(obs) == {"glimpse", "location", "time"}
    assert obs["glimpse"].shape == (64,) and obs["glimpse"].dtype == np.float32
    assert obs["time"].tolist() == pytest.approx([1 / T])
    assert obs in env.observation_space
    # The flat glimpse is the core's (k, g, g) glimpse in C order.
    glimpse = env.unwrapped.core.glimpses[0].numpy()
    np.testing.assert_array_equal(obs["glimpse"].reshape(1, 8, 8), glimpse)


def test_fixation_actions_move_to_grid_centres():
    env = make_env()
    env.reset(seed=1)
    centres = grid_centres(G).numpy()
    for t, a in enumerate([0, 5, 15, 10], start=2):
        obs, reward, terminated, truncated, info = env.step(a)
        np.testing.assert_array_equal(obs["location"], centres[a])
        assert (reward, terminated, truncated, info) == (0.0, False, False, {})
        assert obs["time"].tolist() == pytest.approx([t / T])
        assert obs in env.observation_space


def _true_label(seed: int, n_fixations: int) -> int:
    env = make_env()
    env.reset(seed=seed)
    for _ in range(n_fixations):
        env.step(0)
    return env.step(FIX)[4]["label"]


@pytest.mark.parametrize("n_fixations", [0, 2, T - 1])
def test_label_ends_the_episode_at_once_and_is_scored(n_fixations):
    label = _true_label(seed=3, n_fixations=n_fixations)
    for answer, expected in ((label, 1.0), ((label + 1) % 10, 0.0)):
        env = make_env()
        env.reset(seed=3)
        for _ in range(n_fixations):
            assert not env.step(1)[2]
        location = env.unwrapped.core.fixations[0].clone()
        obs, reward, terminated, truncated, info = env.step(FIX + answer)
        assert terminated and not truncated and reward == expected
        assert info["label"] == label and info["is_success"] == (expected == 1.0)
        assert info["glimpses"] == n_fixations + 1
        assert 0 <= info["index"] < env.unwrapped.core.num_images
        # The answer does not move the fixation; the terminal observation is in the space.
        assert torch.equal(env.unwrapped.core.fixations[0], location)
        assert obs in env.observation_space
        with pytest.raises(RuntimeError, match="finished"):
            env.step(FIX)


def test_the_cap_scores_a_fixation_as_wrong():
    env = make_env()
    env.reset(seed=4)
    for _ in range(T - 1):
        obs, reward, terminated, _, _ = env.step(3)
        assert not terminated
    assert obs["time"].tolist() == [1.0]  # the next action must be a label
    obs, reward, terminated, truncated, info = env.step(3)
    assert (reward, terminated, truncated) == (0.0, True, False)
    assert info["glimpses"] == T and info["is_success"] is False and "label" in info
    assert obs["time"].tolist() == [1.0]


def test_the_underlying_env_keeps_its_episode_length():
    """The wrapper never takes more core steps than n_glimpses (and the test split too)."""
    env = make_env(split="test", n_glimpses=3)
    env.reset(seed=0, options={"index": 5})
    assert not env.step(0)[2] and not env.step(0)[2]
    assert env.step(0)[2]
    assert env.unwrapped.core.steps.item() == 3
    assert env.reset(options={"index": 7})[0]["time"].tolist() == pytest.approx([1 / 3])
    assert env.step(FIX + 2)[4]["index"] == 7


def test_bad_actions_raise():
    env = make_env()
    env.reset(seed=0)
    for bad in (-1, FIX + 10, 1.5, True, np.array([1, 2])):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)
    env.step(np.int64(2))  # numpy scalars and 0-d arrays are fine
    env.step(np.array(2))


def test_needs_a_glimpse_env():
    with pytest.raises(TypeError, match="GlimpseEnv"):
        DiscreteGlimpseActions(gym.make("CartPole-v1"))


def test_sb3_check_env_passes_without_warnings():
    from stable_baselines3.common.env_checker import check_env

    for env_id, grid in ((ENV_ID, 4), ("GlimpseTranslatedMNIST-v0", 5)):
        env = make_discrete_env(env_id, grid=grid)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env, warn=True)
        assert [str(w.message) for w in caught] == []


def test_gymnasium_check_env_passes():
    from gymnasium.utils.env_checker import check_env

    env = DiscreteGlimpseActions(gym.make(ENV_ID).unwrapped, grid=G)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    # Gymnasium always warns that a wrapped env is not the raw env; nothing else.
    messages = [str(w.message) for w in caught]
    assert all("different from the unwrapped" in message for message in messages), messages


def test_same_seed_same_episodes():
    def play(seed):
        env = make_env()
        rng = np.random.default_rng(0)
        out = [env.reset(seed=seed)[0]]
        for _ in range(20):
            obs, reward, terminated, _, _ = env.step(int(rng.integers(FIX + 10)))
            out.append((obs, reward))
            if terminated:
                out.append(env.reset()[0])
        return out

    a, b = play(7), play(7)
    assert repr(a) == repr(b)
    assert repr(a) != repr(play(8))


# --- the batched twin: DiscreteGlimpseVectorActions (torch in and out) ------------------------


def test_vector_adapter_is_torch_in_and_out_and_matches_the_single_wrapper():
    vector = make_discrete_vec(ENV_ID, 1, G, autoreset_mode="SAME_STEP")
    single = make_env()
    assert vector.single_action_space == single.action_space
    assert vector.single_observation_space == single.observation_space
    a, _ = vector.reset(seed=3)
    b, _ = single.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(30):
        assert all(isinstance(value, torch.Tensor) for value in a.values())
        for key in b:
            np.testing.assert_array_equal(a[key][0].numpy(), b[key])
        action = int(rng.integers(FIX + 10))
        a, reward, terminated, _, info = vector.step(torch.tensor([action]))
        b, single_reward, single_terminated, _, single_info = single.step(action)
        assert (reward.item(), terminated.item()) == (single_reward, single_terminated)
        if single_terminated:
            final = info["final_info"]
            for key in ("label", "index", "glimpses", "is_success"):
                assert final[key][0].item() == single_info[key]
            for key, value in info["final_obs"].items():
                np.testing.assert_array_equal(value[0].numpy(), b[key])
            assert info["final_obs"]["time"].tolist() == [[1.0]]
            b, _ = single.reset()  # the vector env reset itself in the same step


def test_vector_adapter_next_step_mode_and_the_cap():
    envs = make_discrete_vec(ENV_ID, 3, G)  # NEXT_STEP
    envs.reset(seed=0)
    truth = envs.unwrapped.core.targets.clone()
    obs, reward, terminated, _, info = envs.step(torch.tensor([FIX + int(truth[0]), 2, FIX + 9]))
    assert terminated.tolist() == [True, False, True] and info["_is_success"].tolist() == [
        True, False, True]  # fmt: skip
    assert info["is_success"][0] and reward[0] == 1.0
    assert obs["time"][:, 0].tolist() == pytest.approx([1.0, 2 / T, 1.0])
    obs, reward, terminated, _, _ = envs.step(torch.tensor([0, 0, 0]))  # rows 0, 2 restart
    assert not terminated.any() and obs["time"][:, 0].tolist() == pytest.approx(
        [1 / T, 3 / T, 1 / T])  # fmt: skip
    for _ in range(T - 2):
        obs, reward, terminated, _, info = envs.step(torch.tensor([5, 5, 5]))
    assert terminated.tolist() == [False, True, False]  # row 1 hit the cap with a fixation
    assert reward[1] == 0.0 and not info["is_success"][1] and info["glimpses"][1] == T
    with pytest.raises(ValueError, match="discrete actions"):
        envs.step(torch.tensor([0, 0, FIX + 10]))


def test_vector_adapter_needs_a_glimpse_vector_env_and_a_reset():
    with pytest.raises(TypeError, match="GlimpseVectorEnv"):
        DiscreteGlimpseVectorActions(gym.make_vec("CartPole-v1", 2))
    envs = make_discrete_vec(ENV_ID, 2, G)
    with pytest.raises(RuntimeError, match="reset"):
        envs.step(torch.zeros(2, dtype=torch.long))
