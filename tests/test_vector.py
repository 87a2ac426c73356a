"""GlimpseVectorEnv: parity with GlimpseEnv, autoreset modes, index sweeps, bad input."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import ram_env  # registers the ids; its TASKS name the tasks
from ram_env.datasets import load_split
from ram_env.sensor import glimpse
from ram_env.vector import GlimpseVectorEnv, index_sweep


def make_vec(env_id="GlimpseMNIST-v0", num_envs=4, **kwargs):
    return gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
    ).unwrapped


def actions(num_envs, step, label=0):
    generator = torch.Generator().manual_seed(step)
    return {
        "location": torch.rand(num_envs, 2, generator=generator) * 2.4 - 1.2,
        "label": torch.full((num_envs,), label, dtype=torch.int64),
    }


def test_make_vec_gives_the_native_batched_env():
    envs = gym.make_vec("GlimpseTranslatedMNIST-v0", num_envs=5)
    assert isinstance(envs, GlimpseVectorEnv)
    assert envs.num_envs == 5
    assert envs.single_observation_space["glimpse"].shape == (3, 12, 12)
    assert envs.observation_space["glimpse"].shape == (5, 3, 12, 12)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, _ = envs.reset(seed=0)
    assert obs["glimpse"].dtype == torch.float32 and obs["glimpse"].shape == (5, 3, 12, 12)
    assert envs.single_observation_space["glimpse"].contains(obs["glimpse"][0].numpy())


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseClutteredMNIST-v0"])
def test_single_and_vector_env_agree_for_the_same_seed_and_actions(env_id):
    vector = make_vec(env_id, num_envs=1)
    single = gym.make(env_id).unwrapped
    for seed in (0, 1):
        vector_obs, _ = vector.reset(seed=seed, options={"indices": torch.tensor([seed + 3])})
        single_obs, _ = single.reset(seed=seed, options={"index": seed + 3})
        for step in range(single.config.n_glimpses):
            np.testing.assert_array_equal(single_obs["glimpse"], vector_obs["glimpse"][0].numpy())
            np.testing.assert_array_equal(single_obs["location"], vector_obs["location"][0].numpy())
            batch = actions(1, step, label=step % 10)
            vector_obs, reward, terminated, _, info = vector.step(batch)
            single_obs, single_reward, single_terminated, _, single_info = single.step(
                {"location": batch["location"][0].numpy(), "label": int(batch["label"][0])}
            )
            assert single_reward == reward[0].item()
            assert single_terminated == terminated[0].item()
        assert single_info["label"] == info["label"][0].item() and info["_label"][0]


def test_next_step_autoreset_resets_all_together():
    envs = make_vec(num_envs=3, n_glimpses=2)
    envs.reset(seed=0)
    _, _, terminated, _, infos = envs.step(actions(3, 0))
    assert not terminated.any() and infos == {}
    _, reward, terminated, truncated, infos = envs.step(actions(3, 1))
    assert terminated.all() and not truncated.any() and infos["_label"].all()
    first = envs.core.image_indices.clone()
    _obs, reward, terminated, _, infos = envs.step(actions(3, 2, label=5))  # the autoreset step
    assert not terminated.any() and (reward == 0).all() and infos == {}
    assert (envs.core.steps == 0).all()
    assert not torch.equal(envs.core.image_indices, first)


def test_next_step_autoreset_after_a_partial_reset():
    envs = make_vec(num_envs=3, n_glimpses=2)
    envs.reset(seed=0)
    envs.step(actions(3, 0))
    envs.reset(options={"reset_mask": torch.tensor([True, False, False])})
    _, _, terminated, _, infos = envs.step(actions(3, 1))
    assert terminated.tolist() == [False, True, True]
    assert infos["_label"].tolist() == [False, True, True]
    assert infos["label"][0] == -1  # a running episode's class is never shown
    assert infos["label"][1:].tolist() == envs.core.targets[1:].tolist()
    _, reward, terminated, _, _ = envs.step(actions(3, 2, label=1))
    assert terminated.tolist() == [True, False, False]
    assert envs.core.steps.tolist() == [2, 0, 0]
    assert reward[1:].eq(0).all()


def test_disabled_autoreset_refuses_finished_envs_and_resets_by_mask():
    envs = make_vec(num_envs=4, n_glimpses=1, autoreset_mode="disabled")
    assert envs.metadata["autoreset_mode"] == AutoresetMode.DISABLED
    envs.reset(seed=0)
    envs.step(actions(4, 0))
    with pytest.raises(ValueError, match=r"finished episodes .* sub-env\(s\) \[0, 1, 2, 3\]"):
        envs.step(actions(4, 1))
    mask = torch.tensor([False, True, False, True])
    envs.reset(options={"reset_mask": mask, "indices": torch.tensor([7, 8])})
    assert envs.core.image_indices[[1, 3]].tolist() == [7, 8]
    with pytest.raises(ValueError, match=r"sub-env\(s\) \[0, 2\]"):
        envs.step(actions(4, 2))


def test_a_partial_reset_senses_only_its_rows_and_keeps_earlier_observations():
    envs = make_vec("GlimpseClutteredMNIST-v0", num_envs=4)
    envs.reset(seed=0)
    obs, *_ = envs.step(actions(4, 0))
    handed_out = {key: value.clone() for key, value in obs.items()}
    mask = torch.tensor([False, True, False, True])
    new_obs, _ = envs.reset(options={"reset_mask": mask, "indices": torch.tensor([7, 8])})
    for key, value in obs.items():  # the observation handed out before is not overwritten
        assert torch.equal(value, handed_out[key])
        assert torch.equal(new_obs[key][~mask], handed_out[key][~mask])
        assert not torch.equal(new_obs[key][mask], handed_out[key][mask])
    config = envs.config
    fresh = glimpse(
        envs.core.canvases[mask],
        new_obs["location"][mask],
        config.patch_size,
        config.n_scales,
        config.scale_factor,
    )
    assert torch.equal(new_obs["glimpse"][mask], fresh)


@pytest.mark.parametrize(("num_images", "batch"), [(10, 4), (8, 4), (3, 5), (1, 1)])
def test_an_index_sweep_plays_every_image_exactly_once_in_full_batches(num_images, batch):
    indices = torch.arange(100, 100 + num_images)
    sweep = list(index_sweep(indices, batch))
    assert all(len(chunk) == batch for chunk, _ in sweep)
    real = torch.cat([chunk[:count] for chunk, count in sweep])
    assert real.tolist() == indices.tolist()
    padding = torch.cat([chunk[count:] for chunk, count in sweep])
    assert set(padding.tolist()) <= {indices[-1].item()}
    with pytest.raises(ValueError, match="batch"):
        list(index_sweep(indices, 0))


def test_seeding_is_reproducible():
    a, b = make_vec("GlimpseClutteredMNIST-v0"), make_vec("GlimpseClutteredMNIST-v0")
    obs_a, _ = a.reset(seed=3)
    obs_b, _ = b.reset(seed=3)
    torch.testing.assert_close(obs_a["glimpse"], obs_b["glimpse"])
    torch.testing.assert_close(a.core.canvases, b.core.canvases)
    state = a.get_rng_state()
    a.reset()
    canvases = a.core.canvases.clone()
    a.set_rng_state(state)
    a.reset()
    torch.testing.assert_close(a.core.canvases, canvases)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"location": torch.zeros(4, 3), "label": torch.zeros(4, dtype=torch.long)}, r"\(4, 2\)"),
        ({"location": torch.zeros(4, 2), "label": torch.zeros(4)}, "integer tensor"),
        (
            {"location": torch.zeros(4, 2, dtype=torch.bool), "label": torch.zeros(4).long()},
            "real",
        ),
        (
            {
                "location": torch.tensor([[0, 0], [float("nan"), 0], [0, 0], [0, 0]]),
                "label": torch.zeros(4, dtype=torch.long),
            },
            r"not finite in sub-env\(s\) \[1\]",
        ),
        (
            {"location": torch.zeros(4, 2), "label": torch.tensor([0, 10, 2, -1])},
            r"outside \[0, 10\) in sub-env\(s\) \[1, 3\]",
        ),
        ({"location": torch.zeros(4, 2)}, "keys 'location' and 'label'"),
    ],
)
def test_bad_actions_name_the_sub_envs(batch, message):
    envs = make_vec()
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        envs.step(batch)


def test_bad_reset_options_and_devices():
    envs = make_vec()
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        envs.reset(options={"indices": torch.arange(3)})
    with pytest.raises(ValueError, match="unknown reset option"):
        envs.reset(options={"index": 1})
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            make_vec(device="cuda")
    with pytest.raises(ValueError, match="max_episode_steps"):
        make_vec(max_episode_steps=2)


def test_answer_mask_ends_some_sub_envs_early():
    envs = make_vec(num_envs=3, n_glimpses=4)
    envs.reset(seed=0)
    batch = {**actions(3, 0), "answer": torch.tensor([True, False, True])}
    _, _, terminated, _, infos = envs.step(batch)
    assert terminated.tolist() == [True, False, True]
    assert infos["_label"].tolist() == [True, False, True]
    _, _, terminated, _, _ = envs.step(actions(3, 1))  # NEXT_STEP: rows 0 and 2 restart
    assert terminated.tolist() == [False, False, False]
    assert envs.core.steps.tolist() == [0, 2, 0]
    with pytest.raises(ValueError, match="answer"):
        envs.step({**actions(3, 2), "answer": torch.tensor([1, 0, 0])})


def test_stepping_before_any_reset_is_an_error():
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=4, vectorization_mode="vector_entry_point")
    action = {"location": torch.zeros(4, 2), "label": torch.zeros(4, dtype=torch.long)}
    with pytest.raises(RuntimeError, match="call reset"):
        envs.step(action)
    with pytest.raises(RuntimeError, match="full reset"):
        envs.reset(options={"reset_mask": torch.ones(4, dtype=torch.bool)})
    envs.reset(seed=0)
    envs.step(action)


def test_same_step_autoreset_reports_final_obs_and_final_info():
    envs = make_vec(num_envs=3, n_glimpses=2, autoreset_mode="SAME_STEP")
    envs.reset(seed=0)
    _, _, terminated, _, infos = envs.step(actions(3, 0))
    assert not terminated.any() and infos == {}
    first = envs.image_indices.clone()
    last = actions(3, 1, label=4)
    obs, reward, terminated, _, infos = envs.step(last)
    assert terminated.all() and infos["_final_obs"].all() and infos["_final_info"].all()
    # The final observation is the ended episode's last glimpse; obs is the new episode's first.
    final = infos["final_obs"]
    torch.testing.assert_close(final["location"], last["location"].clamp(-1, 1))
    assert (envs.episode_steps == 0).all() and not torch.equal(envs.image_indices, first)
    assert not torch.equal(obs["location"], final["location"])
    assert infos["final_info"]["index"].tolist() == first.tolist()
    assert infos["final_info"]["glimpses"].tolist() == [2, 2, 2]
    assert reward.tolist() == (infos["final_info"]["label"] == 4).float().tolist()
    # Every step counts towards an episode: the next one ends two steps later.
    _, _, terminated, _, infos = envs.step(actions(3, 2))
    assert not terminated.any() and infos == {}


def test_same_step_autoreset_of_some_sub_envs_keeps_the_others():
    envs = make_vec(num_envs=3, n_glimpses=4, autoreset_mode="SAME_STEP")
    envs.reset(seed=0)
    envs.step(actions(3, 0))
    before = envs.image_indices.clone()
    batch = {**actions(3, 1, label=7), "answer": torch.tensor([False, True, False])}
    obs, _, terminated, _, infos = envs.step(batch)
    assert terminated.tolist() == [False, True, False]
    assert infos["_final_obs"].tolist() == [False, True, False]
    assert infos["final_info"]["glimpses"].tolist() == [0, 2, 0]
    assert infos["final_info"]["label"][[0, 2]].tolist() == [-1, -1]  # never shown early
    assert envs.episode_steps.tolist() == [2, 0, 2]
    assert envs.image_indices[[0, 2]].tolist() == before[[0, 2]].tolist()
    torch.testing.assert_close(infos["final_obs"]["location"][1], batch["location"][1].clamp(-1, 1))
    torch.testing.assert_close(obs["location"][[0, 2]], infos["final_obs"]["location"][[0, 2]])


def test_the_three_autoreset_modes_play_the_same_episodes():
    """Same seed, same actions: the same episodes (images, rewards, ends) in every mode; only
    when the restart happens differs."""
    played = {}
    for mode in ("NEXT_STEP", "SAME_STEP", "DISABLED"):
        envs = make_vec(env_id="GlimpseTranslatedMNIST-v0", num_envs=3, n_glimpses=3,
                        autoreset_mode=mode)  # fmt: skip
        envs.reset(seed=5)
        episodes = []
        for episode in range(3):
            glimpses = []
            for step in range(3):
                obs, reward, terminated, _, infos = envs.step(actions(3, 10 * episode + step))
                last = infos.get("final_obs", obs) if step == 2 else obs
                glimpses.append(last["glimpse"])
            end = infos.get("final_info", infos)
            episodes.append((reward.tolist(), terminated.tolist(), end["index"].tolist(),
                             torch.stack(glimpses)))  # fmt: skip
            if mode == "NEXT_STEP":
                envs.step(actions(3, 99))  # the autoreset step: its action is ignored
            elif mode == "DISABLED":
                envs.reset(options={"reset_mask": torch.ones(3, dtype=torch.bool)})
        played[mode] = episodes
    for mode in ("SAME_STEP", "DISABLED"):
        for (r, t, i, g), (r2, t2, i2, g2) in zip(played["NEXT_STEP"], played[mode], strict=True):
            assert (r, t, i) == (r2, t2, i2)
            torch.testing.assert_close(g, g2)
    assert len({tuple(episode[2]) for episode in played["SAME_STEP"]}) == 3  # new images


@pytest.mark.parametrize("mode", ["NEXT_STEP", "SAME_STEP", "DISABLED"])
def test_each_autoreset_mode_matches_sync_vector_env_over_single_envs(mode):
    """Gymnasium's own ``SyncVectorEnv`` over ``GlimpseEnv``s is the reference of each mode.

    Step by step over two episodes: rewards, terminations, truncations, fixations, which step
    restarts a sub-env, the info fields and their masks, and ``final_obs``. The first episode
    shows the same fixed test canvas in both (``options`` index 3), so its glimpses, scores and
    end fields must agree too; the autoreset then draws images from each side's own stream.
    """
    n_glimpses, num_envs = 3, 2
    config = {"split": "test", "start": "center", "n_glimpses": n_glimpses}
    native = make_vec(num_envs=num_envs, autoreset_mode=mode, **config)
    sync = gym.vector.SyncVectorEnv(
        [lambda: gym.make("GlimpseMNIST-v0", **config)] * num_envs,
        autoreset_mode=AutoresetMode[mode],
    )
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"]
    label = int(load_split("mnist", "test")[1][3])  # answer image 3 right
    native_obs, _ = native.reset(seed=0, options={"indices": torch.tensor([3] * num_envs)})
    sync_obs, _ = sync.reset(seed=0, options={"index": 3})
    first_episode = True
    steps = 2 * n_glimpses + (1 if mode == "NEXT_STEP" else 0)
    for step in range(steps):
        batch = actions(num_envs, step, label=label)
        native_obs, reward, terminated, truncated, info = native.step(batch)
        sync_obs, sync_reward, sync_terminated, sync_truncated, sync_info = sync.step(
            {key: value.numpy() for key, value in batch.items()}
        )
        np.testing.assert_array_equal(terminated.numpy(), sync_terminated)
        np.testing.assert_array_equal(truncated.numpy(), sync_truncated)
        np.testing.assert_allclose(native_obs["location"].numpy(), sync_obs["location"])
        assert set(info) == set(sync_info)
        if first_episode:
            np.testing.assert_array_equal(reward.numpy(), sync_reward)
            if not (mode == "SAME_STEP" and terminated.all()):  # else: the next episode's
                np.testing.assert_array_equal(native_obs["glimpse"].numpy(), sync_obs["glimpse"])
            for key in set(info) - {"final_obs", "final_info"}:
                np.testing.assert_array_equal(np.asarray(info[key]), sync_info[key])
        if "final_obs" in info:  # SAME_STEP: the ended episode's last observation
            final, sync_final = info["final_info"], sync_info["final_info"]
            assert set(final) == set(sync_final)
            np.testing.assert_array_equal(info["_final_obs"].numpy(), sync_info["_final_obs"])
            for env in range(num_envs):
                for key in ("glimpse", "location") if first_episode else ("location",):
                    np.testing.assert_array_equal(
                        info["final_obs"][key][env].numpy(), sync_info["final_obs"][env][key]
                    )
            for key in final if first_episode else ("glimpses", "_label"):
                np.testing.assert_array_equal(np.asarray(final[key]), sync_final[key])
        if terminated.all():
            first_episode = False
            if mode == "DISABLED":
                native.reset(options={"reset_mask": torch.ones(num_envs, dtype=torch.bool)})
                sync.reset(options={"reset_mask": np.ones(num_envs, dtype=bool)})
    assert not first_episode


@pytest.mark.parametrize("mode", ["NEXT_STEP", "SAME_STEP"])
def test_gymnasiums_numpy_vector_wrappers_through_array_conversion(mode, tmp_path):
    """The route for Gymnasium's numpy wrappers: ArrayConversion(torch -> numpy) under them.

    Includes ../shared/cases/interop/vector_record_episode_statistics.py: after one 6-glimpse
    episode every sub-env reports ``info["episode"]`` with ``l == 6`` and ``r`` in {0, 1}.
    """
    from gymnasium.wrappers import vector as wrappers

    def native(**kwargs):
        envs = gym.make_vec(
            "GlimpseMNIST-v0",
            num_envs=4,
            vectorization_mode="vector_entry_point",
            autoreset_mode=mode,
            **kwargs,
        )
        return wrappers.ArrayConversion(envs, env_xp=torch, target_xp=np)

    action = {"location": np.zeros((4, 2), np.float32), "label": np.zeros(4, dtype=np.int64)}
    envs = wrappers.RecordEpisodeStatistics(native())
    obs, _ = envs.reset(seed=0)
    assert isinstance(obs["glimpse"], np.ndarray)
    for _ in range(6):
        _, reward, terminated, _, info = envs.step(action)
    assert terminated.all() and list(info["episode"]["l"]) == [6, 6, 6, 6]
    np.testing.assert_array_equal(info["episode"]["r"], reward)
    stacks = [
        wrappers.DictInfoToList(native()),
        wrappers.NormalizeReward(native()),
        wrappers.ClipReward(native(), 0.0, 0.5),
        wrappers.RecordVideo(
            native(render_mode="rgb_array"), str(tmp_path / mode), episode_trigger=lambda e: e == 0
        ),
    ]
    if mode == "NEXT_STEP":  # Gymnasium's own FlattenObservation refuses SAME_STEP
        stacks.append(wrappers.NormalizeObservation(wrappers.FlattenObservation(native())))
    for envs in stacks:
        envs.reset(seed=0)
        for _ in range(7):
            obs, reward, *_ = envs.step(action)
        assert isinstance(reward, np.ndarray) and reward.shape == (4,)
        envs.close()
    assert list((tmp_path / mode).glob("*.mp4"))  # RecordVideo tiled the per-env frames


def test_info_masks_are_not_the_returned_terminations():
    envs = make_vec(num_envs=2, n_glimpses=1, autoreset_mode="SAME_STEP")
    envs.reset(seed=0)
    _, _, terminated, _, infos = envs.step(actions(2, 0))
    terminated[0] = False  # a caller's in-place edit
    assert infos["_final_obs"].tolist() == [True, True]
    assert infos["final_info"]["_label"].tolist() == [True, True]


def test_stepping_to_the_current_fixations_tensor_keeps_the_glimpse_without_a_read(monkeypatch):
    """An agent's final step answers without moving (``location = obs["location"]``): the
    step gives what a copy of those fixations gives, and the sensor is not called."""
    envs, twin = make_vec("GlimpseTranslatedMNIST-v0"), make_vec("GlimpseTranslatedMNIST-v0")
    labels = torch.tensor([0, 1, 2, 3])
    for env in (envs, twin):
        env.reset(seed=3)
        env.step(actions(4, 0))
    copied = twin.step({"location": twin.fixations.clone(), "label": labels})
    reads = []
    monkeypatch.setattr(envs.core, "_sense", lambda *args: reads.append(args))
    same = envs.step({"location": envs.fixations, "label": labels})
    assert reads == []
    for key in ("glimpse", "location"):
        torch.testing.assert_close(same[0][key], copied[0][key], rtol=0, atol=0)
    for got, want in zip(same[1:4], copied[1:4], strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    # The observation changed in place and sent back is a new fixation: clamped and sensed.
    moved = envs.fixations
    moved.add_(1.5)
    monkeypatch.undo()
    obs, *_ = envs.step({"location": moved, "label": labels})
    expected, *_ = twin.step({"location": twin.fixations + 1.5, "label": labels})
    assert obs["location"].abs().max() <= 1.0
    torch.testing.assert_close(obs["glimpse"], expected["glimpse"], rtol=0, atol=0)
    with torch.inference_mode():  # tensors without a version counter: every step senses
        envs.reset(seed=3)
        twin.reset(seed=3)
        for _ in range(3):
            obs, *_ = envs.step({"location": envs.fixations, "label": labels})
            expected, *_ = twin.step({"location": twin.fixations.clone(), "label": labels})
            torch.testing.assert_close(obs["glimpse"], expected["glimpse"], rtol=0, atol=0)


def test_integer_locations_are_taken_as_the_single_env_takes_them():
    envs, single = make_vec(num_envs=1), gym.make("GlimpseMNIST-v0").unwrapped
    envs.reset(seed=0, options={"indices": torch.tensor([4])})
    single.reset(seed=0, options={"index": 4})
    obs, *_ = envs.step({"location": torch.tensor([[1, -1]]), "label": torch.tensor([0])})
    single_obs, *_ = single.step({"location": np.array([1, -1]), "label": 0})
    assert obs["location"].dtype == torch.float32 and obs["location"].tolist() == [[1.0, -1.0]]
    np.testing.assert_array_equal(single_obs["glimpse"], obs["glimpse"][0].numpy())


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseCatch-v0"])
def test_observations_hold_no_autograd_graph_of_the_actions(env_id):
    """A location computed with gradients (an agent's ``tanh(mu)``) enters the env as data:
    the observation it returns is detached, so the caller's graph is theirs alone (a second
    ``backward`` through it works, as with ``GlimpseEnv``'s numpy observations)."""
    envs = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    choice = "label" if env_id in ram_env.TASKS else "move"
    obs, _ = envs.reset(seed=0)
    weight = torch.zeros(2, requires_grad=True)
    for _ in range(2):
        location = torch.tanh(obs["location"] + weight)
        obs, *_ = envs.step({"location": location, choice: torch.zeros(2, dtype=torch.long)})
        assert obs["location"].grad_fn is None and not obs["location"].requires_grad
        (location**2).sum().backward()  # the caller's own graph, freed each time
    assert weight.grad is not None


def test_unsigned_indices_and_samples_are_taken_as_integers():
    envs = gym.make_vec("GlimpseMNIST-v0", num_envs=2, vectorization_mode="vector_entry_point")
    options = {"indices": np.array([5, 6], np.uint64), "samples": np.array([1, 2], np.uint32)}
    envs.reset(seed=0, options=options)
    signed = gym.make_vec("GlimpseMNIST-v0", num_envs=2, vectorization_mode="vector_entry_point")
    signed.reset(seed=0, options={"indices": [5, 6], "samples": [1, 2]})
    assert envs.unwrapped.image_indices.tolist() == [5, 6]
    torch.testing.assert_close(envs.unwrapped.glimpses, signed.unwrapped.glimpses)
    with pytest.raises(ValueError, match="out of range"):
        envs.reset(options={"indices": np.array([5, 2**64 - 1], np.uint64)})
