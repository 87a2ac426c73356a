"""The RAM agent on Catch (agents.game) and train_reinforce.py --env GlimpseCatch-v0."""

import json

import gymnasium as gym
import pytest
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
    assert set(losses) == {"loss", "reinforce", "baseline", "entropy"}
    assert torch.isfinite(losses["loss"]) and 0 < losses["entropy"] <= torch.log(torch.tensor(3.0))
    bonus = game_loss(played, entropy_weight=0.5)
    total = losses["loss"] - 0.5 * played.entropy.sum(dim=1).mean()
    assert torch.allclose(bonus["loss"], total)
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


def test_the_catch_recipe_looks_at_the_centre_first_and_keeps_its_moves_uncertain():
    args = train_reinforce.parse_args(["--env", "GlimpseCatch-v0"])
    assert (args.entropy_weight, args.location_init) == (0.02, "center")
    model = RAM(
        RAMConfig(**train_reinforce.run_config(args)["model"] | {"glimpse_shape": (3, 6, 6)})
    )
    hidden = torch.randn(5, model.config.core_size)
    assert torch.equal(model.location_mean(hidden), torch.zeros(5, 2))
    digits = train_reinforce.parse_args([])
    assert (digits.entropy_weight, digits.location_init) == (0.0, "random")
    assert RAM(RAMConfig()).location_mean(torch.randn(5, 256)).abs().sum() > 0


def test_bad_entropy_and_location_init_settings_are_refused(capsys):
    for flags, message in (
        (["--env", "GlimpseCatch-v0", "--entropy-weight", "-1"], "--entropy-weight must be a"),
        (["--env", "GlimpseCatch-v0", "--entropy-weight", "inf"], "--entropy-weight must be a"),
        (["--entropy-weight", "0.1"], "--entropy-weight: a setting of the games"),
        (["--location-init", "middle"], "location-init"),
    ):
        try:
            train_reinforce.parse_args(flags)
        except SystemExit:
            pass
        else:  # pragma: no cover
            raise AssertionError(f"{flags} accepted")
        assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match="location_init must be 'random' or 'center'"):
        RAMConfig(location_init="middle")


def test_help_shows_the_tasks_own_defaults(capsys):
    with pytest.raises(SystemExit):
        train_reinforce.parse_args(["--env", "GlimpseCatch-v0", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: 23)" in shown and "(default: 0.02)" in shown  # glimpses, entropy weight


def test_runs_saved_before_the_entropy_and_location_settings_still_resume(tmp_path):
    # A digit run predates both settings; a Catch run saved its centre start in the model only.
    for argv, missing in (([], ("entropy_weight", "location_init")), (CATCH, ("location_init",))):
        current = train_reinforce.run_config(train_reinforce.parse_args(argv))
        saved = {k: v for k, v in current.items() if k not in missing}
        if not argv:
            saved["model"] = {k: v for k, v in current["model"].items() if k != "location_init"}
        train_reinforce.check_resumable(saved, current, tmp_path / "last.pt")  # no error
    old_catch = {k: v for k, v in current.items() if k != "entropy_weight"}  # trained without
    with pytest.raises(train_reinforce.CheckpointError, match=r"entropy_weight: saved 0\.0"):
        train_reinforce.check_resumable(old_catch, current, tmp_path / "last.pt")
    elsewhere = {**saved, "model": {**current["model"], "location_init": "random"}}
    with pytest.raises(train_reinforce.CheckpointError, match="location_init"):
        train_reinforce.check_resumable(elsewhere, current, tmp_path / "last.pt")


CATCH = ["--env", "GlimpseCatch-v0"]
