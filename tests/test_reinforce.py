"""The RAM agent and its hybrid REINFORCE loss: shapes, gradient flow, learning, evaluation."""

import pathlib
import subprocess
import sys

import gymnasium as gym
import pytest
import torch

import ram_env  # noqa: F401  (registers the ids)
from agents.ram import RAM, RAMConfig
from agents.reinforce import evaluate, hybrid_loss, rollout, train_epoch


def make_vec(num_envs, **kwargs):
    return gym.make_vec(
        "GlimpseMNIST-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    ).unwrapped


def grads_of(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {
        name: param.grad is not None and param.grad.abs().sum() > 0
        for name, param in model.named_parameters()
    }


@pytest.mark.parametrize("core", ["rnn", "lstm"])
def test_rollout_shapes_and_a_batch_of_one(core):
    torch.manual_seed(0)
    model = RAM(RAMConfig(core=core))
    for batch in (1, 5):
        env = make_vec(batch)
        env.reset(seed=0)
        out = rollout(model, env, torch.arange(batch), 0.1, torch.Generator().manual_seed(0))
        assert out.log_probs.shape == (batch, 10)
        assert out.log_pi.shape == out.baselines.shape == (batch, 5)  # T - 1 locations used
        assert out.fixations.shape == (batch, 6, 2)
        assert out.reward.shape == out.targets.shape == (batch,)
        losses = hybrid_loss(out)
        assert all(value.shape == () and torch.isfinite(value) for value in losses.values())


def test_layer_sizes_are_independent():
    config = RAMConfig(
        glimpse_shape=(2, 5, 5),
        glimpse_hidden=7,
        location_hidden=11,
        glimpse_features=13,
        core_size=17,
        policy_hidden=19,
        core="lstm",
    )
    model = RAM(config)
    state = model.step(torch.rand(3, 2, 5, 5), torch.zeros(3, 2), model.initial_state(3, "cpu"))
    assert state[0].shape == (3, 17)
    assert model.location_mean(state[0]).shape == (3, 2)


def test_each_loss_term_trains_only_its_part():
    torch.manual_seed(0)
    model = RAM(RAMConfig())
    env = make_vec(16)
    env.reset(seed=0)
    out = rollout(model, env, torch.arange(16), 0.1, torch.Generator().manual_seed(0))
    losses = hybrid_loss(out)
    policy = {"policy_hidden.weight", "policy_mean.weight"}
    baseline = {"baseline_head.weight"}
    ce = grads_of(model, losses["classification"])
    assert not any(ce[name] for name in policy | baseline)
    assert ce["what.weight"] and ce["core_recurrent.weight"] and ce["classifier.weight"]
    reinforce = grads_of(model, losses["reinforce"])
    assert not any(reinforce[name] for name in baseline)
    assert not reinforce["what.weight"] and not reinforce["classifier.weight"]
    assert reinforce["policy_mean.weight"]
    mse = grads_of(model, losses["baseline"])
    assert [name for name, flows in mse.items() if flows] == [
        "baseline_head.weight",
        "baseline_head.bias",
    ]


def test_loss_signs_follow_the_reward():
    """REINFORCE raises log pi of locations that beat the baseline and lowers the others."""
    log_pi = torch.zeros(2, 3, requires_grad=True)
    baselines = torch.full((2, 3), 0.5, requires_grad=True)
    from agents.reinforce import Rollout

    batch = Rollout(
        log_probs=torch.log_softmax(torch.zeros(2, 10), -1),
        log_pi=log_pi,
        baselines=baselines,
        reward=torch.tensor([1.0, 0.0]),
        targets=torch.tensor([0, 1]),
        fixations=torch.zeros(2, 4, 2),
    )
    losses = hybrid_loss(batch)
    losses["reinforce"].backward(retain_graph=True)
    assert (log_pi.grad[0] < 0).all() and (log_pi.grad[1] > 0).all()  # descent raises row 0
    losses["baseline"].backward()
    assert losses["baseline"].item() == pytest.approx(0.25)
    assert baselines.grad.sum().item() == pytest.approx(0.0)  # rewards 1 and 0 pull equally


def test_short_training_beats_chance_by_far_and_evaluation_sees_each_image_once():
    torch.manual_seed(0)
    model = RAM(RAMConfig(core="lstm"))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    env = make_vec(32)
    env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    order = torch.Generator().manual_seed(0)
    for _ in range(6):
        indices = torch.randperm(env.core.num_images, generator=order)
        stats = train_epoch(model, env, optimizer, indices, 0.1, generator)
    assert stats["accuracy"] > 0.6
    test_env = make_vec(20, split="test")
    test_env.reset(seed=0)
    shown = []
    reset = test_env.reset

    def recording_reset(**kwargs):
        if "indices" in kwargs.get("options", {}):
            shown.append(kwargs["options"]["indices"].clone())
        return reset(**kwargs)

    test_env.reset = recording_reset
    test_images = torch.arange(test_env.core.num_images)  # 128 in 13 chunks of 10 (M=2)
    accuracy = evaluate(model, test_env, test_images, 2, 0.1, seed=0)
    assert accuracy > 0.6
    assert len(shown) == 13
    firsts = torch.cat([chunk[:10] for chunk in shown])  # copy 1 of each image in its chunk
    assert torch.equal(firsts[:128], test_images)  # then the last chunk's padding
    assert all(torch.equal(chunk[:10], chunk[10:]) for chunk in shown)  # copy 2 = copy 1
    greedy = evaluate(model, test_env, test_images, 1, 0.1, seed=0, mean_policy=True)
    assert greedy > 0.6
    with pytest.raises(ValueError, match="multiple of samples"):
        evaluate(model, test_env, test_images, 3, 0.1, seed=0)


def test_leave_one_out_baseline_and_reinforce_weight():
    """K episodes per image: each episode's control variate is its image's other episodes'
    mean reward (episode b and b + B/K play the same image)."""
    from agents.reinforce import Rollout

    log_pi = torch.zeros(6, 2, requires_grad=True)
    batch = Rollout(
        log_probs=torch.log_softmax(torch.zeros(6, 10), -1),
        log_pi=log_pi,
        baselines=torch.full((6, 2), 0.9),
        reward=torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0]),  # images 0, 1: (1, 1), (0, 0)
        targets=torch.zeros(6, dtype=torch.long),
        fixations=torch.zeros(6, 3, 2),
    )
    losses = hybrid_loss(batch, reinforce_weight=2.0, samples=2)
    losses["loss"].backward()
    # Advantages: image 0 (1 - 1, 1 - 1) = 0; image 1 (0, 0) = 0; image 2 (1 - 0, 0 - 1).
    want = -2.0 * torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, -1.0])[:, None].expand(6, 2) / 6
    torch.testing.assert_close(log_pi.grad, want)
    with pytest.raises(ValueError, match="multiple of samples"):
        train_epoch(RAM(RAMConfig()), make_vec(5), None, torch.arange(10), 0.1, None, samples=2)


