"""Hybrid REINFORCE for the RAM agent over ``GlimpseVectorEnv``: rollout, loss, train, evaluate.

The agent plays the env like any other agent: it resets the env on chosen images, steps it with
``{"location", "label"}`` actions, reads the reward of its final answer from the env and the
true class from ``info["label"]`` at the episode's end. Everything stays on the env's device.

The loss of a batch (the paper's hybrid loss, averaged over episodes)::

    L = CE(p(y | h_T), y)                                    classification
      - w * sum_{t < T-1} log pi(l_t | h_t) * (R - b_t)      REINFORCE, b_t as control variate
      + mean_t (R - b_t)^2                                   baseline regression

where ``R`` is 1 for a right answer, else 0, and ``w`` the REINFORCE weight (1 in the paper).
With ``K > 1`` episodes per image in a batch (``samples``), the control variate of each
episode is the mean reward of the other ``K - 1`` episodes on the same image (leave-one-out,
an unbiased baseline that knows how hard the image is); ``b_t`` is still trained.

Only the ``T - 1`` locations the env actually looks at get a REINFORCE term (the one sent with
the final label is never used, so none is drawn), and ``log pi`` is the log-density of exactly
the sample sent to the env.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.distributions import Normal
from torch.nn import functional as F

from agents.distributed import SINGLE, Group
from agents.ram import RAM
from ram_env.canvas import episode_key, hash_normal
from ram_env.vector import GlimpseVectorEnv, index_sweep

#: First random stream of an evaluation episode's key used for the policy noise (the env uses
#: streams 0 and 1 of the same key for the start fixation).
NOISE_STREAM = 1000

__all__ = [
    "Rollout",
    "Shards",
    "begin_episode",
    "compile_step",
    "correct_answers",
    "evaluate",
    "hybrid_loss",
    "rollout",
    "sample_location",
    "shard_seeds",
    "train_epoch",
]


def compile_step(model: RAM, device: torch.device, batch: int) -> None:
    """Replace ``model.step`` by its ``torch.compile`` version (in place, weights untouched).

    On CUDA the mode is ``"reduce-overhead"``: each glimpse replays a CUDA graph instead of
    launching a dozen small kernels. The compiled step is tried once (forward and backward on
    a batch of ``batch`` zeros) so that a failure shows here, not mid-training.
    """
    mode = "reduce-overhead" if device.type == "cuda" else None
    compiled = torch.compile(model.step, mode=mode, dynamic=False)
    glimpse = torch.zeros(batch, *model.config.glimpse_shape, device=device)
    state = compiled(
        glimpse, torch.zeros(batch, 2, device=device), model.initial_state(batch, device)
    )
    state[0].sum().backward()
    model.zero_grad(set_to_none=True)
    model.step = compiled


@dataclass
class Rollout:
    """One batch of finished episodes (``B`` episodes, ``T`` glimpses).

    Attributes:
        log_probs: ``[B, C]`` log class probabilities after the last glimpse.
        log_pi: ``[B, T-1]`` log-density of each location the env looked at after the first.
        baselines: ``[B, T-1]`` baseline predictions at those steps.
        reward: ``[B]`` 1.0 for a right answer, else 0.0 (from the env).
        targets: ``[B]`` true classes (from the env's final ``info["label"]``).
        fixations: ``[B, T, 2]`` every fixation the glimpses were taken at.
        glimpses: ``[B, T, k, g, g]`` every glimpse, with ``rollout(keep_glimpses=True)``
            (pictures), else ``None``.
    """

    log_probs: torch.Tensor
    log_pi: torch.Tensor
    baselines: torch.Tensor
    reward: torch.Tensor
    targets: torch.Tensor
    fixations: torch.Tensor
    glimpses: torch.Tensor | None = None


def begin_episode(device: torch.device) -> None:
    """Mark a new episode for a step compiled with CUDA graphs (``compile_step`` on CUDA): the
    earlier episodes' graph outputs may then be overwritten. Only on CUDA, where such a step
    exists: the call imports torch's compiler, seconds of start-up a CPU run does not need."""
    if device.type == "cuda":
        torch.compiler.cudagraph_mark_step_begin()


def sample_location(
    mean: torch.Tensor, std: float, noise: torch.Generator | torch.Tensor | None, stream: int
) -> torch.Tensor:
    """The next fixation ``l_t ~ N(mu_t, std^2)`` (``mean`` ``[B, 2]``, detached), its noise
    drawn from ``noise`` as ``rollout`` describes: a generator, or episode keys (hash streams
    ``stream`` and ``stream + 1``), or ``None`` (the mean policy: ``mu_t`` itself)."""
    location = mean.detach()
    if isinstance(noise, torch.Generator):
        return location + std * torch.randn(mean.shape, generator=noise, device=mean.device)
    if noise is None:
        return location
    draw = torch.stack([hash_normal(noise, stream), hash_normal(noise, stream + 1)], 1)
    return location + std * draw


def rollout(
    model: RAM,
    env: GlimpseVectorEnv,
    indices: torch.Tensor,
    std: float,
    noise: torch.Generator | torch.Tensor | None,
    samples: torch.Tensor | int = 0,
    keep_glimpses: bool = False,
    seed: int | None = None,
) -> Rollout:
    """Play one episode in every sub-env of ``env`` on images ``indices`` (int64 ``[B]``).

    Args:
        model, env: the agent and a ``GlimpseVectorEnv`` of ``B`` sub-envs.
        indices: int64 ``[B]`` images of the env's split.
        std: the location policy's standard deviation (fraction of the half-width).
        noise: where the policy noise comes from: a ``torch.Generator`` (training), int64
            ``[B]`` episode keys (``ram_env.canvas.episode_key``: the noise of episode ``b`` at
            step ``t`` is then a pure function of its key, so an evaluation does not depend on
            the batch layout), or ``None`` for the mean policy ``mu_t``.
        samples: int or int64 ``[B]``, each episode's sample number (the env's ``"samples"``
            reset option: it keys the start fixation on fixed canvases).
        keep_glimpses: also return every glimpse (``Rollout.glimpses``), for pictures.
        seed: reseed the env at the reset (``env.reset(seed=seed)``): the canvases and start
            fixations are then a function of ``seed`` and ``indices`` alone; ``None`` goes on
            with the env's stream.
    """
    batch, device = env.num_envs, env.device
    begin_episode(device)
    obs, _ = env.reset(seed=seed, options={"indices": indices, "samples": samples})
    state = model.initial_state(batch, device)
    no_answer = torch.zeros(batch, dtype=torch.int64, device=device)
    log_pi, baselines, fixations, glimpses = [], [], [], []
    for t in range(env.config.n_glimpses):
        fixations.append(obs["location"])
        if keep_glimpses:
            glimpses.append(obs["glimpse"])
        state = model.step(obs["glimpse"], obs["location"], state)
        if t == env.config.n_glimpses - 1:
            break
        mean = model.location_mean(state[0])
        location = sample_location(mean, std, noise, NOISE_STREAM + 2 * t)
        log_pi.append(Normal(mean, std).log_prob(location).sum(dim=-1))
        baselines.append(model.baseline(state[0]))
        obs, _, _, _, _ = env.step({"location": location, "label": no_answer})
    log_probs = model.classify(state[0])
    final = {"location": obs["location"], "label": log_probs.argmax(dim=-1)}
    _, reward, _, _, info = env.step(final)
    empty = torch.zeros(batch, 0, device=device)
    return Rollout(
        log_probs=log_probs,
        log_pi=torch.stack(log_pi, dim=1) if log_pi else empty,
        baselines=torch.stack(baselines, dim=1) if baselines else empty,
        reward=reward,
        targets=info["label"],
        fixations=torch.stack(fixations, dim=1),
        glimpses=torch.stack(glimpses, dim=1) if keep_glimpses else None,
    )


def hybrid_loss(
    batch: Rollout, reinforce_weight: float = 1.0, samples: int = 1
) -> dict[str, torch.Tensor]:
    """The hybrid loss of a rollout: ``{"loss", "classification", "reinforce", "baseline"}``.

    Args:
        batch: a rollout of ``B`` episodes.
        reinforce_weight: ``w``, the weight of the REINFORCE term.
        samples: ``K``, episodes per image: episode ``b`` and ``b + B / K`` play the same image
            (the layout of ``images.repeat(K)``); ``K > 1`` uses the leave-one-out control
            variate. ``B`` must be a multiple of ``K``.
    """
    classification = F.nll_loss(batch.log_probs, batch.targets)
    reward = batch.reward[:, None].expand_as(batch.baselines)
    if samples > 1:
        per_image = batch.reward.view(samples, -1)
        others = (per_image.sum(dim=0, keepdim=True) - per_image) / (samples - 1)
        control = others.reshape(-1, 1).expand_as(batch.baselines)
    else:
        control = batch.baselines
    advantage = (reward - control).detach()
    reinforce = -(batch.log_pi * advantage).sum(dim=1).mean()
    baseline = F.mse_loss(batch.baselines, reward) if reward.numel() else reinforce * 0
    return {
        "loss": classification + reinforce_weight * reinforce + baseline,
        "classification": classification,
        "reinforce": reinforce,
        "baseline": baseline,
    }


def shard_seeds(seed: int, epoch: int, step: int, shard: int) -> tuple[int, int]:
    """The seeds ``(env, noise)`` of shard ``shard`` of optimizer step ``step`` in epoch
    ``epoch`` (0-based) of a run seeded ``seed``: two ints in ``[0, 2**63)``, a pure function of
    the four (BLAKE2b), so a shard plays the same episodes in whichever process plays it."""
    text = f"ram-env shard {seed} {epoch} {step} {shard}".encode()
    digest = hashlib.blake2b(text, digest_size=16).digest()
    return int.from_bytes(digest[:8], "little") >> 1, int.from_bytes(digest[8:], "little") >> 1


@dataclass(frozen=True)
class Shards:
    """Data-parallel training (``agents.distributed``): this process's part of every batch.

    Each optimizer step plays a global batch of ``count`` shards of ``env.num_envs`` episodes
    (``n = env.num_envs / samples`` images each): shard ``s`` of step ``j`` plays images
    ``(j * count + s) * n`` to ``(j * count + s + 1) * n - 1`` of the epoch's order, all ``K``
    episodes of each (so the leave-one-out control variate stays within a shard). This process
    plays the shards in ``mine`` and adds up their gradients, ``group`` sums the gradients over
    the processes, then every process takes the same optimizer step. Each shard's loss is
    divided by ``count``: the step follows the gradient of the mean loss over the global batch.

    The randomness of a shard (the env's canvases and start fixations, the policy noise) is
    seeded by ``shard_seeds(seed, epoch, j, s)``, so an epoch is the same whichever process
    plays which shard: 2 processes x 1 shard each train as 1 process x 2 shards (up to the
    float rounding of the gradient sums).

    Attributes:
        count: shards per optimizer step (processes x shards per process).
        mine: the shards this process plays, a range within ``[0, count)``.
        seed: the run's seed.
        epoch: the epoch (0-based), which keys the shards' randomness.
        group: the processes (``SINGLE`` when this process plays every shard).
    """

    count: int
    mine: range
    seed: int
    epoch: int
    group: Group = SINGLE

    @classmethod
    def of_process(cls, group: Group, per_process: int, seed: int, epoch: int) -> Shards:
        """``per_process`` consecutive shards for each process of ``group``, rank by rank."""
        first = group.rank * per_process
        mine = range(first, first + per_process)
        return cls(group.world_size * per_process, mine, seed, epoch, group)


def train_epoch(
    model: RAM,
    env: GlimpseVectorEnv,
    optimizer: torch.optim.Optimizer,
    indices: torch.Tensor,
    std: float,
    generator: torch.Generator,
    on_batch: Callable[[int], None] | None = None,
    samples: int = 1,
    reinforce_weight: float = 1.0,
    shards: Shards | None = None,
) -> dict[str, float]:
    """One pass over ``indices`` (already shuffled), ``env.num_envs`` episodes per batch.

    Each batch plays ``env.num_envs / samples`` images ``samples`` times each (``hybrid_loss``
    with ``K = samples``); ``env.num_envs`` must be a multiple of ``samples``. A last partial
    batch is dropped (a fresh shuffle each epoch drops different images). ``on_batch(images)``
    is called after every batch (progress bars). Returns the epoch means
    of the loss terms, ``accuracy`` (= mean reward), and fixation statistics: ``fixation_abs``
    (mean ``|l|`` per coordinate) and ``fixation_border`` (fraction of fixations at a border).

    With ``shards`` (data-parallel training, see ``Shards``) an optimizer step takes a global
    batch of ``shards.count`` batches, of which this process plays ``shards.mine``, reseeding
    ``generator`` and the env for each; ``on_batch`` counts this process's images, and the
    means are over every process's batches.
    """
    model.train()
    if samples < 1 or env.num_envs % samples:
        raise ValueError(f"num_envs={env.num_envs} is not a multiple of samples={samples}")
    batch = env.num_envs // samples  # images per batch
    count, mine = (1, range(1)) if shards is None else (shards.count, shards.mine)
    totals: dict[str, torch.Tensor] = {}
    steps = len(indices) // (batch * count)
    if steps == 0:
        raise ValueError(f"{len(indices)} training images make no batch of {batch * count}")
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        for shard in mine:
            start = (step * count + shard) * batch
            images = indices[start : start + batch].repeat(samples)
            env_seed = None
            if shards is not None:
                env_seed, noise_seed = shard_seeds(shards.seed, shards.epoch, step, shard)
                generator.manual_seed(noise_seed)
            episodes = rollout(model, env, images, std, generator, seed=env_seed)
            losses = hybrid_loss(episodes, reinforce_weight, samples)
            (losses["loss"] / count if count > 1 else losses["loss"]).backward()
            stats = {
                **{name: value.detach() for name, value in losses.items()},
                "accuracy": episodes.reward.mean(),  # the answer is the argmax: reward 1 iff right
                "fixation_abs": episodes.fixations.abs().mean(),
                "fixation_border": (episodes.fixations.abs() >= 1.0).any(-1).float().mean(),
            }
            for name, value in stats.items():
                totals[name] = totals.get(name, 0) + value
            if on_batch is not None:
                on_batch(batch)
        if shards is not None:
            shards.group.sum_gradients(model.parameters())
        optimizer.step()
    if shards is not None:  # every process's batches
        summed = shards.group.sum_(torch.stack(list(totals.values())))
        totals = dict(zip(totals, summed, strict=True))
    return {name: float(total) / (steps * count) for name, total in totals.items()}


@torch.no_grad()
def correct_answers(
    model: RAM,
    env: GlimpseVectorEnv,
    indices: torch.Tensor,
    samples: int,
    std: float,
    seed: int,
    mean_policy: bool = False,
) -> torch.Tensor:
    """How many of the images ``indices`` ``evaluate`` answers right, counted two ways in one
    pass: int64 ``[2]`` on ``env.device`` (zeros for no images), ready to be summed over
    processes. ``[0]`` scores each image by its episode ``m = 0`` alone (the ``M = 1`` score:
    that episode is keyed as in a pass with ``samples=1``), ``[1]`` by the mean of its
    ``samples`` episodes (``evaluate``); they are equal when ``samples`` is 1."""
    if env.num_envs % samples:
        raise ValueError(f"num_envs={env.num_envs} is not a multiple of samples={samples}")
    if mean_policy and samples != 1:
        raise ValueError("the mean policy is deterministic: use samples=1")
    model.eval()
    indices = torch.as_tensor(indices, device=env.device)
    env.reset(seed=seed)  # keys the start fixations of fixed canvases
    chunk = env.num_envs // samples
    sample_ids = torch.arange(samples, device=env.device).repeat_interleave(chunk)
    correct = torch.zeros(2, dtype=torch.int64, device=env.device)
    for images, valid in index_sweep(indices, chunk):
        images = images.repeat(samples)
        keys = None if mean_policy else episode_key(images, sample_ids, seed)
        episodes = rollout(model, env, images, std, keys, samples=sample_ids)
        probs = episodes.log_probs.exp().view(samples, chunk, -1)
        predicted = torch.stack([probs[0], probs.mean(dim=0)]).argmax(dim=-1)[:, :valid]
        correct += (predicted == episodes.targets[:valid]).sum(dim=1)
    return correct


def evaluate(
    model: RAM,
    env: GlimpseVectorEnv,
    indices: torch.Tensor,
    samples: int,
    std: float,
    seed: int,
    mean_policy: bool = False,
) -> float:
    """Accuracy over the images ``indices``, each seen exactly once.

    Each image is played ``samples`` (the seed's ``M``) times with sampled locations, and the
    class probabilities of the ``M`` episodes are averaged before the argmax. ``mean_policy``
    follows ``mu_t`` instead (then ``samples`` must be 1). ``env.num_envs`` must be a multiple
    of ``samples``; the last chunk is padded with repeats whose results are dropped.

    On fixed canvases (the test split, fixed validation canvases) the result is one number per
    ``seed``: episode ``m`` of image ``i`` starts at a fixation keyed by ``(i, m, seed)`` (the
    env is reset with ``seed``) and draws its policy noise from the same key, so neither the
    batch size nor ``samples`` nor the order of ``indices`` changes what any episode sees (nor
    which process plays it: ``correct_answers`` counts a part). (The network's arithmetic may
    still round differently for another batch shape, by about 1e-7, which can flip an answer
    that sits exactly on a decision boundary.)
    """
    correct = correct_answers(model, env, indices, samples, std, seed, mean_policy)[1]
    return float(correct) / len(indices)
