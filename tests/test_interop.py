"""Real clients on the envs: TorchRL's GymEnv and GymWrapper (the keyword contract and specs)."""

import torch
from torchrl.envs import GymEnv, GymWrapper
from torchrl.envs.utils import check_env_specs

import ram_env  # noqa: F401  (registers the ids)
from ram_env.wrappers import make_discrete_vec


def test_torchrl_gym_env_by_id_passes_check_env_specs():
    """TorchRL probes make keywords and relies on Python's "unexpected keyword argument"
    wording (ram_env.core.GlimpseConfig.from_kwargs)."""
    env = GymEnv("ram_env:GlimpseMNIST-v0")
    check_env_specs(env, seed=0)
    rollout = env.rollout(6)
    assert rollout["next", "done"][-1].item() and rollout["glimpse"].shape == (6, 1, 8, 8)


def test_torchrl_gym_wrapper_over_the_discrete_vector_adapter_same_step():
    envs = make_discrete_vec("GlimpseMNIST-v0", 4, grid=4, autoreset_mode="SAME_STEP")
    env = GymWrapper(envs, categorical_action_encoding=True)
    check_env_specs(env, seed=0)
    assert env.rollout(12, break_when_any_done=False).batch_size == torch.Size([4, 12])

    def look_top_left(tensordict):  # a fixation action only: episodes end at the cap
        return tensordict.set("action", torch.zeros(4, dtype=torch.long))

    rollout = env.rollout(12, look_top_left, break_when_any_done=False)
    # The cap ends every episode after 6 glimpses; SAME_STEP restarts them at once.
    assert rollout["next", "done"][:, 5].all()
    assert torch.allclose(rollout["next", "time"][:, 6], torch.full((4, 1), 2 / 6))
