"""benchmarks/compare_agents.py and sb3_sweep.py: curves, summary, figure, resumable cells."""

from __future__ import annotations

import csv
import importlib.util
import pathlib
import sys

import pytest
import torch

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


TINY = ["--steps", "3072", "--points", "2", "--eval-images", "32", "--eval-envs", "16"]


def rows(path):
    with open(path) as file:
        return list(csv.DictReader(file))


def test_curves_summary_and_figure_for_several_agents_and_seeds(tmp_path, capsys):
    compare = load("compare_agents")
    argv = [*TINY, "--agents", "ram", "ppo-stack", "--seeds", "0", "1", "--out", str(tmp_path)]
    assert compare.main(argv) == 0
    folder = tmp_path / "GlimpseMNIST" / "steps"
    for name in ("ram_s0", "ram_s1", "ppo-stack_s0", "ppo-stack_s1"):
        curve = rows(folder / f"{name}.csv")
        assert [list(row) for row in curve] == [list(compare.COLUMNS)] * 2
        steps = [int(row["env_steps"]) for row in curve]
        assert 1536 <= steps[0] <= steps[1] and steps[1] >= 3072  # SB3 stops at a rollout end
        assert all(0 <= float(row["test_error"]) <= 100 for row in curve)
    summary = rows(folder / "summary.csv")
    assert [row["agent"] for row in summary] == ["ram", "ppo-stack"]
    assert all(row["seeds"] == "2" for row in summary)
    table = (folder / "table.md").read_text()
    assert "| ram | 2 |" in table and "| ppo-stack | 2 |" in table
    assert (folder / "curves.png").stat().st_size > 0


def test_an_interrupted_cell_continues_from_its_last_point_exactly(tmp_path, monkeypatch, capsys):
    compare = load("compare_agents")
    straight = tmp_path / "straight"
    assert compare.main([*TINY, "--agents", "ram", "--seeds", "0", "--out", str(straight)]) == 0
    expected = rows(straight / "GlimpseMNIST" / "steps" / "ram_s0.csv")

    calls = {"n": 0}
    evaluate = compare.RamLearner.evaluate

    def evaluate_then_stop(self, indices):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the second point is never recorded
        return evaluate(self, indices)

    interrupted = tmp_path / "interrupted"
    argv = [*TINY, "--agents", "ram", "--seeds", "0", "--out", str(interrupted)]
    monkeypatch.setattr(compare.RamLearner, "evaluate", evaluate_then_stop)
    with pytest.raises(KeyboardInterrupt):
        compare.main(argv)
    assert len(rows(interrupted / "GlimpseMNIST" / "steps" / "ram_s0.csv")) == 1
    monkeypatch.setattr(compare.RamLearner, "evaluate", evaluate)
    assert compare.main(argv) == 0
    resumed = rows(interrupted / "GlimpseMNIST" / "steps" / "ram_s0.csv")
    drop = ("seconds",)
    strip = [{k: v for k, v in row.items() if k not in drop} for row in resumed]
    assert strip == [{k: v for k, v in row.items() if k not in drop} for row in expected]

    # A finished cell is reused: nothing is trained again.
    monkeypatch.setattr(compare, "make_learner", lambda *a, **k: pytest.fail("retrained"))
    assert compare.main(argv) == 0
    # Other settings for the same cell are refused by name, not mixed in.
    assert compare.main([*argv, "--eval-images", "16"]) == 2
    assert "was started with other settings" in capsys.readouterr().err


def test_bad_settings_are_refused(capsys):
    compare = load("compare_agents")
    assert compare.main(["--points", "0"]) == 2
    assert "--points" in capsys.readouterr().err
    assert compare.main(["--seeds", "0", "0"]) == 2
    for seed in ("-1", str(2**32)):  # every agent's seed (SB3's are 32-bit)
        assert compare.main(["--seeds", seed]) == 2
        assert "--seeds must be an integer in [0, 4294967295]" in capsys.readouterr().err


