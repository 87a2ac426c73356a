"""The RAM agent on Catch (agents.game) and train_reinforce.py --env GlimpseCatch-v0."""

import json

import gymnasium as gym
import torch

import ram_env  # noqa: F401  (registers the ids)
import train_reinforce
from agents.game import evaluate_game, game_loss, game_rollout
from agents.ram import RAM, RAMConfig

STEPS = 23


def small_ram():
    torch.manual_seed(0)
    config = RAMConfig(glimpse_shape=(3, 6, 6), core="lstm", num_classes=3, core_size=32,
                       glimpse_hidden=16, location_hidden=16, glimpse_features=32,
                       policy_hidden=16, glimpse_mean=0.0, glimpse_std=1.0)  # fmt: skip
    return RAM(config)


def catch(num_envs, split="train"):
    return gym.make_vec(
        "GlimpseCatch-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", split=split
    ).unwrapped


def test_a_rollout_moves_and_looks_every_step_and_the_loss_is_reinforce_only():
    model, env = small_ram(), catch(4)
    env.reset(seed=0)
    played = game_rollout(model, env, torch.arange(4), 0.1, torch.Generator().manual_seed(0),
                          keep_frames=True)  # fmt: skip
    assert played.log_pi.shape == played.baselines.shape == (4, STEPS)
    assert played.moves.shape == (4, STEPS) and played.fixations.shape == (4, STEPS, 2)
    assert played.glimpses.shape == (4, STEPS, 3, 6, 6) and played.screens.shape == (
        4,
        STEPS,
        24,
        24,
    )
    losses = game_loss(played)
    assert set(losses) == {"loss", "reinforce", "baseline"} and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert model.what.weight.grad.abs().sum() > 0  # the moves' REINFORCE reaches the glimpse net


def test_a_score_is_one_number_whatever_the_batch():
    model = small_ram()
    games = torch.arange(30)
    scores = {
        (batch, mean): evaluate_game(
            model, catch(batch, "test"), games, 0.1, seed=3, mean_policy=mean
        )
        for batch in (7, 30)
        for mean in (True, False)
    }
    assert scores[7, True] == scores[30, True] and scores[7, False] == scores[30, False]


def test_train_resume_and_test_catch_with_the_trainer(tmp_path, capsys):
    argv = ["--env", "GlimpseCatch-v0", "--train-subset", "64", "--batch-size", "32",
            "--eval-batch-size", "250", "--core-size", "32", "--glimpse-features", "32",
            "--threads", "1", "--plot-every", "1", "--lr-schedule", "plateau",
            "--ckpt-dir", str(tmp_path)]  # fmt: skip
    assert train_reinforce.main([*argv, "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "catch rate (%) over 1000 test games" in out and "mean policy" in out
    assert train_reinforce.main([*argv, "--epochs", "2", "--resume"]) == 0
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert [row["epoch"] for row in rows] == [1, 2]
    assert (tmp_path / "figures" / "epoch_002.gif").exists()
    saved = json.loads((tmp_path / "test.json").read_text())
    assert set(saved["catch_rate"]) == {"mean policy", "sampled"}
    args = train_reinforce.parse_args(["--env", "GlimpseCatch-v0"])
    assert (args.core, args.n_glimpses, args.patch_size, args.n_scales) == ("lstm", 23, 6, 3)


def test_validation_games_of_the_training_split_are_fixed_too():
    model = small_ram()
    games = torch.arange(2**31 - 40, 2**31 - 10)  # held-out training games

    def validation(batch):
        env = gym.make_vec("GlimpseCatch-v0", num_envs=batch, split="train", fixed_games=True,
                           vectorization_mode="vector_entry_point").unwrapped  # fmt: skip
        return evaluate_game(model, env, games, 0.1, seed=2, mean_policy=False)

    assert validation(7) == validation(30)


def test_digit_task_settings_are_refused_for_a_game(capsys):
    for flags in (["--M", "3"], ["--valid-size", "0.5"], ["--reinforce-weight", "0"]):
        try:
            train_reinforce.parse_args(["--env", "GlimpseCatch-v0", *flags])
        except SystemExit:
            pass
        else:  # pragma: no cover
            raise AssertionError(f"{flags} accepted")
        assert "settings of the digit tasks" in capsys.readouterr().err
