"""One score per checkpoint: evaluation does not depend on batch layout, M, order or agent."""

import numpy as np
import pytest
import torch

import ram_env
import train_reinforce
from agents.ram import RAM, RAMConfig
from agents.reinforce import correct_answers, evaluate, rollout
from ram_env.canvas import episode_key

TRANSLATED = {**ram_env.TASKS["GlimpseTranslatedMNIST-v0"], "canvas_size": 40, "n_glimpses": 3}


def test_env(num_envs, **kwargs):
    return ram_env.GlimpseVectorEnv(
        num_envs=num_envs, split="test", validate_actions=False, **{**TRANSLATED, **kwargs}
    )


test_env.__test__ = False  # a helper, not a test


def small_ram(seed):
    torch.manual_seed(seed)
    sizes = {"glimpse_hidden": 16, "location_hidden": 16, "glimpse_features": 32}
    return RAM(RAMConfig(glimpse_shape=(3, 12, 12), core_size=32, policy_hidden=16, **sizes))


@pytest.mark.parametrize(("mean_policy", "samples"), [(True, 1), (False, 1), (False, 3)])
def test_score_is_the_same_for_every_batch_size_order_and_repeat(mean_policy, samples):
    model = small_ram(0)
    images = torch.arange(128)
    scores = set()
    for chunk in (7, 40, 128):
        env = test_env(chunk * samples)
        for order in (images, images.flip(0)):
            scores.add(evaluate(model, env, order, samples, 0.3, seed=5, mean_policy=mean_policy))
    assert len(scores) == 1
    assert 0.0 < scores.pop() < 1.0


def test_one_sampled_pass_scores_m_1_as_its_own_pass_does():
    """The M=1 score is each image's episode m = 0, which a pass with M episodes plays exactly
    as a pass with 1 does: one pass gives both scores (a test plays M + 1 episodes per image,
    not M + 2)."""
    model, images = small_ram(2), torch.arange(96)
    for samples in (1, 4):
        first, mean = correct_answers(model, test_env(32 * samples), images, samples, 0.3, seed=5)
        assert int(first) == round(96 * evaluate(model, test_env(32), images, 1, 0.3, seed=5))
        assert int(mean) == round(
            96 * evaluate(model, test_env(32 * samples), images, samples, 0.3, seed=5)
        )
        assert samples > 1 or first == mean


def test_every_episode_sees_the_same_glimpses_whatever_the_layout():
    """Episode m of image i starts at a fixation keyed by (i, m, seed), in any batch."""
    model = small_ram(1)
    seed = 3

    def play(indices, samples):
        env = test_env(len(indices))
        env.reset(seed=seed)
        keys = episode_key(indices, samples, seed)
        with torch.no_grad():
            return rollout(model, env, indices, 0.3, keys, samples=samples).fixations

    one = play(torch.tensor([5, 9, 5]), torch.tensor([0, 0, 1]))
    other = play(torch.tensor([9, 2, 5, 5, 7]), torch.tensor([0, 0, 1, 0, 0]))
    # Starts are exact; later fixations agree to float rounding (BLAS sums in another order
    # for another batch size).
    for a, b in ((one[0], other[3]), (one[1], other[0]), (one[2], other[2])):
        torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert not torch.equal(one[0, 0], one[2, 0])  # the M samples of one image start apart


def test_two_policies_get_the_same_first_glimpse_of_each_test_image():
    images = torch.arange(16)
    firsts = []
    for seed in (0, 1):
        env = test_env(16)
        env.reset(seed=4)
        with torch.no_grad():
            played = rollout(small_ram(seed), env, images, 0.3, noise=None)
        firsts.append(played.fixations[:, 0])
    torch.testing.assert_close(firsts[0], firsts[1], rtol=0, atol=0)


def test_single_env_starts_where_the_vector_env_does():
    single = ram_env.GlimpseEnv(split="test", **TRANSLATED)
    vector = test_env(2)
    vector.reset(seed=8, options={"indices": torch.tensor([3, 3]), "samples": torch.tensor([0, 2])})
    for row, sample in enumerate((0, 2)):
        obs, _ = single.reset(seed=8, options={"index": 3, "sample": sample})
        np.testing.assert_array_equal(obs["location"], vector.core.fixations[row].numpy())
        np.testing.assert_array_equal(obs["glimpse"], vector.core.glimpses[row].numpy())
    with pytest.raises(ValueError, match="sample"):
        single.reset(options={"index": 3, "sample": -1})
    with pytest.raises(ValueError, match="samples"):
        vector.reset(options={"samples": torch.tensor([0.5, 1.0])})