def test_the_summary_covers_the_agents_of_earlier_calls(tmp_path, capsys):
    """Agents run one call each (one per core) share the summary of their folder; a cell with
    other settings in the folder is left out."""
    compare = load("compare_agents")
    argv = [*TINY, "--out", str(tmp_path)]
    assert compare.main([*argv, "--agents", "random", "--seeds", "0"]) == 0
    points = argv.index("--points") + 1
    other = [*argv[:points], "1", *argv[points + 1 :]]
    assert compare.main([*other, "--agents", "random", "--seeds", "1"]) == 0  # other settings
    assert compare.main([*argv, "--agents", "ram", "--seeds", "0"]) == 0
    folder = tmp_path / "GlimpseMNIST" / "steps"
    assert [row["agent"] for row in rows(folder / "summary.csv")] == ["ram", "random"]
    assert "| random | 1 |" in (folder / "table.md").read_text()


def test_the_sweep_writes_its_table(tmp_path):
    sweep = load("sb3_sweep")
    sweep.LEARNING_RATES["a2c"] = [2e-3]
    sweep.TRIALS["a2c"] = {"ent_coef": [0.01]}
    table = tmp_path / "sweep.md"
    argv = ["--algos", "a2c", "--steps", "640", "--eval-images", "32", "--out", str(tmp_path)]
    assert sweep.main([*argv, "--seeds", "0", "--table", str(table)]) == 0
    text = table.read_text()
    assert "| a2c | base |" in text and "| a2c | learning_rate=0.002 |" in text
    assert ", ent_coef=0.01 |" in text and "| a2c | **winner: " in text


def test_catch_is_compared_too(tmp_path):
    compare = load("compare_agents")
    argv = ["--env", "GlimpseCatch-v0", "--agents", "ram", "a2c", "--seeds", "0", "--steps",
            "1472", "--points", "1", "--eval-images", "20", "--out", str(tmp_path)]  # fmt: skip
    assert compare.main(argv) == 0
    folder = tmp_path / "GlimpseCatch" / "steps"
    for name in ("ram_s0", "a2c_s0"):
        (row,) = rows(folder / f"{name}.csv")
        assert int(row["env_steps"]) >= 1472 and 0 <= float(row["test_error"]) <= 100
    assert compare.main([*argv[:-2], "--eval-images", "1001", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("env", ["GlimpseMNIST-v0", "GlimpseCatch-v0"])
def test_the_random_player_is_the_chance_level_with_one_score(env):
    compare = load("compare_agents")
    args = compare.Args(env=env, agents=("random",), seeds=(0,))
    learner = compare.RandomLearner(args, seed=0)
    items = torch.arange(min(200, learner.env.num_images))  # the tests' small MNIST split
    error, sampled = learner.evaluate(items)
    assert error == sampled and 70 < error < 100  # chance: 90% wrong labels, ~91% missed balls
    config = compare.train_reinforce.run_config(compare.train_reinforce.Args.for_task(env))
    learner.env = compare.train_reinforce.make_env(config, "test", 7, torch.device("cpu")).unwrapped
    assert learner.evaluate(items) == (error, sampled)  # whatever the batch
    learner.train_until("steps", 1000)
    assert learner.steps == 1000 and learner.evaluate(items) == (error, sampled)  # never learns


def test_a_ram_cell_saved_under_other_settings_is_refused(tmp_path):
    compare = load("compare_agents")
    args = compare.Args(env="GlimpseMNIST-v0", agents=("ram",), seeds=(0,))
    compare.RamLearner(args, seed=0).save(tmp_path)
    other = compare.RamLearner(args, seed=0)
    other.config = {**other.config, "entropy_weight": 0.5}  # e.g. a newer recipe
    with pytest.raises(RuntimeError, match="other RAM settings \\(entropy_weight\\)"):
        other.load(tmp_path)
    compare.RamLearner(args, seed=0).load(tmp_path)  # the same settings resume
