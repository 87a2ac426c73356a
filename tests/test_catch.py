"""GlimpseCatch-v0: the game's rules, fixed test games, both faces, autoreset, bad input."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import ram_env  # noqa: F401  (registers the ids)
from ram_env.catch import NUM_TEST_GAMES, CatchVectorEnv

STEPS = 23  # a 24x24 screen: the ball falls 23 rows


def vector(num_envs=8, **kwargs):
    return gym.make_vec(
        "GlimpseCatch-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    )


def landing_columns(core, side=24):
    """Where each ball will land, by playing the rules forward (bounces included)."""
    column, drift = core.ball_col.clone(), core.ball_vx.clone()
    for _ in range(side - 1 - int(core.ball_row.max())):
        column = column + drift
        low, high = column < 0, column > side - 1
        column = torch.where(low, -column, torch.where(high, 2 * (side - 1) - column, column))
        drift = torch.where(low | high, -drift, drift)
    return column.round().long()


def test_single_env_passes_gymnasiums_checker_and_renders():
    env = gym.make("GlimpseCatch-v0", render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=False)
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


def test_a_game_lasts_the_fall_and_pays_only_a_catch_at_the_end():
    env = gym.make("GlimpseCatch-v0").unwrapped
    obs, info = env.reset(seed=0, options={"index": 5})
    assert info == {} and obs["glimpse"].shape == (3, 6, 6)
    for step in range(1, STEPS + 1):
        obs, reward, terminated, truncated, info = env.step({"location": [0.0, 0.0], "move": 1})
        assert terminated == (step == STEPS) and not truncated
        if step < STEPS:
            assert reward == 0.0 and info == {}
    assert info == {"index": 5, "glimpses": STEPS} and reward in (0.0, 1.0)
    with pytest.raises(RuntimeError, match="finished game"):
        env.step({"location": [0.0, 0.0], "move": 1})


def test_the_screen_shows_one_ball_and_the_paddle_and_the_ball_stays_inside():
    envs = vector(64).unwrapped
    envs.reset(seed=1)
    for _ in range(STEPS):
        screens = envs.canvases
        assert ((screens[:, :-1] == 255).sum(dim=(1, 2)) == 1).all()  # the ball, above the row
        assert ((screens[:, -1] == 255).sum(dim=1) >= 1).all()  # the paddle (and the ball)
        assert (envs.core.ball_col >= 0).all() and (envs.core.ball_col <= 23).all()
        envs.step({"location": torch.zeros(64, 2), "move": torch.randint(3, (64,))})


def test_the_test_games_are_fixed_and_a_perfect_player_catches_every_one():
    envs = vector(NUM_TEST_GAMES, split="test").unwrapped
    envs.reset(seed=0, options={"indices": torch.arange(NUM_TEST_GAMES)})
    start = (envs.core.ball_col.clone(), envs.core.ball_vx.clone())
    land = landing_columns(envs.core)
    for _ in range(STEPS):
        paddle = envs.core.paddle
        move = torch.where(land < paddle, 0, torch.where(land > paddle + 1, 2, 1))
        _, reward, terminated, _, info = envs.step({"location": torch.zeros(1000, 2), "move": move})
    assert terminated.all() and reward.mean() == 1.0
    assert info["index"].tolist() == list(range(NUM_TEST_GAMES))
    again = vector(4, split="test").unwrapped  # another batch, another seed: the same games
    again.reset(seed=9, options={"indices": torch.tensor([0, 1, 998, 999])})
    torch.testing.assert_close(again.core.ball_col, start[0][[0, 1, 998, 999]])
    torch.testing.assert_close(again.core.ball_vx, start[1][[0, 1, 998, 999]])
    # A player that never moves catches only the balls that land under the centre.
    envs.reset(seed=0, options={"indices": torch.arange(NUM_TEST_GAMES)})
    for _ in range(STEPS):
        stay = torch.ones(1000, dtype=torch.long)
        _, reward, *_ = envs.step({"location": torch.zeros(1000, 2), "move": stay})
    assert 0.0 < reward.mean() < 0.3


def test_single_and_vector_env_play_the_same_game():
    single = gym.make("GlimpseCatch-v0", split="test").unwrapped
    envs = vector(1, split="test").unwrapped
    a, _ = single.reset(seed=3, options={"index": 17})
    b, _ = envs.reset(seed=3, options={"indices": torch.tensor([17])})
    generator = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        np.testing.assert_array_equal(a["glimpse"], b["glimpse"][0].numpy())
        location = torch.rand(2, generator=generator) * 2 - 1
        move = int(torch.randint(3, (1,), generator=generator))
        a, ra, ta, _, _ = single.step({"location": location.numpy(), "move": move})
        b, rb, tb, _, _ = envs.step({"location": location[None], "move": torch.tensor([move])})
        assert (ra, ta) == (rb.item(), tb.item())


@pytest.mark.parametrize("mode", ["NEXT_STEP", "SAME_STEP", "DISABLED"])
def test_every_autoreset_mode(mode):
    envs = vector(3, autoreset_mode=mode)
    envs.reset(seed=0)
    action = {"location": torch.zeros(3, 2), "move": torch.ones(3, dtype=torch.long)}
    for _ in range(STEPS):
        _, _, terminated, _, info = envs.step(action)
    assert terminated.all()
    if mode == "SAME_STEP":
        assert info["_final_info"].all() and (envs.unwrapped.episode_steps == 0).all()
    elif mode == "NEXT_STEP":
        _, reward, terminated, _, _ = envs.step(action)
        assert not terminated.any() and (reward == 0).all()
    else:
        with pytest.raises(ValueError, match="finished"):
            envs.step(action)


@pytest.mark.parametrize(
    "action, message",
    [
        ({"location": torch.zeros(2, 2), "move": torch.tensor([0, 3])}, r"move'\] is outside"),
        ({"location": torch.zeros(2, 2), "move": torch.tensor([0.0, 1.0])}, "integer tensor"),
        ({"location": torch.zeros(2, 3), "move": torch.tensor([0, 1])}, "shape"),
        ({"location": torch.zeros(2, 2), "label": torch.tensor([0, 1])}, "'move'"),
    ],
)
def test_bad_actions_are_named(action, message):
    envs = vector(2)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        envs.step(action)


def test_bad_settings_and_unknown_keywords():
    with pytest.raises(TypeError, match="unexpected keyword argument 'label'"):
        gym.make("GlimpseCatch-v0", label=3)
    with pytest.raises(ValueError, match="paddle_width"):
        gym.make("GlimpseCatch-v0", paddle_width=30)
    with pytest.raises(ValueError, match="max_drift"):
        gym.make("GlimpseCatch-v0", max_drift=3)
    with pytest.raises(ValueError, match=r"move'\] must be an integer in \[0, 2\]"):
        env = gym.make("GlimpseCatch-v0").unwrapped
        env.reset(seed=0)
        env.step({"location": [0.0, 0.0], "move": 5})
    assert isinstance(vector(2).unwrapped, CatchVectorEnv)
    for flag in (1, 0.0, "yes"):
        with pytest.raises(ValueError, match="fixed_games must be True, False or None"):
            gym.make("GlimpseCatch-v0", fixed_games=flag)
    with pytest.raises(ValueError, match="samples must be integers"):
        vector(2).reset(seed=0, options={"samples": "a"})


def test_the_discrete_adapters_play_catch_with_fixation_and_move_in_one_action():
    from ram_env.wrappers import decode_game_actions, grid_centres, make_discrete_env

    decoded = decode_game_actions(torch.tensor([0, 5, 47]), 4, 3)
    assert decoded["move"].tolist() == [0, 2, 2]
    assert torch.equal(decoded["location"], grid_centres(4)[[0, 1, 15]])
    env = make_discrete_env("GlimpseCatch-v0", grid=4)
    assert env.action_space == gym.spaces.Discrete(4 * 4 * 3)
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env)
    env.reset(seed=0)
    for _ in range(STEPS):
        obs, reward, terminated, _, info = env.step(4)  # cell 1, move left
    assert terminated and info["glimpses"] == STEPS and info["is_success"] == (reward > 0)
    assert obs["time"].tolist() == [1.0]


def test_sb3_trains_and_scores_on_the_fixed_test_games():
    from agents.sb3 import algorithm_class, evaluate_sb3_episodes, make_sb3_vec_env

    vec = make_sb3_vec_env("GlimpseCatch-v0", 4, 4, seed=0, holdout=0.1)
    cls, policy = algorithm_class("ppo")
    model = cls(policy, vec, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(128)
    caught = evaluate_sb3_episodes(model, "GlimpseCatch-v0", {}, "test", range(40), 16)
    assert caught.shape == (40,) and caught.dtype == bool
    again = evaluate_sb3_episodes(model, "GlimpseCatch-v0", {}, "test", range(40), 8)
    np.testing.assert_array_equal(caught, again)  # the same 40 games, whatever the batch
    assert isinstance(vec.venv.unwrapped.core.image_pool, range)  # 2**31 games: no tensor