def test_training_starts_stay_random():
    env = ram_env.GlimpseVectorEnv(num_envs=4, **TRANSLATED)  # train split: not fixed
    env.reset(seed=0, options={"indices": torch.tensor([1, 1, 1, 1])})
    assert len({tuple(row.tolist()) for row in env.core.fixations}) == 4


def run(folder, *extra):
    argv = [
        "--train-subset", "64", "--batch-size", "32", "--eval-batch-size", "32", "--M", "2",
        "--core-size", "32", "--glimpse-features", "32", "--threads", "1", "--plot-every", "0",
        "--ckpt-dir", str(folder), *extra,
    ]  # fmt: skip
    return train_reinforce.main(argv)


def test_cli_test_applies_or_refuses_every_flag(tmp_path, capsys):
    assert run(tmp_path, "--epochs", "1") == 0
    capsys.readouterr()
    assert run(tmp_path, "--test", "--epochs", "1") == 0  # the run's own values are fine
    plain = capsys.readouterr().out
    assert "6 glimpses, std 0.1, seed 1" in plain
    for flags, shown in ((["--std", "0.5"], "std 0.5"), (["--n-glimpses", "3"], "3 glimpses")):
        assert run(tmp_path, "--test", *flags) == 0
        assert shown in capsys.readouterr().out
    for flags, named in (
        (["--core", "lstm"], "--core 'lstm'"),
        (["--epochs", "7"], "--epochs 1"),
        (["--patch-size", "6"], "--patch-size 8"),
    ):
        assert run(tmp_path, "--test", *flags) == 2
        err = capsys.readouterr().err
        assert named in err and "trained with" in err
    for flags in (["--M", "4", "--eval-batch-size", "16"], ["--eval-batch-size", "64"]):
        assert run(tmp_path, "--test", *flags) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[-1] == plain.splitlines()[-1]  # mean policy
        assert out[-3] == plain.splitlines()[-3]  # M=1: episode m = 0 of each image, any --M


def test_an_evaluation_never_makes_more_envs_than_its_images(tmp_path, capsys, monkeypatch):
    """--eval-batch-size beyond the images (128 synthetic test images; 51 validation images)
    makes no more episodes at once than there are images (not a huge allocation), with the
    same scores."""
    assert run(tmp_path, "--epochs", "1") == 0
    assert run(tmp_path, "--test") == 0
    plain = capsys.readouterr().out.splitlines()[-3:]
    sizes = []
    make_env = train_reinforce.make_env
    monkeypatch.setattr(train_reinforce, "make_env",
                        lambda config, split, num_envs, *args, **kwargs: (
                            sizes.append((split, num_envs)),
                            make_env(config, split, num_envs, *args, **kwargs))[1])  # fmt: skip
    assert run(tmp_path, "--test", "--eval-batch-size", str(10**7)) == 0
    assert capsys.readouterr().out.splitlines()[-3:] == plain
    assert sizes == [("test", 128 * 2)]  # the images x --M
    assert run(tmp_path / "again", "--epochs", "1", "--eval-batch-size", str(10**7)) == 0
    assert ("train", 51) in sizes  # validation: the 51 held-out images (--valid-size 0.1)


def test_no_test_overwrites_another_tests_result(tmp_path):
    assert run(tmp_path, "--epochs", "1") == 0
    own = (tmp_path / "test.json").read_text()
    assert run(tmp_path, "--test", "--M", "4") == 0
    assert run(tmp_path, "--test", "--checkpoint", str(tmp_path / "last.pt")) == 0
    assert (tmp_path / "test.json").read_text() == own  # the run's own result is kept
    assert (tmp_path / "test_std0.1_glimpses6_seed1_M4.json").exists()
    assert (tmp_path / "test_std0.1_glimpses6_seed1_last.json").exists()