def test_several_episodes_per_image_play_each_image_k_times():
    torch.manual_seed(0)
    model = RAM(RAMConfig(core_size=32, glimpse_features=32))
    env = make_vec(12)
    env.reset(seed=0)
    shown = []
    reset = env.reset

    def recording_reset(**kwargs):
        shown.append(kwargs["options"]["indices"].clone())
        return reset(**kwargs)

    env.reset = recording_reset
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    stats = train_epoch(model, env, optimizer, torch.arange(9), 0.1, torch.Generator(), samples=3)
    assert [chunk.tolist() for chunk in shown] == [[0, 1, 2, 3] * 3, [4, 5, 6, 7] * 3]
    assert set(stats) >= {"loss", "accuracy", "reinforce"}


def test_a_cpu_episode_does_not_load_torchs_compiler():
    """The CUDA-graph episode marker is for CUDA only: importing torch's compiler costs a CPU
    process seconds of start-up (every --test, every evaluation script)."""
    code = (
        "import sys, gymnasium as gym, torch, ram_env\n"
        "from agents.ram import RAM, RAMConfig\n"
        "from agents.reinforce import rollout\n"
        "env = gym.make_vec('GlimpseMNIST-v0', num_envs=2,\n"
        "                   vectorization_mode='vector_entry_point')\n"
        "model = RAM(RAMConfig(glimpse_shape=env.unwrapped.config.glimpse_shape))\n"
        "rollout(model, env.unwrapped, torch.tensor([0, 1]), 0.1, None)\n"
        "print('torch._inductor' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
        cwd=pathlib.Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert done.stdout.strip() == "False"
